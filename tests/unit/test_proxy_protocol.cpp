// Tests of the PROXY protocol header parser: every form of versions 1 and 2
// and every malformed case, each parsed whole, read in chunks of every size
// (as serve reads it, never more than the parser allows) and at every prefix;
// then read_proxy_header on a pipe takes the header's octets and no more.
#include "server/proxy_protocol.hpp"
#include "server/stdio_transport.hpp"

#include <doctest/doctest.h>

#include <string>
#include <unistd.h>
#include <vector>

using namespace smtpspool;
using namespace std::string_literals;

namespace {

const std::string k_signature = "\r\n\r\n\0\r\nQUIT\n"s;
// What the client sends after the header: never part of it.
const std::string k_after = "EHLO c.test\r\n";

std::string be16(std::size_t n) { return std::string{static_cast<char>(n >> 8 & 0xff), static_cast<char>(n & 0xff)}; }

// A version 2 header: version and command, family and protocol, the block;
// the length field is the block's unless given.
std::string v2(unsigned char version_command, unsigned char family, const std::string& block,
               std::optional<std::size_t> length = std::nullopt)
{
    return k_signature + static_cast<char>(version_command) + static_cast<char>(family) +
           be16(length.value_or(block.size())) + block;
}

const std::string k_ipv4_block = "\xc0\x00\x02\x07"s                           // 192.0.2.7
                                 "\xc6\x33\x64\x01"s                           // 198.51.100.1
                                 "\x9c\x41\x00\x19"s;                          // 40001, 25
const std::string k_ipv6_block = "\x20\x01\x0d\xb8\0\0\0\0\0\0\0\0\0\0\0\x07"s // 2001:db8::7
                                 "\x20\x01\x0d\xb8\0\0\0\0\0\0\0\0\0\0\0\x01"s // 2001:db8::1
                                 "\xff\xff\x00\x00"s;                          // 65535, 0

std::string show(const ProxyParse& p)
{
    if (auto* more = std::get_if<ProxyNeedMore>(&p)) {
        return "need at most " + std::to_string(more->at_most);
    }
    if (auto* bad = std::get_if<ProxyMalformed>(&p)) {
        return "malformed: " + bad->reason;
    }
    const auto& h = std::get<ProxyHeader>(p);
    std::string s = "v" + std::to_string(h.version) + " of " + std::to_string(h.length);
    if (h.addresses) {
        s += " from " + h.addresses->source + " " + std::to_string(h.addresses->source_port) + " to " +
             h.addresses->destination + " " + std::to_string(h.addresses->destination_port);
    } else {
        s += ", own address";
    }
    return s;
}

std::string header(int version, std::size_t length, std::string from = "", std::uint16_t sport = 0, std::string to = "",
                   std::uint16_t dport = 0)
{
    ProxyHeader h{version, length, std::nullopt};
    if (!from.empty()) {
        h.addresses = ProxyAddresses{from, sport, to, dport};
    }
    return show(h);
}

std::string malformed(std::string reason) { return show(ProxyMalformed{std::move(reason)}); }

// As serve reads: at most `chunk` octets at a time, and never more than the
// parser's at_most.
ProxyParse read_in_chunks(const std::string& input, std::size_t chunk)
{
    std::string have;
    for (;;) {
        ProxyParse p = parse_proxy_header(have);
        auto* more = std::get_if<ProxyNeedMore>(&p);
        if (more == nullptr || have.size() == input.size()) {
            return p;
        }
        REQUIRE(more->at_most > 0);
        have += input.substr(have.size(), std::min(chunk, more->at_most));
    }
}

struct Case {
    const char* name;
    std::string input;
    std::string expected;
};

std::vector<Case> cases()
{
    std::string tcp4 = "PROXY TCP4 192.0.2.7 198.51.100.1 40001 25\r\n";
    std::string tcp6 = "PROXY TCP6 2001:db8::7 2001:db8::1 65535 0\r\n";
    std::string longest = "PROXY TCP6 ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff "
                          "65535 65535\r\n";
    std::string unknown_long = "PROXY UNKNOWN " + std::string(107 - 16, 'x') + "\r\n";
    std::string ipv6_mapped = "PROXY TCP6 ::ffff:192.0.2.7 ::1 1 2\r\n";
    return {
        // Version 1.
        {"v1 TCP4", tcp4, header(1, tcp4.size(), "192.0.2.7", 40001, "198.51.100.1", 25)},
        {"v1 TCP6", tcp6, header(1, tcp6.size(), "2001:db8::7", 65535, "2001:db8::1", 0)},
        {"v1 TCP6 written long is normalised", "PROXY TCP6 2001:DB8:0:0:0:0:0:7 ::1 1 2\r\n",
         header(1, 41, "2001:db8::7", 1, "::1", 2)},
        {"v1 TCP6 with an IPv4-mapped address", ipv6_mapped,
         header(1, ipv6_mapped.size(), "::ffff:192.0.2.7", 1, "::1", 2)},
        {"v1 the longest TCP6 line", longest,
         header(1, longest.size(), "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", 65535,
                "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", 65535)},
        {"v1 UNKNOWN", "PROXY UNKNOWN\r\n", header(1, 15)},
        {"v1 UNKNOWN with the rest ignored", "PROXY UNKNOWN 192.0.2.7 x y z\r\n", header(1, 31)},
        {"v1 UNKNOWN, 107 octets", unknown_long, header(1, 107)},
        {"v1 port 0", "PROXY TCP4 192.0.2.7 192.0.2.8 0 0\r\n", header(1, 36, "192.0.2.7", 0, "192.0.2.8", 0)},
        // Version 1, malformed.
        {"not a header: SMTP", "EHLO c.test\r\n", malformed("not a PROXY protocol header")},
        {"not a header: lower case", "proxy TCP4 192.0.2.7 198.51.100.1 1 2\r\n",
         malformed("not a PROXY protocol header")},
        {"not a header: PROXY without the space", "PROXYTCP4\r\n", malformed("not a PROXY protocol header")},
        {"not a header: NUL", "\0PROXY"s, malformed("not a PROXY protocol header")},
        {"v1 line longer than 107 octets", "PROXY UNKNOWN " + std::string(107 - 15, 'x') + "\r\n",
         malformed("v1: no CRLF within 107 octets")},
        {"v1 no line end at all", "PROXY TCP4 " + std::string(200, '1'), malformed("v1: no CRLF within 107 octets")},
        {"v1 LF without CR", "PROXY TCP4 192.0.2.7 198.51.100.1 1 2\n", malformed("v1: LF without CR")},
        {"v1 CR inside", "PROXY TCP4 192.0.2.7\r198.51.100.1 1 2\r\n", malformed("v1: CR inside the line")},
        {"v1 CR inside UNKNOWN", "PROXY UNKNOWN \r\r\n", malformed("v1: CR inside the line")},
        {"v1 empty", "PROXY \r\n", malformed("v1: protocol is not TCP4, TCP6 or UNKNOWN")},
        {"v1 UDP4", "PROXY UDP4 192.0.2.7 198.51.100.1 1 2\r\n",
         malformed("v1: protocol is not TCP4, TCP6 or UNKNOWN")},
        {"v1 UNKNOWNX", "PROXY UNKNOWNX\r\n", malformed("v1: protocol is not TCP4, TCP6 or UNKNOWN")},
        {"v1 tcp4 in lower case", "PROXY tcp4 192.0.2.7 198.51.100.1 1 2\r\n",
         malformed("v1: protocol is not TCP4, TCP6 or UNKNOWN")},
        {"v1 two spaces after PROXY", "PROXY  TCP4 192.0.2.7 198.51.100.1 1 2\r\n",
         malformed("v1: protocol is not TCP4, TCP6 or UNKNOWN")},
        {"v1 two spaces between fields", "PROXY TCP4 192.0.2.7  198.51.100.1 1 2\r\n",
         malformed("v1: not four fields after the protocol, one space apart")},
        {"v1 a tab between fields", "PROXY TCP4 192.0.2.7\t198.51.100.1 1 2\r\n",
         malformed("v1: not four fields after the protocol, one space apart")},
        {"v1 three fields", "PROXY TCP4 192.0.2.7 198.51.100.1 1\r\n",
         malformed("v1: not four fields after the protocol, one space apart")},
        {"v1 five fields", "PROXY TCP4 192.0.2.7 198.51.100.1 1 2 3\r\n",
         malformed("v1: not four fields after the protocol, one space apart")},
        {"v1 a trailing space", "PROXY TCP4 192.0.2.7 198.51.100.1 1 2 \r\n",
         malformed("v1: not four fields after the protocol, one space apart")},
        {"v1 TCP4 without fields", "PROXY TCP4 \r\n",
         malformed("v1: not four fields after the protocol, one space apart")},
        {"v1 TCP4 with an IPv6 source", "PROXY TCP4 2001:db8::7 198.51.100.1 1 2\r\n",
         malformed("v1: bad source address")},
        {"v1 TCP6 with an IPv4 source", "PROXY TCP6 192.0.2.7 2001:db8::1 1 2\r\n",
         malformed("v1: bad source address")},
        {"v1 TCP4 leading zero in the address", "PROXY TCP4 192.0.2.07 198.51.100.1 1 2\r\n",
         malformed("v1: bad source address")},
        {"v1 TCP4 address with three parts", "PROXY TCP4 192.0.2 198.51.100.1 1 2\r\n",
         malformed("v1: bad source address")},
        {"v1 TCP4 name instead of address", "PROXY TCP4 lb.test 198.51.100.1 1 2\r\n",
         malformed("v1: bad source address")},
        {"v1 TCP6 zone index", "PROXY TCP6 fe80::1%eth0 ::1 1 2\r\n", malformed("v1: bad source address")},
        {"v1 bad destination", "PROXY TCP4 192.0.2.7 198.51.100.256 1 2\r\n", malformed("v1: bad destination address")},
        {"v1 port above 65535", "PROXY TCP4 192.0.2.7 198.51.100.1 65536 2\r\n", malformed("v1: bad source port")},
        {"v1 port with a leading zero", "PROXY TCP4 192.0.2.7 198.51.100.1 025 2\r\n",
         malformed("v1: bad source port")},
        {"v1 port 00", "PROXY TCP4 192.0.2.7 198.51.100.1 00 2\r\n", malformed("v1: bad source port")},
        {"v1 port with a sign", "PROXY TCP4 192.0.2.7 198.51.100.1 +1 2\r\n", malformed("v1: bad source port")},
        {"v1 port in hex", "PROXY TCP4 192.0.2.7 198.51.100.1 0x19 2\r\n", malformed("v1: bad source port")},
        {"v1 destination port 99999", "PROXY TCP4 192.0.2.7 198.51.100.1 1 99999\r\n",
         malformed("v1: bad destination port")},
        {"v1 destination port negative", "PROXY TCP4 192.0.2.7 198.51.100.1 1 -1\r\n",
         malformed("v1: bad destination port")},
        // Version 2.
        {"v2 PROXY TCP over IPv4", v2(0x21, 0x11, k_ipv4_block), header(2, 28, "192.0.2.7", 40001, "198.51.100.1", 25)},
        {"v2 PROXY TCP over IPv6", v2(0x21, 0x21, k_ipv6_block), header(2, 52, "2001:db8::7", 65535, "2001:db8::1", 0)},
        {"v2 TLVs after the addresses are skipped", v2(0x21, 0x11, k_ipv4_block + "\x04\x00\x03"s + "abc"),
         header(2, 34, "192.0.2.7", 40001, "198.51.100.1", 25)},
        {"v2 1240 octets of addresses and TLVs", v2(0x21, 0x11, k_ipv4_block + std::string(1228, 'T')),
         header(2, 1256, "192.0.2.7", 40001, "198.51.100.1", 25)},
        {"v2 LOCAL", v2(0x20, 0x00, ""), header(2, 16)},
        {"v2 LOCAL ignores the family and its block", v2(0x20, 0x11, k_ipv4_block), header(2, 28)},
        {"v2 LOCAL with an unknown family", v2(0x20, 0x77, "abc"), header(2, 19)},
        {"v2 PROXY, family unspecified", v2(0x21, 0x00, ""), header(2, 16)},
        {"v2 PROXY over a UNIX stream", v2(0x21, 0x31, std::string(216, '\0')), header(2, 232)},
        // Version 2, malformed.
        {"v2 signature wrong in its last octet", "\r\n\r\n\0\r\nQUIT\r"s + std::string(20, '\0'),
         malformed("not a PROXY protocol header")},
        {"v2 signature cut by a line end", "\r\nQUIT\r\n", malformed("not a PROXY protocol header")},
        {"v2 version 1", v2(0x11, 0x11, k_ipv4_block), malformed("v2: version is not 2")},
        {"v2 version 3", v2(0x31, 0x11, k_ipv4_block), malformed("v2: version is not 2")},
        {"v2 command 2", v2(0x22, 0x11, k_ipv4_block), malformed("v2: command is neither LOCAL nor PROXY")},
        {"v2 command 15", v2(0x2f, 0x11, k_ipv4_block), malformed("v2: command is neither LOCAL nor PROXY")},
        {"v2 length 1241", v2(0x21, 0x11, "", 1241), malformed("v2: more than 1240 octets of addresses and TLVs")},
        {"v2 length 65535", v2(0x21, 0x11, "", 65535), malformed("v2: more than 1240 octets of addresses and TLVs")},
        {"v2 LOCAL is bounded too", v2(0x20, 0x00, "", 2000),
         malformed("v2: more than 1240 octets of addresses and TLVs")},
        {"v2 UDP over IPv4", v2(0x21, 0x12, k_ipv4_block),
         malformed("v2: family and protocol are not TCP over IPv4 or IPv6, UNIX stream or unspecified")},
        {"v2 UDP over IPv6", v2(0x21, 0x22, k_ipv6_block),
         malformed("v2: family and protocol are not TCP over IPv4 or IPv6, UNIX stream or unspecified")},
        {"v2 UNIX datagram", v2(0x21, 0x32, std::string(216, '\0')),
         malformed("v2: family and protocol are not TCP over IPv4 or IPv6, UNIX stream or unspecified")},
        {"v2 IPv4 family, unspecified protocol", v2(0x21, 0x10, k_ipv4_block),
         malformed("v2: family and protocol are not TCP over IPv4 or IPv6, UNIX stream or unspecified")},
        {"v2 family 4", v2(0x21, 0x41, k_ipv4_block),
         malformed("v2: family and protocol are not TCP over IPv4 or IPv6, UNIX stream or unspecified")},
        {"v2 IPv4 block of 11 octets", v2(0x21, 0x11, k_ipv4_block.substr(0, 11)),
         malformed("v2: address block too short for the family")},
        {"v2 IPv6 with an IPv4 block", v2(0x21, 0x21, k_ipv4_block),
         malformed("v2: address block too short for the family")},
        {"v2 UNIX block of 215 octets", v2(0x21, 0x31, std::string(215, '\0')),
         malformed("v2: address block too short for the family")},
    };
}

} // namespace

