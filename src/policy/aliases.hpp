// aliases: the --aliases file (smtpspool(8), ALIASES) and recipient expansion.
// Pure: text in, addresses out.
#pragma once

#include "base/limits.hpp"
#include "policy/address_list.hpp"

#include <cstddef>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <variant>
#include <vector>

namespace smtpspool {

// Keys and recipients are compared in canonical form (canonical_local_part:
// unquoted, ASCII lower case; the domain in lower case).
// "local: target, target" applies to that local part in every local domain;
// "user@domain: target" to that address only. Targets are addresses or bare
// local parts (which take the domain of the address being expanded). Lines
// are read by for_each_line, as the other policy files: '#' at the start of a
// line or after white space starts a comment ("root: alice # the admin");
// lines that start with white space continue the previous entry.
class Aliases {
public:
    static constexpr std::size_t k_max_depth = 10;

    static std::variant<Aliases, ListError> parse(std::string_view text);

    using IsLocal = std::function<bool(std::string_view domain)>;

    // What a recipient ("local@domain", domain in lower case; or a bare local
    // part such as "postmaster") stands for. A recipient without an entry
    // stands for itself. An entry that lists its own key delivers there too
    // ("bob: bob, archive"); any other cycle is a loop, and expansion deeper
    // than k_max_depth or to more than max addresses is refused. Bare local
    // parts in an address without a domain (<postmaster>) take default_domain.
    // Each entry is expanded once however many paths lead to it, and an
    // expansion that takes more than max_steps steps (an address looked up:
    // the recipient, then each target reached) is refused too; steps_taken,
    // when given, says how many it took.
    struct Refused {
        std::string why;
    };
    std::variant<std::vector<std::string>, Refused> expand(std::string_view address, const IsLocal& is_local,
                                                           std::size_t max, std::string_view default_domain = {},
                                                           std::size_t max_steps = limits::k_max_alias_steps,
                                                           std::size_t* steps_taken = nullptr) const;

    // True when the recipient has an entry.
    bool has(std::string_view address, const IsLocal& is_local) const;
    std::size_t size() const { return m_entries.size(); }

private:
    const std::vector<std::string>* lookup(std::string_view address, const IsLocal& is_local) const;
    std::unordered_map<std::string, std::vector<std::string>> m_entries;
};

} // namespace smtpspool
