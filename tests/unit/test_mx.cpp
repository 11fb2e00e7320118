// Tests of the mx transport's pure parts: DNS wire format parsing (hostile
// answers included), plan_mx against a scripted resolver, and MxDeliverer
// against scripted connections (no network: the SMTP client has its own tests,
// the whole path is tested in e2e t-83-mx).
#include "delivery/dns_resolver.hpp"
#include "delivery/mx.hpp"
#include "delivery/mx_deliverer.hpp"
#include "model/envelope.hpp"

#include <doctest/doctest.h>

#include <map>

using namespace smtpspool;

namespace {

std::string u16(unsigned v) { return {static_cast<char>(v >> 8), static_cast<char>(v & 0xFF)}; }

std::string wire_name(std::string_view name)
{
    std::string out;
    std::size_t start = 0;
    while (start < name.size()) {
        std::size_t dot = name.find('.', start);
        if (dot == std::string_view::npos) {
            dot = name.size();
        }
        out += static_cast<char>(dot - start);
        out += name.substr(start, dot - start);
        start = dot + 1;
    }
    return out + '\0';
}

struct Rr {
    std::string owner; // wire form
    unsigned type;
    std::string rdata;
};

// A response: header (QR, RD, RA, rcode), the question, the answers.
std::string response(unsigned rcode, const std::string& qname, unsigned qtype, const std::vector<Rr>& answers,
                     unsigned extra_flags = 0)
{
    std::string m = u16(0x1234) + u16(0x8180 | rcode | extra_flags) + u16(1) + u16(answers.size()) + u16(0) + u16(0);
    m += wire_name(qname) + u16(qtype) + u16(1);
    for (const Rr& r : answers) {
        m += r.owner + u16(r.type) + u16(1) + u16(0) + u16(60) + u16(r.rdata.size()) + r.rdata;
    }
    return m;
}

std::string mx_rdata(unsigned preference, std::string_view host) { return u16(preference) + wire_name(host); }

class ScriptedResolver final : public Resolver {
public:
    std::map<std::string, MxAnswer> mx;
    std::map<std::string, AddressAnswer> a, aaaa;
    std::vector<std::string> asked;

    MxAnswer lookup_mx(const std::string& domain) override
    {
        asked.push_back(domain + " MX");
        auto it = mx.find(domain);
        return it == mx.end() ? MxAnswer{DnsStatus::nxdomain, {}, "NXDOMAIN"} : it->second;
    }
    AddressAnswer lookup_addresses(const std::string& host, std::uint16_t type) override
    {
        bool v4 = type == k_dns_type_a;
        asked.push_back(host + (v4 ? " A" : " AAAA"));
        auto& table = v4 ? a : aaaa;
        auto it = table.find(host);
        return it == table.end() ? AddressAnswer{DnsStatus::nodata, {}, ""} : it->second;
    }
    void host(const std::string& name, std::vector<std::string> v4, std::vector<std::string> v6 = {})
    {
        if (!v4.empty()) {
            a[name] = {DnsStatus::ok, std::move(v4), ""};
        }
        if (!v6.empty()) {
            aaaa[name] = {DnsStatus::ok, std::move(v6), ""};
        }
    }
};

const SelfIdentity k_self{"relay.test", {"127.0.0.1", "::1", "192.0.2.25"}};

// Equal preferences reversed: a fixed, visible "shuffle".
const Shuffle k_reverse = [](std::vector<MxRecord>& r, std::size_t first, std::size_t last) {
    std::reverse(r.begin() + static_cast<std::ptrdiff_t>(first), r.begin() + static_cast<std::ptrdiff_t>(last));
};

std::vector<std::string> names(const MxPlan& p)
{
    std::vector<std::string> out;
    for (const MxHost& h : p.hosts) {
        out.push_back(h.name);
    }
    return out;
}

} // namespace

