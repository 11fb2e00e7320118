// rate_limit_cost: what one check_connection_rate() costs a connection, on
// the directories given (default: build/, on the real disk, and /dev/shm, a
// tmpfs). Built by hand against the library the Makefile builds:
//
//   make -j1 build/unit-tests
//   g++ -std=c++20 -O2 -Wall -Wextra -Isrc bench/rate_limit_cost.cpp build/libsmtpspool.a -o build/rate_limit_cost
//   build/rate_limit_cost [-n CHECKS] [DIR...]
//
// In each DIR it makes a temporary spool, warms it with 200 checks, then times
// CHECKS (default 5000, at least 1000) checks with both limits on (so the
// header and a client slot are read and written), the clients cycling through
// 10000 IPv4 addresses. It prints the median, 90th and 99th percentile in µs.
// For comparison it also times the other design, reading and writing the whole
// file under the same lock (open, flock, pread and pwrite of 128 KiB, close).
// Neither fsyncs (the state is advisory), so on a disk file system this is
// the page cache plus that file system's own bookkeeping, not the device.
#include "policy/rate_limit.hpp"

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <filesystem>
#include <string>
#include <sys/file.h>
#include <sys/vfs.h>
#include <unistd.h>
#include <vector>

using namespace smtpspool;

namespace {

using Micros = std::chrono::duration<double, std::micro>;

struct Summary {
    double median = 0;
    double p90 = 0;
    double p99 = 0;
};

Summary summarize(std::vector<double> us)
{
    std::sort(us.begin(), us.end());
    auto at = [&](double q) { return us[static_cast<std::size_t>(q * static_cast<double>(us.size() - 1))]; };
    return Summary{at(0.5), at(0.9), at(0.99)};
}

std::string fs_name(const std::string& dir)
{
    struct statfs s {};
    if (::statfs(dir.c_str(), &s) != 0) {
        return "?";
    }
    switch (static_cast<unsigned long>(s.f_type)) {
    case 0x01021994UL:
        return "tmpfs";
    case 0xEF53UL:
        return "ext2/3/4";
    case 0x58465342UL:
        return "xfs";
    case 0x9123683EUL:
        return "btrfs";
    case 0x794c7630UL:
        return "overlayfs";
    default: {
        char hex[32];
        std::snprintf(hex, sizeof hex, "0x%lx", static_cast<unsigned long>(s.f_type));
        return hex;
    }
    }
}

bool bench_dir(const std::string& dir, int checks)
{
    std::string tmpl = dir + "/rate-bench-XXXXXX";
    if (::mkdtemp(tmpl.data()) == nullptr) {
        std::fprintf(stderr, "rate_limit_cost: cannot create a spool in %s: %s\n", dir.c_str(), std::strerror(errno));
        return false;
    }
    const std::string spool = tmpl;
    std::vector<std::string> clients;
    for (int i = 0; i < 10000; ++i) {
        clients.push_back("10." + std::to_string(i >> 8) + "." + std::to_string(i & 0xff) + ".1");
    }
    const RateLimits limits{1000000, 1000000};
    bool ok = true;
    std::vector<double> us;
    for (int i = -200; i < checks && ok; ++i) {
        const std::string& client = clients[static_cast<std::size_t>(i + 200) % clients.size()];
        auto start = std::chrono::steady_clock::now();
        auto r = check_connection_rate(spool, client, limits, std::chrono::system_clock::now());
        auto end = std::chrono::steady_clock::now();
        if (!r) {
            std::fprintf(stderr, "rate_limit_cost: %s\n", r.error().message.c_str());
            ok = false;
        } else if (i >= 0) {
            us.push_back(Micros(end - start).count());
        }
    }

    // The alternative: the whole file read and written under the lock.
    std::vector<double> whole_us;
    std::vector<char> buffer(k_rate_file_size);
    const std::string path = rate_state_path(spool);
    for (int i = -200; i < checks && ok; ++i) {
        auto start = std::chrono::steady_clock::now();
        int fd = ::open(path.c_str(), O_RDWR | O_CLOEXEC);
        ok = fd >= 0 && ::flock(fd, LOCK_EX) == 0 &&
             ::pread(fd, buffer.data(), buffer.size(), 0) == static_cast<ssize_t>(buffer.size()) &&
             ::pwrite(fd, buffer.data(), buffer.size(), 0) == static_cast<ssize_t>(buffer.size());
        if (fd >= 0) {
            ::close(fd);
        }
        auto end = std::chrono::steady_clock::now();
        if (i >= 0) {
            whole_us.push_back(Micros(end - start).count());
        }
    }
    std::filesystem::remove_all(spool);
    if (!ok) {
        return false;
    }
    Summary s = summarize(us);
    Summary w = summarize(whole_us);
    std::printf("%s (%s), %d checks:\n", dir.c_str(), fs_name(dir).c_str(), checks);
    std::printf("  check_connection_rate      median %7.2f us  p90 %7.2f us  p99 %7.2f us\n", s.median, s.p90, s.p99);
    std::printf("  whole file read+write      median %7.2f us  p90 %7.2f us  p99 %7.2f us\n", w.median, w.p90, w.p99);
    return true;
}

} // namespace

int main(int argc, char** argv)
{
    int checks = 5000;
    std::vector<std::string> dirs;
    for (int i = 1; i < argc; ++i) {
        std::string arg = argv[i];
        if (arg == "-n" && i + 1 < argc) {
            checks = std::atoi(argv[++i]);
        } else {
            dirs.push_back(arg);
        }
    }
    if (checks < 1000) {
        std::fprintf(stderr, "usage: rate_limit_cost [-n CHECKS (>= 1000)] [DIR...]\n");
        return 2;
    }
    if (dirs.empty()) {
        dirs = {"build", "/dev/shm"};
    }
    bool ok = true;
    for (const std::string& dir : dirs) {
        ok = bench_dir(dir, checks) && ok;
    }
    return ok ? 0 : 1;
}
