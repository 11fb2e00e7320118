// mime_downgrade: RFC 2045 (header fields, §6.7 quoted-printable, §6.8
// base64), RFC 2046 §5.1.1 (boundaries), RFC 1847 (multipart/signed).
#include "delivery/mime_downgrade.hpp"

#include "smtp/smtp_address.hpp"

#include <algorithm>

namespace smtpspool {
namespace {

constexpr char k_hex[] = "0123456789ABCDEF";
constexpr char k_b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
// RFC 2045 §6.7 rule 5 and §6.8: encoded lines of at most 76 characters.
constexpr std::size_t k_encoded_line = 76;

bool high(char c) { return static_cast<unsigned char>(c) >= 0x80; }
bool has_high(std::string_view s) { return std::any_of(s.begin(), s.end(), high); }
bool blank(char c) { return c == ' ' || c == '\t'; }

std::string_view trim(std::string_view s)
{
    while (!s.empty() && (blank(s.front()) || s.front() == '\r' || s.front() == '\n')) {
        s.remove_prefix(1);
    }
    while (!s.empty() && (blank(s.back()) || s.back() == '\r' || s.back() == '\n')) {
        s.remove_suffix(1);
    }
    return s;
}

// One header field: its name in lower case, its octets as stored (folded
// lines and line ends included) and its unfolded value.
struct Field {
    std::string name;
    std::string_view raw;
    std::string value;
};

std::vector<Field> split_fields(std::string_view header)
{
    std::vector<Field> fields;
    std::size_t start_of_field = 0;
    std::size_t i = 0;
    while (i < header.size()) {
        std::size_t end = header.find('\n', i);
        end = end == std::string_view::npos ? header.size() : end + 1;
        std::string_view line = header.substr(i, end - i);
        if (!fields.empty() && blank(line.front())) {
            fields.back().raw = header.substr(start_of_field, end - start_of_field);
            fields.back().value += line;
        } else {
            Field f;
            std::size_t colon = line.find(':');
            if (colon != std::string_view::npos) {
                f.name = ascii_lower(trim(line.substr(0, colon)));
                f.value = std::string(line.substr(colon + 1));
            }
            f.raw = line;
            start_of_field = i;
            fields.push_back(std::move(f));
        }
        i = end;
    }
    for (Field& f : fields) {
        std::erase_if(f.value, [](char c) { return c == '\r' || c == '\n'; });
    }
    return fields;
}

// RFC 5322 §3.2.2 comments taken out (quoted strings kept as they are).
std::string without_comments(std::string_view v)
{
    std::string out;
    int depth = 0;
    bool quoted = false;
    for (std::size_t i = 0; i < v.size(); ++i) {
        char c = v[i];
        if (c == '\\' && i + 1 < v.size() && (quoted || depth > 0)) {
            if (depth == 0) {
                out += c;
                out += v[i + 1];
            }
            ++i;
            continue;
        }
        if (depth == 0 && c == '"') {
            quoted = !quoted;
        } else if (!quoted && c == '(') {
            ++depth;
            continue;
        } else if (!quoted && c == ')' && depth > 0) {
            --depth;
            continue;
        }
        if (depth == 0) {
            out += c;
        }
    }
    return out;
}

struct ContentType {
    std::string type;    // "text", lower case; "" when the field is absent or empty
    std::string subtype; // "plain"
    std::string boundary;
};

ContentType parse_content_type(std::string_view field_value)
{
    ContentType ct;
    std::string v = without_comments(field_value);
    std::string_view rest = v;
    std::size_t semi = rest.find(';');
    std::string_view media = trim(rest.substr(0, semi));
    std::size_t slash = media.find('/');
    ct.type = ascii_lower(trim(media.substr(0, slash)));
    if (slash != std::string_view::npos) {
        ct.subtype = ascii_lower(trim(media.substr(slash + 1)));
    }
    while (semi != std::string_view::npos) {
        rest.remove_prefix(semi + 1);
        // One parameter: attribute = token / quoted-string.
        std::size_t eq = rest.find('=');
        std::size_t next = rest.find(';');
        if (eq == std::string_view::npos || (next != std::string_view::npos && next < eq)) {
            semi = next;
            continue;
        }
        std::string attribute = ascii_lower(trim(rest.substr(0, eq)));
        std::string_view after = rest.substr(eq + 1);
        while (!after.empty() && blank(after.front())) {
            after.remove_prefix(1);
        }
        std::string value;
        std::size_t used = 0;
        if (!after.empty() && after.front() == '"') {
            used = 1;
            while (used < after.size() && after[used] != '"') {
                if (after[used] == '\\' && used + 1 < after.size()) {
                    ++used;
                }
                value += after[used++];
            }
            ++used;
            semi = after.find(';', std::min(used, after.size()));
            semi = semi == std::string_view::npos ? semi : semi + (rest.size() - after.size());
        } else {
            std::size_t end = after.find(';');
            value = std::string(trim(after.substr(0, end)));
            semi = end == std::string_view::npos ? end : end + (rest.size() - after.size());
        }
        if (attribute == "boundary" && ct.boundary.empty()) {
            ct.boundary = value;
        }
    }
    return ct;
}

const Field* find_field(const std::vector<Field>& fields, std::string_view name)
{
    for (const Field& f : fields) {
        if (f.name == name) {
            return &f;
        }
    }
    return nullptr;
}

// The length of the well-formed UTF-8 character at the start of s (RFC 3629
// §4), or 0.
std::size_t utf8_char(std::string_view s)
{
    auto at = [&s](std::size_t i) { return i < s.size() ? static_cast<unsigned char>(s[i]) : 0u; };
    unsigned c = at(0);
    auto cont = [&](std::size_t i, unsigned lo = 0x80, unsigned hi = 0xbf) { return at(i) >= lo && at(i) <= hi; };
    if (c < 0x80) {
        return 1;
    }
    if (c >= 0xc2 && c <= 0xdf) {
        return cont(1) ? 2 : 0;
    }
    if (c >= 0xe0 && c <= 0xef) {
        unsigned lo = c == 0xe0 ? 0xa0 : 0x80;
        unsigned hi = c == 0xed ? 0x9f : 0xbf;
        return cont(1, lo, hi) && cont(2) ? 3 : 0;
    }
    if (c >= 0xf0 && c <= 0xf4) {
        unsigned lo = c == 0xf0 ? 0x90 : 0x80;
        unsigned hi = c == 0xf4 ? 0x8f : 0xbf;
        return cont(1, lo, hi) && cont(2) && cont(3) ? 4 : 0;
    }
    return 0;
}

bool valid_utf8(std::string_view s)
{
    while (!s.empty()) {
        std::size_t n = utf8_char(s);
        if (n == 0) {
            return false;
        }
        s.remove_prefix(n);
    }
    return true;
}

// The unstructured fields (RFC 5322 §3.6.5, RFC 2045 §8), whose whole body
// may be encoded words (RFC 2047 §5 (1)).
bool unstructured(std::string_view name)
{
    return name == "subject" || name == "comments" || name == "content-description";
}

// An unstructured field with 8-bit octets, its body made RFC 2047 encoded
// words ("Q" encoding, UTF-8 when the octets are UTF-8, else unknown-8bit),
// each at most 75 characters, one to a line: "Name: =?UTF-8?Q?...?=\r\n ...".
std::string encode_words(const Field& f)
{
    std::string_view raw = f.raw;
    std::string out(raw.substr(0, raw.find(':') + 1));
    std::string_view value = f.value;
    while (!value.empty() && blank(value.front())) {
        value.remove_prefix(1);
    }
    const std::string prefix = valid_utf8(value) ? "=?UTF-8?Q?" : "=?unknown-8bit?Q?";
    const std::size_t room = 75 - prefix.size() - 2;
    std::string word;
    auto flush = [&] {
        out += (out.back() == ':' ? " " : "\r\n ") + prefix + word + "?=";
        word.clear();
    };
    while (!value.empty()) {
        std::size_t n = std::max<std::size_t>(1, utf8_char(value));
        std::string encoded;
        for (char c : value.substr(0, n)) {
            auto u = static_cast<unsigned char>(c);
            if (c == ' ') {
                encoded += '_';
            } else if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                       c == '!' || c == '*' || c == '+' || c == '-' || c == '/') {
                encoded += c; // RFC 2047 §5 (3)
            } else {
                encoded += {'=', k_hex[u >> 4], k_hex[u & 15]};
            }
        }
        if (!word.empty() && word.size() + encoded.size() > room) {
            flush();
        }
        word += encoded;
        value.remove_prefix(n);
    }
    if (!word.empty() || out.back() == ':') {
        flush();
    }
    return out + "\r\n";
}

int hex_value(char c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    return -1;
}

} // namespace

