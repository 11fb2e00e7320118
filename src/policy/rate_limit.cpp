// rate_limit: the state file under flock(2), read and written a header and a
// probe window of slots at a time with pread/pwrite (see rate_limit.hpp).
#include "policy/rate_limit.hpp"

#include "base/cidr.hpp"

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <cstring>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <type_traits>
#include <unistd.h>

namespace smtpspool {
namespace {

constexpr char k_magic[8] = {'s', 'm', 't', 'p', 'r', 'a', 't', 'e'};
constexpr std::uint32_t k_version = 1;

struct FileHeader {
    char magic[8];
    std::uint32_t version;
    std::uint32_t slot_count;
    std::uint32_t slot_size;
    std::uint32_t header_size;
    std::uint64_t seed[2];
    std::int64_t server_minute;
    std::uint32_t server_current;
    std::uint32_t server_previous;
    std::uint8_t zero[8];
};

struct FileSlot {
    std::uint8_t key[16];
    std::int64_t minute;
    std::uint32_t current;
    std::uint32_t previous;
};

static_assert(std::is_trivially_copyable_v<FileHeader> && sizeof(FileHeader) == k_rate_header_size);
static_assert(offsetof(FileHeader, seed) == 24 && offsetof(FileHeader, server_minute) == 40);
static_assert(offsetof(FileHeader, server_current) == 48 && offsetof(FileHeader, zero) == 56);
static_assert(std::is_trivially_copyable_v<FileSlot> && sizeof(FileSlot) == k_rate_slot_size);
static_assert(offsetof(FileSlot, minute) == 16 && offsetof(FileSlot, current) == 24);
static_assert((k_rate_slot_count & (k_rate_slot_count - 1)) == 0 && k_rate_probe <= k_rate_slot_count);

using SlotKey = std::array<std::uint8_t, 16>;
using Seed = std::array<std::uint64_t, 2>;

Error sys_error(const std::string& what)
{
    int e = errno;
    return Error{e, what + ": " + std::strerror(e)};
}

class UniqueFd {
public:
    explicit UniqueFd(int fd) : m_fd(fd) {}
    ~UniqueFd() { ::close(m_fd); } // also releases the flock
    UniqueFd(const UniqueFd&) = delete;
    UniqueFd& operator=(const UniqueFd&) = delete;
    int get() const { return m_fd; }

private:
    int m_fd;
};

// Whole-buffer pread/pwrite, EINTR retried; a short read is EIO (the file
// was cut under us by something that does not take the lock).
bool read_at(int fd, void* buffer, std::size_t size, off_t offset)
{
    auto* p = static_cast<char*>(buffer);
    while (size > 0) {
        ssize_t n = ::pread(fd, p, size, offset);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            if (n == 0) {
                errno = EIO;
            }
            return false;
        }
        p += n;
        size -= static_cast<std::size_t>(n);
        offset += n;
    }
    return true;
}

bool write_at(int fd, const void* buffer, std::size_t size, off_t offset)
{
    const auto* p = static_cast<const char*>(buffer);
    while (size > 0) {
        ssize_t n = ::pwrite(fd, p, size, offset);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            if (n == 0) {
                errno = EIO;
            }
            return false;
        }
        p += n;
        size -= static_cast<std::size_t>(n);
        offset += n;
    }
    return true;
}

off_t slot_offset(std::size_t index) { return static_cast<off_t>(k_rate_header_size + index * k_rate_slot_size); }

std::uint64_t rotl(std::uint64_t x, int bits) { return (x << bits) | (x >> (64 - bits)); }

std::uint64_t load_le64(const unsigned char* p)
{
    std::uint64_t v = 0;
    for (int i = 7; i >= 0; --i) {
        v = (v << 8) | p[i];
    }
    return v;
}

