// rate_limit: the state file under flock(2) (RateFile: open, lock, check,
// rebuild, read and write a header and a probe window of slots with
// pread/pwrite) and the counting (rate::count, pure); see rate_limit.hpp.
#include "policy/rate_limit.hpp"

#include "base/cidr.hpp"
#include "base/fd.hpp"
#include "base/fs.hpp"
#include "base/siphash.hpp"

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

using rate::Header;
using rate::Key;
using rate::Seed;
using rate::Slot;
using rate::Window;

constexpr char k_magic[8] = {'s', 'm', 't', 'p', 'r', 'a', 't', 'e'};
constexpr std::uint32_t k_version = 1;

static_assert(std::is_trivially_copyable_v<Header> && sizeof(Header) == k_rate_header_size);
static_assert(offsetof(Header, seed) == 24 && offsetof(Header, server_minute) == 40);
static_assert(offsetof(Header, server_current) == 48 && offsetof(Header, zero) == 56);
static_assert(std::is_trivially_copyable_v<Slot> && sizeof(Slot) == k_rate_slot_size);
static_assert(offsetof(Slot, minute) == 16 && offsetof(Slot, current) == 24);
static_assert((k_rate_slot_count & (k_rate_slot_count - 1)) == 0 && k_rate_probe <= k_rate_slot_count);