MimeDowngrade::MimeDowngrade(bool analyzing, std::vector<bool> plan, bool eight_bit_headers)
    : m_analyzing(analyzing), m_eight_bit_headers(eight_bit_headers), m_plan(std::move(plan))
{
}

MimeDowngrade MimeDowngrade::analyze(bool eight_bit_headers) { return MimeDowngrade(true, {}, eight_bit_headers); }

MimeDowngrade MimeDowngrade::convert(std::vector<bool> plan, bool eight_bit_headers)
{
    return MimeDowngrade(false, std::move(plan), eight_bit_headers);
}

void MimeDowngrade::refuse(std::string why)
{
    if (m_refusal.empty()) {
        m_refusal = std::move(why);
    }
}

void MimeDowngrade::emit(std::string& out, std::string_view bytes) const
{
    if (!m_analyzing) {
        out.append(bytes);
    }
}

bool MimeDowngrade::in_signed() const { return !m_frames.empty() && m_frames.back().is_signed; }

void MimeDowngrade::feed(std::string_view in, std::string& out)
{
    while (!in.empty()) {
        if (m_analyzing && !m_refusal.empty()) {
            return; // the answer is known
        }
        std::size_t lf = in.find('\n');
        std::size_t room = k_mime_line_piece - m_line.size();
        if (lf != std::string_view::npos && lf < room) {
            m_line.append(in.substr(0, lf));
            in.remove_prefix(lf + 1);
            bool crlf = !m_line.empty() && m_line.back() == '\r';
            if (crlf) {
                m_line.pop_back();
            }
            piece({m_line, crlf ? "\r\n" : "\n", !m_continued, true}, out);
            m_line.clear();
            m_continued = false;
            continue;
        }
        std::size_t take = std::min(room, in.size());
        m_line.append(in.substr(0, take));
        in.remove_prefix(take);
        if (m_line.size() >= k_mime_line_piece) {
            // A long line: hand on what we have, but a CR that may start a CRLF waits.
            std::string held;
            if (m_line.back() == '\r') {
                held = "\r";
                m_line.pop_back();
            }
            piece({m_line, "", !m_continued, false}, out);
            m_line = held;
            m_continued = true;
        }
    }
}