Seed random_seed()
{
    Seed seed{};
    if (::getrandom(seed.data(), sizeof seed, 0) == static_cast<ssize_t>(sizeof seed)) {
        return seed;
    }
    // No entropy source: still a different seed per file, only guessable.
    auto t = static_cast<std::uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count());
    auto s = static_cast<std::uint64_t>(std::chrono::system_clock::now().time_since_epoch().count());
    seed[0] = t ^ rotl(static_cast<std::uint64_t>(::getpid()), 32);
    seed[1] = s ^ reinterpret_cast<std::uintptr_t>(&seed);
    return seed;
}

FileHeader fresh_header()
{
    FileHeader h{};
    std::memcpy(h.magic, k_magic, sizeof h.magic);
    h.version = k_version;
    h.slot_count = k_rate_slot_count;
    h.slot_size = k_rate_slot_size;
    h.header_size = k_rate_header_size;
    Seed seed = random_seed();
    h.seed[0] = seed[0];
    h.seed[1] = seed[1];
    return h;
}

bool header_valid(const FileHeader& h)
{
    return std::memcmp(h.magic, k_magic, sizeof h.magic) == 0 && h.version == k_version &&
           h.slot_count == k_rate_slot_count && h.slot_size == k_rate_slot_size && h.header_size == k_rate_header_size;
}

// Empties the file to its fixed size (zero slots are free) and writes a new
// header with a new seed.
Result<FileHeader> rebuild(int fd, const std::string& path)
{
    if (::ftruncate(fd, 0) != 0 || ::ftruncate(fd, static_cast<off_t>(k_rate_file_size)) != 0) {
        return sys_error("cannot rebuild " + path);
    }
    FileHeader h = fresh_header();
    if (!write_at(fd, &h, sizeof h, 0)) {
        return sys_error("cannot write " + path);
    }
    return h;
}

// IPv4 by address, IPv6 by /64, anything else by a keyed hash under ff00::/16
// (multicast, never a peer address, so it cannot meet a real client).
SlotKey slot_key(std::string_view client, const Seed& seed)
{
    SlotKey key{};
    if (auto ip = parse_ip(client)) {
        key = *ip;
        bool mapped_v4 = std::all_of(key.begin(), key.begin() + 10, [](std::uint8_t b) { return b == 0; }) &&
                         key[10] == 0xff && key[11] == 0xff;
        if (!mapped_v4) {
            std::fill(key.begin() + 8, key.end(), std::uint8_t{0});
        }
        return key;
    }
    std::uint64_t a = siphash24(seed, client);
    std::uint64_t b = siphash24({seed[0] ^ 0x9e3779b97f4a7c15ULL, seed[1]}, client);
    std::memcpy(key.data(), &a, sizeof a);
    std::memcpy(key.data() + 8, &b, sizeof b);
    key[0] = 0xff;
    key[1] = 0x00;
    return key;
}

std::size_t home_slot(const SlotKey& key, const Seed& seed)
{
    std::string_view bytes(reinterpret_cast<const char*>(key.data()), key.size());
    return static_cast<std::size_t>(siphash24(seed, bytes) & (k_rate_slot_count - 1));
}

// Brings counters kept for `minute` forward to the minute `now`; counters
// from the future (garbage) or from long ago start over.
void roll(std::int64_t& minute, std::uint32_t& current, std::uint32_t& previous, std::int64_t now)
{
    if (minute == now) {
        return;
    }
    previous = minute == now - 1 ? current : 0;
    current = 0;
    minute = now;
}

void increment(std::uint32_t& counter)
{
    if (counter != UINT32_MAX) {
        ++counter;
    }
}

double estimate(std::uint32_t previous, std::uint32_t current, double elapsed)
{
    return static_cast<double>(previous) * (1.0 - elapsed) + static_cast<double>(current);
}

bool slot_live(const FileSlot& s, std::int64_t now) { return s.minute == now || s.minute == now - 1; }

