// Tests of STARTTLS in the session (RFC 3207): what is offered when, the
// reset after the handshake, the plaintext sent after STARTTLS, --require-tls,
// and what an encrypted session records. The handshake itself is the
// transport's (tests/e2e/t-35-starttls.sh); here the test reports its outcome.
#include "session_fixture.hpp"

#include <doctest/doctest.h>

#include <cerrno>

using namespace smtpspool;
using namespace testutil;

namespace {

SessionConfig tls_config(bool require = false)
{
    SessionConfig c = test_config();
    c.tls_offered = true;
    c.require_tls = require;
    return c;
}

const TlsInfo k_tls{"TLSv1.3", "TLS_AES_128_GCM_SHA256"};

const std::string k_message = "MAIL FROM:<a@b.test>\r\nRCPT TO:<u@mx.test>\r\nDATA\r\nSubject: s\r\n\r\nbody\r\n.\r\n";

} // namespace

TEST_SUITE("session_tls")
{
    TEST_CASE("STARTTLS is offered after EHLO only with a certificate, and not once encrypted")
    {
        SessionFixture plain;
        CHECK(plain.send("EHLO c.test\r\n").find("STARTTLS") == std::string::npos);
        CHECK(plain.send("STARTTLS\r\n") == "502 5.5.1 command not implemented\r\n");

        SessionFixture f(tls_config());
        CHECK(f.send("EHLO c.test\r\n")
                  .find("250-DSN\r\n250-CHUNKING\r\n250-BINARYMIME\r\n250-STARTTLS\r\n250 HELP\r\n") !=
              std::string::npos);
        CHECK(f.send("STARTTLS\r\n") == "220 2.0.0 ready to start TLS\r\n");
        REQUIRE(f.start_tls);
        f.session.tls_started(k_tls, 0);
        CHECK(f.send("EHLO c.test\r\n").find("STARTTLS") == std::string::npos);
        CHECK(f.send("STARTTLS\r\n") == "503 5.5.1 TLS is already active\r\n");

        SessionConfig local = tls_config();
        local.peer = Peer{};
        SessionFixture l(local);
        CHECK(l.send("EHLO c.test\r\n").find("STARTTLS") == std::string::npos);
    }

    TEST_CASE("STARTTLS needs EHLO, no argument and no open transaction; refusals change nothing")
    {
        SessionFixture f(tls_config());
        CHECK(f.send("STARTTLS\r\n") == "503 5.5.1 bad sequence of commands: send HELO or EHLO first\r\n");
        f.send("HELO c.test\r\n");
        CHECK(f.send("STARTTLS\r\n") == "503 5.5.1 bad sequence of commands: send EHLO before STARTTLS\r\n");
        f.send("EHLO c.test\r\n");
        CHECK(f.send("STARTTLS now\r\n") == "501 5.5.4 STARTTLS takes no arguments\r\n");
        f.send("MAIL FROM:<a@b.test>\r\n");
        CHECK(f.send("STARTTLS\r\n") ==
              "503 5.5.1 bad sequence of commands: not inside a transaction (send RSET first)\r\n");
        CHECK(f.session.state() == State::in_mail);
        CHECK_FALSE(f.start_tls);
    }

    TEST_CASE("STARTTLS after HELO: the ordering refusal comes before the argument's")
    {
        // The NFA table is asked before the handler looks at the argument.
        SessionFixture f(tls_config());
        f.send("HELO c.test\r\n");
        CHECK(f.send("STARTTLS now\r\n") == "503 5.5.1 bad sequence of commands: send EHLO before STARTTLS\r\n");
        CHECK(f.session.state() == State::greeted);
    }

    TEST_CASE("the session stops reading at STARTTLS; what follows is never answered")
    {
        SessionFixture f(tls_config());
        std::string injected = "RSET\r\nMAIL FROM:<evil@x.test>\r\nRCPT TO:<u@mx.test>\r\n";
        std::string out = f.send("EHLO c.test\r\nSTARTTLS\r\n" + injected);
        const std::string ready = "220 2.0.0 ready to start TLS\r\n";
        REQUIRE(out.size() > ready.size());
        CHECK(out.substr(out.size() - ready.size()) == ready);
        REQUIRE(f.start_tls);
        CHECK(f.after_starttls == injected);
        // The transport drops those octets and says how many.
        Output o = f.session.tls_started(k_tls, injected.size());
        CHECK(o.wire.empty());
        CHECK(f.log.has("event=tls-plaintext-discarded octets=" + std::to_string(injected.size())));
        CHECK(f.log.has("event=tls version=TLSv1.3 cipher=TLS_AES_128_GCM_SHA256"));
        // Everything before is forgotten: EHLO again, no transaction open.
        CHECK(f.session.state() == State::connected);
        CHECK(f.send("MAIL FROM:<a@b.test>\r\n") == "503 5.5.1 bad sequence of commands: send HELO or EHLO first\r\n");
        f.send("EHLO again.test\r\n");
        f.send(k_message);
        REQUIRE(f.spool.messages.size() == 1);
        CHECK(f.spool.messages[0].envelope.mail_from == "a@b.test");
        CHECK(f.spool.messages[0].envelope.client.helo == "again.test");
        // The discarded plaintext counted one client error (and the 503 another).
        f.send("QUIT\r\n");
        CHECK(f.log.has("event=disconnect reason=quit messages=1 recipients=1 errors=2"));
    }

    TEST_CASE("discarded plaintext counts toward the error cap")
    {
        SessionConfig c = tls_config();
        c.max_errors = 1;
        SessionFixture f(c);
        f.send("EHLO c.test\r\nSTARTTLS\r\nNOOP\r\n");
        Output o = f.session.tls_started(k_tls, 6);
        CHECK(o.close);
        CHECK(o.wire == "421 4.7.0 mx.test too many errors, closing connection\r\n");
    }

    TEST_CASE("--require-tls: MAIL from a network client waits for TLS; local clients are not asked")
    {
        SessionFixture f(tls_config(true));
        f.send("EHLO c.test\r\n");
        CHECK(f.send("MAIL FROM:<a@b.test>\r\n") == "530 5.7.0 must issue a STARTTLS command first\r\n");
        CHECK(f.session.state() == State::greeted);
        f.send("STARTTLS\r\n");
        f.session.tls_started(k_tls, 0);
        f.send("EHLO c.test\r\n");
        f.send(k_message);
        CHECK(f.spool.messages.size() == 1);

        SessionConfig local = tls_config(true);
        local.peer = Peer{};
        SessionFixture l(local);
        l.send("EHLO c.test\r\n");
        CHECK(l.send("MAIL FROM:<a@b.test>\r\n") == "250 2.1.0 sender OK\r\n");
    }

    TEST_CASE("an encrypted message says so in Received: (ESMTPS) and in the envelope")
    {
        SessionFixture f(tls_config());
        f.send("EHLO c.test\r\nSTARTTLS\r\n");
        f.session.tls_started(k_tls, 0);
        f.send("EHLO c.test\r\n" + k_message);
        REQUIRE(f.spool.messages.size() == 1);
        const StoredMessage& m = f.spool.messages[0];
        CHECK(m.data.rfind("Received: from c.test ([192.0.2.7])\r\n\tby mx.test (smtpspool, TLSv1.3 "
                           "TLS_AES_128_GCM_SHA256) with ESMTPS id ",
                           0) == 0);
        CHECK(m.envelope.client.tls == k_tls);
        CHECK(m.envelope.client.protocol == "ESMTP");

        SessionFixture plain(tls_config());
        plain.send("EHLO c.test\r\n" + k_message);
        REQUIRE(plain.spool.messages.size() == 1);
        CHECK(plain.spool.messages[0].data.find(" with ESMTP id ") != std::string::npos);
        CHECK_FALSE(plain.spool.messages[0].envelope.client.tls);
    }

    TEST_CASE("a failed handshake ends the session and is logged")
    {
        SessionFixture f(tls_config());
        f.send("EHLO c.test\r\nSTARTTLS\r\n");
        Output o = f.session.tls_failed("TLS handshake failed: wrong version number");
        CHECK(o.close);
        CHECK(o.wire.empty());
        CHECK(f.log.has("event=tls-error reason=\"TLS handshake failed: wrong version number\""));
        CHECK(f.log.has("event=disconnect reason=tls-failed"));
    }

    TEST_CASE("hooks are told whether the session is encrypted")
    {
        SessionFixture f(tls_config());
        f.send("EHLO c.test\r\nSTARTTLS\r\n");
        f.session.tls_started(k_tls, 0);
        SessionFixture plain(tls_config());
        plain.send("EHLO c.test\r\nMAIL FROM:<a@b.test>\r\n");
        CHECK(plain.policy.tls_seen == std::vector<bool>{false});
        f.send("EHLO c.test\r\nMAIL FROM:<a@b.test>\r\nRCPT TO:<u@mx.test>\r\n");
        CHECK(f.policy.tls_seen == std::vector<bool>{true, true});
    }

    TEST_CASE("TLS that cannot be had at STARTTLS: 454, logged, the session goes on in the clear")
    {
        struct Unavailable final : public TlsPort {
            Result<void> prepare() override
            {
                ++asked;
                return Error{ENOENT, "cannot load the TLS certificate /x: No such file or directory"};
            }
            int asked = 0;
        } port;
        SessionFixture f(tls_config());
        f.session.use_tls(port);
        f.send("EHLO c.test\r\n");
        CHECK(f.send("STARTTLS\r\n") == "454 4.7.0 TLS not available due to temporary reason\r\n");
        CHECK_FALSE(f.start_tls);
        CHECK(port.asked == 1);
        CHECK(f.log.has("event=tls-error reason=\"cannot load the TLS certificate /x"));
        CHECK(f.session.state() == State::greeted);
        f.send(k_message);
        CHECK(f.spool.messages.size() == 1);
    }
}