TEST_SUITE("mx")
{
    TEST_CASE("MX answers: names decompressed and lower-cased, preferences, CNAMEs followed")
    {
        // mx2's name points back into the question ("example.org" at offset 12 + 1 + 4 = 17... found below).
        std::string q = "Example.ORG";
        std::string head = response(0, q, 15, {});
        const std::size_t question_name = 12;
        std::string pointer = u16(0xC000 | question_name);
        std::string m = response(0, q, 15,
                                 {{pointer, 15, u16(20) + "\x03mx2" + pointer},
                                  {pointer, 15, mx_rdata(10, "MX1.example.org")},
                                  {wire_name("other.test"), 15, mx_rdata(5, "not.ours.test")}});
        MxAnswer a = parse_mx_response(m, "example.org.");
        CHECK(a.status == DnsStatus::ok);
        CHECK(a.records == std::vector<MxRecord>{{20, "mx2.example.org"}, {10, "mx1.example.org"}});

        // CNAME: alias.test -> real.test, whose MX is answered.
        std::string c = response(0, "alias.test", 15,
                                 {{wire_name("alias.test"), 5, wire_name("real.test")},
                                  {wire_name("real.test"), 15, mx_rdata(0, "mx.real.test")}});
        CHECK(parse_mx_response(c, "alias.test").records == std::vector<MxRecord>{{0, "mx.real.test"}});

        // Null MX (RFC 7505): the root is kept as "".
        std::string n = response(0, "null.test", 15, {{wire_name("null.test"), 15, u16(0) + std::string(1, '\0')}});
        CHECK(parse_mx_response(n, "null.test").records == std::vector<MxRecord>{{0, ""}});
    }

    TEST_CASE("response codes: NXDOMAIN, SERVFAIL, REFUSED, NODATA, truncation")
    {
        CHECK(parse_mx_response(response(3, "x.test", 15, {}), "x.test").status == DnsStatus::nxdomain);
        auto servfail = parse_mx_response(response(2, "x.test", 15, {}), "x.test");
        CHECK(servfail.status == DnsStatus::failed);
        CHECK(servfail.detail == "SERVFAIL");
        CHECK(parse_mx_response(response(5, "x.test", 15, {}), "x.test").detail == "REFUSED");
        CHECK(parse_mx_response(response(0, "x.test", 15, {}), "x.test").status == DnsStatus::nodata);
        CHECK(parse_mx_response(response(0, "x.test", 15, {}, 0x0200), "x.test").status == DnsStatus::failed);
        // A query (QR clear) is no answer.
        std::string query = make_dns_query("x.test", 15, 7);
        CHECK(parse_mx_response(query, "x.test").status == DnsStatus::failed);
    }

    TEST_CASE("hostile answers: bad pointers, overlong names, short records are failures, never a crash")
    {
        std::string base = response(0, "x.test", 15, {});
        std::string q = wire_name("x.test");
        // A pointer to itself, a forward pointer, a pointer past the end.
        for (std::string rdata : {u16(10) + u16(0xC000 | (12 + q.size() + 4 + q.size() + 10 + 2)),
                                  u16(10) + u16(0xC000 | 0x3FFF), u16(10) + "\x05" + "ab"}) {
            std::string m = response(0, "x.test", 15, {{q, 15, rdata}});
            auto a = parse_mx_response(m, "x.test");
            CHECK(a.status == DnsStatus::failed);
            CHECK(a.records.empty());
        }
        // A name longer than 255 octets.
        std::string longname;
        for (int i = 0; i < 5; ++i) {
            longname += std::string(1, '\x3f') + std::string(63, 'a');
        }
        longname += '\0';
        CHECK(parse_mx_response(response(0, "x.test", 15, {{q, 15, u16(1) + longname}}), "x.test").status ==
              DnsStatus::failed);
        // An RDLENGTH past the end; an answer count with no answers.
        std::string m = response(0, "x.test", 15, {{q, 15, mx_rdata(1, "a.test")}});
        m.resize(m.size() - 3);
        CHECK(parse_mx_response(m, "x.test").status == DnsStatus::failed);
        std::string lying = base;
        lying[7] = 9;
        CHECK(parse_mx_response(lying, "x.test").status == DnsStatus::failed);
        // Every prefix of a good answer parses to something or fails, and never reads past it.
        std::string good = response(0, "x.test", 15, {{q, 15, mx_rdata(1, "a.test")}, {q, 15, mx_rdata(2, "b.test")}});
        for (std::size_t n = 0; n < good.size(); ++n) {
            auto a = parse_mx_response(std::string_view(good).substr(0, n), "x.test");
            CHECK(a.status == DnsStatus::failed);
        }
        CHECK(parse_mx_response(good, "x.test").records.size() == 2);
        // Host names with octets no host name has are left out (as if absent).
        std::string odd = response(0, "x.test", 15, {{q, 15, u16(1) + "\x04" "a b." + wire_name("test")}});
        auto a = parse_mx_response(odd, "x.test");
        CHECK(a.records.empty());
        CHECK(a.status == DnsStatus::ok); // there are MX records, none usable
        CHECK(a.detail == "1 MX record(s), none naming a usable host");
    }

    TEST_CASE("address answers: A and AAAA as text; other owners and wrong sizes ignored")
    {
        std::string q = wire_name("h.test");
        std::string m = response(0, "h.test", 1,
                                 {{q, 1, std::string("\x7f\x00\x00\x02", 4)},
                                  {q, 1, std::string("\x01\x02\x03", 3)},
                                  {wire_name("else.test"), 1, std::string("\x7f\x00\x00\x09", 4)}});
        auto a = parse_address_response(m, "h.test", k_dns_type_a);
        CHECK(a.status == DnsStatus::ok);
        CHECK(a.addresses == std::vector<std::string>{"127.0.0.2"});
        std::string v6(16, '\0');
        v6[15] = 1;
        auto b = parse_address_response(response(0, "h.test", 28, {{q, 28, v6}}), "h.test", k_dns_type_aaaa);
        CHECK(b.addresses == std::vector<std::string>{"::1"});
    }

    TEST_CASE("queries: header, question, OPT; unusable names make none")
    {
        std::string q = make_dns_query("Mx.Example.ORG.", 15, 0xBEEF);
        CHECK(q.substr(0, 12) == u16(0xBEEF) + u16(0x0100) + u16(1) + u16(0) + u16(0) + u16(1));
        CHECK(q.substr(12, 16) == wire_name("mx.example.org"));
        CHECK(q.substr(28, 4) == u16(15) + u16(1));
        CHECK(q.substr(32) == std::string(1, '\0') + u16(41) + u16(1232) + u16(0) + u16(0) + u16(0));
        CHECK(make_dns_query("a..b", 15, 1).empty());
        CHECK(make_dns_query("a b.test", 15, 1).empty());
        CHECK(make_dns_query(std::string(64, 'a') + ".test", 15, 1).empty());
        CHECK(make_dns_query("", 15, 1).empty());
    }

    TEST_CASE("--dns-server values")
    {
        std::string why;
        CHECK(parse_dns_server("127.0.0.1", why) == DnsServer{"127.0.0.1", 53});
        CHECK(parse_dns_server("127.0.0.1:5353", why) == DnsServer{"127.0.0.1", 5353});
        CHECK(parse_dns_server("::1", why) == DnsServer{"::1", 53});
        CHECK(parse_dns_server("[::1]:5353", why) == DnsServer{"::1", 5353});
        for (auto bad : {"", "ns.example", "127.0.0.1:", "127.0.0.1:0", "127.0.0.1:70000", "[::1", "[::1]x",
                         "[::1]:", "1.2.3.4.5"}) {
            INFO(bad);
            CHECK_FALSE(parse_dns_server(bad, why));
        }
        CHECK(format_dns_server({"::1", 5353}) == "[::1]:5353");
        CHECK(format_dns_server({"192.0.2.1", 53}) == "192.0.2.1");
    }

    TEST_CASE("plan: sorted by preference, equal ones shuffled, AAAA before A, every host looked up")
    {
        ScriptedResolver r;
        r.mx["a.test"] = {DnsStatus::ok, {{20, "c.a.test"}, {10, "b1.a.test"}, {10, "b2.a.test"}, {30, "d.a.test"}}, ""};
        r.host("b1.a.test", {"192.0.2.1"}, {"2001:db8::1"});
        r.host("b2.a.test", {"192.0.2.2"});
        r.host("c.a.test", {"192.0.2.3"});
        r.host("d.a.test", {"192.0.2.4"});
        MxPlan p = plan_mx("a.test", r, k_self, k_reverse);
        CHECK(p.kind == MxPlan::Kind::deliver);
        CHECK(names(p) == std::vector<std::string>{"b2.a.test", "b1.a.test", "c.a.test", "d.a.test"});
        CHECK(p.hosts[1].addresses == std::vector<std::string>{"2001:db8::1", "192.0.2.1"});
        CHECK(p.hosts[0].preference == 10);
        // Without a shuffle the order of the answer is kept.
        CHECK(names(plan_mx("a.test", r, k_self, nullptr)) ==
              std::vector<std::string>{"b1.a.test", "b2.a.test", "c.a.test", "d.a.test"});
    }

    TEST_CASE("plan: no MX is the implicit MX; null MX, NXDOMAIN and failures")
    {
        ScriptedResolver r;
        r.mx["plain.test"] = {DnsStatus::nodata, {}, ""};
        r.host("plain.test", {"192.0.2.9"}, {"2001:db8::9"});
        MxPlan p = plan_mx("plain.test", r, k_self, k_reverse);
        REQUIRE(p.kind == MxPlan::Kind::deliver);
        CHECK(p.hosts == std::vector<MxHost>{{"plain.test", 0, {"2001:db8::9", "192.0.2.9"}}});

        r.mx["null.test"] = {DnsStatus::ok, {{0, ""}}, ""};
        p = plan_mx("null.test", r, k_self, k_reverse);
        CHECK(p.kind == MxPlan::Kind::bounce);
        CHECK(p.detail == "556 5.1.10 null.test accepts no mail (null MX, RFC 7505)");
        CHECK(r.asked.back() == "null.test MX"); // nothing else looked up

        p = plan_mx("gone.test", r, k_self, k_reverse);
        CHECK(p.kind == MxPlan::Kind::bounce);
        CHECK(p.detail == "550 5.1.2 domain gone.test does not exist (DNS: NXDOMAIN)");

        r.mx["broken.test"] = {DnsStatus::failed, {}, "SERVFAIL"};
        p = plan_mx("broken.test", r, k_self, k_reverse);
        CHECK(p.kind == MxPlan::Kind::defer);
        CHECK(p.detail == "451 4.4.3 cannot look up the MX records of broken.test: SERVFAIL");

        // MX records none of which is usable: an error, not the implicit MX.
        r.mx["odd.test"] = {DnsStatus::ok, {}, "2 MX record(s), none naming a usable host"};
        r.host("odd.test", {"192.0.2.9"});
        p = plan_mx("odd.test", r, k_self, k_reverse);
        CHECK(p.kind == MxPlan::Kind::bounce);
        CHECK(p.detail == "550 5.4.4 the MX records of odd.test name no usable host (2 MX record(s), none naming a "
                          "usable host)");
        r.mx["roots.test"] = {DnsStatus::ok, {{0, ""}, {0, ""}}, ""};
        CHECK(plan_mx("roots.test", r, k_self, k_reverse).detail == "550 5.4.4 the MX records of roots.test name no usable host");
        // A root record among others is dropped, the others used.
        r.mx["mixed.test"] = {DnsStatus::ok, {{0, ""}, {10, "plain.test"}}, ""};
        CHECK(names(plan_mx("mixed.test", r, k_self, k_reverse)) == std::vector<std::string>{"plain.test"});

        // No address anywhere: bounce, unless a lookup failed.
        r.mx["noaddr.test"] = {DnsStatus::nodata, {}, ""};
        p = plan_mx("noaddr.test", r, k_self, k_reverse);
        CHECK(p.kind == MxPlan::Kind::bounce);
        CHECK(p.detail == "550 5.1.2 noaddr.test has no MX, AAAA or A record");
        r.mx["hosts.test"] = {DnsStatus::ok, {{10, "nowhere.test"}}, ""};
        p = plan_mx("hosts.test", r, k_self, k_reverse);
        CHECK(p.detail == "550 5.4.4 none of the MX hosts of hosts.test has an address");
        r.a["nowhere.test"] = {DnsStatus::failed, {}, "timeout"};
        p = plan_mx("hosts.test", r, k_self, k_reverse);
        CHECK(p.kind == MxPlan::Kind::defer);
        CHECK(p.detail == "451 4.4.3 cannot look up the addresses of the mail hosts of hosts.test: nowhere.test A: "
                          "timeout");
        // A host that failed to resolve does not stop the others.
        r.mx["hosts.test"] = {DnsStatus::ok, {{10, "nowhere.test"}, {20, "plain.test"}}, ""};
        CHECK(names(plan_mx("hosts.test", r, k_self, k_reverse)) == std::vector<std::string>{"plain.test"});
    }

    TEST_CASE("plan: this machine, by name or by address, and every host not better than it, are dropped")
    {
        ScriptedResolver r;
        r.host("primary.test", {"192.0.2.10"});
        r.host("backup.test", {"192.0.2.11"});
        r.host("other.test", {"192.0.2.12"});
        r.host("relay.test", {"192.0.2.25"});
        r.host("v6self.test", {}, {"::1"});
        // We are the backup (by name): only the primary remains.
        r.mx["a.test"] = {DnsStatus::ok, {{10, "primary.test"}, {20, "RELAY.test"}, {20, "other.test"}, {30, "backup.test"}}, ""};
        r.mx["a.test"].records[1].host = "relay.test";
        CHECK(names(plan_mx("a.test", r, k_self, k_reverse)) == std::vector<std::string>{"primary.test"});
        // By address (an interface address, IPv6 too).
        r.mx["b.test"] = {DnsStatus::ok, {{10, "primary.test"}, {20, "v6self.test"}, {30, "backup.test"}}, ""};
        CHECK(names(plan_mx("b.test", r, k_self, k_reverse)) == std::vector<std::string>{"primary.test"});
        // We are the best: a loop.
        r.mx["c.test"] = {DnsStatus::ok, {{10, "relay.test"}, {20, "backup.test"}}, ""};
        MxPlan p = plan_mx("c.test", r, k_self, k_reverse);
        CHECK(p.kind == MxPlan::Kind::bounce);
        CHECK(p.detail == "554 5.4.6 mail for c.test loops back to this host: relay.test is its best mail exchanger");
        r.mx["d.test"] = {DnsStatus::ok, {{5, "v6self.test"}, {5, "backup.test"}}, ""};
        p = plan_mx("d.test", r, k_self, k_reverse);
        CHECK(p.kind == MxPlan::Kind::bounce);
        CHECK(p.detail == "554 5.4.6 mail for d.test loops back to this host: v6self.test is its best mail exchanger");
        // The implicit MX of a domain whose address is ours.
        r.mx["me.test"] = {DnsStatus::nodata, {}, ""};
        r.host("me.test", {"192.0.2.25"});
        p = plan_mx("me.test", r, k_self, k_reverse);
        CHECK(p.detail ==
              "554 5.4.6 mail for me.test loops back to this host: me.test (the domain itself, no MX) is its best mail "
              "exchanger");
        // IPv4-mapped addresses are the same address.
        r.host("mapped.test", {}, {"::ffff:192.0.2.25"});
        r.mx["e.test"] = {DnsStatus::ok, {{1, "mapped.test"}}, ""};
        CHECK(plan_mx("e.test", r, k_self, k_reverse).kind == MxPlan::Kind::bounce);
    }

    TEST_CASE("plan: address literals go to that address, nothing looked up")
    {
        ScriptedResolver r;
        MxPlan p = plan_mx("[192.0.2.7]", r, k_self, k_reverse);
        REQUIRE(p.kind == MxPlan::Kind::deliver);
        CHECK(p.hosts == std::vector<MxHost>{{"", 0, {"192.0.2.7"}}});
        p = plan_mx("[ipv6:2001:db8::7]", r, k_self, k_reverse);
        CHECK(p.hosts == std::vector<MxHost>{{"", 0, {"2001:db8::7"}}});
        CHECK(r.asked.empty());
        p = plan_mx("[127.0.0.1]", r, k_self, k_reverse);
        CHECK(p.kind == MxPlan::Kind::bounce);
        CHECK(p.detail == "554 5.4.6 mail for [127.0.0.1] loops back to this host: [127.0.0.1] is its best mail exchanger");
        CHECK(plan_mx("[999.1.1.1]", r, k_self, k_reverse).kind == MxPlan::Kind::bounce);
    }

    TEST_CASE("plan: at most k_max_mx_hosts hosts and k_max_host_addresses addresses each")
    {
        ScriptedResolver r;
        MxAnswer many{DnsStatus::ok, {}, ""};
        for (int i = 0; i < 30; ++i) {
            std::string h = "h" + std::to_string(i) + ".test";
            many.records.push_back({static_cast<std::uint16_t>(i), h});
            std::vector<std::string> v4;
            for (int k = 0; k < 20; ++k) {
                v4.push_back("192.0.2." + std::to_string(k));
            }
            r.host(h, v4);
        }
        r.mx["many.test"] = many;
        MxPlan p = plan_mx("many.test", r, k_self, k_reverse);
        CHECK(p.hosts.size() == k_max_mx_hosts);
        CHECK(p.hosts.front().addresses.size() == k_max_host_addresses);
        CHECK(r.asked.size() == 1 + 2 * k_max_mx_hosts);
    }

    TEST_CASE("hop text")
    {
        CHECK(hop_text("mx.example", "192.0.2.1", 25) == "mx.example[192.0.2.1]:25");
        CHECK(hop_text("", "2001:db8::1", 2525) == "[2001:db8::1]:2525");
        const std::string long_name = std::string(63, 'a') + "." + std::string(63, 'b') + "." + std::string(63, 'c') + ".test";
        CHECK(hop_text(long_name, "2001:db8::1", 25) == "[2001:db8::1]:25");
        CHECK(is_valid_last_hop(hop_text(long_name.substr(0, 150), "ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255", 65535)));
    }
}

