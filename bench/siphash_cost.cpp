// siphash_cost: what SipHash-2-4 costs the connection rate check, ours
// (base/siphash) against OpenSSL's EVP_MAC "SIPHASH". Built by hand:
//
//   make -j1 build/unit-tests
//   g++ -std=c++20 -O2 -Wall -Wextra -Isrc bench/siphash_cost.cpp build/libsmtpspool.a -lcrypto -o build/siphash_cost
//   build/siphash_cost [-n CALLS]
//
// It prints the first call in the process (for OpenSSL: its library and
// provider set-up and the algorithm fetch, which a serve process, one per
// connection, would pay on every connection), then the median per call of
// CALLS (default 200000) calls on a 16-octet key (what home_slot hashes) and
// a 9-octet one ("192.0.2.7"), the key changing on every call.
#include "base/siphash.hpp"

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/params.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

using namespace smtpspool;

namespace {

using Clock = std::chrono::steady_clock;

std::uint64_t openssl_siphash24(const std::array<std::uint64_t, 2>& key, std::string_view data)
{
    static EVP_MAC* mac = ::EVP_MAC_fetch(nullptr, "SIPHASH", nullptr);
    unsigned char raw[16];
    for (int i = 0; i < 8; ++i) {
        raw[i] = static_cast<unsigned char>(key[0] >> (8 * i));
        raw[8 + i] = static_cast<unsigned char>(key[1] >> (8 * i));
    }
    std::size_t size = 8;
    OSSL_PARAM params[] = {::OSSL_PARAM_construct_size_t(OSSL_MAC_PARAM_SIZE, &size), ::OSSL_PARAM_construct_end()};
    EVP_MAC_CTX* ctx = ::EVP_MAC_CTX_new(mac);
    unsigned char out[8];
    std::size_t out_size = 0;
    if (ctx == nullptr || ::EVP_MAC_init(ctx, raw, sizeof raw, params) != 1 ||
        ::EVP_MAC_update(ctx, reinterpret_cast<const unsigned char*>(data.data()), data.size()) != 1 ||
        ::EVP_MAC_final(ctx, out, &out_size, sizeof out) != 1) {
        std::fprintf(stderr, "siphash_cost: EVP_MAC SIPHASH failed\n");
        std::exit(1);
    }
    ::EVP_MAC_CTX_free(ctx);
    std::uint64_t v = 0;
    for (int i = 7; i >= 0; --i) {
        v = (v << 8) | out[i];
    }
    return v;
}

template <typename Hash>
double first_call_us(Hash hash)
{
    auto start = Clock::now();
    volatile std::uint64_t sink = hash({1, 2}, "192.0.2.7");
    (void)sink;
    return std::chrono::duration<double, std::micro>(Clock::now() - start).count();
}

// Median of 20 batches, in ns per call.
template <typename Hash>
double per_call_ns(Hash hash, const std::string& data, int calls)
{
    std::vector<double> batches;
    std::array<std::uint64_t, 2> key{0x0706050403020100ULL, 0x0f0e0d0c0b0a0908ULL};
    std::uint64_t sink = 0;
    for (int b = 0; b < 20; ++b) {
        auto start = Clock::now();
        for (int i = 0; i < calls / 20; ++i) {
            key[0] += 1;
            sink += hash(key, data);
        }
        batches.push_back(std::chrono::duration<double, std::nano>(Clock::now() - start).count() / (calls / 20));
    }
    if (sink == 42) {
        std::printf(" ");
    }
    std::sort(batches.begin(), batches.end());
    return batches[batches.size() / 2];
}

} // namespace

int main(int argc, char** argv)
{
    int calls = 200000;
    if (argc == 3 && std::string(argv[1]) == "-n") {
        calls = std::max(1000, std::atoi(argv[2]));
    }
    auto ours = [](const std::array<std::uint64_t, 2>& k, std::string_view d) { return siphash24(k, d); };
    std::printf("first call in the process: ours %9.2f us, OpenSSL %9.2f us\n", first_call_us(ours),
                first_call_us(openssl_siphash24));
    for (const std::string& data : {std::string(16, 'k'), std::string("192.0.2.7")}) {
        std::printf("%2zu octets, per call:       ours %9.1f ns, OpenSSL %9.1f ns\n", data.size(),
                    per_call_ns(ours, data, calls), per_call_ns(openssl_siphash24, data, calls));
    }
    return 0;
}
