// proxy_protocol: the two header grammars, checked in the order of their
// octets, so that a prefix already decides what every longer input decides.
#include "server/proxy_protocol.hpp"

#include "base/limits.hpp"

#include <algorithm>
#include <arpa/inet.h>
#include <array>
#include <charconv>
#include <netinet/in.h>

namespace smtpspool {
namespace {

constexpr std::string_view k_v1_prefix = "PROXY ";
constexpr std::string_view k_v2_signature("\r\n\r\n\0\r\nQUIT\n", 12);
// "PROXY UNKNOWN\r\n": no valid header of either version is shorter.
constexpr std::size_t k_shortest = 15;

constexpr std::uint8_t k_command_local = 0x0;
constexpr std::uint8_t k_command_proxy = 0x1;
// The family (high nibble) and protocol (low nibble) octet of version 2.
constexpr std::uint8_t k_unspec = 0x00;
constexpr std::uint8_t k_tcp4 = 0x11;
constexpr std::uint8_t k_tcp6 = 0x21;
constexpr std::uint8_t k_unix_stream = 0x31;

ProxyMalformed not_a_header() { return {"not a PROXY protocol header"}; }

bool starts_like(std::string_view input, std::string_view prefix)
{
    std::size_t n = std::min(input.size(), prefix.size());
    return input.substr(0, n) == prefix.substr(0, n);
}

// A decimal port without leading zeros ("0" itself is one).
std::optional<std::uint16_t> v1_port(std::string_view text)
{
    if (text.empty() || text.size() > 5 || (text.size() > 1 && text[0] == '0')) {
        return std::nullopt;
    }
    unsigned n = 0;
    auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), n);
    if (ec != std::errc() || ptr != text.data() + text.size() || n > 65535) {
        return std::nullopt;
    }
    return static_cast<std::uint16_t>(n);
}

// The address in its inet_ntop(3) form, when it is one of the family.
std::optional<std::string> v1_address(int family, std::string_view text)
{
    std::array<unsigned char, sizeof(in6_addr)> binary{};
    std::array<char, INET6_ADDRSTRLEN> out{};
    if (text.size() >= INET6_ADDRSTRLEN || ::inet_pton(family, std::string(text).c_str(), binary.data()) != 1 ||
        ::inet_ntop(family, binary.data(), out.data(), out.size()) == nullptr) {
        return std::nullopt;
    }
    return std::string(out.data());
}

// "PROXY UNKNOWN[ anything]\r\n" or "PROXY TCP4|TCP6 SRC DST SPORT DPORT\r\n".
ProxyParse parse_v1(std::string_view input)
{
    if (!starts_like(input, k_v1_prefix)) {
        return not_a_header();
    }
    std::size_t lf = input.find('\n');
    if (lf == std::string_view::npos || lf >= limits::k_proxy_v1_max) {
        if (input.size() >= limits::k_proxy_v1_max) {
            return ProxyMalformed{"v1: no CRLF within 107 octets"};
        }
        // The line ends in CRLF: two octets away at least, unless a CR is last.
        std::size_t at_most = input.size() < k_shortest ? k_shortest - input.size() : input.back() == '\r' ? 1 : 2;
        return ProxyNeedMore{std::min(at_most, limits::k_proxy_v1_max - input.size())};
    }
    if (input[lf - 1] != '\r') {
        return ProxyMalformed{"v1: LF without CR"};
    }
    std::string_view body = input.substr(k_v1_prefix.size(), lf - 1 - k_v1_prefix.size());
    if (body.find('\r') != std::string_view::npos) {
        return ProxyMalformed{"v1: CR inside the line"};
    }
    ProxyHeader header{1, lf + 1, std::nullopt};
    if (body.starts_with("UNKNOWN") && (body.size() == 7 || body[7] == ' ')) {
        return header; // the rest of the line is ignored (spec §2.1)
    }
    int family = 0;
    if (body.starts_with("TCP4 ")) {
        family = AF_INET;
    } else if (body.starts_with("TCP6 ")) {
        family = AF_INET6;
    } else {
        return ProxyMalformed{"v1: protocol is not TCP4, TCP6 or UNKNOWN"};
    }
    std::array<std::string_view, 4> fields;
    std::string_view rest = body.substr(5);
    for (std::size_t i = 0; i < fields.size(); ++i) {
        std::size_t sp = rest.find(' ');
        if ((sp == std::string_view::npos) != (i + 1 == fields.size())) {
            return ProxyMalformed{"v1: not four fields after the protocol, one space apart"};
        }
        fields[i] = rest.substr(0, sp);
        rest = sp == std::string_view::npos ? std::string_view() : rest.substr(sp + 1);
    }
    auto source = v1_address(family, fields[0]);
    auto destination = v1_address(family, fields[1]);
    auto source_port = v1_port(fields[2]);
    auto destination_port = v1_port(fields[3]);
    if (!source) {
        return ProxyMalformed{"v1: bad source address"};
    }
    if (!destination) {
        return ProxyMalformed{"v1: bad destination address"};
    }
    if (!source_port) {
        return ProxyMalformed{"v1: bad source port"};
    }
    if (!destination_port) {
        return ProxyMalformed{"v1: bad destination port"};
    }
    header.addresses = ProxyAddresses{*source, *source_port, *destination, *destination_port};
    return header;
}

