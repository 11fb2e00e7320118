// auth: SMTP AUTH (RFC 4954) with the PLAIN (RFC 4616) and LOGIN mechanisms:
// base64, the PLAIN message, and what verifies a user's password. Pure but
// for PasswordFile::check, which runs crypt(3).
#pragma once

#include "policy/address_list.hpp"

#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <variant>

namespace smtpspool {

// RFC 4648 base64, strict: the alphabet, padding only at the end, a length
// that is a multiple of four; nullopt otherwise. "" decodes to "".
std::optional<std::string> base64_decode(std::string_view text);
std::string base64_encode(std::string_view octets);

// RFC 4616: [authzid] NUL authcid NUL passwd, with no other NUL.
struct PlainCredentials {
    std::string authzid;
    std::string user;
    std::string password;
};
std::optional<PlainCredentials> parse_plain(std::string_view decoded);

enum class AuthVerdict { ok, refused, temporary };

// What the session asks to verify a user and password.
class AuthPort {
public:
    virtual ~AuthPort() = default;
    virtual AuthVerdict check(std::string_view user, std::string_view password) = 0;
};

// --auth-passwd: "user:hash" lines, the hash in crypt(3) form (yescrypt "$y$",
// sha512-crypt "$6$", ...); '#' comments. User names are compared exactly.
class PasswordFile final : public AuthPort {
public:
    static std::variant<PasswordFile, ListError> parse(std::string_view text);
    // An unknown user costs a hash computation too, so that timing does not
    // tell which users exist.
    AuthVerdict check(std::string_view user, std::string_view password) override;
    std::size_t size() const { return m_hashes.size(); }

private:
    std::unordered_map<std::string, std::string> m_hashes;
};

} // namespace smtpspool
