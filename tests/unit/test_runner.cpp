// Tests of the queue runner over a real spool directory, with scripted
// transports standing in for the delivery methods.
#include "base/limits.hpp"
#include "delivery/runner.hpp"
#include "spool/envelope_json.hpp"
#include "spool/spool.hpp"
#include "testutil.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <fstream>
#include <functional>
#include <map>
#include <sstream>
#include <filesystem>
#include <sys/file.h>

using namespace smtpspool;
using namespace testutil;
using namespace std::chrono_literals;

namespace {

struct Call {
    std::string transport;
    std::string id;
    std::vector<std::string> recipients;
};

// Answers each recipient from a table (address -> outcome); delivered by default.
struct Script {
    std::map<std::string, RecipientOutcome> answers;
    std::vector<Call> calls;
    int created = 0;
    int finished = 0;
    std::vector<std::string> notices; // handed out by the next take_notices()
};

class ScriptedDeliverer final : public Deliverer {
public:
    ScriptedDeliverer(Script& script, std::string name) : m_script(script), m_name(std::move(name)) {}
    std::vector<RecipientOutcome> deliver(const Delivery& d) override
    {
        Call call{m_name, d.envelope.id, {}};
        std::vector<RecipientOutcome> out;
        for (std::size_t i : d.recipients) {
            const std::string& a = d.envelope.recipients[i].address;
            call.recipients.push_back(a);
            auto it = m_script.answers.find(a);
            out.push_back(it == m_script.answers.end() ? RecipientOutcome{Outcome::delivered, "250 ok"} : it->second);
        }
        m_script.calls.push_back(call);
        return out;
    }
    void finish() override { ++m_script.finished; }
    std::vector<std::string> take_notices() override { return std::exchange(m_script.notices, {}); }

private:
    Script& m_script;
    std::string m_name;
};

struct Fixture {
    Fixture() : clock(TimePoint(std::chrono::seconds(1795000000)))
    {
        REQUIRE(ensure_spool_layout(dir.path()).ok());
        std::string why;
        for (auto r : {"*=smtp:smarthost.test", "local.test=maildir:/tmp/x/%u"}) {
            routes.push_back(*parse_route(r, why));
        }
    }

    std::string queue(const std::string& sender, std::vector<std::string> rcpts,
                      const std::string& data = "Subject: test\r\n\r\nbody\r\n")
    {
        SpoolWriter w(dir.path(), posix, clock, 77);
        auto id = w.begin();
        REQUIRE(id.ok());
        REQUIRE(w.append("Received: by test\r\n" + data).ok());
        Envelope e;
        e.received_at = rfc3339_utc(clock.now());
        e.hostname = "mx.test";
        e.client.helo = "c.test";
        e.mail_from = sender;
        for (auto& r : rcpts) {
            Recipient rc;
            rc.address = r;
            e.recipients.push_back(rc);
        }
        if (tweak) {
            tweak(e);
        }
        REQUIRE(w.commit(e).ok());
        clock.advance(1us);
        return e.id;
    }

    RunStats run(std::vector<std::string> ids = {})
    {
        RunnerConfig c{dir.path(), "mx.test", routes, {30min, 1h}, 5 * 24h, concurrency, per_host, delay_warning};
        Runner runner(
            c,
            [this](const TransportSpec& spec) {
                ++script.created;
                return std::make_unique<ScriptedDeliverer>(script, spec.text);
            },
            log, clock, fs != nullptr ? *fs : posix);
        return runner.run(ids);
    }

    Envelope envelope(const std::string& id)
    {
        auto e = load_envelope(dir.path(), id);
        REQUIRE(e.ok());
        return e.value();
    }

    std::vector<std::string> queued()
    {
        auto l = list_queue(dir.path());
        REQUIRE(l.ok());
        return l.value();
    }

    std::string message(const std::string& id)
    {
        std::ifstream in(message_path(dir.path(), id), std::ios::binary);
        std::ostringstream s;
        s << in.rdbuf();
        return s.str();
    }

    TempDir dir;
    FixedClock clock;
    RecordingLog log;
    Script script;
    std::vector<Route> routes;
    std::function<void(Envelope&)> tweak; // applied to each envelope queue() writes
    PosixFs posix;
    Fs* fs = nullptr; // the runner's file system calls, when not posix
    std::size_t concurrency = 1;
    std::size_t per_host = 1;
    std::optional<std::chrono::seconds> delay_warning;
};

using Notify = std::vector<std::string>;

} // namespace

