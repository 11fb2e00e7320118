// sha256: SHA-256 (FIPS 180-4) and HMAC-SHA256 (RFC 2104), streaming. What
// the webhook transport signs its requests with and names recipient sets by.
//
// Our own code, not OpenSSL's: OpenSSL stays in the TLS module (server/tls),
// and the delivery layer needs no port for a pure function of octets. SHA-256
// has no table indexed by secret data and no branch on it, so the plain code
// runs in the same time whatever the key. tests/unit/test_sha256.cpp checks
// it against FIPS 180-4 and RFC 4231 vectors and against OpenSSL on random
// keys and messages of every length around the block size.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace smtpspool {

class Sha256 {
public:
    using Digest = std::array<unsigned char, 32>;
    Sha256();
    void update(std::string_view data);
    Digest finish(); // the object is spent afterwards

private:
    void block(const unsigned char* p);
    std::array<std::uint32_t, 8> m_h;
    std::array<unsigned char, 64> m_buffer{};
    std::size_t m_buffered = 0;
    std::uint64_t m_length = 0; // octets
};

class HmacSha256 {
public:
    explicit HmacSha256(std::string_view key);
    void update(std::string_view data) { m_inner.update(data); }
    Sha256::Digest finish();

private:
    Sha256 m_inner;
    std::array<unsigned char, 64> m_outer_key{};
};

Sha256::Digest sha256(std::string_view data);
Sha256::Digest hmac_sha256(std::string_view key, std::string_view data);
// Lower-case hexadecimal, two digits per octet.
std::string hex(const Sha256::Digest& digest);

} // namespace smtpspool
