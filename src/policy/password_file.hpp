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
    // An unknown user costs a hash computation too, so that timing does not
    // tell which users exist.
    AuthVerdict check(std::string_view user, std::string_view password) override;
    std::size_t size() const { return m_hashes.size(); }

private:
    std::unordered_map<std::string, std::string> m_hashes;
};

} // namespace smtpspool
