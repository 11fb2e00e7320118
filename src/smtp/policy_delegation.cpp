// policy_delegation: service addresses, the request's encoding, the answer's
// reader, actions and how they add up. Pure.
#include "smtp/policy_delegation.hpp"

#include "base/limits.hpp"
#include "base/text.hpp"
#include "smtp/header_check.hpp"

#include <algorithm>
#include <cctype>
#include <charconv>

namespace smtpspool {
namespace {

bool is_digit(char c) { return c >= '0' && c <= '9'; }

std::string upper(std::string_view s)
{
    std::string out(s);
    std::transform(out.begin(), out.end(), out.begin(),
                   [](char c) { return static_cast<char>(std::toupper(static_cast<unsigned char>(c))); });
    return out;
}

// RFC 3463 §2: "C.S.D", class one digit, subject and detail 1 to 3 digits.
bool is_enhanced_code(std::string_view s)
{
    if (s.size() < 5 || s.size() > 9 || !is_digit(s[0]) || s[1] != '.') {
        return false;
    }
    std::size_t dot = s.find('.', 2);
    if (dot == std::string_view::npos || dot == 2 || dot > 5 || dot + 1 >= s.size() || s.size() - dot - 1 > 3) {
        return false;
    }
    for (std::size_t i = 2; i < s.size(); ++i) {
        if (i != dot && !is_digit(s[i])) {
            return false;
        }
    }
    return true;
}

// The text of a reply or a log line: printable US-ASCII, bounded.
std::string clean_text(std::string_view text) { return text::printable_line(text::trim(text), delegation::k_max_text); }

// REJECT, DEFER, DEFER_IF_*: `code` and `status` unless the text starts with
// an enhanced code of the same class, which it then gives.
Reply action_reply(int code, std::string_view status, std::string_view text, std::string_view fallback)
{
    text = text::trim(text);
    std::string_view first = text.substr(0, text.find(' '));
    std::string st(status);
    if (is_enhanced_code(first) && first[0] == status[0]) {
        st = std::string(first);
        text = text::trim(text.substr(first.size()));
    }
    std::string clean = clean_text(text);
    return Reply{code, std::move(st), clean.empty() ? std::string(fallback) : std::move(clean)};
}

// "NNN [X.Y.Z] text": a 4yz or 5yz reply (not 421 or 521, which end a session).
Result<Reply, std::string> explicit_reply(std::string_view value)
{
    if (value.size() < 3 || !is_digit(value[0]) || !is_digit(value[1]) || !is_digit(value[2]) ||
        (value.size() > 3 && value[3] != ' ' && value[3] != '\t')) {
        return fail(std::string("not a reply"));
    }
    const int code = (value[0] - '0') * 100 + (value[1] - '0') * 10 + (value[2] - '0');
    if ((value[0] != '4' && value[0] != '5') || value[1] > '5' || code == 421 || code == 521) {
        return fail("reply code " + std::string(value.substr(0, 3)) + " is not a 4yz or 5yz refusal");
    }
    std::string_view rest = text::trim(value.substr(3));
    std::string_view first = rest.substr(0, rest.find(' '));
    std::string status = value[0] == '4' ? "4.7.1" : "5.7.1";
    if (is_enhanced_code(first)) {
        if (first[0] != value[0]) {
            return fail(std::string("enhanced code of another class than the reply code"));
        }
        status = std::string(first);
        rest = text::trim(rest.substr(first.size()));
    }
    std::string clean = clean_text(rest);
    return Reply{code, std::move(status), clean.empty() ? std::string("refused by policy service") : std::move(clean)};
}

// RFC 5322 §2.2, §2.1.1: "name: body" on one line of printable US-ASCII or
// HT, at most 998 octets; the name at most 76 octets, so that "name: "
// leaves room for a value on a 78-octet line.
bool header_field_ok(std::string_view line)
{
    std::size_t colon = line.find(':');
    if (colon == std::string_view::npos || colon == 0 || colon > 76 || line.size() > limits::k_max_header_line ||
        !is_field_name(line.substr(0, colon))) {
        return false;
    }
    return std::all_of(line.begin(), line.end(), [](char c) {
        auto u = static_cast<unsigned char>(c);
        return c == '\t' || (u >= 0x20 && u < 0x7f);
    });
}

} // namespace

std::optional<PolicyServiceAddress> parse_policy_service(std::string_view spec, std::string& why)
{
    PolicyServiceAddress a;
    if (spec.starts_with("unix:")) {
        a.kind = PolicyServiceAddress::Kind::unix_socket;
        a.path = std::string(spec.substr(5));
        // sockaddr_un's sun_path holds 108 octets with its NUL.
        if (a.path.empty() || a.path.size() > 107 || a.path.find('\0') != std::string::npos) {
            why = "a socket path of 1 to 107 octets after unix:";
            return std::nullopt;
        }
        return a;
    }
    if (!spec.starts_with("inet:")) {
        why = "expected unix:/path or inet:host:port";
        return std::nullopt;
    }
    std::string_view rest = spec.substr(5);
    std::size_t colon = rest.rfind(':');
    if (colon == std::string_view::npos || colon == 0) {
        why = "expected inet:host:port";
        return std::nullopt;
    }
    std::string_view host = rest.substr(0, colon);
    std::string_view port = rest.substr(colon + 1);
    if (host.front() == '[') {
        if (host.size() < 3 || host.back() != ']') {
            why = "an IPv6 address goes in brackets: inet:[::1]:port";
            return std::nullopt;
        }
        host = host.substr(1, host.size() - 2);
    } else if (host.find(':') != std::string_view::npos) {
        why = "an IPv6 address goes in brackets: inet:[::1]:port";
        return std::nullopt;
    }
    const bool host_ok = std::all_of(host.begin(), host.end(), [](char c) {
        return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '.' || c == '-' || c == ':' || c == '_';
    });
    unsigned n = 0;
    auto [ptr, ec] = std::from_chars(port.data(), port.data() + port.size(), n);
    if (!host_ok || host.empty() || host.size() > limits::k_max_domain) {
        why = "not a host name or address";
        return std::nullopt;
    }
    if (port.empty() || ec != std::errc() || ptr != port.data() + port.size() || n == 0 || n > 65535) {
        why = "not a port (1 to 65535)";
        return std::nullopt;
    }
    a.kind = PolicyServiceAddress::Kind::inet;
    a.host = std::string(host);
    a.port = std::to_string(n);
    return a;
}

namespace delegation {

std::string encode_request(const Attributes& attributes)
{
    std::string out;
    for (const auto& [name, value] : attributes) {
        out += name;
        out += '=';
        out += text::detail_line(value);
        out += '\n';
    }
    out += '\n';
    return out;
}

AnswerReader::Status AnswerReader::feed(std::string_view bytes, std::size_t& used)
{
    used = 0;
    while (m_status == Status::more && used < bytes.size()) {
        const char c = bytes[used++];
        if (++m_total > k_max_answer || c == '\0') {
            m_status = Status::malformed;
            break;
        }
        if (c != '\n') {
            m_lines += c;
            continue;
        }
        if (m_lines.size() > m_line_begin && m_lines.back() == '\r') {
            m_lines.pop_back();
        }
        if (m_lines.size() == m_line_begin) {
            m_status = Status::done; // the empty line
            break;
        }
        m_lines += '\n';
        m_line_begin = m_lines.size();
    }
    return m_status;
}

void AnswerReader::reset()
{
    m_status = Status::more;
    m_lines.clear();
    m_total = 0;
    m_line_begin = 0;
}

Result<std::string, std::string> answer_action(std::string_view lines)
{
    std::optional<std::string> action;
    while (!lines.empty()) {
        std::size_t lf = lines.find('\n');
        std::string_view line = lines.substr(0, lf);
        lines = lf == std::string_view::npos ? std::string_view{} : lines.substr(lf + 1);
        std::size_t eq = line.find('=');
        if (eq == std::string_view::npos || eq == 0) {
            return fail("a line that is not name=value: " + text::printable_line(line, 80));
        }
        if (line.find('\r') != std::string_view::npos) {
            return fail(std::string("a CR inside a line"));
        }
        if (line.substr(0, eq) == "action") {
            if (action) {
                return fail(std::string("two actions"));
            }
            action = std::string(line.substr(eq + 1));
        }
    }
    if (!action) {
        return fail(std::string("no action"));
    }
    return std::move(*action);
}

Result<Action, std::string> parse_action(std::string_view value)
{
    value = text::trim(value);
    if (value.empty()) {
        return fail(std::string("an empty action"));
    }
    Action a;
    if (is_digit(value[0])) {
        auto reply = explicit_reply(value);
        if (!reply) {
            return fail(reply.error());
        }
        a.kind = reply.value().code >= 500 ? Action::Kind::reject : Action::Kind::defer;
        a.text = reply.value().text;
        a.reply = std::move(reply.value());
        return a;
    }
    std::size_t end = value.find_first_of(" \t");
    const std::string word = upper(value.substr(0, end));
    const std::string_view rest = end == std::string_view::npos ? std::string_view{} : text::trim(value.substr(end));
    a.text = clean_text(rest);
    using K = Action::Kind;
    if (word == "OK") {
        a.kind = K::ok;
    } else if (word == "DUNNO") {
        a.kind = K::dunno;
    } else if (word == "REJECT") {
        a.kind = K::reject;
        a.reply = action_reply(550, "5.7.1", rest, "refused by policy service");
    } else if (word == "DEFER") {
        a.kind = K::defer;
        a.reply = action_reply(450, "4.7.1", rest, "try again later");
    } else if (word == "DEFER_IF_PERMIT") {
        a.kind = K::defer_if_permit;
        a.reply = action_reply(450, "4.7.1", rest, "try again later");
    } else if (word == "DEFER_IF_REJECT") {
        a.kind = K::defer_if_reject;
        a.reply = action_reply(450, "4.7.1", rest, "try again later");
    } else if (word == "PREPEND") {
        if (!header_field_ok(rest)) {
            return fail(std::string("PREPEND without a header field line"));
        }
        a.kind = K::prepend;
        a.header = std::string(rest);
    } else if (word == "HOLD") {
        a.kind = K::hold;
    } else if (word == "DISCARD") {
        a.kind = K::discard;
    } else if (word == "WARN") {
        a.kind = K::warn;
    } else if (word == "INFO") {
        a.kind = K::info;
    } else {
        return fail("an action we do not take: " + text::printable_line(word, 40));
    }
    return a;
}

const char* kind_name(Action::Kind kind)
{
    switch (kind) {
    case Action::Kind::ok:
        return "ok";
    case Action::Kind::dunno:
        return "dunno";
    case Action::Kind::reject:
        return "reject";
    case Action::Kind::defer:
        return "defer";
    case Action::Kind::defer_if_permit:
        return "defer_if_permit";
    case Action::Kind::defer_if_reject:
        return "defer_if_reject";
    case Action::Kind::prepend:
        return "prepend";
    case Action::Kind::hold:
        return "hold";
    case Action::Kind::discard:
        return "discard";
    case Action::Kind::warn:
        return "warn";
    case Action::Kind::info:
        break;
    }
    return "info";
}

bool Decision::add(const Action& a)
{
    using K = Action::Kind;
    switch (a.kind) {
    case K::ok:
        return false;
    case K::dunno:
    case K::warn:
    case K::info:
        return true;
    case K::reject:
    case K::defer:
        m_refusal = a.reply;
        m_rejected = a.reply->code >= 500;
        return false;
    case K::defer_if_permit:
        if (!m_defer_if_permit) {
            m_defer_if_permit = a.reply;
        }
        return true;
    case K::defer_if_reject:
        if (!m_defer_if_reject) {
            m_defer_if_reject = a.reply;
        }
        return true;
    case K::prepend:
        if (m_headers.size() < k_max_prepend_fields) {
            m_headers.push_back(a.header);
        } else {
            ++m_dropped;
        }
        return true;
    case K::hold:
        m_hold = true;
        return true;
    case K::discard:
        m_discard = true;
        return false;
    }
    return true;
}

bool Decision::add_failure(const std::optional<Reply>& refusal)
{
    if (!refusal) {
        return true;
    }
    m_refusal = refusal;
    m_rejected = refusal->code >= 500;
    return false;
}

Decision::Outcome Decision::outcome() const
{
    Outcome o;
    if (m_refusal) {
        o.refusal = m_rejected && m_defer_if_reject ? m_defer_if_reject : m_refusal;
        return o;
    }
    if (m_defer_if_permit) {
        o.refusal = m_defer_if_permit;
        return o;
    }
    for (const std::string& h : m_headers) {
        o.headers += h;
        o.headers += "\r\n";
    }
    o.hold = m_hold;
    o.discard = m_discard;
    o.headers_dropped = m_dropped;
    return o;
}

Reply service_unavailable() { return Reply{451, "4.3.5", "policy service unavailable, try again later"}; }

} // namespace delegation
} // namespace smtpspool
