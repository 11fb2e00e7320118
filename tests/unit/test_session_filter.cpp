// Tests of the session's calls of the filter port (milters) against a fake:
// what it is told at each stage, in order, and what the session does with
// each verdict at each stage.
#include "session_fixture.hpp"

#include <doctest/doctest.h>

using namespace smtpspool;
using namespace testutil;

namespace {

// A FilterPort that records each call and answers as the test says, by stage.
class FakeFilter final : public FilterPort {
public:
    FilterVerdict connect(const FilterConnect& facts) override
    {
        calls.push_back("connect " + std::string(facts.hostname) + " " + client_name(facts.peer));
        return answer("connect");
    }
    FilterVerdict helo(std::string_view name) override
    {
        calls.push_back("helo " + std::string(name));
        return answer("helo");
    }
    FilterVerdict mail(std::string_view sender, const std::vector<std::string>& parameters,
                       const FilterMessageFacts& facts) override
    {
        std::string c = "mail <" + std::string(sender) + ">";
        for (const std::string& p : parameters) {
            c += " " + p;
        }
        if (!facts.id.empty()) {
            c += " id=" + std::string(facts.id);
        }
        if (!facts.auth_user.empty()) {
            c += " auth=" + std::string(facts.auth_type) + ":" + std::string(facts.auth_user);
        }
        calls.push_back(c);
        return answer("mail");
    }
    FilterVerdict rcpt(std::string_view recipient, const std::vector<std::string>& parameters) override
    {
        std::string c = "rcpt <" + std::string(recipient) + ">";
        for (const std::string& p : parameters) {
            c += " " + p;
        }
        calls.push_back(c);
        return answer("rcpt " + std::string(recipient));
    }
    FilterVerdict data(const FilterMessageFacts& facts) override
    {
        calls.push_back("data id=" + std::string(facts.id));
        return answer("data");
    }
    void message(std::string_view octets) override { content += octets; }
    EndOfMessageVerdict end_of_message(const MessageSource&) override
    {
        calls.push_back("eom");
        return {};
    }
    void abort() override { calls.push_back("abort"); }
    void quit() override { calls.push_back("quit"); }

    FilterVerdict answer(const std::string& stage)
    {
        auto it = verdicts.find(stage);
        return it == verdicts.end() ? FilterVerdict{} : it->second;
    }

    std::map<std::string, FilterVerdict> verdicts;
    std::vector<std::string> calls;
    std::string content;
};

FilterVerdict verdict(FilterVerdict::Action a, std::optional<Reply> r = std::nullopt)
{
    return FilterVerdict{a, std::move(r), "milter test"};
}

using A = FilterVerdict::Action;

class Anyone final : public AuthPort {
public:
    AuthVerdict check(std::string_view, std::string_view) override { return AuthVerdict::ok; }
};

// A session with the filter, started.
struct Filtered {
    explicit Filtered(std::map<std::string, FilterVerdict> v = {}, SessionConfig c = test_config())
        : clock(TimePoint(std::chrono::seconds(1795000000))), session(std::move(c), spool, policy, log, clock)
    {
        filter.verdicts = std::move(v);
        session.use_filter(filter);
        Output o = session.start();
        wire = o.wire;
        closed = o.close;
    }
    std::string send(std::string_view bytes)
    {
        Fed fed = feed_until_consumed(session, bytes);
        closed = closed || fed.close;
        return fed.wire;
    }
    MemorySpool spool;
    ScriptedPolicy policy;
    RecordingLog log;
    FixedClock clock;
    FakeFilter filter;
    Session session;
    std::string wire;
    bool closed = false;
};

std::vector<int> codes(std::string_view out) { return SessionFixture::codes(out); }

const std::string k_message = "Subject: hi\r\n\r\nbody\r\n";

} // namespace

