// rate_limit: connection velocity limits (--max-connections-per-minute,
// --max-connections-per-client-per-minute) shared by every serve process
// through one small state file, SPOOL/state/connections.
//
// Each serve process handles one connection, so the counts must live outside
// the process. check_connection_rate() counts the connection under an
// exclusive flock(2) on the file and says whether it is over a limit.
//
// Rate estimate: a sliding window of one minute, from two fixed-minute
// counters, for the server and for each client:
//   rate = previous × (1 − fraction of the current minute elapsed) + current
// where "current" already counts this connection. Over the limit means
// rate > N, so with an empty history connections 1..N are allowed, N+1 is not.
//
// Decisions:
//   - Refused connections are counted too (for the server and the client): a
//     client that keeps hammering while refused stays refused, instead of
//     getting a connection through every time its estimate dips under N.
//   - When both limits are over, the verdict is client_limit (it names who).
//   - A limit of 0 turns that check off. With both 0 the file is not touched
//     at all (state/ is not even created). The server counters are kept
//     whenever the file is used, so server_rate is reported for the log.
//   - Clients: IPv4 (and IPv4-mapped IPv6) by full address; IPv6 by its /64
//     prefix, since one host or one customer line gets a whole /64 (RFC 6177,
//     SLAAC) and could otherwise pick a fresh address for every connection.
//     Any other key ("local", an address with a zone) counts as itself.
//   - Errors (cannot create state/, open or lock the file, I/O error) are
//     returned, not refused: the caller logs one line and lets the connection
//     in (fail open). Velocity checking is a protection against abuse, not a
//     delivery condition; a broken state file must not stop all mail.
//   - The clock going back by up to k_rate_max_backstep_minutes is taken as
//     "still the latest minute in the file" (with no part of it elapsed); a
//     larger step back forgets the history (the file is rebuilt), so a clock
//     set back by an hour does not pile up an hour of connections into one
//     minute.
//
// File format (host byte order; the file is per-host advisory state):
//   header, 64 octets:
//     0  char[8]  magic "smtprate"
//     8  u32      version (1)
//     12 u32      slot count (4096)
//     16 u32      slot size (32)
//     20 u32      header size (64)
//     24 u64[2]   hash seed, random when the file is (re)built
//     40 i64      server minute (minutes since the epoch) of the counters
//     48 u32      server connections in that minute
//     52 u32      server connections in the minute before
//     56 u8[8]    zero
//   then 4096 slots of 32 octets:
//     0  u8[16]   client key: IPv6 /64 prefix + 8 zeros; IPv4 as ::ffff:a.b.c.d;
//                 other keys ff00: + 112 bits of keyed hash
//     16 i64      minute of the counters (a slot more than a minute behind
//                 the present counts nothing and is free)
//     24 u32      connections in that minute
//     28 u32      connections in the minute before
// Total 131136 octets, whatever the number of clients. A client's slot is
// found by SipHash-2-4 of its key under the seed in the header (a remote
// client cannot aim collisions without the seed), probing at most 8 slots
// from there; when all 8 are live the one with the oldest minute is evicted.
// A file of another size, magic, version or geometry (foreign, truncated,
// other byte order) is rebuilt empty under the lock, never trusted; slot
// contents are bounded values, so garbage in them cannot overflow anything.
//
// No fsync: the file is advisory, losing the last counts in a crash only
// forgets some history (a torn or zeroed file fails the header check and is
// rebuilt).
#pragma once

#include "base/clock.hpp"
#include "base/result.hpp"

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace smtpspool {

struct RateLimits {
    unsigned per_minute = 0;            // whole server; 0: no limit
    unsigned per_client_per_minute = 0; // per client (IPv6: per /64); 0: no limit
};

enum class RateVerdict { allowed, server_limit, client_limit };

struct RateCheck {
    RateVerdict verdict = RateVerdict::allowed;
    double server_rate = 0; // connections per minute, this one included
    double client_rate = 0; // 0 when the per-client check is off
};

// Counts this connection and says whether it is over a limit. client_key is
// the peer address ("192.0.2.7", "2001:db8::1") or "local". Creates state/
// (0700) and the file (0600) when missing.
Result<RateCheck> check_connection_rate(const std::string& spool, std::string_view client_key, const RateLimits& limits,
                                        TimePoint now);

// "allowed", "server-limit", "client-limit": for log lines.
const char* to_string(RateVerdict verdict);

inline constexpr std::size_t k_rate_slot_count = 4096;
inline constexpr std::size_t k_rate_probe = 8;
inline constexpr std::size_t k_rate_header_size = 64;
inline constexpr std::size_t k_rate_slot_size = 32;
inline constexpr std::size_t k_rate_file_size = k_rate_header_size + k_rate_slot_count * k_rate_slot_size;
inline constexpr std::int64_t k_rate_max_backstep_minutes = 2;

// SPOOL/state/connections.
std::string rate_state_path(const std::string& spool);

// The counting itself, apart from the file (which check_connection_rate
// opens, locks, checks, reads and writes): pure, for tests.
namespace rate {

// The header and a slot of the file, as stored (the layout above).
struct Header {
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

struct Slot {
    std::uint8_t key[16];
    std::int64_t minute;
    std::uint32_t current;
    std::uint32_t previous;
};

using Key = std::array<std::uint8_t, 16>;
using Seed = std::array<std::uint64_t, 2>;
// The k_rate_probe slots from a key's home slot on (wrapping at the end).
using Window = std::array<Slot, k_rate_probe>;

// The key a client is counted under: IPv4 by address, IPv6 by /64, anything
// else by a keyed hash under ff00::/16.
Key key_of(std::string_view client, const Seed& seed);
// The first slot of the key's probe window.
std::size_t home_slot(const Key& key, const Seed& seed);

// Minutes since the epoch, and the fraction (0 to 1) of that minute elapsed.
struct Minute {
    std::int64_t minute = 0;
    double elapsed = 0;
};
Minute minute_of(TimePoint now);

// True when the header's counters are more than k_rate_max_backstep_minutes
// ahead of `minute` (the clock went far back): the file is to be rebuilt.
bool clock_went_back(const Header& header, std::int64_t minute);

struct Count {
    double server_rate = 0; // this connection included
    double client_rate = 0; // 0 without a window
    std::size_t slot = 0;   // the index in the window of the client's slot
};

// Counts one connection at `minute` (`elapsed` of it gone): in the header's
// server counters, and, when `window` is given, in the client's slot of it
// (its own live slot, else the first free one, else the live one with the
// oldest minute, then the fewest connections, is taken over). A minute
// behind the header's (a small step back of the clock) counts in the
// header's minute with none of it elapsed.
Count count(Header& header, Window* window, const Key& key, std::int64_t minute, double elapsed);

} // namespace rate
} // namespace smtpspool