void MimeDowngrade::finish(std::string& out)
{
    if (!m_line.empty() || m_continued) {
        piece({m_line, "", !m_continued, true}, out);
        m_line.clear();
        m_continued = false;
    }
    end_entity(true, out);
    if (!m_analyzing && m_leaves != m_plan.size()) {
        refuse("the message changed between the two passes");
    }
}

void MimeDowngrade::piece(const Piece& p, std::string& out)
{
    if (!m_frames.empty() && p.first && p.last && p.text.starts_with("--") && boundary(p, out)) {
        return;
    }
    if (m_mode != Mode::headers) {
        body(p, out);
        return;
    }
    if (p.first && p.last && p.text.empty() && !p.eol.empty()) {
        m_header.append("\r\n"); // the empty line that ends the header section
        end_headers(out);
        return;
    }
    if (m_header.size() + p.text.size() + p.eol.size() > k_max_mime_header_section) {
        refuse("a header section longer than " + std::to_string(k_max_mime_header_section) + " octets");
        m_header.clear();
        m_mode = Mode::ignored; // nothing useful can follow; the pass ends refused
        return;
    }
    m_header.append(p.text);
    m_header.append(p.eol.empty() ? "" : "\r\n");
}

// A delimiter or close delimiter of an open multipart (the innermost that
// matches; any inside it end with it).
bool MimeDowngrade::boundary(const Piece& p, std::string& out)
{
    for (std::size_t i = m_frames.size(); i-- > 0;) {
        const std::string& b = m_frames[i].boundary;
        std::string_view rest = p.text.substr(2);
        if (!rest.starts_with(b)) {
            continue;
        }
        rest.remove_prefix(b.size());
        bool close = rest.starts_with("--");
        if (!close && !std::all_of(rest.begin(), rest.end(), blank)) {
            continue;
        }
        end_entity(false, out);
        m_message_depth = m_frames[i].message_depth;
        bool digest = m_frames[i].digest;
        m_frames.resize(close ? i : i + 1);
        if (!m_analyzing) {
            copy_7bit(p.text, out); // what follows a close delimiter's "--" is not content either
            out += "\r\n";
        }
        m_header.clear();
        m_encoding = Encoding::none;
        if (close) {
            m_mode = Mode::ignored; // the epilogue
        } else {
            m_mode = Mode::headers;
            m_message_level = false;
            m_default_message = digest;
        }
        return true;
    }
    return false;
}

