// Tests of the session core against MemorySpool: whole dialogues, pipelining,
// chunking, limits, errors, local failures, the Received: header.
#include "session_fixture.hpp"

#include <doctest/doctest.h>

#include <cctype>

using namespace smtpspool;
using namespace testutil;

namespace {

const std::string k_envelope = "EHLO client.test\r\nMAIL FROM:<a@b.test>\r\nRCPT TO:<u@mx.test>\r\nDATA\r\n";

std::vector<int> codes(std::string_view out) { return SessionFixture::codes(out); }

} // namespace

TEST_SUITE("session")
{
    TEST_CASE("a complete dialogue spools one message")
    {
        SessionFixture f;
        CHECK(f.wire == "220 mx.test ESMTP smtpspool ready\r\n");
        std::string out = f.send(k_envelope + "Subject: t\r\n\r\n..body\r\n.\r\nQUIT\r\n");
        CHECK(codes(out) == std::vector<int>{250, 250, 250, 354, 250, 221});
        CHECK(f.closed);
        REQUIRE(f.spool.messages.size() == 1);
        const StoredMessage& m = f.spool.messages[0];
        CHECK(m.envelope.mail_from == "a@b.test");
        REQUIRE(m.envelope.recipients.size() == 1);
        CHECK(m.envelope.recipients[0].address == "u@mx.test");
        CHECK(m.envelope.recipients[0].status == RecipientStatus::pending);
        CHECK(m.envelope.client.address == "192.0.2.7");
        CHECK(m.envelope.client.port == 40000u);
        CHECK(m.envelope.client.helo == "client.test");
        CHECK(m.envelope.client.protocol == "ESMTP");
        CHECK(m.envelope.hostname == "mx.test");
        CHECK(m.envelope.received_at == "2026-11-18T11:06:40Z");
        CHECK(f.log.has("event=connect client=192.0.2.7 port=40000 relay=no"));
        CHECK(m.envelope.size == m.data.size());
        auto body_at = m.data.find("\r\n\r\n");
        REQUIRE(m.data.substr(0, 10) == "Received: ");
        CHECK(m.data.substr(m.data.find("Subject: t")) == "Subject: t\r\n\r\n.body\r\n");
        CHECK(body_at != std::string::npos);
        CHECK(out.find("queued as ID1") != std::string::npos);
        CHECK(f.log.has("event=queued id=ID1"));
        CHECK(f.log.has("event=disconnect reason=quit messages=1"));
    }

    TEST_CASE("the Received: header follows RFC 5321 §4.4")
    {
        SessionConfig c = test_config();
        c.peer.hostname = "client.rdns.test";
        SessionFixture f(c);
        f.send(k_envelope + "x\r\n.\r\n");
        REQUIRE(f.spool.messages.size() == 1);
        std::string data = f.spool.messages[0].data;
        std::string header = data.substr(0, data.find("x\r\n"));
        const std::string fixed = "Received: from client.test (client.rdns.test [192.0.2.7])\r\n"
                                  "\tby mx.test (smtpspool) with ESMTP id ID1\r\n"
                                  "\tfor <u@mx.test>; ";
        REQUIRE(header.substr(0, fixed.size()) == fixed);
        // RFC 5322 date-time with a numeric zone: "Wed, 18 Nov 2026 11:06:40 +0000".
        std::string date = header.substr(fixed.size());
        REQUIRE(date.size() == 33);
        CHECK(date.substr(31) == "\r\n");
        CHECK(date.substr(3, 2) == ", ");
        CHECK(std::string("MonTueWedThuFriSatSun").find(date.substr(0, 3)) % 3 == 0);
        CHECK(std::string("JanFebMarAprMayJunJulAugSepOctNovDec").find(date.substr(8, 3)) % 3 == 0);
        CHECK(date.substr(11, 6) == " 2026 ");
        CHECK((date[26] == '+' || date[26] == '-'));
        for (std::size_t i : {5u, 6u, 17u, 18u, 20u, 21u, 23u, 24u, 27u, 28u, 29u, 30u}) {
            CHECK(std::isdigit(static_cast<unsigned char>(date[i])));
        }
    }

    TEST_CASE("Received: omits FOR with several recipients and sanitises the HELO name")
    {
        SessionConfig c = test_config();
        c.peer.address = "2001:db8::7";
        SessionFixture f(c);
        f.send("HELO evil(name);[x]\r\nMAIL FROM:<a@b.test>\r\nRCPT TO:<u@mx.test>\r\nRCPT TO:<v@mx.test>\r\n"
               "DATA\r\nx\r\n.\r\n");
        REQUIRE(f.spool.messages.size() == 1);
        std::string data = f.spool.messages[0].data;
        CHECK(data.find("Received: from evil?name???x? ([IPv6:2001:db8::7])") == 0);
        CHECK(data.find(" with SMTP id ") != std::string::npos);
        CHECK(data.find("\tfor ") == std::string::npos);
        CHECK(f.spool.messages[0].envelope.client.protocol == "SMTP");
        CHECK(f.spool.messages[0].envelope.client.helo == "evil(name);[x]");
    }

    TEST_CASE("the reply to a message is handed out before the input after it is read")
    {
        SessionFixture f;
        f.send(k_envelope);
        Output o = f.session.feed("x\r\n.\r\nMAIL FROM:<b@b.test>\r\nRCPT TO:<u@mx.test>\r\n");
        CHECK(o.wire.substr(0, 4) == "250 ");
        CHECK(o.wire.find("2.1.0") == std::string::npos);
        CHECK(o.consumed == 6);
        CHECK(f.spool.messages.size() == 1);
    }

    TEST_CASE("pipelined commands are answered in order in one batch")
    {
        SessionFixture f;
        std::string out = f.send("EHLO c\r\nMAIL FROM:<a@b.test>\r\nRCPT TO:<u@mx.test>\r\nRCPT TO:<x@far.test>\r\n"
                                 "RCPT TO:<v@mx.test>\r\nDATA\r\n");
        CHECK(codes(out) == std::vector<int>{250, 250, 250, 550, 250, 354});
        out = f.send("hi\r\n.\r\nMAIL FROM:<>\r\nRCPT TO:<postmaster>\r\nDATA\r\nbounce\r\n.\r\nQUIT\r\n");
        CHECK(codes(out) == std::vector<int>{250, 250, 250, 354, 250, 221});
        REQUIRE(f.spool.messages.size() == 2);
        CHECK(f.spool.messages[0].envelope.recipients.size() == 2);
        CHECK(f.spool.messages[1].envelope.mail_from == "");
        CHECK(f.spool.messages[1].envelope.recipients[0].address == "postmaster");
    }

    TEST_CASE("the outcome does not depend on how the input is chunked")
    {
        std::string input = k_envelope + "a\r\n..b\r\n.\r\nRSET\r\nNOOP\r\nMAIL FROM:<c@d.test> SIZE=5\r\nRCPT "
                                         "TO:<bad@far.test>\r\nDATA\r\nQUIT\r\n";
        SessionFixture whole;
        whole.send(input);
        for (std::size_t step : {1u, 2u, 3u, 7u, 64u}) {
            SessionFixture f;
            for (std::size_t i = 0; i < input.size(); i += step) {
                f.send(input.substr(i, step));
            }
            INFO("chunk size " << step);
            CHECK(f.wire == whole.wire);
            REQUIRE(f.spool.messages.size() == 1);
            CHECK(f.spool.messages[0].data == whole.spool.messages[0].data);
        }
    }

    TEST_CASE("network clients must end command lines with CRLF; local clients may use LF")
    {
        SessionFixture net;
        CHECK(codes(net.send("NOOP\n")) == std::vector<int>{500});
        CHECK(net.wire.find("500 5.5.2") != std::string::npos);
        CHECK(codes(net.send("NO\rOP\r\n")) == std::vector<int>{500});
        SessionFixture local(test_config(true));
        CHECK(codes(local.send("HELO x\nMAIL FROM:<a@b.test>\nRCPT TO:<u@far.test>\nDATA\nline\n.\nQUIT\n")) ==
              std::vector<int>{250, 250, 250, 354, 250, 221});
        REQUIRE(local.spool.messages.size() == 1);
        CHECK(local.spool.messages[0].data.find("line\r\n") != std::string::npos);
        CHECK(local.spool.messages[0].envelope.client.address == std::nullopt);
        CHECK(local.spool.messages[0].data.find("(smtpspool, from a local client)") != std::string::npos);
    }

    TEST_CASE("bare LF in the data of a network client: 550 after the real end, nothing spooled")
    {
        SessionFixture f;
        std::string out = f.send(k_envelope + "a\n.\nMAIL FROM:<evil@x.test>\r\n.\r\nNOOP\r\n");
        CHECK(codes(out) == std::vector<int>{250, 250, 250, 354, 550, 250});
        CHECK(out.find("550 5.5.2") != std::string::npos);
        CHECK(f.spool.messages.empty());
        CHECK(f.spool.aborts >= 1);
        CHECK(f.session.state() == State::greeted);
        CHECK(f.log.has("event=rejected reason=bare-line-end code=550"));
    }

    TEST_CASE("size limit: SIZE= refused early, data beyond the limit refused after the end")
    {
        SessionFixture f; // max 1000
        CHECK(codes(f.send("EHLO c\r\nMAIL FROM:<a@b.test> SIZE=1001\r\n")) == std::vector<int>{250, 552});
        CHECK(f.session.state() == State::greeted);
        std::string big(3000, 'x');
        std::string out = f.send("MAIL FROM:<a@b.test>\r\nRCPT TO:<u@mx.test>\r\nDATA\r\n" + big + "\r\n.\r\nNOOP\r\n");
        CHECK(codes(out) == std::vector<int>{250, 250, 354, 552, 250});
        CHECK(out.find("552 5.3.4") != std::string::npos);
        CHECK(f.spool.messages.empty());
        CHECK(f.spool.peak < 1500); // stopped storing when the limit was crossed
    }

    TEST_CASE("recipient limit: 452 and the transaction goes on")
    {
        SessionFixture f; // max 5
        std::string cmds = "EHLO c\r\nMAIL FROM:<a@b.test>\r\n";
        for (int i = 0; i < 7; ++i) {
            cmds += "RCPT TO:<u" + std::to_string(i) + "@mx.test>\r\n";
        }
        std::string out = f.send(cmds + "DATA\r\nx\r\n.\r\n");
        CHECK(codes(out) == std::vector<int>{250, 250, 250, 250, 250, 250, 250, 452, 452, 354, 250});
        CHECK(out.find("452 4.5.3") != std::string::npos);
        // A repeat of an accepted recipient at the limit is still fine.
        CHECK(codes(f.send("MAIL FROM:<a@b.test>\r\nRCPT TO:<u0@mx.test>\r\nRCPT TO:<u1@mx.test>\r\n"
                           "RCPT TO:<u2@mx.test>\r\nRCPT TO:<u3@mx.test>\r\nRCPT TO:<u4@mx.test>\r\n"
                           "RCPT TO:<u4@mx.test>\r\nRCPT TO:<u5@mx.test>\r\n")) ==
              std::vector<int>{250, 250, 250, 250, 250, 250, 250, 452});
        CHECK(f.log.has("event=rcpt to=u4@mx.test result=duplicate"));
        REQUIRE(f.spool.messages.size() == 1);
        CHECK(f.spool.messages[0].envelope.recipients.size() == 5);
    }

    TEST_CASE("duplicate recipients are stored once")
    {
        SessionFixture f;
        f.send("EHLO c\r\nMAIL FROM:<a@b.test>\r\nRCPT TO:<u@mx.test>\r\nRCPT TO:<u@MX.TEST>\r\nDATA\r\nx\r\n.\r\n");
        REQUIRE(f.spool.messages.size() == 1);
        CHECK(f.spool.messages[0].envelope.recipients.size() == 1);
    }

    TEST_CASE("relay control")
    {
        SessionFixture stranger;
        std::string out = stranger.send("EHLO c\r\nMAIL FROM:<a@b.test>\r\nRCPT TO:<x@far.test>\r\nRCPT "
                                        "TO:<y@LOCALHOST>\r\nRCPT TO:<postmaster>\r\n");
        CHECK(codes(out) == std::vector<int>{250, 250, 550, 250, 250});
        CHECK(out.find("550 5.7.1 relaying denied") != std::string::npos);
        CHECK(stranger.log.has("event=rcpt to=x@far.test result=refused code=550"));
        SessionConfig c = test_config();
        c.may_relay = true;
        SessionFixture friendly(c);
        CHECK(codes(friendly.send("EHLO c\r\nMAIL FROM:<a@b.test>\r\nRCPT TO:<x@far.test>\r\n")) ==
              std::vector<int>{250, 250, 250});
    }

    TEST_CASE("over-long command lines get 500 and the session stays in step")
    {
        SessionFixture f; // max line 600
        std::string out = f.send("NOOP " + std::string(2000, 'a') + "\r\nNOOP\r\n");
        CHECK(codes(out) == std::vector<int>{500, 250});
        CHECK(out.find("500 5.5.2 line too long") != std::string::npos);
        // An over-long line arriving in pieces.
        f.send("NOOP " + std::string(400, 'a'));
        f.send(std::string(400, 'a'));
        CHECK(codes(f.send("\r\nNOOP\r\n")) == std::vector<int>{500, 250});
        // Exactly at the limit (CRLF included) is fine.
        CHECK(codes(f.send("NOOP " + std::string(593, 'a') + "\r\n")) == std::vector<int>{250});
        CHECK(codes(f.send("NOOP " + std::string(594, 'a') + "\r\n")) == std::vector<int>{500});
    }

    TEST_CASE("too many errors: 421 and the session ends")
    {
        SessionFixture f; // max errors 10
        std::string cmds;
        for (int i = 0; i < 12; ++i) {
            cmds += "BOGUS\r\n";
        }
        std::string out = f.send(cmds);
        auto c = codes(out);
        REQUIRE(c.size() == 11);
        CHECK(c[9] == 500);
        CHECK(c[10] == 421);
        CHECK(out.find("421 4.7.0") != std::string::npos);
        CHECK(f.closed);
        CHECK(f.send("NOOP\r\n").empty());
        CHECK(f.log.has("reason=too-many-errors"));
    }

    TEST_CASE("an HTTP request ends the session at once, without a reply")
    {
        SessionFixture f;
        CHECK(f.send("GET / HTTP/1.1\r\nHost: x\r\n\r\n").empty());
        CHECK(f.closed);
        CHECK(f.log.has("event=http-request"));
        SessionFixture bare; // a network client with bare LF line ends, as HTTP clients may send
        CHECK(bare.send("POST /x HTTP/1.0\nHost: x\n\n").empty());
        CHECK(bare.closed);
    }

    TEST_CASE("end of input in the middle of DATA spools nothing")
    {
        SessionFixture f;
        f.send(k_envelope + "partial line\r\nmore");
        CHECK(f.spool.open);
        Output o = f.session.end_of_input();
        CHECK(o.close);
        CHECK(f.spool.messages.empty());
        CHECK_FALSE(f.spool.open);
        CHECK(f.log.has("reason=eof-in-data"));
    }

    TEST_CASE("timeout: 421 4.4.2 and nothing spooled")
    {
        SessionFixture f;
        f.send(k_envelope + "partial");
        Output o = f.session.timeout();
        CHECK(o.wire == "421 4.4.2 mx.test timeout, closing connection\r\n");
        CHECK(o.close);
        CHECK(f.spool.messages.empty());
        CHECK_FALSE(f.spool.open);
    }

    TEST_CASE("local failures: 451, 452 or 552, transaction discarded, session continues")
    {
        SUBCASE("begin fails: 451 to DATA, the transaction stays")
        {
            SessionFixture f;
            f.spool.fail_begin = true;
            CHECK(codes(f.send(k_envelope)) == std::vector<int>{250, 250, 250, 451});
            CHECK(f.wire.find("451 4.3.0") != std::string::npos);
            f.spool.fail_begin = false;
            CHECK(codes(f.send("DATA\r\nx\r\n.\r\n")) == std::vector<int>{354, 250});
            CHECK(f.spool.messages.size() == 1);
        }
        SUBCASE("disk full while writing: 452 4.3.1 after the end")
        {
            SessionFixture f;
            f.spool.fail_append_after = 300;
            f.spool.fail_errno = ENOSPC;
            std::string out = f.send(k_envelope + std::string(900, 'y') + "\r\n.\r\nNOOP\r\n");
            CHECK(codes(out) == std::vector<int>{250, 250, 250, 354, 452, 250});
            CHECK(out.find("452 4.3.1") != std::string::npos);
            CHECK(f.spool.messages.empty());
            CHECK(f.session.state() == State::greeted);
        }
        SUBCASE("a file-size limit while writing (EFBIG): 552 5.3.4 after the end")
        {
            SessionFixture f;
            f.spool.fail_append_after = 300;
            f.spool.fail_errno = EFBIG;
            std::string out = f.send(k_envelope + std::string(900, 'y') + "\r\n.\r\nNOOP\r\n");
            CHECK(codes(out) == std::vector<int>{250, 250, 250, 354, 552, 250});
            CHECK(out.find("552 5.3.4 message too big for this system") != std::string::npos);
            CHECK(f.spool.messages.empty());
            CHECK(f.session.state() == State::greeted);
        }
        SUBCASE("commit fails: 451, and the next message goes through")
        {
            SessionFixture f;
            f.spool.fail_commit = true;
            CHECK(codes(f.send(k_envelope + "x\r\n.\r\n")) == std::vector<int>{250, 250, 250, 354, 451});
            f.spool.fail_commit = false;
            CHECK(codes(f.send("MAIL FROM:<a@b.test>\r\nRCPT TO:<u@mx.test>\r\nDATA\r\nx\r\n.\r\n")) ==
                  std::vector<int>{250, 250, 354, 250});
            CHECK(f.spool.messages.size() == 1);
        }
    }

    TEST_CASE("HELO and EHLO arguments, ESMTP parameters after HELO, rfc821 mode")
    {
        SessionFixture f;
        CHECK(codes(f.send("HELO\r\nEHLO\r\nHELO a b\r\n")) == std::vector<int>{501, 501, 501});
        CHECK(f.session.state() == State::connected);
        CHECK(codes(f.send("HELO c\r\nMAIL FROM:<a@b.test> BODY=8BITMIME\r\nMAIL FROM:<a@b.test>\r\n")) ==
              std::vector<int>{250, 555, 250});
        SessionConfig c = test_config();
        c.rfc821 = true;
        SessionFixture old(c);
        CHECK(old.wire == "220 mx.test SMTP smtpspool ready\r\n");
        CHECK(codes(old.send("EHLO c\r\nHELO c\r\n")) == std::vector<int>{502, 250});
        CHECK(old.session.state() == State::greeted);
    }

    TEST_CASE("EHLO, HELO and RSET reset the transaction, and DATA/RSET/QUIT take no arguments")
    {
        SessionFixture f;
        f.send("EHLO c\r\nMAIL FROM:<a@b.test>\r\nRCPT TO:<u@mx.test>\r\n");
        CHECK(codes(f.send("EHLO c\r\nRCPT TO:<u@mx.test>\r\n")) == std::vector<int>{250, 503});
        f.send("MAIL FROM:<a@b.test>\r\n");
        CHECK(codes(f.send("RSET x\r\nRSET\r\nDATA\r\n")) == std::vector<int>{501, 250, 503});
        f.send("MAIL FROM:<a@b.test>\r\nRCPT TO:<u@mx.test>\r\n");
        CHECK(codes(f.send("DATA now\r\nQUIT now\r\nVRFY\r\n")) == std::vector<int>{501, 501, 501});
        CHECK_FALSE(f.closed);
    }

    TEST_CASE("SMTPUTF8: stored in the envelope and named in Received:")
    {
        SessionFixture f;
        f.send("EHLO c\r\nMAIL FROM:<j\xc3\xb6rg@b.test> SMTPUTF8 BODY=8BITMIME\r\nRCPT TO:<\xc3\xbc@mx.test>\r\n"
               "DATA\r\nx\r\n.\r\n");
        REQUIRE(f.spool.messages.size() == 1);
        CHECK(f.spool.messages[0].envelope.smtputf8);
        CHECK(f.spool.messages[0].envelope.body == Body::eight_bit_mime);
        CHECK(f.spool.messages[0].data.find("with UTF8SMTP id") != std::string::npos);
    }
}
