// Tests of SipHash-2-4 (base/siphash): the reference vectors of the SipHash
// paper's implementation (key 00 01 .. 0f, message 00 01 .. n-1 for n = 0 to
// 63), and the same results as OpenSSL's EVP_MAC "SIPHASH" on random keys and
// messages (OpenSSL here only as the oracle; see siphash.hpp for why the
// server does not call it).
#include "base/siphash.hpp"

#include <doctest/doctest.h>

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/params.h>

#include <random>
#include <string>

using namespace smtpspool;

namespace {

// The reference vectors, as 64-bit values (their 8 octets read little-endian).
const std::uint64_t k_vectors[64] = {
    0x726fdb47dd0e0e31ULL, 0x74f839c593dc67fdULL, 0x0d6c8009d9a94f5aULL, 0x85676696d7fb7e2dULL, 0xcf2794e0277187b7ULL,
    0x18765564cd99a68dULL, 0xcbc9466e58fee3ceULL, 0xab0200f58b01d137ULL, 0x93f5f5799a932462ULL, 0x9e0082df0ba9e4b0ULL,
    0x7a5dbbc594ddb9f3ULL, 0xf4b32f46226bada7ULL, 0x751e8fbc860ee5fbULL, 0x14ea5627c0843d90ULL, 0xf723ca908e7af2eeULL,
    0xa129ca6149be45e5ULL, 0x3f2acc7f57c29bdbULL, 0x699ae9f52cbe4794ULL, 0x4bc1b3f0968dd39cULL, 0xbb6dc91da77961bdULL,
    0xbed65cf21aa2ee98ULL, 0xd0f2cbb02e3b67c7ULL, 0x93536795e3a33e88ULL, 0xa80c038ccd5ccec8ULL, 0xb8ad50c6f649af94ULL,
    0xbce192de8a85b8eaULL, 0x17d835b85bbb15f3ULL, 0x2f2e6163076bcfadULL, 0xde4daaaca71dc9a5ULL, 0xa6a2506687956571ULL,
    0xad87a3535c49ef28ULL, 0x32d892fad841c342ULL, 0x7127512f72f27cceULL, 0xa7f32346f95978e3ULL, 0x12e0b01abb051238ULL,
    0x15e034d40fa197aeULL, 0x314dffbe0815a3b4ULL, 0x027990f029623981ULL, 0xcadcd4e59ef40c4dULL, 0x9abfd8766a33735cULL,
    0x0e3ea96b5304a7d0ULL, 0xad0c42d6fc585992ULL, 0x187306c89bc215a9ULL, 0xd4a60abcf3792b95ULL, 0xf935451de4f21df2ULL,
    0xa9538f0419755787ULL, 0xdb9acddff56ca510ULL, 0xd06c98cd5c0975ebULL, 0xe612a3cb9ecba951ULL, 0xc766e62cfcadaf96ULL,
    0xee64435a9752fe72ULL, 0xa192d576b245165aULL, 0x0a8787bf8ecb74b2ULL, 0x81b3e73d20b49b6fULL, 0x7fa8220ba3b2eceaULL,
    0x245731c13ca42499ULL, 0xb78dbfaf3a8d83bdULL, 0xea1ad565322a1a0bULL, 0x60e61c23a3795013ULL, 0x6606d7e446282b93ULL,
    0x6ca4ecb15c5f91e1ULL, 0x9f626da15c9625f3ULL, 0xe51b38608ef25f57ULL, 0x958a324ceb064572ULL,
};

std::uint64_t openssl_siphash24(const std::array<std::uint64_t, 2>& key, std::string_view data)
{
    unsigned char raw[16];
    for (int i = 0; i < 8; ++i) {
        raw[i] = static_cast<unsigned char>(key[0] >> (8 * i));
        raw[8 + i] = static_cast<unsigned char>(key[1] >> (8 * i));
    }
    EVP_MAC* mac = ::EVP_MAC_fetch(nullptr, "SIPHASH", nullptr);
    REQUIRE(mac != nullptr);
    EVP_MAC_CTX* ctx = ::EVP_MAC_CTX_new(mac);
    REQUIRE(ctx != nullptr);
    std::size_t size = 8;
    OSSL_PARAM params[] = {::OSSL_PARAM_construct_size_t(OSSL_MAC_PARAM_SIZE, &size), ::OSSL_PARAM_construct_end()};
    unsigned char out[8];
    std::size_t out_size = 0;
    bool ok = ::EVP_MAC_init(ctx, raw, sizeof raw, params) == 1 &&
              ::EVP_MAC_update(ctx, reinterpret_cast<const unsigned char*>(data.data()), data.size()) == 1 &&
              ::EVP_MAC_final(ctx, out, &out_size, sizeof out) == 1;
    ::EVP_MAC_CTX_free(ctx);
    ::EVP_MAC_free(mac);
    REQUIRE(ok);
    REQUIRE(out_size == 8);
    std::uint64_t v = 0;
    for (int i = 7; i >= 0; --i) {
        v = (v << 8) | out[i];
    }
    return v;
}

} // namespace

TEST_SUITE("siphash")
{
    TEST_CASE("SipHash-2-4 gives the 64 reference outputs")
    {
        const std::array<std::uint64_t, 2> key{0x0706050403020100ULL, 0x0f0e0d0c0b0a0908ULL};
        std::string message;
        for (std::size_t n = 0; n < 64; ++n) {
            CAPTURE(n);
            CHECK(siphash24(key, message) == k_vectors[n]);
            message += static_cast<char>(n);
        }
        // The example worked through in the paper (appendix A): 15 octets.
        CHECK(siphash24(key, message.substr(0, 15)) == 0xa129ca6149be45e5ULL);
    }

    TEST_CASE("the same as OpenSSL's SIPHASH on random keys and messages")
    {
        std::mt19937_64 random(20261201);
        for (int i = 0; i < 300; ++i) {
            std::array<std::uint64_t, 2> key{random(), random()};
            std::string message(static_cast<std::size_t>(i % 100), '\0');
            for (char& c : message) {
                c = static_cast<char>(random() & 0xff);
            }
            CAPTURE(i);
            CHECK(siphash24(key, message) == openssl_siphash24(key, message));
        }
    }
}
