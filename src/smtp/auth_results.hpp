// auth_results: Authentication-Results hygiene (RFC 8601 §5): a streaming
// filter over a message's header section that takes out every
// Authentication-Results: field claiming our authserv-id, so that nothing
// after us (a milter, a delivery agent, a reader's client) trusts a result a
// stranger wrote in our name (smtpspool(8), Authentication-Results hygiene). Pure.
// It holds back at most one field, of at most limits::k_max_held_header_field
// octets; everything else passes as it comes, the body untouched.
#pragma once

#include "base/limits.hpp"

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace smtpspool {

// The authserv-id an Authentication-Results: field's value claims (RFC 8601
// §2.2: the first value, token or quoted-string, after comments and white
// space), or nullopt when it names none. `value` is what follows the ':'.
std::optional<std::string> authserv_id_of(std::string_view value);

class AuthResultsFilter {
public:
    explicit AuthResultsFilter(std::string authserv_id, std::size_t max_held = limits::k_max_held_header_field);

    // The message's next octets (any chunking); what passes is appended to `out`.
    void feed(std::string_view in, std::string& out);
    // After the last octet: what was still held, if it stays.
    void finish(std::string& out);
    // Fields taken out so far.
    std::size_t removed() const { return m_removed; }

private:
    enum class Mode {
        pass, // the current field goes out as it comes
        name, // a field's name so far is a prefix of Authentication-Results: held
        held, // an Authentication-Results: field, held until its end
        drop, // the rest of a field that is ours
    };
    enum class Claim { ours, other, unknown };
    void octet(char c, std::string& out);
    void end_field(std::string& out);
    Claim claim(bool complete) const;

    std::string m_id; // ours, lower case
    std::size_t m_max;
    bool m_body = false;       // past the header section: everything passes
    bool m_line_start = true;  // the next octet starts a line
    bool m_line_cr = false;    // a line started with CR: blank if LF follows
    Mode m_mode = Mode::pass;
    std::size_t m_name_pos = 0; // octets of the name matched
    std::string m_held;
    std::size_t m_removed = 0;
};

} // namespace smtpspool
