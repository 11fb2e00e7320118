// Tests of the session's policy questions against ScriptedPolicy: denied
// clients, sender and recipient refusals, aliases in the envelope, data
// verdicts and prepended headers, header checks, hops, messages per session.
#include "session_fixture.hpp"

#include <doctest/doctest.h>

using namespace smtpspool;
using namespace testutil;

namespace {

std::vector<int> codes(std::string_view out) { return SessionFixture::codes(out); }

const std::string k_head = "EHLO client.test\r\nMAIL FROM:<a@b.test>\r\n";

} // namespace

TEST_SUITE("session policy")
{
    TEST_CASE("a denied client hears 554 and then 503 to everything but QUIT")
    {
        SessionConfig c = test_config();
        c.client_denied = true;
        SessionFixture f(c);
        CHECK(f.wire == "554 5.7.1 mx.test no SMTP service for this client\r\n");
        CHECK(f.session.state() == State::denied);
        std::string out = f.send("EHLO x\r\nMAIL FROM:<a@b.test>\r\nNOOP\r\nQUIT\r\n");
        CHECK(out == "503 5.5.1 no SMTP service for this client; only QUIT\r\n"
                     "503 5.5.1 no SMTP service for this client; only QUIT\r\n"
                     "503 5.5.1 no SMTP service for this client; only QUIT\r\n"
                     "221 2.0.0 mx.test closing connection\r\n");
        CHECK(f.closed);
        CHECK(f.log.has("event=client-denied client=192.0.2.7"));
        CHECK(f.policy.asked.empty());
    }

    TEST_CASE("a denied client that keeps talking is cut off by the error cap")
    {
        SessionConfig c = test_config();
        c.client_denied = true;
        c.max_errors = 3;
        SessionFixture f(c);
        std::string out = f.send("HELO a\r\nHELO a\r\nHELO a\r\nHELO a\r\n");
        CHECK(codes(out) == std::vector<int>{503, 503, 503, 421});
        CHECK(f.closed);
    }

    TEST_CASE("the policy refuses a sender; the transaction does not open")
    {
        SessionFixture f;
        f.policy.sender_refusal = replies::sender_denied();
        std::string out = f.send(k_head + "RCPT TO:<u@mx.test>\r\n");
        CHECK(out.find("553 5.7.1 sender address refused\r\n") != std::string::npos);
        CHECK(out.find("503 5.5.1") != std::string::npos); // RCPT without MAIL
        CHECK(f.policy.asked.front() == "sender a@b.test helo=client.test");
        f.policy.sender_refusal.reset();
        out = f.send("MAIL FROM:<a@b.test>\r\nRCPT TO:<u@mx.test>\r\n");
        CHECK(codes(out) == std::vector<int>{250, 250});
    }

    TEST_CASE("relaying is decided before the policy is asked")
    {
        SessionFixture f;
        f.send(k_head + "RCPT TO:<x@elsewhere.test>\r\n");
        CHECK(f.wire.find("550 5.7.1 relaying denied") != std::string::npos);
        CHECK(f.policy.asked.size() == 1); // the sender only
    }

    TEST_CASE("aliases: replacements go into the envelope with the original")
    {
        SessionFixture f;
        f.policy.recipients["team@mx.test"] = {std::nullopt, {"a@mx.test", "b@other.test"}};
        f.policy.recipients["b@mx.test"] = {std::nullopt, {"b@other.test"}};
        f.policy.recipients["nobody@mx.test"] = {replies::user_unknown(), {}};
        std::string out =
            f.send(k_head + "RCPT TO:<team@mx.test>\r\nRCPT TO:<b@mx.test>\r\nRCPT TO:<nobody@mx.test>\r\n"
                            "RCPT TO:<plain@MX.test>\r\nRCPT TO:<team@mx.test>\r\nDATA\r\nSubject: x\r\n\r\n.\r\n");
        CHECK(codes(out) == std::vector<int>{250, 250, 250, 250, 550, 250, 250, 354, 250});
        CHECK(out.find("550 5.1.1 user unknown") != std::string::npos);
        REQUIRE(f.spool.messages.size() == 1);
        const auto& r = f.spool.messages[0].envelope.recipients;
        REQUIRE(r.size() == 3);
        CHECK(r[0].address == "a@mx.test");
        CHECK(r[0].original == "team@mx.test");
        CHECK(r[1].address == "b@other.test");
        CHECK(r[1].original == "team@mx.test"); // b@mx.test added nothing new
        CHECK(r[2].address == "plain@mx.test");
        CHECK_FALSE(r[2].original);
        CHECK(f.log.has("to=team@mx.test result=accepted expanded=2"));
        CHECK(f.log.has("to=team@mx.test result=duplicate"));
        CHECK(f.log.has("event=rcpt to=plain@mx.test result=accepted"));
        CHECK_FALSE(f.log.has("to=plain@mx.test result=accepted expanded"));
        // The policy saw the recipients accepted so far, and local domains as such.
        CHECK(f.policy.asked[1] == "rcpt team@mx.test local after 0");
        CHECK(f.policy.asked[4] == "rcpt plain@mx.test local after 2");
        // Received: names no single recipient (there were several RCPTs).
        CHECK(f.spool.messages[0].data.find("\tfor <") == std::string::npos);
    }

    TEST_CASE("expansions count toward --max-recipients (452, the transaction goes on)")
    {
        SessionFixture f; // max_recipients 5
        f.policy.recipients["big@mx.test"] = {std::nullopt, {"1@x.test", "2@x.test", "3@x.test", "4@x.test"}};
        std::string out = f.send(k_head + "RCPT TO:<u@mx.test>\r\nRCPT TO:<v@mx.test>\r\nRCPT TO:<big@mx.test>\r\n"
                                          "DATA\r\nSubject: x\r\n\r\n.\r\n");
        CHECK(codes(out) == std::vector<int>{250, 250, 250, 250, 452, 354, 250});
        REQUIRE(f.spool.messages.size() == 1);
        CHECK(f.spool.messages[0].envelope.recipients.size() == 2);
    }

    TEST_CASE("the data verdict: a refusal leaves nothing; headers go on top")
    {
        SessionFixture f;
        f.policy.message.refusal = replies::parse_hook_reply("554 5.7.0 virus found");
        std::string out = f.send(k_head + "RCPT TO:<u@mx.test>\r\nDATA\r\nSubject: x\r\n\r\nbody\r\n.\r\n");
        CHECK(out.find("554 5.7.0 virus found\r\n") != std::string::npos);
        CHECK(f.spool.messages.empty());
        CHECK(f.spool.aborts == 1);
        CHECK(f.log.has("event=rejected reason=policy code=554"));
        CHECK(f.policy.asked.back() == "message ID1 size=20 rcpts=1");

        f.policy.message = {std::nullopt, "X-Scanned: clean\r\n"};
        out = f.send("MAIL FROM:<a@b.test>\r\nRCPT TO:<u@mx.test>\r\nDATA\r\nSubject: x\r\n\r\nbody\r\n.\r\n");
        CHECK(codes(out) == std::vector<int>{250, 250, 354, 250});
        REQUIRE(f.spool.messages.size() == 1);
        const std::string& data = f.spool.messages[0].data;
        CHECK(data.rfind("X-Scanned: clean\r\nReceived: from client.test", 0) == 0);
        CHECK(data.substr(data.size() - 20) == "Subject: x\r\n\r\nbody\r\n");
    }

    TEST_CASE("the data hook is not asked when the message is already refused")
    {
        SessionFixture f; // max size 1000
        f.send(k_head + "RCPT TO:<u@mx.test>\r\nDATA\r\n" + std::string(1200, 'x') + "\r\n.\r\n");
        CHECK(f.wire.find("552 5.3.4") != std::string::npos);
        CHECK(f.policy.asked.back().rfind("rcpt", 0) == 0);
    }

    TEST_CASE("--check-headers refuses a malformed header section with 550 5.6.0")
    {
        SessionConfig c = test_config();
        c.check_headers = true;
        SessionFixture f(c);
        std::string out = f.send(k_head + "RCPT TO:<u@mx.test>\r\nDATA\r\nno header here\r\n.\r\n");
        CHECK(out.find("550 5.6.0 malformed header section: a line that is neither") != std::string::npos);
        CHECK(f.spool.messages.empty());
        out = f.send("MAIL FROM:<a@b.test>\r\nRCPT TO:<u@mx.test>\r\nDATA\r\nSubject: ok\r\n\r\nbody\r\n.\r\n");
        CHECK(codes(out) == std::vector<int>{250, 250, 354, 250});
        // 8-bit header octets need BODY=8BITMIME or SMTPUTF8.
        out = f.send("MAIL FROM:<a@b.test>\r\nRCPT TO:<u@mx.test>\r\nDATA\r\nSubject: \xc3\xa9\r\n\r\n.\r\n");
        CHECK(out.find("550 5.6.0 malformed header section: 8-bit") != std::string::npos);
        out = f.send(
            "MAIL FROM:<a@b.test> BODY=8BITMIME\r\nRCPT TO:<u@mx.test>\r\nDATA\r\nSubject: \xc3\xa9\r\n\r\n.\r\n");
        CHECK(codes(out) == std::vector<int>{250, 250, 354, 250});
        CHECK(f.spool.messages.size() == 2);
        CHECK(f.log.has("reason=bad-headers code=550"));
    }

    TEST_CASE("more Received: fields than --max-hops is a mail loop, checks or not")
    {
        SessionConfig c = test_config();
        c.max_hops = 2;
        c.max_message_size = 100000;
        SessionFixture f(c);
        std::string three = "Received: a\r\nReceived: b\r\nReceived: c\r\n\r\n";
        std::string out = f.send(k_head + "RCPT TO:<u@mx.test>\r\nDATA\r\n" + three + ".\r\n");
        CHECK(out.find("554 5.4.6 mail loop: more than 2 Received: headers\r\n") != std::string::npos);
        CHECK(f.spool.messages.empty());
        out = f.send("MAIL FROM:<a@b.test>\r\nRCPT TO:<u@mx.test>\r\nDATA\r\nReceived: a\r\nReceived: b\r\n\r\n.\r\n");
        CHECK(codes(out) == std::vector<int>{250, 250, 354, 250});
    }

    TEST_CASE("--max-messages-per-session: 421 at the next MAIL, then the end")
    {
        SessionConfig c = test_config();
        c.max_messages = 2;
        SessionFixture f(c);
        std::string one = "MAIL FROM:<a@b.test>\r\nRCPT TO:<u@mx.test>\r\nDATA\r\nSubject: x\r\n\r\n.\r\n";
        std::string out = f.send("EHLO c\r\n" + one + one + one);
        CHECK(codes(out) == std::vector<int>{250, 250, 250, 354, 250, 250, 250, 354, 250, 421});
        CHECK(out.find("421 4.7.0 mx.test too many messages in this session") != std::string::npos);
        CHECK(f.closed);
        CHECK(f.spool.messages.size() == 2);
        CHECK(f.log.has("reason=max-messages-per-session"));
    }

    TEST_CASE("--add-envelope-to: one X-Envelope-To: per recipient as the client named it")
    {
        SessionConfig c = test_config();
        c.add_envelope_to = true;
        SessionFixture f(c);
        f.policy.recipients["team@mx.test"] = {std::nullopt, {"a@x.test", "b@x.test"}};
        f.send(k_head + "RCPT TO:<team@mx.test>\r\nRCPT TO:<u@mx.test>\r\nDATA\r\nSubject: x\r\n\r\n.\r\n");
        REQUIRE(f.spool.messages.size() == 1);
        const std::string& data = f.spool.messages[0].data;
        CHECK(data.find("X-Envelope-To: <team@mx.test>\r\nX-Envelope-To: <u@mx.test>\r\nSubject: x\r\n") !=
              std::string::npos);
        CHECK(data.find("X-Envelope-To: <a@x.test>") == std::string::npos);
    }
}
