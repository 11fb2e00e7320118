// address_list: the lists policy files hold (smtpspool(8), POLICY): senders to
// refuse (--sender-deny) and local users (--local-users). Pure: text in,
// lookups out; main reads the files.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_set>
#include <variant>

namespace smtpspool {

// A line of a policy file that could not be read.
struct ListError {
    std::size_t line = 0;
    std::string message;
};

// The lines of a policy file (the sender deny list, the local users, the
// aliases): '#' starts a comment at the start of a line or after a space or a
// tab; what is left is trimmed of spaces and tabs (and the CR of a CRLF line
// end); lines left empty are skipped. Calls f(line_number, text, indented),
// indented when the line began with a space or a tab (an aliases continuation).
template <typename F>
void for_each_line(std::string_view text, F&& f);

// The same, for files without continuation lines: calls f(line_number, text).
template <typename F>
void for_each_entry(std::string_view text, F&& f);

// --sender-deny: "user@domain", "@domain" (that domain) or "@.domain" (its
// subdomains, not the domain itself), one per line. Domains and local parts
// compare without regard to ASCII case.
class SenderList {
public:
    static std::variant<SenderList, ListError> parse(std::string_view text);
    // The null sender (empty address) never matches.
    bool matches(std::string_view address) const;
    std::size_t size() const { return m_addresses.size() + m_domains.size() + m_parents.size(); }

private:
    std::unordered_set<std::string> m_addresses;
    std::unordered_set<std::string> m_domains;
    std::unordered_set<std::string> m_parents; // "example.com" for "@.example.com"
};

// --local-users: one local part per line; entries and the local parts looked
// up are compared in their canonical form (canonical_local_part: unquoted,
// ASCII lower case).
class LocalUsers {
public:
    static std::variant<LocalUsers, ListError> parse(std::string_view text);
    bool contains(std::string_view local_part) const;
    std::size_t size() const { return m_users.size(); }

private:
    std::unordered_set<std::string> m_users;
};

// --- implementation of the template ---

template <typename F>
void for_each_line(std::string_view text, F&& f)
{
    std::size_t number = 0;
    while (!text.empty()) {
        ++number;
        std::size_t nl = text.find('\n');
        std::string_view line = text.substr(0, nl);
        text.remove_prefix(nl == std::string_view::npos ? text.size() : nl + 1);
        bool indented = !line.empty() && (line.front() == ' ' || line.front() == '\t');
        for (std::size_t i = 0; i < line.size(); ++i) {
            if (line[i] == '#' && (i == 0 || line[i - 1] == ' ' || line[i - 1] == '\t')) {
                line = line.substr(0, i);
                break;
            }
        }
        while (!line.empty() && (line.back() == ' ' || line.back() == '\t' || line.back() == '\r')) {
            line.remove_suffix(1);
        }
        while (!line.empty() && (line.front() == ' ' || line.front() == '\t')) {
            line.remove_prefix(1);
        }
        if (!line.empty()) {
            f(number, line, indented);
        }
    }
}

template <typename F>
void for_each_entry(std::string_view text, F&& f)
{
    for_each_line(text, [&](std::size_t number, std::string_view line, bool) { f(number, line); });
}

} // namespace smtpspool
