// Tests of envelope.json: round trip, stable key order, validation of input.
#include "base/limits.hpp"
#include "model/envelope.hpp"
#include "spool/envelope_json.hpp"

#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

using namespace smtpspool;

namespace {

Envelope sample()
{
    Envelope e;
    e.id = "20261122T023525-123456-42-0";
    e.received_at = "2026-11-22T02:35:25Z";
    e.hostname = "mx.test";
    e.client.address = "192.0.2.7";
    e.client.port = 40000;
    e.client.hostname = "client.test";
    e.client.helo = "client.test";
    e.client.protocol = "ESMTP";
    e.mail_from = "a@b.test";
    e.body = Body::eight_bit_mime;
    e.smtputf8 = true;
    e.size = 1234;
    Recipient r1;
    r1.address = "u@mx.test";
    Recipient r2;
    r2.address = "v@mx.test";
    r2.status = RecipientStatus::failed;
    r2.attempts = 3;
    r2.last_error = "550 5.1.1 no such user";
    e.recipients = {r1, r2};
    return e;
}

// The envelope as nlohmann's ordered_json pretty-prints it: the writer in
// envelope.cpp builds no tree, and must give these same octets.
std::string reference_json(const Envelope& e)
{
    using Json = nlohmann::ordered_json;
    auto opt = [](const std::optional<std::string>& s) { return s ? Json(*s) : Json(nullptr); };
    Json recipients = Json::array();
    for (const Recipient& r : e.recipients) {
        Json rc{
            {"address", r.address}, {"status", std::string(status_name(r.status))}, {"attempts", r.attempts}, {"last_error", opt(r.last_error)}};
        if (r.original) {
            rc["original"] = *r.original;
        }
        if (r.notify) {
            rc["notify"] = *r.notify;
        }
        if (r.orcpt) {
            rc["orcpt"] = *r.orcpt;
        }
        recipients.push_back(rc);
    }
    Json client{{"address", opt(e.client.address)},
                {"port", e.client.port ? Json(*e.client.port) : Json(nullptr)},
                {"hostname", opt(e.client.hostname)},
                {"ident", opt(e.client.ident)},
                {"helo", e.client.helo},
                {"protocol", e.client.protocol}};
    if (e.client.tls) {
        client["tls"] = Json{{"version", e.client.tls->version}, {"cipher", e.client.tls->cipher}};
    }
    if (e.client.auth) {
        client["auth"] = *e.client.auth;
    }
    Json tree{{"version", k_envelope_version},
              {"id", e.id},
              {"received_at", e.received_at},
              {"hostname", e.hostname},
              {"client", client},
              {"mail_from", e.mail_from},
              {"body", std::string(body_name(e.body))},
              {"smtputf8", e.smtputf8}};
    if (e.dsn_ret) {
        tree["dsn_ret"] = *e.dsn_ret;
    }
    if (e.dsn_envid) {
        tree["dsn_envid"] = *e.dsn_envid;
    }
    if (e.dsn_limited) {
        tree["dsn_limited"] = true;
    }
    tree["size"] = e.size;
    if (e.content) {
        tree["content"] = std::string(content_name(*e.content));
    }
    tree["recipients"] = recipients;
    tree["attempts"] = e.attempts;
    tree["last_attempt"] = opt(e.last_attempt);
    tree["next_attempt"] = opt(e.next_attempt);
    return tree.dump(2, ' ', false, Json::error_handler_t::replace) + "\n";
}

std::string with(std::string json, const std::string& from, const std::string& to)
{
    auto pos = json.find(from);
    REQUIRE(pos != std::string::npos);
    return json.replace(pos, from.size(), to);
}

} // namespace