TEST_SUITE("runner")
{
    TEST_CASE("delivered messages leave the queue; one transport per route, reused")
    {
        Fixture f;
        f.queue("a@b.test", {"u@far.test", "v@local.test"});
        f.queue("a@b.test", {"w@far.test"});
        RunStats s = f.run();
        CHECK(s.attempted == 2);
        CHECK(s.delivered == 3);
        CHECK(s.removed == 2);
        CHECK(f.queued().empty());
        CHECK(f.script.created == 2);  // smtp:smarthost.test and maildir, each once
        CHECK(f.script.finished == 2); // finish() at the end of the run
        REQUIRE(f.script.calls.size() == 3);
        CHECK(f.log.has("event=delivery"));
        CHECK(f.log.has("result=delivered"));
        CHECK(count_entries(f.dir.path() + "/tmp") == 0);
    }

    TEST_CASE("a temporary failure is retried on schedule; delivered recipients are not sent again")
    {
        Fixture f;
        std::string id = f.queue("a@b.test", {"u@far.test", "v@far.test"});
        f.script.answers["v@far.test"] = {Outcome::temporary, "451 4.3.0 try later"};
        RunStats s = f.run();
        CHECK(s.delivered == 1);
        CHECK(s.deferred == 1);
        Envelope e = f.envelope(id);
        CHECK(e.attempts == 1);
        CHECK(e.last_attempt == "2026-11-18T11:06:40Z");
        CHECK(e.next_attempt == "2026-11-18T11:36:40Z"); // +30m, the schedule's first wait
        CHECK(e.recipients[0].status == RecipientStatus::delivered);
        CHECK(e.recipients[0].attempts == 1);
        CHECK(e.recipients[1].status == RecipientStatus::pending);
        CHECK(e.recipients[1].last_error == "451 4.3.0 try later");
        // Not due yet: nothing happens.
        f.script.calls.clear();
        f.clock.advance(29min);
        CHECK(f.run().not_due == 1);
        CHECK(f.script.calls.empty());
        // Named on the command line, it is tried at once.
        s = f.run({id});
        REQUIRE(f.script.calls.size() == 1);
        CHECK(f.script.calls[0].recipients == std::vector<std::string>{"v@far.test"});
        e = f.envelope(id);
        CHECK(e.attempts == 2);
        CHECK(e.recipients[1].attempts == 2);
        CHECK(e.next_attempt == rfc3339_utc(f.clock.now() + 1h)); // the last wait repeats
        // Then it goes through.
        f.script.answers.clear();
        f.clock.advance(2h);
        s = f.run();
        CHECK(s.removed == 1);
        CHECK(f.queued().empty());
    }

    TEST_CASE("Retry-After: a longer wait than the schedule's is kept, up to the message's expiry")
    {
        Fixture f;
        std::string id = f.queue("a@b.test", {"u@far.test", "v@far.test"});
        RecipientOutcome busy{Outcome::temporary, "HTTP 429"};
        busy.retry_after = 2h;
        f.script.answers["u@far.test"] = busy;
        f.script.answers["v@far.test"] = {Outcome::temporary, "HTTP 500"};
        f.run();
        Envelope e = f.envelope(id);
        CHECK(e.next_attempt == rfc3339_utc(f.clock.now() + 2h)); // not the schedule's 30m
        // Shorter than the schedule: the schedule's (the last wait, 1h, repeats).
        busy.retry_after = 5min;
        f.script.answers["u@far.test"] = busy;
        f.run({id});
        CHECK(f.envelope(id).next_attempt == rfc3339_utc(f.clock.now() + 1h));
        // Past the expiry (5 days after arrival): at the expiry, for the last attempt.
        busy.retry_after = 30 * 24h;
        f.script.answers["u@far.test"] = busy;
        f.run({id});
        e = f.envelope(id);
        auto arrived = parse_rfc3339_utc(e.received_at);
        REQUIRE(arrived);
        CHECK(e.next_attempt == rfc3339_utc(*arrived + 5 * 24h));
    }

    TEST_CASE("the next hop tried last is kept per recipient, logged, and dropped after an attempt without one")
    {
        Fixture f;
        std::string id = f.queue("a@b.test", {"u@far.test", "v@far.test"});
        RecipientOutcome refused{Outcome::temporary, "connection to 192.0.2.1:25 refused"};
        refused.hop = "mx.far.test[192.0.2.1]:25";
        f.script.answers["u@far.test"] = refused;
        f.script.answers["v@far.test"] = {Outcome::temporary, "451 4.4.3 DNS: SERVFAIL"};
        f.run();
        Envelope e = f.envelope(id);
        CHECK(e.recipients[0].last_hop == "mx.far.test[192.0.2.1]:25");
        CHECK_FALSE(e.recipients[1].last_hop);
        CHECK(f.log.has("to=u@far.test via=smtp:smarthost.test result=deferred detail=\"connection to 192.0.2.1:25 "
                        "refused\" hop=mx.far.test[192.0.2.1]:25"));
        // The next attempt tried no server: the old hop goes.
        f.script.answers["u@far.test"] = {Outcome::temporary, "451 4.4.3 DNS: SERVFAIL"};
        f.run({id});
        CHECK_FALSE(f.envelope(id).recipients[0].last_hop);
        // A hop outside the envelope's character set or bound is not kept.
        RecipientOutcome odd{Outcome::temporary, "x"};
        for (std::string hop : {std::string("h\"x"), std::string("h\xc3\xa9"), std::string(limits::k_max_last_hop + 1, 'h')}) {
            odd.hop = hop;
            f.script.answers["u@far.test"] = refused;
            f.run({id});
            REQUIRE(f.envelope(id).recipients[0].last_hop);
            f.script.answers["u@far.test"] = odd;
            f.run({id});
            CHECK_FALSE(f.envelope(id).recipients[0].last_hop);
        }
    }

    TEST_CASE("a permanent failure queues one bounce to the sender")
    {
        Fixture f;
        std::string id = f.queue("alice@b.test", {"u@far.test", "v@far.test", "w@far.test"},
                                 "Subject: hello there\r\nFrom: alice@b.test\r\n\r\nsecret body\r\n");
        f.script.answers["u@far.test"] = {Outcome::permanent, "550 5.1.1 <u@far.test>: no such user"};
        f.script.answers["w@far.test"] = {Outcome::permanent, "local policy refused"};
        RunStats s = f.run();
        CHECK(s.failed == 2);
        CHECK(s.bounces == 1);
        CHECK(s.removed == 1);
        auto q = f.queued();
        REQUIRE(q.size() == 1);
        CHECK(q[0] != id);
        Envelope b = f.envelope(q[0]);
        CHECK(b.mail_from == "");
        REQUIRE(b.recipients.size() == 1);
        CHECK(b.recipients[0].address == "alice@b.test");
        CHECK(b.client.address == std::nullopt);
        std::string m = f.message(q[0]);
        CHECK(m.substr(0, 10) == "Received: ");
        CHECK(m.find("Content-Type: multipart/report; report-type=delivery-status;") != std::string::npos);
        CHECK(m.find("Auto-Submitted: auto-replied") != std::string::npos);
        CHECK(m.find("Final-Recipient: rfc822; u@far.test\r\nAction: failed\r\nStatus: 5.1.1\r\n") !=
              std::string::npos);
        CHECK(m.find("Diagnostic-Code: smtp; 550 5.1.1 <u@far.test>: no such user") != std::string::npos);
        CHECK(m.find("Final-Recipient: rfc822; w@far.test\r\nAction: failed\r\nStatus: 5.0.0\r\n") !=
              std::string::npos);
        CHECK(m.find("Final-Recipient: rfc822; v@far.test") == std::string::npos);
        CHECK(m.find("Subject: hello there") != std::string::npos); // the original headers
        CHECK(m.find("secret body") == std::string::npos);          // but not the body
        CHECK(b.size == m.size());
    }

    TEST_CASE("no bounce for the null sender: never a bounce of a bounce")
    {
        Fixture f;
        f.queue("", {"u@far.test"});
        f.script.answers["u@far.test"] = {Outcome::permanent, "550 5.1.1 no"};
        RunStats s = f.run();
        CHECK(s.failed == 1);
        CHECK(s.bounces == 0);
        CHECK(f.queued().empty());
    }

    TEST_CASE("an expired message gets a last attempt; what still fails is bounced with its real age and 4.4.7")
    {
        Fixture f;
        std::string id = f.queue("a@b.test", {"u@far.test", "v@far.test"});
        f.script.answers["u@far.test"] = {Outcome::temporary, "421 4.4.2 timeout"};
        f.script.answers["v@far.test"] = {Outcome::temporary, "421 4.4.2 timeout"};
        f.run();
        f.clock.advance(6 * 24h + 3h + 20min);
        f.script.calls.clear();
        f.script.answers["u@far.test"] = {Outcome::temporary, "451 4.3.0 still down"};
        f.script.answers.erase("v@far.test"); // delivered at the last attempt
        RunStats s = f.run();
        REQUIRE(f.script.calls.size() == 1);
        CHECK(f.script.calls[0].recipients == std::vector<std::string>{"u@far.test", "v@far.test"});
        CHECK(s.delivered == 1);
        CHECK(s.failed == 1);
        CHECK(s.deferred == 0);
        CHECK(s.bounces == 1);
        auto q = f.queued();
        REQUIRE(q.size() == 1);
        std::string m = f.message(q[0]);
        CHECK(m.find("Status: 4.4.7") != std::string::npos);
        CHECK(m.find("message expired after 6d 3h in the queue; last error: 451 4.3.0 still down") !=
              std::string::npos);
        CHECK(m.find("Final-Recipient: rfc822; v@far.test") == std::string::npos);
        CHECK(f.log.has("event=expired id=" + id));
        CHECK(f.log.has("6d 3h"));
    }

    TEST_CASE("an expired message is tried even before its next attempt is due")
    {
        Fixture f;
        f.queue("a@b.test", {"u@far.test"});
        f.script.answers["u@far.test"] = {Outcome::temporary, "421 4.4.2 timeout"};
        f.run();
        f.clock.advance(5 * 24h - 30min);
        f.run(); // deferred again: next attempt an hour later
        f.clock.advance(45min);
        f.script.calls.clear();
        f.script.answers.clear();
        RunStats s = f.run();
        CHECK(s.not_due == 0);
        REQUIRE(f.script.calls.size() == 1);
        CHECK(s.delivered == 1);
        CHECK(s.failed == 0);
        CHECK(s.bounces == 0);
        CHECK(f.queued().empty());
    }

    TEST_CASE("an expired message's recipients without a route fail at once")
    {
        Fixture f;
        f.routes.erase(f.routes.begin()); // no "*"
        f.queue("a@b.test", {"u@far.test"});
        f.run();
        f.clock.advance(5 * 24h + 10min);
        RunStats s = f.run();
        CHECK(f.script.calls.empty());
        CHECK(s.failed == 1);
        CHECK(s.bounces == 1);
        auto q = f.queued();
        REQUIRE(q.size() == 1);
        CHECK(f.message(q[0]).find("message expired after 5d in the queue; last error: no route for domain far.test") !=
              std::string::npos);
    }

    TEST_CASE("a message locked by another runner is left alone")
    {
        Fixture f;
        std::string id = f.queue("a@b.test", {"u@far.test"});
        int fd = ::open((f.dir.path() + "/queue/" + id).c_str(), O_RDONLY | O_DIRECTORY);
        REQUIRE(fd >= 0);
        REQUIRE(::flock(fd, LOCK_EX) == 0);
        RunStats s = f.run();
        CHECK(s.locked == 1);
        CHECK(f.script.calls.empty());
        ::close(fd);
        CHECK(f.run().removed == 1);
    }

    TEST_CASE("no route: logged once per domain and run, with the number of recipients, not once per message")
    {
        Fixture f;
        f.routes.erase(f.routes.begin()); // no "*"
        for (int i = 0; i < 3; ++i) {
            f.queue("a@b.test", {"u@far.test", "v@far.test", "w@other.test"});
        }
        RunStats s = f.run();
        CHECK(s.deferred == 9);
        CHECK(s.no_route == std::map<std::string, std::size_t>{{"far.test", 6}, {"other.test", 3}});
        auto count = [&](std::string_view needle) {
            return std::count_if(f.log.lines.begin(), f.log.lines.end(),
                                 [&](const std::string& l) { return l.find(needle) != std::string::npos; });
        };
        CHECK(count("event=no-route") == 2);
        CHECK(count("event=no-route domain=far.test deferred=6") == 1);
        CHECK(count("event=no-route domain=other.test deferred=3") == 1);
        CHECK(count("event=delivery") == 0);
    }

    TEST_CASE("no route: deferred with a reason; unreadable envelopes are skipped")
    {
        Fixture f;
        f.routes.erase(f.routes.begin()); // no "*"
        std::string id = f.queue("a@b.test", {"u@far.test"});
        RunStats s = f.run();
        CHECK(s.deferred == 1);
        CHECK(f.envelope(id).recipients[0].last_error == "no route for domain far.test");
        CHECK(s.no_route == std::map<std::string, std::size_t>{{"far.test", 1}});
        std::string bad = f.dir.path() + "/queue/0-bad";
        std::filesystem::create_directory(bad);
        std::ofstream(bad + "/envelope.json") << "{";
        f.clock.advance(1h);
        s = f.run();
        CHECK(s.unreadable == 1);
        CHECK(f.log.has("event=unreadable id=0-bad"));
    }

    TEST_CASE("DSN: no failure notice for NOTIFY=NEVER or a NOTIFY without FAILURE")
    {
        Fixture f;
        f.tweak = [](Envelope& e) {
            e.recipients[0].notify = Notify{"NEVER"};
            e.recipients[1].notify = Notify{"SUCCESS", "DELAY"};
            e.recipients[2].notify = Notify{"FAILURE"};
        };
        f.queue("alice@b.test", {"u@far.test", "v@far.test", "w@far.test", "x@far.test"});
        for (auto a : {"u@far.test", "v@far.test", "w@far.test", "x@far.test"}) {
            f.script.answers[a] = {Outcome::permanent, "550 5.1.1 no such user"};
        }
        RunStats s = f.run();
        CHECK(s.failed == 4);
        CHECK(s.bounces == 1);
        CHECK(s.removed == 1);
        auto q = f.queued();
        REQUIRE(q.size() == 1);
        std::string m = f.message(q[0]);
        CHECK(m.find("Subject: Undelivered Mail Returned to Sender") != std::string::npos);
        CHECK(m.find("Final-Recipient: rfc822; u@far.test") == std::string::npos);
        CHECK(m.find("Final-Recipient: rfc822; v@far.test") == std::string::npos);
        CHECK(m.find("Final-Recipient: rfc822; w@far.test\r\nAction: failed\r\nStatus: 5.1.1\r\n") !=
              std::string::npos);
        CHECK(m.find("Final-Recipient: rfc822; x@far.test\r\nAction: failed\r\n") != std::string::npos);
        CHECK(m.find("Original-Envelope-Id") == std::string::npos);
        CHECK(m.find("Original-Recipient") == std::string::npos);
    }

    TEST_CASE("DSN: all failures unwanted, no notice at all, and the message is still removed")
    {
        Fixture f;
        f.tweak = [](Envelope& e) { e.recipients[0].notify = Notify{"NEVER"}; };
        f.queue("alice@b.test", {"u@far.test"});
        f.script.answers["u@far.test"] = {Outcome::permanent, "550 5.1.1 no"};
        RunStats s = f.run();
        CHECK(s.failed == 1);
        CHECK(s.bounces == 0);
        CHECK(s.removed == 1);
        CHECK(f.queued().empty());
    }

    TEST_CASE("DSN: NOTIFY=SUCCESS and a final delivery: a success notice with Action: delivered")
    {
        Fixture f;
        f.tweak = [](Envelope& e) {
            e.dsn_envid = "QQ314159";
            e.recipients[0].notify = Notify{"SUCCESS"};
            e.recipients[0].orcpt = "rfc822;Bob@Local.test";
            e.recipients[1].notify = Notify{"FAILURE"};
        };
        std::string id = f.queue("alice@b.test", {"bob@local.test", "carol@local.test"},
                                 "Subject: report me\r\n\r\nsecret body\r\n");
        f.script.answers["bob@local.test"] = {Outcome::delivered, "delivered to maildir /tmp/x/bob"};
        RunStats s = f.run();
        CHECK(s.delivered == 2);
        CHECK(s.bounces == 1);
        auto q = f.queued();
        REQUIRE(q.size() == 1);
        Envelope b = f.envelope(q[0]);
        CHECK(b.mail_from == "");
        REQUIRE(b.recipients.size() == 1);
        CHECK(b.recipients[0].address == "alice@b.test");
        std::string m = f.message(q[0]);
        CHECK(m.find("Subject: Successful Mail Delivery Report\r\n") != std::string::npos);
        CHECK(m.find("was delivered to the following\r\nrecipients:\r\n\r\n<bob@local.test>\r\n") != std::string::npos);
        CHECK(m.find("Original-Envelope-Id: QQ314159\r\nReporting-MTA: dns; mx.test\r\n") != std::string::npos);
        CHECK(m.find("\r\n\r\nOriginal-Recipient: rfc822; Bob@Local.test\r\nFinal-Recipient: rfc822; bob@local.test\r\n"
                     "Action: delivered\r\nStatus: 2.0.0\r\nLast-Attempt-Date: ") != std::string::npos);
        CHECK(m.find("carol@local.test") == std::string::npos);
        CHECK(m.find("/tmp/x/bob") == std::string::npos); // no local detail for the sender
        CHECK(m.find("Diagnostic-Code") == std::string::npos);
        CHECK(m.find("Content-Type: text/rfc822-headers\r\n\r\nReceived: by test\r\nSubject: report me\r\n") !=
              std::string::npos);
        CHECK(m.find("secret body") == std::string::npos);
        CHECK(f.log.has("event=bounce id=" + id + " bounce_id=" + q[0] + " to=alice@b.test kind=success"));
    }

    TEST_CASE("DSN: relayed to a server without DSN, Action: relayed; to one with DSN, no notice of ours")
    {
        Fixture f;
        f.tweak = [](Envelope& e) {
            e.recipients[0].notify = Notify{"SUCCESS"};
            e.recipients[1].notify = Notify{"SUCCESS", "FAILURE"};
            e.recipients[2].notify = Notify{"FAILURE"};
        };
        f.queue("alice@b.test", {"u@far.test", "v@far.test", "w@far.test"});
        f.script.answers["u@far.test"] = {Outcome::delivered, "250 2.0.0 queued as X", Handoff::relayed};
        f.script.answers["v@far.test"] = {Outcome::delivered, "250 2.0.0 queued as Y", Handoff::relayed_dsn};
        f.script.answers["w@far.test"] = {Outcome::delivered, "250 2.0.0 queued as Z", Handoff::relayed};
        RunStats s = f.run();
        CHECK(s.delivered == 3);
        CHECK(s.bounces == 1);
        auto q = f.queued();
        REQUIRE(q.size() == 1);
        std::string m = f.message(q[0]);
        CHECK(m.find("Subject: Successful Mail Delivery Report\r\n") != std::string::npos);
        CHECK(m.find("Final-Recipient: rfc822; u@far.test\r\nAction: relayed\r\nStatus: 2.0.0\r\n"
                     "Diagnostic-Code: smtp; 250 2.0.0 queued as X\r\n") != std::string::npos);
        CHECK(m.find("v@far.test") == std::string::npos);
        CHECK(m.find("w@far.test") == std::string::npos);
        CHECK(m.find("Original-Envelope-Id") == std::string::npos);
    }

    TEST_CASE("DSN: mixed outcomes give one failure notice and one success notice")
    {
        Fixture f;
        f.tweak = [](Envelope& e) {
            e.recipients[0].notify = Notify{"SUCCESS", "FAILURE"};
            e.recipients[1].notify = Notify{"SUCCESS", "FAILURE"};
        };
        f.queue("alice@b.test", {"u@local.test", "v@far.test"});
        f.script.answers["v@far.test"] = {Outcome::permanent, "550 5.1.1 no"};
        RunStats s = f.run();
        CHECK(s.bounces == 2);
        auto q = f.queued();
        REQUIRE(q.size() == 2);
        int failures = 0, successes = 0;
        for (const std::string& b : q) {
            std::string m = f.message(b);
            if (m.find("Action: failed") != std::string::npos) {
                ++failures;
                CHECK(m.find("Final-Recipient: rfc822; v@far.test") != std::string::npos);
                CHECK(m.find("u@local.test") == std::string::npos);
            } else {
                ++successes;
                CHECK(m.find("Final-Recipient: rfc822; u@local.test\r\nAction: delivered\r\n") != std::string::npos);
                CHECK(m.find("v@far.test") == std::string::npos);
            }
        }
        CHECK(failures == 1);
        CHECK(successes == 1);
    }

    TEST_CASE("DSN: never a notice to the null sender, whatever NOTIFY says")
    {
        Fixture f;
        f.tweak = [](Envelope& e) {
            e.recipients[0].notify = Notify{"SUCCESS", "FAILURE"};
            e.recipients[1].notify = Notify{"SUCCESS", "FAILURE"};
        };
        f.queue("", {"u@local.test", "v@far.test"});
        f.script.answers["v@far.test"] = {Outcome::permanent, "550 5.1.1 no"};
        RunStats s = f.run();
        CHECK(s.bounces == 0);
        CHECK(f.queued().empty());
    }

    TEST_CASE("DSN: RET=FULL returns the whole message; RET=HDRS and no RET the header section")
    {
        for (const char* ret : {"FULL", "HDRS", ""}) {
            INFO(ret);
            Fixture f;
            f.tweak = [ret](Envelope& e) {
                if (*ret) {
                    e.dsn_ret = ret;
                }
            };
            f.queue("alice@b.test", {"u@far.test"}, "Subject: returned\r\n\r\nthe body line\r\n");
            f.script.answers["u@far.test"] = {Outcome::permanent, "550 5.1.1 no"};
            f.run();
            auto q = f.queued();
            REQUIRE(q.size() == 1);
            std::string m = f.message(q[0]);
            if (std::string(ret) == "FULL") {
                CHECK(m.find("Content-Type: message/rfc822\r\n\r\nReceived: by test\r\nSubject: returned\r\n\r\n"
                             "the body line\r\n\r\n--") != std::string::npos);
                CHECK(m.find("text/rfc822-headers") == std::string::npos);
            } else {
                CHECK(
                    m.find(
                        "Content-Type: text/rfc822-headers\r\n\r\nReceived: by test\r\nSubject: returned\r\n\r\n--") !=
                    std::string::npos);
                CHECK(m.find("the body line") == std::string::npos);
                CHECK(m.find("message/rfc822") == std::string::npos);
            }
        }
    }

    TEST_CASE("DSN: a BINARYMIME message is returned as its header section even with RET=FULL")
    {
        Fixture f;
        f.tweak = [](Envelope& e) {
            e.dsn_ret = "FULL";
            e.body = Body::binary_mime;
        };
        f.queue("alice@b.test", {"u@far.test"}, std::string("Subject: bin\r\n\r\nraw\0\n\roctets", 28));
        f.script.answers["u@far.test"] = {Outcome::permanent, "554 5.6.3 not sent"};
        f.run();
        auto q = f.queued();
        REQUIRE(q.size() == 1);
        std::string m = f.message(q[0]);
        CHECK(m.find("Content-Type: text/rfc822-headers\r\n\r\nReceived: by test\r\nSubject: bin\r\n\r\n--") !=
              std::string::npos);
        CHECK(m.find("raw") == std::string::npos);
        CHECK(m.find("message/rfc822") == std::string::npos);
        CHECK(m.find("too big") == std::string::npos);
    }

    TEST_CASE("DSN: a success notice returns the header section even with RET=FULL")
    {
        Fixture f;
        f.tweak = [](Envelope& e) {
            e.dsn_ret = "FULL";
            e.recipients[0].notify = Notify{"SUCCESS"};
        };
        f.queue("alice@b.test", {"u@local.test"}, "Subject: s\r\n\r\nthe body line\r\n");
        f.run();
        auto q = f.queued();
        REQUIRE(q.size() == 1);
        std::string m = f.message(q[0]);
        CHECK(m.find("Action: delivered") != std::string::npos);
        CHECK(m.find("the body line") == std::string::npos);
        CHECK(m.find("text/rfc822-headers") != std::string::npos);
    }

    TEST_CASE("DSN: a limited envelope's bounce returns at most 4 KiB of whole header fields, even with RET=FULL")
    {
        std::string head;
        while (head.size() < 10000) {
            head += "X-Spam: visit http://spam.example/ now\r\n";
        }
        for (const std::string& data : {head + "\r\nSPAM BODY\r\n", head + "SPAM BODY without an empty line\r\n"}) {
            Fixture f;
            f.tweak = [](Envelope& e) {
                e.dsn_ret = "FULL";
                e.dsn_limited = true;
            };
            f.queue("victim@third.test", {"u@far.test"}, data);
            f.script.answers["u@far.test"] = {Outcome::permanent, "550 5.1.1 no such user"};
            f.run();
            auto q = f.queued();
            REQUIRE(q.size() == 1);
            std::string m = f.message(q[0]);
            const std::string part = "Content-Type: text/rfc822-headers\r\n\r\n";
            auto at = m.find(part);
            REQUIRE(at != std::string::npos);
            auto end = m.find("\r\n--", at + part.size());
            REQUIRE(end != std::string::npos);
            std::string returned = m.substr(at + part.size(), end - at - part.size());
            CHECK(returned.size() <= limits::k_limited_header_section);
            CHECK(returned.size() > limits::k_limited_header_section - 64);
            CHECK(returned.starts_with("Received: by test\r\nX-Spam: "));
            CHECK(returned.ends_with("now\r\n"));
            CHECK(m.find("SPAM BODY") == std::string::npos);
            CHECK(m.find("message/rfc822") == std::string::npos);
        }
    }

    TEST_CASE("DSN: without dsn_limited the header section may be longer (64 KiB), still not the body")
    {
        std::string head;
        while (head.size() < 10000) {
            head += "X-Spam: visit http://spam.example/ now\r\n";
        }
        Fixture f;
        f.queue("alice@b.test", {"u@far.test"}, head + "a line that is no header field\r\n");
        f.script.answers["u@far.test"] = {Outcome::permanent, "550 5.1.1 no such user"};
        f.run();
        auto q = f.queued();
        REQUIRE(q.size() == 1);
        std::string m = f.message(q[0]);
        CHECK(m.find("Content-Type: text/rfc822-headers\r\n\r\nReceived: by test\r\n" + head + "\r\n--") !=
              std::string::npos);
        CHECK(m.find("no header field") == std::string::npos);
    }

    TEST_CASE("runq's rewrite of an envelope fails at each step: the old envelope stays whole, nothing lost")
    {
        // Count the runner's calls in a run that defers one recipient and
        // delivers the other (so that the envelope is rewritten), then fail
        // each call in turn.
        auto setup = [](Fixture& f) {
            f.script.answers["later@far.test"] = {Outcome::temporary, "451 4.3.0 try again"};
            return f.queue("a@b.test", {"now@far.test", "later@far.test"});
        };
        Fixture probe;
        setup(probe);
        FaultyFs counting;
        probe.fs = &counting;
        RunStats clean = probe.run();
        REQUIRE(clean.errors == 0);
        const int total = counting.calls;
        REQUIRE(total >= 6); // open spool, queue, tmp, entry, envelope read(s), .new, write, fsync, close, rename, fsync
        int rewrites_failed = 0;
        for (int step = 1; step <= total; ++step) {
            for (int err : {EIO, ENOSPC}) {
                INFO("failing call " << step << " of " << total << " with errno " << err);
                Fixture f;
                std::string id = setup(f);
                Envelope before = f.envelope(id);
                FaultyFs fs;
                fs.fail_at = step;
                fs.err = err;
                f.fs = &fs;
                RunStats s = f.run();
                // Whatever failed, the envelope on disk parses and names both recipients.
                auto after = load_envelope(f.dir.path(), id);
                REQUIRE(after.ok());
                REQUIRE(after.value().recipients.size() == 2);
                CHECK(after.value().recipients[1].status == RecipientStatus::pending);
                // No temporary file is left beside it.
                CHECK_FALSE(std::filesystem::exists(f.dir.path() + "/queue/" + id + "/envelope.json.new"));
                if (s.errors > 0) {
                    ++rewrites_failed;
                    CHECK(f.log.has("event=runq-error"));
                    // Before the rename the old envelope is still there, whole.
                    if (after.value().attempts == before.attempts) {
                        CHECK(after.value().recipients[0].status == RecipientStatus::pending);
                    }
                }
                // A later run finishes the job: nothing was lost.
                f.fs = nullptr;
                f.script.answers.clear();
                f.run({id});
                CHECK(f.queued().empty());
            }
        }
        CHECK(rewrites_failed >= 2 * 4); // create, write, fsync, rename (and the directory fsync) each reported
    }

    TEST_CASE("a held message is left alone, due or named, and its envelope untouched")
    {
        Fixture f;
        f.tweak = [](Envelope& e) { e.held = true; };
        std::string id = f.queue("a@b.test", {"u@far.test"});
        f.tweak = nullptr;
        std::string other = f.queue("a@b.test", {"v@far.test"});
        const std::string before = envelope_to_json(f.envelope(id));
        RunStats s = f.run();
        CHECK(s.held == 1);
        CHECK(s.attempted == 1);
        REQUIRE(f.script.calls.size() == 1);
        CHECK(f.script.calls[0].id == other);
        s = f.run({id});
        CHECK(s.held == 1);
        CHECK(s.attempted == 0);
        CHECK(f.queued() == std::vector<std::string>{id});
        CHECK(envelope_to_json(f.envelope(id)) == before);
        CHECK(f.log.lines.back().find(" held=1") != std::string::npos);
    }

    TEST_CASE("give_up: a failure notice for the recipients named; the others stay pending on their schedule")
    {
        Fixture f;
        f.tweak = [](Envelope& e) {
            e.recipients[2].notify = std::vector<std::string>{"NEVER"};
            e.next_attempt = "2026-12-06T12:00:00Z";
            e.attempts = 3;
        };
        std::string id = f.queue("alice@b.test", {"u@dead.test", "v@alive.test", "w@dead.test"});
        f.tweak = nullptr;
        auto give_up = [&](std::function<bool(const Recipient&)> which) {
            PosixFs fs;
            auto queue = QueueDir::open(f.dir.path(), fs);
            REQUIRE(queue.ok());
            auto entry = queue.value().entry(id);
            REQUIRE(entry.ok());
            REQUIRE(entry.value().lock().ok());
            auto e = entry.value().load();
            REQUIRE(e.ok());
            RunnerConfig c{f.dir.path(), "mx.test", f.routes, {30min, 1h}, 5 * 24h};
            Runner runner(
                c, [](const TransportSpec&) -> std::unique_ptr<Deliverer> { return nullptr; }, f.log, f.clock);
            RunStats stats;
            runner.give_up(entry.value(), e.value(), "delivery cancelled by the postmaster", which, stats);
            return stats;
        };
        RunStats s = give_up([](const Recipient& r) { return r.address.find("@dead.test") != std::string::npos; });
        CHECK(s.failed == 2);
        CHECK(s.bounces == 1);
        CHECK(s.errors == 0);
        Envelope left = f.envelope(id);
        CHECK(left.recipients[0].status == RecipientStatus::failed);
        CHECK(left.recipients[0].last_error == "delivery cancelled by the postmaster");
        CHECK(left.recipients[1].status == RecipientStatus::pending);
        CHECK(left.recipients[2].status == RecipientStatus::failed);
        CHECK(left.next_attempt == "2026-12-06T12:00:00Z"); // as it was
        CHECK(left.attempts == 3);
        auto q = f.queued();
        REQUIRE(q.size() == 2);
        std::string m = f.message(q[0] == id ? q[1] : q[0]);
        CHECK(m.find("Final-Recipient: rfc822; u@dead.test\r\nAction: failed\r\nStatus: 5.0.0\r\n") !=
              std::string::npos);
        CHECK(m.find("Diagnostic-Code: x-local; delivery cancelled by the postmaster") != std::string::npos);
        CHECK(m.find("w@dead.test") == std::string::npos); // NOTIFY=NEVER
        CHECK(m.find("v@alive.test") == std::string::npos);
        // The rest: nothing is left pending, so the message goes.
        s = give_up([](const Recipient&) { return true; });
        CHECK(s.failed == 1);
        CHECK(s.removed == 1);
        q = f.queued();
        CHECK(std::find(q.begin(), q.end(), id) == q.end());
        CHECK(f.script.calls.empty()); // nothing was delivered
    }

    TEST_CASE("TLS of an attempt: on the delivery line and in last_tls, gone after an attempt in clear text; "
              "a deliverer's notices logged")
    {
        Fixture f;
        std::string id = f.queue("a@b.test", {"u@far.test"});
        RecipientOutcome deferred{Outcome::temporary, "451 4.3.0 later"};
        deferred.tls = DeliveryTls{"TLSv1.3", "TLS_AES_128_GCM_SHA256", true};
        f.script.answers["u@far.test"] = deferred;
        f.script.notices = {"authentication as x to smarthost.test:25 by PLAIN refused: 535 5.7.8 no"};
        f.run();
        CHECK(f.envelope(id).recipients.at(0).last_tls == deferred.tls);
        CHECK(f.log.has("event=delivery id=" + id +
                        " to=u@far.test via=smtp:smarthost.test result=deferred tls=TLSv1.3 "
                        "cipher=TLS_AES_128_GCM_SHA256 verified=yes detail=\"451 4.3.0 later\""));
        CHECK(f.log.has("event=delivery-config-error via=smtp:smarthost.test reason=\"authentication as x to "
                        "smarthost.test:25 by PLAIN refused: 535 5.7.8 no\""));

        f.script.answers["u@far.test"] = RecipientOutcome{Outcome::temporary, "451 4.3.0 still later"};
        f.clock.advance(31min);
        f.log.lines.clear();
        f.run();
        CHECK_FALSE(f.envelope(id).recipients.at(0).last_tls);
        CHECK(f.log.has("result=deferred detail=\"451 4.3.0 still later\""));
        CHECK_FALSE(f.log.has("tls="));
        CHECK_FALSE(f.log.has("delivery-config-error"));
    }

    TEST_CASE("delay notice: once, after --delay-warning, to the recipients still pending that want it")
    {
        Fixture f;
        f.delay_warning = 4h;
        f.tweak = [](Envelope& e) {
            e.dsn_envid = "ENV42";
            e.recipients[0].notify = Notify{"DELAY", "FAILURE"};
            e.recipients[0].orcpt = "rfc822;U@far.test";
            e.recipients[2].notify = Notify{"FAILURE"};
            e.recipients[3].notify = Notify{"NEVER"};
            e.recipients[4].notify = Notify{"SUCCESS", "DELAY"};
        };
        std::string id = f.queue("alice@b.test", {"u@far.test", "v@far.test", "w@far.test", "x@far.test",
                                                  "y@far.test", "z@far.test"},
                                 "Subject: slow one\r\n\r\nsecret body\r\n");
        for (auto a : {"u@far.test", "v@far.test", "w@far.test", "x@far.test", "y@far.test"}) {
            f.script.answers[a] = {Outcome::temporary, "451 4.3.0 try later"};
        }
        // Before the time: deferred, no notice.
        RunStats s = f.run();
        CHECK(s.deferred == 5);
        CHECK(s.bounces == 0);
        CHECK(f.queued() == std::vector<std::string>{id});
        CHECK_FALSE(f.envelope(id).delay_notified);
        // After it: one notice, about u (DELAY), v (no NOTIFY) and y
        // (DELAY), not w (FAILURE only), x (NEVER) or z (delivered).
        f.clock.advance(4h);
        s = f.run();
        CHECK(s.deferred == 5);
        CHECK(s.bounces == 1);
        CHECK(s.delayed == 1);
        Envelope e = f.envelope(id);
        REQUIRE(e.delay_notified);
        CHECK(*e.delay_notified == rfc3339_utc(f.clock.now()));
        auto q = f.queued();
        REQUIRE(q.size() == 2);
        const std::string notice = q[0] == id ? q[1] : q[0];
        Envelope b = f.envelope(notice);
        CHECK(b.mail_from == "");
        REQUIRE(b.recipients.size() == 1);
        CHECK(b.recipients[0].address == "alice@b.test");
        std::string m = f.message(notice);
        CHECK(m.find("Subject: Delayed Mail (still being retried)\r\n") != std::string::npos);
        CHECK(m.find("has not yet been delivered to the following\r\nrecipients:\r\n\r\n"
                     "<u@far.test>: 451 4.3.0 try later\r\n<v@far.test>: 451 4.3.0 try later\r\n"
                     "<y@far.test>: 451 4.3.0 try later\r\n") != std::string::npos);
        CHECK(m.find("Original-Envelope-Id: ENV42\r\n") != std::string::npos);
        CHECK(m.find("Original-Recipient: rfc822; U@far.test\r\nFinal-Recipient: rfc822; u@far.test\r\n"
                     "Action: delayed\r\nStatus: 4.3.0\r\nDiagnostic-Code: smtp; 451 4.3.0 try later\r\n"
                     "Last-Attempt-Date: ") != std::string::npos);
        // Will-Retry-Until: the arrival plus max-queue-time (5 days).
        auto arrived = parse_rfc3339_utc(e.received_at);
        REQUIRE(arrived);
        CHECK(m.find("Will-Retry-Until: " + rfc5322_date(*arrived + 5 * 24h) + "\r\n") != std::string::npos);
        CHECK(m.find("Final-Recipient: rfc822; w@far.test") == std::string::npos);
        CHECK(m.find("Final-Recipient: rfc822; x@far.test") == std::string::npos);
        CHECK(m.find("Final-Recipient: rfc822; z@far.test") == std::string::npos);
        CHECK(m.find("Action: failed") == std::string::npos);
        CHECK(m.find("Content-Type: text/rfc822-headers\r\n") != std::string::npos);
        CHECK(m.find("Subject: slow one") != std::string::npos);
        CHECK(m.find("secret body") == std::string::npos);
        CHECK(f.log.has("event=bounce id=" + id + " bounce_id=" + notice + " to=alice@b.test kind=delay"));
        // Never a second one, however long it waits.
        f.clock.advance(24h);
        s = f.run({id});
        CHECK(s.deferred == 5);
        CHECK(s.bounces == 0);
        CHECK(f.queued().size() == 2);
        CHECK(f.envelope(id).delay_notified == e.delay_notified);
    }

    TEST_CASE("delay notice: also for a message that is not due, without a delivery attempt")
    {
        Fixture f;
        f.delay_warning = 1h;
        std::string id = f.queue("alice@b.test", {"u@far.test"});
        f.script.answers["u@far.test"] = {Outcome::temporary, "451 4.3.0 try later"};
        f.run();
        f.clock.advance(50min);
        f.run();
        Envelope e = f.envelope(id);
        CHECK(e.attempts == 2);
        const auto next = e.next_attempt;
        // 1h 10m after arrival, the next attempt is an hour away.
        f.clock.advance(20min);
        f.script.calls.clear();
        RunStats s = f.run();
        CHECK(s.not_due == 1);
        CHECK(s.bounces == 1);
        CHECK(f.script.calls.empty());
        e = f.envelope(id);
        CHECK(e.delay_notified == rfc3339_utc(f.clock.now()));
        CHECK(e.attempts == 2);
        CHECK(e.next_attempt == next);
        // The notice names the last attempt's time, not now.
        auto q = f.queued();
        REQUIRE(q.size() == 2);
        std::string m = f.message(q[0] == id ? q[1] : q[0]);
        CHECK(m.find("Last-Attempt-Date: " + rfc5322_date(*parse_rfc3339_utc(*e.last_attempt)) + "\r\n") !=
              std::string::npos);
        CHECK(f.run().bounces == 0);
    }

    TEST_CASE("delay notice: never to the null sender, a limited envelope's sender, or without --delay-warning")
    {
        for (int which = 0; which < 4; ++which) {
            CAPTURE(which);
            Fixture f;
            f.delay_warning = 1h;
            std::string sender = "alice@b.test";
            if (which == 0) {
                sender = "";
            } else if (which == 1) {
                f.tweak = [](Envelope& e) { e.dsn_limited = true; };
            } else if (which == 2) {
                f.delay_warning.reset();
            } else {
                f.tweak = [](Envelope& e) { e.recipients[0].notify = Notify{"SUCCESS", "FAILURE"}; };
            }
            std::string id = f.queue(sender, {"u@far.test"});
            f.script.answers["u@far.test"] = {Outcome::temporary, "451 4.3.0 try later"};
            f.clock.advance(2h);
            RunStats s = f.run();
            CHECK(s.deferred == 1);
            CHECK(s.bounces == 0);
            CHECK(f.queued() == std::vector<std::string>{id});
            CHECK_FALSE(f.envelope(id).delay_notified);
        }
    }

    TEST_CASE("delay notice: a message that fails for good or expires in that run gets no delay notice")
    {
        Fixture f;
        f.delay_warning = 1h;
        f.queue("alice@b.test", {"u@far.test"});
        f.script.answers["u@far.test"] = {Outcome::permanent, "550 5.1.1 no"};
        f.clock.advance(2h);
        RunStats s = f.run();
        CHECK(s.bounces == 1);
        auto q = f.queued();
        REQUIRE(q.size() == 1);
        CHECK(f.message(q[0]).find("Action: delayed") == std::string::npos);
    }

    TEST_CASE("concurrency: worker processes share the queue; their counts add up, every message once")
    {
        Fixture f;
        f.concurrency = 3;
        f.per_host = 2;
        std::string why;
        f.routes.push_back(*parse_route("other.test=smtp:other.test", why));
        for (int i = 0; i < 12; ++i) {
            f.queue("a@b.test", {"u" + std::to_string(i) + (i % 3 == 0 ? "@other.test" : "@far.test")});
        }
        f.tweak = [](Envelope& e) { e.held = true; };
        std::string held = f.queue("a@b.test", {"h@far.test"});
        // Delivered by the workers: this process's deliverers are never made.
        RunStats s = f.run();
        CHECK(s.workers == 3); // far.test gets two, other.test one
        CHECK(s.messages == 13);
        CHECK(s.held == 1);
        CHECK(s.attempted == 12);
        CHECK(s.delivered == 12);
        CHECK(s.removed == 12);
        CHECK(s.errors == 0);
        CHECK(f.queued() == std::vector<std::string>{held});
        CHECK(f.script.created == 0);
        CHECK(f.log.has("event=runq-done messages=13 attempted=12 delivered=12"));
        CHECK(f.log.has("workers=3"));
    }

    TEST_CASE("concurrency: for the mx transport each recipient domain is a next hop of its own")
    {
        Fixture f;
        f.concurrency = 3;
        f.per_host = 1;
        std::string why;
        f.routes = {*parse_route("*=mx", why)};
        for (const char* domain : {"one.test", "two.test", "three.test"}) {
            f.queue("a@b.test", {std::string("u@") + domain});
            f.queue("a@b.test", {std::string("v@") + domain});
        }
        RunStats s = f.run();
        // One worker per domain; with the transport as the next hop, all six
        // messages would share one worker (per_host 1).
        CHECK(s.workers == 3);
        CHECK(s.delivered == 6);
        CHECK(f.queued().empty());
    }
}
