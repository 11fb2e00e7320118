// Tests of routes, transports specs, schedules and durations.
#include "base/clock.hpp"
#include "delivery/route.hpp"

#include <doctest/doctest.h>

using namespace smtpspool;
using namespace std::chrono_literals;

TEST_SUITE("route")
{
    TEST_CASE("transport specs")
    {
        std::string why;
        auto s = parse_transport("smtp:mx.example:2525", why);
        REQUIRE(s);
        CHECK(s->kind == TransportKind::smtp);
        CHECK(s->host == "mx.example");
        CHECK(s->port == 2525);
        CHECK(parse_transport("smtp:mx.example", why)->port == 25);
        auto v6 = parse_transport("smtp:[::1]:26", why);
        REQUIRE(v6);
        CHECK(v6->host == "::1");
        CHECK(v6->port == 26);
        auto mx = parse_transport("mx", why);
        REQUIRE(mx);
        CHECK(mx->kind == TransportKind::mx);
        CHECK(mx->text == "mx");
        CHECK_FALSE(parse_transport("mx:", why));
        CHECK_FALSE(parse_transport("mx:2525", why));
        CHECK(why == "mx takes no argument (its port is --mx-port)");
        CHECK(parse_transport("maildir:/var/mail/%d/%u", why)->path == "/var/mail/%d/%u");
        CHECK(parse_transport("pipe:/usr/bin/procmail -d \"$LOCAL\"", why)->command == "/usr/bin/procmail -d \"$LOCAL\"");
        for (auto bad : {"smtp:host name", "smtp:::1", "smtp:::1:25", "smtp:[host]:25", "smtp:[]", "smtp:host:0",
                         "smtp:host:70000", "smtp:host:x", "smtp:[::1", "maildir:relative", "pipe:", "lmtp:x",
                         "nothing"}) {
            INFO(bad);
            CHECK_FALSE(parse_transport(bad, why));
            CHECK_FALSE(why.empty());
        }
    }

    TEST_CASE("amqp transport specs")
    {
        std::string why;
        auto a = parse_transport("amqp://mailer@mq.example:5673/mail%2Fprod?exchange=in&routing_key=smtp.new", why);
        REQUIRE(a);
        CHECK(a->kind == TransportKind::amqp);
        CHECK(a->user == "mailer");
        CHECK(a->host == "mq.example");
        CHECK(a->port == 5673);
        CHECK(a->vhost == "mail/prod");
        CHECK(a->exchange == "in");
        CHECK(a->routing_key == "smtp.new");
        auto d = parse_transport("amqp://[::1]", why);
        REQUIRE(d);
        CHECK(d->host == "::1");
        CHECK(d->port == 5672);
        CHECK(d->user.empty());
        CHECK(d->vhost == "/");
        CHECK(d->exchange.empty());
        CHECK(d->routing_key.empty());
        CHECK(parse_transport("amqp://h/?routing_key=q%20one", why)->routing_key == "q one");
        CHECK(parse_transport("amqp://h/?routing_key=q%20one", why)->vhost == "/");
        CHECK_FALSE(parse_transport("amqp://u:secret@h/", why));
        CHECK(why.find("secret") == std::string::npos);
        CHECK(why.find("amqp-credentials-file") != std::string::npos);
        for (auto bad : {"amqp:h", "amqp://", "amqp://@h", "amqp://h:0", "amqp://h/%zz", "amqp://h/%0a",
                         "amqp://h?queue=x", "amqp://h?exchange", "amqp://h?exchange=a&exchange=b",
                         "amqp://h?routing_key=%7f"}) {
            INFO(bad);
            CHECK_FALSE(parse_transport(bad, why));
            CHECK_FALSE(why.empty());
        }
    }

    TEST_CASE("the most specific route wins")
    {
        std::string why;
        std::vector<Route> routes;
        for (auto text : {"*=smtp:smarthost.example", "example.org=maildir:/m/%u", "sub.example.org=pipe:cat",
                          "EXAMPLE.NET=smtp:mx.example.net:26"}) {
            auto r = parse_route(text, why);
            REQUIRE(r);
            routes.push_back(*r);
        }
        CHECK(find_route(routes, "example.org")->transport.text == "maildir:/m/%u");
        CHECK(find_route(routes, "a.example.org")->transport.text == "maildir:/m/%u");
        CHECK(find_route(routes, "x.sub.example.org")->transport.text == "pipe:cat");
        CHECK(find_route(routes, "Example.Net")->transport.port == 26);
        CHECK(find_route(routes, "badexample.org")->transport.text == "smtp:smarthost.example");
        CHECK(find_route(routes, "other.test")->domain == "*");
        routes.erase(routes.begin());
        CHECK(find_route(routes, "other.test") == nullptr);
        CHECK_FALSE(parse_route("no-equals", why));
        CHECK_FALSE(parse_route("bad domain=pipe:x", why));
        auto sh = smarthost_route("relay.example:587", why);
        REQUIRE(sh);
        CHECK(sh->domain == "*");
        CHECK(sh->transport.text == "smtp:relay.example:587");
    }

    TEST_CASE("recipient domains")
    {
        CHECK(recipient_domain("u@Example.ORG", "me.test") == "example.org");
        CHECK(recipient_domain("\"a@b\"@c.test", "me.test") == "c.test");
        CHECK(recipient_domain("postmaster", "Me.Test") == "me.test");
    }

    TEST_CASE("schedules and durations")
    {
        std::string why;
        auto s = parse_schedule("30m,1h,2h", why);
        REQUIRE(s);
        CHECK(s->size() == 3);
        CHECK(retry_delay(*s, 1) == 30min);
        CHECK(retry_delay(*s, 3) == 2h);
        CHECK(retry_delay(*s, 9) == 2h);
        CHECK(format_schedule(*s) == "30m,1h,2h");
        CHECK_FALSE(parse_schedule("30m,,1h", why));
        CHECK_FALSE(parse_schedule("0", why));
        CHECK(parse_duration("90") == 90s);
        CHECK(parse_duration("5d") == std::chrono::seconds(5 * 86400));
        CHECK_FALSE(parse_duration("5w"));
        CHECK_FALSE(parse_duration("-1"));
        CHECK_FALSE(parse_duration("h"));
        CHECK(format_duration(5 * 86400s) == "5d");
        CHECK(format_duration(90s) == "90s");
        CHECK(format_age(45s) == "45s");
        CHECK(format_age(791s) == "13m 11s");
        CHECK(format_age(780s) == "13m");
        CHECK(format_age(3h + 59s) == "3h");
        CHECK(format_age(6 * 86400s + 3h + 20min) == "6d 3h");
    }

    TEST_CASE("RFC 3339 times round trip")
    {
        TimePoint t(std::chrono::seconds(1795000000));
        CHECK(rfc3339_utc(t) == "2026-11-18T11:06:40Z");
        CHECK(parse_rfc3339_utc("2026-11-18T11:06:40Z") == t);
        CHECK_FALSE(parse_rfc3339_utc("2026-11-18 11:06:40Z"));
        CHECK_FALSE(parse_rfc3339_utc("2026-13-18T11:06:40Z"));
        CHECK_FALSE(parse_rfc3339_utc("2026-11-18T11:06:40"));
        CHECK_FALSE(parse_rfc3339_utc("-026-11-18T11:06:40Z"));
        CHECK_FALSE(parse_rfc3339_utc("2026-+1-18T11:06:40Z"));
    }

    TEST_CASE("RFC 3339 times are refused outside the years a time point holds")
    {
        // 64-bit nanoseconds since 1970 end in April 2262: a later year
        // overflowed the conversion (found by fuzz_envelope).
        CHECK(parse_rfc3339_utc("2199-12-31T23:59:59Z"));
        CHECK(parse_rfc3339_utc("1970-01-01T00:00:00Z") == TimePoint{});
        CHECK_FALSE(parse_rfc3339_utc("2200-01-01T00:00:00Z"));
        CHECK_FALSE(parse_rfc3339_utc("4052-11-22T03:20:52Z"));
        CHECK_FALSE(parse_rfc3339_utc("9999-12-31T23:59:59Z"));
        CHECK_FALSE(parse_rfc3339_utc("1969-12-31T23:59:59Z"));
    }
}
