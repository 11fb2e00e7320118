// The queue tools' computations over envelopes: filters, summary, shape,
// gauges and their Prometheus text; and what runq --dry-run plans.
#include "cli/queue_report.hpp"
#include "base/text.hpp"
#include "delivery/plan.hpp"

#include <doctest/doctest.h>

#include <sstream>

using namespace smtpspool;
using namespace std::chrono_literals;

namespace {

const TimePoint k_now = *parse_rfc3339_utc("2026-12-06T12:00:00Z");

Envelope message(const std::string& from, std::vector<std::string> to, std::chrono::seconds age, std::uint64_t size = 100)
{
    Envelope e;
    e.id = "m";
    e.hostname = "mx.test";
    e.received_at = rfc3339_utc(k_now - age);
    e.mail_from = from;
    e.size = size;
    for (std::string& a : to) {
        Recipient r;
        r.address = std::move(a);
        e.recipients.push_back(std::move(r));
    }
    return e;
}

std::vector<std::string> lines(const std::string& text)
{
    std::vector<std::string> out;
    std::istringstream in(text);
    for (std::string l; std::getline(in, l);) {
        out.push_back(l);
    }
    return out;
}

} // namespace

TEST_SUITE("queue report")
{
    TEST_CASE("filters: every one set must match; pending recipients only; domains cover their subdomains")
    {
        Envelope e = message("Alice@B.example", {"u@Mail.Far.example", "v@near.example"}, 2h);
        MessageFilter none;
        CHECK(none.matches(e, k_now));
        auto f = [](auto set) {
            MessageFilter m;
            set(m);
            return m;
        };
        CHECK(f([](MessageFilter& m) { m.sender = "alice@b"; }).matches(e, k_now));
        CHECK_FALSE(f([](MessageFilter& m) { m.sender = "<>"; }).matches(e, k_now));
        CHECK(f([](MessageFilter& m) { m.sender = "<>"; }).matches(message("", {"x@y.example"}, 1h), k_now));
        CHECK(f([](MessageFilter& m) { m.domain = "far.example"; }).matches(e, k_now));
        CHECK(f([](MessageFilter& m) { m.domain = "MAIL.FAR.EXAMPLE"; }).matches(e, k_now));
        CHECK_FALSE(f([](MessageFilter& m) { m.domain = "ar.example"; }).matches(e, k_now));
        CHECK_FALSE(f([](MessageFilter& m) { m.domain = "mail.far.example.org"; }).matches(e, k_now));
        CHECK(f([](MessageFilter& m) { m.recipient = "V@NEAR"; }).matches(e, k_now));
        e.recipients[1].status = RecipientStatus::delivered;
        CHECK_FALSE(f([](MessageFilter& m) { m.recipient = "v@near"; }).matches(e, k_now));
        CHECK_FALSE(f([](MessageFilter& m) { m.domain = "near.example"; }).matches(e, k_now));
        CHECK(f([](MessageFilter& m) { m.older_than = 1h; }).matches(e, k_now));
        CHECK_FALSE(f([](MessageFilter& m) { m.older_than = 2h; }).matches(e, k_now)); // not more than 2h
        CHECK_FALSE(f([](MessageFilter& m) { m.younger_than = 2h; }).matches(e, k_now));
        CHECK(f([](MessageFilter& m) { m.younger_than = 3h; }).matches(e, k_now));
        CHECK_FALSE(f([](MessageFilter& m) { m.held = true; }).matches(e, k_now));
        e.held = true;
        CHECK(f([](MessageFilter& m) {
                  m.held = true;
                  m.sender = "alice";
                  m.older_than = 1h;
              }).matches(e, k_now));
        CHECK_FALSE(f([](MessageFilter& m) {
                        m.held = true;
                        m.sender = "bob";
                    }).matches(e, k_now));
    }

    TEST_CASE("names: the pending recipients that --recipient and --domain name, or every pending one")
    {
        Envelope e = message("a@b", {"u@dead.example", "v@mx.Dead.example", "w@alive.example", "x@dead.example"}, 1h);
        e.recipients[3].status = RecipientStatus::delivered;
        MessageFilter all;
        MessageFilter dead;
        dead.domain = "dead.example";
        MessageFilter v;
        v.recipient = "V@";
        std::vector<bool> named;
        for (const MessageFilter* f : {&all, &dead, &v}) {
            for (const Recipient& r : e.recipients) {
                named.push_back(f->names(r, e));
            }
        }
        CHECK(named == std::vector<bool>{true, true, true, false, true, true, false, false, false, true, false, false});
    }

    TEST_CASE("summary: per domain each message once, its volume, the oldest and newest; a total")
    {
        QueueSummary s;
        s.add(message("a@b", {"u@x.example", "v@X.example", "w@y.example"}, 3h, 1000), k_now);
        s.add(message("a@b", {"u@x.example"}, 10min, 3000000), k_now);
        Envelope done = message("a@b", {"u@z.example"}, 1min, 10);
        done.recipients[0].status = RecipientStatus::failed; // no pending recipient: no domain row
        s.add(done, k_now);
        std::vector<SummaryRow> rows = s.rows();
        REQUIRE(rows.size() == 2);
        CHECK(rows[0].domain == "x.example");
        CHECK(rows[0].messages == 2);
        CHECK(rows[0].recipients == 3);
        CHECK(rows[0].octets == 3001000);
        CHECK(rows[0].oldest == 3h);
        CHECK(rows[0].newest == 10min);
        CHECK(rows[1].domain == "y.example");
        CHECK(rows[1].messages == 1);
        CHECK(s.total().messages == 3);
        CHECK(s.total().recipients == 4);
        CHECK(s.total().octets == 3001010);
        CHECK(s.total().newest == 1min);
        std::vector<std::string> text = lines(format_summary(s, false));
        REQUIRE(text.size() == 5);
        CHECK(text[0] == "Messages Recipients  Volume Oldest Newest  Domain");
        CHECK(text[1] == "       2          3    2.9M     3h    10m  x.example");
        CHECK(text[2] == "       1          1    1000     3h     3h  y.example");
        CHECK(text[4] == "       3          4    2.9M     3h     1m  TOTAL");
        CHECK(summary_json(s) ==
              "{\"domains\":[{\"domain\":\"x.example\",\"messages\":2,\"recipients\":3,\"octets\":3001000,"
              "\"oldest_seconds\":10800,\"newest_seconds\":600},{\"domain\":\"y.example\",\"messages\":1,"
              "\"recipients\":1,\"octets\":1000,\"oldest_seconds\":10800,\"newest_seconds\":10800}],"
              "\"total\":{\"messages\":3,\"recipients\":4,\"octets\":3001010,\"oldest_seconds\":10800,"
              "\"newest_seconds\":60}}\n");
    }

    TEST_CASE("summary: a domain from the network is escaped on the terminal and in JSON")
    {
        QueueSummary s;
        s.add(message("a@b", {"u@evil\x1b[2J.example"}, 1min), k_now);
        std::string text = format_summary(s, true);
        CHECK(text.find('\x1b') == std::string::npos);
        CHECK(text.find("evil\\x1b[2j.example") != std::string::npos);
        CHECK(summary_json(s).find("\"evil\\u001b[2j.example\"") != std::string::npos);
    }

    TEST_CASE("shape: recipients in age buckets of 5, 10 ... 1280 minutes and older; busiest domain first")
    {
        QueueShape s;
        s.add(message("a@b", {"u@x.example"}, 4min + 59s), k_now);          // [0, 5)
        s.add(message("a@b", {"u@x.example"}, 5min), k_now);                // [5, 10)
        s.add(message("a@b", {"u@y.example", "v@y.example"}, 1279min), k_now); // [640, 1280)
        s.add(message("a@b", {"u@y.example"}, 1280min), k_now);             // 1280+
        std::vector<ShapeRow> rows = s.rows();
        REQUIRE(rows.size() == 2);
        CHECK(rows[0].domain == "y.example");
        CHECK(rows[0].counts == std::array<std::size_t, k_shape_buckets>{0, 0, 0, 0, 0, 0, 0, 0, 2, 1});
        CHECK(rows[1].counts == std::array<std::size_t, k_shape_buckets>{1, 1, 0, 0, 0, 0, 0, 0, 0, 0});
        CHECK(s.total().total == 5);
        std::vector<std::string> text = lines(format_shape(s, false));
        REQUIRE(text.size() == 4);
        CHECK(text[0] == "               T     5    10    20    40    80   160   320   640  1280 1280+");
        CHECK(text[1] == "    TOTAL      5     1     1     0     0     0     0     0     0     2     1");
        CHECK(text[2] == "y.example      3     0     0     0     0     0     0     0     0     2     1");
    }

    TEST_CASE("stats: messages by state, recipients by status, octets, the oldest; Prometheus text")
    {
        QueueStats s;
        s.add(message("a@b", {"u@x", "v@x"}, 2h, 500), k_now, 24h);
        Envelope later = message("", {"u@x"}, 1h, 300);
        later.next_attempt = rfc3339_utc(k_now + 10min);
        later.recipients[0].status = RecipientStatus::failed;
        s.add(later, k_now, 24h);
        Envelope expired = later;
        expired.received_at = rfc3339_utc(k_now - 25h); // expired: due whatever next_attempt says
        s.add(expired, k_now, 24h);
        Envelope held = message("a@b", {"u@x"}, 1min, 1);
        held.held = true;
        held.recipients[0].status = RecipientStatus::delivered;
        s.add(held, k_now, 24h);
        CHECK(s.due == 2);
        CHECK(s.waiting == 1);
        CHECK(s.held == 1);
        CHECK(s.pending == 2);
        CHECK(s.failed == 2);
        CHECK(s.delivered == 1);
        CHECK(s.octets == 1101);
        CHECK(s.oldest == 25h);
        CHECK(s.notices == 2);
        std::string text = prometheus_text(s, "/var/spool/smtpspool");
        CHECK(text.find("# TYPE smtpspool_queue_messages gauge\n"
                        "smtpspool_queue_messages{spool=\"/var/spool/smtpspool\",state=\"due\"} 2\n") !=
              std::string::npos);
        CHECK(text.find("smtpspool_queue_oldest_message_age_seconds{spool=\"/var/spool/smtpspool\"} 90000\n") !=
              std::string::npos);
        CHECK(prometheus_text(s, "a\"b\\c\nd").find("{spool=\"a\\\"b\\\\c\\nd\",state=\"due\"}") !=
              std::string::npos);
        CHECK(stats_json(s, "/q") == "{\"spool\":\"/q\",\"messages\":{\"due\":2,\"waiting\":1,\"held\":1,"
                                     "\"unreadable\":0},\"recipients\":{\"pending\":2,\"delivered\":1,\"failed\":2},"
                                     "\"octets\":1101,\"oldest_seconds\":90000,\"notices\":2}\n");
    }

    TEST_CASE("metric_label_value escapes what the exposition format says and keeps the rest valid UTF-8")
    {
        CHECK(text::metric_label_value("/var/spool/x") == "/var/spool/x");
        CHECK(text::metric_label_value("a\\b\"c\nd") == "a\\\\b\\\"c\\nd");
        CHECK(text::metric_label_value("t\tr\r\x7f") == "t?r??");
        CHECK(text::metric_label_value("caf\xc3\xa9") == "caf\xc3\xa9");
        CHECK(text::metric_label_value("bad\xff\xc3") == "bad??");
        CHECK(text::metric_label_value("rtl\xe2\x80\xaex") == "rtl???x");
    }

    TEST_CASE("plan: held and not-due messages are skipped; routes, next hops and actions per pending recipient")
    {
        std::string why;
        std::vector<Route> routes{*parse_route("local.test=maildir:/m/%d/%u", why), *smarthost_route("[::1]:2525", why),
                                  *parse_route("pipe.test=pipe:cat", why)};
        Envelope e = message("a@b", {"U@Local.Test", "v@far.example", "w@pipe.test", "x@far.example"}, 1h);
        e.recipients[3].status = RecipientStatus::delivered;
        MessagePlan p = plan_message(e, routes, k_now, 24h, false);
        CHECK(p.take == MessagePlan::Take::run);
        CHECK_FALSE(p.expired_age);
        REQUIRE(p.recipients.size() == 3);
        CHECK(p.recipients[0].domain == "local.test");
        CHECK(p.recipients[0].next_hop == "/m/local.test/u");
        CHECK(p.recipients[0].action == "write into the maildir /m/local.test/u");
        CHECK(p.recipients[1].route->domain == "*");
        CHECK(p.recipients[1].action == "send by SMTP to [::1]:2525");
        CHECK(p.recipients[2].action == "pipe to the command cat");
        std::vector<Route> by_mx{*parse_route("*=mx", why)};
        MessagePlan m = plan_message(e, by_mx, k_now, 24h, false);
        CHECK(m.recipients[1].action ==
              "send by SMTP to the mail exchangers of far.example (looked up in DNS when sent)");
        e.next_attempt = rfc3339_utc(k_now + 1min);
        CHECK(plan_message(e, routes, k_now, 24h, false).take == MessagePlan::Take::not_due);
        CHECK(plan_message(e, routes, k_now, 24h, true).take == MessagePlan::Take::run);
        MessagePlan last = plan_message(e, {}, k_now, 30min, false);
        CHECK(last.take == MessagePlan::Take::run); // expired: a last attempt, due or not
        REQUIRE(last.expired_age);
        CHECK(*last.expired_age == 1h);
        CHECK(last.recipients[0].route == nullptr);
        CHECK(last.recipients[0].action == "no route for the domain: fail (expired)");
        e.held = true;
        CHECK(plan_message(e, routes, k_now, 24h, true).take == MessagePlan::Take::held);
    }
}