// The entity being read ends (a boundary, or the end of the message).
void MimeDowngrade::end_entity(bool at_eof, std::string& out)
{
    if (m_mode == Mode::headers) {
        end_headers(out); // a header section without its empty line
    }
    if (m_mode == Mode::leaf_copy && m_analyzing) {
        // What the converting pass does with this leaf.
        bool encode = false;
        if (m_leaf_8bit) {
            const std::string& cte = m_leaf_cte;
            if (in_signed()) {
                refuse("8-bit content inside multipart/signed (converting it would break the signature)");
            } else if (cte == "base64" || cte == "quoted-printable") {
                refuse("8-bit octets in a part declared " + cte);
            } else if (!cte.empty() && cte != "7bit" && cte != "8bit" && cte != "binary") {
                refuse("8-bit octets in a part of an unknown Content-Transfer-Encoding");
            } else {
                encode = true;
            }
        }
        m_plan.push_back(encode);
    }
    if (m_mode == Mode::leaf_encode) {
        if (at_eof) {
            encode_line_break(m_pending_eol, out); // the body's own last line end
        }
        m_pending_eol.clear();
        encode_finish(at_eof, out);
        if (!at_eof) {
            emit(out, "\r\n"); // the CRLF of the delimiter that follows
        }
    }
    m_mode = Mode::ignored;
    m_encoding = Encoding::none;
}

void MimeDowngrade::end_headers(std::string& out)
{
    std::vector<Field> fields = split_fields(m_header);
    auto emit_field = [this](const Field& f, std::string& to) {
        if (!m_eight_bit_headers && !m_analyzing && unstructured(f.name) && has_high(f.raw)) {
            emit(to, encode_words(f));
        } else {
            emit(to, f.raw);
        }
    };
    bool eight_bit = has_high(m_header);
    if (eight_bit && !m_eight_bit_headers) {
        // Unstructured fields become encoded words; any other cannot be converted.
        for (const Field& f : fields) {
            if (!has_high(f.raw) || unstructured(f.name)) {
                continue;
            }
            bool printable = !f.name.empty() && f.name.size() <= 76 &&
                             std::all_of(f.name.begin(), f.name.end(), [](char c) { return c > 0x20 && c < 0x7f; });
            refuse("8-bit octets in the header field " + (printable ? f.name : std::string("(unnamed)")) +
                   " (only an SMTPUTF8 message may have them)");
            break;
        }
    }
    if (eight_bit && in_signed()) {
        refuse("8-bit content inside multipart/signed (converting it would break the signature)");
    }
    const Field* ct_field = find_field(fields, "content-type");
    const Field* cte_field = find_field(fields, "content-transfer-encoding");
    ContentType ct;
    if (ct_field != nullptr) {
        ct = parse_content_type(ct_field->value);
    }
    if (ct.type.empty()) {
        ct.type = m_default_message ? "message" : "text";
        ct.subtype = m_default_message ? "rfc822" : "plain";
    }
    std::string cte = cte_field == nullptr ? "" : ascii_lower(trim(without_comments(cte_field->value)));
    bool identity = cte.empty() || cte == "7bit" || cte == "8bit" || cte == "binary";
    bool multipart = ct.type == "multipart" && !ct.boundary.empty() && ct.boundary.size() <= 200 &&
                     identity;
    bool message = ct.type == "message" && ct.subtype == "rfc822" && identity;

    if (multipart || message) {
        if (m_frames.size() + m_message_depth + 1 > k_max_mime_depth) {
            refuse("MIME entities nested more than " + std::to_string(k_max_mime_depth) + " deep");
            m_mode = Mode::ignored;
            return;
        }
        // Converted within, so 7bit (RFC 2046 §5.1 and §5.2.1 allow no other encoding).
        for (const Field& f : fields) {
            if (&f == cte_field && (cte == "8bit" || cte == "binary")) {
                emit(out, "Content-Transfer-Encoding: 7bit\r\n");
            } else {
                emit_field(f, out);
            }
        }
        if (multipart) {
            bool is_signed = in_signed() || ct.subtype == "signed";
            m_frames.push_back({ct.boundary, is_signed, ct.subtype == "digest", m_message_depth});
            m_mode = Mode::ignored; // the preamble
        } else {
            ++m_message_depth;
            m_mode = Mode::headers;
            m_message_level = true;
            m_default_message = false;
        }
        m_header.clear();
        return;
    }

    // A leaf.
    std::size_t index = m_leaves++;
    m_leaf_8bit = false;
    m_leaf_cte = cte;
    m_pending_eol.clear();
    bool encode = !m_analyzing && index < m_plan.size() && m_plan[index];
    if (!encode) {
        for (const Field& f : fields) {
            emit_field(f, out);
        }
        m_header.clear();
        m_mode = Mode::leaf_copy;
        return;
    }
    ++m_encoded;
    m_encoding = ct.type == "text" ? Encoding::quoted_printable : Encoding::base64;
    // The header section again, without its Content-Transfer-Encoding and with
    // what the new encoding needs, before the empty line (if there was one).
    for (const Field& f : fields) {
        bool blank_line = f.name.empty() && trim(f.raw).empty() && &f == &fields.back();
        if (!blank_line && f.name != "content-transfer-encoding") {
            emit_field(f, out);
        }
    }
    if (m_message_level && find_field(fields, "mime-version") == nullptr) {
        emit(out, "MIME-Version: 1.0\r\n");
    }
    if (ct_field == nullptr) {
        emit(out, "Content-Type: text/plain; charset=unknown-8bit\r\n");
    }
    emit(out, m_encoding == Encoding::quoted_printable ? "Content-Transfer-Encoding: quoted-printable\r\n"
                                                       : "Content-Transfer-Encoding: base64\r\n");
    emit(out, "\r\n");
    m_header.clear();
    m_col = 0;
    m_qp_space = 0;
    m_b64_n = 0;
    m_mode = Mode::leaf_encode;
}