TEST_SUITE("envelope")
{
    TEST_CASE("an envelope survives a round trip")
    {
        Envelope e = sample();
        auto back = envelope_from_json(envelope_to_json(e));
        REQUIRE(back.ok());
        const Envelope& b = back.value();
        CHECK(b.id == e.id);
        CHECK(b.client.address == e.client.address);
        CHECK(b.client.port == e.client.port);
        CHECK(b.client.ident == std::nullopt);
        CHECK(b.mail_from == e.mail_from);
        CHECK(b.smtputf8);
        CHECK(b.size == 1234);
        REQUIRE(b.recipients.size() == 2);
        CHECK(b.recipients[1].status == RecipientStatus::failed);
        CHECK(b.recipients[1].attempts == 3);
        CHECK(b.recipients[1].last_error == "550 5.1.1 no such user");
        CHECK(envelope_to_json(b) == envelope_to_json(e));
    }

    TEST_CASE("keys come in the documented order, version first")
    {
        std::string json = envelope_to_json(sample());
        const char* keys[] = {"\"version\"",   "\"id\"",   "\"received_at\"", "\"hostname\"", "\"client\"",
                              "\"mail_from\"", "\"body\"", "\"smtputf8\"",    "\"size\"",     "\"recipients\""};
        std::size_t last = 0;
        for (const char* k : keys) {
            auto pos = json.find(k);
            INFO(k);
            REQUIRE(pos != std::string::npos);
            CHECK(pos >= last);
            last = pos;
        }
        CHECK(json.find("\"version\": 1") != std::string::npos);
        CHECK(json.back() == '\n');
    }

    TEST_CASE("a recipient's original (aliases) is written only when set, and read back")
    {
        Envelope e = sample();
        e.recipients[1].original = "team@mx.test";
        std::string json = envelope_to_json(e);
        CHECK(json.find("\"original\"") == json.rfind("\"original\""));
        CHECK(json.find("\"original\": \"team@mx.test\"") != std::string::npos);
        auto back = envelope_from_json(json);
        REQUIRE(back);
        CHECK_FALSE(back.value().recipients[0].original);
        CHECK(back.value().recipients[1].original == "team@mx.test");
        CHECK_FALSE(envelope_from_json(with(json, "\"original\": \"team@mx.test\"", "\"original\": 7")));
        CHECK(envelope_to_json(sample()).find("original") == std::string::npos);
    }

    TEST_CASE("a recipient's last_hop is written only when set, read back, absent in older envelopes")
    {
        Envelope e = sample();
        e.recipients[0].last_hop = "mx1.example.org[192.0.2.25]:25";
        std::string json = envelope_to_json(e);
        CHECK(json.find("\"last_hop\": \"mx1.example.org[192.0.2.25]:25\"") != std::string::npos);
        CHECK(json.find("\"last_hop\"") == json.rfind("\"last_hop\""));
        auto back = envelope_from_json(json);
        REQUIRE(back);
        CHECK(back.value().recipients[0].last_hop == "mx1.example.org[192.0.2.25]:25");
        CHECK_FALSE(back.value().recipients[1].last_hop);
        CHECK(envelope_to_json(sample()).find("last_hop") == std::string::npos); // older envelopes: none
        const std::string key = "\"last_hop\": \"mx1.example.org[192.0.2.25]:25\"";
        for (const std::string& bad : std::vector<std::string>{"\"last_hop\": 7", "\"last_hop\": null", "\"last_hop\": \"\"",
                                "\"last_hop\": \"a\\u0001b\"", "\"last_hop\": \"caf\u00e9\"",
                                "\"last_hop\": \"" + std::string(limits::k_max_last_hop + 1, 'h') + "\""}) {
            INFO(bad);
            CHECK_FALSE(envelope_from_json(with(json, key, bad)));
        }
        CHECK(envelope_from_json(with(json, key, "\"last_hop\": \"" + std::string(limits::k_max_last_hop, 'h') + "\"")));
        CHECK_FALSE(envelope_from_json(with(json, key, "\"last_hop\": \"a\\\"b\"")));
        CHECK_FALSE(envelope_from_json(with(json, key, "\"last_hop\": \"a b\"")));
    }

    TEST_CASE("the client's TLS session is written only when there was one, and read back")
    {
        Envelope e = sample();
        CHECK(envelope_to_json(e).find("\"tls\"") == std::string::npos);
        e.client.tls = TlsInfo{"TLSv1.3", "TLS_AES_256_GCM_SHA384"};
        std::string json = envelope_to_json(e);
        CHECK(json == reference_json(e));
        CHECK(json.find(
                  "\"tls\": {\n      \"version\": \"TLSv1.3\",\n      \"cipher\": \"TLS_AES_256_GCM_SHA384\"\n    }") !=
              std::string::npos);
        auto back = envelope_from_json(json);
        REQUIRE(back);
        CHECK(back.value().client.tls == e.client.tls);
        CHECK_FALSE(envelope_from_json(with(json, "\"tls\": {", "\"tls\": 3, \"x\": {")));
        CHECK_FALSE(envelope_from_json(with(json, "\"cipher\"", "\"ciphers\"")));
        e.client.auth = "alice";
        json = envelope_to_json(e);
        CHECK(json == reference_json(e));
        CHECK(json.find("\n    },\n    \"auth\": \"alice\"\n  },") != std::string::npos);
        back = envelope_from_json(json);
        REQUIRE(back);
        CHECK(back.value().client.auth == "alice");
        CHECK_FALSE(envelope_from_json(with(json, "\"auth\": \"alice\"", "\"auth\": null")));
    }

    TEST_CASE("a local client has null address and port")
    {
        Envelope e = sample();
        e.client.address.reset();
        e.client.port.reset();
        std::string json = envelope_to_json(e);
        CHECK(json.find("\"address\": null") != std::string::npos);
        CHECK(envelope_from_json(json).ok());
    }

    TEST_CASE("readers reject what they cannot trust")
    {
        std::string good = envelope_to_json(sample());
        struct Row {
            std::string text;
            std::string expect;
        };
        const Row rows[] = {
            {"", "not valid JSON"},
            {"[]", "not a JSON object"},
            {with(good, "\"version\": 1", "\"version\": 2"), "unsupported envelope version"},
            {with(good, "\"mail_from\": \"a@b.test\",", ""), "missing key \"mail_from\""},
            {with(good, "\"size\": 1234", "\"size\": -5"), "\"size\""},
            {with(good, "\"id\": \"20261122T023525-123456-42-0\"", "\"id\": \"../../etc\""), "queue id"},
            {with(good, "\"status\": \"failed\"", "\"status\": \"lost\""), "\"status\""},
            {with(good, "\"body\": \"8BITMIME\"", "\"body\": 8"), "\"body\""},
            {with(good, "\"body\": \"8BITMIME\"", "\"body\": \"BINARY\""), "\"body\""},
            {with(good, "\"port\": 40000", "\"port\": 70000"), "\"port\""},
            {with(good, "\"smtputf8\": true", "\"smtputf8\": \"yes\""), "\"smtputf8\""},
        };
        for (const Row& r : rows) {
            auto e = envelope_from_json(r.text);
            INFO(r.expect);
            REQUIRE_FALSE(e.ok());
            CHECK(e.error().message.find(r.expect) != std::string::npos);
        }
    }

    TEST_CASE("body: 7BIT, 8BITMIME and BINARYMIME are read back")
    {
        for (const char* body : {"7BIT", "8BITMIME", "BINARYMIME"}) {
            Envelope e = sample();
            REQUIRE(body_from_name(body));
            e.body = *body_from_name(body);
            std::string json = envelope_to_json(e);
            CHECK(json.find(std::string("\"body\": \"") + body + "\"") != std::string::npos);
            auto back = envelope_from_json(json);
            REQUIRE(back.ok());
            CHECK(back.value().body == e.body);
        }
        CHECK_FALSE(body_from_name("8bitmime"));
        CHECK(status_from_name("failed") == RecipientStatus::failed);
        CHECK_FALSE(status_from_name("bounced"));
    }

    TEST_CASE("delivery keys: written always, optional when read, times validated")
    {
        Envelope e = sample();
        e.attempts = 2;
        e.last_attempt = "2026-11-22T03:00:00Z";
        e.next_attempt = "2026-11-22T04:00:00Z";
        std::string json = envelope_to_json(e);
        auto back = envelope_from_json(json);
        REQUIRE(back.ok());
        CHECK(back.value().attempts == 2);
        CHECK(back.value().next_attempt == "2026-11-22T04:00:00Z");
        std::string old = envelope_to_json(sample());
        auto cut = old.find(",\n  \"attempts\"");
        REQUIRE(cut != std::string::npos);
        auto legacy = envelope_from_json(old.substr(0, cut) + "\n}\n");
        REQUIRE(legacy.ok());
        CHECK(legacy.value().attempts == 0);
        CHECK(legacy.value().next_attempt == std::nullopt);
        auto bad = envelope_from_json(with(json, "2026-11-22T04:00:00Z", "tomorrow"));
        REQUIRE_FALSE(bad.ok());
        CHECK(bad.error().message.find("next_attempt") != std::string::npos);
        auto late = envelope_from_json(with(json, "2026-11-22T03:00:00Z", "4052-11-22T03:20:52Z"));
        REQUIRE_FALSE(late.ok());
        CHECK(late.error().message.find("last_attempt") != std::string::npos);
        auto arrival = envelope_from_json(with(json, e.received_at, "yesterday"));
        REQUIRE_FALSE(arrival.ok());
        CHECK(arrival.error().message.find("received_at") != std::string::npos);
    }

    TEST_CASE("invalid UTF-8 from a client does not break the writer")
    {
        Envelope e = sample();
        e.client.helo = "bad\xff";
        std::string json = envelope_to_json(e);
        CHECK(envelope_from_json(json).ok());
        CHECK(json_object_line({{"id", "a\"b"}, {"error", "bad\xff"}}) ==
              "{\"id\":\"a\\\"b\",\"error\":\"bad\xef\xbf\xbd\"}");
    }

    TEST_CASE("the envelope writer gives the octets of a pretty-printed JSON tree")
    {
        Envelope e = sample();
        CHECK(envelope_to_json(e) == reference_json(e));
        e.client = ClientInfo{};
        e.client.helo = "tab\there \"quoted\" back\\slash \x01\x1f"
                        " del\x7f";
        e.mail_from = "caf\xc3\xa9@b\xc3\xbc"
                      "cher.test";
        e.hostname = "bad\xff\xfe utf-8 \xc3";
        e.size = 18446744073709551615ULL;
        e.attempts = 7;
        e.last_attempt = "2026-11-22T03:00:00Z";
        e.recipients[1].last_error = "line\r\nbreak";
        CHECK(envelope_to_json(e) == reference_json(e));
        e.dsn_ret = "FULL";
        e.dsn_envid = "env \"1\"\\x";
        e.recipients[0].notify = std::vector<std::string>{"SUCCESS", "FAILURE", "DELAY"};
        e.recipients[0].orcpt = "rfc822;\"q\"@x.test";
        e.recipients[1].notify = std::vector<std::string>{"NEVER"};
        e.recipients[1].original = "list@mx.test";
        CHECK(envelope_to_json(e) == reference_json(e));
        e.dsn_limited = true;
        CHECK(envelope_to_json(e) == reference_json(e));
        e.content = Content::binary;
        CHECK(envelope_to_json(e) == reference_json(e));
        e.recipients.clear();
        CHECK(envelope_to_json(e) == reference_json(e));
        e.id.clear();
        e.received_at.clear();
        CHECK(envelope_to_json(e) == reference_json(e));
    }

    TEST_CASE("content: written when known, read back; absent (an older envelope) is unknown; others refused")
    {
        Envelope e = sample();
        std::string json = envelope_to_json(e);
        CHECK(json.find("\"content\"") == std::string::npos);
        auto back = envelope_from_json(json);
        REQUIRE(back.ok());
        CHECK(!back.value().content);
        for (Content c : {Content::seven_bit, Content::eight_bit, Content::binary}) {
            e.content = c;
            json = envelope_to_json(e);
            CHECK(json.find("\"size\": 1234,\n  \"content\": \"" + std::string(content_name(c)) + "\",\n") !=
                  std::string::npos);
            back = envelope_from_json(json);
            REQUIRE(back.ok());
            CHECK(back.value().content == c);
        }
        CHECK(!envelope_from_json(with(json, "\"binary\"", "\"8BIT\"")).ok());
        CHECK(!envelope_from_json(with(json, "\"binary\"", "8")).ok());
    }

    TEST_CASE("DSN keys: written only when given, read back, absent in older envelopes")
    {
        Envelope e = sample();
        std::string plain = envelope_to_json(e);
        for (const char* k : {"dsn_ret", "dsn_envid", "notify", "orcpt"}) {
            CHECK(plain.find(k) == std::string::npos);
        }
        auto old = envelope_from_json(plain);
        REQUIRE(old);
        CHECK_FALSE(old.value().dsn_ret);
        CHECK_FALSE(old.value().dsn_envid);
        CHECK_FALSE(old.value().recipients[0].notify);
        CHECK_FALSE(old.value().recipients[0].orcpt);

        e.dsn_ret = "HDRS";
        e.dsn_envid = "QQ+1=x y";
        e.recipients[0].notify = std::vector<std::string>{"SUCCESS", "DELAY"};
        e.recipients[0].orcpt = "rfc822;U+X@x.example";
        e.recipients[1].notify = std::vector<std::string>{"NEVER"};
        std::string json = envelope_to_json(e);
        CHECK(json.find("\"smtputf8\": true,\n  \"dsn_ret\": \"HDRS\",\n  \"dsn_envid\": \"QQ+1=x y\",\n  \"size\"") !=
              std::string::npos);
        CHECK(json.find("\"notify\": [\n        \"SUCCESS\",\n        \"DELAY\"\n      ],\n      \"orcpt\": "
                        "\"rfc822;U+X@x.example\"\n") != std::string::npos);
        CHECK(nlohmann::json::parse(json) == nlohmann::json::parse(envelope_to_json_line(e)));
        auto back = envelope_from_json(json);
        REQUIRE(back);
        const Envelope& b = back.value();
        CHECK(b.dsn_ret == "HDRS");
        CHECK(b.dsn_envid == "QQ+1=x y");
        CHECK(b.recipients[0].notify == std::vector<std::string>{"SUCCESS", "DELAY"});
        CHECK(b.recipients[0].orcpt == "rfc822;U+X@x.example");
        CHECK(b.recipients[1].notify == std::vector<std::string>{"NEVER"});
        CHECK_FALSE(b.recipients[1].orcpt);
        CHECK(envelope_to_json(b) == json);

        // What the reader refuses: values a session could never have written.
        CHECK_FALSE(envelope_from_json(with(json, "\"HDRS\"", "\"BODY\"")));
        CHECK_FALSE(envelope_from_json(with(json, "\"HDRS\"", "null")));
        CHECK_FALSE(envelope_from_json(with(json, "\"QQ+1=x y\"", "\"a\\r\\nb\"")));
        CHECK_FALSE(envelope_from_json(with(json, "\"QQ+1=x y\"", "\"" + std::string(101, 'x') + "\"")));
        CHECK(envelope_from_json(with(json, "\"QQ+1=x y\"", "\"" + std::string(100, 'x') + "\"")));
        CHECK_FALSE(envelope_from_json(with(json, "\"NEVER\"", "\"NEVER\", \"SUCCESS\"")));
        CHECK_FALSE(envelope_from_json(with(json, "\"NEVER\"", "\"never\"")));
        CHECK_FALSE(envelope_from_json(with(json, "[\n        \"NEVER\"\n      ]", "[]")));
        CHECK_FALSE(envelope_from_json(with(json, "[\n        \"NEVER\"\n      ]", "\"NEVER\"")));
        CHECK_FALSE(envelope_from_json(with(json, "\"DELAY\"", "\"SUCCESS\"")));
        CHECK_FALSE(envelope_from_json(with(json, "\"rfc822;U+X@x.example\"", "\"no-type\"")));
        CHECK_FALSE(envelope_from_json(with(json, "\"rfc822;U+X@x.example\"", "\"rfc822;a\\nb\"")));
        CHECK_FALSE(envelope_from_json(with(json, "\"rfc822;U+X@x.example\"", "7")));
    }

    TEST_CASE("dsn_limited: written only when true, false when absent (older envelopes), a boolean when there")
    {
        Envelope e = sample();
        std::string plain = envelope_to_json(e);
        CHECK(plain.find("dsn_limited") == std::string::npos);
        auto old = envelope_from_json(plain);
        REQUIRE(old);
        CHECK_FALSE(old.value().dsn_limited);

        e.dsn_ret = "HDRS";
        e.dsn_limited = true;
        std::string json = envelope_to_json(e);
        CHECK(json.find("\"dsn_ret\": \"HDRS\",\n  \"dsn_limited\": true,\n  \"size\"") != std::string::npos);
        CHECK(nlohmann::json::parse(json) == nlohmann::json::parse(envelope_to_json_line(e)));
        auto back = envelope_from_json(json);
        REQUIRE(back);
        CHECK(back.value().dsn_limited);
        CHECK(envelope_to_json(back.value()) == json);
        auto written_false = envelope_from_json(with(json, "\"dsn_limited\": true", "\"dsn_limited\": false"));
        REQUIRE(written_false);
        CHECK_FALSE(written_false.value().dsn_limited);
        CHECK_FALSE(envelope_from_json(with(json, "\"dsn_limited\": true", "\"dsn_limited\": \"yes\"")));
        CHECK_FALSE(envelope_from_json(with(json, "\"dsn_limited\": true", "\"dsn_limited\": null")));
        // smtputf8 stays required.
        CHECK_FALSE(envelope_from_json(with(json, "\"smtputf8\": true,", "")));
    }

    TEST_CASE("held: written only when true, last; false when absent (older envelopes); a boolean when there")
    {
        Envelope e = sample();
        std::string plain = envelope_to_json(e);
        CHECK(plain.find("held") == std::string::npos);
        REQUIRE(envelope_from_json(plain));
        CHECK_FALSE(envelope_from_json(plain).value().held);

        e.held = true;
        std::string json = envelope_to_json(e);
        CHECK(json.find("\"next_attempt\": null,\n  \"held\": true\n}") != std::string::npos);
        auto back = envelope_from_json(json);
        REQUIRE(back);
        CHECK(back.value().held);
        CHECK(envelope_to_json(back.value()) == json);
        CHECK(envelope_to_json_line(e).find("\"held\":true") != std::string::npos);
        CHECK_FALSE(envelope_from_json(with(json, "\"held\": true", "\"held\": 1")));
        CHECK_FALSE(envelope_from_json(with(json, "\"held\": true", "\"held\": null")));
    }
}
