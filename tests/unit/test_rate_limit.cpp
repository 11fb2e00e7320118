// Tests of the connection velocity limits on a real temporary spool: the
// limits, the sliding window, client keys, a bounded file under many clients,
// damaged files, the clock going back, and the lock across processes.
#include "policy/rate_limit.hpp"
#include "testutil.hpp"

#include <doctest/doctest.h>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <unistd.h>

using namespace smtpspool;
using namespace testutil;

namespace {

// The first second of a minute.
const TimePoint k_t0 = TimePoint(std::chrono::seconds(1795000020));

RateCheck check(const std::string& spool, std::string_view client, RateLimits limits, TimePoint now)
{
    auto r = check_connection_rate(spool, client, limits, now);
    REQUIRE_MESSAGE(r.ok(), (r.ok() ? "" : r.error().message));
    return r.value();
}

std::uintmax_t state_size(const std::string& spool) { return std::filesystem::file_size(rate_state_path(spool)); }

std::string read_file(const std::string& path)
{
    std::ifstream in(path, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), {});
}

void write_file(const std::string& path, const std::string& bytes)
{
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out << bytes;
}

std::string random_bytes(std::size_t n, unsigned seed)
{
    std::mt19937 gen(seed);
    std::string s(n, '\0');
    for (char& c : s) {
        c = static_cast<char>(gen() & 0xff);
    }
    return s;
}

// Runs `children` processes doing `each` checks at `now`; returns how many
// were allowed in total, or -1 when a child failed.
int allowed_across_processes(const std::string& spool, int children, int each, RateLimits limits, TimePoint now,
                             std::string_view client)
{
    std::vector<pid_t> pids;
    for (int c = 0; c < children; ++c) {
        pid_t pid = ::fork();
        if (pid == 0) {
            int allowed = 0;
            for (int i = 0; i < each; ++i) {
                auto r = check_connection_rate(spool, client, limits, now);
                if (!r) {
                    ::_exit(255);
                }
                allowed += r.value().verdict == RateVerdict::allowed ? 1 : 0;
            }
            ::_exit(allowed);
        }
        REQUIRE(pid > 0);
        pids.push_back(pid);
    }
    int total = 0;
    bool failed = false;
    for (pid_t pid : pids) {
        int status = 0;
        REQUIRE(::waitpid(pid, &status, 0) == pid);
        if (!WIFEXITED(status) || WEXITSTATUS(status) == 255) {
            failed = true;
        } else {
            total += WEXITSTATUS(status);
        }
    }
    return failed ? -1 : total;
}

} // namespace

