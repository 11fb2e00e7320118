// mx: DNS wire format (RFC 1035 §4.1, name compression §4.1.4), MX sorting
// and the choice of hosts (RFC 5321 §5.1, RFC 7505).
#include "delivery/mx.hpp"

#include "base/cidr.hpp"
#include "base/limits.hpp"
#include "smtp/smtp_address.hpp"

#include <algorithm>
#include <arpa/inet.h>
#include <netinet/in.h>

namespace smtpspool {
namespace {

inline constexpr std::size_t k_header_size = 12;
inline constexpr std::size_t k_max_name_octets = 255; // RFC 1035 §3.1, on the wire
inline constexpr int k_max_cnames = 8;
inline constexpr std::uint16_t k_class_in = 1;

std::uint16_t get16(std::string_view m, std::size_t pos)
{
    return static_cast<std::uint16_t>((static_cast<unsigned char>(m[pos]) << 8) | static_cast<unsigned char>(m[pos + 1]));
}

bool host_octet(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
}

// Reads the name at pos (advancing pos past it, where it is in the record),
// following compression pointers, which must point backwards. The text is
// lower case, labels joined by '.', no trailing dot ("" for the root); an
// octet that is not a letter, digit, '-' or '_' is written as \DDD, so two
// different names never have the same text.
std::optional<std::string> read_name(std::string_view m, std::size_t& pos)
{
    std::string out;
    std::size_t at = pos;
    std::size_t wire = 0;
    bool jumped = false;
    for (int hops = 0;; ) {
        if (at >= m.size()) {
            return std::nullopt;
        }
        auto len = static_cast<unsigned char>(m[at]);
        if (len == 0) {
            if (!jumped) {
                pos = at + 1;
            }
            return out;
        }
        if ((len & 0xC0) == 0xC0) {
            if (at + 1 >= m.size()) {
                return std::nullopt;
            }
            std::size_t target = get16(m, at) & 0x3FFF;
            if (target >= at || ++hops > 64) {
                return std::nullopt; // forward or looping pointers
            }
            if (!jumped) {
                pos = at + 2;
                jumped = true;
            }
            at = target;
            continue;
        }
        if ((len & 0xC0) != 0) {
            return std::nullopt; // reserved label types (RFC 6891 §5)
        }
        wire += len + 1;
        if (wire + 1 > k_max_name_octets || at + 1 + len > m.size()) {
            return std::nullopt;
        }
        if (!out.empty()) {
            out += '.';
        }
        for (std::size_t i = at + 1; i <= at + len; ++i) {
            auto c = static_cast<unsigned char>(m[i]);
            if (c >= 'A' && c <= 'Z') {
                c = static_cast<unsigned char>(c - 'A' + 'a');
            }
            if (host_octet(c)) {
                out += static_cast<char>(c);
            } else {
                out += '\\';
                out += static_cast<char>('0' + c / 100);
                out += static_cast<char>('0' + c / 10 % 10);
                out += static_cast<char>('0' + c % 10);
            }
        }
        at += 1 + len;
    }
}

// A name as it is compared: lower case, no trailing dot.
std::string comparable(std::string_view name)
{
    std::string out = ascii_lower(name);
    if (!out.empty() && out.back() == '.') {
        out.pop_back();
    }
    return out;
}

// RFC 1123 §2.1 host names, with '_' too: labels of letters, digits, '-', '_'.
bool usable_host(std::string_view name)
{
    if (name.empty() || name.size() > 253) {
        return false;
    }
    std::size_t label = 0;
    for (char c : name) {
        if (c == '.') {
            if (label == 0) {
                return false;
            }
            label = 0;
            continue;
        }
        if (!host_octet(static_cast<unsigned char>(c)) || ++label > 63) {
            return false;
        }
    }
    return label != 0;
}

struct RawRecord {
    std::string owner;
    std::uint16_t type = 0;
    std::size_t rdata = 0; // offset in the message
    std::size_t length = 0;
};

std::string ip_text(std::string_view rdata)
{
    char buf[INET6_ADDRSTRLEN] = {};
    int family = rdata.size() == 4 ? AF_INET : AF_INET6;
    if (::inet_ntop(family, rdata.data(), buf, sizeof buf) == nullptr) {
        return "";
    }
    return buf;
}

bool is_self(const MxHost& host, const SelfIdentity& self)
{
    if (!host.name.empty() && host.name == comparable(self.hostname)) {
        return true;
    }
    for (const std::string& a : host.addresses) {
        auto ip = parse_ip(a);
        for (const std::string& s : self.addresses) {
            if (ip && ip == parse_ip(s)) {
                return true;
            }
        }
    }
    return false;
}

MxPlan bounce(std::string detail) { return {MxPlan::Kind::bounce, {}, std::move(detail)}; }
MxPlan defer(std::string detail) { return {MxPlan::Kind::defer, {}, std::move(detail)}; }

std::string loop_detail(const std::string& domain, const MxHost& self_host, bool implicit)
{
    std::string who = self_host.name.empty() ? "[" + self_host.addresses.front() + "]" : self_host.name;
    return "554 5.4.6 mail for " + domain + " loops back to this host: " + who +
           (implicit ? " (the domain itself, no MX)" : "") + " is its best mail exchanger";
}

} // namespace

WireAnswer parse_dns_response(std::string_view m, std::string_view name, std::uint16_t type)
{
    WireAnswer out;
    if (m.size() < k_header_size) {
        out.detail = "malformed DNS answer: too short";
        return out;
    }
    const std::uint16_t flags = get16(m, 2);
    if ((flags & 0x8000) == 0) {
        out.detail = "malformed DNS answer: not a response";
        return out;
    }
    if ((flags & 0x0200) != 0) {
        out.detail = "truncated DNS answer";
        return out;
    }
    switch (flags & 0x000F) {
    case 0:
        break;
    case 3:
        out.status = DnsStatus::nxdomain;
        out.detail = "NXDOMAIN";
        return out;
    case 2:
        out.detail = "SERVFAIL";
        return out;
    case 5:
        out.detail = "REFUSED";
        return out;
    default:
        out.detail = "DNS error (RCODE " + std::to_string(flags & 0x000F) + ")";
        return out;
    }
    const std::uint16_t questions = get16(m, 4);
    const std::uint16_t answers = get16(m, 6);
    std::size_t pos = k_header_size;
    for (std::uint16_t q = 0; q < questions; ++q) {
        if (!read_name(m, pos) || pos + 4 > m.size()) {
            out.detail = "malformed DNS answer: question";
            return out;
        }
        pos += 4;
    }
    std::vector<RawRecord> records;
    for (std::uint16_t a = 0; a < answers; ++a) {
        auto owner = read_name(m, pos);
        if (!owner || pos + 10 > m.size()) {
            out.detail = "malformed DNS answer: record";
            return out;
        }
        RawRecord r{*owner, get16(m, pos), pos + 10, get16(m, pos + 8)};
        const std::uint16_t klass = get16(m, pos + 2);
        pos += 10;
        if (r.length > m.size() - pos) {
            out.detail = "malformed DNS answer: record data";
            return out;
        }
        pos += r.length;
        if (klass == k_class_in) {
            records.push_back(std::move(r));
        }
    }
    // The names that stand for `name`: itself and where its CNAMEs lead.
    std::vector<std::string> names{comparable(name)};
    for (int step = 0; step < k_max_cnames; ++step) {
        auto cname = std::find_if(records.begin(), records.end(), [&](const RawRecord& r) {
            return r.type == k_dns_type_cname && r.owner == names.back();
        });
        if (cname == records.end()) {
            break;
        }
        std::size_t at = cname->rdata;
        auto target = read_name(m, at);
        if (!target || at != cname->rdata + cname->length) {
            out.detail = "malformed DNS answer: CNAME";
            return out;
        }
        if (std::find(names.begin(), names.end(), *target) != names.end()) {
            break;
        }
        names.push_back(*target);
    }
    for (const RawRecord& r : records) {
        if (r.type != type || std::find(names.begin(), names.end(), r.owner) == names.end()) {
            continue;
        }
        if (type == k_dns_type_mx) {
            std::size_t at = r.rdata + 2;
            auto host = r.length >= 3 ? read_name(m, at) : std::nullopt;
            if (!host || at != r.rdata + r.length) {
                out.detail = "malformed DNS answer: MX record";
                return out;
            }
            out.rdata.push_back(std::string(m.substr(r.rdata, 2)) + *host);
        } else {
            out.rdata.emplace_back(m.substr(r.rdata, r.length));
        }
    }
    out.status = out.rdata.empty() ? DnsStatus::nodata : DnsStatus::ok;
    return out;
}

MxAnswer parse_mx_response(std::string_view message, std::string_view domain)
{
    WireAnswer wire = parse_dns_response(message, domain, k_dns_type_mx);
    MxAnswer out{wire.status, {}, wire.detail};
    std::size_t unusable = 0;
    for (const std::string& rdata : wire.rdata) {
        MxRecord r{get16(rdata, 0), rdata.substr(2)};
        if (!r.host.empty() && !usable_host(r.host)) {
            ++unusable;
            continue;
        }
        out.records.push_back(std::move(r));
    }
    if (out.status == DnsStatus::ok && out.records.empty()) {
        out.detail = std::to_string(unusable) + " MX record(s), none naming a usable host";
    }
    return out;
}

AddressAnswer parse_address_response(std::string_view message, std::string_view host, std::uint16_t type)
{
    WireAnswer wire = parse_dns_response(message, host, type);
    AddressAnswer out{wire.status, {}, wire.detail};
    const std::size_t size = type == k_dns_type_a ? 4 : 16;
    for (const std::string& rdata : wire.rdata) {
        if (rdata.size() == size) {
            if (std::string ip = ip_text(rdata); !ip.empty()) {
                out.addresses.push_back(std::move(ip));
            }
        }
    }
    if (out.status == DnsStatus::ok && out.addresses.empty()) {
        out.status = DnsStatus::nodata;
    }
    return out;
}

std::string make_dns_query(std::string_view name, std::uint16_t type, std::uint16_t id)
{
    std::string n = comparable(name);
    if (!usable_host(n)) {
        return "";
    }
    auto put16 = [](std::string& s, std::uint16_t v) {
        s += static_cast<char>(v >> 8);
        s += static_cast<char>(v & 0xFF);
    };
    std::string q;
    put16(q, id);
    put16(q, 0x0100); // RD
    put16(q, 1);      // QDCOUNT
    put16(q, 0);
    put16(q, 0);
    put16(q, 1); // ARCOUNT: the OPT record
    std::size_t start = 0;
    while (start <= n.size()) {
        std::size_t dot = n.find('.', start);
        if (dot == std::string::npos) {
            dot = n.size();
        }
        q += static_cast<char>(dot - start);
        q.append(n, start, dot - start);
        start = dot + 1;
    }
    q += '\0';
    put16(q, type);
    put16(q, k_class_in);
    q += '\0';      // OPT: the root
    put16(q, 41);   // TYPE OPT
    put16(q, 1232); // our UDP payload size
    put16(q, 0);    // extended RCODE, version
    put16(q, 0);    // flags
    put16(q, 0);    // RDLENGTH
    return q;
}

MxPlan plan_mx(const std::string& domain, Resolver& resolver, const SelfIdentity& self, const Shuffle& shuffle)
{
    if (!domain.empty() && domain.front() == '[') {
        std::string inner = domain.substr(1, domain.size() >= 2 ? domain.size() - 2 : 0);
        if (inner.size() > 5 && ascii_lower(inner.substr(0, 5)) == "ipv6:") {
            inner = inner.substr(5);
        }
        if (domain.back() != ']' || !parse_ip(inner)) {
            return bounce("553 5.1.2 " + domain + " is not an address literal");
        }
        MxHost host{"", 0, {inner}};
        if (is_self(host, self)) {
            return bounce(loop_detail(domain, host, false));
        }
        return {MxPlan::Kind::deliver, {host}, ""};
    }
    MxAnswer mx = resolver.lookup_mx(domain);
    if (mx.status == DnsStatus::nxdomain) {
        return bounce("550 5.1.2 domain " + domain + " does not exist (DNS: NXDOMAIN)");
    }
    if (mx.status == DnsStatus::failed) {
        return defer("451 4.4.3 cannot look up the MX records of " + domain + ": " + mx.detail);
    }
    const bool implicit = mx.status == DnsStatus::nodata;
    std::vector<MxRecord> records;
    if (implicit) {
        records.push_back({0, comparable(domain)});
    } else {
        if (mx.records.size() == 1 && mx.records.front().host.empty()) {
            return bounce("556 5.1.10 " + domain + " accepts no mail (null MX, RFC 7505)");
        }
        for (const MxRecord& r : mx.records) {
            if (!r.host.empty()) {
                records.push_back(r);
            }
        }
        if (records.empty()) {
            // RFC 5321 §5.1: MX records none of which is usable are an error,
            // not a reason to use the domain's own address.
            return bounce("550 5.4.4 the MX records of " + domain + " name no usable host" +
                          (mx.detail.empty() ? "" : " (" + mx.detail + ")"));
        }
        std::stable_sort(records.begin(), records.end(),
                         [](const MxRecord& a, const MxRecord& b) { return a.preference < b.preference; });
        for (std::size_t first = 0; first < records.size();) {
            std::size_t last = first;
            while (last < records.size() && records[last].preference == records[first].preference) {
                ++last;
            }
            if (last - first > 1 && shuffle) {
                shuffle(records, first, last);
            }
            first = last;
        }
    }
    // This machine by name needs no lookup: what ranks at or below it is dropped first.
    std::optional<std::uint16_t> self_preference;
    std::optional<MxHost> self_host;
    for (const MxRecord& r : records) {
        if (r.host == comparable(self.hostname) && (!self_preference || r.preference < *self_preference)) {
            self_preference = r.preference;
            self_host = MxHost{r.host, r.preference, {}};
        }
    }
    std::vector<MxHost> hosts;
    std::string failure;
    for (const MxRecord& r : records) {
        if (hosts.size() == k_max_mx_hosts || (self_preference && r.preference >= *self_preference)) {
            break;
        }
        MxHost host{r.host, r.preference, {}};
        for (std::uint16_t type : {k_dns_type_aaaa, k_dns_type_a}) {
            AddressAnswer a = resolver.lookup_addresses(r.host, type);
            if (a.status == DnsStatus::failed && failure.empty()) {
                failure = r.host + (type == k_dns_type_a ? " A: " : " AAAA: ") + a.detail;
            }
            for (std::string& address : a.addresses) {
                if (host.addresses.size() < k_max_host_addresses &&
                    std::find(host.addresses.begin(), host.addresses.end(), address) == host.addresses.end()) {
                    host.addresses.push_back(std::move(address));
                }
            }
        }
        if (is_self(host, self) && (!self_preference || r.preference < *self_preference)) {
            self_preference = r.preference;
            self_host = host;
        }
        hosts.push_back(std::move(host));
    }
    if (self_preference) {
        std::erase_if(hosts, [&](const MxHost& h) { return h.preference >= *self_preference; });
        if (hosts.empty()) {
            return bounce(loop_detail(domain, *self_host, implicit));
        }
    }
    std::erase_if(hosts, [](const MxHost& h) { return h.addresses.empty(); });
    if (hosts.empty()) {
        if (!failure.empty()) {
            return defer("451 4.4.3 cannot look up the addresses of the mail hosts of " + domain + ": " + failure);
        }
        return bounce(implicit ? "550 5.1.2 " + domain + " has no MX, AAAA or A record"
                               : "550 5.4.4 none of the MX hosts of " + domain + " has an address");
    }
    return {MxPlan::Kind::deliver, std::move(hosts), ""};
}

std::string hop_text(std::string_view host, std::string_view address, std::uint16_t port)
{
    std::string tail = "[" + std::string(address) + "]:" + std::to_string(port);
    if (host.size() + tail.size() > limits::k_max_last_hop) {
        return tail; // the envelope keeps no longer hop: the address is what matters
    }
    return std::string(host) + tail;
}

} // namespace smtpspool
