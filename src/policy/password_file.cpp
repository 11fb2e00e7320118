// password_file: --auth-passwd, checked with crypt(3).
#include "policy/password_file.hpp"

#include <crypt.h>
#include <cstring>
#include <memory>

namespace smtpspool {
namespace {

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

// A sha512-crypt hash of nothing anyone knows: what an unknown user is checked against.
constexpr const char* k_dummy_hash =
    "$6$smtpspool$1rDk8q2nN4e0y5n3J3nS0b4TzF9q7QzVv2K1kq8oZQm1yXb6oYtJ0M7y7rJd0QmE9xw4m2c3bS5n6v7a8b9c0.";

} // namespace

std::variant<PasswordFile, ListError> PasswordFile::parse(std::string_view text)
{
    PasswordFile f;
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
    });
    if (error) {
        return *error;
    }
    return f;
}

AuthVerdict PasswordFile::check(std::string_view user, std::string_view password)
{
    auto it = m_hashes.find(std::string(user));
    const std::string hash = it == m_hashes.end() ? k_dummy_hash : it->second;
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
