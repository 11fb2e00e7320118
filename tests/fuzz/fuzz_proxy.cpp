// fuzz_proxy: the PROXY protocol header parser. Invariants: the same answer
// read in chunks of any size (never more than the parser allows) as whole; a
// header is no longer than the input and its limit, and every shorter prefix
// only needs more, never past the header's end; a malformed prefix stays
// malformed for the same reason; accepted addresses parse again, and written
// as a version 1 line give the same header back.
#include "base/cidr.hpp"
#include "fuzz_check.hpp"
#include "base/limits.hpp"
#include "server/proxy_protocol.hpp"

#include <algorithm>
#include <cstdint>
#include <string>

using namespace smtpspool;

namespace {

bool same(const ProxyParse& a, const ProxyParse& b)
{
    if (a.index() != b.index()) {
        return false;
    }
    if (auto* m = std::get_if<ProxyNeedMore>(&a)) {
        return m->at_most == std::get<ProxyNeedMore>(b).at_most;
    }
    if (auto* m = std::get_if<ProxyMalformed>(&a)) {
        return m->reason == std::get<ProxyMalformed>(b).reason;
    }
    return std::get<ProxyHeader>(a) == std::get<ProxyHeader>(b);
}

ProxyParse read_in_chunks(std::string_view input, std::size_t chunk)
{
    std::size_t have = 0;
    for (;;) {
        ProxyParse p = parse_proxy_header(input.substr(0, have));
        auto* more = std::get_if<ProxyNeedMore>(&p);
        if (more == nullptr || have == input.size()) {
            return p;
        }
        FUZZ_CHECK(more->at_most >= 1);
        have += std::min({chunk, more->at_most, input.size() - have});
    }
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
    if (size < 1) {
        return 0;
    }
    std::size_t chunk = 1 + data[0] % 17;
    std::string_view in(reinterpret_cast<const char*>(data + 1), size - 1);
    ProxyParse whole = parse_proxy_header(in);
    ProxyParse parts = read_in_chunks(in, chunk);
    if (std::holds_alternative<ProxyNeedMore>(whole)) {
        FUZZ_CHECK(std::holds_alternative<ProxyNeedMore>(parts));
        auto at_most = std::get<ProxyNeedMore>(whole).at_most;
        FUZZ_CHECK(at_most >= 1 && in.size() + at_most <= limits::k_proxy_v2_fixed + limits::k_proxy_v2_max_length);
        return 0;
    }
    FUZZ_CHECK(same(whole, parts));
    if (auto* bad = std::get_if<ProxyMalformed>(&whole)) {
        FUZZ_CHECK(!bad->reason.empty());
        for (std::size_t k = 0; k < in.size(); ++k) {
            ProxyParse p = parse_proxy_header(in.substr(0, k));
            FUZZ_CHECK(std::holds_alternative<ProxyNeedMore>(p) || same(p, whole));
        }
        return 0;
    }
    const ProxyHeader& h = std::get<ProxyHeader>(whole);
    FUZZ_CHECK(h.length <= in.size());
    FUZZ_CHECK(h.version == 1 || h.version == 2);
    FUZZ_CHECK(h.length <=
               (h.version == 1 ? limits::k_proxy_v1_max : limits::k_proxy_v2_fixed + limits::k_proxy_v2_max_length));
    FUZZ_CHECK(same(parse_proxy_header(in.substr(0, h.length)), whole));
    for (std::size_t k = 0; k < h.length; ++k) {
        ProxyParse p = parse_proxy_header(in.substr(0, k));
        auto* more = std::get_if<ProxyNeedMore>(&p);
        FUZZ_CHECK(more != nullptr && more->at_most >= 1 && k + more->at_most <= h.length);
    }
    if (h.addresses) {
        const ProxyAddresses& a = *h.addresses;
        FUZZ_CHECK(parse_ip(a.source) && parse_ip(a.destination));
        bool six = a.source.find(':') != std::string::npos;
        FUZZ_CHECK(six == (a.destination.find(':') != std::string::npos));
        std::string line = std::string("PROXY ") + (six ? "TCP6 " : "TCP4 ") + a.source + " " + a.destination + " " +
                           std::to_string(a.source_port) + " " + std::to_string(a.destination_port) + "\r\n";
        ProxyParse again = parse_proxy_header(line);
        auto* g = std::get_if<ProxyHeader>(&again);
        FUZZ_CHECK(g != nullptr && g->length == line.size() && g->addresses == h.addresses);
    }
    return 0;
}