// The slot of the probe window this key uses: its own live slot, else the
// first free one, else the live one with the oldest minute (then the fewest
// connections) is evicted.
std::size_t choose_slot(const std::array<FileSlot, k_rate_probe>& window, const SlotKey& key, std::int64_t now)
{
    std::size_t free_slot = k_rate_probe;
    std::size_t victim = 0;
    for (std::size_t i = 0; i < k_rate_probe; ++i) {
        const FileSlot& s = window[i];
        bool live = slot_live(s, now);
        if (live && std::memcmp(s.key, key.data(), key.size()) == 0) {
            return i;
        }
        if (!live) {
            free_slot = std::min(free_slot, i);
            continue;
        }
        const FileSlot& v = window[victim];
        auto load = [](const FileSlot& x) { return std::uint64_t{x.current} + x.previous; };
        if (s.minute < v.minute || (s.minute == v.minute && load(s) < load(v))) {
            victim = i;
        }
    }
    return free_slot < k_rate_probe ? free_slot : victim;
}

Result<int> open_state(const std::string& spool, const std::string& path)
{
    const int flags = O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC;
    auto open_file = [&] {
        int fd;
        do {
            fd = ::open(path.c_str(), flags, 0600);
        } while (fd < 0 && errno == EINTR);
        return fd;
    };
    int fd = open_file();
    if (fd < 0 && errno == ENOENT) {
        std::string dir = spool + "/state";
        if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) {
            return sys_error("cannot create " + dir);
        }
        fd = open_file();
    }
    if (fd < 0) {
        return sys_error("cannot open " + path);
    }
    return fd;
}

} // namespace

std::string rate_state_path(const std::string& spool) { return spool + "/state/connections"; }

const char* to_string(RateVerdict verdict)
{
    switch (verdict) {
    case RateVerdict::allowed:
        return "allowed";
    case RateVerdict::server_limit:
        return "server-limit";
    case RateVerdict::client_limit:
        return "client-limit";
    }
    return "unknown";
}

std::uint64_t siphash24(const std::array<std::uint64_t, 2>& key, std::string_view data)
{
    std::uint64_t v0 = key[0] ^ 0x736f6d6570736575ULL;
    std::uint64_t v1 = key[1] ^ 0x646f72616e646f6dULL;
    std::uint64_t v2 = key[0] ^ 0x6c7967656e657261ULL;
    std::uint64_t v3 = key[1] ^ 0x7465646279746573ULL;
    auto round = [&] {
        v0 += v1;
        v1 = rotl(v1, 13) ^ v0;
        v0 = rotl(v0, 32);
        v2 += v3;
        v3 = rotl(v3, 16) ^ v2;
        v0 += v3;
        v3 = rotl(v3, 21) ^ v0;
        v2 += v1;
        v1 = rotl(v1, 17) ^ v2;
        v2 = rotl(v2, 32);
    };
    auto compress = [&](std::uint64_t m) {
        v3 ^= m;
        round();
        round();
        v0 ^= m;
    };
    const auto* p = reinterpret_cast<const unsigned char*>(data.data());
    std::size_t whole = data.size() / 8 * 8;
    for (std::size_t i = 0; i < whole; i += 8) {
        compress(load_le64(p + i));
    }
    std::uint64_t last = static_cast<std::uint64_t>(data.size() & 0xff) << 56;
    for (std::size_t i = whole; i < data.size(); ++i) {
        last |= static_cast<std::uint64_t>(p[i]) << (8 * (i - whole));
    }
    compress(last);
    v2 ^= 0xff;
    for (int i = 0; i < 4; ++i) {
        round();
    }
    return v0 ^ v1 ^ v2 ^ v3;
}

