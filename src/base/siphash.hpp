// siphash: SipHash-2-4 (Aumasson and Bernstein, 2012), 64-bit output. Keyed
// hashing of untrusted keys, for tables a client must not be able to aim
// collisions at without the key.
//
// Our own code, not OpenSSL's EVP_MAC "SIPHASH": the connection rate check
// hashes once or three times per connection, in a process that serves that
// one connection, and OpenSSL's first EVP_MAC_fetch in a process builds its
// provider tables: 4.9 M instructions and 0.8-1.3 ms, against 0.2 µs here
// (bench/siphash_cost.cpp). tests/unit/test_siphash.cpp checks this code
// against the paper's vectors and against OpenSSL's for lengths 0 to 63 and
// random keys.
#pragma once

#include <array>
#include <cstdint>
#include <string_view>

namespace smtpspool {

// SipHash-2-4 of `data` under the 128-bit key (k0, k1): key[0] is key octets
// 0-7 and key[1] octets 8-15, each read little-endian as in the paper; the
// result is the paper's 64-bit output (its 8 octets read little-endian).
std::uint64_t siphash24(const std::array<std::uint64_t, 2>& key, std::string_view data);

} // namespace smtpspool
