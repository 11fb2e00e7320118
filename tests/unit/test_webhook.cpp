// Tests of the pure parts of the http transports (delivery/webhook): the URL
// and the route, the body's framing, the idempotency key, the signed string
// (checked against Python's hmac, the verifier smtpspool-runq(8) gives), the
// meaning of status codes, Retry-After, the detail of an answer; and the
// wait before the next attempt (route's next_wait).
#include "base/sha256.hpp"
#include "delivery/route.hpp"
#include "delivery/webhook.hpp"

#include <doctest/doctest.h>

using namespace smtpspool;
using namespace std::chrono_literals;

TEST_SUITE("webhook")
{
    TEST_CASE("URL: http and https, port, path and query; credentials, fragments and junk refused")
    {
        std::string why;
        auto u = parse_webhook_url("https://hooks.example/mail/in?x=1", why);
        REQUIRE(u);
        CHECK(u->https);
        CHECK(u->host == "hooks.example");
        CHECK(u->port == 443);
        CHECK(u->target == "/mail/in?x=1");
        u = parse_webhook_url("http://127.0.0.1:8080", why);
        REQUIRE(u);
        CHECK(!u->https);
        CHECK(u->port == 8080);
        CHECK(u->target == "/");
        u = parse_webhook_url("http://[::1]:81?q", why);
        REQUIRE(u);
        CHECK(u->host == "::1");
        CHECK(u->target == "/?q");
        for (const char* bad : {"http://user:pw@hooks.example/", "http://user@hooks.example/", "ftp://hooks.example/",
                                "http://hooks.example/#frag", "http://hooks example/", "http:///path",
                                "http://hooks.example:0/", "http://hooks.example:99999/", "http://a_b!/",
                                "https://hooks.example/\x7f"}) {
            CAPTURE(bad);
            CHECK(!parse_webhook_url(bad, why));
            CHECK(!why.empty());
            why.clear();
        }
        CHECK(!parse_webhook_url("http://u:hunter2@hooks.example/", why));
        CHECK(why.find("hunter2") == std::string::npos); // the refusal does not repeat it
    }

    TEST_CASE("route: the URL is the transport, by the http kind; mx and the others unchanged")
    {
        std::string why;
        auto r = parse_route("hook.test=https://hooks.example:8443/in", why);
        REQUIRE(r);
        CHECK(r->transport.kind == TransportKind::http);
        CHECK(r->transport.url == "https://hooks.example:8443/in");
        CHECK(r->transport.text == "https://hooks.example:8443/in");
        CHECK(!parse_route("hook.test=https://u:p@hooks.example/", why));
        CHECK(!parse_route("hook.test=http:hooks.example", why));
        CHECK(why.find("http://") != std::string::npos);
        CHECK(!parse_route("hook.test=gopher://x", why));
        CHECK(why.find("http or https") != std::string::npos);
    }

    TEST_CASE("the envelope part keeps only the recipients of the request, in their order")
    {
        Envelope e;
        e.id = "ID";
        for (const char* a : {"a@x.test", "b@y.test", "c@x.test"}) {
            Recipient r;
            r.address = a;
            e.recipients.push_back(r);
        }
        Envelope part = envelope_for(e, {2, 0});
        REQUIRE(part.recipients.size() == 2);
        CHECK(part.recipients[0].address == "c@x.test");
        CHECK(part.recipients[1].address == "a@x.test");
        CHECK(part.id == "ID");
    }

    TEST_CASE("idempotency key: the queue id, the node and the recipient set, whatever its order")
    {
        Envelope e;
        e.id = "20261206T091710-153891-14737-0";
        e.hostname = "node1.test";
        for (const char* a : {"b@x.test", "a@x.test", "c@x.test"}) {
            Recipient r;
            r.address = a;
            e.recipients.push_back(r);
        }
        // Python: hashlib.sha256(b"node1.test\na@x.test\nb@x.test\n").hexdigest()[:32]
        CHECK(idempotency_key(e, {0, 1}) == e.id + ".0e8b7001017d87375c6d9ce0c9e28436");
        CHECK(idempotency_key(e, {1, 0}) == idempotency_key(e, {0, 1}));
        CHECK(idempotency_key(e, {0, 2}) != idempotency_key(e, {0, 1}));
        Envelope other = e;
        other.id = "20261206T091710-153891-14737-1";
        CHECK(idempotency_key(other, {0, 1}) != idempotency_key(e, {0, 1}));
        Envelope node2 = e; // the same queue id on another node
        node2.hostname = "node2.test";
        CHECK(idempotency_key(node2, {0, 1}) != idempotency_key(e, {0, 1}));
    }

    TEST_CASE("multipart/form-data: the envelope part, then the message part, then the closing delimiter")
    {
        MultipartFrame f = multipart_frame("{}", "B");
        CHECK(f.content_type() == "multipart/form-data; boundary=B");
        CHECK(f.head == "--B\r\nContent-Disposition: form-data; name=\"envelope\"\r\nContent-Type: application/json\r\n"
                        "\r\n{}\r\n--B\r\nContent-Disposition: form-data; name=\"message\"; filename=\"message.eml\"\r\n"
                        "Content-Type: message/rfc822\r\n\r\n");
        CHECK(f.tail == "\r\n--B--\r\n");
    }

    TEST_CASE("signature: HMAC-SHA256 of 'TIMESTAMP.' and the body, as a verifier in Python computes it")
    {
        MultipartFrame f = multipart_frame("{}", "B");
        std::string body = f.head + "Subject: hi\r\n\r\nbody\r\n" + f.tail;
        CHECK(signature_prefix(1796548625) == "1796548625.");
        // Python: hmac.new(b"sekrit", b"1796548625." + body, hashlib.sha256).hexdigest()
        CHECK(signature_value(hex(hmac_sha256("sekrit", signature_prefix(1796548625) + body))) ==
              "sha256=9d70f52e67d643d1fe39da5cf67a69c1c582a97ff4bc8328649cb479008dca9e");
    }

    TEST_CASE("status codes: 2xx delivered; 408, 429, 5xx and the unexpected temporary; other 4xx permanent")
    {
        for (long s : {200L, 201L, 202L, 204L, 299L}) {
            CHECK(classify_status(s) == Outcome::delivered);
        }
        for (long s : {408L, 429L, 500L, 502L, 503L, 504L, 599L, 100L, 301L, 302L, 307L, 0L, 600L}) {
            CAPTURE(s);
            CHECK(classify_status(s) == Outcome::temporary);
        }
        for (long s : {400L, 401L, 403L, 404L, 405L, 409L, 410L, 413L, 415L, 422L, 499L}) {
            CAPTURE(s);
            CHECK(classify_status(s) == Outcome::permanent);
        }
    }

    TEST_CASE("Retry-After: delta-seconds or an IMF-fixdate, as a wait from now; anything else ignored")
    {
        const std::time_t now = 1796548625; // 2026-12-06T09:17:05Z
        CHECK(parse_retry_after("120", now) == 120s);
        CHECK(parse_retry_after(" 0 ", now) == 0s);
        CHECK(parse_retry_after("99999999999999999999999", now) == std::chrono::seconds(UINT32_MAX));
        CHECK(parse_retry_after("Sun, 06 Dec 2026 10:00:00 GMT", now) == std::chrono::seconds(1796551200 - now));
        CHECK(parse_retry_after("Sun, 06 Dec 2026 09:00:00 GMT", now) == 0s); // past
        CHECK(parse_retry_after("Tue, 29 Feb 2028 00:00:00 GMT", now) ==
              std::chrono::seconds(1835395200 - now)); // a leap day
        for (const char* bad : {"", "-5", "1.5", "soon", "Sun, 06 Dec 2026 10:00:00 UTC", "Sun, 6 Dec 2026 10:00:00 GMT",
                                "Sunday, 06-Dec-26 10:00:00 GMT", "Sun Dec  6 10:00:00 2026",
                                "Sun, 06 Foo 2026 10:00:00 GMT", "Sun, 06 Dec 2026 25:00:00 GMT"}) {
            CAPTURE(bad);
            CHECK(!parse_retry_after(bad, now));
        }
    }

    TEST_CASE("the detail: status, reason and the start of the body on one line, controls gone")
    {
        CHECK(http_detail(400, "Bad Request", "unknown mailbox\r\n  for this\tapplication\n") ==
              "HTTP 400 Bad Request: unknown mailbox for this application");
        CHECK(http_detail(500, "", "") == "HTTP 500");
        CHECK(http_detail(503, "Service Unavailable\r\n", "\x1b[31mred") == "HTTP 503 Service Unavailable: [31mred");
        std::string d = http_detail(400, "Bad Request", std::string(1000, 'x'));
        CHECK(d.size() <= std::string("HTTP 400 Bad Request: ").size() + k_webhook_body_kept);
    }

    TEST_CASE("next wait: the schedule's, longer when asked, never past the expiry")
    {
        CHECK(next_wait(30min, 0s, 5h) == 30min);
        CHECK(next_wait(30min, 10min, 5h) == 30min); // never sooner than the schedule
        CHECK(next_wait(30min, 2h, 5h) == 2h);
        CHECK(next_wait(30min, 10h, 5h) == 5h);       // clamped to the expiry
        CHECK(next_wait(30min, 10h, 10min) == 30min); // the schedule already goes past it
        CHECK(next_wait(30min, 10h, std::nullopt) == 30min);
    }
}
