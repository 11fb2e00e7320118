// message_edit: content filters' header and body edits over the stored
// message's octets; see message_edit.hpp.
#include "smtp/message_edit.hpp"

#include "base/limits.hpp"
#include "smtp/header_check.hpp"
#include "smtp/smtp_address.hpp"

#include <algorithm>
#include <cerrno>

namespace smtpspool {
namespace {

bool is_wsp(char c) { return c == ' ' || c == '\t'; }

// One header field of the held section: its name as written (without the
// white space before ':'; "" for a line with no ':') and its octets, line
// ends and continuation lines included.
struct Field {
    std::string name;
    std::string raw;
};

std::vector<Field> parse_fields(std::string_view section)
{
    std::vector<Field> fields;
    while (!section.empty()) {
        std::size_t lf = section.find('\n');
        std::size_t len = lf == std::string_view::npos ? section.size() : lf + 1;
        std::string_view line = section.substr(0, len);
        section.remove_prefix(len);
        if (is_wsp(line.front()) && !fields.empty()) {
            fields.back().raw.append(line);
            continue;
        }
        Field f;
        std::size_t colon = line.find(':');
        if (colon != std::string_view::npos) {
            std::string_view name = line.substr(0, colon);
            while (!name.empty() && is_wsp(name.back())) {
                name.remove_suffix(1);
            }
            f.name = std::string(name);
        }
        f.raw = std::string(line);
        fields.push_back(std::move(f));
    }
    return fields;
}

bool same_name(std::string_view a, std::string_view b) { return !a.empty() && ascii_lower(a) == ascii_lower(b); }

// Folds one line (without its line end) so that no piece passes the limit:
// at the last white space before it, never leaving a piece of white space
// only. Appends the pieces, CRLF between them, to `out`; false when a piece
// cannot be made short enough.
bool fold_line(std::string_view line, std::string& out)
{
    while (line.size() > limits::k_max_header_line) {
        std::size_t at = std::string_view::npos;
        for (std::size_t p = limits::k_max_header_line; p > 0; --p) {
            if (is_wsp(line[p])) {
                at = p;
                break;
            }
        }
        if (at == std::string_view::npos) {
            return false;
        }
        std::string_view head = line.substr(0, at);
        if (std::all_of(head.begin(), head.end(), is_wsp)) {
            return false;
        }
        out.append(head);
        out.append("\r\n");
        line.remove_prefix(at);
    }
    out.append(line);
    return true;
}

std::size_t total_size(const std::vector<Field>& fields)
{
    std::size_t n = 0;
    for (const Field& f : fields) {
        n += f.raw.size();
    }
    return n;
}

} // namespace

std::string header_edit_problem(const HeaderEdit& edit)
{
    if (!is_field_name(edit.name)) {
        return "a header field name that is not printable ASCII without ':'";
    }
    if (edit.name.size() > limits::k_max_field_name) {
        return "a header field name longer than " + std::to_string(limits::k_max_field_name) + " octets";
    }
    const std::string& v = edit.value;
    for (std::size_t i = 0; i < v.size(); ++i) {
        const auto u = static_cast<unsigned char>(v[i]);
        if (v[i] == '\r') {
            if (i + 1 >= v.size() || v[i + 1] != '\n') {
                return "a bare CR in a header field value";
            }
            continue;
        }
        if (v[i] == '\n') {
            // Folding: white space follows, and the line holds something else too.
            std::size_t end = v.find_first_of("\r\n", i + 1);
            std::string_view next = std::string_view(v).substr(i + 1, end == std::string::npos ? end : end - i - 1);
            if (next.empty() || !is_wsp(next.front())) {
                return "a line end in a header field value that is not folding";
            }
            if (std::all_of(next.begin(), next.end(), is_wsp)) {
                return "a folded line of white space only in a header field value";
            }
            continue;
        }
        if ((u < 0x20 && v[i] != '\t') || u == 0x7f) {
            return "a control octet in a header field value";
        }
    }
    if (edit.kind == HeaderEdit::Kind::change && v.empty()) {
        return {};
    }
    if (render_header_field(edit.name, v).empty()) {
        return "a header field line longer than " + std::to_string(limits::k_max_header_line) +
               " octets with no white space to fold it at";
    }
    return {};
}

std::string body_problem(std::string_view body)
{
    if (body.find('\0') != std::string_view::npos) {
        return "a NUL octet in the replacement body";
    }
    return {};
}

std::string render_header_field(std::string_view name, std::string_view value)
{
    std::string first(name);
    first += ':';
    if (!value.empty() && !is_wsp(value.front())) {
        first += ' ';
    }
    std::string out;
    bool first_line = true;
    while (true) {
        std::size_t lf = value.find('\n');
        std::string_view line = value.substr(0, lf);
        if (!line.empty() && line.back() == '\r') {
            line.remove_suffix(1);
        }
        bool ok = first_line ? fold_line(first + std::string(line), out) : fold_line(line, out);
        if (!ok) {
            return {};
        }
        out.append("\r\n");
        first_line = false;
        if (lf == std::string_view::npos) {
            break;
        }
        value.remove_prefix(lf + 1);
    }
    return out;
}

std::string normalize_body(std::string_view body)
{
    std::string out;
    out.reserve(body.size() + body.size() / 32 + 2);
    for (std::size_t i = 0; i < body.size(); ++i) {
        char c = body[i];
        if (c == '\r') {
            out.append("\r\n");
            if (i + 1 < body.size() && body[i + 1] == '\n') {
                ++i;
            }
        } else if (c == '\n') {
            out.append("\r\n");
        } else {
            out.push_back(c);
        }
    }
    if (!out.empty() && out.back() != '\n') {
        out.append("\r\n");
    }
    return out;
}

MessageRewriter::MessageRewriter(const MessageEdits& edits, Sink sink, std::size_t max_header_section)
    : m_edits(edits),
      m_sink(std::move(sink)),
      m_max(max_header_section == 0 ? limits::k_max_edited_header_section : max_header_section),
      m_buffer_header(!edits.headers.empty())
{
}

Result<void> MessageRewriter::emit(std::string_view octets)
{
    if (octets.empty()) {
        return {};
    }
    return m_sink(octets);
}

Result<void> MessageRewriter::header_octets(std::string_view octets)
{
    if (octets.empty()) {
        return {};
    }
    m_ended_in_lf = octets.back() == '\n';
    if (!m_buffer_header) {
        return emit(octets);
    }
    if (m_header.size() + octets.size() > m_max) {
        return Error{EFBIG, "a header section of more than " + std::to_string(m_max) + " octets cannot be edited"};
    }
    m_header.append(octets);
    return {};
}

// The edits, in the order the filters asked for them, on the held fields;
// then the fields go out, then the blank line (if any).
Result<void> MessageRewriter::end_of_header_section(std::string_view blank_line)
{
    if (m_buffer_header) {
        std::vector<Field> fields = parse_fields(m_header);
        m_header.clear();
        m_header.shrink_to_fit();
        for (const HeaderEdit& e : m_edits.headers) {
            switch (e.kind) {
            case HeaderEdit::Kind::add:
                fields.push_back({e.name, render_header_field(e.name, e.value)});
                break;
            case HeaderEdit::Kind::insert: {
                std::size_t at = std::min<std::size_t>(e.index, fields.size());
                fields.insert(fields.begin() + static_cast<std::ptrdiff_t>(at),
                              Field{e.name, render_header_field(e.name, e.value)});
                break;
            }
            case HeaderEdit::Kind::change: {
                // The index-th field of that name (1: the first; 0 is taken as 1).
                std::uint32_t wanted = std::max<std::uint32_t>(e.index, 1);
                auto it = std::find_if(fields.begin(), fields.end(),
                                       [&](const Field& f) { return same_name(f.name, e.name) && --wanted == 0; });
                if (it == fields.end()) {
                    // Not there: a value adds it, as sendmail's milter does.
                    if (!e.value.empty()) {
                        fields.push_back({e.name, render_header_field(e.name, e.value)});
                    }
                } else if (e.value.empty()) {
                    fields.erase(it);
                } else {
                    it->raw = render_header_field(e.name, e.value);
                }
                break;
            }
            }
        }
        for (Field& f : fields) {
            if (f.raw.empty() || f.raw.back() != '\n') {
                f.raw.append("\r\n"); // the last line had no line end: more follows now
            }
        }
        if (total_size(fields) > m_max) {
            return Error{EFBIG, "the edited header section would pass " + std::to_string(m_max) + " octets"};
        }
        for (const Field& f : fields) {
            if (auto r = emit(f.raw); !r) {
                return r;
            }
        }
        m_ended_in_lf = true;
    }
    m_part = Part::body;
    return emit(blank_line);
}

Result<void> MessageRewriter::feed(std::string_view octets)
{
    std::size_t i = 0;
    std::size_t from = 0;
    while (m_part == Part::header && i < octets.size()) {
        const char c = octets[i];
        if (m_line_cr) {
            m_line_cr = false;
            if (c == '\n') {
                // "\r\n" alone: the end of the header section.
                if (auto r = header_octets(octets.substr(from, i - from)); !r) {
                    return r;
                }
                ++i;
                from = i;
                if (auto r = end_of_header_section("\r\n"); !r) {
                    return r;
                }
                break;
            }
            // A line that starts with a CR but is not blank.
            if (auto r = header_octets(octets.substr(from, i - from)); !r) {
                return r;
            }
            if (auto r = header_octets("\r"); !r) {
                return r;
            }
            from = i;
        } else if (m_line_start) {
            if (c == '\n') {
                if (auto r = header_octets(octets.substr(from, i - from)); !r) {
                    return r;
                }
                ++i;
                from = i;
                if (auto r = end_of_header_section("\n"); !r) {
                    return r;
                }
                break;
            }
            if (c == '\r') {
                // Held: it may begin the blank line.
                if (auto r = header_octets(octets.substr(from, i - from)); !r) {
                    return r;
                }
                m_line_cr = true;
                m_line_start = false;
                ++i;
                from = i;
                continue;
            }
        }
        m_line_start = c == '\n';
        ++i;
    }
    if (m_part == Part::header) {
        return header_octets(octets.substr(from, i - from));
    }
    if (m_edits.body) {
        return {}; // the old body is dropped
    }
    return emit(octets.substr(from));
}

Result<void> MessageRewriter::finish()
{
    if (m_part == Part::header) {
        if (m_line_cr) {
            m_line_cr = false;
            if (auto r = header_octets("\r"); !r) {
                return r;
            }
        }
        // No blank line: the message is all header section.
        if (m_buffer_header) {
            if (auto r = end_of_header_section(""); !r) {
                return r;
            }
        }
        if (m_edits.body) {
            if (!m_ended_in_lf) {
                if (auto r = emit("\r\n"); !r) {
                    return r;
                }
            }
            if (auto r = emit("\r\n"); !r) {
                return r;
            }
        }
        m_part = Part::body;
    }
    if (m_edits.body) {
        const std::string body = normalize_body(*m_edits.body);
        for (std::size_t at = 0; at < body.size(); at += limits::k_write_buffer) {
            if (auto r = emit(std::string_view(body).substr(at, limits::k_write_buffer)); !r) {
                return r;
            }
        }
    }
    return {};
}

Result<std::string> rewrite_message(std::string_view message, const MessageEdits& edits)
{
    std::string out;
    MessageRewriter rw(edits, [&out](std::string_view s) -> Result<void> {
        out.append(s);
        return {};
    });
    if (auto r = rw.feed(message); !r) {
        return r.error();
    }
    if (auto r = rw.finish(); !r) {
        return r.error();
    }
    return out;
}

} // namespace smtpspool
