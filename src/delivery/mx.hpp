// mx: where mail for a domain goes (RFC 5321 §5.1, RFC 7505 null MX): DNS
// answers parsed from wire format, MX records sorted, hosts resolved through
// the Resolver port, this machine found in the list. Pure: the DNS queries
// are the port's (delivery/dns_resolver is the real one); everything that
// comes back from DNS is untrusted input.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace smtpspool {

// How a DNS query ended.
enum class DnsStatus {
    ok,       // NOERROR with records of the type asked for
    nodata,   // NOERROR, the name exists but has none of them
    nxdomain, // the name does not exist (RCODE 3)
    failed,   // SERVFAIL, REFUSED, a timeout, a malformed answer: try again later
};

inline constexpr std::uint16_t k_dns_type_a = 1;
inline constexpr std::uint16_t k_dns_type_cname = 5;
inline constexpr std::uint16_t k_dns_type_mx = 15;
inline constexpr std::uint16_t k_dns_type_aaaa = 28;

struct MxRecord {
    std::uint16_t preference = 0;
    std::string host; // lower case, no trailing dot; "" for the root (null MX)
    bool operator==(const MxRecord&) const = default;
};

struct MxAnswer {
    DnsStatus status = DnsStatus::failed;
    std::vector<MxRecord> records;
    std::string detail; // for failures: what went wrong ("SERVFAIL", "timeout")
};

struct AddressAnswer {
    DnsStatus status = DnsStatus::failed;
    std::vector<std::string> addresses; // text form, as inet_ntop writes them
    std::string detail;
};

// One DNS response (wire format, RFC 1035 §4) to a query for `name` and
// `type`: its status from the RCODE, and the RDATA of the answer records of
// that type owned by `name` or by a name a CNAME in the answer leads to
// (at most 8 CNAMEs). A response that cannot be parsed is `failed`.
struct WireAnswer {
    DnsStatus status = DnsStatus::failed;
    std::vector<std::string> rdata; // A: 4 octets, AAAA: 16, MX: preference + name, see below
    std::string detail;
};
WireAnswer parse_dns_response(std::string_view message, std::string_view name, std::uint16_t type);
// The MX records of a response (names decompressed; a record whose name is
// not a usable host name, RFC 1123 letters, digits, '-', '_' and '.', is left
// out, the root is kept as ""). Status ok with no records: there were MX
// records, none usable (detail says how many).
MxAnswer parse_mx_response(std::string_view message, std::string_view domain);
// The A (type 1) or AAAA (type 28) records of a response, as text.
AddressAnswer parse_address_response(std::string_view message, std::string_view host, std::uint16_t type);

// A DNS query, for the query id: the header, one question, and an EDNS0 OPT
// record offering 1232-octet answers (RFC 6891). "" when name is not a
// usable domain name.
std::string make_dns_query(std::string_view name, std::uint16_t type, std::uint16_t id);

// The resolver port: the DNS lookups of MX delivery.
class Resolver {
public:
    virtual ~Resolver() = default;
    virtual MxAnswer lookup_mx(const std::string& domain) = 0;
    // type: k_dns_type_a or k_dns_type_aaaa.
    virtual AddressAnswer lookup_addresses(const std::string& host, std::uint16_t type) = 0;
};

// This machine: its name (--hostname) and the addresses of its interfaces.
struct SelfIdentity {
    std::string hostname;
    std::vector<std::string> addresses;
};

struct MxHost {
    std::string name;                   // "" for an address literal
    std::uint16_t preference = 0;
    std::vector<std::string> addresses; // IPv6 first, then IPv4, as DNS gave them
    bool operator==(const MxHost&) const = default;
};

// What to do with the recipients of a domain.
struct MxPlan {
    enum class Kind { deliver, bounce, defer };
    Kind kind = Kind::defer;
    std::vector<MxHost> hosts; // deliver: in the order to try
    std::string detail;        // bounce, defer: an SMTP-style reply text ("550 5.1.2 ...")
};

// At most this many MX hosts are looked up and tried per domain (the best
// ones), and at most this many addresses per host.
inline constexpr std::size_t k_max_mx_hosts = 10;
inline constexpr std::size_t k_max_host_addresses = 8;

// RFC 5321 §5.1 for a domain (lower case) or an address literal:
// - "[192.0.2.1]" or "[IPv6:2001:db8::1]": that address, nothing looked up.
// - MX records sorted by preference, records of equal preference in the order
//   `shuffle` leaves them (random in runq, fixed in tests); a lone MX of the
//   root (RFC 7505) bounces "556 5.1.10"; MX records none of which names a
//   usable host bounce "550 5.4.4"; NXDOMAIN bounces "550 5.1.2";
//   a failed lookup defers "451 4.4.3"; no MX: the domain itself
//   (implicit MX, preference 0).
// - Each host's AAAA then A records; a host that has neither is skipped. No
//   host with an address: defer when a lookup failed, else bounce
//   "550 5.4.4" (or "550 5.1.2" for an implicit MX).
// - This machine (a host named like self.hostname, or with one of
//   self.addresses) and every host of a preference not lower than its own
//   are dropped; when that leaves nothing the mail would loop: bounce
//   "554 5.4.6".
using Shuffle = std::function<void(std::vector<MxRecord>&, std::size_t first, std::size_t last)>;
MxPlan plan_mx(const std::string& domain, Resolver& resolver, const SelfIdentity& self, const Shuffle& shuffle);

// "mx.example[192.0.2.1]:25", "[2001:db8::1]:25" (no name, or a name that
// would make it longer than limits::k_max_last_hop): the next hop as mailq
// and the envelope show it.
std::string hop_text(std::string_view host, std::string_view address, std::uint16_t port);

} // namespace smtpspool
