// password_file: --auth-passwd, checked with crypt(3).
#include "policy/password_file.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <crypt.h>
#include <cstdint>
#include <cstring>
#include <memory>
#include <optional>
#include <vector>

namespace smtpspool {
namespace {

// What an unknown user is checked against when the file has no hash at all.
constexpr const char* k_empty_file_hash =
    "$6$smtpspool$1rDk8q2nN4e0y5n3J3nS0b4TzF9q7QzVv2K1kq8oZQm1yXb6oYtJ0M7y7rJd0QmE9xw4m2c3bS5n6v7a8b9c0.";

// The value of one character of crypt(3)'s base-64 alphabet, "./0-9A-Za-z".
std::optional<std::uint32_t> digit64(char c)
{
    if (c == '.' || c == '/') {
        return static_cast<std::uint32_t>(c - '.');
    }
    if (c >= '0' && c <= '9') {
        return static_cast<std::uint32_t>(c - '0' + 2);
    }
    if (c >= 'A' && c <= 'Z') {
        return static_cast<std::uint32_t>(c - 'A' + 12);
    }
    if (c >= 'a' && c <= 'z') {
        return static_cast<std::uint32_t>(c - 'a' + 38);
    }
    return std::nullopt;
}

// One number of a yescrypt parameter string, at least `min`: the first
// character's value below 48 is the number itself; 48-55 start a number of
// two characters, 56-59 of three, 60-61 of four, 62 of five, each range
// continuing where the one before it ends.
std::optional<std::uint64_t> yescrypt_number(std::string_view& in, std::uint64_t min)
{
    if (in.empty()) {
        return std::nullopt;
    }
    auto first = digit64(in.front());
    if (!first || *first == 63) {
        return std::nullopt;
    }
    in.remove_prefix(1);
    std::uint64_t value = min;
    std::uint32_t low = 0;  // the first value of this length
    std::uint32_t high = 47; // its last first character
    unsigned more = 0;       // characters after the first
    while (*first > high) {
        value += static_cast<std::uint64_t>(high + 1 - low) << (6 * more);
        low = high + 1;
        high = low + (62 - high) / 2;
        ++more;
    }
    value += static_cast<std::uint64_t>(*first - low) << (6 * more);
    for (unsigned i = more; i > 0; --i) {
        auto d = in.empty() ? std::nullopt : digit64(in.front());
        if (!d) {
            return std::nullopt;
        }
        in.remove_prefix(1);
        value += static_cast<std::uint64_t>(*d) << (6 * (i - 1));
    }
    return value;
}

// A little-endian number of `chars` base-64 characters ($7$'s r and p).
std::optional<std::uint64_t> fixed_number(std::string_view& in, unsigned chars)
{
    std::uint64_t value = 0;
    for (unsigned i = 0; i < chars; ++i) {
        auto d = in.empty() ? std::nullopt : digit64(in.front());
        if (!d) {
            return std::nullopt;
        }
        in.remove_prefix(1);
        value |= static_cast<std::uint64_t>(*d) << (6 * i);
    }
    return value;
}

std::optional<std::uint64_t> decimal(std::string_view text)
{
    std::uint64_t n = 0;
    auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), n);
    if (ec != std::errc() || ptr != text.data() + text.size() || text.empty()) {
        return std::nullopt;
    }
    return n;
}

// "rounds=N" at the start of `field` (sha-crypt, SunMD5), or nullopt.
std::optional<std::uint64_t> rounds(std::string_view field)
{
    if (!field.starts_with("rounds=")) {
        return std::nullopt;
    }
    return decimal(field.substr(7));
}

// yescrypt's memory-hard core: N blocks of 128·r octets, p times, 1 + t passes.
double memory_hard_cost(std::uint64_t n_log2, std::uint64_t r, std::uint64_t p, std::uint64_t t, double per_unit)
{
    if (n_log2 > 63) {
        return 0;
    }
    return std::ldexp(1.0, static_cast<int>(n_log2)) * static_cast<double>(r) * static_cast<double>(p) *
           static_cast<double>(t + 1) * per_unit;
}

double yescrypt_cost(std::string_view params)
{
    auto flavor = yescrypt_number(params, 0);
    auto n_log2 = flavor ? yescrypt_number(params, 1) : std::nullopt;
    auto r = n_log2 ? yescrypt_number(params, 1) : std::nullopt;
    if (!r) {
        return 0;
    }
    std::uint64_t p = 1;
    std::uint64_t t = 0;
    if (!params.empty()) {
        auto have = yescrypt_number(params, 1);
        if (have && (*have & 1) != 0) {
            p = yescrypt_number(params, 2).value_or(1);
        }
        if (have && (*have & 2) != 0) {
            t = yescrypt_number(params, 1).value_or(0);
        }
    }
    return memory_hard_cost(*n_log2, *r, p, t, 0.24);
}

