// Tests of the end of a message with content filters (a fake FilterPort):
// verdicts, edits to the stored message and the envelope, and the
// Authentication-Results: hygiene of every message.
#include "session_fixture.hpp"

#include <doctest/doctest.h>

using namespace smtpspool;
using namespace testutil;

namespace {

std::vector<int> codes(std::string_view out) { return SessionFixture::codes(out); }

// Answers end_of_message as the test says; proceeds everywhere else.
class FakeFilter final : public FilterPort {
public:
    FilterVerdict connect(const FilterConnect&) override { return {}; }
    FilterVerdict helo(std::string_view) override { return {}; }
    FilterVerdict mail(std::string_view, const std::vector<std::string>&, const FilterMessageFacts&) override
    {
        return {};
    }
    FilterVerdict rcpt(std::string_view, const std::vector<std::string>&) override { return {}; }
    FilterVerdict data(const FilterMessageFacts&) override { return {}; }
    void message(std::string_view) override {}
    EndOfMessageVerdict end_of_message(const MessageSource&) override
    {
        ++ends;
        return eom;
    }
    void abort() override {}
    void quit() override {}

    EndOfMessageVerdict eom;
    int ends = 0;
};

struct FilterFixture : SessionFixture {
    explicit FilterFixture(SessionConfig c = test_config()) : SessionFixture(std::move(c))
    {
        session.use_filter(filter);
    }
    FakeFilter filter;
};

const std::string k_head = "EHLO client.test\r\nMAIL FROM:<a@b.test>\r\nRCPT TO:<u@mx.test>\r\nRCPT TO:<v@mx.test>\r\n";
const std::string k_data = "DATA\r\nSubject: hi\r\nX-Tag: one\r\n\r\nbody\r\n.\r\n";

std::vector<std::string> addresses(const Envelope& e)
{
    std::vector<std::string> out;
    for (const Recipient& r : e.recipients) {
        out.push_back(r.address);
    }
    return out;
}

using Action = FilterVerdict::Action;

} // namespace

