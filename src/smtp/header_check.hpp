// header_check: a streaming look at the header section of a message as it
// arrives (smtpspool(8), --check-headers and --max-hops). Pure; keeps a few
// counters, never the message.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace smtpspool {

// RFC 5322 §3.6.8: ftext, an octet of a field name, is printable US-ASCII
// (33-126) except ':'.
constexpr bool is_ftext(char c)
{
    auto u = static_cast<unsigned char>(c);
    return u >= 33 && u <= 126 && c != ':';
}

// A field name (RFC 5322 §3.6.8): one or more ftext octets. The one check of
// header_check's scanner, the hook's added fields and sendmail's header reader.
bool is_field_name(std::string_view name);

class HeaderCheck {
public:
    struct Options {
        bool strict = false;           // --check-headers: refuse a malformed header section
        bool eight_bit_allowed = true; // the client said SMTPUTF8 or BODY=8BITMIME
        std::size_t max_hops = 100;    // more Received: fields than this is a mail loop
    };
    explicit HeaderCheck(Options options) : m_options(options) {}

    // Message octets after dot-unstuffing, lines ending in CRLF, any chunking.
    void feed(std::string_view data);

    // After the last octet: what is wrong, if anything.
    bool loop() const { return m_received > m_options.max_hops; }
    // "" when the header section is well-formed (or the check is off).
    const std::string& malformed() const { return m_problem; }
    std::size_t received_fields() const { return m_received; }
    // The message's first octet is SP or HTAB: stored as it is, its first
    // line would continue the last header field the receiver wrote on top.
    bool leading_white_space() const { return m_leading_white_space; }
    void finish();

private:
    enum class St { line_start, name, after_name, value, cr, blank_cr, body };
    void problem(std::string why);
    void end_of_name();

    Options m_options;
    St m_state = St::line_start;
    std::size_t m_line_length = 0;
    std::size_t m_fields = 0;
    std::size_t m_received = 0;
    std::string m_name; // the first octets of the current field name, lower case
    std::size_t m_name_length = 0;
    std::string m_problem;
    bool m_started = false;
    bool m_leading_white_space = false;
};

} // namespace smtpspool
