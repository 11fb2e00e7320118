// Tests of SmtpDeliverer against a fake SMTP server on 127.0.0.1 in a thread,
// scripted as data: each script is the server's side of one connection, one
// step a line (the format is at FakeServer); the octets it received are
// compared exactly. One fixture, play(), runs the deliveries against the
// scripts. Waits in the fake are bounded so a broken client cannot hang the run.
#include "delivery/smtp_deliverer.hpp"

#include "testutil.hpp"

#include <doctest/doctest.h>

#include <arpa/inet.h>
#include <chrono>
#include <fstream>
#include <netinet/in.h>
#include <poll.h>
#include <sstream>
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
    // Exactly n octets (a BDAT chunk); fewer when the client went away or stalled.
    std::string bytes(std::size_t n)
    {
        while (m_buf.size() < n && fill(k_wait_ms)) {
        }
        std::string d = m_buf.substr(0, std::min(n, m_buf.size()));
        m_buf.erase(0, d.size());
        return d;
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

const std::string k_ehlo_all = "250-fake.test hello\r\n250-PIPELINING\r\n250-SIZE 1000000\r\n250-8BITMIME\r\n"
                               "250-ENHANCEDSTATUSCODES\r\n250 SMTPUTF8\r\n";
const std::string k_ehlo_plain = "250-fake.test hello\r\n250 8BITMIME\r\n"; // no PIPELINING, no SIZE

// What one connection did: every octet received, each command line the
// script read, and each "early" answer.
struct ConnLog {
    std::string received;
    std::vector<std::string> lines;
    std::vector<bool> early;
};

// \r, \n and \\ in a script's raw sends.
std::string unescape(std::string_view text)
{
    std::string out;
    for (std::size_t i = 0; i < text.size(); ++i) {
        if (text[i] == '\\' && i + 1 < text.size()) {
            char e = text[++i];
            out += e == 'r' ? '\r' : e == 'n' ? '\n' : e;
        } else {
            out += text[i];
        }
    }
    return out;
}

std::string escape(std::string_view text)
{
    std::string out;
    for (char c : text) {
        out += c == '\r' ? std::string("\\r") : c == '\n' ? std::string("\\n") : std::string(1, c);
    }
    return out;
}

// Listens on 127.0.0.1 (an ephemeral port) and plays one script per
// connection, in order. A script, one step a line:
//   220 text      a reply line (any line starting with a digit), sent with
//                 CRLF; consecutive reply lines go out in one write
//   greet all     the greeting, then read EHLO and answer it with
//   greet plain   k_ehlo_all or k_ehlo_plain
//   <             read one command line; <3: three
//   <data         read the message data through its end mark
//   <bytes N      read N octets (a BDAT chunk)
//   <RSET 250 ok  read one line; when it is RSET, answer 250 ok
//   early         record whether the client has sent more than was read
//                 (within 50 ms): a client must wait for replies
//   quit          read one line; when it is QUIT, answer 221; wait for the close
//   wait          wait for the client to close
//   !7 text       send text (\r \n escapes, no CRLF added) 7 octets at a
//                 time, 200 us apart: replies spread over many reads
class FakeServer {
public:
    explicit FakeServer(std::vector<std::string> scripts) : m_scripts(std::move(scripts))
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
    // Waits for the scripts to end; then conns holds what each connection did.
    void join()
    {
        if (m_thread.joinable()) {
            m_thread.join();
        }
    }
    std::vector<ConnLog> conns;
    std::vector<std::string> errors; // script lines the fake does not know

private:
    void serve()
    {
        for (const std::string& script : m_scripts) {
            pollfd p{m_listen, POLLIN, 0};
            if (::poll(&p, 1, k_wait_ms) <= 0) {
                return;
            }
            int fd = ::accept4(m_listen, nullptr, nullptr, SOCK_CLOEXEC);
            if (fd < 0) {
                return;
            }
            FakeConn conn(fd);
            ConnLog log;
            play(script, conn, log);
            log.received = conn.received;
            conns.push_back(std::move(log));
            ::close(fd);
        }
    }

    void play(const std::string& script, FakeConn& c, ConnLog& log)
    {
        std::string pending; // reply lines not yet sent
        auto flush = [&] {
            c.say(pending);
            pending.clear();
        };
        auto read = [&] {
            flush();
            log.lines.push_back(c.line());
            return log.lines.back();
        };
        std::istringstream in(script);
        for (std::string step; std::getline(in, step);) {
            if (step.empty()) {
                continue;
            }
            if (step[0] >= '0' && step[0] <= '9') {
                pending += step + "\r\n";
            } else if (step == "greet all" || step == "greet plain") {
                pending += "220 fake.test ESMTP\r\n";
                read();
                pending += step == "greet all" ? k_ehlo_all : k_ehlo_plain;
            } else if (step == "<data") {
                flush();
                c.data();
            } else if (step.starts_with("<bytes ")) {
                flush();
                c.bytes(std::stoul(step.substr(7)));
            } else if (step[0] == '<' && (step.size() == 1 || std::isdigit(static_cast<unsigned char>(step[1])))) {
                int n = step.size() == 1 ? 1 : std::stoi(step.substr(1));
                for (int i = 0; i < n; ++i) {
                    read();
                }
            } else if (step[0] == '<') {
                auto space = step.find(' ');
                std::string command = step.substr(1, space - 1);
                if (read() == command && space != std::string::npos) {
                    pending += step.substr(space + 1) + "\r\n";
                }
            } else if (step == "early") {
                flush();
                log.early.push_back(c.more_within(50));
            } else if (step == "quit") {
                if (read() == "QUIT") {
                    pending += "221 2.0.0 bye\r\n";
                }
                flush();
                c.wait_close();
            } else if (step == "wait") {
                flush();
                c.wait_close();
            } else if (step[0] == '!') {
                flush();
                auto space = step.find(' ');
                std::size_t piece = std::stoul(step.substr(1, space - 1));
                std::string text = unescape(step.substr(space + 1));
                for (std::size_t i = 0; i < text.size(); i += piece) {
                    c.say(text.substr(i, piece));
                    std::this_thread::sleep_for(std::chrono::microseconds(200));
                }
            } else {
                errors.push_back(step);
            }
        }
        flush();
    }

    std::vector<std::string> m_scripts;
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

SmtpDeliverer transport_to(std::uint16_t port, int timeout_s = 2)
{
    return SmtpDeliverer(SmtpTarget{"127.0.0.1", port}, "client.test",
                         SmtpTimeouts::uniform(std::chrono::seconds(timeout_s)));
}

std::string where(std::uint16_t port) { return "127.0.0.1:" + std::to_string(port); }

// How play() uses the transport.
struct Use {
    int timeout_s = 2;
    bool fresh = false; // a new transport for each delivery (else one for all)
    bool finish = true; // finish() after the last delivery (each, when fresh); else the destructor
    SmtpSecurity security{}; // TLS level, connector, credentials
    std::vector<std::string>* notices = nullptr; // take_notices() after each delivery, appended here
};

// The deliveries against a fake server playing the scripts.
struct Played {
    std::string where;                                // 127.0.0.1:PORT of the fake
    std::vector<std::vector<RecipientOutcome>> outcomes; // per delivery
    std::vector<bool> connected;                      // the transport's connected() after each delivery
    bool connected_at_end = false;                    // after finish() (or without it)
    std::vector<ConnLog> conns;                       // per connection the fake accepted
    // The octets of connection i.
    const std::string& received(std::size_t i) const { return conns.at(i).received; }
};

// The one scaffold of these tests: listen, deliver each delivery, finish,
// join the fake. A script line the fake does not know fails the test.
Played play(const std::vector<std::string>& scripts, const std::vector<Delivery>& deliveries, Use use = {})
{
    FakeServer server(scripts);
    Played p;
    p.where = where(server.port());
    {
        std::optional<SmtpDeliverer> t;
        for (const Delivery& d : deliveries) {
            if (!t || use.fresh) {
                t.reset();
                t.emplace(SmtpTarget{"127.0.0.1", server.port()}, "client.test",
                          SmtpTimeouts::uniform(std::chrono::seconds(use.timeout_s)), use.security);
            }
            p.outcomes.push_back(t->deliver(d));
            if (use.notices != nullptr) {
                for (std::string& n : t->take_notices()) {
                    use.notices->push_back(std::move(n));
                }
            }
            p.connected.push_back(t->connected());
            if (use.fresh && use.finish) {
                t->finish();
            }
        }
        if (!use.fresh && use.finish) {
            t->finish();
        }
        p.connected_at_end = t->connected();
    }
    server.join();
    CHECK_MESSAGE(server.errors.empty(), "unknown script steps: " << server.errors.size());
    p.conns = server.conns;
    return p;
}

} // namespace

TEST_SUITE("smtp_deliverer")
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
        // No reply until DATA is in: a client that waited for replies would stall here.
        Played p = play({R"(greet all
<3
250 2.1.0 ok
250 2.1.5 ok
354 go ahead
<data
250 2.0.0 queued as X1
quit)"},
                        {f.delivery()});
        CHECK(p.connected.at(0));
        CHECK_FALSE(p.connected_at_end);
        REQUIRE(p.outcomes.at(0).size() == 1);
        CHECK(p.outcomes[0][0].outcome == Outcome::delivered);
        CHECK(p.outcomes[0][0].detail == "250 2.0.0 queued as X1");
        REQUIRE(p.conns.size() == 1);
        CHECK(p.received(0) == "EHLO client.test\r\n"
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
        // "early": did the client send before our reply?
        Played p = play({R"(greet plain
<
early
250 2.1.0 ok
<
early
550 5.1.1 <nobody@fake.test>: no such user
<
early
250 2.1.5 ok
<
early
354 go
<data
250 2.0.0 queued
quit)"},
                        {f.delivery()});
        const auto& out = p.outcomes.at(0);
        REQUIRE(out.size() == 2);
        CHECK(out[0].outcome == Outcome::permanent);
        CHECK(out[0].detail == "550 5.1.1 <nobody@fake.test>: no such user");
        CHECK(out[1].outcome == Outcome::delivered);
        CHECK(p.conns.at(0).early == std::vector<bool>{false, false, false, false});
        CHECK(p.received(0) == "EHLO client.test\r\nMAIL FROM:<a@b.test>\r\n"
                               "RCPT TO:<nobody@fake.test>\r\nRCPT TO:<postmaster>\r\nDATA\r\n"
                               "hi\r\n.\r\nQUIT\r\n");
    }

    TEST_CASE("451 to DATA: accepted recipients are temporary, then RSET")
    {
        Fixture f("hi\r\n", {"u@fake.test", "v@fake.test"});
        Played p = play({R"(greet plain
<
250 ok
<
250 ok
<
250 ok
<
451 4.3.0 try later
<RSET 250 2.0.0 reset
quit)"},
                        {f.delivery()});
        CHECK(p.connected.at(0));
        const auto& out = p.outcomes.at(0);
        REQUIRE(out.size() == 2);
        for (const auto& o : out) {
            CHECK(o.outcome == Outcome::temporary);
            CHECK(o.detail == "451 4.3.0 try later");
            CHECK_FALSE(o.try_next); // the server has answered: no other is asked
        }
        CHECK(p.received(0) == "EHLO client.test\r\nMAIL FROM:<a@b.test>\r\n"
                               "RCPT TO:<u@fake.test>\r\nRCPT TO:<v@fake.test>\r\nDATA\r\nRSET\r\nQUIT\r\n");
    }

    TEST_CASE("5xx to the end of data is permanent; 4xx to MAIL is temporary for all")
    {
        Fixture f("hi\r\n", {"u@fake.test", "v@fake.test"});
        // After the refused data: RSET before the next message; its MAIL,
        // RCPT, RCPT, DATA; RSET after the refused MAIL.
        Played p = play({R"(greet all
<4
250 ok
250 ok
250 ok
354 go
<data
554-5.7.1 rejected
554 5.7.1 as spam
<
250 ok
<4
452 4.3.1 full
503 no MAIL
503 no MAIL
503 no MAIL
<
250 ok
quit)"},
                        {f.delivery(), f.delivery()});
        for (const auto& o : p.outcomes.at(0)) {
            CHECK(o.outcome == Outcome::permanent);
            CHECK(o.detail == "554 5.7.1 rejected; 5.7.1 as spam");
        }
        for (const auto& o : p.outcomes.at(1)) {
            CHECK(o.outcome == Outcome::temporary);
            CHECK(o.detail == "452 4.3.1 full");
        }
        const std::string tx = "MAIL FROM:<a@b.test> SIZE=4\r\nRCPT TO:<u@fake.test>\r\nRCPT TO:<v@fake.test>\r\n"
                               "DATA\r\n";
        CHECK(p.received(0) == "EHLO client.test\r\n" + tx + "hi\r\n.\r\nRSET\r\n" + tx + "RSET\r\nQUIT\r\n");
    }

    TEST_CASE("PIPELINING with 150 recipients: writes of 100 commands, DATA with the last RCPTs")
    {
        std::vector<std::string> rcpts;
        for (int i = 0; i < 150; ++i) {
            rcpts.push_back("r" + std::to_string(i) + "@fake.test");
        }
        Fixture f("hi\r\n", rcpts);
        // MAIL and 99 RCPTs; the rest must wait for these replies; then 51 RCPTs and DATA.
        std::string script = "greet all\n<100\nearly\n";
        for (int i = 0; i < 100; ++i) {
            script += i == 50 ? "550 5.1.1 unknown\n" : "250 ok\n";
        }
        script += "<52\n";
        for (int i = 0; i < 51; ++i) {
            script += "250 ok\n";
        }
        script += "354 go\n<data\n250 queued\nquit\n";
        Played p = play({script}, {f.delivery()});
        CHECK(p.conns.at(0).early == std::vector<bool>{false});
        const std::vector<std::string>& lines = p.conns.at(0).lines; // EHLO, 100, 52, QUIT
        REQUIRE(lines.size() == 154);
        CHECK(lines[101] == "RCPT TO:<r99@fake.test>");
        CHECK(lines[152] == "DATA");
        const auto& out = p.outcomes.at(0);
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
        Played p = play({R"(greet all
<4
250 ok
451 4.2.0 later
250 ok
354 go
<data
250 queued
quit)"},
                        {Delivery{f.envelope, testutil::open_file(f.path), {2, 0}}});
        const auto& out = p.outcomes.at(0);
        REQUIRE(out.size() == 2);
        CHECK(out[0].outcome == Outcome::temporary);
        CHECK(out[0].detail == "451 4.2.0 later");
        CHECK(out[1].outcome == Outcome::delivered);
        CHECK(p.received(0) == "EHLO client.test\r\nMAIL FROM:<a@b.test> SIZE=4\r\n"
                               "RCPT TO:<c@fake.test>\r\nRCPT TO:<a@fake.test>\r\nDATA\r\n"
                               "hi\r\n.\r\nQUIT\r\n");
    }

    TEST_CASE("PIPELINING and no recipient accepted: the reply to DATA is ignored, then RSET")
    {
        Fixture f("hi\r\n");
        Played p = play({R"(greet all
<3
250 ok
550 5.1.1 unknown
554 5.5.1 no valid recipients
<RSET 250 ok
quit)"},
                        {f.delivery()});
        CHECK(p.outcomes.at(0).at(0).outcome == Outcome::permanent);
        CHECK(p.outcomes.at(0).at(0).detail == "550 5.1.1 unknown");
        CHECK(p.received(0) == "EHLO client.test\r\nMAIL FROM:<a@b.test> SIZE=4\r\n"
                               "RCPT TO:<u@fake.test>\r\nDATA\r\nRSET\r\nQUIT\r\n");
    }

    TEST_CASE("EHLO refused: HELO, no ESMTP parameters; an 8BITMIME message is then not sent")
    {
        Fixture f("hi\r\n");
        Fixture eight("Subject: x\r\n\r\ncaf\xc3\xa9\r\n");
        eight.envelope.body = Body::eight_bit_mime;
        eight.envelope.content = Content::eight_bit;
        // Signed content cannot be converted.
        eight.path = eight.dir.path() + "/signed.eml";
        std::ofstream(eight.path, std::ios::binary)
            << "Content-Type: multipart/signed; boundary=s\r\n\r\n--s\r\n\r\ncaf\xc3\xa9\r\n--s--\r\n";
        Played p = play({R"(220 old.test SMTP
<
502 5.5.1 EHLO not supported
<
250 old.test
<
250 ok
<
250 ok
<
354 go
<data
250 queued
<RSET 250 ok
quit)"},
                        {f.delivery(), eight.delivery()});
        CHECK(p.outcomes.at(0).at(0).outcome == Outcome::delivered);
        CHECK(p.outcomes.at(1).at(0).outcome == Outcome::permanent);
        CHECK(p.outcomes.at(1).at(0).detail ==
              "554 5.6.3 not sent: " + p.where +
                  " does not offer 8BITMIME, and the message cannot be converted to 7 bits: 8-bit content inside "
                  "multipart/signed (converting it would break the signature)");
        CHECK(p.conns.at(0).lines.at(1) == "HELO client.test");
        // The second message reused the connection: RSET, then nothing of it was sent.
        CHECK(p.received(0) == "EHLO client.test\r\nHELO client.test\r\nMAIL FROM:<a@b.test>\r\n"
                               "RCPT TO:<u@fake.test>\r\nDATA\r\nhi\r\n.\r\nRSET\r\nQUIT\r\n");
    }

    TEST_CASE("a server without SMTPUTF8 gets no SMTPUTF8 message; with it, the parameter is sent")
    {
        Fixture f("hi\r\n", {"\xc3\xbc@fake.test"});
        f.envelope.smtputf8 = true;
        // A transport for each delivery, ended by its destructor (which sends QUIT).
        Played p = play({"greet plain\nquit", "greet all\n<3\n250 ok\n250 ok\n354 go\n<data\n250 queued\nquit"},
                        {f.delivery(), f.delivery()}, Use{.fresh = true, .finish = false});
        CHECK(p.outcomes.at(0).at(0).outcome == Outcome::permanent);
        CHECK(p.outcomes.at(0).at(0).detail ==
              "553 5.6.7 not sent: " + p.where + " does not offer SMTPUTF8, which the message needs");
        CHECK(p.outcomes.at(1).at(0).outcome == Outcome::delivered);
        CHECK(p.received(0) == "EHLO client.test\r\nQUIT\r\n");
        CHECK(p.received(1) == "EHLO client.test\r\nMAIL FROM:<a@b.test> SIZE=4 SMTPUTF8\r\n"
                               "RCPT TO:<\xc3\xbc@fake.test>\r\nDATA\r\nhi\r\n.\r\nQUIT\r\n");
    }

    TEST_CASE("a BINARYMIME message goes by BDAT with BODY=BINARYMIME to a server that offers CHUNKING and BINARYMIME")
    {
        const std::string message("bin\0ary\nbare\r", 13);
        Fixture f(message);
        f.envelope.body = Body::binary_mime;
        f.envelope.content = Content::binary;
        Played p = play({R"(220 fake.test ESMTP
<
250-fake.test hello
250-PIPELINING
250-8BITMIME
250-CHUNKING
250 BINARYMIME
<2
250 ok
250 ok
<
<bytes 13
250 2.0.0 queued
quit)"},
                        {f.delivery()});
        REQUIRE(p.outcomes.at(0).size() == 1);
        CHECK(p.outcomes[0][0].outcome == Outcome::delivered);
        CHECK(p.outcomes[0][0].detail == "250 2.0.0 queued");
        CHECK(p.received(0) == "EHLO client.test\r\nMAIL FROM:<a@b.test> BODY=BINARYMIME\r\nRCPT TO:<u@fake.test>\r\n"
                               "BDAT 13 LAST\r\n" + message + "QUIT\r\n");
    }

    TEST_CASE("a BINARYMIME message to a server without BINARYMIME or CHUNKING: permanent, nothing sent")
    {
        Fixture f(std::string("bin\0ary\nbare\r", 13));
        f.envelope.body = Body::binary_mime;
        Played p = play({"220 fake.test ESMTP\n<\n250-fake.test hello\n250-8BITMIME\n250 CHUNKING\nquit",
                         "greet all\nquit"},
                        {f.delivery(), f.delivery()}, Use{.fresh = true, .finish = false});
        CHECK(p.outcomes.at(0).at(0).outcome == Outcome::permanent);
        CHECK(p.outcomes.at(0).at(0).detail == "554 5.6.3 not sent: the message is BODY=BINARYMIME, and " + p.where +
                                                   " does not offer BINARYMIME (RFC 3030)");
        CHECK(p.outcomes.at(1).at(0).detail == "554 5.6.3 not sent: the message is BODY=BINARYMIME, and " + p.where +
                                                   " does not offer CHUNKING and BINARYMIME (RFC 3030)");
        CHECK(p.received(0) == "EHLO client.test\r\nQUIT\r\n"); // no MAIL, no octet of it
    }

    TEST_CASE("8-bit content to a server without 8BITMIME is converted; 7-bit content goes as it is, without BODY=")
    {
        const std::string header = "Subject: x\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n"
                                   "Content-Transfer-Encoding: 8bit\r\n\r\n";
        Fixture eight(header + "caf\xc3\xa9 =\r\n");
        eight.envelope.body = Body::eight_bit_mime; // declared, and the envelope does not say what it holds
        Fixture undeclared(header + "na\xc3\xafve\r\n");
        undeclared.envelope.content = Content::eight_bit;
        Fixture seven("Subject: y\r\n\r\nplain\r\n");
        seven.envelope.body = Body::eight_bit_mime;
        seven.envelope.content = Content::seven_bit;
        const std::string converted = "Subject: x\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n"
                                      "Content-Transfer-Encoding: quoted-printable\r\n\r\n";
        const std::string body1 = converted + "caf=C3=A9 =3D\r\n";
        const std::string body2 = converted + "na=C3=AFve\r\n";
        Played p = play({"220 fake.test ESMTP\n<\n250-fake.test hello\n250 SIZE\n"
                         "<\n250 ok\n<\n250 ok\n<\n354 go\n<data\n250 one\n<RSET 250 ok\n"
                         "<\n250 ok\n<\n250 ok\n<\n354 go\n<data\n250 two\n<RSET 250 ok\n"
                         "<\n250 ok\n<\n250 ok\n<\n354 go\n<data\n250 three\nquit"},
                        {eight.delivery(), undeclared.delivery(), seven.delivery()});
        for (std::size_t i = 0; i < 3; ++i) {
            CHECK(p.outcomes.at(i).at(0).outcome == Outcome::delivered);
        }
        CHECK(p.received(0) == "EHLO client.test\r\n"
                               "MAIL FROM:<a@b.test> SIZE=" + std::to_string(body1.size()) + "\r\n"
                               "RCPT TO:<u@fake.test>\r\nDATA\r\n" + body1 + ".\r\n"
                               "RSET\r\nMAIL FROM:<a@b.test> SIZE=" + std::to_string(body2.size()) + "\r\n"
                               "RCPT TO:<u@fake.test>\r\nDATA\r\n" + body2 + ".\r\n"
                               "RSET\r\nMAIL FROM:<a@b.test> SIZE=21\r\nRCPT TO:<u@fake.test>\r\nDATA\r\n"
                               "Subject: y\r\n\r\nplain\r\n.\r\nQUIT\r\n");
    }

    TEST_CASE("8-bit content declared or not goes with BODY=8BITMIME to a server that offers it")
    {
        Fixture f("Subject: x\r\n\r\ncaf\xc3\xa9\r\n");
        f.envelope.content = Content::eight_bit;
        Played p = play({"greet plain\n<\n250 ok\n<\n250 ok\n<\n354 go\n<data\n250 queued\nquit"}, {f.delivery()});
        CHECK(p.outcomes.at(0).at(0).outcome == Outcome::delivered);
        CHECK(p.received(0) == "EHLO client.test\r\nMAIL FROM:<a@b.test> BODY=8BITMIME\r\nRCPT TO:<u@fake.test>\r\n"
                               "DATA\r\nSubject: x\r\n\r\ncaf\xc3\xa9\r\n.\r\nQUIT\r\n");
    }

    TEST_CASE("CHUNKING: BDAT chunks of k_bdat_chunk octets; replies after each without PIPELINING, after LAST with it")
    {
        std::string message;
        for (std::size_t i = 0; message.size() < 2 * k_bdat_chunk + 1000; ++i) {
            message += "line " + std::to_string(i) + " .\r\n.\r\n";
        }
        const std::size_t rest = message.size() - 2 * k_bdat_chunk;
        Fixture f(message);
        f.envelope.content = Content::seven_bit;
        const std::string chunk = std::to_string(k_bdat_chunk);
        Played p = play({"220 fake.test ESMTP\n<\n250-fake.test hello\n250 CHUNKING\n<\n250 ok\n<\n250 ok\n"
                         "<\n<bytes " + chunk + "\nearly\n250 one\n<\n<bytes " + chunk + "\n250 two\n<\n<bytes " +
                             std::to_string(rest) + "\n250 last\nquit",
                         "220 fake.test ESMTP\n<\n250-fake.test hello\n250-PIPELINING\n250 CHUNKING\n<2\n250 ok\n250 ok\n"
                         "<\n<bytes " + chunk + "\n<\n<bytes " + chunk + "\n<\n<bytes " + std::to_string(rest) +
                             "\n250 one\n250 two\n250 last\nquit"},
                        {f.delivery(), f.delivery()}, Use{.fresh = true, .finish = false});
        for (std::size_t i = 0; i < 2; ++i) {
            CHECK(p.outcomes.at(i).at(0).outcome == Outcome::delivered);
            CHECK(p.outcomes.at(i).at(0).detail == "250 last");
            CHECK(p.received(i).ends_with("BDAT " + std::to_string(rest) + " LAST\r\n" +
                                          message.substr(2 * k_bdat_chunk) + "QUIT\r\n"));
            CHECK(p.received(i).find("\r\nBDAT " + chunk + "\r\n" + message.substr(0, k_bdat_chunk) + "BDAT " + chunk +
                                     "\r\n") != std::string::npos);
        }
        CHECK(p.conns.at(0).early == std::vector<bool>{false}); // waited for the reply to the first chunk
    }

    TEST_CASE("CHUNKING without 8BITMIME: the converted message goes in BDAT, its size counted")
    {
        Fixture f("Subject: x\r\n\r\ncaf\xc3\xa9\r\n");
        f.envelope.content = Content::eight_bit;
        f.envelope.body = Body::eight_bit_mime;
        const std::string converted = "Subject: x\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=unknown-8bit\r\n"
                                      "Content-Transfer-Encoding: quoted-printable\r\n\r\ncaf=C3=A9\r\n";
        const std::string n = std::to_string(converted.size());
        Played p = play({"220 fake.test ESMTP\n<\n250-fake.test hello\n250-SIZE\n250 CHUNKING\n<\n250 ok\n<\n250 ok\n"
                         "<\n<bytes " + n + "\n250 queued\nquit"},
                        {f.delivery()});
        CHECK(p.outcomes.at(0).at(0).outcome == Outcome::delivered);
        CHECK(p.received(0) == "EHLO client.test\r\nMAIL FROM:<a@b.test> SIZE=" + n + "\r\nRCPT TO:<u@fake.test>\r\n"
                               "BDAT " + n + " LAST\r\n" + converted + "QUIT\r\n");
    }

    TEST_CASE("CHUNKING: a refused chunk decides for every accepted recipient; RSET follows")
    {
        std::string message(k_bdat_chunk + 10, 'x');
        Fixture f(message);
        f.envelope.content = Content::seven_bit;
        Played p = play({"220 fake.test ESMTP\n<\n250-fake.test hello\n250 CHUNKING\n<\n250 ok\n<\n250 ok\n"
                         "<\n<bytes " + std::to_string(k_bdat_chunk) + "\n552 5.3.4 too big\n<RSET 250 ok\nquit"},
                        {f.delivery()});
        CHECK(p.outcomes.at(0).at(0).outcome == Outcome::permanent);
        CHECK(p.outcomes.at(0).at(0).detail == "552 5.3.4 too big");
        CHECK(p.received(0).ends_with("xRSET\r\nQUIT\r\n"));
        CHECK(p.received(0).find("LAST") == std::string::npos);
    }

    TEST_CASE("DSN: the parameters go to a server that offers DSN, none to one that does not; the handoff says which")
    {
        Fixture f("hi\r\n", {"u@fake.test", "v@fake.test", "w@fake.test"});
        f.envelope.dsn_ret = "FULL";
        f.envelope.dsn_envid = "Q+1 =x";
        f.envelope.recipients[0].notify = std::vector<std::string>{"SUCCESS", "FAILURE"};
        f.envelope.recipients[0].orcpt = "rfc822;U+1@fake.test";
        f.envelope.recipients[1].notify = std::vector<std::string>{"NEVER"};
        const std::string session = "<5\n250 ok\n250 ok\n250 ok\n250 ok\n354 go\n<data\n250 2.0.0 queued\nquit";
        Played p = play({"220 fake.test ESMTP\n<\n250-fake.test hello\n250-PIPELINING\n250-SIZE 1000000\n250 DSN\n" +
                             session,
                         "greet all\n" + session},
                        {f.delivery(), f.delivery()}, Use{.fresh = true});
        Handoff want[] = {Handoff::relayed_dsn, Handoff::relayed};
        for (std::size_t i = 0; i < 2; ++i) {
            REQUIRE(p.outcomes.at(i).size() == 3);
            for (const RecipientOutcome& o : p.outcomes[i]) {
                CHECK(o.outcome == Outcome::delivered);
                CHECK(o.handoff == want[i]);
            }
        }
        CHECK(p.received(0) == "EHLO client.test\r\nMAIL FROM:<a@b.test> SIZE=4 RET=FULL ENVID=Q+2B1+20+3Dx\r\n"
                               "RCPT TO:<u@fake.test> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;U+2B1@fake.test\r\n"
                               "RCPT TO:<v@fake.test> NOTIFY=NEVER\r\nRCPT TO:<w@fake.test>\r\n"
                               "DATA\r\nhi\r\n.\r\nQUIT\r\n");
        CHECK(p.received(1) == "EHLO client.test\r\nMAIL FROM:<a@b.test> SIZE=4\r\nRCPT TO:<u@fake.test>\r\n"
                               "RCPT TO:<v@fake.test>\r\nRCPT TO:<w@fake.test>\r\nDATA\r\nhi\r\n.\r\nQUIT\r\n");
    }

    TEST_CASE("addresses with CR, LF or brackets are never sent")
    {
        Fixture f("hi\r\n", {"evil@fake.test>\r\nRCPT TO:<other@fake.test", "ok@fake.test", "a<b@fake.test"});
        Played p = play({"greet all\n<3\n250 ok\n250 ok\n354 go\n<data\n250 queued\nquit"}, {f.delivery()});
        const auto& out = p.outcomes.at(0);
        REQUIRE(out.size() == 3);
        CHECK(out[0].outcome == Outcome::permanent);
        CHECK(out[0].detail == "553 5.1.3 recipient address not sent: address contains a control character");
        CHECK(out[1].outcome == Outcome::delivered);
        CHECK(out[2].outcome == Outcome::permanent);
        CHECK(out[2].detail == "553 5.1.3 recipient address not sent: address contains '<' or '>'");
        CHECK(p.received(0) == "EHLO client.test\r\nMAIL FROM:<a@b.test> SIZE=4\r\n"
                               "RCPT TO:<ok@fake.test>\r\nDATA\r\nhi\r\n.\r\nQUIT\r\n");

        // A bad sender fails every recipient without a connection.
        Fixture g("hi\r\n");
        g.envelope.mail_from = "a@b.test>\r\nRSET";
        auto never = transport_to(closed_port());
        auto bad = never.deliver(g.delivery());
        CHECK(bad.at(0).outcome == Outcome::permanent);
        CHECK(bad.at(0).detail == "553 5.1.7 sender address not sent: address contains a control character");
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
            CHECK(o.try_next); // another server of the destination may take it
            CHECK(o.hop == where(port));
        }
        CHECK_FALSE(t.connected());
        t.finish();
    }

    TEST_CASE("an IPv6 target is written in brackets; a bad HELO name sends nothing")
    {
        Fixture f("hi\r\n");
        for (const char* host : {"::1", "[::1]"}) {
            SmtpDeliverer t(SmtpTarget{host, closed_port()}, "client.test",
                            SmtpTimeouts::uniform(std::chrono::seconds(1)));
            auto out = t.deliver(f.delivery());
            CHECK(out.at(0).outcome == Outcome::temporary);
            // Refused where ::1 exists, "cannot connect" where IPv6 is off.
            const std::string& d = out.at(0).detail;
            INFO(d);
            CHECK((d.rfind("connection to [::1]:", 0) == 0 || d.rfind("cannot connect to [::1]:", 0) == 0));
        }
        SmtpDeliverer bad(SmtpTarget{"127.0.0.1", closed_port()}, "client.test\r\nRSET",
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
        SmtpDeliverer t(SmtpTarget{host, 25}, "client.test", SmtpTimeouts::uniform(std::chrono::seconds(1)));
        auto out = t.deliver(f.delivery());
        CHECK(out.at(0).outcome == Outcome::temporary);
        CHECK(out.at(0).detail.rfind("cannot resolve " + host + ": ", 0) == 0);
        CHECK_FALSE(t.connected());
    }

    TEST_CASE("a server that stalls: temporary after the timeout")
    {
        // The timeout path, not the clock, is checked: the detail names the
        // greeting's wait and the configured 1 s (no elapsed-time bounds,
        // which a loaded machine can break).
        Fixture f("hi\r\n");
        Played p = play({"wait"}, {f.delivery()}, Use{.timeout_s = 1, .finish = false});
        CHECK(p.outcomes.at(0).at(0).outcome == Outcome::temporary);
        CHECK(p.outcomes.at(0).at(0).detail == "timeout waiting for greeting from " + p.where + " after 1 s");
        CHECK_FALSE(p.connected.at(0));
        CHECK(p.received(0) == ""); // nothing sent, not even QUIT
    }

    TEST_CASE("one connection for two messages, RSET between, QUIT at the end")
    {
        Fixture f("one\r\n");
        Fixture g("two\r\n", {"w@fake.test"});
        const std::string one = "<3\n250 ok\n250 ok\n354 go\n<data\n250 queued\n";
        Played p = play({"greet all\n" + one + "<RSET 250 ok\n" + one + "quit"}, {f.delivery(), g.delivery()});
        CHECK(p.outcomes.at(0).at(0).outcome == Outcome::delivered);
        CHECK(p.outcomes.at(1).at(0).outcome == Outcome::delivered);
        CHECK(p.conns.size() == 1);
        CHECK(p.received(0) == "EHLO client.test\r\n"
                               "MAIL FROM:<a@b.test> SIZE=5\r\nRCPT TO:<u@fake.test>\r\nDATA\r\none\r\n.\r\n"
                               "RSET\r\n"
                               "MAIL FROM:<a@b.test> SIZE=5\r\nRCPT TO:<w@fake.test>\r\nDATA\r\ntwo\r\n.\r\n"
                               "QUIT\r\n");
    }

    TEST_CASE("RSET not answered 250: QUIT, and a new connection for the next message")
    {
        Fixture f("hi\r\n");
        const std::string deliver_one = "greet all\n<3\n250 ok\n250 ok\n354 go\n<data\n250 queued\n";
        Played p = play({deliver_one + "<\n500 5.5.1 what?\nquit", deliver_one + "quit"},
                        {f.delivery(), f.delivery()});
        CHECK(p.outcomes.at(0).at(0).outcome == Outcome::delivered);
        CHECK(p.outcomes.at(1).at(0).outcome == Outcome::delivered);
        CHECK(p.conns.size() == 2);
        CHECK(p.received(0).substr(p.received(0).size() - 12) == "RSET\r\nQUIT\r\n");
        CHECK(p.received(1).substr(0, 18) == "EHLO client.test\r\n");
    }

    TEST_CASE("421 to RCPT, then the server closes: temporary, and the next message reconnects")
    {
        Fixture f("hi\r\n", {"u@fake.test", "v@fake.test", "w@fake.test"});
        // The next message opens a new connection (it finds no SMTPUTF8 there and stops).
        Fixture g("hi\r\n");
        g.envelope.smtputf8 = true;
        Played p = play({R"(greet plain
<
250 ok
<
550 5.1.1 unknown
<
421 4.3.2 fake.test shutting down)",
                         "greet plain\nquit"},
                        {f.delivery(), g.delivery()});
        CHECK_FALSE(p.connected.at(0));
        const auto& out = p.outcomes.at(0);
        REQUIRE(out.size() == 3);
        CHECK(out[0].outcome == Outcome::permanent); // the server's own answer stands
        CHECK(out[0].detail == "550 5.1.1 unknown");
        CHECK_FALSE(out[0].try_next);
        CHECK(out[1].outcome == Outcome::temporary);
        CHECK(out[1].detail == "421 4.3.2 fake.test shutting down");
        CHECK(out[1].try_next);
        CHECK(out[2].try_next);
        CHECK(out[2].outcome == Outcome::temporary);
        CHECK(out[2].detail == "421 4.3.2 fake.test shutting down");
        CHECK(p.outcomes.at(1).at(0).outcome == Outcome::permanent);
        CHECK(p.conns.size() == 2);
        CHECK(p.received(0) == "EHLO client.test\r\nMAIL FROM:<a@b.test>\r\nRCPT TO:<u@fake.test>\r\n"
                               "RCPT TO:<v@fake.test>\r\n");
    }

    TEST_CASE("a 421 greeting: temporary, no QUIT; a 554 greeting: temporary, QUIT")
    {
        Fixture f("hi\r\n");
        Played p = play({"421 4.3.2 busy", "554 5.7.1 no service for you\nquit"}, {f.delivery(), f.delivery()},
                        Use{.finish = false});
        CHECK(p.outcomes.at(0).at(0).outcome == Outcome::temporary);
        CHECK(p.outcomes.at(0).at(0).detail == p.where + " refused the session: 421 4.3.2 busy");
        CHECK(p.outcomes.at(1).at(0).outcome == Outcome::temporary);
        CHECK(p.outcomes.at(1).at(0).detail == p.where + " refused the session: 554 5.7.1 no service for you");
        CHECK(p.outcomes.at(0).at(0).try_next);
        CHECK(p.outcomes.at(1).at(0).try_next);
        CHECK(p.received(0) == "");
        CHECK(p.received(1) == "QUIT\r\n");
    }

    TEST_CASE("the connection drops during DATA: temporary")
    {
        Fixture f(std::string(200000, 'x') + "\r\n");
        Played p = play({"greet all\n<3\n250 ok\n250 ok\n354 go"}, {f.delivery()}, Use{.finish = false});
        CHECK(p.outcomes.at(0).at(0).outcome == Outcome::temporary);
        CHECK(p.outcomes.at(0).at(0).detail.rfind("connection to " + p.where + " closed while ", 0) == 0);
        CHECK_FALSE(p.connected.at(0));
    }

    TEST_CASE("the connection drops after the end of data: temporary, and no other server may get it")
    {
        Fixture f("hi\r\n");
        Played p = play({"greet all\n<3\n250 ok\n250 ok\n354 go\n<data"}, {f.delivery()}, Use{.finish = false});
        CHECK(p.outcomes.at(0).at(0).outcome == Outcome::temporary);
        CHECK_FALSE(p.outcomes.at(0).at(0).try_next); // the server may have the message
        // More than the kernel's socket buffers can hold (net.ipv4.tcp_wmem's
        // 4 MiB on the sending side, the unread receive buffer on the other):
        // the client cannot have written it all before the server closes,
        // however the two threads are scheduled. (A server without SIZE.)
        Fixture g(std::string(std::size_t{48} << 20, 'x') + "\r\n");
        Played q = play({"greet plain\n<\n250 ok\n<\n250 ok\n<\n354 go"}, {g.delivery()}, Use{.finish = false});
        CHECK(q.outcomes.at(0).at(0).outcome == Outcome::temporary);
        CHECK(q.outcomes.at(0).at(0).try_next); // it cannot have all of it
    }

    TEST_CASE("replies spread over many reads; a very long reply line is a malformed reply")
    {
        Fixture f("hi\r\n");
        Played p = play({"!7 220-fake.test\\r\\n220-" + std::string(300, 'g') + "\\r\\n220 ready\\r\\n\n<\n!1 " +
                             escape(k_ehlo_all) + "\n<3\n250 ok\n250 ok\n354 go\n<data\n250 " +
                             std::string(3000, 'y') + "\nwait",
                         "220 " + std::string(5000, 'z') + "\nwait"},
                        {f.delivery(), f.delivery()}, Use{.finish = false});
        CHECK(p.outcomes.at(0).at(0).outcome == Outcome::temporary);
        CHECK(p.outcomes.at(0).at(0).detail ==
              "malformed reply to the end of data from " + p.where + ": reply line longer than 2048 octets");
        CHECK_FALSE(p.connected.at(0));
        CHECK(p.outcomes.at(1).at(0).outcome == Outcome::temporary);
        CHECK(p.outcomes.at(1).at(0).detail ==
              "malformed greeting from " + p.where + ": reply line longer than 2048 octets");
    }

    TEST_CASE("a message over the server's SIZE limit is not sent")
    {
        Fixture f(std::string(100, 'x') + "\r\n");
        Played p = play({"220 fake.test ESMTP\n<\n250-fake.test\n250 SIZE 50\nquit"}, {f.delivery()});
        CHECK(p.outcomes.at(0).at(0).outcome == Outcome::permanent);
        CHECK(p.outcomes.at(0).at(0).detail == "552 5.3.4 not sent: the message (102 octets) exceeds the size limit of " +
                                                   p.where + " (50 octets)");
        CHECK(p.received(0) == "EHLO client.test\r\nQUIT\r\n");
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

    TEST_CASE("the fake itself: an unknown script step fails the test that uses it")
    {
        FakeServer server({"greet all\nbogus step\nquit"});
        Fixture f("hi\r\n");
        auto t = transport_to(server.port());
        t.deliver(f.delivery());
        t.finish();
        server.join();
        CHECK(server.errors == std::vector<std::string>{"bogus step"});
        REQUIRE(server.conns.size() == 1);
        CHECK(server.conns[0].lines.front() == "EHLO client.test");
    }
}

