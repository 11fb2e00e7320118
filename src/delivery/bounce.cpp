// bounce: composing the RFC 3464 report (text part, message/delivery-status,
// text/rfc822-headers of the original). RFC 3834: Auto-Submitted.
#include "delivery/bounce.hpp"

#include "base/text.hpp"

#include <algorithm>
#include <cctype>

namespace smtpspool {
namespace {

bool digit(char c) { return c >= '0' && c <= '9'; }

} // namespace

std::string status_code_of(std::string_view detail, std::string_view fallback)
{
    // "NNN X.Y.Z ..." with X in 2, 4, 5 (RFC 3463 §2).
    if (detail.size() >= 9 && digit(detail[0]) && digit(detail[1]) && digit(detail[2]) && detail[3] == ' ') {
        std::string_view rest = detail.substr(4);
        std::size_t end = rest.find(' ');
        std::string_view code = rest.substr(0, end);
        int dots = 0;
        bool ok = !code.empty() && (code[0] == '2' || code[0] == '4' || code[0] == '5');
        for (char c : code) {
            if (c == '.') {
                ++dots;
            } else if (!digit(c)) {
                ok = false;
            }
        }
        if (ok && dots == 2 && code.size() <= 11) {
            return std::string(code);
        }
    }
    return std::string(fallback);
}

namespace {

// RFC 5322 §3.6.8: a field name is printable ASCII but ':', then the colon
// (§4.5.1 lets white space come before it).
bool is_field_start(std::string_view line)
{
    std::size_t i = 0;
    while (i < line.size() && line[i] > ' ' && line[i] < 0x7f && line[i] != ':') {
        ++i;
    }
    const std::size_t name = i;
    while (i < line.size() && (line[i] == ' ' || line[i] == '\t')) {
        ++i;
    }
    return name > 0 && i < line.size() && line[i] == ':';
}

} // namespace

std::string header_section(std::string_view message_start, std::size_t max)
{
    std::size_t whole = 0; // the end of the last field known to be whole and within max
    std::size_t pos = 0;
    bool in_field = false;
    while (pos <= max) {
        const std::size_t crlf = message_start.find("\r\n", pos);
        if (crlf == std::string_view::npos) {
            // An unended last line is not taken; the field before it is
            // whole unless the line may continue it (or the text ends there).
            const std::string_view rest = message_start.substr(pos);
            if (in_field && !rest.empty() && rest[0] != ' ' && rest[0] != '\t') {
                whole = pos;
            }
            break;
        }
        const std::string_view line = message_start.substr(pos, crlf - pos);
        const bool stray = line.find_first_of("\r\n") != std::string_view::npos;
        const bool continued = in_field && !line.empty() && (line[0] == ' ' || line[0] == '\t') && !stray;
        if (!continued) {
            whole = in_field ? pos : whole; // the field before this line is whole
            if (stray || !is_field_start(line)) {
                break; // the empty line, or a line that is no header field
            }
            in_field = true;
        }
        pos = crlf + 2;
    }
    return std::string(message_start.substr(0, whole));
}

namespace {

bool has_action(const BounceInput& in, Action a)
{
    for (const ReportedRecipient& r : in.recipients) {
        if (r.action == a) {
            return true;
        }
    }
    return false;
}

bool is_smtp_reply(std::string_view detail)
{
    return detail.size() > 3 && digit(detail[0]) && digit(detail[1]) && digit(detail[2]);
}

bool has_non_ascii(std::string_view s)
{
    return std::any_of(s.begin(), s.end(), [](char c) { return static_cast<unsigned char>(c) >= 0x80; });
}

// RFC 6533 §3: an address of type utf-8 as utf-8-addr-unitext: UTF-8 as is,
// and the ASCII octets that the form leaves out (controls, space, '+', '='
// and the backslash) as \x{HH}.
std::string utf8_type_address(std::string_view address)
{
    static constexpr char hex[] = "0123456789ABCDEF";
    std::string out;
    for (char c : address) {
        const auto u = static_cast<unsigned char>(c);
        if (u <= 0x20 || u == 0x7f || c == '+' || c == '=' || c == '\\') {
            out += "\\x{";
            out += hex[u >> 4];
            out += hex[u & 0xf];
            out += '}';
        } else {
            out += c;
        }
    }
    return out;
}

// The text part's list of one action's recipients.
std::string text_list(const BounceInput& in, Action a)
{
    std::string out;
    for (const ReportedRecipient& r : in.recipients) {
        if (r.action != a) {
            continue;
        }
        out += "<" + text::header_value(r.address) + ">";
        if (a == Action::failed || (a == Action::delayed && !r.detail.empty()) ||
            (a == Action::relayed && is_smtp_reply(r.detail))) {
            out += ": " + text::header_value(r.detail);
        }
        out += "\r\n";
    }
    return out;
}

} // namespace

std::string compose_bounce(const BounceInput& in)
{
    const std::string boundary = in.id + "/" + in.hostname;
    const bool failure = has_action(in, Action::failed);
    std::string date = rfc5322_date(in.now);
    const std::string& returned = in.original_message ? *in.original_message : in.original_headers;
    bool eight_bit = in.original.smtputf8 && in.original_message;
    for (char c : in.original_message ? header_section(returned, returned.size()) : returned) {
        eight_bit = eight_bit || static_cast<unsigned char>(c) >= 0x80;
    }
    std::string m;
    m +=
        "Received: by " + in.hostname + " (smtpspool, delivery status notification) id " + in.id + "; " + date + "\r\n";
    m += "From: Mail Delivery System <MAILER-DAEMON@" + in.hostname + ">\r\n";
    m += "To: <" + text::header_value(in.original.mail_from) + ">\r\n";
    const bool delay = has_action(in, Action::delayed);
    m += failure ? "Subject: Undelivered Mail Returned to Sender\r\n"
         : delay ? "Subject: Delayed Mail (still being retried)\r\n"
                 : "Subject: Successful Mail Delivery Report\r\n";
    m += "Date: " + date + "\r\n";
    m += "Message-ID: <" + in.id + "@" + in.hostname + ">\r\n";
    m += "Auto-Submitted: auto-replied\r\n";
    m += "MIME-Version: 1.0\r\n";
    m += "Content-Type: multipart/report; report-type=delivery-status;\r\n\tboundary=\"" + boundary + "\"\r\n";
    m += "\r\nThis is a MIME-encapsulated message.\r\n\r\n";
    m += "--" + boundary + "\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n";
    m += "This is the mail system at " + in.hostname + ".\r\n\r\n";
    const std::string yours = "Your message " + in.original.id + " of " + in.original.received_at;
    if (failure) {
        m += yours + " could not be delivered to the following\r\nrecipients:\r\n\r\n" + text_list(in, Action::failed);
    }
    if (delay) {
        m += yours + " has not yet been delivered to the following\r\nrecipients:\r\n\r\n" +
             text_list(in, Action::delayed) + "\r\nNo action is required on your part. Delivery will be tried again";
        m += in.retry_until ? " until\r\n" + rfc5322_date(*in.retry_until) + ";" : ";";
        m += " if it still fails then, you will get\r\na notice saying so.\r\n";
    }
    if (has_action(in, Action::delivered)) {
        m += yours + " was delivered to the following\r\nrecipients:\r\n\r\n" + text_list(in, Action::delivered);
    }
    if (has_action(in, Action::relayed)) {
        m +=
            yours +
            " was passed on to the following\r\nrecipients by a system that does not send delivery notifications,\r\n" +
            "so you may hear no more about them:\r\n\r\n" + text_list(in, Action::relayed);
    }
    if (in.too_big_to_return) {
        m += "\r\nThe message was too big to be returned whole; its header section follows.\r\n";
    }
    // RFC 6533 §6: with an address that is not ASCII, the report is
    // message/global-delivery-status and such an address has the type utf-8.
    const bool global = std::any_of(in.recipients.begin(), in.recipients.end(),
                                    [](const ReportedRecipient& r) { return has_non_ascii(r.address); });
    m += "\r\n--" + boundary + "\r\nContent-Type: " +
         (global ? "message/global-delivery-status" : "message/delivery-status") + "\r\n\r\n";
    // RFC 3464 §2.2: per-message fields.
    if (in.original.dsn_envid) {
        m += "Original-Envelope-Id: " + text::header_value(*in.original.dsn_envid) + "\r\n";
    }
    m += "Reporting-MTA: dns; " + in.hostname + "\r\n";
    m += "X-Smtpspool-Queue-ID: " + in.original.id + "\r\n";
    if (auto arrived = parse_rfc3339_utc(in.original.received_at)) {
        m += "Arrival-Date: " + rfc5322_date(*arrived) + "\r\n";
    }
    // RFC 3464 §2.3: per-recipient fields.
    for (const ReportedRecipient& r : in.recipients) {
        m += "\r\n";
        if (r.orcpt) {
            // RFC 3461 §6.3: the ORCPT parameter as Original-Recipient.
            std::size_t semi = r.orcpt->find(';');
            m += "Original-Recipient: " + text::header_value(r.orcpt->substr(0, semi)) + "; " +
                 text::header_value(semi == std::string::npos ? "" : r.orcpt->substr(semi + 1)) + "\r\n";
        }
        if (has_non_ascii(r.address)) {
            m += "Final-Recipient: utf-8; " + text::header_value(utf8_type_address(r.address)) + "\r\n";
        } else {
            m += "Final-Recipient: rfc822; " + text::header_value(r.address) + "\r\n";
        }
        switch (r.action) {
        case Action::failed:
            m += "Action: failed\r\n";
            m += "Status: " + status_code_of(r.detail, r.expired ? "4.4.7" : "5.0.0") + "\r\n";
            break;
        case Action::delivered:
            m += "Action: delivered\r\nStatus: 2.0.0\r\n";
            break;
        case Action::relayed:
            m += "Action: relayed\r\nStatus: 2.0.0\r\n";
            break;
        case Action::delayed:
            // A temporary failure's code, whatever class the detail names.
            m += "Action: delayed\r\nStatus: 4" + status_code_of(r.detail, "4.0.0").substr(1) + "\r\n";
            break;
        }
        if (is_smtp_reply(r.detail)) {
            m += "Diagnostic-Code: smtp; " + text::header_value(r.detail) + "\r\n";
        } else if (r.action == Action::failed || (r.action == Action::delayed && !r.detail.empty())) {
            // A local delivery's own words (a maildir path, say) are not for the
            // sender when it succeeded.
            m += "Diagnostic-Code: x-local; " + text::header_value(r.detail) + "\r\n";
        }
        m += "Last-Attempt-Date: " + (in.last_attempt ? rfc5322_date(*in.last_attempt) : date) + "\r\n";
        if (r.action == Action::delayed && in.retry_until) {
            m += "Will-Retry-Until: " + rfc5322_date(*in.retry_until) + "\r\n";
        }
    }
    m += "\r\n--" + boundary + "\r\n";
    // RFC 6533: headers with UTF-8 travel as message/global-headers, RFC 6532
    // §3.7: such a message as message/global.
    if (in.original_message) {
        m += std::string("Content-Type: ") + (eight_bit ? "message/global" : "message/rfc822") + "\r\n\r\n";
    } else {
        m +=
            std::string("Content-Type: ") + (eight_bit ? "message/global-headers" : "text/rfc822-headers") + "\r\n\r\n";
    }
    m += returned;
    if (in.original_message && !returned.empty() && returned.back() != '\n') {
        m += "\r\n";
    }
    m += "\r\n--" + boundary + "--\r\n";
    return m;
}

} // namespace smtpspool
