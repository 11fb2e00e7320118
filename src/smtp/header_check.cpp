// header_check: RFC 5322 §2.2 and §3.6 header section checks, one octet at a
// time until the blank line, then nothing for the body.
#include "smtp/header_check.hpp"

#include "base/limits.hpp"

#include <algorithm>
#include <cstring>

namespace smtpspool {
namespace {

constexpr std::string_view k_received = "received";

} // namespace

bool is_field_name(std::string_view name)
{
    return !name.empty() && std::all_of(name.begin(), name.end(), [](char c) { return is_ftext(c); });
}

void HeaderCheck::problem(std::string why)
{
    if (m_options.strict && m_problem.empty()) {
        m_problem = std::move(why);
    }
}

void HeaderCheck::end_of_name()
{
    ++m_fields;
    if (m_name_length == k_received.size() && m_name == k_received) {
        ++m_received;
    }
}

void HeaderCheck::feed(std::string_view data)
{
    if (!m_started && !data.empty()) {
        m_started = true;
        m_leading_white_space = data.front() == ' ' || data.front() == '\t';
    }
    for (std::size_t i = 0; i < data.size() && m_state != St::body; ++i) {
        if (!m_options.strict && m_state == St::value) {
            // Only field names matter without --check-headers: skip to the
            // line end (a CR before it changes nothing here).
            const void* lf = std::memchr(data.data() + i, '\n', data.size() - i);
            if (lf == nullptr) {
                return;
            }
            i = static_cast<std::size_t>(static_cast<const char*>(lf) - data.data());
            m_state = St::line_start;
            continue;
        }
        auto c = static_cast<unsigned char>(data[i]);
        if (m_options.strict && m_state != St::cr && m_state != St::blank_cr && c != '\r') {
            ++m_line_length;
            // RFC 5322 §2.1.1: at most 998 octets before the CRLF.
            if (m_line_length == limits::k_max_header_line + 1) {
                problem("a header line longer than " + std::to_string(limits::k_max_header_line) + " octets");
            }
            if (c >= 0x80 && !m_options.eight_bit_allowed) {
                problem("8-bit octets in the header section without SMTPUTF8 or BODY=8BITMIME");
            }
            if (c == 0) {
                problem("a NUL octet in the header section");
            }
        }
        switch (m_state) {
        case St::line_start:
            if (c == '\r') {
                m_state = St::blank_cr;
            } else if (c == ' ' || c == '\t') {
                if (m_fields == 0) {
                    problem("a continuation line before the first header field");
                }
                m_state = St::value;
            } else if (is_ftext(c)) {
                m_name.assign(1, static_cast<char>(c | 0x20));
                m_name_length = 1;
                m_state = St::name;
            } else {
                problem("a line that is neither a header field nor a continuation (no blank line before the body?)");
                m_state = St::value;
            }
            break;
        case St::name:
            if (c == ':') {
                end_of_name();
                m_state = St::value;
            } else if (c == ' ' || c == '\t') {
                m_state = St::after_name; // RFC 5322 §4.5: obsolete white space before the colon
            } else if (is_ftext(c)) {
                if (m_name.size() < k_received.size() + 1) {
                    m_name.push_back(static_cast<char>(c >= 'A' && c <= 'Z' ? c | 0x20 : c));
                }
                ++m_name_length;
            } else {
                problem("a line that is neither a header field nor a continuation (no blank line before the body?)");
                m_state = c == '\r' ? St::cr : St::value;
            }
            break;
        case St::after_name:
            if (c == ':') {
                end_of_name();
                m_state = St::value;
            } else if (c != ' ' && c != '\t') {
                problem("a line that is neither a header field nor a continuation (no blank line before the body?)");
                m_state = c == '\r' ? St::cr : St::value;
            }
            break;
        case St::value:
            if (c == '\r') {
                m_state = St::cr;
            }
            break;
        case St::cr:
            if (c == '\n') {
                m_state = St::line_start;
                m_line_length = 0;
            } else {
                problem("a bare CR in the header section");
                m_state = c == '\r' ? St::cr : St::value;
            }
            break;
        case St::blank_cr:
            if (c == '\n') {
                if (m_fields == 0) {
                    problem("no header fields before the body");
                }
                m_state = St::body;
            } else {
                problem("a bare CR in the header section");
                m_state = St::value;
            }
            break;
        case St::body:
            break;
        }
    }
}

void HeaderCheck::finish()
{
    if (m_state == St::body) {
        return;
    }
    if (m_fields == 0) {
        problem("no header fields");
    } else if (m_state != St::line_start) {
        problem("the message ends inside a header line");
    }
}

} // namespace smtpspool
