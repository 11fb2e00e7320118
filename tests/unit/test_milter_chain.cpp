// Tests of the milter chain (server/milter) against real milters on
// UNIX-domain sockets, started by the test: the python3-milter (libmilter)
// milter of the e2e tests for the end of a message and every change it may
// ask for, and the hand-made protocol peer (tests/e2e/rawmilter.py) for what
// libmilter never sends: progress, skip, a change before the end, a change
// not negotiated. Skipped (with a message) without python3-milter.
#include "server/milter.hpp"
#include "testutil.hpp"

#include <doctest/doctest.h>

#include <csignal>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

using namespace smtpspool;
using namespace testutil;

namespace {

bool have_pymilter() { return std::system("/usr/bin/python3 -c 'import Milter' 2>/dev/null") == 0; }

// Whether a UNIX-domain socket takes a connection now.
bool accepts(const std::string& path)
{
    sockaddr_un sa{};
    sa.sun_family = AF_UNIX;
    if (path.size() >= sizeof sa.sun_path) {
        return false;
    }
    path.copy(sa.sun_path, path.size());
    int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        return false;
    }
    const bool ok = ::connect(fd, reinterpret_cast<const sockaddr*>(&sa), sizeof sa) == 0;
    ::close(fd);
    return ok;
}

// A milter process on a socket in a temporary directory, killed at the end.
class MilterProcess {
public:
    MilterProcess(const std::string& script, std::vector<std::string> args, const std::string& socket)
    {
        m_pid = ::fork();
        if (m_pid == 0) {
            std::vector<std::string> argv{"/usr/bin/python3", "../e2e/" + script, socket};
            argv.insert(argv.end(), args.begin(), args.end());
            std::vector<char*> c;
            for (std::string& a : argv) {
                c.push_back(a.data());
            }
            c.push_back(nullptr);
            ::execv(c[0], c.data());
            ::_exit(127);
        }
        // Until a connection is taken: the path is there between bind() and
        // listen(), when a connection is still refused.
        bool up = false;
        for (int i = 0; i < 400 && !(up = accepts(socket)); ++i) {
            std::this_thread::sleep_for(std::chrono::milliseconds(25));
        }
        REQUIRE(up);
    }
    ~MilterProcess()
    {
        ::kill(m_pid, SIGKILL);
        ::waitpid(m_pid, nullptr, 0);
    }

private:
    pid_t m_pid = -1;
};

MilterSpec spec_of(const std::string& socket)
{
    std::string why;
    auto s = parse_milter_spec("unix:" + socket, why);
    REQUIRE(s);
    return *s;
}

struct Chain {
    Chain(std::vector<std::string> sockets, MilterDefault d = MilterDefault::tempfail,
          std::chrono::milliseconds timeout = std::chrono::milliseconds(5000))
    {
        MilterOptions o;
        for (const std::string& s : sockets) {
            o.milters.push_back(spec_of(s));
        }
        o.default_action = d;
        o.timeout = timeout;
        o.max_body = 1 << 20;
        chain.emplace(std::move(o), log);
        peer.local = false;
        peer.address = "192.0.2.7";
        peer.port = 41000;
    }
    // connect, HELO, MAIL, RCPT, DATA: each verdict's action.
    std::vector<FilterVerdict::Action> start_transaction()
    {
        FilterMessageFacts facts{"ID1", "", "", "", ""};
        std::vector<FilterVerdict::Action> v;
        v.push_back(chain->connect(FilterConnect{peer, "mx.test"}).action);
        v.push_back(chain->helo("client.test").action);
        v.push_back(chain->mail("a@client.test", {}, FilterMessageFacts{"", "", "", "", ""}).action);
        v.push_back(chain->rcpt("u@mx.test", {}).action);
        v.push_back(chain->data(facts).action);
        return v;
    }
    RecordingLog log;
    Peer peer;
    std::optional<MilterChain> chain;
};

// The stored message as the session's spool gives it: in small pieces.
MessageSource source(std::string message)
{
    return [message = std::move(message)](const MessagePiece& piece) -> Result<void> {
        for (std::size_t at = 0; at < message.size(); at += 7) {
            piece(std::string_view(message).substr(at, 7));
        }
        return {};
    };
}

using A = FilterVerdict::Action;
const std::vector<A> k_all_proceed{A::proceed, A::proceed, A::proceed, A::proceed, A::proceed};

} // namespace

