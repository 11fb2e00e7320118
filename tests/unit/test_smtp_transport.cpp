// Tests of SmtpTransport against a scripted fake SMTP server on 127.0.0.1 in a
// thread: each script plays one connection; the octets it received are compared
// exactly. Waits in the fake are bounded so a broken client cannot hang the run.
#include "delivery/smtp_transport.hpp"

#include "testutil.hpp"

#include <doctest/doctest.h>

#include <arpa/inet.h>
#include <chrono>
#include <fstream>
#include <functional>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <thread>
#include <unistd.h>

using namespace smtpspool;

namespace {

constexpr int k_wait_ms = 3000; // the fake's patience; only reached when a test fails

// One accepted connection, seen from the server side.
class FakeConn {
public:
    explicit FakeConn(int fd) : m_fd(fd) {}

    void say(std::string_view text)
    {
        while (!text.empty()) {
            ssize_t n = ::send(m_fd, text.data(), text.size(), MSG_NOSIGNAL);
            if (n <= 0) {
                return;
            }
            text.remove_prefix(static_cast<std::size_t>(n));
        }
    }
    // The next line without its CRLF; "" when the client went away or stalled.
    std::string line()
    {
        for (;;) {
            auto end = m_buf.find("\r\n");
            if (end != std::string::npos) {
                std::string l = m_buf.substr(0, end);
                m_buf.erase(0, end + 2);
                return l;
            }
            if (!fill(k_wait_ms)) {
                return "";
            }
        }
    }
    // Everything up to and including the end-of-data mark.
    std::string data()
    {
        for (;;) {
            auto end = m_buf.find("\r\n.\r\n");
            if (end != std::string::npos) {
                std::string d = m_buf.substr(0, end + 5);
                m_buf.erase(0, end + 5);
                return d;
            }
            if (!fill(k_wait_ms)) {
                return "";
            }
        }
    }
    // True when the client has sent more than we consumed (within ms): a
    // client without PIPELINING must wait for each reply.
    bool more_within(int ms) { return !m_buf.empty() || fill(ms); }
    // Waits for the client to close.
    void wait_close()
    {
        while (fill(k_wait_ms)) {
        }
    }

    std::string received; // every octet the client sent

private:
    bool fill(int ms)
    {
        pollfd p{m_fd, POLLIN, 0};
        if (::poll(&p, 1, ms) <= 0) {
            return false;
        }
        char buf[4096];
        ssize_t n = ::recv(m_fd, buf, sizeof buf, 0);
        if (n <= 0) {
            return false;
        }
        m_buf.append(buf, static_cast<std::size_t>(n));
        received.append(buf, static_cast<std::size_t>(n));
        return true;
    }

    int m_fd;
    std::string m_buf;
};

using Script = std::function<void(FakeConn&)>;

// Listens on 127.0.0.1 (an ephemeral port) and plays one script per connection, in order.
class FakeServer {
public:
    explicit FakeServer(std::vector<Script> scripts) : m_scripts(std::move(scripts))
    {
        m_listen = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        sockaddr_in sa{};
        sa.sin_family = AF_INET;
        sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        socklen_t len = sizeof sa;
        if (m_listen < 0 || ::bind(m_listen, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0 ||
            ::listen(m_listen, 8) != 0 || ::getsockname(m_listen, reinterpret_cast<sockaddr*>(&sa), &len) != 0) {
            throw std::runtime_error("fake server: cannot listen");
        }
        m_port = ntohs(sa.sin_port);
        m_thread = std::thread([this] { serve(); });
    }
    ~FakeServer()
    {
        join();
        ::close(m_listen);
    }
    FakeServer(const FakeServer&) = delete;
    FakeServer& operator=(const FakeServer&) = delete;

    std::uint16_t port() const { return m_port; }
    // Waits for the scripts to end; then transcripts holds what each connection received.
    void join()
    {
        if (m_thread.joinable()) {
            m_thread.join();
        }
    }
    std::vector<std::string> transcripts;
    int connections = 0;

private:
    void serve()
    {
        for (const Script& script : m_scripts) {
            pollfd p{m_listen, POLLIN, 0};
            if (::poll(&p, 1, k_wait_ms) <= 0) {
                return;
            }
            int fd = ::accept4(m_listen, nullptr, nullptr, SOCK_CLOEXEC);
            if (fd < 0) {
                return;
            }
            ++connections;
            FakeConn conn(fd);
            script(conn);
            transcripts.push_back(conn.received);
            ::close(fd);
        }
    }

    std::vector<Script> m_scripts;
    int m_listen = -1;
    std::uint16_t m_port = 0;
    std::thread m_thread;
};

// A port nothing listens on: bound, never listened to, closed.
std::uint16_t closed_port()
{
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof sa;
    ::bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa);
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&sa), &len);
    ::close(fd);
    return ntohs(sa.sin_port);
}