TEST_SUITE("session filter edits")
{
    TEST_CASE("without edits the message is stored as it came, and the filter is asked once per message")
    {
        FilterFixture f;
        std::string out = f.send(k_head + k_data + "MAIL FROM:<a@b.test>\r\nRCPT TO:<u@mx.test>\r\n" + k_data);
        CHECK(codes(out) == std::vector<int>{250, 250, 250, 250, 354, 250, 250, 250, 354, 250});
        CHECK(f.filter.ends == 2);
        REQUIRE(f.spool.messages.size() == 2);
        CHECK(f.spool.rewrites == 0);
        CHECK(f.spool.messages[0].data.find("\r\nSubject: hi\r\nX-Tag: one\r\n\r\nbody\r\n") != std::string::npos);
        CHECK(!f.log.has("event=filter "));
    }

    TEST_CASE("reject and tempfail: the filter's reply, or ours; nothing stored; the data hook not asked")
    {
        for (Action a : {Action::reject, Action::tempfail}) {
            FilterFixture f;
            f.filter.eom.verdict.action = a;
            f.filter.eom.verdict.reason = "spam";
            std::string out = f.send(k_head + k_data);
            CHECK(out.find(a == Action::reject ? "554 5.7.1 refused by a content filter\r\n"
                                               : "451 4.7.1 a content filter is not available; try again later\r\n") !=
                  std::string::npos);
            CHECK(f.spool.messages.empty());
            CHECK(!f.spool.open);
            CHECK(f.log.has("event=rejected reason=filter"));
            CHECK(f.log.has("event=filter stage=eom action=" + std::string(a == Action::reject ? "reject" : "tempfail")));
            CHECK(f.log.has("reason=spam"));
            for (const std::string& q : f.policy.asked) {
                CHECK(q.rfind("message", 0) != 0);
            }
            // The session goes on.
            out = f.send("MAIL FROM:<a@b.test>\r\n");
            CHECK(codes(out) == std::vector<int>{250});
        }
        FilterFixture g;
        g.filter.eom.verdict.action = Action::reject;
        g.filter.eom.verdict.reply = Reply{554, "5.7.0", "virus found"};
        CHECK(g.send(k_head + k_data).find("554 5.7.0 virus found\r\n") != std::string::npos);
    }

    TEST_CASE("discard: 250, nothing stored, logged")
    {
        FilterFixture f;
        f.filter.eom.verdict.action = Action::discard;
        std::string out = f.send(k_head + k_data);
        CHECK(codes(out).back() == 250);
        CHECK(f.spool.messages.empty());
        CHECK(!f.spool.open);
        CHECK(f.log.has("event=discarded id=ID1 size="));
        CHECK(f.log.has(" reason=filter"));
        CHECK(!f.log.has("event=queued"));
    }

    TEST_CASE("quarantine: stored on hold, with its edits")
    {
        FilterFixture f;
        f.filter.eom.verdict.action = Action::quarantine;
        f.filter.eom.verdict.reason = "looks odd";
        f.filter.eom.edits.headers.push_back({HeaderEdit::Kind::add, "X-Quarantined", "yes", 0});
        std::string out = f.send(k_head + k_data);
        CHECK(codes(out).back() == 250);
        REQUIRE(f.spool.messages.size() == 1);
        CHECK(f.spool.messages[0].envelope.held);
        CHECK(f.spool.messages[0].data.find("X-Tag: one\r\nX-Quarantined: yes\r\n\r\nbody") != std::string::npos);
        CHECK(f.log.has("event=filter stage=eom id=ID1 action=quarantine reason=\"looks odd\" headers=1"));
        CHECK(f.log.has("held=yes"));
    }

    TEST_CASE("header and body edits reach the stored message before the data hook sees it")
    {
        FilterFixture f;
        f.policy.message.headers = "X-Hook: 1\r\n";
        auto& e = f.filter.eom.edits;
        e.headers.push_back({HeaderEdit::Kind::change, "x-tag", "two", 1});
        e.headers.push_back({HeaderEdit::Kind::insert, "X-First", "0", 0});
        e.headers.push_back({HeaderEdit::Kind::change, "Subject", "", 1});
        e.body = "new body\n";
        f.filter.eom.verdict.action = Action::accept;
        std::string out = f.send(k_head + k_data);
        CHECK(codes(out).back() == 250);
        REQUIRE(f.spool.messages.size() == 1);
        const std::string& m = f.spool.messages[0].data;
        CHECK(m.rfind("X-Hook: 1\r\nX-First: 0\r\nReceived: from client.test", 0) == 0);
        CHECK(m.find("Subject:") == std::string::npos);
        CHECK(m.find("\r\nx-tag: two\r\n\r\nnew body\r\n") != std::string::npos);
        CHECK(m.find("body\r\n") == m.find("new body\r\n") + 4);
        CHECK(f.spool.messages[0].envelope.size == m.size());
        CHECK(f.log.has("action=accept headers=3 body=replaced"));
    }

    TEST_CASE("recipients added (checked as RCPT TO, aliases expanded) and deleted; the sender changed")
    {
        FilterFixture f;
        f.policy.recipients["list@mx.test"] = {std::nullopt, {"x@mx.test", "y@remote.test"}};
        auto& e = f.filter.eom.edits;
        e.delete_recipients = {"U@MX.TEST", "nobody@mx.test"};
        e.add_recipients = {"list@mx.test", "w@Remote.Test", "v@mx.test"};
        e.sender = "new@sender.test";
        std::string out = f.send(k_head + k_data);
        CHECK(codes(out).back() == 250);
        REQUIRE(f.spool.messages.size() == 1);
        const Envelope& env = f.spool.messages[0].envelope;
        CHECK(addresses(env) == std::vector<std::string>{"v@mx.test", "x@mx.test", "y@remote.test", "w@remote.test"});
        CHECK(env.recipients[1].original == "list@mx.test");
        CHECK(env.mail_from == "new@sender.test");
        CHECK(f.policy.asked.back().rfind("message", 0) == 0); // the data hook after the filter
        CHECK(f.log.has("from=new@sender.test added=3 deleted=1"));
        CHECK(f.spool.rewrites == 0); // no header or body edit: the message file is not touched
    }

    TEST_CASE("the null sender may be set; a sender that MAIL FROM would refuse is a local error")
    {
        FilterFixture f;
        f.filter.eom.edits.sender = "";
        f.send(k_head + k_data);
        REQUIRE(f.spool.messages.size() == 1);
        CHECK(f.spool.messages[0].envelope.mail_from.empty());

        FilterFixture g;
        g.filter.eom.edits.sender = "bad address@x";
        std::string out = g.send(k_head + k_data);
        CHECK(out.find("451 4.3.0") != std::string::npos);
        CHECK(g.spool.messages.empty());
        CHECK(g.log.has("event=rejected reason=filter-edit"));
        CHECK(g.log.has("error=\"sender <bad address@x>"));
    }

    TEST_CASE("an edit that cannot be made refuses the message with 451 and changes nothing")
    {
        auto refused = [](MessageEdits edits, SessionConfig c = test_config()) {
            FilterFixture f(c);
            f.filter.eom.edits = std::move(edits);
            std::string out = f.send(k_head + k_data);
            CHECK(codes(out).back() == 451);
            CHECK(f.spool.messages.empty());
            CHECK(!f.spool.open);
            CHECK(f.spool.rewrites == 0);
            return f.log.has("reason=filter-edit");
        };
        MessageEdits bad_name;
        bad_name.headers.push_back({HeaderEdit::Kind::add, "Bad Name", "v", 0});
        CHECK(refused(bad_name));
        MessageEdits injected;
        injected.headers.push_back({HeaderEdit::Kind::add, "X-Ok", "v\r\nBcc: evil@x.test", 0});
        CHECK(refused(injected));
        MessageEdits nul_body;
        nul_body.body = std::string("a\0b", 3);
        CHECK(refused(nul_body));
        MessageEdits bad_rcpt;
        bad_rcpt.add_recipients = {"no domain@"};
        CHECK(refused(bad_rcpt));
        MessageEdits non_ascii; // the transaction has no SMTPUTF8
        non_ascii.add_recipients = {"j\xc3\xb6rg@mx.test"};
        CHECK(refused(non_ascii));
        MessageEdits too_many; // --max-recipients 5, two taken
        too_many.add_recipients = {"a1@mx.test", "a2@mx.test", "a3@mx.test", "a4@mx.test"};
        CHECK(refused(too_many));
    }

    TEST_CASE("what a policy service says of a recipient a filter adds counts: hold, header lines")
    {
        FilterFixture f;
        PolicyPort::RecipientVerdict held{std::nullopt, {"hold@mx.test"}};
        held.hold = true;
        held.headers = "X-Policy: held\r\n";
        f.policy.recipients["hold@mx.test"] = held;
        f.filter.eom.edits.add_recipients = {"hold@mx.test"};
        std::string out = f.send(k_head + k_data);
        CHECK(codes(out).back() == 250);
        REQUIRE(f.spool.messages.size() == 1);
        CHECK(f.spool.messages[0].envelope.held);
        CHECK(f.spool.messages[0].data.rfind("X-Policy: held\r\nReceived:", 0) == 0);
    }

    TEST_CASE("a recipient the policy refuses, added by a filter, refuses the message with 451")
    {
        FilterFixture f;
        f.policy.recipients["gone@mx.test"] = {replies::user_unknown(), {}};
        f.filter.eom.edits.add_recipients = {"gone@mx.test"};
        std::string out = f.send(k_head + k_data);
        CHECK(codes(out).back() == 451);
        CHECK(f.spool.messages.empty());
        CHECK(f.log.has("error=\"recipient <gone@mx.test>"));
    }

    TEST_CASE("every recipient deleted: 250 and nothing stored, as Postfix does")
    {
        FilterFixture f;
        f.filter.eom.edits.delete_recipients = {"u@mx.test", "v@mx.test"};
        std::string out = f.send(k_head + k_data);
        CHECK(codes(out).back() == 250);
        CHECK(f.spool.messages.empty());
        CHECK(!f.spool.open);
        CHECK(f.log.has("event=discarded id=ID1 size="));
        CHECK(f.log.has(" reason=no-recipients"));
    }

    TEST_CASE("the spool failing to rewrite: 451 (452 when full), nothing stored")
    {
        for (int err : {EIO, ENOSPC}) {
            FilterFixture f;
            f.spool.fail_rewrite = true;
            f.spool.fail_errno = err;
            f.filter.eom.edits.headers.push_back({HeaderEdit::Kind::add, "X", "y", 0});
            std::string out = f.send(k_head + k_data);
            CHECK(codes(out).back() == (err == EIO ? 451 : 452));
            CHECK(f.spool.messages.empty());
            CHECK(!f.spool.open);
            CHECK(f.log.has("event=rejected reason=local-error"));
        }
    }

    TEST_CASE("BDAT messages get the same end of message")
    {
        FilterFixture f;
        f.filter.eom.edits.headers.push_back({HeaderEdit::Kind::add, "X-Bdat", "1", 0});
        std::string out = f.send(k_head + "BDAT 12\r\nSubject: a\r\nBDAT 8 LAST\r\n\r\nbody\r\n");
        CHECK(codes(out).back() == 250);
        REQUIRE(f.spool.messages.size() == 1);
        CHECK(f.spool.messages[0].data.find("Subject: a\r\nX-Bdat: 1\r\n\r\nbody\r\n") != std::string::npos);
    }

    TEST_CASE("the session's own refusals come before the filter is asked")
    {
        SessionConfig c = test_config();
        c.check_headers = true;
        FilterFixture f(c);
        std::string out = f.send(k_head + "DATA\r\nno colon here\r\n\r\nbody\r\n.\r\n");
        CHECK(codes(out).back() == 550);
        CHECK(f.filter.ends == 0);
    }
}

