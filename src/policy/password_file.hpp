// password_file: the AuthPort of --auth-passwd (smtpspool(8), AUTH).
#pragma once

#include "policy/address_list.hpp"
#include "smtp/auth.hpp"

#include <cstddef>
#include <string>
#include <string_view>
#include <unordered_map>
#include <variant>

namespace smtpspool {

// --auth-passwd: "user:hash" lines, the hash in crypt(3) form (yescrypt "$y$",
// sha512-crypt "$6$", ...); '#' comments. User names are compared exactly.
class PasswordFile final : public AuthPort {
public:
    static std::variant<PasswordFile, ListError> parse(std::string_view text);
    // An unknown user's password is hashed with the setting (algorithm, cost
    // and salt) of the file's most expensive hash, and the result ignored:
    // refusing an unknown user takes as long as refusing that user.
    AuthVerdict check(std::string_view user, std::string_view password) override;
    std::size_t size() const { return m_hashes.size(); }
    // What an unknown user is checked against: the most expensive hash of the
    // file by hash_cost() (the first of equals), or a fixed sha512-crypt hash
    // when the file is empty.
    const std::string& unknown_user_hash() const { return m_unknown_user_hash; }

private:
    std::unordered_map<std::string, std::string> m_hashes;
    std::string m_unknown_user_hash;
};

// The work of checking a password against this crypt(3) hash, from its
// algorithm and cost parameters, in rough microseconds of one x86-64 core
// (only the order matters): yescrypt and scrypt by N, r and p, bcrypt by its
// cost, sha256/sha512-crypt, SunMD5 and sha1crypt by their rounds, md5crypt
// and NTHASH fixed. 0 for an algorithm or setting it does not know.
double hash_cost(std::string_view hash);

} // namespace smtpspool