void MimeDowngrade::body(const Piece& p, std::string& out)
{
    switch (m_mode) {
    case Mode::headers:
        break;
    case Mode::leaf_copy:
        if (m_analyzing) {
            m_leaf_8bit = m_leaf_8bit || has_high(p.text);
        } else {
            copy_7bit(p.text, out);
            emit(out, p.eol.empty() ? "" : "\r\n");
        }
        break;
    case Mode::leaf_encode:
        if (!m_pending_eol.empty()) {
            encode_line_break(m_pending_eol, out);
            m_pending_eol.clear();
        }
        encode(p.text, out);
        if (p.last) {
            m_pending_eol = std::string(p.eol);
        }
        break;
    case Mode::ignored:
        if (m_analyzing && in_signed() && has_high(p.text)) {
            refuse("8-bit content inside multipart/signed (converting it would break the signature)");
        }
        if (!m_analyzing) {
            copy_7bit(p.text, out);
            emit(out, p.eol.empty() ? "" : "\r\n");
        }
        break;
    }
}

// Copied text; an 8-bit octet here (a preamble or epilogue, or a message that
// changed between the passes) becomes '?'.
void MimeDowngrade::copy_7bit(std::string_view text, std::string& out)
{
    std::size_t start = out.size();
    out.append(text);
    for (std::size_t i = start; i < out.size(); ++i) {
        if (high(out[i])) {
            if (m_mode == Mode::leaf_copy) {
                refuse("the message changed between the two passes");
            }
            out[i] = '?';
        }
    }
}

// Quoted-printable (RFC 2045 §6.7): the literal characters as they are (rule
// 2), a SP or HTAB encoded when it would end a line (rule 3), every other
// octet as =XX (rule 1), soft line breaks to keep lines at 76 (rule 5).
void MimeDowngrade::qp_token(std::string_view token, std::string& out)
{
    if (m_col + token.size() > k_encoded_line - 1) {
        emit(out, "=\r\n");
        m_col = 0;
    }
    emit(out, token);
    m_col += token.size();
}