namespace {

// A TLS connector whose handshakes all fail, as against a server whose TLS is broken.
class BrokenTls final : public ClientTlsConnector {
public:
    Result<std::unique_ptr<ClientTlsChannel>> handshake(int, const std::string&, WaitMs) override
    {
        ++handshakes;
        return Error{0, "handshake failure (test)"};
    }
    int handshakes = 0;
};

// The greeting, EHLO read, and a reply offering STARTTLS and AUTH (script lines).
const std::string k_greet_tls_auth = "220 fake.test\n<\n250-fake.test hello\n250-STARTTLS\n250 AUTH LOGIN PLAIN";

AuthEntry credentials(std::string user, std::string password)
{
    AuthEntry e;
    e.host = "127.0.0.1";
    e.user = std::move(user);
    e.password = std::move(password);
    return e;
}

} // namespace

TEST_SUITE("smtp_deliverer security")
{
    TEST_CASE("may: a refused STARTTLS goes on in clear text; none never asks")
    {
        Fixture f("Subject: t\r\n\r\nbody\r\n");
        Use use;
        use.security.level = TlsLevel::may;
        auto tls = std::make_shared<BrokenTls>();
        use.security.tls = tls;
        Played p = play({k_greet_tls_auth + R"(
<STARTTLS 454 4.7.0 TLS not available now
<
250 ok
<
250 ok
<
354 go
<data
250 2.0.0 queued
quit)"},
                        {f.delivery()}, use);
        REQUIRE(p.outcomes.at(0).size() == 1);
        CHECK(p.outcomes[0][0].outcome == Outcome::delivered);
        CHECK_FALSE(p.outcomes[0][0].tls);
        CHECK(p.received(0).starts_with("EHLO client.test\r\nSTARTTLS\r\nMAIL FROM:"));
        CHECK(tls->handshakes == 0);

        use.security.level = TlsLevel::none;
        Played q = play({k_greet_tls_auth + R"(
<
250 ok
<
250 ok
<
354 go
<data
250 2.0.0 queued
quit)"},
                        {f.delivery()}, use);
        CHECK(q.outcomes.at(0).at(0).outcome == Outcome::delivered);
        CHECK(q.received(0).find("STARTTLS") == std::string::npos);
    }

    TEST_CASE("a failed handshake: may opens a new connection in clear text, encrypt defers")
    {
        Fixture f("Subject: t\r\n\r\nbody\r\n");
        auto tls = std::make_shared<BrokenTls>();
        Use use;
        use.security.level = TlsLevel::may;
        use.security.tls = tls;
        Played p = play({k_greet_tls_auth + R"(
<STARTTLS 220 go ahead
wait)",
                         k_greet_tls_auth + R"(
<
250 ok
<
250 ok
<
354 go
<data
250 2.0.0 queued
<RSET 421 4.3.2 closing
wait)",
                         k_greet_tls_auth + R"(
<
250 ok
<
250 ok
<
354 go
<data
250 2.0.0 queued
quit)"},
                        {f.delivery(), f.delivery()}, use);
        CHECK(tls->handshakes == 1); // not again on the run's next connection
        CHECK(p.outcomes.at(0).at(0).outcome == Outcome::delivered);
        CHECK(p.outcomes.at(1).at(0).outcome == Outcome::delivered);
        REQUIRE(p.conns.size() == 3);
        CHECK(p.received(1).find("STARTTLS") == std::string::npos);
        CHECK(p.received(2).find("STARTTLS") == std::string::npos);

        use.security.level = TlsLevel::encrypt;
        Played q = play({k_greet_tls_auth + R"(
<STARTTLS 220 go ahead
wait)"},
                        {f.delivery()}, use);
        CHECK(q.outcomes.at(0).at(0).outcome == Outcome::temporary);
        CHECK(q.outcomes[0][0].detail == "TLS with " + q.where + " failed: handshake failure (test)");
    }

    TEST_CASE("encrypt and verify without a TLS connector, or toward a server without STARTTLS: deferred")
    {
        Fixture f("Subject: t\r\n\r\nbody\r\n");
        Use use;
        use.security.level = TlsLevel::verify;
        Played p = play({"greet plain\nquit"}, {f.delivery()}, use);
        CHECK(p.outcomes.at(0).at(0).outcome == Outcome::temporary);
        CHECK(p.outcomes[0][0].detail == p.where + " does not offer STARTTLS, which --smtp-tls verify requires");
        CHECK(p.received(0) == "EHLO client.test\r\nQUIT\r\n");
    }

    TEST_CASE("AUTH PLAIN to a loopback server in clear text; the password only in the PLAIN message")
    {
        Fixture f("Subject: t\r\n\r\nbody\r\n");
        Use use;
        use.security.credentials = credentials("alice", "pa:ss word");
        Played p = play({k_greet_tls_auth + R"(
<
235 2.7.0 ok
<
250 ok
<
250 ok
<
354 go
<data
250 2.0.0 queued
quit)"},
                        {f.delivery()}, use);
        CHECK(p.outcomes.at(0).at(0).outcome == Outcome::delivered);
        CHECK(p.received(0).starts_with("EHLO client.test\r\n" + auth_plain_command("alice", "pa:ss word") +
                                        "MAIL FROM:"));
    }

    TEST_CASE("AUTH LOGIN when PLAIN is not offered; no mechanism: deferred")
    {
        Fixture f("Subject: t\r\n\r\nbody\r\n");
        Use use;
        use.security.credentials = credentials("alice", "secret");
        Played p = play({R"(220 fake.test
<
250-fake.test
250 AUTH=LOGIN
<
334 VXNlcm5hbWU6
<
334 UGFzc3dvcmQ6
<
235 ok
<
250 ok
<
250 ok
<
354 go
<data
250 2.0.0 queued
quit)",
                         R"(220 fake.test
<
250-fake.test
250 AUTH CRAM-MD5
quit)"},
                        {f.delivery(), f.delivery()}, Use{2, true, true, use.security});
        CHECK(p.outcomes.at(0).at(0).outcome == Outcome::delivered);
        CHECK(p.received(0).starts_with("EHLO client.test\r\nAUTH LOGIN\r\nYWxpY2U=\r\nc2VjcmV0\r\nMAIL FROM:"));
        CHECK(p.outcomes.at(1).at(0).outcome == Outcome::temporary);
        CHECK(p.outcomes[1][0].detail ==
              p.where + " offers no AUTH mechanism that runq uses (PLAIN, LOGIN); offered: CRAM-MD5");
    }

    TEST_CASE("535: deferred, one notice, and no second connection in the run")
    {
        Fixture f("Subject: t\r\n\r\nbody\r\n");
        std::vector<std::string> notices;
        Use use;
        use.security.credentials = credentials("alice", "wrong");
        use.notices = &notices;
        Played p = play({k_greet_tls_auth + R"(
<
535 5.7.8 Authentication credentials invalid
quit)"},
                        {f.delivery(), f.delivery()}, use);
        std::string want = "authentication as alice to " + p.where +
                           " by PLAIN refused: 535 5.7.8 Authentication credentials invalid (check "
                           "--smtp-auth-file; messages wait until the next run)";
        for (const auto& outcomes : p.outcomes) {
            CHECK(outcomes.at(0).outcome == Outcome::temporary);
            CHECK(outcomes.at(0).detail == want);
            CHECK(outcomes.at(0).detail.find("wrong") == std::string::npos);
        }
        CHECK(p.conns.size() == 1);
        CHECK(notices == std::vector<std::string>{want});
    }
}
