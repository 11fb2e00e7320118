// auth: SMTP AUTH (RFC 4954) with the PLAIN (RFC 4616) and LOGIN mechanisms:
// base64, the PLAIN message, and the port that verifies a user's password
// (policy/password_file, policy/checkpassword). Pure.
#pragma once

#include <optional>
#include <string>
#include <string_view>

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


} // namespace smtpspool
