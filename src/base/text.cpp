// text: the named sanitizers.
#include "base/text.hpp"

#include <algorithm>

namespace smtpspool::text {

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
        auto u = static_cast<unsigned char>(c);
        if (u < 0x20 || u == 0x7f) {
            c = ' ';
        }
    }
    while (!tail.empty() && tail.back() == ' ') {
        tail.pop_back();
    }
    return tail;
}

std::string_view trim(std::string_view text)
{
    auto blank = [](char c) { return c == ' ' || c == '\t'; };
    while (!text.empty() && blank(text.front())) {
        text.remove_prefix(1);
    }
    while (!text.empty() && blank(text.back())) {
        text.remove_suffix(1);
    }
    return text;
}

} // namespace smtpspool::text