TEST_SUITE("milter chain")
{
    TEST_CASE("the end of a message: every change libmilter can ask for, collected in order; quarantine")
    {
        if (!have_pymilter()) {
            MESSAGE("skipped: python3-milter is not installed");
            return;
        }
        TempDir dir;
        const std::string sock = dir.path() + "/m.sock";
        MilterProcess milter("testmilter.py", {dir.path() + "/record"}, sock);
        Chain c({sock});
        CHECK(c.start_transaction() == k_all_proceed);
        EndOfMessageVerdict eom = c.chain->end_of_message(source(
            "Received: from x\r\n\tby mx.test\r\nSubject: add-header change-subject add-rcpt "
            "del-rcpt change-from replace-body quarantine\r\n\r\nbody\r\n"));
        CHECK(eom.verdict.action == A::quarantine);
        CHECK(eom.verdict.reason == "held by the test milter");
        const MessageEdits& e = eom.edits;
        REQUIRE(e.headers.size() == 2);
        CHECK(e.headers[0].kind == HeaderEdit::Kind::add);
        CHECK(e.headers[0].name == "X-Milter");
        CHECK(e.headers[0].value == "added");
        CHECK(e.headers[1].kind == HeaderEdit::Kind::change);
        CHECK(e.headers[1].name == "Subject");
        CHECK(e.headers[1].index == 1);
        CHECK(e.headers[1].value == "changed by the milter");
        CHECK(e.add_recipients == std::vector<std::string>{"added@mx.test.example"});
        CHECK(e.delete_recipients == std::vector<std::string>{"gone@mx.test.example"});
        CHECK(e.sender == std::optional<std::string>("new-sender@client.test.example"));
        CHECK(e.body == std::optional<std::string>("replaced body\r\n"));
        CHECK(c.log.has("event=milter milter=unix:" + sock + " stage=eom action=quarantine edits=7 reason=\"held by the test milter\""));
        // The next transaction on the same connection: a reject at the end.
        CHECK(c.chain->mail("a@client.test", {}, FilterMessageFacts{"", "", "", "", ""}).action == A::proceed);
        CHECK(c.chain->rcpt("u@mx.test", {}).action == A::proceed);
        CHECK(c.chain->data(FilterMessageFacts{"ID2", "", "", "", ""}).action == A::proceed);
        EndOfMessageVerdict rejected = c.chain->end_of_message(source("Subject: add-header reject-eom\r\n\r\nbody\r\n"));
        CHECK(rejected.verdict.action == A::reject);
        CHECK(rejected.edits.empty());
        c.chain->quit();
    }

    TEST_CASE("two milters: the changes of both, in their order; SMFIR_SKIP ends the body chunks")
    {
        if (!have_pymilter()) {
            MESSAGE("skipped: python3-milter is not installed");
            return;
        }
        TempDir dir;
        MilterProcess first("testmilter.py", {dir.path() + "/record"}, dir.path() + "/a.sock");
        MilterProcess second("rawmilter.py", {"skip-body"}, dir.path() + "/b.sock");
        Chain c({dir.path() + "/a.sock", dir.path() + "/b.sock"});
        CHECK(c.start_transaction() == k_all_proceed);
        EndOfMessageVerdict eom = c.chain->end_of_message(source("Subject: add-header\r\n\r\n" + std::string(3 * milter::k_body_chunk, 'x')));
        CHECK(eom.verdict.action == A::proceed);
        REQUIRE(eom.edits.headers.size() == 2);
        CHECK(eom.edits.headers[0].name == "X-Milter");
        CHECK(eom.edits.headers[1].name == "X-Chunks");
        CHECK(eom.edits.headers[1].value == "1");
    }

    TEST_CASE("two milters: the second is sent the message as the first changed it")
    {
        if (!have_pymilter()) {
            MESSAGE("skipped: python3-milter is not installed");
            return;
        }
        TempDir dir;
        MilterProcess first("testmilter.py", {dir.path() + "/first"}, dir.path() + "/a.sock");
        MilterProcess second("testmilter.py", {dir.path() + "/second"}, dir.path() + "/b.sock");
        Chain c({dir.path() + "/a.sock", dir.path() + "/b.sock"});
        CHECK(c.start_transaction() == k_all_proceed);
        EndOfMessageVerdict eom = c.chain->end_of_message(
            source("Subject: add-header change-subject replace-body\r\nTo: u@mx.test\r\n\r\nthe body as received\r\n"));
        CHECK(eom.verdict.action == A::proceed);
        // The second saw the new Subject (no words of its own), the added field after
        // the others, and the replaced body: it changed nothing.
        REQUIRE(eom.edits.headers.size() == 2);
        CHECK(eom.edits.headers[0].name == "X-Milter");
        CHECK(eom.edits.headers[1].name == "Subject");
        CHECK(eom.edits.body == std::optional<std::string>("replaced body\r\n"));
        c.chain->quit();
        auto read = [](const std::string& path) {
            std::ifstream f(path);
            std::stringstream ss;
            ss << f.rdbuf();
            return ss.str();
        };
        const std::string first_saw = read(dir.path() + "/first");
        const std::string second_saw = read(dir.path() + "/second");
        CHECK(first_saw.find("\"value\": \"add-header change-subject replace-body\"") != std::string::npos);
        CHECK(first_saw.find("X-Milter") == std::string::npos);
        CHECK(first_saw.find("\"size\": 22") != std::string::npos);
        const std::size_t subject = second_saw.find("{\"name\": \"Subject\", \"value\": \"changed by the milter\"");
        const std::size_t to = second_saw.find("{\"name\": \"To\"");
        const std::size_t added = second_saw.find("{\"name\": \"X-Milter\", \"value\": \"added\"");
        CHECK(subject != std::string::npos);
        CHECK(to != std::string::npos);
        CHECK(added != std::string::npos);
        CHECK(subject < to);
        CHECK(to < added);
        CHECK(second_saw.find("\"size\": 15") != std::string::npos);
        CHECK(second_saw.find("add-header") == std::string::npos);
    }

    TEST_CASE("progress replies restart the time-out")
    {
        TempDir dir;
        MilterProcess slow("rawmilter.py", {"progress-eom"}, dir.path() + "/s.sock");
        Chain c({dir.path() + "/s.sock"}, MilterDefault::tempfail, std::chrono::milliseconds(1000));
        CHECK(c.start_transaction() == k_all_proceed);
        EndOfMessageVerdict eom = c.chain->end_of_message(source("Subject: slow\r\n\r\nbody\r\n"));
        CHECK(eom.verdict.action == A::proceed);
        REQUIRE(eom.edits.headers.size() == 1);
        CHECK(eom.edits.headers[0].name == "X-Slow");
    }

    TEST_CASE("a change before the end of the message, or one not negotiated, breaks the protocol")
    {
        TempDir dir;
        MilterProcess early("rawmilter.py", {"change-early"}, dir.path() + "/e.sock");
        Chain c({dir.path() + "/e.sock"});
        FilterMessageFacts none{"", "", "", "", ""};
        CHECK(c.chain->connect(FilterConnect{c.peer, "mx.test"}).action == A::proceed);
        FilterVerdict v = c.chain->mail("a@client.test", {}, none);
        CHECK(v.action == A::tempfail);
        CHECK(!v.reply);
        CHECK(c.log.has("stage=mail action=tempfail reason=\"protocol: a change before the end of the message\""));
        // Failed for the session: its default action holds at each later stage.
        CHECK(c.chain->helo("again.test").action == A::tempfail);

        MilterProcess unnegotiated("rawmilter.py", {"unnegotiated-eom"}, dir.path() + "/u.sock");
        for (MilterDefault d : {MilterDefault::tempfail, MilterDefault::reject, MilterDefault::accept}) {
            Chain u({dir.path() + "/u.sock"}, d);
            CHECK(u.start_transaction() == k_all_proceed);
            EndOfMessageVerdict eom = u.chain->end_of_message(source("Subject: x\r\n\r\nbody\r\n"));
            CHECK(eom.verdict.action ==
                  (d == MilterDefault::tempfail ? A::tempfail : d == MilterDefault::reject ? A::reject : A::proceed));
            CHECK(eom.edits.empty());
            CHECK(u.log.has("stage=eom action=" + std::string(milter_default_name(d)) +
                            " reason=\"protocol: a change not negotiated\""));
        }
    }

    TEST_CASE("changes at the end of a message are bounded in number and in size")
    {
        TempDir dir;
        MilterProcess headers("rawmilter.py", {"flood-headers-eom"}, dir.path() + "/h.sock");
        MilterProcess rcpts("rawmilter.py", {"flood-rcpt-eom"}, dir.path() + "/r.sock");
        const std::pair<const char*, const char*> cases[] = {
            {"/h.sock", "protocol: changes over the size limit"},
            {"/r.sock", "protocol: more than 10000 changes"},
        };
        for (const auto& [name, reason] : cases) {
            Chain c({dir.path() + name});
            CHECK(c.start_transaction() == k_all_proceed);
            EndOfMessageVerdict eom = c.chain->end_of_message(source("Subject: x\r\n\r\nbody\r\n"));
            CHECK(eom.verdict.action == A::tempfail);
            CHECK(eom.edits.empty());
            CHECK(c.log.has("stage=eom action=tempfail reason=\"" + std::string(reason) + "\""));
        }
    }

    TEST_CASE("milter specs")
    {
        std::string why;
        auto u = parse_milter_spec("unix:/run/m.sock", why);
        REQUIRE(u);
        CHECK(u->kind == MilterSpec::Kind::unix_socket);
        CHECK(u->address == "/run/m.sock");
        auto i = parse_milter_spec("inet:127.0.0.1:8891", why);
        REQUIRE(i);
        CHECK(i->kind == MilterSpec::Kind::inet);
        CHECK(i->address == "127.0.0.1");
        CHECK(i->port == 8891);
        auto six = parse_milter_spec("inet6:[::1]:11332", why);
        REQUIRE(six);
        CHECK(six->address == "::1");
        CHECK(six->port == 11332);
        CHECK(parse_milter_spec("inet:localhost:25", why));
        for (const char* bad : {"", "unix:", "unix:relative", "inet:host", "inet:host:0", "inet:host:65536",
                                "inet::25", "inet:ho st:25", "tcp:host:25", "inet:host:2x"}) {
            CAPTURE(bad);
            CHECK(!parse_milter_spec(bad, why));
        }
        CHECK(!parse_milter_spec("unix:/" + std::string(200, 'a'), why));
        CHECK(parse_milter_default("reject") == MilterDefault::reject);
        CHECK(!parse_milter_default("discard"));
    }
}
