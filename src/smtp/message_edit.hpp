// message_edit: the header and body changes content filters ask for at the
// end of a message (filter_port.hpp, MessageEdits), applied to the stored
// message's octets as they are read back (smtpspool(8), MILTERS). Pure: octets
// in, octets out through a sink; memory bounded by the header section
// (limits::k_max_edited_header_section) when header fields are edited, by
// nothing but the pieces fed otherwise.
//
// The stored message starts with our own Received: field, and that is what
// the filters were sent: their field indices count it (insert at 0 puts a
// field before it; the first Received: a change names is ours).
#pragma once

#include "base/result.hpp"
#include "smtp/filter_port.hpp"

#include <cstddef>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace smtpspool {

// Why a filter's header edit cannot be applied, or "" when it can: the name
// is 1 to limits::k_max_field_name octets of printable ASCII other than ':'
// (RFC 5322 §3.6.8); the value holds no NUL or other control octet but HTAB,
// and a line end in it (LF or CRLF) is folding: followed by white space, on
// a line that is not white space only.
std::string header_edit_problem(const HeaderEdit& edit);
// Why a replacement body cannot be stored, or "": it holds a NUL.
std::string body_problem(std::string_view body);

// "Name: value\r\n": the field as it is stored, its folds as CRLF, a line
// longer than limits::k_max_header_line folded again at its last white space
// before the limit; "" when it cannot be (no white space to fold at). The
// value is put after ": " unless it starts with white space (then after ":").
std::string render_header_field(std::string_view name, std::string_view value);

// A replacement body with every line end CRLF (a bare LF or bare CR becomes
// CRLF) and a CRLF at its end when it is not empty.
std::string normalize_body(std::string_view body);

class MessageRewriter {
public:
    // Gets the rewritten octets, in order; an error stops the rewrite.
    using Sink = std::function<Result<void>(std::string_view)>;

    // `edits` must stay alive and unchanged while the rewriter is used, and
    // have passed header_edit_problem and body_problem.
    MessageRewriter(const MessageEdits& edits, Sink sink,
                    std::size_t max_header_section = 0 /* 0: limits::k_max_edited_header_section */);

    // The next octets of the original message, in pieces of any size.
    Result<void> feed(std::string_view octets);
    // After the last octet. An error with errnum EFBIG: the header section
    // (before or after the edits) passes the limit.
    Result<void> finish();

private:
    enum class Part { header, body };
    Result<void> header_octets(std::string_view octets);
    Result<void> end_of_header_section(std::string_view blank_line);
    Result<void> emit(std::string_view octets);

    const MessageEdits& m_edits;
    Sink m_sink;
    std::size_t m_max;
    bool m_buffer_header; // header edits: the section is held until its end
    Part m_part = Part::header;
    std::string m_header;       // the held header section (m_buffer_header)
    bool m_line_start = true;   // the next octet starts a header line
    bool m_line_cr = false;     // the current header line is "\r" so far
    bool m_ended_in_lf = true;  // the header octets so far end a line (or are none)
};

// Applies `edits` to a whole message in memory (tests, MemorySpool).
Result<std::string> rewrite_message(std::string_view message, const MessageEdits& edits);

} // namespace smtpspool
