// smtp_data: the DATA reader (CRLF framing, the end-of-data mark, dot-unstuffing,
// the size cap) and the BDAT chunk reader (line ends and the size cap over all
// chunks), fed any chunking. Pure; neither looks at headers.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace smtpspool {

// The length of a message's lines, fed its octets in any chunking (lines end
// in CRLF): whether one was longer than `max` octets before its CRLF (RFC 5322
// §2.1.1: 998). A limit of 0 measures nothing.
class LineMeter {
public:
    explicit LineMeter(std::size_t max) : m_max(max) {}
    void feed(std::string_view bytes);
    bool too_long() const { return m_too_long; }

private:
    std::size_t m_max;
    std::size_t m_length = 0; // octets of the current line so far, a CR included
    bool m_cr = false;        // the last octet fed was a CR
    bool m_too_long = false;
};

enum class LineEnds {
    crlf_only,   // network clients: a bare CR or LF refuses the message (SMTP smuggling)
    lf_accepted, // local clients: LF alone ends a line and is stored as CRLF
};

class DataReader {
public:
    // `max_line`: refuse a line longer than that before its CRLF (0: any).
    DataReader(LineEnds line_ends, std::size_t max_size, std::size_t max_line = 0);

    // Consumes input up to and including the end-of-data mark and appends the
    // message octets to `out` (nothing once the message is refused). Returns the
    // number of octets consumed; fewer than in.size() only when done().
    std::size_t feed(std::string_view in, std::string& out);

    bool done() const { return m_state == St::done; }
    bool bare_line_end() const { return m_bare_line_end; }
    // A NUL octet in the data (RFC 5322 §2.1 and RFC 6152 allow none, even in
    // 8BITMIME): refused from every client, since a next hop that drops NULs
    // before it looks for the end of the data would see CRLF.CRLF in CRLF NUL
    // . CRLF.
    bool nul() const { return m_nul; }
    bool too_big() const { return m_too_big; }
    // A line (after unstuffing) longer than max_line octets before its CRLF.
    bool long_line() const { return m_lines.too_long(); }
    // The message will be refused whatever follows: stop storing it.
    bool refused() const { return m_bare_line_end || m_nul || m_too_big || long_line(); }
    // Message octets seen so far (after unstuffing, with CRLF line ends).
    std::size_t size() const { return m_size; }

private:
    enum class St { line_start, mid_line, cr, dot, dot_cr, done };
    void emit(std::string& out, std::string_view bytes);
    void bare();

    LineEnds m_line_ends;
    std::size_t m_max_size;
    St m_state = St::line_start;
    std::size_t m_size = 0;
    bool m_bare_line_end = false;
    bool m_nul = false;
    bool m_too_big = false;
    LineMeter m_lines;
};

// The octets of a message's BDAT chunks (RFC 3030), counted out by the
// session: no end mark and no dot-stuffing. A 7BIT or 8BITMIME message must
// still end its lines with CRLF (RFC 5321 §2.3.8): a bare CR or LF refuses it,
// whatever the client, as DATA does for network clients, so that no message
// with a bare line end is ever stored to be relayed; so does a NUL octet.
// BINARYMIME octets are stored as they come.
class ChunkReader {
public:
    // `max_line` as DataReader's; BINARYMIME has no lines to measure.
    ChunkReader(bool binary, std::size_t max_size, std::size_t max_line = 0);

    // All of `in` belongs to the message; its octets go to `out` until the
    // message is refused.
    void feed(std::string_view in, std::string& out);
    // After the LAST chunk: a CR at the very end is a bare one.
    void finish();

    bool bare_line_end() const { return m_bare_line_end; }
    bool nul() const { return m_nul; }
    bool too_big() const { return m_too_big; }
    bool long_line() const { return m_lines.too_long(); }
    bool refused() const { return m_bare_line_end || m_nul || m_too_big || long_line(); }
    std::size_t size() const { return m_size; }

private:
    bool m_binary;
    std::size_t m_max_size;
    std::size_t m_size = 0;
    bool m_cr = false; // the last octet so far was a CR
    bool m_bare_line_end = false;
    bool m_nul = false;
    bool m_too_big = false;
    LineMeter m_lines;
};

} // namespace smtpspool
