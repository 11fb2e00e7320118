// Tests of SHA-256 and HMAC-SHA256 (base/sha256): the FIPS 180-4 examples,
// the RFC 4231 test cases, and the same results as OpenSSL's (here only as
// the oracle; see sha256.hpp for why delivery does not call it) on random
// keys and messages of every length from 0 to 200 octets, fed whole and in
// pieces.
#include "base/sha256.hpp"

#include <doctest/doctest.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <random>
#include <string>

using namespace smtpspool;

namespace {

std::string openssl_hmac(std::string_view key, std::string_view data)
{
    unsigned char out[EVP_MAX_MD_SIZE];
    unsigned int size = 0;
    REQUIRE(::HMAC(::EVP_sha256(), key.data(), static_cast<int>(key.size()),
                   reinterpret_cast<const unsigned char*>(data.data()), data.size(), out, &size) != nullptr);
    REQUIRE(size == 32);
    Sha256::Digest d;
    std::copy(out, out + 32, d.begin());
    return hex(d);
}

std::string openssl_sha256(std::string_view data)
{
    unsigned char out[EVP_MAX_MD_SIZE];
    unsigned int size = 0;
    REQUIRE(::EVP_Digest(data.data(), data.size(), out, &size, ::EVP_sha256(), nullptr) == 1);
    Sha256::Digest d;
    std::copy(out, out + 32, d.begin());
    return hex(d);
}

} // namespace

TEST_SUITE("sha256")
{
    TEST_CASE("SHA-256: the FIPS 180-4 examples")
    {
        CHECK(hex(sha256("")) == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
        CHECK(hex(sha256("abc")) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
        CHECK(hex(sha256("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq")) ==
              "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
        Sha256 million;
        for (int i = 0; i < 1000; ++i) {
            million.update(std::string(1000, 'a'));
        }
        CHECK(hex(million.finish()) == "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
    }

    TEST_CASE("HMAC-SHA256: the RFC 4231 test cases")
    {
        CHECK(hex(hmac_sha256(std::string(20, '\x0b'), "Hi There")) ==
              "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7");
        CHECK(hex(hmac_sha256("Jefe", "what do ya want for nothing?")) ==
              "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
        CHECK(hex(hmac_sha256(std::string(20, '\xaa'), std::string(50, '\xdd'))) ==
              "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe");
        std::string key4;
        for (char c = 1; c <= 25; ++c) {
            key4 += c;
        }
        CHECK(hex(hmac_sha256(key4, std::string(50, '\xcd'))) ==
              "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b");
        // Test case 5 truncates the output, which we never do.
        CHECK(hex(hmac_sha256(std::string(131, '\xaa'), "Test Using Larger Than Block-Size Key - Hash Key First")) ==
              "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54");
        CHECK(hex(hmac_sha256(std::string(131, '\xaa'),
                              "This is a test using a larger than block-size key and a larger than block-size data. "
                              "The key needs to be hashed before being used by the HMAC algorithm.")) ==
              "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2");
    }

    TEST_CASE("the same as OpenSSL on random keys and messages, whole and in pieces")
    {
        std::mt19937_64 random(20261206);
        for (std::size_t n = 0; n <= 200; ++n) {
            std::string key(static_cast<std::size_t>(random() % 100), '\0');
            std::string message(n, '\0');
            for (char& c : key) {
                c = static_cast<char>(random() & 0xff);
            }
            for (char& c : message) {
                c = static_cast<char>(random() & 0xff);
            }
            CAPTURE(n);
            CHECK(hex(sha256(message)) == openssl_sha256(message));
            CHECK(hex(hmac_sha256(key, message)) == openssl_hmac(key, message));
            HmacSha256 pieces(key);
            for (std::size_t at = 0; at < n;) {
                std::size_t take = std::min<std::size_t>(n - at, random() % 70);
                pieces.update(std::string_view(message).substr(at, take));
                at += take;
            }
            CHECK(hex(pieces.finish()) == openssl_hmac(key, message));
        }
    }
}
