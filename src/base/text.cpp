// text: the named sanitizers (contracts in text.hpp).
#include "base/text.hpp"

#include <algorithm>

namespace smtpspool::text {
namespace {

constexpr char k_hex[] = "0123456789abcdef";

bool control(unsigned char u) { return u < 0x20 || u == 0x7f; }

// The length of the longest prefix of `text` of at most `max` octets that
// does not end inside a UTF-8 character: the cut is moved back while the
// octet after it is a continuation octet (10xxxxxx).
std::size_t utf8_prefix(std::string_view text, std::size_t max)
{
    if (text.size() <= max) {
        return text.size();
    }
    std::size_t n = max;
    while (n > 0 && (static_cast<unsigned char>(text[n]) & 0xC0) == 0x80) {
        --n;
    }
    return n;
}

void append_hex(std::string& out, unsigned char u)
{
    const char esc[4] = {'\\', 'x', k_hex[u >> 4], k_hex[u & 0xf]};
    out.append(esc, sizeof esc);
}

// The length of the well-formed UTF-8 character (RFC 3629) at text[i]: no
// overlong form, no surrogate, nothing over U+10FFFF; 0 when the octets there
// are not one.
std::size_t utf8_length(std::string_view text, std::size_t i)
{
    auto at = [&](std::size_t k) -> unsigned { return k < text.size() ? static_cast<unsigned char>(text[k]) : 0U; };
    const unsigned u = at(i);
    std::size_t n = 0;
    unsigned lo = 0x80; // the second octet's range
    unsigned hi = 0xbf;
    if (u >= 0xc2 && u <= 0xdf) {
        n = 2;
    } else if (u >= 0xe0 && u <= 0xef) {
        n = 3;
        lo = u == 0xe0 ? 0xa0 : lo; // overlong
        hi = u == 0xed ? 0x9f : hi; // surrogates
    } else if (u >= 0xf0 && u <= 0xf4) {
        n = 4;
        lo = u == 0xf0 ? 0x90 : lo; // overlong
        hi = u == 0xf4 ? 0x8f : hi; // over U+10FFFF
    } else {
        return 0;
    }
    for (std::size_t k = 1; k < n; ++k) {
        const unsigned c = at(i + k);
        if (c < (k == 1 ? lo : 0x80U) || c > (k == 1 ? hi : 0xbfU)) {
            return 0;
        }
    }
    return n;
}

// The length of the character at text[i] (an octet >= 0x80) that the UTF-8
// sanitizers keep: a well-formed one that is no invisible control; 0 when
// its octets are to be escaped.
std::size_t kept_utf8(std::string_view text, std::size_t i)
{
    const std::size_t n = utf8_length(text, i);
    return n != 0 && invisible_control(text, i) == 0 ? n : 0;
}

bool needs_quotes(std::string_view value)
{
    return value.empty() || std::any_of(value.begin(), value.end(), [](char c) {
               auto u = static_cast<unsigned char>(c);
               return u <= 0x20 || u >= 0x7f || c == '"' || c == '=' || c == '\\';
           });
}

// The UTF-8 forms of the invisible controls beyond the C1 range, all three
// octets long.
constexpr std::string_view k_invisible3[] = {
    "\xe2\x80\x8e", "\xe2\x80\x8f",                                     // U+200E, U+200F
    "\xe2\x80\xa8", "\xe2\x80\xa9",                                     // U+2028, U+2029
    "\xe2\x80\xaa", "\xe2\x80\xab", "\xe2\x80\xac", "\xe2\x80\xad", "\xe2\x80\xae", // U+202A-U+202E
    "\xe2\x81\xa6", "\xe2\x81\xa7", "\xe2\x81\xa8", "\xe2\x81\xa9",                   // U+2066-U+2069
};

// The code point of a 2-, 3- or 4-octet UTF-8 sequence.
unsigned code_point(std::string_view seq)
{
    auto at = [&](std::size_t k) { return static_cast<unsigned>(static_cast<unsigned char>(seq[k])); };
    if (seq.size() == 2) {
        return ((at(0) & 0x1f) << 6) | (at(1) & 0x3f);
    }
    if (seq.size() == 4) {
        return ((at(0) & 0x07) << 18) | ((at(1) & 0x3f) << 12) | ((at(2) & 0x3f) << 6) | (at(3) & 0x3f);
    }
    return ((at(0) & 0x0f) << 12) | ((at(1) & 0x3f) << 6) | (at(2) & 0x3f);
}

} // namespace

std::size_t invisible_control(std::string_view text, std::size_t i)
{
    std::string_view rest = text.substr(std::min(i, text.size()));
    if (rest.size() >= 2) {
        auto a = static_cast<unsigned char>(rest[0]);
        auto b = static_cast<unsigned char>(rest[1]);
        if (a == 0xc2 && b >= 0x80 && b <= 0x9f) {
            return 2; // C1
        }
        if (a == 0xd8 && b == 0x9c) {
            return 2; // U+061C arabic letter mark
        }
    }
    for (std::string_view seq : k_invisible3) {
        if (rest.substr(0, seq.size()) == seq) {
            return seq.size();
        }
    }
    return 0;
}

bool has_invisible_control(std::string_view text)
{
    for (std::size_t i = 0; i < text.size(); ++i) {
        if (invisible_control(text, i) != 0) {
            return true;
        }
    }
    return false;
}

std::string header_word(std::string_view text)
{
    std::string out(text.substr(0, k_max_header_word));
    for (char& c : out) {
        auto u = static_cast<unsigned char>(c);
        bool ok =
            u > 0x20 && u < 0x7f && c != '(' && c != ')' && c != '[' && c != ']' && c != '\\' && c != ';' && c != '"';
        if (!ok) {
            c = '?';
        }
    }
    return out;
}

std::string header_value(std::string_view text)
{
    std::string out(text.substr(0, utf8_prefix(text, k_max_header_value)));
    for (std::size_t i = 0; i < out.size(); ++i) {
        if (std::size_t n = invisible_control(out, i); n != 0) {
            out.replace(i, n, n, ' ');
            i += n - 1;
        } else if (control(static_cast<unsigned char>(out[i]))) {
            out[i] = ' ';
        }
    }
    return out;
}

std::string detail_line(std::string_view text, std::size_t max)
{
    std::size_t n = text.size() > max ? utf8_prefix(text, max >= 3 ? max - 3 : 0) : text.size();
    std::string out(text.substr(0, n));
    for (std::size_t i = 0; i < out.size(); ++i) {
        if (std::size_t k = invisible_control(out, i); k != 0) {
            out.replace(i, k, k, '?');
            i += k - 1;
        } else if (control(static_cast<unsigned char>(out[i]))) {
            out[i] = '?';
        }
    }
    if (n < text.size()) {
        out.append(std::min<std::size_t>(3, max - out.size()), '.');
    }
    return out;
}

std::string printable_line(std::string_view text, std::size_t max)
{
    std::string line(text.substr(0, std::min(text.find('\n'), max)));
    for (char& c : line) {
        auto u = static_cast<unsigned char>(c);
        if (u < 0x20 || u >= 0x7f) {
            c = '?';
        }
    }
    return line;
}

std::string printable_tail(std::string_view text, std::size_t max)
{
    std::string tail(text.size() > max ? text.substr(text.size() - max) : text);
    for (char& c : tail) {
        if (control(static_cast<unsigned char>(c))) {
            c = ' ';
        }
    }
    while (!tail.empty() && tail.back() == ' ') {
        tail.pop_back();
    }
    return tail;
}

void append_log_value(std::string& out, std::string_view text)
{
    if (!needs_quotes(text)) {
        out += text;
        return;
    }
    out += '"';
    for (std::size_t i = 0; i < text.size();) {
        const char c = text[i];
        auto u = static_cast<unsigned char>(c);
        if (c == '"' || c == '\\') {
            out += '\\';
            out += c;
        } else if (u >= 0x80) {
            if (std::size_t n = kept_utf8(text, i)) {
                out.append(text.substr(i, n));
                i += n;
                continue;
            }
            append_hex(out, u);
        } else if (u < 0x20 || u == 0x7f) {
            append_hex(out, u);
        } else {
            out += c;
        }
        ++i;
    }
    out += '"';
}

std::string log_value(std::string_view text)
{
    std::string out;
    append_log_value(out, text);
    return out;
}

namespace {

// Octets as they are, except controls, DEL, '\\' and (unless keep_utf8 and
// they make well-formed UTF-8 that is no invisible control) those above 0x7f,
// which are written \xNN.
std::string terminal_escape(std::string_view text, bool keep_utf8)
{
    std::string out;
    out.reserve(text.size());
    for (std::size_t i = 0; i < text.size();) {
        auto u = static_cast<unsigned char>(text[i]);
        if (keep_utf8 && u >= 0x80) {
            if (std::size_t n = kept_utf8(text, i)) {
                out.append(text.substr(i, n));
                i += n;
                continue;
            }
        }
        if (u < 0x20 || u >= 0x7f || u == '\\') {
            append_hex(out, u);
        } else {
            out += static_cast<char>(u);
        }
        ++i;
    }
    return out;
}

} // namespace

std::string terminal_text(std::string_view text) { return terminal_escape(text, false); }

std::string json_text(std::string_view json)
{
    std::string out;
    out.reserve(json.size());
    for (std::size_t i = 0; i < json.size(); ++i) {
        std::size_t n = json[i] == '\x7f' ? 1 : invisible_control(json, i);
        if (n == 0) {
            out += json[i];
            continue;
        }
        unsigned cp = n == 1 ? 0x7f : code_point(json.substr(i, n));
        const char esc[6] = {'\\', 'u', k_hex[(cp >> 12) & 0xf], k_hex[(cp >> 8) & 0xf], k_hex[(cp >> 4) & 0xf],
                             k_hex[cp & 0xf]};
        out.append(esc, sizeof esc);
        i += n - 1;
    }
    return out;
}

std::string terminal_text_utf8(std::string_view text) { return terminal_escape(text, true); }

std::string metric_label_value(std::string_view text)
{
    std::string out;
    out.reserve(text.size());
    for (std::size_t i = 0; i < text.size();) {
        auto u = static_cast<unsigned char>(text[i]);
        if (u >= 0x80) {
            std::size_t n = kept_utf8(text, i);
            if (n == 0) {
                n = std::max<std::size_t>(1, invisible_control(text, i));
                out.append(n, '?');
            } else {
                out.append(text.substr(i, n));
            }
            i += n;
            continue;
        }
        if (u == '\\' || u == '"') {
            out += '\\';
            out += static_cast<char>(u);
        } else if (u == '\n') {
            out += "\\n";
        } else {
            out += control(u) ? '?' : static_cast<char>(u);
        }
        ++i;
    }
    return out;
}

void append_json_string(std::string& out, std::string_view text, bool ascii)
{
    auto unicode_escape = [&out](unsigned cp) {
        const char esc[6] = {'\\', 'u', k_hex[(cp >> 12) & 0xf], k_hex[(cp >> 8) & 0xf], k_hex[(cp >> 4) & 0xf],
                             k_hex[cp & 0xf]};
        out.append(esc, sizeof esc);
    };
    out += '"';
    for (std::size_t i = 0; i < text.size();) {
        auto u = static_cast<unsigned char>(text[i]);
        if (u >= 0x80) {
            const std::size_t n = utf8_length(text, i);
            if (n == 0) {
                out += "\\\\x"; // the decoded string reads \xNN
                out += k_hex[u >> 4];
                out += k_hex[u & 0xf];
                ++i;
                continue;
            }
            if (ascii || invisible_control(text, i) != 0) {
                const unsigned cp = code_point(text.substr(i, n));
                if (cp > 0xffff) {
                    unicode_escape(0xd800 + ((cp - 0x10000) >> 10));
                    unicode_escape(0xdc00 + ((cp - 0x10000) & 0x3ff));
                } else {
                    unicode_escape(cp);
                }
            } else {
                out.append(text.substr(i, n));
            }
            i += n;
            continue;
        }
        if (u == '\\') {
            out += "\\\\x5c";
        } else if (u == '"') {
            out += "\\\"";
        } else if (control(u)) {
            unicode_escape(u);
        } else {
            out += static_cast<char>(u);
        }
        ++i;
    }
    out += '"';
}

std::string json_string(std::string_view text, bool ascii)
{
    std::string out;
    out.reserve(text.size() + 2);
    append_json_string(out, text, ascii);
    return out;
}

std::string log_line_ascii(std::string_view line)
{
    std::string out;
    out.reserve(line.size());
    for (char c : line) {
        auto u = static_cast<unsigned char>(c);
        if (u >= 0x80) {
            append_hex(out, u);
        } else {
            out += c;
        }
    }
    return out;
}

std::string file_name_component(std::string_view text)
{
    std::string out;
    out.reserve(text.size());
    for (char c : text) {
        if (c == '"') {
            continue;
        }
        out += control(static_cast<unsigned char>(c)) || c == '/' || c == '\\' ? '_' : c;
    }
    for (std::size_t i = 0; i < out.size() && out[i] == '.'; ++i) {
        out[i] = '_'; // no ".", ".." or hidden names
    }
    return out.empty() ? "_" : out;
}

namespace {

template <typename Blank>
std::string_view trim_if(std::string_view text, Blank blank)
{
    while (!text.empty() && blank(text.front())) {
        text.remove_prefix(1);
    }
    while (!text.empty() && blank(text.back())) {
        text.remove_suffix(1);
    }
    return text;
}

} // namespace

std::string_view trim(std::string_view text)
{
    return trim_if(text, [](char c) { return c == ' ' || c == '\t'; });
}

std::string_view trim_space(std::string_view text)
{
    return trim_if(text, [](char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; });
}

} // namespace smtpspool::text
