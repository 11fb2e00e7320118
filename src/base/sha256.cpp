// sha256: FIPS 180-4 section 6.2 and RFC 2104.
#include "base/sha256.hpp"

#include <algorithm>
#include <cstring>

namespace smtpspool {
namespace {

constexpr std::uint32_t k_round[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
};

constexpr std::uint32_t rotr(std::uint32_t x, int n) { return (x >> n) | (x << (32 - n)); }

} // namespace

Sha256::Sha256()
    : m_h{0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19}
{
}

void Sha256::block(const unsigned char* p)
{
    std::uint32_t w[64];
    for (int t = 0; t < 16; ++t) {
        w[t] = std::uint32_t(p[4 * t]) << 24 | std::uint32_t(p[4 * t + 1]) << 16 | std::uint32_t(p[4 * t + 2]) << 8 |
               std::uint32_t(p[4 * t + 3]);
    }
    for (int t = 16; t < 64; ++t) {
        std::uint32_t s0 = rotr(w[t - 15], 7) ^ rotr(w[t - 15], 18) ^ (w[t - 15] >> 3);
        std::uint32_t s1 = rotr(w[t - 2], 17) ^ rotr(w[t - 2], 19) ^ (w[t - 2] >> 10);
        w[t] = w[t - 16] + s0 + w[t - 7] + s1;
    }
    std::uint32_t a = m_h[0], b = m_h[1], c = m_h[2], d = m_h[3], e = m_h[4], f = m_h[5], g = m_h[6], h = m_h[7];
    for (int t = 0; t < 64; ++t) {
        std::uint32_t t1 = h + (rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25)) + ((e & f) ^ (~e & g)) + k_round[t] + w[t];
        std::uint32_t t2 = (rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22)) + ((a & b) ^ (a & c) ^ (b & c));
        h = g;
        g = f;
        f = e;
        e = d + t1;
        d = c;
        c = b;
        b = a;
        a = t1 + t2;
    }
    m_h[0] += a;
    m_h[1] += b;
    m_h[2] += c;
    m_h[3] += d;
    m_h[4] += e;
    m_h[5] += f;
    m_h[6] += g;
    m_h[7] += h;
}

void Sha256::update(std::string_view data)
{
    const auto* p = reinterpret_cast<const unsigned char*>(data.data());
    std::size_t n = data.size();
    m_length += n;
    if (m_buffered > 0) {
        std::size_t take = std::min(n, m_buffer.size() - m_buffered);
        std::memcpy(m_buffer.data() + m_buffered, p, take);
        m_buffered += take;
        p += take;
        n -= take;
        if (m_buffered < m_buffer.size()) {
            return;
        }
        block(m_buffer.data());
        m_buffered = 0;
    }
    for (; n >= 64; p += 64, n -= 64) {
        block(p);
    }
    if (n > 0) {
        std::memcpy(m_buffer.data(), p, n);
        m_buffered = n;
    }
}

Sha256::Digest Sha256::finish()
{
    std::uint64_t bits = m_length * 8;
    unsigned char pad[72] = {0x80};
    // One 0x80 octet, zeros up to 56 mod 64, then the length in bits (big-endian).
    std::size_t zeros = (m_buffered < 56 ? 56 - m_buffered : 120 - m_buffered) - 1;
    unsigned char length[8];
    for (int i = 0; i < 8; ++i) {
        length[i] = static_cast<unsigned char>(bits >> (56 - 8 * i));
    }
    update(std::string_view(reinterpret_cast<const char*>(pad), 1 + zeros));
    update(std::string_view(reinterpret_cast<const char*>(length), 8));
    Digest out;
    for (int i = 0; i < 8; ++i) {
        out[4 * i] = static_cast<unsigned char>(m_h[i] >> 24);
        out[4 * i + 1] = static_cast<unsigned char>(m_h[i] >> 16);
        out[4 * i + 2] = static_cast<unsigned char>(m_h[i] >> 8);
        out[4 * i + 3] = static_cast<unsigned char>(m_h[i]);
    }
    return out;
}

HmacSha256::HmacSha256(std::string_view key)
{
    // RFC 2104 section 2: a key longer than the block is hashed first.
    std::array<unsigned char, 64> k{};
    if (key.size() > k.size()) {
        Sha256::Digest d = sha256(key);
        std::memcpy(k.data(), d.data(), d.size());
    } else {
        std::memcpy(k.data(), key.data(), key.size());
    }
    std::array<unsigned char, 64> inner{};
    for (std::size_t i = 0; i < k.size(); ++i) {
        inner[i] = k[i] ^ 0x36;
        m_outer_key[i] = k[i] ^ 0x5c;
    }
    m_inner.update(std::string_view(reinterpret_cast<const char*>(inner.data()), inner.size()));
}

Sha256::Digest HmacSha256::finish()
{
    Sha256::Digest inner = m_inner.finish();
    Sha256 outer;
    outer.update(std::string_view(reinterpret_cast<const char*>(m_outer_key.data()), m_outer_key.size()));
    outer.update(std::string_view(reinterpret_cast<const char*>(inner.data()), inner.size()));
    return outer.finish();
}

Sha256::Digest sha256(std::string_view data)
{
    Sha256 s;
    s.update(data);
    return s.finish();
}

Sha256::Digest hmac_sha256(std::string_view key, std::string_view data)
{
    HmacSha256 h(key);
    h.update(data);
    return h.finish();
}

std::string hex(const Sha256::Digest& digest)
{
    static constexpr char k_digits[] = "0123456789abcdef";
    std::string out;
    out.reserve(2 * digest.size());
    for (unsigned char c : digest) {
        out += k_digits[c >> 4];
        out += k_digits[c & 0xf];
    }
    return out;
}

} // namespace smtpspool
