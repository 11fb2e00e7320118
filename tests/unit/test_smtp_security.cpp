// Tests of the SMTP client's pure TLS and AUTH parts: levels and the per-host
// policy, the credentials file, the choice of a mechanism, the PLAIN and
// LOGIN messages, the EHLO keywords they read, smtps: routes and last_tls in
// the envelope.
#include "delivery/route.hpp"
#include "delivery/smtp_client.hpp"
#include "delivery/smtp_security.hpp"
#include "smtp/auth.hpp"
#include "spool/envelope_json.hpp"

#include <doctest/doctest.h>

using namespace smtpspool;

TEST_SUITE("smtp security")
{
    TEST_CASE("TLS levels by name, and the level of a next hop")
    {
        for (auto name : {"none", "may", "encrypt", "verify"}) {
            auto level = tls_level_from_name(name);
            REQUIRE(level);
            CHECK(tls_level_name(*level) == name);
        }
        CHECK_FALSE(tls_level_from_name("dane"));
        CHECK_FALSE(tls_level_from_name("MAY"));
        CHECK_FALSE(tls_level_from_name(""));

        std::string why;
        std::vector<TlsPolicyEntry> policy;
        for (auto text : {"Relay.Example=verify", "[::1]=encrypt", "192.0.2.1=none", "2001:db8::1=verify"}) {
            INFO(text);
            auto e = parse_tls_policy_entry(text, why);
            REQUIRE(e);
            policy.push_back(*e);
        }
        CHECK(policy[0].host == "relay.example");
        CHECK(policy[1].host == "::1");
        CHECK(policy[3].host == "2001:db8::1");
        CHECK(tls_level_for("relay.example", TlsLevel::may, policy) == TlsLevel::verify);
        CHECK(tls_level_for("RELAY.example", TlsLevel::may, policy) == TlsLevel::verify);
        CHECK(tls_level_for("[::1]", TlsLevel::may, policy) == TlsLevel::encrypt);
        CHECK(tls_level_for("::1", TlsLevel::may, policy) == TlsLevel::encrypt);
        CHECK(tls_level_for("192.0.2.1", TlsLevel::verify, policy) == TlsLevel::none);
        // Not a suffix match: a subdomain is another host.
        CHECK(tls_level_for("mx.relay.example", TlsLevel::may, policy) == TlsLevel::may);
        CHECK(tls_level_for("other.example", TlsLevel::encrypt, policy) == TlsLevel::encrypt);
        for (auto bad : {"relay.example", "relay.example=", "relay.example=strict", "=verify", "host name=may",
                         "relay.example:25=verify", "[relay]=may"}) {
            INFO(bad);
            CHECK_FALSE(parse_tls_policy_entry(bad, why));
            CHECK_FALSE(why.empty());
        }
    }

    TEST_CASE("the credentials file")
    {
        auto r = parse_auth_file("# smarthosts\n"
                                 "\n"
                                 "   # indented comment\n"
                                 "Relay.Example:587 alice:pa:ss:word\n"
                                 "relay.example bob:with space \r\n"
                                 "[::1]:25\tcarol:x\n"
                                 "127.0.0.1 dave:y");
        REQUIRE(r);
        const auto& e = r.value();
        REQUIRE(e.size() == 4);
        CHECK(e[0].host == "relay.example");
        CHECK(e[0].port == 587);
        CHECK(e[0].user == "alice");
        CHECK(e[0].password == "pa:ss:word"); // the password may hold colons
        CHECK(e[0].line == 4);
        CHECK(e[1].port == 0);
        CHECK(e[1].user == "bob");
        CHECK(e[1].password == "with space "); // the rest of the line, CR dropped
        CHECK(e[2].host == "::1");
        CHECK(e[2].port == 25);
        CHECK(e[3].password == "y"); // no final line end

        // Host and port first, then the host's entry for any port.
        CHECK(find_credentials(e, "relay.example", 587)->user == "alice");
        CHECK(find_credentials(e, "RELAY.EXAMPLE", 25)->user == "bob");
        CHECK(find_credentials(e, "[::1]", 25)->user == "carol");
        CHECK(find_credentials(e, "::1", 26) == nullptr);
        CHECK(find_credentials(e, "other.example", 25) == nullptr);
        CHECK(find_credentials({}, "relay.example", 25) == nullptr);

        struct Bad {
            const char* text;
            const char* why;
        };
        for (Bad bad : {Bad{"relay.example\n", "line 1: expected HOST[:PORT] USER:PASSWORD"},
                        Bad{"# c\nrelay.example alice\n", "line 2: expected USER:PASSWORD after the host"},
                        Bad{"relay.example :secret\n", "line 1: an empty user or password"},
                        Bad{"relay.example alice:\n", "line 1: an empty user or password"},
                        Bad{"relay.example:x alice:secret\n", "line 1: the host: bad port 'x'"},
                        Bad{"host_name alice:secret\n", "line 1: the host: not a host name or address"},
                        Bad{std::string_view("r.example alice:se\0cret\n", 24).data(), ""},
                        Bad{"r.example alice:se\x01" "cret\n", "line 1: a control character in the user or password"},
                        Bad{"r.example a:b\nR.example a:c\n", "line 2: the same host and port as line 1"}}) {
            INFO(bad.text);
            auto p = parse_auth_file(bad.text);
            if (*bad.why == '\0') {
                continue; // the NUL case is below (a C string stops at it)
            }
            REQUIRE_FALSE(p);
            CHECK(p.error().message == bad.why);
            CHECK(p.error().message.find("secret") == std::string::npos); // never the password
        }
        auto nul = parse_auth_file(std::string_view("r.example alice:se\0cret\n", 24));
        REQUIRE_FALSE(nul);
        CHECK(nul.error().message == "line 1: a control character in the user or password");
    }

    TEST_CASE("the mechanism: PLAIN, else LOGIN, from the EHLO reply")
    {
        ServerReply ehlo{250, {"relay.example", "PIPELINING", "AUTH LOGIN CRAM-MD5 plain", "AUTH=LOGIN", "STARTTLS"}};
        EhloFeatures f = parse_ehlo(ehlo);
        CHECK(f.starttls);
        CHECK(f.auth == std::vector<std::string>{"LOGIN", "CRAM-MD5", "PLAIN"});
        CHECK(choose_auth_mechanism(f.auth) == AuthMechanism::plain);
        CHECK(choose_auth_mechanism({"CRAM-MD5", "LOGIN"}) == AuthMechanism::login);
        CHECK(choose_auth_mechanism({"CRAM-MD5", "XOAUTH2"}) == AuthMechanism::none);
        CHECK(choose_auth_mechanism({}) == AuthMechanism::none);
        // The greeting line is no keyword; AUTHX is not AUTH.
        EhloFeatures g = parse_ehlo(ServerReply{250, {"AUTH PLAIN", "AUTHX PLAIN", "8BITMIME"}});
        CHECK_FALSE(g.starttls);
        CHECK(g.auth.empty());
    }

    TEST_CASE("the PLAIN and LOGIN messages")
    {
        std::string plain = auth_plain_command("alice", "pa:ss word");
        REQUIRE(plain.starts_with("AUTH PLAIN "));
        REQUIRE(plain.ends_with("\r\n"));
        auto decoded = base64_decode(plain.substr(11, plain.size() - 13));
        REQUIRE(decoded);
        CHECK(*decoded == std::string("\0alice\0pa:ss word", 17));
        CHECK(auth_login_answer("alice") == "YWxpY2U=\r\n");
    }

    TEST_CASE("loopback addresses: credentials may go there in clear text")
    {
        for (auto yes : {"127.0.0.1", "127.1.2.3", "::1", "::ffff:127.0.0.1"}) {
            INFO(yes);
            CHECK(is_loopback_address(yes));
        }
        for (auto no : {"128.0.0.1", "10.0.0.1", "::2", "::", "localhost", "", "::ffff:10.0.0.1", "fe80::1"}) {
            INFO(no);
            CHECK_FALSE(is_loopback_address(no));
        }
    }

    TEST_CASE("smtps: routes: implicit TLS, port 465 by default")
    {
        std::string why;
        auto s = parse_transport("smtps:relay.example", why);
        REQUIRE(s);
        CHECK(s->kind == TransportKind::smtp);
        CHECK(s->tls_on_connect);
        CHECK(s->port == 465);
        CHECK(parse_transport("smtps:[::1]:4650", why)->port == 4650);
        CHECK_FALSE(parse_transport("smtp:relay.example", why)->tls_on_connect);
        CHECK(parse_transport("smtp:relay.example", why)->port == 25);
        CHECK_FALSE(parse_transport("smtps:", why));
        CHECK(parse_route("*=smtps:relay.example:465", why)->transport.text == "smtps:relay.example:465");
    }

    TEST_CASE("last_tls in the envelope: written, read, checked")
    {
        Envelope e;
        e.id = "x1";
        e.received_at = "2026-01-01T00:00:00Z";
        e.hostname = "h.test";
        e.client.helo = "c.test";
        Recipient r;
        r.address = "a@b.test";
        r.last_tls = DeliveryTls{"TLSv1.3", "TLS_AES_256_GCM_SHA384", true};
        e.recipients = {r, r};
        e.recipients[1].last_tls.reset();
        std::string json = envelope_to_json(e);
        CHECK(json.find("\"last_tls\"") != std::string::npos);
        auto back = envelope_from_json(json);
        REQUIRE(back);
        CHECK(back.value().recipients[0].last_tls == r.last_tls);
        CHECK_FALSE(back.value().recipients[1].last_tls);

        for (auto bad : {R"("last_tls": {"version": "TLSv1.3", "cipher": "x"})",
                         R"("last_tls": {"version": "TLSv1.3\u001b[31m", "cipher": "x", "verified": true})",
                         R"("last_tls": "TLSv1.3")"}) {
            INFO(bad);
            std::string damaged = json;
            auto at = damaged.find("\"last_tls\"");
            auto end = damaged.find('}', at) + 1;
            damaged.replace(at, end - at, bad);
            CHECK_FALSE(envelope_from_json(damaged));
        }
        std::string longer = json;
        longer.replace(longer.find("TLS_AES_256_GCM_SHA384"), 22, std::string(65, 'C'));
        CHECK_FALSE(envelope_from_json(longer));
    }
}
