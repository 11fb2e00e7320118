// smtp_client: RFC 5321 §4.2 (reply syntax), §4.1.1.1 (EHLO keywords), §4.5.2
// (transparency), §2.3.8 (CRLF only), §4.1.2 (paths) for the outbound client.
#include "delivery/smtp_client.hpp"
#include "delivery/smtp_security.hpp"

#include "smtp/dsn.hpp"

#include "base/limits.hpp"
#include "base/text.hpp"
#include "smtp/smtp_address.hpp"

#include <algorithm>

namespace smtpspool {
namespace {

bool is_digit(char c) { return c >= '0' && c <= '9'; }

// RFC 5321 §4.2: Reply-code = %x32-35 %x30-35 %x30-39.
bool is_reply_code(std::string_view s)
{
    return s.size() >= 3 && s[0] >= '2' && s[0] <= '5' && s[1] >= '0' && s[1] <= '5' && is_digit(s[2]);
}

} // namespace

void ReplyParser::fail(std::string why) { m_error = std::move(why); }

void ReplyParser::end_line()
{
    std::string_view line = m_line;
    if (!is_reply_code(line) || (line.size() > 3 && line[3] != '-' && line[3] != ' ')) {
        fail("malformed reply line \"" + text::detail_line(line, 60) + "\"");
        return;
    }
    int code = (line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0');
    if (!m_reply.lines.empty() && code != m_reply.code) {
        fail("reply code changes from " + std::to_string(m_reply.code) + " to " + std::to_string(code) +
             " within one reply");
        return;
    }
    bool more = line.size() > 3 && line[3] == '-';
    if (more && m_reply.lines.size() + 1 >= k_max_server_reply_lines) {
        fail("reply of more than " + std::to_string(k_max_server_reply_lines) + " lines");
        return;
    }
    m_reply.code = code;
    m_reply.lines.emplace_back(line.size() > 4 ? line.substr(4) : std::string_view());
    m_line.clear();
    m_ready = !more;
}

std::size_t ReplyParser::feed(std::string_view in)
{
    if (failed() || m_ready) {
        return 0;
    }
    std::size_t i = 0;
    while (i < in.size()) {
        char c = in[i++];
        if (c == '\n') {
            // CRLF ends a line (§2.3.8); a bare LF is tolerated from servers.
            m_cr = false;
            end_line();
            if (m_ready || failed()) {
                return i;
            }
            continue;
        }
        if (m_cr) {
            fail("CR not followed by LF in a reply");
            return i;
        }
        if (c == '\r') {
            m_cr = true;
            continue;
        }
        if (m_line.size() + 2 >= k_max_server_reply_line) {
            fail("reply line longer than " + std::to_string(k_max_server_reply_line) + " octets");
            return i;
        }
        m_line.push_back(c);
    }
    return i;
}

ServerReply ReplyParser::take()
{
    ServerReply out;
    if (m_ready) {
        out = std::move(m_reply);
    }
    m_reply = {};
    m_ready = false;
    return out;
}

EhloFeatures parse_ehlo(const ServerReply& reply)
{
    EhloFeatures f;
    // RFC 5321 §4.1.1.1: ehlo-line = ehlo-keyword *( SP ehlo-param ); some old
    // servers write "KEYWORD=param", so '=' also ends the keyword.
    for (std::size_t i = 1; i < reply.lines.size(); ++i) {
        std::string_view line = reply.lines[i];
        std::size_t end = line.find_first_of(" =");
        std::string keyword = ascii_lower(line.substr(0, end));
        std::string_view param = end == std::string_view::npos ? std::string_view() : line.substr(end + 1);
        if (keyword == "pipelining") {
            f.pipelining = true;
        } else if (keyword == "8bitmime") {
            f.eight_bit_mime = true;
        } else if (keyword == "smtputf8") {
            f.smtputf8 = true;
        } else if (keyword == "dsn") {
            f.dsn = true;
        } else if (keyword == "starttls") {
            f.starttls = true;
        } else if (keyword == "chunking") {
            f.chunking = true;
        } else if (keyword == "binarymime") {
            f.binary_mime = true;
        } else if (keyword == "size") {
            f.size = true;
            // RFC 1870 §4: size-param = [1*DIGIT]; absent or 0 means no fixed limit.
            std::uint64_t n = 0;
            bool valid = !param.empty() && param.size() <= 19;
            for (char c : param) {
                if (!is_digit(c)) {
                    valid = false;
                    break;
                }
                n = n * 10 + static_cast<std::uint64_t>(c - '0');
            }
            f.max_size = valid ? n : 0;
        }
    }
    if (!reply.lines.empty()) {
        f.auth = offered_auth_mechanisms(std::vector<std::string>(reply.lines.begin() + 1, reply.lines.end()));
    }
    return f;
}

void DotStuffer::feed(std::string_view in, std::string& out)
{
    std::size_t i = 0;
    while (i < in.size()) {
        char c = in[i];
        if (m_cr) {
            // The held-back CR: with its LF a line end, alone a bare CR; CRLF either way.
            out += "\r\n";
            m_cr = false;
            m_line_start = true;
            if (c == '\n') {
                ++i;
                continue;
            }
        }
        if (c == '\r') {
            m_cr = true;
            ++i;
            continue;
        }
        if (c == '\n') {
            out += "\r\n"; // a bare LF
            m_line_start = true;
            ++i;
            continue;
        }
        if (m_line_start && c == '.') {
            out += '.'; // §4.5.2: double a leading period
        }
        m_line_start = false;
        // Copy the run of ordinary octets at once.
        std::size_t stop = in.find_first_of("\r\n", i);
        if (stop == std::string_view::npos) {
            stop = in.size();
        }
        out.append(in.substr(i, stop - i));
        i = stop;
    }
}

void DotStuffer::finish(std::string& out)
{
    if (m_cr || !m_line_start) {
        out += "\r\n";
    }
    out += ".\r\n";
    m_cr = false;
    m_line_start = true;
}

bool is_bare_postmaster(std::string_view address) { return ascii_lower(address) == "postmaster"; }

std::string address_refusal(std::string_view address, bool smtputf8)
{
    auto has = [address](auto pred) { return std::any_of(address.begin(), address.end(), pred); };
    if (has([](char c) { return static_cast<unsigned char>(c) < 0x20 || c == 0x7f; }) ||
        text::has_invisible_control(address)) {
        return "address contains a control character";
    }
    if (has([](char c) { return c == '<' || c == '>'; })) {
        return "address contains '<' or '>'";
    }
    if (!smtputf8 && has([](char c) { return static_cast<unsigned char>(c) >= 0x80; })) {
        return "non-ASCII address in a message without SMTPUTF8";
    }
    if (address.size() + 2 > limits::k_max_path) {
        return "address longer than " + std::to_string(limits::k_max_path - 2) + " octets";
    }
    if (!address.empty() && address.find('@') == std::string_view::npos && !is_bare_postmaster(address)) {
        return "address without a domain";
    }
    return "";
}

std::string reply_detail(const ServerReply& reply)
{
    std::string text = std::to_string(reply.code);
    bool first = true;
    for (const std::string& line : reply.lines) {
        if (line.empty()) {
            continue;
        }
        text += first ? " " : "; ";
        text += line;
        first = false;
        if (text.size() > k_max_detail) {
            break;
        }
    }
    return text::detail_line(text, k_max_detail);
}

std::string mail_command(const Envelope& envelope, const EhloFeatures& features, std::uint64_t size,
                         std::optional<Body> body)
{
    std::string mail = "MAIL FROM:<" + envelope.mail_from + ">";
    if (features.size) {
        mail += " SIZE=" + std::to_string(size);
    }
    Body declared = body.value_or(envelope.body);
    if (declared != Body::seven_bit) {
        mail += " BODY=" + std::string(body_name(declared));
    }
    if (envelope.smtputf8) {
        mail += " SMTPUTF8";
    }
    if (features.dsn && envelope.dsn_ret) {
        mail += " RET=" + *envelope.dsn_ret;
    }
    if (features.dsn && envelope.dsn_envid) {
        mail += " ENVID=" + xtext_encode(*envelope.dsn_envid);
    }
    return mail + "\r\n";
}

std::string rcpt_command(const Recipient& recipient, const EhloFeatures& features)
{
    std::string rcpt = "RCPT TO:<" + recipient.address + ">";
    if (features.dsn && recipient.notify) {
        std::string joined;
        for (const std::string& k : *recipient.notify) {
            joined += (joined.empty() ? "" : ",") + k;
        }
        rcpt += " NOTIFY=" + joined;
    }
    if (features.dsn && recipient.orcpt) {
        rcpt += " ORCPT=" + orcpt_parameter(*recipient.orcpt);
    }
    return rcpt + "\r\n";
}

} // namespace smtpspool
