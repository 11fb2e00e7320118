// aliases: parsing aliases(5)-style text and expanding recipients with loop,
// depth and size limits.
#include "policy/aliases.hpp"

#include "base/text.hpp"
#include "smtp/smtp_address.hpp"

#include <algorithm>
#include <unordered_set>

namespace smtpspool {
namespace {

// A key or target: "local" or "local@domain" with a valid domain; the local
// part printable, no spaces. Returns it with the domain in lower case, or ""
// when invalid.
std::string normal_form(std::string_view word)
{
    if (word.empty() || std::any_of(word.begin(), word.end(), [](char c) {
            auto u = static_cast<unsigned char>(c);
            return u <= 0x20 || u == 0x7f || c == ',' || c == ':' || c == '<' || c == '>';
        })) {
        return "";
    }
    std::size_t at = word.rfind('@');
    if (at == std::string_view::npos) {
        return std::string(word);
    }
    std::string_view domain = word.substr(at + 1);
    if (at == 0 || (!is_domain(domain) && !is_address_literal(domain))) {
        return "";
    }
    return std::string(word.substr(0, at + 1)) + ascii_lower(domain);
}

// What an entry is kept and a recipient looked up by: the canonical local
// part (canonical_local_part), then "@" and the domain in lower case if there
// is one.
std::string key_of(std::string_view address)
{
    std::size_t at = address.rfind('@');
    if (at == std::string_view::npos) {
        return canonical_local_part(address);
    }
    return canonical_local_part(address.substr(0, at)) + "@" + ascii_lower(address.substr(at + 1));
}

std::string_view local_of(std::string_view address) { return address.substr(0, address.rfind('@')); }

std::string_view domain_of(std::string_view address)
{
    std::size_t at = address.rfind('@');
    return at == std::string_view::npos ? std::string_view{} : address.substr(at + 1);
}

} // namespace

std::variant<Aliases, ListError> Aliases::parse(std::string_view text)
{
    // Join continuation lines into logical entries, remembering where each began.
    struct Entry {
        std::size_t line;
        std::string text;
    };
    std::vector<Entry> entries;
    std::optional<ListError> error;
    for_each_line(text, [&](std::size_t number, std::string_view content, bool indented) {
        if (error) {
            return;
        }
        if (!indented) {
            entries.push_back({number, std::string(content)});
        } else if (entries.empty()) {
            error = ListError{number, "a continuation line with no entry before it"};
        } else {
            entries.back().text += " ";
            entries.back().text += content;
        }
    });
    if (error) {
        return *error;
    }
    Aliases aliases;
    for (const Entry& e : entries) {
        std::size_t colon = e.text.find(':');
        if (colon == std::string::npos) {
            return ListError{e.line, "expected 'name: address, address'"};
        }
        std::string key = key_of(normal_form(text::trim(std::string_view(e.text).substr(0, colon))));
        if (key.empty()) {
            return ListError{e.line, "not a local part or address: '" + e.text.substr(0, colon) + "'"};
        }
        if (aliases.m_entries.count(key) > 0) {
            return ListError{e.line, "a second entry for '" + key + "'"};
        }
        std::vector<std::string> targets;
        std::string_view rest = std::string_view(e.text).substr(colon + 1);
        while (true) {
            std::size_t comma = rest.find(',');
            std::string_view word = text::trim(rest.substr(0, comma));
            if (!word.empty()) {
                if (word.front() == '|' || word.front() == '/' || word.front() == ':' || word.front() == '"') {
                    return ListError{e.line, "only addresses are supported as targets (commands and files are "
                                             "delivered by routes): '" +
                                                 std::string(word) + "'"};
                }
                std::string target = normal_form(word);
                if (target.empty()) {
                    return ListError{e.line, "not an address: '" + std::string(word) + "'"};
                }
                if (std::find(targets.begin(), targets.end(), target) == targets.end()) {
                    targets.push_back(std::move(target));
                }
            }
            if (comma == std::string_view::npos) {
                break;
            }
            rest.remove_prefix(comma + 1);
        }
        if (targets.empty()) {
            return ListError{e.line, "no targets for '" + key + "'"};
        }
        aliases.m_entries.emplace(std::move(key), std::move(targets));
    }
    return aliases;
}

const std::vector<std::string>* Aliases::lookup(std::string_view address, const IsLocal& is_local) const
{
    std::string key = key_of(address);
    if (auto it = m_entries.find(key); it != m_entries.end()) {
        return &it->second;
    }
    std::string_view domain = domain_of(key);
    if (!domain.empty() && is_local(domain)) {
        if (auto it = m_entries.find(std::string(local_of(key))); it != m_entries.end()) {
            return &it->second;
        }
    }
    return nullptr;
}

bool Aliases::has(std::string_view address, const IsLocal& is_local) const
{
    return lookup(address, is_local) != nullptr;
}

std::variant<std::vector<std::string>, Aliases::Refused> Aliases::expand(std::string_view address,
                                                                         const IsLocal& is_local, std::size_t max,
                                                                         std::string_view default_domain,
                                                                         std::size_t max_steps,
                                                                         std::size_t* steps_taken) const
{
    std::vector<std::string> out;
    std::unordered_set<std::string> emitted; // what out holds
    std::vector<std::string> chain;          // the addresses being expanded, outermost first
    // The alias addresses expanded whole, with their height: the alias levels
    // at and below them (1 for an entry whose targets have no entries). A
    // second path to one of them adds no address (its addresses were emitted
    // the first time) and no loop (a cycle through it would have been found
    // then, whatever path led there); only the depth depends on the path, and
    // the height answers that. So each entry is expanded once, and a file of
    // diamonds (every entry of a level listing every entry of the next) costs
    // its number of targets, not its number of paths.
    std::unordered_map<std::string, std::size_t> expanded;
    std::size_t steps = 0;
    std::optional<Refused> refused;
    auto too_deep = [] { return Refused{"alias expansion deeper than " + std::to_string(k_max_depth) + " levels"}; };
    auto emit = [&](const std::string& a) {
        if (emitted.count(a) == 0) {
            if (out.size() >= max) {
                refused = Refused{"expands to more than " + std::to_string(max) + " addresses"};
                return;
            }
            emitted.insert(a);
            out.push_back(a);
        }
    };
    // Returns the height of addr (0 for an address without an entry).
    std::function<std::size_t(const std::string&)> walk = [&](const std::string& addr) -> std::size_t {
        if (refused) {
            return 0;
        }
        if (++steps > max_steps) {
            refused = Refused{"alias expansion takes more than " + std::to_string(max_steps) + " steps"};
            return 0;
        }
        if (auto done = expanded.find(addr); done != expanded.end()) {
            if (chain.size() + done->second > k_max_depth) {
                refused = too_deep();
            }
            return done->second;
        }
        const std::vector<std::string>* targets = lookup(addr, is_local);
        if (targets == nullptr) {
            emit(addr);
            return 0;
        }
        if (chain.size() >= k_max_depth) {
            refused = too_deep();
            return 0;
        }
        chain.push_back(key_of(addr));
        std::string_view domain = domain_of(addr);
        if (domain.empty()) {
            domain = default_domain;
        }
        std::size_t below = 0;
        for (const std::string& t : *targets) {
            // A bare local part takes the domain of the address it came from.
            std::string target =
                t.find('@') == std::string::npos && !domain.empty() ? t + "@" + std::string(domain) : t;
            if (key_of(target) == key_of(addr)) {
                emit(addr);
            } else if (std::find(chain.begin(), chain.end(), key_of(target)) != chain.end()) {
                refused = Refused{"alias loop through " + target};
            } else {
                below = std::max(below, walk(target));
            }
            if (refused) {
                return 0;
            }
        }
        chain.pop_back();
        expanded.emplace(addr, below + 1);
        return below + 1;
    };
    walk(std::string(address));
    if (steps_taken != nullptr) {
        *steps_taken = steps;
    }
    if (refused) {
        return *refused;
    }
    return out;
}

} // namespace smtpspool