TEST_SUITE("rate_limit")
{
    TEST_CASE("count, without a file: the server counters and the sliding window")
    {
        rate::Header h{};
        const std::int64_t m = 29916667;
        for (int i = 1; i <= 5; ++i) {
            CHECK(rate::count(h, nullptr, {}, m, 0.25).server_rate == doctest::Approx(i));
        }
        CHECK(h.server_minute == m);
        CHECK(h.server_current == 5);
        // The next minute, a quarter gone: 5 × 0.75 + 1.
        CHECK(rate::count(h, nullptr, {}, m + 1, 0.25).server_rate == doctest::Approx(4.75));
        CHECK(h.server_previous == 5);
        CHECK(h.server_current == 1);
        // Two minutes on, the history is gone.
        CHECK(rate::count(h, nullptr, {}, m + 3, 0.5).server_rate == doctest::Approx(1));
        CHECK(h.server_previous == 0);
        // A minute back (a small step of the clock): counted in the latest
        // minute, with none of it elapsed.
        CHECK(rate::count(h, nullptr, {}, m + 2, 0.9).server_rate == doctest::Approx(2));
        CHECK(h.server_minute == m + 3);
        CHECK_FALSE(rate::clock_went_back(h, m + 1));
        CHECK(rate::clock_went_back(h, m));
        h.server_current = UINT32_MAX;
        rate::count(h, nullptr, {}, m + 3, 0);
        CHECK(h.server_current == UINT32_MAX); // saturates
    }

    TEST_CASE("count, without a file: a client's slot in its probe window")
    {
        const std::int64_t m = 29916667;
        const rate::Seed seed{1, 2};
        rate::Key alice = rate::key_of("192.0.2.1", seed), bob = rate::key_of("192.0.2.2", seed);
        rate::Header h{};
        rate::Window w{};
        rate::Count c = rate::count(h, &w, alice, m, 0);
        CHECK(c.slot == 0); // the first free slot
        CHECK(c.client_rate == doctest::Approx(1));
        c = rate::count(h, &w, bob, m, 0);
        CHECK(c.slot == 1);
        c = rate::count(h, &w, alice, m, 0);
        CHECK(c.slot == 0);
        CHECK(c.client_rate == doctest::Approx(2));
        CHECK(c.server_rate == doctest::Approx(3));
        CHECK(w[0].current == 2);
        CHECK(std::memcmp(w[0].key, alice.data(), alice.size()) == 0);

        // A full window of live clients: the oldest minute, then the fewest
        // connections, is taken over.
        rate::Window full{};
        for (std::size_t i = 0; i < k_rate_probe; ++i) {
            rate::Key other = rate::key_of("198.51.100." + std::to_string(i), seed);
            std::memcpy(full[i].key, other.data(), other.size());
            full[i].minute = i == 5 || i == 6 ? m - 1 : m;
            full[i].current = i == 6 ? 1 : 3;
        }
        c = rate::count(h, &full, alice, m, 0.5);
        CHECK(c.slot == 6);
        CHECK(c.client_rate == doctest::Approx(1)); // a new client: nothing of the old one
        CHECK(full[6].previous == 0);

        // A slot with a stale minute is free, and its old counts are gone.
        rate::Window stale{};
        std::memcpy(stale[3].key, alice.data(), alice.size());
        stale[3].minute = m - 2;
        stale[3].current = 50;
        for (std::size_t i = 0; i < 3; ++i) {
            stale[i].minute = m;
            stale[i].key[0] = static_cast<std::uint8_t>(i + 1);
        }
        c = rate::count(h, &stale, alice, m, 0);
        CHECK(c.slot == 3);
        CHECK(c.client_rate == doctest::Approx(1));
    }

    TEST_CASE("client keys: IPv4 by address, IPv6 by /64, others by a keyed hash under ff00::/16")
    {
        const rate::Seed seed{1, 2};
        rate::Key v4 = rate::key_of("192.0.2.7", seed);
        CHECK(v4 == rate::Key{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 192, 0, 2, 7});
        CHECK(rate::key_of("::ffff:192.0.2.7", seed) == v4);
        CHECK(rate::key_of("2001:db8:1:2:aaaa::1", seed) == rate::key_of("2001:db8:1:2:bbbb::2", seed));
        CHECK(rate::key_of("2001:db8:1:2::1", seed) != rate::key_of("2001:db8:1:3::1", seed));
        rate::Key local = rate::key_of("local", seed);
        CHECK(local[0] == 0xff);
        CHECK(local[1] == 0x00);
        CHECK(rate::key_of("local", seed) == local);
        CHECK(rate::key_of("local", rate::Seed{1, 3}) != local);
        CHECK(rate::key_of("locam", seed) != local);
        CHECK(rate::home_slot(v4, seed) < k_rate_slot_count);
        CHECK(rate::minute_of(k_t0 + std::chrono::seconds(90)).minute == rate::minute_of(k_t0).minute + 1);
        CHECK(rate::minute_of(k_t0 + std::chrono::seconds(90)).elapsed == doctest::Approx(0.5));
    }

    TEST_CASE("with both limits off the spool is not touched")
    {
        TempDir dir;
        auto r = check_connection_rate(dir.path(), "192.0.2.7", RateLimits{}, k_t0);
        REQUIRE(r.ok());
        CHECK(r.value().verdict == RateVerdict::allowed);
        CHECK(count_entries(dir.path()) == 0);
    }

    TEST_CASE("state/ or state/connections planted as a link: refused, nothing written behind it")
    {
        for (bool dir_link : {true, false}) {
            CAPTURE(dir_link);
            TempDir spool;
            TempDir outside;
            if (dir_link) {
                REQUIRE(::symlink(outside.path().c_str(), (spool.path() + "/state").c_str()) == 0);
            } else {
                REQUIRE(::mkdir((spool.path() + "/state").c_str(), 0700) == 0);
                REQUIRE(::symlink((outside.path() + "/target").c_str(), (spool.path() + "/state/connections").c_str()) ==
                        0);
            }
            auto r = check_connection_rate(spool.path(), "192.0.2.7", RateLimits{10, 5}, k_t0);
            CHECK_FALSE(r.ok());
            CHECK(count_entries(outside.path()) == 0);
        }
    }

    TEST_CASE("a client is refused at N+1 while another client is still allowed")
    {
        TempDir dir;
        RateLimits limits{0, 5};
        TimePoint t = k_t0 + std::chrono::seconds(10);
        for (int i = 1; i <= 5; ++i) {
            RateCheck c = check(dir.path(), "192.0.2.7", limits, t);
            CHECK(c.verdict == RateVerdict::allowed);
            CHECK(c.client_rate == doctest::Approx(i));
        }
        RateCheck over = check(dir.path(), "192.0.2.7", limits, t);
        CHECK(over.verdict == RateVerdict::client_limit);
        CHECK(over.client_rate == doctest::Approx(6));
        CHECK(over.server_rate == doctest::Approx(6));
        CHECK(check(dir.path(), "192.0.2.8", limits, t).verdict == RateVerdict::allowed);
        // Refused connections count: the client stays refused.
        CHECK(check(dir.path(), "192.0.2.7", limits, t).client_rate == doctest::Approx(7));

        CHECK(state_size(dir.path()) == k_rate_file_size);
        struct stat st {};
        REQUIRE(::stat(rate_state_path(dir.path()).c_str(), &st) == 0);
        CHECK((st.st_mode & 0077) == 0);
        REQUIRE(::stat((dir.path() + "/state").c_str(), &st) == 0);
        CHECK((st.st_mode & 0077) == 0);
        CHECK(std::string(to_string(over.verdict)) == "client-limit");
    }

    TEST_CASE("the server limit counts every client")
    {
        TempDir dir;
        RateLimits limits{10, 0};
        for (int i = 1; i <= 10; ++i) {
            RateCheck c = check(dir.path(), "192.0.2." + std::to_string(i), limits, k_t0);
            CHECK(c.verdict == RateVerdict::allowed);
            CHECK(c.client_rate == 0);
        }
        RateCheck over = check(dir.path(), "198.51.100.1", limits, k_t0);
        CHECK(over.verdict == RateVerdict::server_limit);
        CHECK(over.server_rate == doctest::Approx(11));
        CHECK(std::string(to_string(over.verdict)) == "server-limit");
    }

    TEST_CASE("the client limit wins when both are over")
    {
        TempDir dir;
        RateLimits limits{2, 2};
        check(dir.path(), "192.0.2.7", limits, k_t0);
        check(dir.path(), "192.0.2.7", limits, k_t0);
        CHECK(check(dir.path(), "192.0.2.7", limits, k_t0).verdict == RateVerdict::client_limit);
        CHECK(check(dir.path(), "192.0.2.8", limits, k_t0).verdict == RateVerdict::server_limit);
    }

    TEST_CASE("the window slides")
    {
        TempDir dir;
        RateLimits limits{100, 5};
        for (int i = 0; i < 6; ++i) {
            check(dir.path(), "192.0.2.7", limits, k_t0 + std::chrono::seconds(5));
        }
        SUBCASE("at the start of the next minute the previous one still counts in full")
        {
            RateCheck c = check(dir.path(), "192.0.2.7", limits, k_t0 + std::chrono::minutes(1));
            CHECK(c.verdict == RateVerdict::client_limit);
            CHECK(c.client_rate == doctest::Approx(7));
        }
        SUBCASE("halfway through the next minute, half of the previous one")
        {
            RateCheck c = check(dir.path(), "192.0.2.7", limits, k_t0 + std::chrono::seconds(90));
            CHECK(c.verdict == RateVerdict::allowed);
            CHECK(c.client_rate == doctest::Approx(6 * 0.5 + 1));
            CHECK(c.server_rate == doctest::Approx(6 * 0.5 + 1));
            c = check(dir.path(), "192.0.2.7", limits, k_t0 + std::chrono::seconds(90));
            CHECK(c.client_rate == doctest::Approx(5));
            c = check(dir.path(), "192.0.2.7", limits, k_t0 + std::chrono::seconds(90));
            CHECK(c.verdict == RateVerdict::client_limit);
        }
        SUBCASE("two minutes later the client is allowed again")
        {
            RateCheck c = check(dir.path(), "192.0.2.7", limits, k_t0 + std::chrono::minutes(2));
            CHECK(c.verdict == RateVerdict::allowed);
            CHECK(c.client_rate == doctest::Approx(1));
            CHECK(c.server_rate == doctest::Approx(1));
        }
    }

    TEST_CASE("IPv6 clients count per /64, IPv4 clients per address")
    {
        TempDir dir;
        RateLimits limits{0, 3};
        CHECK(check(dir.path(), "2001:db8:1:2::1", limits, k_t0).verdict == RateVerdict::allowed);
        CHECK(check(dir.path(), "2001:db8:1:2:ffff::9", limits, k_t0).verdict == RateVerdict::allowed);
        CHECK(check(dir.path(), "2001:db8:1:2:abcd:1:2:3", limits, k_t0).verdict == RateVerdict::allowed);
        CHECK(check(dir.path(), "2001:db8:1:2::77", limits, k_t0).verdict == RateVerdict::client_limit);
        CHECK(check(dir.path(), "2001:db8:1:3::1", limits, k_t0).verdict == RateVerdict::allowed);

        for (int i = 0; i < 3; ++i) {
            CHECK(check(dir.path(), "192.0.2.7", limits, k_t0).verdict == RateVerdict::allowed);
        }
        CHECK(check(dir.path(), "::ffff:192.0.2.7", limits, k_t0).verdict == RateVerdict::client_limit);
        CHECK(check(dir.path(), "192.0.2.8", limits, k_t0).verdict == RateVerdict::allowed);

        for (int i = 0; i < 3; ++i) {
            CHECK(check(dir.path(), "local", limits, k_t0).verdict == RateVerdict::allowed);
        }
        CHECK(check(dir.path(), "local", limits, k_t0).verdict == RateVerdict::client_limit);
        CHECK(check(dir.path(), "fe80::1%eth0", limits, k_t0).verdict == RateVerdict::allowed);
    }

    TEST_CASE("100000 distinct clients keep the file at its size")
    {
        TempDir dir;
        RateLimits limits{0, 2};
        for (unsigned i = 0; i < 100000; ++i) {
            std::string v4 = std::to_string(10 + (i >> 16)) + "." + std::to_string((i >> 8) & 0xff) + "." +
                             std::to_string(i & 0xff) + ".1";
            char v6[40];
            std::snprintf(v6, sizeof v6, "2001:db8:%x:%x::1", i >> 16, i & 0xffff);
            RateCheck c =
                check(dir.path(), i % 2 == 0 ? v4 : std::string(v6), limits, k_t0 + std::chrono::seconds(i % 60));
            if (c.verdict != RateVerdict::allowed || c.client_rate != doctest::Approx(1)) {
                FAIL("client " << i << " got rate " << c.client_rate);
            }
        }
        CHECK(state_size(dir.path()) == k_rate_file_size);
        // A client just seen is still counted (its slot is the newest).
        CHECK(check(dir.path(), "2001:db8:1:869f::5", limits, k_t0 + std::chrono::seconds(59)).client_rate ==
              doctest::Approx(2));
    }

    TEST_CASE("a damaged file is rebuilt, never trusted")
    {
        TempDir dir;
        RateLimits limits{0, 1};
        const std::string path = rate_state_path(dir.path());
        check(dir.path(), "192.0.2.7", limits, k_t0);
        CHECK(check(dir.path(), "192.0.2.7", limits, k_t0).verdict == RateVerdict::client_limit);
        const std::string good = read_file(path);
        REQUIRE(good.size() == k_rate_file_size);
        REQUIRE(good.substr(0, 8) == "smtprate");

        std::string damaged;
        SUBCASE("empty") {}
        SUBCASE("truncated") { damaged = good.substr(0, 100); }
        SUBCASE("truncated inside the header") { damaged = good.substr(0, 20); }
        SUBCASE("one octet short") { damaged = good.substr(0, good.size() - 1); }
        SUBCASE("too long") { damaged = good + good; }
        SUBCASE("garbage of the right size") { damaged = random_bytes(k_rate_file_size, 1); }
        SUBCASE("another version")
        {
            damaged = good;
            damaged[8] = 2;
        }
        write_file(path, damaged);
        RateCheck c = check(dir.path(), "192.0.2.7", limits, k_t0);
        CHECK(c.verdict == RateVerdict::allowed);
        CHECK(c.client_rate == doctest::Approx(1));
        CHECK(state_size(dir.path()) == k_rate_file_size);
        CHECK(read_file(path).substr(0, 8) == "smtprate");
        CHECK(check(dir.path(), "192.0.2.7", limits, k_t0).verdict == RateVerdict::client_limit);
    }

    TEST_CASE("garbage slots behind a valid header are bounded values")
    {
        TempDir dir;
        RateLimits limits{1000, 1000};
        const std::string path = rate_state_path(dir.path());
        check(dir.path(), "192.0.2.7", limits, k_t0);
        std::string bytes = read_file(path);
        for (unsigned seed = 1; seed <= 3; ++seed) {
            std::string garbage = random_bytes(bytes.size() - k_rate_header_size, seed);
            if (seed == 3) {
                garbage.assign(garbage.size(), '\xff');
            }
            write_file(path, bytes.substr(0, k_rate_header_size) + garbage);
            for (unsigned i = 0; i < 2000; ++i) {
                RateCheck c = check(dir.path(), "198.51.100." + std::to_string(i % 250), limits, k_t0);
                CHECK(c.client_rate >= 1);
                CHECK(c.client_rate <= 9);
            }
            CHECK(state_size(dir.path()) == k_rate_file_size);
        }
    }

    TEST_CASE("a state path that cannot be used is an error, not a crash")
    {
        TempDir dir;
        RateLimits limits{10, 0};
        SUBCASE("no spool") { CHECK_FALSE(check_connection_rate(dir.path() + "/missing", "local", limits, k_t0).ok()); }
        SUBCASE("a directory in the way")
        {
            std::filesystem::create_directories(rate_state_path(dir.path()));
            auto r = check_connection_rate(dir.path(), "local", limits, k_t0);
            REQUIRE_FALSE(r.ok());
            CHECK(r.error().message.find("state/connections") != std::string::npos);
        }
        SUBCASE("a symbolic link in the way")
        {
            std::filesystem::create_directories(dir.path() + "/state");
            std::filesystem::create_symlink(dir.path() + "/elsewhere", rate_state_path(dir.path()));
            CHECK_FALSE(check_connection_rate(dir.path(), "local", limits, k_t0).ok());
            CHECK_FALSE(std::filesystem::exists(dir.path() + "/elsewhere"));
        }
    }

    TEST_CASE("the clock going back")
    {
        TempDir dir;
        RateLimits limits{100, 100};
        for (int i = 0; i < 3; ++i) {
            check(dir.path(), "192.0.2.7", limits, k_t0 + std::chrono::seconds(30));
        }
        SUBCASE("a little: counted in the latest minute")
        {
            RateCheck c = check(dir.path(), "192.0.2.7", limits, k_t0 - std::chrono::seconds(10));
            CHECK(c.client_rate == doctest::Approx(4));
            CHECK(c.server_rate == doctest::Approx(4));
            c = check(dir.path(), "192.0.2.7", limits, k_t0 + std::chrono::seconds(40));
            CHECK(c.client_rate == doctest::Approx(5));
        }
        SUBCASE("an hour: the history is forgotten")
        {
            RateCheck c = check(dir.path(), "192.0.2.7", limits, k_t0 - std::chrono::hours(1));
            CHECK(c.client_rate == doctest::Approx(1));
            CHECK(c.server_rate == doctest::Approx(1));
            CHECK(state_size(dir.path()) == k_rate_file_size);
        }
    }

    TEST_CASE("20 processes share one count under the lock")
    {
        TempDir dir;
        TimePoint t = k_t0 + std::chrono::seconds(17);
        SUBCASE("server limit, the file created by the race")
        {
            CHECK(allowed_across_processes(dir.path(), 20, 50, RateLimits{500, 0}, t, "192.0.2.7") == 500);
            // At one fixed time the estimate is the plain count.
            CHECK(check(dir.path(), "local", RateLimits{500, 0}, t).server_rate == doctest::Approx(1001));
        }
        SUBCASE("client limit")
        {
            CHECK(allowed_across_processes(dir.path(), 20, 50, RateLimits{0, 300}, t, "2001:db8::1") == 300);
            RateCheck c = check(dir.path(), "2001:db8::2", RateLimits{0, 300}, t);
            CHECK(c.client_rate == doctest::Approx(1001));
            CHECK(c.server_rate == doctest::Approx(1001));
        }
    }
}
