// dsn: RFC 3461 §4 parameter values (xtext, NOTIFY, ORCPT, ENVID). Written for
// this project from the RFC's grammar.
#include "smtp/dsn.hpp"

#include "base/limits.hpp"

#include <algorithm>

namespace smtpspool {
namespace {

int hex_value(char c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return -1; // RFC 3461 §4: hexchar uses upper-case digits only
}

bool is_xchar(char c) { return c >= '!' && c <= '~' && c != '+' && c != '='; }

bool printable_ascii(std::string_view s)
{
    return std::all_of(s.begin(), s.end(), [](char c) { return c >= ' ' && c <= '~'; });
}

std::string upper(std::string_view s)
{
    std::string out(s);
    for (char& c : out) {
        if (c >= 'a' && c <= 'z') {
            c = static_cast<char>(c - 'a' + 'A');
        }
    }
    return out;
}

// RFC 5322 §3.2.3 atext (addr-type = atom, RFC 3461 §4.2).
bool is_atext(char c)
{
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) {
        return true;
    }
    return std::string_view("!#$%&'*+-/=?^_`{|}~").find(c) != std::string_view::npos;
}

} // namespace

std::optional<std::string> xtext_decode(std::string_view text)
{
    std::string out;
    out.reserve(text.size());
    for (std::size_t i = 0; i < text.size(); ++i) {
        char c = text[i];
        if (c == '+') {
            if (i + 2 >= text.size()) {
                return std::nullopt;
            }
            int hi = hex_value(text[i + 1]);
            int lo = hex_value(text[i + 2]);
            if (hi < 0 || lo < 0) {
                return std::nullopt;
            }
            out.push_back(static_cast<char>(hi * 16 + lo));
            i += 2;
        } else if (is_xchar(c)) {
            out.push_back(c);
        } else {
            return std::nullopt;
        }
    }
    return out;
}

std::string xtext_encode(std::string_view octets)
{
    constexpr char digits[] = "0123456789ABCDEF";
    std::string out;
    out.reserve(octets.size());
    for (char c : octets) {
        if (is_xchar(c)) {
            out.push_back(c);
        } else {
            auto u = static_cast<unsigned char>(c);
            out.push_back('+');
            out.push_back(digits[u >> 4]);
            out.push_back(digits[u & 0xf]);
        }
    }
    return out;
}

std::optional<std::vector<std::string>> parse_notify(std::string_view value, std::string& why)
{
    std::vector<std::string> keywords;
    for (;;) {
        std::size_t comma = value.find(',');
        std::string word = upper(value.substr(0, comma));
        if (word != "NEVER" && word != "SUCCESS" && word != "FAILURE" && word != "DELAY") {
            why = "NOTIFY must be NEVER or a list of SUCCESS, FAILURE, DELAY";
            return std::nullopt;
        }
        if (std::find(keywords.begin(), keywords.end(), word) != keywords.end()) {
            why = "NOTIFY names " + word + " twice";
            return std::nullopt;
        }
        keywords.push_back(std::move(word));
        if (comma == std::string_view::npos) {
            break;
        }
        value.remove_prefix(comma + 1);
    }
    if (keywords.size() > 1 && std::find(keywords.begin(), keywords.end(), "NEVER") != keywords.end()) {
        why = "NOTIFY=NEVER cannot be combined with other values";
        return std::nullopt;
    }
    return keywords;
}

std::optional<std::string> parse_orcpt(std::string_view value, std::string& why)
{
    why = "ORCPT must be addr-type;xtext";
    if (value.size() > limits::k_max_orcpt) {
        why = "ORCPT is longer than " + std::to_string(limits::k_max_orcpt) + " characters";
        return std::nullopt;
    }
    std::size_t semi = value.find(';');
    if (semi == std::string_view::npos || semi == 0 || semi + 1 == value.size()) {
        return std::nullopt;
    }
    std::string_view type = value.substr(0, semi);
    if (!std::all_of(type.begin(), type.end(), is_atext)) {
        return std::nullopt;
    }
    auto address = xtext_decode(value.substr(semi + 1));
    if (!address || !printable_ascii(*address)) {
        return std::nullopt;
    }
    return std::string(type) + ";" + *address;
}

std::optional<std::string> parse_envid(std::string_view value, std::string& why)
{
    if (value.size() > limits::k_max_envid) {
        why = "ENVID is longer than " + std::to_string(limits::k_max_envid) + " characters";
        return std::nullopt;
    }
    auto id = xtext_decode(value);
    if (value.empty() || !id || !printable_ascii(*id)) {
        why = "ENVID must be xtext of printable ASCII";
        return std::nullopt;
    }
    return id;
}

std::string orcpt_parameter(std::string_view stored)
{
    std::size_t semi = stored.find(';');
    if (semi == std::string_view::npos) {
        return "rfc822;" + xtext_encode(stored);
    }
    return std::string(stored.substr(0, semi + 1)) + xtext_encode(stored.substr(semi + 1));
}

bool notify_failure(const std::optional<std::vector<std::string>>& notify)
{
    return !notify || std::find(notify->begin(), notify->end(), "FAILURE") != notify->end();
}

bool notify_success(const std::optional<std::vector<std::string>>& notify)
{
    return notify && std::find(notify->begin(), notify->end(), "SUCCESS") != notify->end();
}

bool notify_delay(const std::optional<std::vector<std::string>>& notify)
{
    return !notify || std::find(notify->begin(), notify->end(), "DELAY") != notify->end();
}

std::optional<std::vector<std::string>> limited_notify(const std::optional<std::vector<std::string>>& notify)
{
    if (!notify) {
        return std::nullopt;
    }
    if (notify_failure(notify)) {
        return std::vector<std::string>{"FAILURE"};
    }
    return std::vector<std::string>{"NEVER"};
}

} // namespace smtpspool