TEST_SUITE("session filter")
{
    TEST_CASE("every stage in order, the parameters, the message octets as stored, quit")
    {
        Filtered f;
        CHECK(codes(f.wire) == std::vector<int>{220});
        std::string out = f.send("EHLO client.test\r\nMAIL FROM:<a@b.test> SIZE=100 BODY=8BITMIME\r\n"
                                 "RCPT TO:<U@mx.test> NOTIFY=NEVER\r\nRCPT TO:<v@mx.test>\r\nDATA\r\n" +
                                 k_message + ".\r\nQUIT\r\n");
        CHECK(codes(out) == std::vector<int>{250, 250, 250, 250, 354, 250, 221});
        CHECK(f.filter.calls == std::vector<std::string>{"connect mx.test 192.0.2.7", "helo client.test",
                                                         "mail <a@b.test> SIZE=100 BODY=8BITMIME",
                                                         "rcpt <u@mx.test> NOTIFY=NEVER", "rcpt <v@mx.test>",
                                                         "data id=ID1", "eom", "abort", "quit"});
        CHECK(f.filter.content == f.spool.messages.front().data);
        CHECK(f.filter.content.find("Received: ") == 0);
    }

    TEST_CASE("BDAT: the data stage at the first chunk, every chunk's octets")
    {
        Filtered f;
        f.send("EHLO c.test\r\nMAIL FROM:<a@b.test>\r\nRCPT TO:<u@mx.test>\r\n");
        std::string out = f.send("BDAT 5\r\nSubj:BDAT 4 LAST\r\n x\r\n");
        CHECK(codes(out) == std::vector<int>{250, 250});
        CHECK(std::count(f.filter.calls.begin(), f.filter.calls.end(), "data id=ID1") == 1);
        CHECK(f.filter.content.substr(f.filter.content.size() - 9) == "Subj: x\r\n");
    }

    TEST_CASE("connect: reject is a denied client, tempfail is 421 and the end, accept asks no more")
    {
        Filtered rejected({{"connect", verdict(A::reject)}});
        CHECK(rejected.wire == "554 5.7.1 mx.test no SMTP service for this client\r\n");
        CHECK(codes(rejected.send("EHLO x\r\nMAIL FROM:<a@b.test>\r\n")) == std::vector<int>{503, 503});
        CHECK(rejected.log.has("event=client-denied client=192.0.2.7 reason=\"milter test\""));
        Filtered own({{"connect", verdict(A::reject, Reply{550, "5.7.0", "not you"})}});
        CHECK(own.wire == "550 5.7.0 not you\r\n");
        Filtered later({{"connect", verdict(A::tempfail)}});
        CHECK(later.wire == "421 4.7.1 mx.test a content filter is not available; closing connection\r\n");
        CHECK(later.closed);
        CHECK(later.filter.calls.back() == "quit");
        Filtered accepted({{"connect", verdict(A::accept)}});
        accepted.send("EHLO c.test\r\nMAIL FROM:<a@b.test>\r\nQUIT\r\n");
        CHECK(accepted.filter.calls == std::vector<std::string>{"connect mx.test 192.0.2.7", "quit"});
    }

    TEST_CASE("a denied client is not shown to the filter")
    {
        SessionConfig c = test_config();
        c.client_denied = true;
        Filtered f({}, c);
        f.send("EHLO x\r\nQUIT\r\n");
        CHECK(f.filter.calls == std::vector<std::string>{"quit"});
    }

    TEST_CASE("helo: reject and tempfail refuse the greeting, with the milter's reply or ours")
    {
        Filtered f({{"helo", verdict(A::reject)}});
        CHECK(f.send("EHLO c.test\r\n") == "554 5.7.1 refused by a content filter\r\n");
        f.filter.verdicts["helo"] = verdict(A::tempfail, Reply{451, "4.3.2", "busy"});
        CHECK(f.send("HELO c.test\r\n") == "451 4.3.2 busy\r\n");
        f.filter.verdicts.clear();
        CHECK(codes(f.send("HELO c.test\r\nMAIL FROM:<a@b.test>\r\n")) == std::vector<int>{250, 250});
        CHECK(f.log.has("event=filter stage=helo action=reject code=554"));
        CHECK(!f.closed);
    }

    TEST_CASE("a milter's own 421 ends the session, at HELO, MAIL, RCPT and DATA")
    {
        for (const char* stage : {"helo", "mail", "rcpt u@mx.test", "data"}) {
            CAPTURE(stage);
            Filtered f({{stage, verdict(A::tempfail, Reply{421, "4.7.0", "going away"})}});
            std::string out = f.send("EHLO c.test\r\nMAIL FROM:<a@b.test>\r\nRCPT TO:<u@mx.test>\r\nDATA\r\n");
            CHECK(out.find("421 4.7.0 going away\r\n") != std::string::npos);
            CHECK(out.substr(out.size() - 22) == "421 4.7.0 going away\r\n");
            CHECK(f.closed);
            CHECK(f.filter.calls.back() == "quit");
        }
    }

    TEST_CASE("mail: reject and tempfail refuse it (no transaction), discard takes it and stores nothing")
    {
        Filtered f({{"mail", verdict(A::reject)}});
        std::string out = f.send("EHLO c.test\r\nMAIL FROM:<a@b.test>\r\nRCPT TO:<u@mx.test>\r\n");
        CHECK(codes(out) == std::vector<int>{250, 554, 503});
        CHECK(f.filter.calls.back() == "abort");
        f.filter.verdicts["mail"] = verdict(A::tempfail);
        CHECK(f.send("MAIL FROM:<a@b.test>\r\n") == "451 4.7.1 a content filter is not available; try again later\r\n");
        f.filter.verdicts["mail"] = verdict(A::discard);
        f.filter.calls.clear();
        out = f.send("MAIL FROM:<a@b.test>\r\nRCPT TO:<u@mx.test>\r\nDATA\r\n" + k_message + ".\r\n");
        CHECK(codes(out) == std::vector<int>{250, 250, 354, 250});
        CHECK(f.spool.messages.empty());
        CHECK(f.filter.calls == std::vector<std::string>{"mail <a@b.test>", "abort"}); // no more calls for it
        CHECK(f.filter.content.empty());
        CHECK(f.log.has("event=discarded"));
    }

    TEST_CASE("rcpt: reject refuses that recipient, discard drops it with 250, accept ends the filtering")
    {
        Filtered f({{"rcpt x@mx.test", verdict(A::reject, Reply{550, "5.1.1", "no such user"})},
                    {"rcpt d@mx.test", verdict(A::discard)},
                    {"rcpt t@mx.test", verdict(A::tempfail)}});
        std::string out = f.send("EHLO c.test\r\nMAIL FROM:<a@b.test>\r\nRCPT TO:<x@mx.test>\r\n"
                                 "RCPT TO:<d@mx.test>\r\nRCPT TO:<t@mx.test>\r\nRCPT TO:<u@mx.test>\r\nDATA\r\n" +
                                 k_message + ".\r\n");
        CHECK(codes(out) == std::vector<int>{250, 250, 550, 250, 451, 250, 354, 250});
        REQUIRE(f.spool.messages.size() == 1);
        const Envelope& e = f.spool.messages.front().envelope;
        REQUIRE(e.recipients.size() == 1);
        CHECK(e.recipients[0].address == "u@mx.test");
        CHECK(f.log.has("event=rcpt to=d@mx.test result=discarded"));
        Filtered a({{"rcpt u@mx.test", verdict(A::accept)}});
        a.send("EHLO c.test\r\nMAIL FROM:<a@b.test>\r\nRCPT TO:<u@mx.test>\r\nRCPT TO:<v@mx.test>\r\nDATA\r\n" +
               k_message + ".\r\n");
        CHECK(std::count(a.filter.calls.begin(), a.filter.calls.end(), "rcpt <v@mx.test>") == 0);
        CHECK(std::count(a.filter.calls.begin(), a.filter.calls.end(), "data id=ID1") == 0);
        CHECK(a.filter.content.empty());
        CHECK(a.spool.messages.size() == 1);
    }

    TEST_CASE("mail: the AUTH user and mechanism")
    {
        SessionConfig c = test_config(true);
        Filtered f({}, c);
        Anyone anyone;
        f.session.use_auth(anyone);
        // "\0bob\0pw" in base64, then LOGIN's user and password.
        f.send("EHLO c.test\r\nAUTH PLAIN AGJvYgBwdw==\r\nMAIL FROM:<a@b.test>\r\n");
        CHECK(f.filter.calls.back() == "mail <a@b.test> auth=PLAIN:bob");
        Filtered g({}, c);
        g.session.use_auth(anyone);
        g.send("EHLO c.test\r\nAUTH LOGIN\r\nYWxpY2U=\r\ncHc=\r\nMAIL FROM:<a@b.test>\r\n");
        CHECK(g.filter.calls.back() == "mail <a@b.test> auth=LOGIN:alice");
    }

    TEST_CASE("a recipient the session refuses itself is not shown to the filter")
    {
        Filtered f;
        f.send("EHLO c.test\r\nMAIL FROM:<a@b.test>\r\nRCPT TO:<u@elsewhere.test>\r\n");
        CHECK(std::none_of(f.filter.calls.begin(), f.filter.calls.end(),
                           [](const std::string& c) { return c.rfind("rcpt", 0) == 0; }));
    }

    TEST_CASE("data: reject refuses DATA and each later DATA or BDAT; RSET clears it; discard stores nothing")
    {
        Filtered f({{"data", verdict(A::reject)}});
        std::string out = f.send("EHLO c.test\r\nMAIL FROM:<a@b.test>\r\nRCPT TO:<u@mx.test>\r\nDATA\r\nBDAT 3\r\nabc");
        CHECK(codes(out) == std::vector<int>{250, 250, 250, 554, 554});
        CHECK(f.spool.messages.empty());
        CHECK(std::count(f.filter.calls.begin(), f.filter.calls.end(), "data id=ID1") == 1);
        CHECK(f.filter.calls.back() == "abort");
        f.filter.verdicts.clear();
        out = f.send("RSET\r\nMAIL FROM:<a@b.test>\r\nRCPT TO:<u@mx.test>\r\nDATA\r\n" + k_message + ".\r\n");
        CHECK(codes(out) == std::vector<int>{250, 250, 250, 354, 250});
        CHECK(f.spool.messages.size() == 1);
        Filtered d({{"data", verdict(A::discard)}});
        out = d.send("EHLO c.test\r\nMAIL FROM:<a@b.test>\r\nRCPT TO:<u@mx.test>\r\nDATA\r\n" + k_message + ".\r\n");
        CHECK(codes(out) == std::vector<int>{250, 250, 250, 354, 250});
        CHECK(d.spool.messages.empty());
        CHECK(d.spool.messages.empty());
    }

    TEST_CASE("RSET, a new EHLO and the end of the session abort an open transaction")
    {
        Filtered f;
        f.send("EHLO c.test\r\nMAIL FROM:<a@b.test>\r\nRSET\r\nMAIL FROM:<a@b.test>\r\nEHLO c.test\r\n"
               "MAIL FROM:<a@b.test>\r\n");
        f.session.end_of_input();
        CHECK(f.filter.calls == std::vector<std::string>{"connect mx.test 192.0.2.7", "helo c.test", "mail <a@b.test>",
                                                         "abort", "mail <a@b.test>", "abort", "helo c.test",
                                                         "mail <a@b.test>", "abort", "quit"});
    }
}
