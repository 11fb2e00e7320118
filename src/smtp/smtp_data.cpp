// smtp_data: RFC 5321 §4.1.1.4 (end of data is CRLF.CRLF), §4.5.2 (transparency),
// §2.3.8 (only CRLF ends a line), RFC 1870 (size cap, read on to the end),
// RFC 5322 §2.1 (no NUL).
#include "smtp/smtp_data.hpp"

#include <cstring>

namespace smtpspool {

void LineMeter::feed(std::string_view bytes)
{
    if (m_max == 0 || m_too_long) {
        return;
    }
    std::size_t pos = 0;
    while (pos < bytes.size()) {
        const void* lf = std::memchr(bytes.data() + pos, '\n', bytes.size() - pos);
        if (lf == nullptr) {
            // The line goes on: one octet more than max may be the CR of its CRLF.
            m_length += bytes.size() - pos;
            m_cr = bytes.back() == '\r';
            m_too_long = m_length > m_max + 1 || (m_length == m_max + 1 && !m_cr);
            return;
        }
        const auto end = static_cast<std::size_t>(static_cast<const char*>(lf) - bytes.data());
        m_length += end - pos;
        const bool cr = end > pos ? bytes[end - 1] == '\r' : m_cr;
        if (m_length - (cr && m_length > 0 ? 1 : 0) > m_max) {
            m_too_long = true;
            return;
        }
        m_length = 0;
        m_cr = false;
        pos = end + 1;
    }
}

DataReader::DataReader(LineEnds line_ends, std::size_t max_size, std::size_t max_line)
    : m_line_ends(line_ends), m_max_size(max_size), m_lines(max_line)
{
}

void DataReader::emit(std::string& out, std::string_view bytes)
{
    m_size += bytes.size();
    if (!m_nul && !bytes.empty() && std::memchr(bytes.data(), '\0', bytes.size()) != nullptr) {
        m_nul = true;
    }
    if (m_size > m_max_size) {
        m_too_big = true;
    }
    m_lines.feed(bytes);
    if (!refused()) {
        out.append(bytes);
    }
}

void DataReader::bare() { m_bare_line_end = true; }

std::size_t DataReader::feed(std::string_view in, std::string& out)
{
    const bool lf_ok = m_line_ends == LineEnds::lf_accepted;
    std::size_t i = 0;
    while (i < in.size() && m_state != St::done) {
        char c = in[i];
        switch (m_state) {
        case St::line_start:
            if (c == '.') {
                m_state = St::dot;
                ++i;
                break;
            }
            m_state = St::mid_line;
            break; // reprocess c as text
        case St::mid_line: {
            // Fast path: whole CRLF lines at a time, with one append for the
            // run of lines up to the next line that starts with a dot (or the
            // end of the input). Anything else (a lone CR or LF) goes one
            // octet at a time below.
            const char* base = in.data();
            const std::size_t n = in.size();
            std::size_t pos = i;
            for (;;) {
                const void* lf = std::memchr(base + pos, '\n', n - pos);
                std::size_t end = lf != nullptr ? static_cast<std::size_t>(static_cast<const char*>(lf) - base) : n;
                const void* cr = std::memchr(base + pos, '\r', end - pos);
                if (lf == nullptr || cr != static_cast<const char*>(lf) - 1) {
                    // No line end here, or an irregular one: copy up to the
                    // first CR or LF and let the state machine look at it.
                    pos = cr != nullptr ? static_cast<std::size_t>(static_cast<const char*>(cr) - base) : end;
                    break;
                }
                pos = end + 1; // just past CRLF: a new line starts
                if (pos == n || base[pos] == '.') {
                    m_state = St::line_start;
                    break;
                }
            }
            if (pos > i) {
                emit(out, std::string_view(base + i, pos - i));
                i = pos;
                break;
            }
            if (c == '\r') {
                m_state = St::cr;
            } else if (lf_ok) {
                emit(out, "\r\n");
                m_state = St::line_start;
            } else {
                bare();
                emit(out, "\n");
            }
            ++i;
            break;
        }
        case St::cr:
            if (c == '\n') {
                emit(out, "\r\n");
                m_state = St::line_start;
                ++i;
            } else {
                bare(); // CR not followed by LF
                emit(out, "\r");
                m_state = St::mid_line;
            }
            break;
        case St::dot:
            if (c == '\r') {
                m_state = St::dot_cr;
                ++i;
            } else if (c == '\n' && lf_ok) {
                m_state = St::done;
                ++i;
            } else {
                m_state = St::mid_line; // a stuffed dot: drop it, keep c
            }
            break;
        case St::dot_cr:
            if (c == '\n') {
                m_state = St::done;
                ++i;
            } else {
                bare();
                emit(out, "\r");
                m_state = St::mid_line;
            }
            break;
        case St::done:
            break;
        }
    }
    return i;
}

ChunkReader::ChunkReader(bool binary, std::size_t max_size, std::size_t max_line)
    : m_binary(binary), m_max_size(max_size), m_lines(binary ? 0 : max_line)
{
}

void ChunkReader::feed(std::string_view in, std::string& out)
{
    if (!m_binary && !m_bare_line_end) {
        for (char c : in) {
            if (m_cr != (c == '\n')) {
                m_bare_line_end = true; // CR without LF, or LF without CR
                break;
            }
            m_cr = c == '\r';
        }
    }
    if (!m_binary && !m_nul && !in.empty() && std::memchr(in.data(), '\0', in.size()) != nullptr) {
        m_nul = true;
    }
    // The octets arrive through the network; their count fits in size_t.
    m_size += in.size();
    if (m_size > m_max_size) {
        m_too_big = true;
    }
    m_lines.feed(in);
    if (!refused()) {
        out.append(in);
    }
}

void ChunkReader::finish()
{
    if (m_cr) {
        m_bare_line_end = true;
    }
}

} // namespace smtpspool
