// Tests of QueueDir and SpoolEntry: the only code that reads, rewrites and
// removes queued messages, never through a link planted in the spool.
#include "spool/spool_entry.hpp"
#include "spool/envelope_json.hpp"
#include "spool/spool.hpp"
#include "base/limits.hpp"
#include "testutil.hpp"

#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <sys/stat.h>
#include <unistd.h>

using namespace smtpspool;
using namespace testutil;

namespace {

std::string read_all(const std::string& path)
{
    std::ifstream in(path, std::ios::binary);
    std::ostringstream s;
    s << in.rdbuf();
    return s.str();
}

void write_text(const std::string& path, const std::string& text)
{
    std::ofstream out(path, std::ios::binary);
    out << text;
}

// A spool with one queued message, and a directory outside it holding a file
// that nothing may read, change or delete.
struct Planted {
    Planted() : clock(TimePoint(std::chrono::seconds(1795000000)))
    {
        REQUIRE(ensure_spool_layout(spool.path()).ok());
        SpoolWriter w(spool.path(), posix, clock, 9);
        REQUIRE(w.begin().ok());
        REQUIRE(w.append("Subject: x\r\n\r\nbody\r\n").ok());
        Envelope e;
        e.received_at = rfc3339_utc(clock.now());
        e.hostname = "mx.test";
        e.client.helo = "c.test";
        e.mail_from = "a@b.test";
        Recipient r;
        r.address = "u@far.test";
        e.recipients.push_back(r);
        REQUIRE(w.commit(e).ok());
        id = e.id;
        victim = outside.path() + "/victim";
        write_text(victim, "precious\n");
    }
    std::string dir() const { return spool.path() + "/queue/" + id; }
    bool victim_intact() const { return std::filesystem::exists(victim) && read_all(victim) == "precious\n"; }

    TempDir spool;
    TempDir outside;
    FixedClock clock;
    PosixFs posix;
    std::string id;
    std::string victim;
};

} // namespace