Result<RateCheck> check_connection_rate(const std::string& spool, std::string_view client_key, const RateLimits& limits,
                                        TimePoint now)
{
    RateCheck check;
    if (limits.per_minute == 0 && limits.per_client_per_minute == 0) {
        return check;
    }
    const std::string path = rate_state_path(spool);
    auto opened = open_state(spool, path);
    if (!opened) {
        return opened.error();
    }
    UniqueFd fd(opened.value());
    while (::flock(fd.get(), LOCK_EX) != 0) {
        if (errno != EINTR) {
            return sys_error("cannot lock " + path);
        }
    }
    // Everything below under the lock: the size seen here is the size a
    // concurrent rebuild left, not a half-created file.
    struct stat st {};
    if (::fstat(fd.get(), &st) != 0) {
        return sys_error("cannot stat " + path);
    }
    if (!S_ISREG(st.st_mode)) {
        return Error{EINVAL, path + ": not a regular file"};
    }
    FileHeader header{};
    bool valid = static_cast<std::size_t>(st.st_size) == k_rate_file_size;
    if (valid && !read_at(fd.get(), &header, sizeof header, 0)) {
        return sys_error("cannot read " + path);
    }
    if (!valid || !header_valid(header)) {
        auto rebuilt = rebuild(fd.get(), path);
        if (!rebuilt) {
            return rebuilt.error();
        }
        header = rebuilt.value();
    }

    // The minute we count in, and how much of it has elapsed.
    auto now_minutes = std::chrono::floor<std::chrono::minutes>(now);
    auto minute = static_cast<std::int64_t>(now_minutes.time_since_epoch().count());
    double elapsed = std::chrono::duration<double>(now - now_minutes).count() / 60.0;
    if (header.server_minute > minute) {
        if (header.server_minute - minute > k_rate_max_backstep_minutes) {
            auto rebuilt = rebuild(fd.get(), path); // the clock went far back: forget
            if (!rebuilt) {
                return rebuilt.error();
            }
            header = rebuilt.value();
        } else {
            minute = header.server_minute; // a small step back: the same minute
            elapsed = 0;
        }
    }

    roll(header.server_minute, header.server_current, header.server_previous, minute);
    increment(header.server_current);
    check.server_rate = estimate(header.server_previous, header.server_current, elapsed);

    if (limits.per_client_per_minute > 0) {
        Seed seed{header.seed[0], header.seed[1]};
        SlotKey key = slot_key(client_key, seed);
        std::size_t home = home_slot(key, seed);
        std::array<FileSlot, k_rate_probe> window{};
        std::size_t first = std::min(k_rate_probe, k_rate_slot_count - home); // before the wrap
        if (!read_at(fd.get(), window.data(), first * sizeof(FileSlot), slot_offset(home)) ||
            (first < k_rate_probe &&
             !read_at(fd.get(), window.data() + first, (k_rate_probe - first) * sizeof(FileSlot), slot_offset(0)))) {
            return sys_error("cannot read " + path);
        }
        std::size_t i = choose_slot(window, key, minute);
        FileSlot& slot = window[i];
        if (!slot_live(slot, minute) || std::memcmp(slot.key, key.data(), key.size()) != 0) {
            slot = FileSlot{}; // free or evicted: a new client
            std::memcpy(slot.key, key.data(), key.size());
            slot.minute = minute;
        }
        roll(slot.minute, slot.current, slot.previous, minute);
        increment(slot.current);
        check.client_rate = estimate(slot.previous, slot.current, elapsed);
        if (!write_at(fd.get(), &slot, sizeof slot, slot_offset((home + i) % k_rate_slot_count))) {
            return sys_error("cannot write " + path);
        }
    }
    if (!write_at(fd.get(), &header, sizeof header, 0)) {
        return sys_error("cannot write " + path);
    }

    if (limits.per_client_per_minute > 0 && check.client_rate > limits.per_client_per_minute) {
        check.verdict = RateVerdict::client_limit;
    } else if (limits.per_minute > 0 && check.server_rate > limits.per_minute) {
        check.verdict = RateVerdict::server_limit;
    }
    return check;
}

} // namespace smtpspool