double scrypt_cost(std::string_view params)
{
    auto n_log2 = params.empty() ? std::nullopt : digit64(params.front());
    params.remove_prefix(params.empty() ? 0 : 1);
    auto r = fixed_number(params, 5);
    auto p = r ? fixed_number(params, 5) : std::nullopt;
    if (!n_log2 || !p) {
        return 0;
    }
    return memory_hard_cost(*n_log2, *r, *p, 0, 0.5);
}

// Compares without stopping at the first difference.
bool same(std::string_view a, std::string_view b)
{
    if (a.size() != b.size()) {
        return false;
    }
    unsigned char d = 0;
    for (std::size_t i = 0; i < a.size(); ++i) {
        d |= static_cast<unsigned char>(a[i] ^ b[i]);
    }
    return d == 0;
}

} // namespace

double hash_cost(std::string_view hash)
{
    // The fields between '$'s: "", the algorithm, then its parameters.
    std::vector<std::string_view> fields;
    for (std::size_t at = 0; at <= hash.size();) {
        std::size_t end = std::min(hash.find('$', at), hash.size());
        fields.push_back(hash.substr(at, end - at));
        at = end + 1;
    }
    if (fields.size() < 3 || !fields[0].empty()) {
        return 0;
    }
    std::string_view id = fields[1];
    std::string_view param = fields[2];
    if (id == "y" || id == "gy") {
        return yescrypt_cost(param);
    }
    if (id == "7") {
        return scrypt_cost(param);
    }
    if (id == "2a" || id == "2b" || id == "2x" || id == "2y") {
        auto cost = decimal(param);
        return cost && *cost >= 4 && *cost <= 31 ? std::ldexp(113.0, static_cast<int>(*cost)) : 0;
    }
    if (id == "5" || id == "6") {
        // Default 5000 rounds, else as many as asked within 1000-999999999.
        std::uint64_t n = std::clamp<std::uint64_t>(rounds(param).value_or(5000), 1000, 999999999);
        return static_cast<double>(n) * (id == "6" ? 0.38 : 0.33);
    }
    if (id.starts_with("md5")) {
        // SunMD5: "$md5$" or "$md5,rounds=N$", 4096 rounds more than it says.
        std::uint64_t n = id.starts_with("md5,") ? rounds(id.substr(4)).value_or(0) : 0;
        return static_cast<double>(n + 4096) * 2.1;
    }
    if (id == "sha1") {
        return static_cast<double>(decimal(param).value_or(0)) * 2.0;
    }
    if (id == "1") {
        return 140;
    }
    if (id == "3") {
        return 1;
    }
    return 0;
}

std::variant<PasswordFile, ListError> PasswordFile::parse(std::string_view text)
{
    PasswordFile f;
    f.m_unknown_user_hash = k_empty_file_hash;
    double most = -1;
    std::optional<ListError> error;
    for_each_entry(text, [&](std::size_t line, std::string_view entry) {
        if (error) {
            return;
        }
        std::size_t colon = entry.find(':');
        if (colon == 0 || colon == std::string_view::npos) {
            error = ListError{line, "expected user:hash"};
            return;
        }
        std::string_view user = entry.substr(0, colon);
        std::string_view hash = entry.substr(colon + 1);
        if (hash.size() < 3 || hash.front() != '$' || hash.find_first_of(" \t:") != std::string_view::npos) {
            error = ListError{line, "the hash of " + std::string(user) + " is not in crypt(3) form ($id$...)"};
            return;
        }
        if (!f.m_hashes.emplace(std::string(user), std::string(hash)).second) {
            error = ListError{line, std::string(user) + " is listed twice"};
        }
        if (double cost = hash_cost(hash); cost > most) {
            most = cost;
            f.m_unknown_user_hash = std::string(hash);
        }
    });
    if (error) {
        return *error;
    }
    return f;
}

AuthVerdict PasswordFile::check(std::string_view user, std::string_view password)
{
    auto it = m_hashes.find(std::string(user));
    // An unknown user: the work of the costliest user, with its result unused.
    const std::string& hash = it == m_hashes.end() ? m_unknown_user_hash : it->second;
    auto data = std::make_unique<crypt_data>();
    std::string pass(password);
    const char* out = ::crypt_r(pass.c_str(), hash.c_str(), data.get());
    std::memset(pass.data(), 0, pass.size());
    if (out == nullptr || out[0] == '*') {
        // An unsupported or malformed hash: the administrator's problem.
        return it == m_hashes.end() ? AuthVerdict::refused : AuthVerdict::temporary;
    }
    bool match = same(out, hash);
    return it != m_hashes.end() && match ? AuthVerdict::ok : AuthVerdict::refused;
}

} // namespace smtpspool