const std::string k_ehlo_all = "250-fake.test hello\r\n250-PIPELINING\r\n250-SIZE 1000000\r\n250-8BITMIME\r\n"
                               "250-ENHANCEDSTATUSCODES\r\n250 SMTPUTF8\r\n";
const std::string k_ehlo_plain = "250-fake.test hello\r\n250 8BITMIME\r\n"; // no PIPELINING, no SIZE

// The greeting and EHLO, answered with `ehlo`.
void greet(FakeConn& c, const std::string& ehlo)
{
    c.say("220 fake.test ESMTP\r\n");
    c.line();
    c.say(ehlo);
}

void answer_quit(FakeConn& c)
{
    if (c.line() == "QUIT") {
        c.say("221 2.0.0 bye\r\n");
    }
    c.wait_close();
}

struct Fixture {
    testutil::TempDir dir;
    Envelope envelope;
    std::string path;

    explicit Fixture(const std::string& message, std::vector<std::string> recipients = {"u@fake.test"})
    {
        envelope.id = "ID1";
        envelope.mail_from = "a@b.test";
        for (auto& r : recipients) {
            Recipient rcpt;
            rcpt.address = r;
            envelope.recipients.push_back(rcpt);
        }
        path = dir.path() + "/message.eml";
        std::ofstream(path, std::ios::binary) << message;
        envelope.size = message.size();
    }
    Delivery delivery() const
    {
        std::vector<std::size_t> all;
        for (std::size_t i = 0; i < envelope.recipients.size(); ++i) {
            all.push_back(i);
        }
        return Delivery{envelope, testutil::open_file(path), all};
    }
};

SmtpTransport transport_to(std::uint16_t port, int timeout_s = 2)
{
    return SmtpTransport(SmtpTarget{"127.0.0.1", port}, "client.test",
                         SmtpTimeouts::uniform(std::chrono::seconds(timeout_s)));
}

std::string where(std::uint16_t port) { return "127.0.0.1:" + std::to_string(port); }

} // namespace