void MimeDowngrade::b64_group(std::string& out)
{
    if (m_b64_n == 0) {
        return;
    }
    char quad[4];
    unsigned v = (unsigned(m_b64[0]) << 16) | (unsigned(m_b64[1]) << 8) | unsigned(m_b64[2]);
    quad[0] = k_b64[(v >> 18) & 63];
    quad[1] = k_b64[(v >> 12) & 63];
    quad[2] = m_b64_n > 1 ? k_b64[(v >> 6) & 63] : '=';
    quad[3] = m_b64_n > 2 ? k_b64[v & 63] : '=';
    if (m_col + 4 > k_encoded_line) {
        emit(out, "\r\n");
        m_col = 0;
    }
    emit(out, std::string_view(quad, 4));
    m_col += 4;
    m_b64[0] = m_b64[1] = m_b64[2] = 0;
    m_b64_n = 0;
}

void MimeDowngrade::encode(std::string_view bytes, std::string& out)
{
    if (m_encoding == Encoding::base64) {
        for (char c : bytes) {
            m_b64[m_b64_n++] = static_cast<unsigned char>(c);
            if (m_b64_n == 3) {
                b64_group(out);
            }
        }
        return;
    }
    for (char c : bytes) {
        if (m_qp_space != 0) {
            qp_token(std::string_view(&m_qp_space, 1), out);
            m_qp_space = 0;
        }
        auto u = static_cast<unsigned char>(c);
        if (c == ' ' || c == '\t') {
            m_qp_space = c;
        } else if (u >= 33 && u <= 126 && c != '=') {
            qp_token(std::string_view(&c, 1), out);
        } else {
            char esc[3] = {'=', k_hex[u >> 4], k_hex[u & 15]};
            qp_token(std::string_view(esc, 3), out);
        }
    }
}

void MimeDowngrade::encode_line_break(std::string_view eol, std::string& out)
{
    if (eol.empty()) {
        return;
    }
    if (m_encoding == Encoding::base64) {
        encode(eol, out);
        return;
    }
    if (m_qp_space != 0) {
        char esc[3] = {'=', m_qp_space == ' ' ? '2' : '0', m_qp_space == ' ' ? '0' : '9'};
        qp_token(std::string_view(esc, 3), out);
        m_qp_space = 0;
    }
    emit(out, "\r\n"); // a hard line break: CRLF in the decoded text
    m_col = 0;
}

void MimeDowngrade::encode_finish(bool at_eof, std::string& out)
{
    if (m_encoding == Encoding::base64) {
        b64_group(out);
        if (at_eof && m_col > 0) {
            emit(out, "\r\n");
        }
    } else {
        if (m_qp_space != 0) {
            char esc[3] = {'=', m_qp_space == ' ' ? '2' : '0', m_qp_space == ' ' ? '0' : '9'};
            qp_token(std::string_view(esc, 3), out);
            m_qp_space = 0;
        }
        if (at_eof && m_col > 0) {
            emit(out, "=\r\n"); // a soft line break: the text ends without a line end
        }
    }
    m_col = 0;
}

std::string decode_quoted_printable(std::string_view in)
{
    std::string out;
    while (!in.empty()) {
        std::size_t lf = in.find('\n');
        bool hard = lf != std::string_view::npos;
        std::string_view line = in.substr(0, lf);
        in.remove_prefix(hard ? lf + 1 : in.size());
        if (!line.empty() && line.back() == '\r') {
            line.remove_suffix(1);
        }
        while (!line.empty() && blank(line.back())) {
            line.remove_suffix(1); // rule 3: trailing white space is not content
        }
        if (!line.empty() && line.back() == '=') {
            line.remove_suffix(1); // a soft line break
            hard = false;
        }
        for (std::size_t i = 0; i < line.size(); ++i) {
            if (line[i] == '=' && i + 2 < line.size() && hex_value(line[i + 1]) >= 0 &&
                hex_value(line[i + 2]) >= 0) {
                out += static_cast<char>(hex_value(line[i + 1]) * 16 + hex_value(line[i + 2]));
                i += 2;
            } else {
                out += line[i];
            }
        }
        if (hard) {
            out += "\r\n";
        }
    }
    return out;
}

std::string decode_base64(std::string_view in)
{
    std::string out;
    unsigned v = 0;
    int bits = 0;
    for (char c : in) {
        const char* at = std::find(k_b64, k_b64 + 64, c);
        if (at == k_b64 + 64) {
            if (c == '=') {
                break;
            }
            continue;
        }
        v = (v << 6) | static_cast<unsigned>(at - k_b64);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out += static_cast<char>((v >> bits) & 0xff);
        }
    }
    return out;
}

} // namespace smtpspool
