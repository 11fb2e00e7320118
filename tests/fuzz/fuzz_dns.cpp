// fuzz_dns: DNS answers, which are untrusted input: the wire parser of MX, A
// and AAAA answers, and plan_mx over a resolver whose every answer is cut
// from the input. Invariants: MX hosts are usable host names (or "" for the
// root); addresses parse; ok means something was found (or, for MX, says
// why nothing usable was); parsing is the same
// twice; a plan to deliver lists at most k_max_mx_hosts hosts, each with 1 to
// k_max_host_addresses addresses, by preference, never this machine; a
// bounce or deferral carries an SMTP reply code of its class.
#include "base/cidr.hpp"
#include "delivery/mx.hpp"
#include "fuzz_check.hpp"

#include <cstdint>
#include <string>
#include <string_view>

using namespace smtpspool;

namespace {

bool usable(const std::string& host)
{
    if (host.empty()) {
        return true;
    }
    for (char c : host) {
        bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.';
        if (!ok) {
            return false;
        }
    }
    return host.size() <= 253 && host.front() != '.' && host.back() != '.' && host.find("..") == std::string::npos;
}

// Answers cut from the input: each lookup takes the next piece (pieces are
// separated by the octets "\xff\xfe").
class InputResolver final : public Resolver {
public:
    explicit InputResolver(std::string_view input) : m_rest(input) {}
    MxAnswer lookup_mx(const std::string& domain) override { return parse_mx_response(next(), domain); }
    AddressAnswer lookup_addresses(const std::string& host, std::uint16_t type) override
    {
        return parse_address_response(next(), host, type);
    }

private:
    std::string_view next()
    {
        auto cut = m_rest.find("\xff\xfe");
        std::string_view piece = m_rest.substr(0, cut);
        m_rest = cut == std::string_view::npos ? std::string_view{} : m_rest.substr(cut + 2);
        return piece;
    }
    std::string_view m_rest;
};

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
    std::string_view input(reinterpret_cast<const char*>(data), size);

    MxAnswer mx = parse_mx_response(input, "x.test");
    FUZZ_CHECK(mx.status != DnsStatus::ok || !mx.records.empty() || !mx.detail.empty());
    for (const MxRecord& r : mx.records) {
        FUZZ_CHECK(usable(r.host));
    }
    MxAnswer again = parse_mx_response(input, "X.TEST.");
    FUZZ_CHECK(again.status == mx.status && again.records == mx.records);
    for (std::uint16_t type : {k_dns_type_a, k_dns_type_aaaa}) {
        AddressAnswer a = parse_address_response(input, "x.test", type);
        FUZZ_CHECK(a.status != DnsStatus::ok || !a.addresses.empty());
        for (const std::string& address : a.addresses) {
            FUZZ_CHECK(parse_ip(address));
            FUZZ_CHECK((address.find(':') != std::string::npos) == (type == k_dns_type_aaaa));
        }
    }

    InputResolver resolver(input);
    SelfIdentity self{"self.test", {"127.0.0.1", "::1"}};
    MxPlan plan = plan_mx("x.test", resolver, self, nullptr);
    if (plan.kind == MxPlan::Kind::deliver) {
        FUZZ_CHECK(!plan.hosts.empty() && plan.hosts.size() <= k_max_mx_hosts);
        for (std::size_t i = 0; i < plan.hosts.size(); ++i) {
            const MxHost& h = plan.hosts[i];
            FUZZ_CHECK(!h.name.empty() && usable(h.name) && h.name != "self.test");
            FUZZ_CHECK(!h.addresses.empty() && h.addresses.size() <= k_max_host_addresses);
            for (const std::string& address : h.addresses) {
                FUZZ_CHECK(parse_ip(address) && parse_ip(address) != parse_ip("127.0.0.1") &&
                           parse_ip(address) != parse_ip("::1"));
            }
            FUZZ_CHECK(i == 0 || plan.hosts[i - 1].preference <= h.preference);
        }
    } else {
        FUZZ_CHECK(plan.hosts.empty() && plan.detail.size() > 4);
        FUZZ_CHECK(plan.detail[0] == (plan.kind == MxPlan::Kind::bounce ? '5' : '4'));
    }
    return 0;
}