TEST_SUITE("smtp_transport")
{
    TEST_CASE("the default timeouts are RFC 5321's; uniform sets them all")
    {
        SmtpTimeouts d;
        CHECK(d.connect.count() == 60);
        CHECK(d.greeting.count() == 300);
        CHECK(d.helo.count() == 300);
        CHECK(d.mail.count() == 300);
        CHECK(d.rcpt.count() == 300);
        CHECK(d.data_init.count() == 120);
        CHECK(d.data_block.count() == 180);
        CHECK(d.data_done.count() == 600);
        SmtpTimeouts u = SmtpTimeouts::uniform(std::chrono::seconds(7));
        for (auto s : {u.connect, u.greeting, u.helo, u.mail, u.rcpt, u.data_init, u.data_block, u.data_done}) {
            CHECK(s.count() == 7);
        }
    }

    TEST_CASE("a pipelined delivery: exact octets, dot-stuffing, SIZE and BODY, QUIT on finish")
    {
        const std::string message = "Subject: t\r\n\r\n.leading dot\r\nbody \xc3\xa9\r\n.\r\nlast";
        Fixture f(message);
        f.envelope.body = Body::eight_bit_mime;
        FakeServer server({[](FakeConn& c) {
            greet(c, k_ehlo_all);
            // No reply until DATA is in: a client that waited for replies would stall here.
            c.line();
            c.line();
            c.line();
            c.say("250 2.1.0 ok\r\n250 2.1.5 ok\r\n354 go ahead\r\n");
            c.data();
            c.say("250 2.0.0 queued as X1\r\n");
            answer_quit(c);
        }});
        auto t = transport_to(server.port());
        auto out = t.deliver(f.delivery());
        CHECK(t.connected());
        t.finish();
        CHECK_FALSE(t.connected());
        server.join();
        REQUIRE(out.size() == 1);
        CHECK(out[0].outcome == Outcome::delivered);
        CHECK(out[0].detail == "250 2.0.0 queued as X1");
        REQUIRE(server.transcripts.size() == 1);
        CHECK(server.transcripts[0] == "EHLO client.test\r\n"
                                       "MAIL FROM:<a@b.test> SIZE=" +
                                           std::to_string(message.size()) +
                                           " BODY=8BITMIME\r\n"
                                           "RCPT TO:<u@fake.test>\r\n"
                                           "DATA\r\n"
                                           "Subject: t\r\n\r\n..leading dot\r\nbody \xc3\xa9\r\n..\r\nlast\r\n.\r\n"
                                           "QUIT\r\n");
    }

    TEST_CASE("without PIPELINING: one command at a time; 550 for one recipient, 250 for the other")
    {
        Fixture f("hi\r\n", {"nobody@fake.test", "postmaster"});
        std::vector<bool> early; // did the client send before our reply?
        FakeServer server({[&early](FakeConn& c) {
            greet(c, k_ehlo_plain);
            for (const char* reply : {"250 2.1.0 ok\r\n", "550 5.1.1 <nobody@fake.test>: no such user\r\n",
                                      "250 2.1.5 ok\r\n", "354 go\r\n"}) {
                c.line();
                early.push_back(c.more_within(50));
                c.say(reply);
            }
            c.data();
            c.say("250 2.0.0 queued\r\n");
            answer_quit(c);
        }});
        auto t = transport_to(server.port());
        auto out = t.deliver(f.delivery());
        t.finish();
        server.join();
        REQUIRE(out.size() == 2);
        CHECK(out[0].outcome == Outcome::permanent);
        CHECK(out[0].detail == "550 5.1.1 <nobody@fake.test>: no such user");
        CHECK(out[1].outcome == Outcome::delivered);
        CHECK(early == std::vector<bool>{false, false, false, false});
        CHECK(server.transcripts.at(0) == "EHLO client.test\r\nMAIL FROM:<a@b.test>\r\n"
                                          "RCPT TO:<nobody@fake.test>\r\nRCPT TO:<postmaster>\r\nDATA\r\n"
                                          "hi\r\n.\r\nQUIT\r\n");
    }

    TEST_CASE("451 to DATA: accepted recipients are temporary, then RSET")
    {
        Fixture f("hi\r\n", {"u@fake.test", "v@fake.test"});
        FakeServer server({[](FakeConn& c) {
            greet(c, k_ehlo_plain);
            for (const char* reply : {"250 ok\r\n", "250 ok\r\n", "250 ok\r\n", "451 4.3.0 try later\r\n"}) {
                c.line();
                c.say(reply);
            }
            if (c.line() == "RSET") {
                c.say("250 2.0.0 reset\r\n");
            }
            answer_quit(c);
        }});
        auto t = transport_to(server.port());
        auto out = t.deliver(f.delivery());
        CHECK(t.connected());
        t.finish();
        server.join();
        REQUIRE(out.size() == 2);
        for (const auto& o : out) {
            CHECK(o.outcome == Outcome::temporary);
            CHECK(o.detail == "451 4.3.0 try later");
        }
        CHECK(server.transcripts.at(0) == "EHLO client.test\r\nMAIL FROM:<a@b.test>\r\n"
                                          "RCPT TO:<u@fake.test>\r\nRCPT TO:<v@fake.test>\r\nDATA\r\nRSET\r\nQUIT\r\n");
    }

    TEST_CASE("5xx to the end of data is permanent; 4xx to MAIL is temporary for all")
    {
        Fixture f("hi\r\n", {"u@fake.test", "v@fake.test"});
        FakeServer server({[](FakeConn& c) {
            greet(c, k_ehlo_all);
            c.line();
            c.line();
            c.line();
            c.line();
            c.say("250 ok\r\n250 ok\r\n250 ok\r\n354 go\r\n");
            c.data();
            c.say("554-5.7.1 rejected\r\n554 5.7.1 as spam\r\n");
            c.line(); // RSET before the next message
            c.say("250 ok\r\n");
            c.line(); // MAIL, RCPT, RCPT, DATA
            c.line();
            c.line();
            c.line();
            c.say("452 4.3.1 full\r\n503 no MAIL\r\n503 no MAIL\r\n503 no MAIL\r\n");
            c.line(); // RSET after the refused MAIL
            c.say("250 ok\r\n");
            answer_quit(c);
        }});
        auto t = transport_to(server.port());
        auto first = t.deliver(f.delivery());
        auto second = t.deliver(f.delivery());
        t.finish();
        server.join();
        for (const auto& o : first) {
            CHECK(o.outcome == Outcome::permanent);
            CHECK(o.detail == "554 5.7.1 rejected; 5.7.1 as spam");
        }
        for (const auto& o : second) {
            CHECK(o.outcome == Outcome::temporary);
            CHECK(o.detail == "452 4.3.1 full");
        }
        const std::string tx = "MAIL FROM:<a@b.test> SIZE=4\r\nRCPT TO:<u@fake.test>\r\nRCPT TO:<v@fake.test>\r\n"
                               "DATA\r\n";
        CHECK(server.transcripts.at(0) ==
              "EHLO client.test\r\n" + tx + "hi\r\n.\r\nRSET\r\n" + tx + "RSET\r\nQUIT\r\n");
    }

    TEST_CASE("PIPELINING with 150 recipients: writes of 100 commands, DATA with the last RCPTs")
    {
        std::vector<std::string> rcpts;
        for (int i = 0; i < 150; ++i) {
            rcpts.push_back("r" + std::to_string(i) + "@fake.test");
        }
        Fixture f("hi\r\n", rcpts);
        std::vector<std::string> second;
        bool early = true;
        FakeServer server({[&](FakeConn& c) {
            greet(c, k_ehlo_all);
            std::string replies;
            for (int i = 0; i < 100; ++i) { // MAIL and 99 RCPTs
                c.line();
                replies += i == 50 ? "550 5.1.1 unknown\r\n" : "250 ok\r\n";
            }
            early = c.more_within(50); // the rest must wait for these replies
            c.say(replies);
            for (int i = 0; i < 52; ++i) { // 51 RCPTs and DATA
                second.push_back(c.line());
            }
            replies.clear();
            for (int i = 0; i < 51; ++i) {
                replies += "250 ok\r\n";
            }
            c.say(replies + "354 go\r\n");
            c.data();
            c.say("250 queued\r\n");
            answer_quit(c);
        }});
        auto t = transport_to(server.port());
        auto out = t.deliver(f.delivery());
        t.finish();
        server.join();
        CHECK_FALSE(early);
        REQUIRE(second.size() == 52);
        CHECK(second.front() == "RCPT TO:<r99@fake.test>");
        CHECK(second.back() == "DATA");
        REQUIRE(out.size() == 150);
        CHECK(out[49].outcome == Outcome::permanent); // the 51st command is the 50th RCPT
        CHECK(out[49].detail == "550 5.1.1 unknown");
        for (std::size_t i = 0; i < out.size(); ++i) {
            if (i != 49) {
                CHECK(out[i].outcome == Outcome::delivered);
            }
        }
    }

    TEST_CASE("only the listed recipients are sent, and outcomes come in the listed order")
    {
        Fixture f("hi\r\n", {"a@fake.test", "b@fake.test", "c@fake.test"});
        FakeServer server({[](FakeConn& c) {
            greet(c, k_ehlo_all);
            c.line();
            c.line();
            c.line();
            c.line();
            c.say("250 ok\r\n451 4.2.0 later\r\n250 ok\r\n354 go\r\n");
            c.data();
            c.say("250 queued\r\n");
            answer_quit(c);
        }});
        auto t = transport_to(server.port());
        auto out = t.deliver(Delivery{f.envelope, testutil::open_file(f.path), {2, 0}});
        t.finish();
        server.join();
        REQUIRE(out.size() == 2);
        CHECK(out[0].outcome == Outcome::temporary);
        CHECK(out[0].detail == "451 4.2.0 later");
        CHECK(out[1].outcome == Outcome::delivered);
        CHECK(server.transcripts.at(0) == "EHLO client.test\r\nMAIL FROM:<a@b.test> SIZE=4\r\n"
                                          "RCPT TO:<c@fake.test>\r\nRCPT TO:<a@fake.test>\r\nDATA\r\n"
                                          "hi\r\n.\r\nQUIT\r\n");
    }

    TEST_CASE("PIPELINING and no recipient accepted: the reply to DATA is ignored, then RSET")
    {
        Fixture f("hi\r\n");
        FakeServer server({[](FakeConn& c) {
            greet(c, k_ehlo_all);
            c.line();
            c.line();
            c.line();
            c.say("250 ok\r\n550 5.1.1 unknown\r\n554 5.5.1 no valid recipients\r\n");
            if (c.line() == "RSET") {
                c.say("250 ok\r\n");
            }
            answer_quit(c);
        }});
        auto t = transport_to(server.port());
        auto out = t.deliver(f.delivery());
        t.finish();
        server.join();
        CHECK(out.at(0).outcome == Outcome::permanent);
        CHECK(out.at(0).detail == "550 5.1.1 unknown");
        CHECK(server.transcripts.at(0) == "EHLO client.test\r\nMAIL FROM:<a@b.test> SIZE=4\r\n"
                                          "RCPT TO:<u@fake.test>\r\nDATA\r\nRSET\r\nQUIT\r\n");
    }

    TEST_CASE("EHLO refused: HELO, no ESMTP parameters; an 8BITMIME message is then not sent")
    {
        Fixture f("hi\r\n");
        std::string helo;
        FakeServer server({[&helo](FakeConn& c) {
            c.say("220 old.test SMTP\r\n");
            c.line();
            c.say("502 5.5.1 EHLO not supported\r\n");
            helo = c.line();
            c.say("250 old.test\r\n");
            for (const char* reply : {"250 ok\r\n", "250 ok\r\n", "354 go\r\n"}) {
                c.line();
                c.say(reply);
            }
            c.data();
            c.say("250 queued\r\n");
            if (c.line() == "RSET") {
                c.say("250 ok\r\n");
            }
            answer_quit(c);
        }});
        auto t = transport_to(server.port());
        auto out = t.deliver(f.delivery());
        CHECK(out.at(0).outcome == Outcome::delivered);
        Fixture eight("caf\xc3\xa9\r\n");
        eight.envelope.body = Body::eight_bit_mime;
        out = t.deliver(eight.delivery());
        CHECK(out.at(0).outcome == Outcome::permanent);
        CHECK(out.at(0).detail ==
              "554 5.6.3 not sent: " + where(server.port()) + " does not offer 8BITMIME, which the message needs");
        t.finish();
        server.join();
        CHECK(helo == "HELO client.test");
        // The second message reused the connection: RSET, then nothing of it was sent.
        CHECK(server.transcripts.at(0) == "EHLO client.test\r\nHELO client.test\r\nMAIL FROM:<a@b.test>\r\n"
                                          "RCPT TO:<u@fake.test>\r\nDATA\r\nhi\r\n.\r\nRSET\r\nQUIT\r\n");
    }

    TEST_CASE("a server without SMTPUTF8 gets no SMTPUTF8 message; with it, the parameter is sent")
    {
        Fixture f("hi\r\n", {"\xc3\xbc@fake.test"});
        f.envelope.smtputf8 = true;
        FakeServer server({[](FakeConn& c) {
                               greet(c, k_ehlo_plain);
                               answer_quit(c);
                           },
                           [](FakeConn& c) {
                               greet(c, k_ehlo_all);
                               c.line();
                               c.line();
                               c.line();
                               c.say("250 ok\r\n250 ok\r\n354 go\r\n");
                               c.data();
                               c.say("250 queued\r\n");
                               answer_quit(c);
                           }});
        {
            auto t = transport_to(server.port());
            auto out = t.deliver(f.delivery());
            CHECK(out.at(0).outcome == Outcome::permanent);
            CHECK(out.at(0).detail ==
                  "553 5.6.7 not sent: " + where(server.port()) + " does not offer SMTPUTF8, which the message needs");
        } // the destructor sends QUIT
        auto t = transport_to(server.port());
        auto out = t.deliver(f.delivery());
        CHECK(out.at(0).outcome == Outcome::delivered);
        t.finish();
        server.join();
        CHECK(server.transcripts.at(0) == "EHLO client.test\r\nQUIT\r\n");
        CHECK(server.transcripts.at(1) == "EHLO client.test\r\nMAIL FROM:<a@b.test> SIZE=4 SMTPUTF8\r\n"
                                          "RCPT TO:<\xc3\xbc@fake.test>\r\nDATA\r\nhi\r\n.\r\nQUIT\r\n");
    }

    TEST_CASE("a BINARYMIME message is never sent with DATA: permanent, even to a server that offers it all")
    {
        Fixture f(std::string("bin\0ary\nbare\r", 13));
        f.envelope.body = Body::binary_mime;
        const std::string ehlo = "250-fake.test hello\r\n250-PIPELINING\r\n250-8BITMIME\r\n250-CHUNKING\r\n"
                                 "250 BINARYMIME\r\n";
        FakeServer server({[&](FakeConn& c) {
            greet(c, ehlo);
            answer_quit(c);
        }});
        auto t = transport_to(server.port());
        auto out = t.deliver(f.delivery());
        REQUIRE(out.size() == 1);
        CHECK(out.at(0).outcome == Outcome::permanent);
        CHECK(out.at(0).detail == "554 5.6.3 not sent: the message is BODY=BINARYMIME, which needs BDAT (RFC 3030), "
                                  "and runq sends with DATA only");
        t.finish();
        server.join();
        CHECK(server.transcripts.at(0) == "EHLO client.test\r\nQUIT\r\n"); // no MAIL, no octet of it
    }

    TEST_CASE("DSN: the parameters go to a server that offers DSN, none to one that does not; the handoff says which")
    {
        Fixture f("hi\r\n", {"u@fake.test", "v@fake.test", "w@fake.test"});
        f.envelope.dsn_ret = "FULL";
        f.envelope.dsn_envid = "Q+1 =x";
        f.envelope.recipients[0].notify = std::vector<std::string>{"SUCCESS", "FAILURE"};
        f.envelope.recipients[0].orcpt = "rfc822;U+1@fake.test";
        f.envelope.recipients[1].notify = std::vector<std::string>{"NEVER"};
        auto session = [](const std::string& ehlo) {
            return [ehlo](FakeConn& c) {
                greet(c, ehlo);
                for (int i = 0; i < 5; ++i) {
                    c.line();
                }
                c.say("250 ok\r\n250 ok\r\n250 ok\r\n250 ok\r\n354 go\r\n");
                c.data();
                c.say("250 2.0.0 queued\r\n");
                answer_quit(c);
            };
        };
        const std::string ehlo_dsn = "250-fake.test hello\r\n250-PIPELINING\r\n250-SIZE 1000000\r\n250 DSN\r\n";
        FakeServer server({session(ehlo_dsn), session(k_ehlo_all)});
        for (Handoff want : {Handoff::relayed_dsn, Handoff::relayed}) {
            auto t = transport_to(server.port());
            auto out = t.deliver(f.delivery());
            REQUIRE(out.size() == 3);
            for (const RecipientOutcome& o : out) {
                CHECK(o.outcome == Outcome::delivered);
                CHECK(o.handoff == want);
            }
            t.finish();
        }
        server.join();
        CHECK(server.transcripts.at(0) ==
              "EHLO client.test\r\nMAIL FROM:<a@b.test> SIZE=4 RET=FULL ENVID=Q+2B1+20+3Dx\r\n"
              "RCPT TO:<u@fake.test> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;U+2B1@fake.test\r\n"
              "RCPT TO:<v@fake.test> NOTIFY=NEVER\r\nRCPT TO:<w@fake.test>\r\n"
              "DATA\r\nhi\r\n.\r\nQUIT\r\n");
        CHECK(server.transcripts.at(1) ==
              "EHLO client.test\r\nMAIL FROM:<a@b.test> SIZE=4\r\nRCPT TO:<u@fake.test>\r\n"
              "RCPT TO:<v@fake.test>\r\nRCPT TO:<w@fake.test>\r\nDATA\r\nhi\r\n.\r\nQUIT\r\n");
    }

    TEST_CASE("addresses with CR, LF or brackets are never sent")
    {
        Fixture f("hi\r\n", {"evil@fake.test>\r\nRCPT TO:<other@fake.test", "ok@fake.test", "a<b@fake.test"});
        FakeServer server({[](FakeConn& c) {
            greet(c, k_ehlo_all);
            c.line();
            c.line();
            c.line();
            c.say("250 ok\r\n250 ok\r\n354 go\r\n");
            c.data();
            c.say("250 queued\r\n");
            answer_quit(c);
        }});
        auto t = transport_to(server.port());
        auto out = t.deliver(f.delivery());
        t.finish();
        server.join();
        REQUIRE(out.size() == 3);
        CHECK(out[0].outcome == Outcome::permanent);
        CHECK(out[0].detail == "553 5.1.3 recipient address not sent: address contains a control character");
        CHECK(out[1].outcome == Outcome::delivered);
        CHECK(out[2].outcome == Outcome::permanent);
        CHECK(out[2].detail == "553 5.1.3 recipient address not sent: address contains '<' or '>'");
        CHECK(server.transcripts.at(0) == "EHLO client.test\r\nMAIL FROM:<a@b.test> SIZE=4\r\n"
                                          "RCPT TO:<ok@fake.test>\r\nDATA\r\nhi\r\n.\r\nQUIT\r\n");

        // A bad sender fails every recipient without a connection.
        Fixture g("hi\r\n");
        g.envelope.mail_from = "a@b.test>\r\nRSET";
        auto never = transport_to(closed_port());
        out = never.deliver(g.delivery());
        CHECK(out.at(0).outcome == Outcome::permanent);
        CHECK(out.at(0).detail == "553 5.1.7 sender address not sent: address contains a control character");
        CHECK_FALSE(never.connected());
    }

    TEST_CASE("connection refused: temporary")
    {
        Fixture f("hi\r\n", {"u@fake.test", "v@fake.test"});
        std::uint16_t port = closed_port();
        auto t = transport_to(port);
        auto out = t.deliver(f.delivery());
        REQUIRE(out.size() == 2);
        for (const auto& o : out) {
            CHECK(o.outcome == Outcome::temporary);
            CHECK(o.detail == "connection to " + where(port) + " refused");
        }
        CHECK_FALSE(t.connected());
        t.finish();
    }

    TEST_CASE("an IPv6 target is written in brackets; a bad HELO name sends nothing")
    {
        Fixture f("hi\r\n");
        for (const char* host : {"::1", "[::1]"}) {
            SmtpTransport t(SmtpTarget{host, closed_port()}, "client.test",
                            SmtpTimeouts::uniform(std::chrono::seconds(1)));
            auto out = t.deliver(f.delivery());
            CHECK(out.at(0).outcome == Outcome::temporary);
            // Refused where ::1 exists, "cannot connect" where IPv6 is off.
            const std::string& d = out.at(0).detail;
            INFO(d);
            CHECK((d.rfind("connection to [::1]:", 0) == 0 || d.rfind("cannot connect to [::1]:", 0) == 0));
        }
        SmtpTransport bad(SmtpTarget{"127.0.0.1", closed_port()}, "client.test\r\nRSET",
                          SmtpTimeouts::uniform(std::chrono::seconds(1)));
        auto out = bad.deliver(f.delivery());
        CHECK(out.at(0).outcome == Outcome::temporary);
        CHECK(out.at(0).detail == "no usable HELO name (empty, or with a space or control character)");
    }

    TEST_CASE("a name that cannot resolve: temporary")
    {
        // A 70-octet label is refused by the resolver itself, so no DNS query is sent.
        const std::string host = std::string(70, 'a') + ".invalid";
        Fixture f("hi\r\n");
        SmtpTransport t(SmtpTarget{host, 25}, "client.test", SmtpTimeouts::uniform(std::chrono::seconds(1)));
        auto out = t.deliver(f.delivery());
        CHECK(out.at(0).outcome == Outcome::temporary);
        CHECK(out.at(0).detail.rfind("cannot resolve " + host + ": ", 0) == 0);
        CHECK_FALSE(t.connected());
    }

    TEST_CASE("a server that stalls: temporary after the timeout")
    {
        Fixture f("hi\r\n");
        FakeServer server({[](FakeConn& c) { c.wait_close(); }});
        auto t = transport_to(server.port(), 1);
        auto start = std::chrono::steady_clock::now();
        auto out = t.deliver(f.delivery());
        auto took = std::chrono::steady_clock::now() - start;
        CHECK(out.at(0).outcome == Outcome::temporary);
        CHECK(out.at(0).detail == "timeout waiting for greeting from " + where(server.port()) + " after 1 s");
        CHECK(took >= std::chrono::milliseconds(900));
        CHECK(took < std::chrono::milliseconds(2500));
        CHECK_FALSE(t.connected());
        server.join();
        CHECK(server.transcripts.at(0) == ""); // nothing sent, not even QUIT
    }

    TEST_CASE("one connection for two messages, RSET between, QUIT at the end")
    {
        Fixture f("one\r\n");
        Fixture g("two\r\n", {"w@fake.test"});
        FakeServer server({[](FakeConn& c) {
            greet(c, k_ehlo_all);
            for (int i = 0; i < 2; ++i) {
                c.line();
                c.line();
                c.line();
                c.say("250 ok\r\n250 ok\r\n354 go\r\n");
                c.data();
                c.say("250 queued\r\n");
                if (i == 0 && c.line() == "RSET") {
                    c.say("250 ok\r\n");
                }
            }
            answer_quit(c);
        }});
        auto t = transport_to(server.port());
        auto a = t.deliver(f.delivery());
        auto b = t.deliver(g.delivery());
        t.finish();
        server.join();
        CHECK(a.at(0).outcome == Outcome::delivered);
        CHECK(b.at(0).outcome == Outcome::delivered);
        CHECK(server.connections == 1);
        CHECK(server.transcripts.at(0) == "EHLO client.test\r\n"
                                          "MAIL FROM:<a@b.test> SIZE=5\r\nRCPT TO:<u@fake.test>\r\nDATA\r\none\r\n.\r\n"
                                          "RSET\r\n"
                                          "MAIL FROM:<a@b.test> SIZE=5\r\nRCPT TO:<w@fake.test>\r\nDATA\r\ntwo\r\n.\r\n"
                                          "QUIT\r\n");
    }

    TEST_CASE("RSET not answered 250: QUIT, and a new connection for the next message")
    {
        Fixture f("hi\r\n");
        auto deliver_one = [](FakeConn& c) {
            greet(c, k_ehlo_all);
            c.line();
            c.line();
            c.line();
            c.say("250 ok\r\n250 ok\r\n354 go\r\n");
            c.data();
            c.say("250 queued\r\n");
        };
        FakeServer server({[&](FakeConn& c) {
                               deliver_one(c);
                               c.line();
                               c.say("500 5.5.1 what?\r\n");
                               answer_quit(c);
                           },
                           [&](FakeConn& c) {
                               deliver_one(c);
                               answer_quit(c);
                           }});
        auto t = transport_to(server.port());
        CHECK(t.deliver(f.delivery()).at(0).outcome == Outcome::delivered);
        CHECK(t.deliver(f.delivery()).at(0).outcome == Outcome::delivered);
        t.finish();
        server.join();
        CHECK(server.connections == 2);
        CHECK(server.transcripts.at(0).substr(server.transcripts.at(0).size() - 12) == "RSET\r\nQUIT\r\n");
        CHECK(server.transcripts.at(1).substr(0, 18) == "EHLO client.test\r\n");
    }

    TEST_CASE("421 to RCPT, then the server closes: temporary, and the next message reconnects")
    {
        Fixture f("hi\r\n", {"u@fake.test", "v@fake.test", "w@fake.test"});
        FakeServer server({[](FakeConn& c) {
                               greet(c, k_ehlo_plain);
                               c.line();
                               c.say("250 ok\r\n");
                               c.line();
                               c.say("550 5.1.1 unknown\r\n");
                               c.line();
                               c.say("421 4.3.2 fake.test shutting down\r\n");
                           },
                           [](FakeConn& c) {
                               greet(c, k_ehlo_plain);
                               answer_quit(c);
                           }});
        auto t = transport_to(server.port());
        auto out = t.deliver(f.delivery());
        CHECK_FALSE(t.connected());
        REQUIRE(out.size() == 3);
        CHECK(out[0].outcome == Outcome::permanent); // the server's own answer stands
        CHECK(out[0].detail == "550 5.1.1 unknown");
        CHECK(out[1].outcome == Outcome::temporary);
        CHECK(out[1].detail == "421 4.3.2 fake.test shutting down");
        CHECK(out[2].outcome == Outcome::temporary);
        CHECK(out[2].detail == "421 4.3.2 fake.test shutting down");

        // The next message opens a new connection (it finds no SMTPUTF8 there and stops).
        Fixture g("hi\r\n");
        g.envelope.smtputf8 = true;
        CHECK(t.deliver(g.delivery()).at(0).outcome == Outcome::permanent);
        t.finish();
        server.join();
        CHECK(server.connections == 2);
        CHECK(server.transcripts.at(0) == "EHLO client.test\r\nMAIL FROM:<a@b.test>\r\nRCPT TO:<u@fake.test>\r\n"
                                          "RCPT TO:<v@fake.test>\r\n");
    }

    TEST_CASE("a 421 greeting: temporary, no QUIT; a 554 greeting: temporary, QUIT")
    {
        Fixture f("hi\r\n");
        FakeServer server({[](FakeConn& c) { c.say("421 4.3.2 busy\r\n"); },
                           [](FakeConn& c) {
                               c.say("554 5.7.1 no service for you\r\n");
                               answer_quit(c);
                           }});
        auto t = transport_to(server.port());
        auto out = t.deliver(f.delivery());
        CHECK(out.at(0).outcome == Outcome::temporary);
        CHECK(out.at(0).detail == where(server.port()) + " refused the session: 421 4.3.2 busy");
        out = t.deliver(f.delivery());
        CHECK(out.at(0).outcome == Outcome::temporary);
        CHECK(out.at(0).detail == where(server.port()) + " refused the session: 554 5.7.1 no service for you");
        server.join();
        CHECK(server.transcripts.at(0) == "");
        CHECK(server.transcripts.at(1) == "QUIT\r\n");
    }

    TEST_CASE("the connection drops during DATA: temporary")
    {
        Fixture f(std::string(200000, 'x') + "\r\n");
        FakeServer server({[](FakeConn& c) {
            greet(c, k_ehlo_all);
            c.line();
            c.line();
            c.line();
            c.say("250 ok\r\n250 ok\r\n354 go\r\n");
        }});
        auto t = transport_to(server.port());
        auto out = t.deliver(f.delivery());
        server.join();
        CHECK(out.at(0).outcome == Outcome::temporary);
        CHECK(out.at(0).detail.rfind("connection to " + where(server.port()) + " closed while ", 0) == 0);
        CHECK_FALSE(t.connected());
    }

    TEST_CASE("replies spread over many reads; a very long reply line is a malformed reply")
    {
        Fixture f("hi\r\n");
        FakeServer server({[](FakeConn& c) {
                               std::string greeting =
                                   "220-fake.test\r\n220-" + std::string(300, 'g') + "\r\n220 ready\r\n";
                               for (std::size_t i = 0; i < greeting.size(); i += 7) {
                                   c.say(greeting.substr(i, 7));
                                   std::this_thread::sleep_for(std::chrono::microseconds(200));
                               }
                               c.line();
                               for (char ch : k_ehlo_all) {
                                   c.say(std::string(1, ch));
                               }
                               c.line();
                               c.line();
                               c.line();
                               c.say("250 ok\r\n250 ok\r\n354 go\r\n");
                               c.data();
                               c.say("250 " + std::string(3000, 'y') + "\r\n");
                               c.wait_close();
                           },
                           [](FakeConn& c) {
                               c.say("220 " + std::string(5000, 'z') + "\r\n");
                               c.wait_close();
                           }});
        auto t = transport_to(server.port());
        auto out = t.deliver(f.delivery());
        CHECK(out.at(0).outcome == Outcome::temporary);
        CHECK(out.at(0).detail == "malformed reply to the end of data from " + where(server.port()) +
                                      ": reply line longer than 2048 octets");
        CHECK_FALSE(t.connected());
        out = t.deliver(f.delivery());
        CHECK(out.at(0).outcome == Outcome::temporary);
        CHECK(out.at(0).detail ==
              "malformed greeting from " + where(server.port()) + ": reply line longer than 2048 octets");
        server.join();
    }

    TEST_CASE("a message over the server's SIZE limit is not sent")
    {
        Fixture f(std::string(100, 'x') + "\r\n");
        FakeServer server({[](FakeConn& c) {
            greet(c, "250-fake.test\r\n250 SIZE 50\r\n");
            answer_quit(c);
        }});
        auto t = transport_to(server.port());
        auto out = t.deliver(f.delivery());
        t.finish();
        server.join();
        CHECK(out.at(0).outcome == Outcome::permanent);
        CHECK(out.at(0).detail == "552 5.3.4 not sent: the message (102 octets) exceeds the size limit of " +
                                      where(server.port()) + " (50 octets)");
        CHECK(server.transcripts.at(0) == "EHLO client.test\r\nQUIT\r\n");
    }

    TEST_CASE("a missing message file: temporary, no connection")
    {
        Fixture f("hi\r\n");
        f.path += ".gone";
        auto t = transport_to(closed_port());
        auto out = t.deliver(f.delivery());
        CHECK(out.at(0).outcome == Outcome::temporary);
        CHECK(out.at(0).detail == "cannot open the message file: No such file or directory");
    }
}