TEST_SUITE("spool_entry")
{
    TEST_CASE("load, open, rewrite and remove a real entry")
    {
        Planted p;
        auto queue = QueueDir::open(p.spool.path(), p.posix);
        REQUIRE(queue.ok());
        auto ids = queue.value().list();
        REQUIRE(ids.ok());
        REQUIRE(ids.value() == std::vector<std::string>{p.id});
        auto entry = queue.value().entry(p.id);
        REQUIRE(entry.ok());
        auto e = entry.value().load();
        REQUIRE(e.ok());
        CHECK(e.value().recipients.at(0).address == "u@far.test");
        CHECK(entry.value().read_message(1 << 20).value() == "Subject: x\r\n\r\nbody\r\n");
        CHECK(entry.value().read_message(4).value().size() == 5); // more than max: max + 1
        e.value().attempts = 3;
        REQUIRE(entry.value().rewrite(e.value()).ok());
        CHECK(load_envelope(p.spool.path(), p.id).value().attempts == 3);
        CHECK(entry.value().try_lock().value());
        auto second = queue.value().entry(p.id);
        REQUIRE(second.ok());
        CHECK_FALSE(second.value().try_lock().value()); // flock is per open file description
        REQUIRE(entry.value().remove().ok());
        CHECK(count_entries(p.spool.path() + "/queue") == 0);
        CHECK(count_entries(p.spool.path() + "/tmp") == 0);
        CHECK(queue.value().entry(p.id).error().errnum == ENOENT);
        CHECK(queue.value().entry("../etc").error().errnum == EINVAL);
    }

    TEST_CASE("a message directory that is a link is refused, not followed")
    {
        Planted p;
        // The real directory goes outside; a link takes its place.
        std::string moved = p.outside.path() + "/moved";
        REQUIRE(::rename(p.dir().c_str(), moved.c_str()) == 0);
        REQUIRE(::symlink(moved.c_str(), p.dir().c_str()) == 0);
        auto queue = QueueDir::open(p.spool.path(), p.posix);
        REQUIRE(queue.ok());
        auto entry = queue.value().entry(p.id);
        REQUIRE_FALSE(entry.ok());
        CHECK(entry.error().errnum == ELOOP);
        CHECK(entry.error().message.find("symbolic link") != std::string::npos);
        CHECK_FALSE(remove_message(p.spool.path(), p.id).ok());
        CHECK(std::filesystem::exists(moved + "/envelope.json")); // nothing removed there
        CHECK(std::filesystem::is_symlink(p.dir()));
    }

    TEST_CASE("envelope.json or message.eml as a link to a file outside: not read")
    {
        Planted p;
        for (const char* name : {"envelope.json", "message.eml"}) {
            CAPTURE(name);
            Planted q;
            std::string file = q.dir() + "/" + name;
            REQUIRE(::unlink(file.c_str()) == 0);
            REQUIRE(::symlink(q.victim.c_str(), file.c_str()) == 0);
            auto entry = QueueDir::open(q.spool.path(), q.posix).value().entry(q.id);
            REQUIRE(entry.ok());
            if (std::string(name) == "envelope.json") {
                auto e = entry.value().load();
                REQUIRE_FALSE(e.ok());
                CHECK(e.error().errnum == ELOOP);
            } else {
                CHECK(entry.value().open_message().error().errnum == ELOOP);
                CHECK(entry.value().read_message(100).error().errnum == ELOOP);
            }
            CHECK(q.victim_intact());
        }
    }

    TEST_CASE("a FIFO in place of envelope.json does not hang the reader")
    {
        Planted p;
        std::string file = p.dir() + "/envelope.json";
        REQUIRE(::unlink(file.c_str()) == 0);
        REQUIRE(::mkfifo(file.c_str(), 0600) == 0);
        auto e = QueueDir::open(p.spool.path(), p.posix).value().entry(p.id).value().load();
        REQUIRE_FALSE(e.ok());
        CHECK(e.error().message.find("not a regular file") != std::string::npos);
    }

    TEST_CASE("a stale envelope.json.new that is a link: the link goes, its target stays")
    {
        Planted p;
        std::string stale = p.dir() + "/envelope.json.new";
        REQUIRE(::symlink(p.victim.c_str(), stale.c_str()) == 0);
        auto entry = QueueDir::open(p.spool.path(), p.posix).value().entry(p.id);
        REQUIRE(entry.ok());
        Envelope e = entry.value().load().value();
        e.attempts = 1;
        REQUIRE(entry.value().rewrite(e).ok());
        CHECK(p.victim_intact());
        CHECK_FALSE(std::filesystem::exists(stale));
        CHECK(load_envelope(p.spool.path(), p.id).value().attempts == 1);
    }

    TEST_CASE("remove deletes links in the message directory, never their targets")
    {
        Planted p;
        REQUIRE(::symlink(p.victim.c_str(), (p.dir() + "/extra").c_str()) == 0);
        REQUIRE(::symlink(p.outside.path().c_str(), (p.dir() + "/dirlink").c_str()) == 0);
        REQUIRE(remove_message(p.spool.path(), p.id).ok());
        CHECK(p.victim_intact());
        CHECK(count_entries(p.spool.path() + "/queue") == 0);
        CHECK(count_entries(p.spool.path() + "/tmp") == 0);
    }

    TEST_CASE("a link planted as tmp/removed-ID does not redirect the removal")
    {
        Planted p;
        std::string planted = p.spool.path() + "/tmp/removed-" + p.id;
        REQUIRE(::symlink(p.outside.path().c_str(), planted.c_str()) == 0);
        REQUIRE(remove_message(p.spool.path(), p.id).ok());
        CHECK(p.victim_intact());
        CHECK(count_entries(p.outside.path()) == 1);
        CHECK(count_entries(p.spool.path() + "/queue") == 0);
        CHECK(count_entries(p.spool.path() + "/tmp") == 0);
    }

    TEST_CASE("queue/ or tmp/ replaced by a link: the spool is refused")
    {
        for (const char* sub : {"queue", "tmp"}) {
            CAPTURE(sub);
            Planted p;
            std::string path = p.spool.path() + "/" + sub;
            std::string moved = p.outside.path() + "/" + sub;
            REQUIRE(::rename(path.c_str(), moved.c_str()) == 0);
            REQUIRE(::symlink(moved.c_str(), path.c_str()) == 0);
            auto queue = QueueDir::open(p.spool.path(), p.posix);
            REQUIRE_FALSE(queue.ok());
            CHECK(queue.error().errnum == ELOOP);
            CHECK_FALSE(ensure_spool_layout(p.spool.path()).ok()); // serve and runq refuse it too
        }
    }

    TEST_CASE("a stale tmp/ entry that is a link: the sweep removes the link only")
    {
        Planted p;
        std::string planted = p.spool.path() + "/tmp/old";
        REQUIRE(::symlink(p.outside.path().c_str(), planted.c_str()) == 0);
        struct timespec times[2] = {{1000, 0}, {1000, 0}};
        REQUIRE(::utimensat(AT_FDCWD, planted.c_str(), times, AT_SYMLINK_NOFOLLOW) == 0);
        CHECK(sweep_stale_tmp(p.spool.path(), p.clock.now()) == 1);
        CHECK_FALSE(std::filesystem::exists(planted));
        CHECK(p.victim_intact());
    }

    TEST_CASE("an envelope over the bound is refused, not read whole")
    {
        Planted p;
        std::string file = p.dir() + "/envelope.json";
        write_text(file, std::string(limits::k_max_envelope_size + 10, ' '));
        auto e = QueueDir::open(p.spool.path(), p.posix).value().entry(p.id).value().load();
        REQUIRE_FALSE(e.ok());
        CHECK(e.error().errnum == EFBIG);
    }

    TEST_CASE("a message directory owned by another user is refused")
    {
        if (::geteuid() != 0) {
            MESSAGE("not root: chown(2) to another user is not possible here");
            return;
        }
        Planted p;
        REQUIRE(::chown(p.dir().c_str(), 65534, 65534) == 0);
        auto entry = QueueDir::open(p.spool.path(), p.posix).value().entry(p.id);
        REQUIRE_FALSE(entry.ok());
        CHECK(entry.error().errnum == EPERM);
        CHECK(entry.error().message.find("spool's owner") != std::string::npos);
    }

    TEST_CASE("each failing call of a load or a removal is an error, never a crash or a half-removal")
    {
        Planted probe;
        FaultyFs counting;
        {
            auto queue = QueueDir::open(probe.spool.path(), counting);
            REQUIRE(queue.ok());
            auto entry = queue.value().entry(probe.id);
            REQUIRE(entry.ok());
            REQUIRE(entry.value().load().ok());
            REQUIRE(entry.value().remove().ok());
        }
        const int total = counting.calls;
        REQUIRE(total >= 4);
        for (int step = 1; step <= total; ++step) {
            CAPTURE(step);
            Planted p;
            FaultyFs fs;
            fs.fail_at = step;
            auto queue = QueueDir::open(p.spool.path(), fs);
            auto entry = queue ? queue.value().entry(p.id) : Result<SpoolEntry>(queue.error());
            auto loaded = entry ? entry.value().load() : Result<Envelope>(entry.error());
            auto removed = loaded ? entry.value().remove() : Result<void>(loaded.error());
            if (!removed) {
                CHECK(removed.error().errnum == EIO);
                // Not removed: the message is still queued, whole.
                CHECK(load_envelope(p.spool.path(), p.id).ok());
            } else {
                CHECK(count_entries(p.spool.path() + "/queue") == 0);
            }
        }
    }
}
