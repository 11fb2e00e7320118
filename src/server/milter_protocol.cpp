// milter_protocol: building the packets we send and reading the milter's
// replies (smtpspool(8), MILTERS). Every length is checked before it is used.
#include "server/milter_protocol.hpp"

#include "base/text.hpp"
#include "smtp/smtp_address.hpp"

#include <algorithm>

namespace smtpspool::milter {
namespace {

void put32(std::string& out, std::uint32_t v)
{
    out.push_back(static_cast<char>((v >> 24) & 0xff));
    out.push_back(static_cast<char>((v >> 16) & 0xff));
    out.push_back(static_cast<char>((v >> 8) & 0xff));
    out.push_back(static_cast<char>(v & 0xff));
}

std::uint32_t get32(std::string_view s)
{
    auto b = [&s](std::size_t i) { return static_cast<std::uint32_t>(static_cast<unsigned char>(s[i])); };
    return (b(0) << 24) | (b(1) << 16) | (b(2) << 8) | b(3);
}

// A NUL-ended string: a NUL inside it (a header of a BINARYMIME message, say)
// would end it early and make what follows look like the next string to the
// milter (a macro value turned into a name and value of the sender's choice,
// the rest of a header field hidden), so it goes as a space.
void put_string(std::string& out, std::string_view s)
{
    const std::size_t at = out.size();
    out.append(s);
    std::replace(out.begin() + static_cast<std::ptrdiff_t>(at), out.end(), '\0', ' ');
    out.push_back('\0');
}

// Reads NUL-ended strings off the front of a packet's data.
class Reader {
public:
    explicit Reader(std::string_view data) : m_rest(data) {}
    std::optional<std::uint32_t> u32()
    {
        if (m_rest.size() < 4) {
            return std::nullopt;
        }
        std::uint32_t v = get32(m_rest);
        m_rest.remove_prefix(4);
        return v;
    }
    std::optional<std::string_view> str()
    {
        std::size_t nul = m_rest.find('\0');
        if (nul == std::string_view::npos) {
            return std::nullopt;
        }
        std::string_view s = m_rest.substr(0, nul);
        m_rest.remove_prefix(nul + 1);
        return s;
    }
    bool done() const { return m_rest.empty(); }
    std::string_view rest() const { return m_rest; }

private:
    std::string_view m_rest;
};

Malformed bad(std::string_view what, char command)
{
    std::string reason(what);
    reason += " (reply ";
    auto u = static_cast<unsigned char>(command);
    if (u > 0x20 && u < 0x7f) {
        reason.push_back(command);
    } else {
        static constexpr char hex[] = "0123456789abcdef";
        reason += "\\x";
        reason.push_back(hex[u >> 4]);
        reason.push_back(hex[u & 15]);
    }
    reason += ")";
    return Malformed{std::move(reason)};
}

} // namespace

std::string packet(char command, std::string_view data)
{
    std::string out;
    out.reserve(5 + data.size());
    put32(out, static_cast<std::uint32_t>(data.size() + 1));
    out.push_back(command);
    out.append(data);
    return out;
}

std::string optneg(std::uint32_t version, std::uint32_t actions, std::uint32_t steps)
{
    std::string data;
    put32(data, version);
    put32(data, actions);
    put32(data, steps);
    return packet(command::optneg, data);
}

std::string macros(char for_command, const Macros& list)
{
    std::string data(1, for_command);
    for (const auto& [name, value] : list) {
        put_string(data, name);
        put_string(data, value);
    }
    return packet(command::macro, data);
}

std::string connect(std::string_view hostname, char family, std::uint16_t port, std::string_view address)
{
    std::string data;
    put_string(data, hostname);
    data.push_back(family);
    if (family != 'U') {
        data.push_back(static_cast<char>(port >> 8));
        data.push_back(static_cast<char>(port & 0xff));
        put_string(data, address);
    }
    return packet(command::connect, data);
}

std::string strings(char command, const std::vector<std::string_view>& items)
{
    std::string data;
    for (std::string_view s : items) {
        put_string(data, s);
    }
    return packet(command, data);
}

FrameRead read_frame(std::string_view buffer)
{
    if (buffer.size() < 4) {
        return NeedMore{4 - buffer.size()};
    }
    const std::uint32_t length = get32(buffer);
    if (length == 0) {
        return Malformed{"packet of length 0"};
    }
    if (length > k_max_packet) {
        return Malformed{"packet of " + std::to_string(length) + " octets, over " + std::to_string(k_max_packet)};
    }
    if (buffer.size() - 4 < length) {
        return NeedMore{length - (buffer.size() - 4)};
    }
    return Frame{buffer[4], buffer.substr(5, length - 1), 4 + static_cast<std::size_t>(length)};
}

std::variant<Negotiation, Malformed> parse_negotiation(const Frame& frame, std::uint32_t offered_actions,
                                                       std::uint32_t offered_steps)
{
    if (frame.command != command::optneg) {
        return bad("not an option negotiation", frame.command);
    }
    Reader r(frame.data);
    auto version = r.u32();
    auto actions = r.u32();
    auto steps = r.u32();
    if (!version || !actions || !steps) {
        return bad("option negotiation too short", frame.command);
    }
    if (*version < 2 || *version > k_version) {
        return bad("protocol version " + std::to_string(*version) + " not 2 to 6", frame.command);
    }
    if ((*actions & ~offered_actions) != 0) {
        return bad("actions not offered", frame.command);
    }
    Negotiation n;
    n.version = *version;
    n.actions = *actions;
    // A version before 6 knows no "no reply" steps: it answers every one.
    std::uint32_t known = offered_steps;
    if (n.version < 6) {
        known &= step::no_connect | step::no_helo | step::no_mail | step::no_rcpt | step::no_body |
                 step::no_headers | step::no_eoh | (n.version >= 3 ? step::no_unknown : 0) |
                 (n.version >= 4 ? step::no_data : 0);
    }
    n.steps = *steps & known;
    while (!r.done()) {
        auto stage = r.u32();
        auto list = r.str();
        if (!stage || !list) {
            return bad("macro list truncated", frame.command);
        }
        if (*stage >= k_stages) {
            continue; // a stage we never send macros for
        }
        std::vector<std::string> names;
        std::string_view rest = *list;
        while (!rest.empty()) {
            std::size_t sp = rest.find_first_of(" ,");
            std::string_view name = rest.substr(0, sp);
            if (!name.empty()) {
                names.emplace_back(name);
            }
            rest = sp == std::string_view::npos ? std::string_view{} : rest.substr(sp + 1);
        }
        n.macro_lists[*stage] = std::move(names);
    }
    return n;
}

bool is_modification(Response::Kind kind)
{
    using K = Response::Kind;
    switch (kind) {
    case K::add_header:
    case K::insert_header:
    case K::change_header:
    case K::add_rcpt:
    case K::delete_rcpt:
    case K::replace_body:
    case K::change_from:
    case K::quarantine:
        return true;
    default:
        return false;
    }
}

bool ends_stage(Response::Kind kind)
{
    using K = Response::Kind;
    return kind == K::continue_ || kind == K::accept || kind == K::reject || kind == K::tempfail ||
           kind == K::discard || kind == K::skip;
}

bool valid_header_name(std::string_view name)
{
    if (name.empty() || name.size() > text::k_max_header_word) {
        return false;
    }
    return std::all_of(name.begin(), name.end(), [](char c) {
        auto u = static_cast<unsigned char>(c);
        return u > 0x20 && u < 0x7f && c != ':';
    });
}

bool valid_header_value(std::string_view value)
{
    if (text::has_invisible_control(value)) {
        return false; // C1 controls, bidirectional overrides (UTF-8)
    }
    for (std::size_t i = 0; i < value.size(); ++i) {
        char c = value[i];
        auto u = static_cast<unsigned char>(c);
        if ((u < 0x20 && c != '\t' && c != '\r' && c != '\n') || u == 0x7f) {
            return false; // NUL and the other controls (RFC 5322 §2.2: HT only)
        }
        if (c == '\r') {
            if (i + 1 >= value.size() || value[i + 1] != '\n') {
                return false; // a bare CR
            }
            continue;
        }
        if (c == '\n') {
            // A line end folds: a space or tab follows it (RFC 5322 §2.2.3).
            if (i + 1 >= value.size() || (value[i + 1] != ' ' && value[i + 1] != '\t')) {
                return false;
            }
        }
    }
    return true;
}

std::optional<Reply> parse_reply_code(std::string_view t)
{
    if (t.size() < 3 || (t[0] != '4' && t[0] != '5') || t[1] < '0' || t[1] > '9' || t[2] < '0' || t[2] > '9') {
        return std::nullopt;
    }
    if (t.find_first_of("\r\n") != std::string_view::npos) {
        return std::nullopt;
    }
    if (t.size() > 3 && t[3] != ' ') {
        return std::nullopt;
    }
    Reply r;
    r.code = (t[0] - '0') * 100 + (t[1] - '0') * 10 + (t[2] - '0');
    std::string_view rest = t.size() > 3 ? t.substr(4) : std::string_view{};
    // An enhanced status code (RFC 3463): class.subject.detail, its class the
    // reply's first digit.
    std::size_t sp = rest.find(' ');
    std::string_view word = rest.substr(0, sp);
    auto digits = [](std::string_view d, std::size_t max) {
        return !d.empty() && d.size() <= max &&
               std::all_of(d.begin(), d.end(), [](char c) { return c >= '0' && c <= '9'; });
    };
    std::size_t d1 = word.find('.');
    std::size_t d2 = d1 == std::string_view::npos ? d1 : word.find('.', d1 + 1);
    if (d2 != std::string_view::npos && d1 == 1 && (word[0] == '2' || word[0] == '4' || word[0] == '5') &&
        digits(word.substr(2, d2 - 2), 3) && digits(word.substr(d2 + 1), 3)) {
        if (word[0] != t[0]) {
            return std::nullopt; // 550 4.7.1: the classes differ
        }
        r.status = std::string(word);
        rest = sp == std::string_view::npos ? std::string_view{} : rest.substr(sp + 1);
    }
    r.text = text::detail_line(rest, k_max_reply_text);
    if (r.text.empty()) {
        r.text = r.code >= 500 ? "Message refused by a content filter" : "Try again later, a content filter says";
    }
    return r;
}

std::optional<std::string> parse_milter_address(std::string_view text, bool reverse)
{
    std::string wrapped;
    if (!text.empty() && text.front() == '<') {
        wrapped = std::string(text);
    } else {
        wrapped = "<" + std::string(text) + ">";
    }
    PathParse p = parse_path(wrapped, reverse ? PathKind::reverse : PathKind::forward);
    if (p.error != PathError::none || p.end != wrapped.size()) {
        return std::nullopt;
    }
    if (!reverse && p.path.mailbox.empty()) {
        return std::nullopt;
    }
    return p.path.mailbox;
}

std::variant<Response, Malformed> parse_response(const Frame& frame)
{
    using K = Response::Kind;
    Response out;
    Reader r(frame.data);
    auto simple = [&](K kind) -> std::variant<Response, Malformed> {
        if (!frame.data.empty()) {
            return bad("unexpected data", frame.command);
        }
        out.kind = kind;
        return out;
    };
    // Strings that must end the packet exactly.
    auto header = [&](K kind, bool indexed) -> std::variant<Response, Malformed> {
        out.kind = kind;
        if (indexed) {
            auto index = r.u32();
            if (!index) {
                return bad("header index missing", frame.command);
            }
            out.index = *index;
        }
        auto name = r.str();
        auto value = r.str();
        if (!name || !value || !r.done()) {
            return bad("header reply not two NUL-ended strings", frame.command);
        }
        if (!valid_header_name(*name)) {
            return bad("invalid header name", frame.command);
        }
        if (!valid_header_value(*value)) {
            return bad("invalid header value", frame.command);
        }
        out.name = std::string(*name);
        out.value = std::string(*value);
        return out;
    };
    auto address = [&](K kind, bool reverse, bool params) -> std::variant<Response, Malformed> {
        out.kind = kind;
        auto a = r.str();
        if (!a) {
            return bad("address not NUL-ended", frame.command);
        }
        if (params && !r.done()) {
            // ESMTP parameters follow; they are read and not used.
            if (!r.str()) {
                return bad("parameters not NUL-ended", frame.command);
            }
        }
        if (!r.done()) {
            return bad("data after the address", frame.command);
        }
        auto mailbox = parse_milter_address(*a, reverse);
        if (!mailbox) {
            return bad("invalid address", frame.command);
        }
        out.value = std::move(*mailbox);
        return out;
    };
    switch (frame.command) {
    case 'c':
        return simple(K::continue_);
    case 'a':
        return simple(K::accept);
    case 'r':
        return simple(K::reject);
    case 't':
        return simple(K::tempfail);
    case 'f':
    case '4':
        return simple(K::tempfail);
    case 'd':
        return simple(K::discard);
    case 'p':
        return simple(K::progress);
    case 's':
        return simple(K::skip);
    case 'y': {
        auto t = r.str();
        if (!t || !r.done()) {
            return bad("reply code not one NUL-ended string", frame.command);
        }
        auto reply = parse_reply_code(*t);
        if (!reply) {
            return bad("invalid reply code", frame.command);
        }
        out.kind = reply->code >= 500 ? K::reject : K::tempfail;
        out.reply = std::move(reply);
        return out;
    }
    case 'q': {
        auto t = r.str();
        if (!t || !r.done()) {
            return bad("quarantine reason not one NUL-ended string", frame.command);
        }
        out.kind = K::quarantine;
        out.value = text::detail_line(*t, 200);
        return out;
    }
    case 'h':
        return header(K::add_header, false);
    case 'i':
        return header(K::insert_header, true);
    case 'm':
        return header(K::change_header, true);
    case '+':
        return address(K::add_rcpt, false, false);
    case '2':
        return address(K::add_rcpt, false, true);
    case '-':
        return address(K::delete_rcpt, false, false);
    case 'e':
        return address(K::change_from, true, true);
    case 'b':
        out.kind = K::replace_body;
        out.value = std::string(frame.data);
        return out;
    default:
        return bad("unknown reply", frame.command);
    }
}

void ContentSplitter::reset() { *this = ContentSplitter(); }

void ContentSplitter::feed(std::string_view octets, std::vector<ContentEvent>& out)
{
    while (!octets.empty() && !m_in_body) {
        std::size_t lf = octets.find('\n');
        std::string_view piece = octets.substr(0, lf == std::string_view::npos ? octets.size() : lf + 1);
        octets.remove_prefix(piece.size());
        if (m_line.size() + piece.size() > k_max_field) {
            m_line.append(piece.substr(0, k_max_field - std::min(k_max_field, m_line.size())));
            m_line_cut = true;
        } else if (!m_line_cut) {
            m_line.append(piece);
        }
        if (lf == std::string_view::npos) {
            return;
        }
        if (m_line_cut && (m_line.empty() || m_line.back() != '\n')) {
            m_line.push_back('\n');
        }
        std::string line = std::exchange(m_line, {});
        m_line_cut = false;
        std::string_view text(line);
        std::size_t end_len = text.size() >= 2 && text[text.size() - 2] == '\r' ? 2 : 1;
        header_line(text.substr(0, text.size() - end_len), text.substr(text.size() - end_len), out);
    }
    if (m_in_body && !octets.empty()) {
        body(octets, out);
    }
}

void ContentSplitter::header_line(std::string_view line, std::string_view line_end, std::vector<ContentEvent>& out)
{
    if (line.empty()) {
        end_headers(out); // the empty line belongs to neither part
        return;
    }
    if ((line.front() == ' ' || line.front() == '\t') && m_field) {
        if (m_field->value.size() + 1 + line.size() <= k_max_field) {
            m_field->value += '\n';
            m_field->value += line;
        }
        return;
    }
    std::size_t colon = line.find(':');
    std::string_view name = colon == std::string_view::npos ? std::string_view{} : line.substr(0, colon);
    while (!name.empty() && (name.back() == ' ' || name.back() == '\t')) {
        name.remove_suffix(1);
    }
    if (!valid_header_name(name)) {
        // Not a header field: the body starts here.
        end_headers(out);
        std::string first(line);
        first += line_end;
        body(first, out);
        return;
    }
    flush_field(out);
    m_field = ContentEvent{ContentEvent::Kind::header, std::string(name), std::string(line.substr(colon + 1))};
}

void ContentSplitter::flush_field(std::vector<ContentEvent>& out)
{
    if (m_field) {
        out.push_back(std::move(*m_field));
        m_field.reset();
    }
}

void ContentSplitter::end_headers(std::vector<ContentEvent>& out)
{
    flush_field(out);
    out.push_back(ContentEvent{ContentEvent::Kind::eoh, {}, {}});
    m_in_body = true;
}

void ContentSplitter::body(std::string_view octets, std::vector<ContentEvent>& out)
{
    while (!octets.empty()) {
        std::size_t take = std::min(octets.size(), k_body_chunk - m_body.size());
        m_body.append(octets.substr(0, take));
        octets.remove_prefix(take);
        if (m_body.size() == k_body_chunk) {
            out.push_back(ContentEvent{ContentEvent::Kind::body, {}, std::exchange(m_body, {})});
        }
    }
}

void ContentSplitter::finish(std::vector<ContentEvent>& out)
{
    if (!m_in_body) {
        if (!m_line.empty()) {
            // A last line without its line end.
            std::string line = std::exchange(m_line, {});
            header_line(line, "", out);
        }
        if (!m_in_body) {
            end_headers(out);
        }
    }
    if (!m_body.empty()) {
        out.push_back(ContentEvent{ContentEvent::Kind::body, {}, std::exchange(m_body, {})});
    }
}

std::string_view header_value_for(std::string_view value, bool leading_space)
{
    if (!leading_space && !value.empty() && value.front() == ' ') {
        value.remove_prefix(1);
    }
    return value;
}

} // namespace smtpspool::milter