std::uint16_t be16(std::string_view at)
{
    return static_cast<std::uint16_t>(static_cast<unsigned char>(at[0]) << 8 | static_cast<unsigned char>(at[1]));
}

std::string v2_address(int family, std::string_view at)
{
    std::array<char, INET6_ADDRSTRLEN> out{};
    ::inet_ntop(family, at.data(), out.data(), out.size());
    return std::string(out.data());
}

// The signature, version and command, family and protocol, length (big
// endian), then the address block and TLVs (skipped).
ProxyParse parse_v2(std::string_view input)
{
    if (!starts_like(input, k_v2_signature)) {
        return not_a_header();
    }
    if (input.size() < limits::k_proxy_v2_fixed) {
        return ProxyNeedMore{limits::k_proxy_v2_fixed - input.size()};
    }
    auto version_command = static_cast<std::uint8_t>(input[12]);
    auto family = static_cast<std::uint8_t>(input[13]);
    std::size_t length = be16(input.substr(14));
    if (version_command >> 4 != 2) {
        return ProxyMalformed{"v2: version is not 2"};
    }
    std::uint8_t command = version_command & 0x0f;
    if (command != k_command_local && command != k_command_proxy) {
        return ProxyMalformed{"v2: command is neither LOCAL nor PROXY"};
    }
    if (length > limits::k_proxy_v2_max_length) {
        return ProxyMalformed{"v2: more than 1240 octets of addresses and TLVs"};
    }
    if (command == k_command_proxy) {
        std::size_t block = 0;
        switch (family) {
        case k_unspec:
            break;
        case k_tcp4:
            block = 12;
            break;
        case k_tcp6:
            block = 36;
            break;
        case k_unix_stream:
            block = 216;
            break;
        default:
            return ProxyMalformed{"v2: family and protocol are not TCP over IPv4 or IPv6, UNIX stream or unspecified"};
        }
        if (length < block) {
            return ProxyMalformed{"v2: address block too short for the family"};
        }
    }
    std::size_t total = limits::k_proxy_v2_fixed + length;
    if (input.size() < total) {
        return ProxyNeedMore{total - input.size()};
    }
    ProxyHeader header{2, total, std::nullopt};
    // LOCAL: the balancer's own connection (a health check); the family is ignored.
    std::string_view block = input.substr(limits::k_proxy_v2_fixed);
    if (command == k_command_proxy && family == k_tcp4) {
        header.addresses = ProxyAddresses{v2_address(AF_INET, block.substr(0, 4)), be16(block.substr(8)),
                                          v2_address(AF_INET, block.substr(4, 4)), be16(block.substr(10))};
    } else if (command == k_command_proxy && family == k_tcp6) {
        header.addresses = ProxyAddresses{v2_address(AF_INET6, block.substr(0, 16)), be16(block.substr(32)),
                                          v2_address(AF_INET6, block.substr(16, 16)), be16(block.substr(34))};
    }
    return header;
}

} // namespace

ProxyParse parse_proxy_header(std::string_view input)
{
    if (input.empty()) {
        return ProxyNeedMore{k_shortest};
    }
    if (input[0] == k_v1_prefix[0]) {
        return parse_v1(input);
    }
    if (input[0] == k_v2_signature[0]) {
        return parse_v2(input);
    }
    return not_a_header();
}

} // namespace smtpspool
