// message_facts: the Received: header and the envelope of a message.
#include "smtp/message_facts.hpp"

#include "base/text.hpp"
#include "smtp/dsn.hpp"
#include "smtp/smtp_address.hpp"

namespace smtpspool {
namespace {

// RFC 5321 §4.1.3 address literal for the FROM clause.
std::string address_literal(std::string_view address)
{
    if (address.find(':') != std::string_view::npos) {
        return "[IPv6:" + std::string(address) + "]";
    }
    return "[" + std::string(address) + "]";
}

} // namespace

std::string helo_text(std::string_view helo)
{
    // A checked literal holds only digits, hex letters, '.', ':', "IPv6" and
    // its brackets: nothing that can end the line or open a comment.
    return is_address_literal(helo) ? std::string(helo) : text::header_word(helo);
}

std::string received_header(const MessageFacts& f, std::string_view id)
{
    // RFC 5321 §4.4: from the EHLO name and the peer's address literal, by our
    // name, with the protocol, id, for the recipient when there is only one.
    std::string h = "Received: from " + helo_text(f.helo);
    const bool unknown = !f.peer.local && f.peer.address.empty();
    if (!f.peer.local && !unknown) {
        h += " (";
        if (f.peer.hostname) {
            h += text::header_word(*f.peer.hostname) + " ";
        }
        h += address_literal(f.peer.address) + ")";
    }
    h += "\r\n\tby " + text::header_word(f.hostname) + " (smtpspool";
    if (f.tls) {
        h += ", " + text::header_word(f.tls->version) + " " + text::header_word(f.tls->cipher);
    }
    h += f.peer.local ? ", from a local client)" : unknown ? ", client address unknown)" : ")";
    std::string with = f.esmtp ? "ESMTP" : "SMTP";
    if (f.mail.smtputf8) {
        with = "UTF8SMTP"; // RFC 6531 §3.7.3
    }
    if (f.tls && f.esmtp) {
        with += "S"; // RFC 3848: ESMTPS, UTF8SMTPS
    }
    if (f.auth_user && f.esmtp) {
        with += "A"; // RFC 3848: ESMTPA, ESMTPSA, UTF8SMTPSA
    }
    h += " with " + with + " id " + std::string(id);
    if (f.recipients.size() == 1) {
        h += "\r\n\tfor <" + text::header_value(f.recipients.front()) + ">";
    }
    h += "; " + rfc5322_date(f.started) + "\r\n";
    if (f.add_envelope_to) {
        for (const std::string& r : f.recipients) {
            h += "X-Envelope-To: <" + text::header_value(r) + ">\r\n";
        }
    }
    return h;
}

Envelope make_envelope(const MessageFacts& f)
{
    Envelope e;
    e.received_at = rfc3339_utc(f.started); // the instant of the id and the Received: date
    e.hostname = std::string(f.hostname);
    if (!f.peer.local && !f.peer.address.empty()) {
        e.client.address = f.peer.address;
        e.client.port = f.peer.port;
        e.client.hostname = f.peer.hostname;
        e.client.ident = f.peer.ident;
    }
    e.client.helo = std::string(f.helo);
    e.client.protocol = f.esmtp ? "ESMTP" : "SMTP";
    e.client.tls = f.tls;
    e.client.auth = f.auth_user;
    e.mail_from = f.mail.path.mailbox;
    e.body = f.mail.body;
    e.smtputf8 = f.mail.smtputf8;
    if (!f.mail.ret.empty()) {
        e.dsn_ret = f.mail.ret;
    }
    e.dsn_envid = f.mail.envid;
    e.recipients = f.targets;
    if (!f.may_relay) {
        // The sender address is anyone's: no notice may carry much of what
        // the client chose, nor come without a failure.
        e.dsn_limited = true;
        if (e.dsn_ret) {
            e.dsn_ret = "HDRS";
        }
        for (Recipient& r : e.recipients) {
            r.notify = limited_notify(r.notify);
        }
    }
    return e;
}

} // namespace smtpspool