namespace {

// A connection that answers from a table: address -> outcome for every recipient.
struct Scripted {
    std::map<std::string, RecipientOutcome> by_address;
    std::map<std::string, std::map<std::string, RecipientOutcome>> by_recipient; // address -> rcpt -> outcome
    std::vector<std::string> calls; // "address: rcpt,rcpt"
    std::vector<std::string> made;  // "name address" of each connection made
    int finished = 0;
};

class ScriptedConnection final : public Deliverer {
public:
    ScriptedConnection(Scripted& s, std::string address) : m_s(s), m_address(std::move(address)) {}
    std::vector<RecipientOutcome> deliver(const Delivery& d) override
    {
        std::string call = m_address + ":";
        std::vector<RecipientOutcome> out;
        for (std::size_t i : d.recipients) {
            const std::string& rcpt = d.envelope.recipients[i].address;
            call += " " + rcpt;
            auto special = m_s.by_recipient[m_address].find(rcpt);
            if (special != m_s.by_recipient[m_address].end()) {
                out.push_back(special->second);
            } else if (auto it = m_s.by_address.find(m_address); it != m_s.by_address.end()) {
                out.push_back(it->second);
            } else {
                out.push_back({Outcome::delivered, "250 ok"});
            }
        }
        m_s.calls.push_back(call);
        return out;
    }
    void finish() override { ++m_s.finished; }

private:
    Scripted& m_s;
    std::string m_address;
};

RecipientOutcome refused(const std::string& a)
{
    RecipientOutcome o{Outcome::temporary, "connection to " + a + ":25 refused"};
    o.try_next = true;
    return o;
}

Envelope envelope_to(std::vector<std::string> rcpts)
{
    Envelope e;
    e.id = "ID";
    e.hostname = "relay.test";
    e.mail_from = "a@b.test";
    for (auto& r : rcpts) {
        Recipient x;
        x.address = r;
        e.recipients.push_back(x);
    }
    return e;
}

Delivery all_of(const Envelope& e)
{
    std::vector<std::size_t> all;
    for (std::size_t i = 0; i < e.recipients.size(); ++i) {
        all.push_back(i);
    }
    return Delivery{e, [] { return Result<Fd>(Error{2, "no file"}); }, all};
}

struct MxFixture {
    Scripted s;
    ScriptedResolver* r = nullptr;
    std::unique_ptr<MxDeliverer> d;
    MxFixture()
    {
        auto resolver = std::make_unique<ScriptedResolver>();
        r = resolver.get();
        r->mx["two.test"] = {DnsStatus::ok, {{10, "mx1.two.test"}, {20, "mx2.two.test"}, {30, "mx3.two.test"}}, ""};
        r->host("mx1.two.test", {"192.0.2.1"}, {"2001:db8::1"});
        r->host("mx2.two.test", {"192.0.2.2"});
        r->host("mx3.two.test", {"192.0.2.3"});
        r->mx["null.test"] = {DnsStatus::ok, {{0, ""}}, ""};
        r->mx["broken.test"] = {DnsStatus::failed, {}, "SERVFAIL"};
        d = std::make_unique<MxDeliverer>(MxOptions{25, k_self}, std::move(resolver),
                                          [this](const std::string& name, const std::string& a, std::uint16_t port) {
                                              CHECK(port == 25);
                                              s.made.push_back(name + " " + a);
                                              return std::make_unique<ScriptedConnection>(s, a);
                                          },
                                          nullptr);
    }
};

} // namespace

