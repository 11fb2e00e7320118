// auth_results: the Authentication-Results: filter; see auth_results.hpp.
#include "smtp/auth_results.hpp"

#include "smtp/smtp_address.hpp"

#include <cstring>

namespace smtpspool {
namespace {

constexpr std::string_view k_name = "authentication-results";

bool is_wsp(char c) { return c == ' ' || c == '\t'; }

char lower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

// RFC 2045 §5.1: token = 1*<any US-ASCII CHAR except SPACE, CTLs, or tspecials>.
bool is_token_char(char c)
{
    auto u = static_cast<unsigned char>(c);
    return u > 0x20 && u < 0x7f && std::strchr("()<>@,;:\\\"/[]?=", c) == nullptr;
}

// What a value claims: the id, or, when the text ends first, nothing yet
// (`cut`: the text may go on).
struct Parsed {
    std::optional<std::string> id;
    bool cut = false;
};

Parsed parse_id(std::string_view v)
{
    std::size_t i = 0;
    int depth = 0;
    // [CFWS]: white space, line ends (folding) and comments, nested, with quoted pairs.
    while (i < v.size()) {
        char c = v[i];
        if (depth > 0) {
            if (c == '\\') {
                ++i;
            } else if (c == '(') {
                ++depth;
            } else if (c == ')') {
                --depth;
            }
            ++i;
        } else if (c == '(') {
            ++depth;
            ++i;
        } else if (is_wsp(c) || c == '\r' || c == '\n') {
            ++i;
        } else {
            break;
        }
    }
    if (i >= v.size()) {
        return {std::nullopt, true};
    }
    std::string id;
    if (v[i] == '"') {
        for (++i; i < v.size(); ++i) {
            if (v[i] == '\\' && i + 1 < v.size()) {
                id += v[++i];
            } else if (v[i] == '"') {
                return {id, false};
            } else if (v[i] != '\r' && v[i] != '\n') {
                id += v[i];
            }
        }
        return {std::nullopt, true};
    }
    while (i < v.size() && is_token_char(v[i])) {
        id += v[i++];
    }
    if (i >= v.size()) {
        return {id.empty() ? std::nullopt : std::optional<std::string>(id), true};
    }
    return {id.empty() ? std::nullopt : std::optional<std::string>(id), false};
}

} // namespace

std::optional<std::string> authserv_id_of(std::string_view value) { return parse_id(value).id; }

AuthResultsFilter::AuthResultsFilter(std::string authserv_id, std::size_t max_held)
    : m_id(ascii_lower(authserv_id)), m_max(max_held)
{
}

// Whose the held field is: `complete` when it has all been read.
AuthResultsFilter::Claim AuthResultsFilter::claim(bool complete) const
{
    std::string_view held = m_held;
    std::size_t colon = held.find(':');
    Parsed p = parse_id(held.substr(colon + 1));
    if (p.cut && !complete) {
        return Claim::unknown;
    }
    if (!p.id) {
        return Claim::other;
    }
    return ascii_lower(*p.id) == m_id ? Claim::ours : Claim::other;
}

void AuthResultsFilter::end_field(std::string& out)
{
    if (m_mode == Mode::held && claim(true) == Claim::ours) {
        ++m_removed;
    } else {
        out += m_held;
    }
    m_held.clear();
    m_mode = Mode::pass;
}

void AuthResultsFilter::octet(char c, std::string& out)
{
    if (m_line_cr) {
        m_line_cr = false;
        if (c == '\n') {
            out += "\r\n";
            m_body = true;
            return;
        }
        out += '\r'; // a line that starts with CR: some field, not ours
        m_mode = Mode::pass;
    } else if (m_line_start) {
        m_line_start = false;
        if (c == '\n') {
            end_field(out);
            out += c;
            m_body = true;
            return;
        }
        if (c == '\r') {
            end_field(out);
            m_line_cr = true;
            return;
        }
        if (!is_wsp(c)) {
            // A new field; white space continues the current one.
            end_field(out);
            m_mode = Mode::name;
            m_name_pos = 0;
        }
    }
    switch (m_mode) {
    case Mode::pass:
        out += c;
        break;
    case Mode::drop:
        break;
    case Mode::name:
        m_held += c;
        if (m_name_pos < k_name.size() && lower(c) == k_name[m_name_pos]) {
            ++m_name_pos;
        } else if (m_name_pos == k_name.size() && c == ':') {
            m_mode = Mode::held;
        } else if (!(m_name_pos == k_name.size() && is_wsp(c))) {
            out += m_held; // another field
            m_held.clear();
            m_mode = Mode::pass;
        }
        break;
    case Mode::held:
        m_held += c;
        if (m_held.size() > m_max) {
            // Decided on what is held: a field whose id is not known by now
            // goes too (a long comment cannot hide a claim of ours).
            if (claim(false) == Claim::other) {
                out += m_held;
                m_mode = Mode::pass;
            } else {
                ++m_removed;
                m_mode = Mode::drop;
            }
            m_held.clear();
        }
        break;
    }
    if (c == '\n') {
        m_line_start = true;
    }
}

void AuthResultsFilter::feed(std::string_view in, std::string& out)
{
    std::size_t i = 0;
    for (; i < in.size() && !m_body; ++i) {
        octet(in[i], out);
    }
    if (m_body) {
        out.append(in.substr(i));
    }
}

void AuthResultsFilter::finish(std::string& out)
{
    if (m_body) {
        return;
    }
    if (m_line_cr) {
        m_line_cr = false;
        out += '\r';
        return;
    }
    end_field(out);
}

} // namespace smtpspool