TEST_SUITE("proxy_protocol")
{
    TEST_CASE("each form, whole, with the client's octets after it")
    {
        for (const Case& c : cases()) {
            CAPTURE(c.name);
            CHECK(show(parse_proxy_header(c.input)) == c.expected);
            CHECK(show(parse_proxy_header(c.input + k_after)) == c.expected);
        }
    }

    TEST_CASE("read in chunks of every size, the answer is the same")
    {
        for (const Case& c : cases()) {
            for (std::size_t chunk = 1; chunk <= c.input.size(); ++chunk) {
                CAPTURE(c.name);
                CAPTURE(chunk);
                CHECK(show(read_in_chunks(c.input + k_after, chunk)) == c.expected);
            }
        }
    }

    TEST_CASE("every prefix of a header needs more, and never past its end")
    {
        for (const Case& c : cases()) {
            auto whole = parse_proxy_header(c.input);
            auto* h = std::get_if<ProxyHeader>(&whole);
            if (h == nullptr) {
                continue;
            }
            CHECK(h->length == c.input.size());
            for (std::size_t k = 0; k < h->length; ++k) {
                CAPTURE(c.name);
                CAPTURE(k);
                auto p = parse_proxy_header(std::string_view(c.input).substr(0, k));
                auto* more = std::get_if<ProxyNeedMore>(&p);
                REQUIRE(more != nullptr);
                CHECK(more->at_most >= 1);
                CHECK(k + more->at_most <= h->length);
            }
        }
    }

    TEST_CASE("a malformed prefix stays malformed, with the same reason")
    {
        for (const Case& c : cases()) {
            auto whole = parse_proxy_header(c.input);
            for (std::size_t k = 0; k <= c.input.size(); ++k) {
                auto p = parse_proxy_header(std::string_view(c.input).substr(0, k));
                if (!std::holds_alternative<ProxyNeedMore>(p)) {
                    CAPTURE(c.name);
                    CAPTURE(k);
                    CHECK(show(p) == show(whole));
                }
            }
        }
    }

    TEST_CASE("the first octets: a wrong one ends it at once, nothing needs up to 15")
    {
        CHECK(show(parse_proxy_header("")) == "need at most 15");
        CHECK(show(parse_proxy_header("P")) == "need at most 14");
        CHECK(show(parse_proxy_header("\r")) == "need at most 15");
        CHECK(show(parse_proxy_header("PROXY UNKNOWN\r")) == "need at most 1");
        CHECK(show(parse_proxy_header("PROXY TCP4 1.2.3.4")) == "need at most 2");
        CHECK(show(parse_proxy_header(k_signature + "\x21\x11\x00"s)) == "need at most 1");
        CHECK(show(parse_proxy_header(k_signature + "\x21\x11\x00\x0c"s)) == "need at most 12");
        CHECK(show(parse_proxy_header("G")) == malformed("not a PROXY protocol header"));
        CHECK(show(parse_proxy_header("PRX")) == malformed("not a PROXY protocol header"));
        CHECK(show(parse_proxy_header("\r\n\r\n\r")) == malformed("not a PROXY protocol header"));
    }

    TEST_CASE("read_proxy_header takes exactly the header's octets from a pipe")
    {
        std::string v2_header = v2(0x21, 0x11, k_ipv4_block + "\x04\x00\x01x"s);
        for (const std::string& h : {"PROXY TCP4 192.0.2.7 198.51.100.1 40001 25\r\n"s, v2_header}) {
            int fds[2];
            REQUIRE(::pipe(fds) == 0);
            std::string wire = h + k_after;
            REQUIRE(::write(fds[1], wire.data(), wire.size()) == static_cast<ssize_t>(wire.size()));
            ::close(fds[1]);
            ProxyRead r = read_proxy_header(fds[0], 5);
            CHECK(r.end == ProxyRead::End::header);
            CHECK(show(r.header) == header(r.header.version, h.size(), "192.0.2.7", 40001, "198.51.100.1", 25));
            char rest[64] = {};
            CHECK(std::string(rest, static_cast<std::size_t>(::read(fds[0], rest, sizeof rest))) == k_after);
            ::close(fds[0]);
        }
    }

    TEST_CASE("read_proxy_header: malformed, cut off, or too slow")
    {
        auto read_from = [](const std::string& wire, bool close_it) {
            int fds[2];
            REQUIRE(::pipe(fds) == 0);
            REQUIRE(::write(fds[1], wire.data(), wire.size()) == static_cast<ssize_t>(wire.size()));
            if (close_it) {
                ::close(fds[1]);
            }
            ProxyRead r = read_proxy_header(fds[0], 1);
            ::close(fds[0]);
            if (!close_it) {
                ::close(fds[1]);
            }
            return r;
        };
        ProxyRead bad = read_from("PROXY TCP4 192.0.2.7 198.51.100.1 1 99999\r\n", true);
        CHECK(bad.end == ProxyRead::End::malformed);
        CHECK(bad.reason == "v1: bad destination port");
        CHECK(read_from("PROXY TCP4 192.0.2.7", true).end == ProxyRead::End::eof);
        CHECK(read_from(k_signature, false).end == ProxyRead::End::timeout);
    }
}
