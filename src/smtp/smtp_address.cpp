// smtp_address: the Path grammar of RFC 5321 §4.1.2 and RFC 6531 §3.3.
#include "smtp/smtp_address.hpp"

#include "base/limits.hpp"
#include "base/text.hpp"

#include <algorithm>
#include <arpa/inet.h>

namespace smtpspool {
namespace {

bool is_alpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_high(char c) { return static_cast<unsigned char>(c) >= 0x80; }

// RFC 5322 §3.2.3 atext.
bool is_atext(char c)
{
    if (is_alpha(c) || is_digit(c)) {
        return true;
    }
    switch (c) {
    case '!':
    case '#':
    case '$':
    case '%':
    case '&':
    case '\'':
    case '*':
    case '+':
    case '-':
    case '/':
    case '=':
    case '?':
    case '^':
    case '_':
    case '`':
    case '{':
    case '|':
    case '}':
    case '~':
        return true;
    default:
        return false;
    }
}

bool is_ipv4(std::string_view s)
{
    int parts = 0;
    std::size_t i = 0;
    while (parts < 4) {
        std::size_t start = i;
        unsigned value = 0;
        while (i < s.size() && is_digit(s[i]) && i - start < 3) {
            value = value * 10 + static_cast<unsigned>(s[i] - '0');
            ++i;
        }
        if (i == start || value > 255 || (i < s.size() && is_digit(s[i]))) {
            return false;
        }
        ++parts;
        if (parts < 4) {
            if (i >= s.size() || s[i] != '.') {
                return false;
            }
            ++i;
        }
    }
    return i == s.size();
}

struct Cursor {
    std::string_view s;
    std::size_t i = 0;
    bool at_end() const { return i >= s.size(); }
    char peek() const { return at_end() ? '\0' : s[i]; }
};

// Consumes one octet of atext, or one UTF-8 character; false if neither.
bool take_atext(Cursor& c, bool& non_ascii)
{
    if (c.at_end()) {
        return false;
    }
    if (is_atext(c.s[c.i])) {
        ++c.i;
        return true;
    }
    if (std::size_t n = utf8_sequence(c.s, c.i); n != 0) {
        c.i += n;
        non_ascii = true;
        return true;
    }
    return false;
}

bool take_dot_string(Cursor& c, bool& non_ascii)
{
    for (;;) {
        if (!take_atext(c, non_ascii)) {
            return false;
        }
        while (take_atext(c, non_ascii)) {
        }
        if (c.peek() != '.') {
            return true;
        }
        ++c.i;
    }
}

bool take_quoted_string(Cursor& c, bool& non_ascii)
{
    ++c.i; // opening DQUOTE
    while (!c.at_end()) {
        auto u = static_cast<unsigned char>(c.s[c.i]);
        if (u == '"') {
            ++c.i;
            return true;
        }
        if (u == '\\') {
            // quoted-pairSMTP = %d92 %d32-126
            if (c.i + 1 >= c.s.size()) {
                return false;
            }
            auto v = static_cast<unsigned char>(c.s[c.i + 1]);
            if (v < 32 || v > 126) {
                return false;
            }
            c.i += 2;
        } else if (u >= 32 && u <= 126) {
            ++c.i; // qtextSMTP: %d32-33 / %d35-91 / %d93-126
        } else if (std::size_t n = utf8_sequence(c.s, c.i); n != 0) {
            c.i += n;
            non_ascii = true;
        } else {
            return false;
        }
    }
    return false;
}

// The extent of a domain or address literal starting at c.i, up to a
// delimiter in `stop`.
std::string_view take_until(Cursor& c, std::string_view stop)
{
    std::size_t start = c.i;
    if (c.peek() == '[') {
        while (!c.at_end() && c.s[c.i] != ']') {
            ++c.i;
        }
        if (!c.at_end()) {
            ++c.i;
        }
    } else {
        while (!c.at_end() && stop.find(c.s[c.i]) == std::string_view::npos) {
            ++c.i;
        }
    }
    return c.s.substr(start, c.i - start);
}

PathParse fail(PathError e, std::string why)
{
    PathParse p;
    p.error = e;
    p.why = std::move(why);
    return p;
}

} // namespace

std::size_t utf8_sequence(std::string_view text, std::size_t i)
{
    auto at = [&](std::size_t k) { return static_cast<unsigned char>(text[k]); };
    unsigned char b0 = at(i);
    std::size_t n = 0;
    unsigned lo = 0x80, hi = 0xbf;
    if (b0 >= 0xc2 && b0 <= 0xdf) {
        n = 2;
    } else if (b0 >= 0xe0 && b0 <= 0xef) {
        n = 3;
        if (b0 == 0xe0) {
            lo = 0xa0; // no overlong forms
        } else if (b0 == 0xed) {
            hi = 0x9f; // no surrogates
        }
    } else if (b0 >= 0xf0 && b0 <= 0xf4) {
        n = 4;
        if (b0 == 0xf0) {
            lo = 0x90;
        } else if (b0 == 0xf4) {
            hi = 0x8f;
        }
    } else {
        return 0;
    }
    if (i + n > text.size()) {
        return 0;
    }
    if (at(i + 1) < lo || at(i + 1) > hi) {
        return 0;
    }
    for (std::size_t k = 2; k < n; ++k) {
        if (at(i + k) < 0x80 || at(i + k) > 0xbf) {
            return 0;
        }
    }
    return n;
}

bool is_domain(std::string_view text)
{
    if (text.empty() || text.size() > limits::k_max_domain) {
        return false;
    }
    std::size_t i = 0;
    for (;;) {
        // sub-domain = Let-dig [Ldh-str], or a U-label (RFC 6531 §3.3).
        std::size_t start = i;
        char last = '\0';
        while (i < text.size() && text[i] != '.') {
            char c = text[i];
            if (is_alpha(c) || is_digit(c)) {
                ++i;
            } else if (c == '-' && i != start) {
                ++i;
            } else if (is_high(c)) {
                std::size_t n = utf8_sequence(text, i);
                if (n == 0) {
                    return false;
                }
                i += n;
            } else {
                return false;
            }
            last = c;
        }
        if (i == start || last == '-' || i - start > limits::k_max_label) {
            return false;
        }
        if (i == text.size()) {
            return true;
        }
        ++i; // '.'
    }
}

bool is_address_literal(std::string_view text)
{
    if (text.size() < 3 || text.front() != '[' || text.back() != ']') {
        return false;
    }
    std::string_view inner = text.substr(1, text.size() - 2);
    constexpr std::string_view v6 = "IPv6:";
    if (inner.size() > v6.size() && ascii_lower(inner.substr(0, v6.size())) == "ipv6:") {
        std::string addr(inner.substr(v6.size()));
        // inet_pton stops at a NUL: only hex digits, ':' and '.' may reach it.
        for (char c : addr) {
            bool hex = is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
            if (!hex && c != ':' && c != '.') {
                return false;
            }
        }
        unsigned char buf[16];
        return inet_pton(AF_INET6, addr.c_str(), buf) == 1;
    }
    return is_ipv4(inner);
}

std::string ascii_lower(std::string_view text)
{
    std::string out(text);
    for (char& c : out) {
        if (c >= 'A' && c <= 'Z') {
            c = static_cast<char>(c - 'A' + 'a');
        }
    }
    return out;
}

PathParse parse_path(std::string_view text, PathKind kind)
{
    Cursor c{text};
    if (c.peek() != '<') {
        return fail(PathError::syntax, "address must be enclosed in <>");
    }
    ++c.i;
    if (c.peek() == '>') {
        if (kind == PathKind::forward) {
            return fail(PathError::syntax, "empty recipient address");
        }
        PathParse p;
        p.end = c.i + 1;
        return p;
    }
    // A-d-l ":" (source route, RFC 5321 §4.1.2 and Appendix C): parsed, then dropped.
    if (c.peek() == '@') {
        for (;;) {
            ++c.i; // '@'
            std::string_view hop = take_until(c, ",:>");
            if (!is_domain(hop) && !is_address_literal(hop)) {
                return fail(PathError::syntax, "bad domain in source route");
            }
            if (c.peek() == ',' && c.i + 1 < text.size() && text[c.i + 1] == '@') {
                ++c.i;
                continue;
            }
            if (c.peek() != ':') {
                return fail(PathError::syntax, "bad source route");
            }
            ++c.i;
            break;
        }
    }
    PathParse p;
    std::size_t local_start = c.i;
    bool ok = c.peek() == '"' ? take_quoted_string(c, p.path.non_ascii) : take_dot_string(c, p.path.non_ascii);
    if (!ok) {
        return fail(PathError::syntax, "bad local part");
    }
    p.path.local = std::string(text.substr(local_start, c.i - local_start));
    if (c.peek() == '>' && kind == PathKind::forward && text[local_start] != '"' &&
        ascii_lower(p.path.local) == "postmaster") {
        // RFC 5321 §4.1.1.3: <Postmaster> without a domain.
        p.path.mailbox = p.path.local;
        p.end = c.i + 1;
        return p;
    }
    if (c.peek() != '@') {
        return fail(PathError::syntax, "address needs a domain");
    }
    ++c.i;
    std::string_view domain = take_until(c, ">");
    if (c.peek() != '>') {
        return fail(PathError::syntax, "missing closing >");
    }
    if (domain.empty()) {
        return fail(PathError::syntax, "empty domain");
    }
    if (domain.front() == '[' ? !is_address_literal(domain) : !is_domain(domain)) {
        if (domain.front() != '[' && domain.size() > limits::k_max_domain) {
            return fail(PathError::too_long, "domain longer than 255 octets");
        }
        return fail(PathError::syntax, "bad domain");
    }
    if (domain.front() != '[') {
        for (std::size_t k = 0; k < domain.size(); ++k) {
            if (is_high(domain[k])) {
                p.path.non_ascii = true;
                break;
            }
        }
    }
    p.path.domain = std::string(domain);
    p.end = c.i + 1;
    // RFC 5321 §4.5.3.1.
    if (p.path.local.size() > limits::k_max_local_part) {
        return fail(PathError::too_long, "local part longer than 64 octets");
    }
    if (p.end > limits::k_max_path) {
        return fail(PathError::too_long, "path longer than 256 octets");
    }
    if (text::has_invisible_control(p.path.local) || text::has_invisible_control(p.path.domain)) {
        return fail(PathError::invisible_control, "address holds a control or bidirectional formatting character");
    }
    p.path.mailbox = p.path.local + "@" + p.path.domain;
    return p;
}

std::string canonical_local_part(std::string_view local)
{
    std::string out;
    out.reserve(local.size());
    if (local.size() >= 2 && local.front() == '"' && local.back() == '"') {
        std::string_view inner = local.substr(1, local.size() - 2);
        for (std::size_t i = 0; i < inner.size(); ++i) {
            if (inner[i] == '\\' && i + 1 < inner.size()) {
                ++i;
            }
            out += inner[i];
        }
    } else {
        out = local;
    }
    return ascii_lower(out);
}

std::string canonical_mailbox(std::string_view local, std::string_view domain)
{
    std::string canonical = canonical_local_part(local);
    Cursor c{canonical};
    bool non_ascii = false;
    if (canonical.empty() || !take_dot_string(c, non_ascii) || !c.at_end()) {
        std::string quoted = "\"";
        for (char ch : canonical) {
            if (ch == '"' || ch == '\\') {
                quoted += '\\';
            }
            quoted += ch;
        }
        canonical = quoted + "\"";
    }
    return domain.empty() ? canonical : canonical + "@" + ascii_lower(domain);
}

bool has_routing_character(std::string_view local)
{
    // The characters whose NFKC form holds '@', '%' or '!', in UTF-8.
    static constexpr std::string_view k_lookalikes[] = {
        "\xef\xbc\xa0", // U+FF20 fullwidth commercial at
        "\xef\xb9\xab", // U+FE6B small commercial at
        "\xef\xbc\x85", // U+FF05 fullwidth percent sign
        "\xef\xb9\xaa", // U+FE6A small percent sign
        "\xef\xbc\x81", // U+FF01 fullwidth exclamation mark
        "\xef\xb9\x97", // U+FE57 small exclamation mark
        "\xef\xb8\x95", // U+FE15 vertical exclamation mark
        "\xe2\x80\xbc", // U+203C double exclamation mark
        "\xe2\x81\x88", // U+2048 question exclamation mark
        "\xe2\x81\x89", // U+2049 exclamation question mark
    };
    std::string canonical = canonical_local_part(local);
    if (canonical.find_first_of("%!@") != std::string::npos) {
        return true;
    }
    return std::any_of(std::begin(k_lookalikes), std::end(k_lookalikes),
                       [&](std::string_view l) { return canonical.find(l) != std::string::npos; });
}

bool is_local_domain(std::string_view domain, const std::vector<std::string>& local_domains)
{
    // Per RCPT: compared in place, without a lower-cased copy of each name.
    auto lower = [](char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; };
    return std::any_of(local_domains.begin(), local_domains.end(), [&](const std::string& l) {
        return l.size() == domain.size() &&
               std::equal(l.begin(), l.end(), domain.begin(), [&](char a, char b) { return lower(a) == lower(b); });
    });
}

} // namespace smtpspool