TEST_SUITE("mx deliverer")
{
    TEST_CASE("every address of a host before the next host; the first that answers decides")
    {
        MxFixture f;
        f.s.by_address["2001:db8::1"] = refused("[2001:db8::1]");
        f.s.by_address["192.0.2.1"] = refused("192.0.2.1");
        Envelope e = envelope_to({"u@two.test", "v@two.test"});
        auto out = f.d->deliver(all_of(e));
        CHECK(f.s.calls == std::vector<std::string>{"2001:db8::1: u@two.test v@two.test",
                                                    "192.0.2.1: u@two.test v@two.test",
                                                    "192.0.2.2: u@two.test v@two.test"});
        REQUIRE(out.size() == 2);
        CHECK(out[0].outcome == Outcome::delivered);
        CHECK(out[0].hop == "mx2.two.test[192.0.2.2]:25");
        CHECK_FALSE(out[0].try_next);
        // The refusing addresses are not tried again in this run.
        f.s.calls.clear();
        out = f.d->deliver(all_of(e));
        CHECK(f.s.calls == std::vector<std::string>{"192.0.2.2: u@two.test v@two.test"});
        f.d->finish();
        CHECK(f.s.finished == 3);
    }

    TEST_CASE("a 5xx or 4xx to RCPT is final for that recipient; the others go on to the next host")
    {
        MxFixture f;
        f.s.by_recipient["2001:db8::1"]["u@two.test"] = {Outcome::permanent, "550 5.1.1 no such user"};
        f.s.by_recipient["2001:db8::1"]["w@two.test"] = {Outcome::temporary, "450 4.2.1 mailbox busy"};
        f.s.by_recipient["2001:db8::1"]["v@two.test"] = refused("[2001:db8::1]"); // lost before its answer
        Envelope e = envelope_to({"u@two.test", "v@two.test", "w@two.test"});
        auto out = f.d->deliver(all_of(e));
        CHECK(f.s.calls == std::vector<std::string>{"2001:db8::1: u@two.test v@two.test w@two.test",
                                                    "192.0.2.1: v@two.test"});
        CHECK(out[0].outcome == Outcome::permanent);
        CHECK(out[0].detail == "550 5.1.1 no such user");
        CHECK(out[0].hop == "mx1.two.test[2001:db8::1]:25");
        CHECK(out[1].outcome == Outcome::delivered);
        CHECK(out[1].hop == "mx1.two.test[192.0.2.1]:25");
        CHECK(out[2].outcome == Outcome::temporary);
        CHECK(out[2].detail == "450 4.2.1 mailbox busy");
    }

    TEST_CASE("every address fails: temporary with the last one's detail and hop")
    {
        MxFixture f;
        for (auto a : {"2001:db8::1", "192.0.2.1", "192.0.2.2", "192.0.2.3"}) {
            f.s.by_address[a] = refused(a);
        }
        Envelope e = envelope_to({"u@two.test"});
        auto out = f.d->deliver(all_of(e));
        CHECK(f.s.calls.size() == 4);
        CHECK(out[0].outcome == Outcome::temporary);
        CHECK(out[0].detail == "connection to 192.0.2.3:25 refused");
        CHECK(out[0].hop == "mx3.two.test[192.0.2.3]:25");
        CHECK_FALSE(out[0].try_next);
    }

    TEST_CASE("recipients are grouped by domain: one transaction per domain; plan failures bounce or defer")
    {
        MxFixture f;
        Envelope e = envelope_to({"a@two.test", "b@null.test", "c@TWO.test", "d@broken.test", "e@[192.0.2.77]"});
        e.recipients[2].address = "c@two.test"; // the envelope keeps domains in lower case
        auto out = f.d->deliver(all_of(e));
        CHECK(f.s.calls == std::vector<std::string>{"192.0.2.77: e@[192.0.2.77]", "2001:db8::1: a@two.test c@two.test"});
        CHECK(out[0].outcome == Outcome::delivered);
        CHECK(out[1].outcome == Outcome::permanent);
        CHECK(out[1].detail == "556 5.1.10 null.test accepts no mail (null MX, RFC 7505)");
        CHECK(out[1].hop.empty());
        CHECK(out[3].outcome == Outcome::temporary);
        CHECK(out[3].detail == "451 4.4.3 cannot look up the MX records of broken.test: SERVFAIL");
        CHECK(out[4].hop == "[192.0.2.77]:25");
        // The plans are kept for the run: no second MX lookup of two.test.
        auto mx_lookups = std::count(f.r->asked.begin(), f.r->asked.end(), "two.test MX");
        std::ignore = f.d->deliver(all_of(e));
        CHECK(std::count(f.r->asked.begin(), f.r->asked.end(), "two.test MX") == mx_lookups);
    }

    TEST_CASE("at most k_mx_connections_kept connections stay open")
    {
        MxFixture f;
        std::vector<std::string> rcpts;
        for (std::size_t i = 0; i < k_mx_connections_kept + 3; ++i) {
            rcpts.push_back("u@[192.0.2." + std::to_string(100 + i) + "]");
        }
        Envelope e = envelope_to(rcpts);
        std::ignore = f.d->deliver(all_of(e));
        CHECK(f.s.calls.size() == rcpts.size());
        CHECK(f.s.finished == 3); // the least recently used, closed
    }

    TEST_CASE("each connection is for the MX host name that gave its address (its TLS name); literals for none")
    {
        MxFixture f;
        f.r->mx["aonly.test"] = {DnsStatus::nodata, {}, ""};
        f.r->host("aonly.test", {"192.0.2.2"});
        f.s.by_address["2001:db8::1"] = refused("[2001:db8::1]");
        f.s.by_address["192.0.2.1"] = refused("192.0.2.1");
        Envelope e = envelope_to({"u@two.test", "v@aonly.test", "w@[192.0.2.2]"});
        std::ignore = f.d->deliver(all_of(e));
        // 192.0.2.2 under three names: three connections, one per name.
        // (Domains in their order: "[192.0.2.2]", aonly.test, two.test.)
        CHECK(f.s.made == std::vector<std::string>{" 192.0.2.2", "aonly.test 192.0.2.2", "mx1.two.test 2001:db8::1",
                                                   "mx1.two.test 192.0.2.1", "mx2.two.test 192.0.2.2"});
    }
}
