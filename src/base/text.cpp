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

bool needs_quotes(std::string_view value)
{
    return value.empty() || std::any_of(value.begin(), value.end(), [](char c) {
               auto u = static_cast<unsigned char>(c);
               return u <= 0x20 || u >= 0x7f || c == '"' || c == '=' || c == '\\';
           });
}

} // namespace

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
    for (char& c : out) {
        if (control(static_cast<unsigned char>(c))) {
            c = ' ';
        }
    }
    return out;
}

std::string detail_line(std::string_view text, std::size_t max)
{
    std::size_t n = text.size() > max ? utf8_prefix(text, max >= 3 ? max - 3 : 0) : text.size();
    std::string out(text.substr(0, n));
    for (char& c : out) {
        if (control(static_cast<unsigned char>(c))) {
            c = '?';
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
    for (char c : text) {
        auto u = static_cast<unsigned char>(c);
        if (c == '"' || c == '\\') {
            out += '\\';
            out += c;
        } else if (u < 0x20 || u >= 0x7f) {
            append_hex(out, u);
        } else {
            out += c;
        }
    }
    out += '"';
}

std::string log_value(std::string_view text)
{
    std::string out;
    append_log_value(out, text);
    return out;
}

std::string terminal_text(std::string_view text)
{
    std::string out;
    out.reserve(text.size());
    for (char c : text) {
        auto u = static_cast<unsigned char>(c);
        if (u < 0x20 || u >= 0x7f || c == '\\') {
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