// The whole buffer by pread or pwrite, EINTR retried; a short transfer is EIO
// (the file was cut under us by something that does not take the lock).
template <typename Call, typename Octet>
bool transfer_at(Call call, int fd, Octet* p, std::size_t size, off_t offset)
{
    while (size > 0) {
        ssize_t n = call(fd, p, size, offset);
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

bool read_at(int fd, void* buffer, std::size_t size, off_t offset)
{
    return transfer_at(::pread, fd, static_cast<char*>(buffer), size, offset);
}

bool write_at(int fd, const void* buffer, std::size_t size, off_t offset)
{
    return transfer_at(::pwrite, fd, static_cast<const char*>(buffer), size, offset);
}

off_t slot_offset(std::size_t index) { return static_cast<off_t>(k_rate_header_size + index * k_rate_slot_size); }

std::uint64_t rotl(std::uint64_t x, int bits) { return (x << bits) | (x >> (64 - bits)); }

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

Header fresh_header()
{
    Header h{};
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

bool header_valid(const Header& h)
{
    return std::memcmp(h.magic, k_magic, sizeof h.magic) == 0 && h.version == k_version &&
           h.slot_count == k_rate_slot_count && h.slot_size == k_rate_slot_size && h.header_size == k_rate_header_size;
}

// SPOOL/state/connections, opened (state/ and the file created when
// missing), locked, and its header read; a file of another size or a header
// that fails the checks is rebuilt empty, never trusted. The lock goes with
// the descriptor.
class RateFile {
public:
    static Result<RateFile> open(const std::string& spool);

    Header& header() { return m_header; }
    // Empties the file to its fixed size (zero slots are free) and writes a
    // new header with a new seed.
    Result<void> rebuild();
    // The probe window from slot `home` on, wrapping at the end.
    Result<void> read_window(std::size_t home, Window& window);
    Result<void> write_slot(std::size_t index, const Slot& slot);
    Result<void> write_header();

private:
    RateFile(Fd fd, std::string path) : m_fd(std::move(fd)), m_path(std::move(path)) {}

    Fd m_fd;
    std::string m_path;
    Header m_header{};
};

Result<RateFile> RateFile::open(const std::string& spool)
{
    std::string path = rate_state_path(spool);
    // state/ and the file are reached without following a link: a link
    // planted there is an error, not a way to write elsewhere.
    auto state = open_state_directory(spool);
    if (!state) {
        return state.error();
    }
    Fd fd = openat_nofollow(state.value().get(), "connections", O_RDWR | O_CREAT, 0600);
    if (!fd) {
        return sys_error("cannot open " + path);
    }
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
    RateFile file(std::move(fd), std::move(path));
    bool valid = static_cast<std::size_t>(st.st_size) == k_rate_file_size;
    if (valid && !read_at(file.m_fd.get(), &file.m_header, sizeof file.m_header, 0)) {
        return sys_error("cannot read " + file.m_path);
    }
    if (!valid || !header_valid(file.m_header)) {
        if (auto rebuilt = file.rebuild(); !rebuilt) {
            return rebuilt.error();
        }
    }
    return file;
}

Result<void> RateFile::rebuild()
{
    if (::ftruncate(m_fd.get(), 0) != 0 || ::ftruncate(m_fd.get(), static_cast<off_t>(k_rate_file_size)) != 0) {
        return sys_error("cannot rebuild " + m_path);
    }
    m_header = fresh_header();
    return write_header();
}

Result<void> RateFile::read_window(std::size_t home, Window& window)
{
    std::size_t first = std::min(k_rate_probe, k_rate_slot_count - home); // before the wrap
    if (!read_at(m_fd.get(), window.data(), first * sizeof(Slot), slot_offset(home)) ||
        (first < k_rate_probe &&
         !read_at(m_fd.get(), window.data() + first, (k_rate_probe - first) * sizeof(Slot), slot_offset(0)))) {
        return sys_error("cannot read " + m_path);
    }
    return {};
}

Result<void> RateFile::write_slot(std::size_t index, const Slot& slot)
{
    if (!write_at(m_fd.get(), &slot, sizeof slot, slot_offset(index % k_rate_slot_count))) {
        return sys_error("cannot write " + m_path);
    }
    return {};
}

Result<void> RateFile::write_header()
{
    if (!write_at(m_fd.get(), &m_header, sizeof m_header, 0)) {
        return sys_error("cannot write " + m_path);
    }
    return {};
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

bool slot_live(const Slot& s, std::int64_t now) { return s.minute == now || s.minute == now - 1; }

// The slot of the probe window this key uses: its own live slot, else the
// first free one, else the live one with the oldest minute (then the fewest
// connections) is evicted.
std::size_t choose_slot(const Window& window, const Key& key, std::int64_t now)
{
    std::size_t free_slot = k_rate_probe;
    std::size_t victim = 0;
    for (std::size_t i = 0; i < k_rate_probe; ++i) {
        const Slot& s = window[i];
        bool live = slot_live(s, now);
        if (live && std::memcmp(s.key, key.data(), key.size()) == 0) {
            return i;
        }
        if (!live) {
            free_slot = std::min(free_slot, i);
            continue;
        }
        const Slot& v = window[victim];
        auto load = [](const Slot& x) { return std::uint64_t{x.current} + x.previous; };
        if (s.minute < v.minute || (s.minute == v.minute && load(s) < load(v))) {
            victim = i;
        }
    }
    return free_slot < k_rate_probe ? free_slot : victim;
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

namespace rate {

Key key_of(std::string_view client, const Seed& seed)
{
    Key key{};
    if (auto ip = parse_ip(client)) {
        key = *ip;
        bool mapped_v4 = std::all_of(key.begin(), key.begin() + 10, [](std::uint8_t b) { return b == 0; }) &&
                         key[10] == 0xff && key[11] == 0xff;
        if (!mapped_v4) {
            std::fill(key.begin() + 8, key.end(), std::uint8_t{0});
        }
        return key;
    }
    // ff00::/16 is multicast, never a peer address: it cannot meet a real client.
    std::uint64_t a = siphash24(seed, client);
    std::uint64_t b = siphash24({seed[0] ^ 0x9e3779b97f4a7c15ULL, seed[1]}, client);
    std::memcpy(key.data(), &a, sizeof a);
    std::memcpy(key.data() + 8, &b, sizeof b);
    key[0] = 0xff;
    key[1] = 0x00;
    return key;
}

std::size_t home_slot(const Key& key, const Seed& seed)
{
    std::string_view bytes(reinterpret_cast<const char*>(key.data()), key.size());
    return static_cast<std::size_t>(siphash24(seed, bytes) & (k_rate_slot_count - 1));
}

Minute minute_of(TimePoint now)
{
    auto now_minutes = std::chrono::floor<std::chrono::minutes>(now);
    return {static_cast<std::int64_t>(now_minutes.time_since_epoch().count()),
            std::chrono::duration<double>(now - now_minutes).count() / 60.0};
}

bool clock_went_back(const Header& header, std::int64_t minute)
{
    return header.server_minute > minute && header.server_minute - minute > k_rate_max_backstep_minutes;
}

Count count(Header& header, Window* window, const Key& key, std::int64_t minute, double elapsed)
{
    Count c;
    if (header.server_minute > minute) {
        minute = header.server_minute; // a small step back: the same minute
        elapsed = 0;
    }
    roll(header.server_minute, header.server_current, header.server_previous, minute);
    increment(header.server_current);
    c.server_rate = estimate(header.server_previous, header.server_current, elapsed);
    if (window != nullptr) {
        c.slot = choose_slot(*window, key, minute);
        Slot& slot = (*window)[c.slot];
        if (!slot_live(slot, minute) || std::memcmp(slot.key, key.data(), key.size()) != 0) {
            slot = Slot{}; // free or evicted: a new client
            std::memcpy(slot.key, key.data(), key.size());
            slot.minute = minute;
        }
        roll(slot.minute, slot.current, slot.previous, minute);
        increment(slot.current);
        c.client_rate = estimate(slot.previous, slot.current, elapsed);
    }
    return c;
}

} // namespace rate

Result<RateCheck> check_connection_rate(const std::string& spool, std::string_view client_key, const RateLimits& limits,
                                        TimePoint now)
{
    RateCheck check;
    if (limits.per_minute == 0 && limits.per_client_per_minute == 0) {
        return check;
    }
    auto opened = RateFile::open(spool);
    if (!opened) {
        return opened.error();
    }
    RateFile& file = opened.value();
    rate::Minute now_minute = rate::minute_of(now);
    if (rate::clock_went_back(file.header(), now_minute.minute)) {
        if (auto rebuilt = file.rebuild(); !rebuilt) { // forget the history
            return rebuilt.error();
        }
    }
    Header& header = file.header();
    bool per_client = limits.per_client_per_minute > 0;
    Key key{};
    std::size_t home = 0;
    Window window{};
    if (per_client) {
        Seed seed{header.seed[0], header.seed[1]};
        key = rate::key_of(client_key, seed);
        home = rate::home_slot(key, seed);
        if (auto read = file.read_window(home, window); !read) {
            return read.error();
        }
    }
    rate::Count counted =
        rate::count(header, per_client ? &window : nullptr, key, now_minute.minute, now_minute.elapsed);
    check.server_rate = counted.server_rate;
    check.client_rate = counted.client_rate;
    if (per_client) {
        if (auto written = file.write_slot(home + counted.slot, window[counted.slot]); !written) {
            return written.error();
        }
    }
    if (auto written = file.write_header(); !written) {
        return written.error();
    }

    if (per_client && check.client_rate > limits.per_client_per_minute) {
        check.verdict = RateVerdict::client_limit;
    } else if (limits.per_minute > 0 && check.server_rate > limits.per_minute) {
        check.verdict = RateVerdict::server_limit;
    }
    return check;
}

} // namespace smtpspool