TEST_SUITE("session authentication-results")
{
    TEST_CASE("fields claiming our authserv-id are taken out, in DATA and across BDAT chunks; others stay")
    {
        SessionConfig c = test_config();
        c.authserv_id = "auth.mx.test";
        SessionFixture f(c);
        const std::string header = "Authentication-Results: auth.mx.test; spf=pass\r\n"
                                   "Authentication-Results: other.test; spf=fail\r\n"
                                   "Authentication-Results: (x) AUTH.MX.TEST;\r\n\tdkim=pass\r\n"
                                   "Subject: s\r\n\r\n"
                                   "Authentication-Results: auth.mx.test; body\r\n";
        std::string out = f.send(k_head + "DATA\r\n" + header + ".\r\n");
        CHECK(codes(out).back() == 250);
        // BDAT, a chunk boundary inside a field that goes.
        const std::size_t cut = 30;
        out = f.send("MAIL FROM:<a@b.test>\r\nRCPT TO:<u@mx.test>\r\nBDAT " + std::to_string(cut) + "\r\n" +
                     header.substr(0, cut) + "BDAT " + std::to_string(header.size() - cut) + " LAST\r\n" +
                     header.substr(cut));
        CHECK(codes(out).back() == 250);
        REQUIRE(f.spool.messages.size() == 2);
        for (const StoredMessage& m : f.spool.messages) {
            std::string client = m.data.substr(m.data.find("Authentication-Results: other"));
            CHECK(client == "Authentication-Results: other.test; spf=fail\r\nSubject: s\r\n\r\n"
                            "Authentication-Results: auth.mx.test; body\r\n");
            CHECK(m.envelope.size == m.data.size());
        }
        CHECK(f.log.has("event=authentication-results-removed id=ID1 fields=2"));
        CHECK(f.log.has("event=authentication-results-removed id=ID2 fields=2"));
    }

    TEST_CASE("the authserv-id is the hostname by default; a message with none logs nothing")
    {
        SessionFixture f;
        std::string out = f.send(k_head + "DATA\r\nAuthentication-Results: mx.test; x\r\nA: b\r\n\r\n.\r\n" + k_head.substr(18) +
                                 k_data);
        CHECK(codes(out).back() == 250);
        REQUIRE(f.spool.messages.size() == 2);
        CHECK(f.spool.messages[0].data.find("Authentication-Results") == std::string::npos);
        CHECK(f.log.has("event=authentication-results-removed id=ID1 fields=1"));
        CHECK(!f.log.has("id=ID2 fields"));
    }

    TEST_CASE("a message that is all header section, its last field ours, ends without it")
    {
        SessionFixture f;
        const std::string message = "A: b\r\nAuthentication-Results: mx.test";
        f.send(k_head + "BDAT " + std::to_string(message.size()) + " LAST\r\n" + message);
        REQUIRE(f.spool.messages.size() == 1);
        const std::string& m = f.spool.messages[0].data;
        CHECK(m.substr(m.size() - 6) == "A: b\r\n");
    }
}
