// Tests of BDAT (RFC 3030 CHUNKING) and BODY=BINARYMIME in the session core:
// chunks, their replies, the stored octets, limits, refusals whose octets are
// discarded, and the same outcome at every split of the input.
#include "session_fixture.hpp"

#include <doctest/doctest.h>

using namespace smtpspool;
using namespace testutil;

namespace {

const std::string k_ehlo = "EHLO client.test\r\n";
const std::string k_binary_tx = k_ehlo + "MAIL FROM:<a@b.test> BODY=BINARYMIME\r\nRCPT TO:<u@mx.test>\r\n";
const std::string k_plain_tx = k_ehlo + "MAIL FROM:<a@b.test>\r\nRCPT TO:<u@mx.test>\r\n";

std::vector<int> codes(std::string_view out) { return SessionFixture::codes(out); }

// The stored message after its Received: header (the first line and its
// continuation lines).
std::string after_received(const std::string& data)
{
    std::size_t pos = data.find("\r\n");
    while (pos != std::string::npos && pos + 2 < data.size() && data[pos + 2] == '\t') {
        pos = data.find("\r\n", pos + 2);
    }
    return pos == std::string::npos ? std::string() : data.substr(pos + 2);
}

// The reply lines after the EHLO reply, one string.
std::string last_replies(const std::string& wire, std::size_t count)
{
    std::vector<std::string> lines;
    std::size_t pos = 0;
    while (pos < wire.size()) {
        std::size_t end = wire.find("\r\n", pos);
        lines.push_back(wire.substr(pos, end + 2 - pos));
        pos = end + 2;
    }
    std::string out;
    for (std::size_t i = lines.size() - std::min(count, lines.size()); i < lines.size(); ++i) {
        out += lines[i];
    }
    return out;
}

} // namespace

TEST_SUITE("session")
{
    TEST_CASE("BDAT: a BINARYMIME message in three chunks is stored octet for octet")
    {
        SessionFixture f;
        const std::string one("\x00\r\n.\r\n\n", 7);
        const std::string two = "\r\rQUIT\r\n";
        const std::string three = "\xff.";
        std::string out = f.send(k_binary_tx + "BDAT 7\r\n" + one + "BDAT 8\r\n" + two + "BDAT 2 LAST\r\n" + three);
        CHECK(codes(out) == std::vector<int>{250, 250, 250, 250, 250, 250});
        CHECK(last_replies(out, 3) == "250 2.0.0 7 octets received\r\n250 2.0.0 8 octets received\r\n"
                                      "250 2.0.0 message accepted, queued as ID1\r\n");
        CHECK(f.session.state() == State::greeted);
        REQUIRE(f.spool.messages.size() == 1);
        const StoredMessage& m = f.spool.messages[0];
        CHECK(after_received(m.data) == one + two + three);
        CHECK(m.data.rfind("Received: from client.test ([192.0.2.7])\r\n\tby mx.test (smtpspool) with ESMTP id ID1\r\n",
                           0) == 0);
        CHECK(m.envelope.body == Body::binary_mime);
        CHECK(m.envelope.size == m.data.size());
        CHECK(f.log.has("event=mail from=a@b.test size=0 body=BINARYMIME"));
        CHECK(f.log.has("event=queued id=ID1 size=" + std::to_string(m.data.size()) + " recipients=1 chunks=3"));
        CHECK_FALSE(f.closed); // the QUIT was data
    }

    TEST_CASE("BDAT: every split of the input gives the same replies and the same message")
    {
        const std::string input = k_binary_tx + "BDAT 5\r\nab\r\nc" + "NOOP\r\n" +
                                  std::string("BDAT 3 LAST\r\n\n\r\0", 16) +
                                  "MAIL FROM:<b@b.test>\r\nBDAT 6\r\nRSET\r\nRCPT TO:<v@mx.test>\r\nBDAT 2 LAST\r\nhi" +
                                  "BDAT 0 LAST\r\nQUIT\r\n";
        SessionFixture whole;
        whole.send(input);
        CHECK(codes(whole.wire) == std::vector<int>{220, 250, 250, 250, 250, 250, 250, 250, 554, 250, 250, 503, 221});
        REQUIRE(whole.spool.messages.size() == 2);
        CHECK(after_received(whole.spool.messages[0].data) == std::string("ab\r\nc\n\r\0", 8));
        CHECK(after_received(whole.spool.messages[1].data) == "hi");
        CHECK(whole.spool.messages[1].envelope.body == Body::seven_bit);
        CHECK(whole.closed);
        for (std::size_t split = 0; split <= input.size(); ++split) {
            SessionFixture f;
            f.send(input.substr(0, split));
            f.send(input.substr(split));
            INFO("split at " << split);
            REQUIRE(f.wire == whole.wire);
            REQUIRE(f.spool.messages.size() == 2);
            CHECK(f.spool.messages[0].data == whole.spool.messages[0].data);
            CHECK(f.spool.messages[1].data == whole.spool.messages[1].data);
        }
        SessionFixture bytewise;
        for (char c : input) {
            bytewise.send(std::string(1, c));
        }
        CHECK(bytewise.wire == whole.wire);
        CHECK(bytewise.spool.messages.size() == 2);
    }

    TEST_CASE("BDAT: the reply to a chunk is handed out before the input after it is read")
    {
        SessionFixture f;
        f.send(k_binary_tx);
        Output o = f.session.feed("BDAT 3\r\nabcNOOP\r\n");
        CHECK(o.wire == "250 2.0.0 3 octets received\r\n");
        CHECK(o.consumed == 11);
        o = f.session.feed("BDAT 0 LAST\r\nNOOP\r\n");
        CHECK(o.wire == "250 2.0.0 message accepted, queued as ID1\r\n");
        CHECK(o.consumed == 13);
    }

    TEST_CASE("BDAT 0 LAST: an empty message; BDAT 0 in the middle: 0 octets received")
    {
        SessionFixture f;
        std::string out = f.send(k_plain_tx + "BDAT 0 LAST\r\n");
        CHECK(last_replies(out, 1) == "250 2.0.0 message accepted, queued as ID1\r\n");
        REQUIRE(f.spool.messages.size() == 1);
        CHECK(after_received(f.spool.messages[0].data) == "");
        out = f.send("MAIL FROM:<a@b.test>\r\nRCPT TO:<u@mx.test>\r\nBDAT 0\r\nBDAT 0\r\nBDAT 1 last\r\nx");
        CHECK(last_replies(out, 3) == "250 2.0.0 0 octets received\r\n250 2.0.0 0 octets received\r\n"
                                      "250 2.0.0 message accepted, queued as ID2\r\n");
        REQUIRE(f.spool.messages.size() == 2);
        CHECK(after_received(f.spool.messages[1].data) == "x");
        CHECK(f.log.has("chunks=3"));
    }

    TEST_CASE("BDAT over the size limit: 552 at that chunk, its octets read away, the transaction over")
    {
        SessionFixture f; // max_message_size 1000
        std::string out = f.send(k_plain_tx + "BDAT 600\r\n" + std::string(600, 'a') + "BDAT 401\r\n" +
                                 std::string(401, 'b') + "BDAT 6 LAST\r\nNOOP\r\n" + "NOOP\r\n");
        CHECK(last_replies(out, 4) == "250 2.0.0 600 octets received\r\n"
                                      "552 5.3.4 message exceeds the size limit of 1000 octets\r\n"
                                      "503 5.5.1 bad sequence of commands: send MAIL first\r\n"
                                      "250 2.0.0 OK\r\n");
        CHECK(f.spool.messages.empty());
        CHECK_FALSE(f.spool.open);
        CHECK(f.spool.peak <= 1000 + 200); // the Received: header and at most the limit
        CHECK(f.session.state() == State::greeted);
        CHECK(f.log.has("event=rejected reason=too-big code=552 size=1001 chunks=2"));
        // Exactly the limit is fine; a huge announced size is refused without
        // storing anything, and read away.
        out = f.send("MAIL FROM:<a@b.test>\r\nRCPT TO:<u@mx.test>\r\nBDAT 1000 LAST\r\n" + std::string(1000, 'c'));
        CHECK(last_replies(out, 1) == "250 2.0.0 message accepted, queued as ID2\r\n");
        out = f.send("MAIL FROM:<a@b.test>\r\nRCPT TO:<u@mx.test>\r\nBDAT 99999999999999999999\r\n");
        CHECK(codes(out) == std::vector<int>{250, 250, 501}); // above 2^64 - 1: a syntax error
        out = f.send("BDAT 18446744073709551615 LAST\r\n" + std::string(5000, 'd'));
        CHECK(out.empty()); // still reading the announced octets
        CHECK(f.spool.peak <= 1200);
        CHECK_FALSE(f.spool.open);
        CHECK(f.spool.messages.size() == 1);
    }

    TEST_CASE("BDAT refused at the command: the announced octets are still read and discarded")
    {
        SessionFixture f;
        std::string out = f.send("BDAT 6\r\nQUIT\r\nNOOP\r\n");
        CHECK(out == "503 5.5.1 bad sequence of commands: send HELO or EHLO first\r\n250 2.0.0 OK\r\n");
        out = f.send(k_ehlo + "BDAT 6 LAST\r\nQUIT\r\n");
        CHECK(last_replies(out, 1) == "503 5.5.1 bad sequence of commands: send MAIL first\r\n");
        out = f.send("MAIL FROM:<a@b.test>\r\nBDAT 6\r\nQUIT\r\n");
        CHECK(last_replies(out, 1) == "554 5.5.1 no valid recipients\r\n");
        CHECK(f.session.state() == State::in_mail);
        // The size parsed but the rest did not: 501, and the octets go too.
        out = f.send("RCPT TO:<u@mx.test>\r\nBDAT 6 NOW\r\nQUIT\r\nNOOP\r\n");
        CHECK(last_replies(out, 2) == "501 5.5.4 syntax: BDAT <size> [LAST]\r\n250 2.0.0 OK\r\n");
        CHECK(f.session.state() == State::in_rcpt);
        // No size at all: 501 and what follows is read as commands.
        out = f.send("BDAT\r\nBDAT x\r\nNOOP\r\n");
        CHECK(out == "501 5.5.4 syntax: BDAT <size> [LAST]\r\n501 5.5.4 syntax: BDAT <size> [LAST]\r\n"
                     "250 2.0.0 OK\r\n");
        CHECK(f.spool.messages.empty());
        CHECK_FALSE(f.closed);
        CHECK(f.log.has("event=bdat size=6 result=refused code=503"));
    }

    TEST_CASE("BDAT needs EHLO: 503 after HELO, 502 with --rfc821; the octets discarded")
    {
        SessionFixture helo;
        std::string out = helo.send("HELO client.test\r\nMAIL FROM:<a@b.test>\r\nRCPT TO:<u@mx.test>\r\n"
                                    "BDAT 6 LAST\r\nQUIT\r\nNOOP\r\n");
        CHECK(last_replies(out, 2) == "503 5.5.1 bad sequence of commands: send EHLO before BDAT\r\n250 2.0.0 OK\r\n");
        CHECK(helo.session.state() == State::in_rcpt);
        out = helo.send("DATA\r\nx\r\n.\r\n");
        CHECK(helo.spool.messages.size() == 1);
        SessionConfig c = test_config();
        c.rfc821 = true;
        SessionFixture old(c);
        out = old.send("BDAT 6\r\nQUIT\r\nHELO client.test\r\nMAIL FROM:<a@b.test>\r\nRCPT TO:<u@mx.test>\r\n"
                       "BDAT 0 LAST\r\n");
        CHECK(out == "502 5.5.1 command not implemented\r\n250 mx.test hello client.test\r\n250 2.1.0 sender OK\r\n"
                     "250 2.1.5 recipient OK\r\n502 5.5.1 command not implemented\r\n");
        CHECK(old.spool.messages.empty());
        CHECK_FALSE(old.spool.open);
    }

    TEST_CASE("BDAT after a 554 greeting: 503 and the octets discarded")
    {
        SessionConfig c = test_config();
        c.client_denied = true;
        SessionFixture f(c);
        std::string out = f.send("BDAT 6\r\nQUIT\r\nNOOP\r\n");
        CHECK(out == "503 5.5.1 no SMTP service for this client; only QUIT\r\n"
                     "503 5.5.1 no SMTP service for this client; only QUIT\r\n");
        CHECK_FALSE(f.closed);
    }

    TEST_CASE("BODY=BINARYMIME: DATA gets 503, BDAT is needed; between chunks only BDAT, RSET, NOOP, QUIT")
    {
        SessionFixture f;
        std::string out = f.send(k_binary_tx + "DATA\r\n");
        CHECK(last_replies(out, 1) ==
              "503 5.5.1 bad sequence of commands: a BODY=BINARYMIME message must be sent with BDAT\r\n");
        CHECK(f.session.state() == State::in_rcpt);
        out = f.send("BDAT 2\r\nhiDATA\r\nMAIL FROM:<c@d.test>\r\nRCPT TO:<v@mx.test>\r\nEHLO x\r\nHELP\r\nNOOP\r\n");
        const std::string pending =
            "503 5.5.1 bad sequence of commands: send BDAT ... LAST to end the message, or RSET\r\n";
        CHECK(out ==
              "250 2.0.0 2 octets received\r\n" + pending + pending + pending + pending + pending + "250 2.0.0 OK\r\n");
        CHECK(f.session.state() == State::in_bdat);
        out = f.send("BDAT 1 LAST\r\n!");
        REQUIRE(f.spool.messages.size() == 1);
        CHECK(after_received(f.spool.messages[0].data) == "hi!");
        CHECK(f.spool.messages[0].envelope.recipients.size() == 1);
        // BINARYMIME needs EHLO: after HELO no parameter is allowed.
        out = f.send("HELO client.test\r\nMAIL FROM:<a@b.test> BODY=BINARYMIME\r\n");
        CHECK(last_replies(out, 1) == "555 5.5.4 parameters are not allowed after HELO, use EHLO\r\n");
    }

    TEST_CASE("RSET between chunks: nothing stored, the next transaction starts clean")
    {
        SessionFixture f;
        std::string out = f.send(k_binary_tx + "BDAT 4\r\nabcdRSET\r\nMAIL FROM:<b@b.test>\r\nRCPT "
                                               "TO:<v@mx.test>\r\nBDAT 2 LAST\r\nok");
        CHECK(codes(out) == std::vector<int>{250, 250, 250, 250, 250, 250, 250, 250});
        REQUIRE(f.spool.messages.size() == 1);
        CHECK(after_received(f.spool.messages[0].data) == "ok");
        CHECK(f.spool.messages[0].envelope.mail_from == "b@b.test");
        CHECK(f.spool.messages[0].envelope.body == Body::seven_bit);
        CHECK(f.spool.aborts == 1);
    }

    TEST_CASE("end of input inside a chunk or between chunks stores nothing")
    {
        SessionFixture inside;
        inside.send(k_binary_tx + "BDAT 10\r\nabc");
        CHECK(inside.session.end_of_input().close);
        CHECK(inside.spool.messages.empty());
        CHECK_FALSE(inside.spool.open);
        CHECK(inside.log.has("event=disconnect reason=eof-in-bdat"));
        SessionFixture between;
        between.send(k_binary_tx + "BDAT 3\r\nabc");
        between.session.end_of_input();
        CHECK(between.spool.messages.empty());
        CHECK_FALSE(between.spool.open);
        CHECK(between.log.has("event=disconnect reason=eof-in-bdat"));
        SessionFixture timeout;
        timeout.send(k_binary_tx + "BDAT 10\r\nabc");
        CHECK(timeout.session.timeout().wire.substr(0, 4) == "421 ");
        CHECK_FALSE(timeout.spool.open);
        CHECK(timeout.spool.messages.empty());
    }

    TEST_CASE("BDAT of a 7BIT or 8BITMIME message: a bare CR or LF refuses it, from any client")
    {
        for (bool local : {false, true}) {
            SessionFixture f(test_config(local));
            // The CR at the end of the first chunk meets its LF in the second.
            std::string out = f.send(k_plain_tx + "BDAT 3\r\nab\rBDAT 2 LAST\r\n\nb");
            CHECK(last_replies(out, 2) ==
                  "250 2.0.0 3 octets received\r\n250 2.0.0 message accepted, queued as ID1\r\n");
            REQUIRE(f.spool.messages.size() == 1);
            CHECK(after_received(f.spool.messages[0].data) == "ab\r\nb");
            out = f.send("MAIL FROM:<a@b.test> BODY=8BITMIME\r\nRCPT TO:<u@mx.test>\r\nBDAT 4\r\na\nb\r"
                         "BDAT 1 LAST\r\n\n");
            CHECK(last_replies(out, 2) ==
                  "550 5.5.2 message refused: bare CR or LF in data (lines must end with CRLF)\r\n"
                  "503 5.5.1 bad sequence of commands: send MAIL first\r\n");
            out = f.send("MAIL FROM:<a@b.test>\r\nRCPT TO:<u@mx.test>\r\nBDAT 2 LAST\r\nx\r");
            CHECK(last_replies(out, 1) ==
                  "550 5.5.2 message refused: bare CR or LF in data (lines must end with CRLF)\r\n");
            CHECK(f.spool.messages.size() == 1);
            CHECK_FALSE(f.spool.open);
        }
    }

    TEST_CASE("BDAT goes through the same checks as DATA: header check, data hook, spool failures")
    {
        SessionConfig c = test_config();
        c.check_headers = true;
        SessionFixture f(c);
        f.policy.message.headers = "X-Hook: yes\r\n";
        std::string out = f.send(k_plain_tx + "BDAT 21 LAST\r\nno colon here\r\n\r\nbody");
        CHECK(last_replies(out, 1) == "550 5.6.0 malformed header section: a line that is neither a header field "
                                      "nor a continuation (no blank line before the body?)\r\n");
        out = f.send(k_plain_tx + "BDAT 13\r\nSubject: x\r\n\rBDAT 7 LAST\r\n\nbody\r\n");
        CHECK(last_replies(out, 1) == "250 2.0.0 message accepted, queued as ID2\r\n");
        REQUIRE(f.spool.messages.size() == 1);
        CHECK(f.spool.messages[0].data.rfind("X-Hook: yes\r\nReceived: ", 0) == 0);
        CHECK(f.policy.asked.back() == "message ID2 size=20 rcpts=1");

        SessionFixture fail;
        fail.spool.fail_begin = true;
        out = fail.send(k_plain_tx + "BDAT 4\r\nNOOPNOOP\r\n");
        CHECK(last_replies(out, 2) == "451 4.3.0 local error, message not queued; try again later\r\n"
                                      "250 2.0.0 OK\r\n");
        CHECK(fail.session.state() == State::in_rcpt);
        fail.spool.fail_begin = false;
        fail.spool.fail_append_after = 250;
        out = fail.send("BDAT 200\r\n" + std::string(200, 'x') + "BDAT 1 LAST\r\ny");
        CHECK(last_replies(out, 2) == "451 4.3.0 local error, message not queued; try again later\r\n"
                                      "503 5.5.1 bad sequence of commands: send MAIL first\r\n");
        CHECK(fail.spool.messages.empty());
        CHECK_FALSE(fail.spool.open);
    }
}
