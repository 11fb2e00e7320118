// smtp_reply: the reply catalogue (codes, RFC 3463 enhanced codes, texts) and render().
#include "smtp/smtp_reply.hpp"

#include "base/limits.hpp"
#include "base/text.hpp"

namespace smtpspool {
std::string render(const Reply& reply)
{
    std::string out;
    std::string code = std::to_string(reply.code);
    std::string_view rest = reply.text;
    for (;;) {
        auto nl = rest.find('\n');
        bool last = nl == std::string_view::npos;
        std::string line = code;
        line += last ? ' ' : '-';
        if (!reply.status.empty()) {
            line += reply.status;
            line += ' ';
        }
        line += text::detail_line(last ? rest : rest.substr(0, nl));
        // RFC 5321 §4.5.3.1.5: at most 512 octets including CRLF.
        if (line.size() > limits::k_max_reply_line - 2) {
            line.resize(limits::k_max_reply_line - 2);
        }
        out += line;
        out += "\r\n";
        if (last) {
            break;
        }
        rest.remove_prefix(nl + 1);
    }
    return out;
}

namespace replies {

Reply greeting(std::string_view host, bool esmtp)
{
    return {220, "", std::string(host) + (esmtp ? " ESMTP" : " SMTP") + " smtpspool ready"};
}
Reply closing(std::string_view host) { return {221, "2.0.0", std::string(host) + " closing connection"}; }
Reply helo_ok(std::string_view host, std::string_view helo)
{
    return {250, "", std::string(host) + " hello " + std::string(helo)};
}
Reply ehlo_ok(std::string_view host, std::string_view helo, std::size_t max_size, bool starttls, bool auth)
{
    // RFC 2034: the EHLO reply carries no enhanced status code.
    return {250, "",
            std::string(host) + " hello " + std::string(helo) + "\nPIPELINING\nSIZE " + std::to_string(max_size) +
                "\n8BITMIME\nENHANCEDSTATUSCODES\nSMTPUTF8\nDSN\nCHUNKING\nBINARYMIME" +
                (starttls ? "\nSTARTTLS" : "") + (auth ? "\nAUTH PLAIN LOGIN" : "") + "\nHELP"};
}
// RFC 3207 §4: 220 to go ahead, 454 when TLS cannot be had now, 501 for
// arguments (no_arguments), 530 for commands that need TLS first.
Reply tls_ready() { return {220, "2.0.0", "ready to start TLS"}; }
Reply tls_active() { return {503, "5.5.1", "TLS is already active"}; }
Reply needs_ehlo(std::string_view verb)
{
    return {503, "5.5.1", "bad sequence of commands: send EHLO before " + std::string(verb)};
}
Reply tls_required() { return {530, "5.7.0", "must issue a STARTTLS command first"}; }
Reply tls_unavailable() { return {454, "4.7.0", "TLS not available due to temporary reason"}; }
// RFC 4954 §4 and §6: 334 challenges (base64, no status code), 235, 535,
// 454, 501 for a cancelled exchange or bad base64, 504, 538; 503 for a
// second AUTH.
Reply auth_challenge(std::string_view base64) { return {334, "", std::string(base64)}; }
Reply auth_ok() { return {235, "2.7.0", "authentication successful"}; }
Reply auth_refused() { return {535, "5.7.8", "authentication credentials invalid"}; }
Reply auth_temporary() { return {454, "4.7.0", "temporary authentication failure"}; }
Reply auth_cancelled() { return {501, "5.0.0", "authentication cancelled"}; }
Reply auth_bad_base64() { return {501, "5.5.2", "cannot decode the response (base64)"}; }
Reply auth_unknown_mechanism()
{
    return {504, "5.5.4", "unrecognized authentication type (PLAIN and LOGIN are offered)"};
}
Reply auth_needs_tls() { return {538, "5.7.11", "encryption required for requested authentication mechanism"}; }
Reply auth_again() { return {503, "5.5.1", "already authenticated"}; }
Reply ok() { return {250, "2.0.0", "OK"}; }
Reply reset_ok() { return {250, "2.0.0", "reset"}; }
Reply sender_ok() { return {250, "2.1.0", "sender OK"}; }
Reply recipient_ok() { return {250, "2.1.5", "recipient OK"}; }
Reply start_data() { return {354, "", "end data with <CR><LF>.<CR><LF>"}; }
// RFC 3030 §2: each chunk but the LAST one gets its own 250.
Reply chunk_received(std::uint64_t octets) { return {250, "2.0.0", std::to_string(octets) + " octets received"}; }
Reply queued(std::string_view id) { return {250, "2.0.0", "message accepted, queued as " + std::string(id)}; }
Reply help()
{
    return {214, "2.0.0",
            "smtpspool, an SMTP receiver (RFC 5321)\n"
            "commands: HELO EHLO MAIL RCPT DATA BDAT RSET NOOP QUIT HELP VRFY EXPN\n"
            "see smtpspool(8)"};
}
Reply cannot_verify()
{
    return {252, "2.5.0", "cannot verify the user, but will accept the message and attempt delivery"};
}
Reply expn_refused() { return {502, "5.5.1", "EXPN not available"}; }

Reply out_of_sequence(Refusal missing)
{
    switch (missing) {
    case Refusal::greeting:
        return {503, "5.5.1", "bad sequence of commands: send HELO or EHLO first"};
    case Refusal::mail:
        return {503, "5.5.1", "bad sequence of commands: send MAIL first"};
    case Refusal::recipient:
        // RFC 5321 §3.3: DATA without an accepted recipient.
        return {554, "5.5.1", "no valid recipients"};
    case Refusal::nested_mail:
        return {503, "5.5.1", "bad sequence of commands: nested MAIL (send RSET to start over)"};
    case Refusal::transaction:
        return {503, "5.5.1", "bad sequence of commands: not inside a transaction (send RSET first)"};
    case Refusal::last_chunk:
        // RFC 3030 §2: the chunks end with BDAT LAST, or the transaction with RSET.
        return {503, "5.5.1", "bad sequence of commands: send BDAT ... LAST to end the message, or RSET"};
    default:
        break;
    }
    return {503, "5.5.1", "bad sequence of commands"};
}
Reply refusal(Refusal why, std::string_view verb)
{
    switch (why) {
    case Refusal::denied:
        return session_refused();
    case Refusal::not_offered:
        return not_implemented();
    case Refusal::needs_ehlo:
        return needs_ehlo(verb);
    case Refusal::tls_active:
        return tls_active();
    case Refusal::authenticated:
        return auth_again();
    case Refusal::tls_required:
        return tls_required();
    case Refusal::needs_tls:
        return auth_needs_tls();
    default:
        return out_of_sequence(why);
    }
}
// RFC 3030 §2: CHUNKING is offered in the EHLO reply only.
// RFC 3030 §3: DATA in a BINARYMIME transaction.
Reply binarymime_needs_bdat()
{
    return {503, "5.5.1", "bad sequence of commands: a BODY=BINARYMIME message must be sent with BDAT"};
}
// RFC 3463 §3.7: X.6.3, conversion required (to send it with DATA) but not supported.
Reply binarymime_undeliverable()
{
    return {550, "5.6.3", "a BODY=BINARYMIME message cannot be delivered to this recipient"};
}
Reply unknown_command() { return {500, "5.5.1", "command unrecognized"}; }
Reply not_implemented() { return {502, "5.5.1", "command not implemented"}; }
Reply ehlo_disabled() { return {502, "5.5.1", "EHLO not supported here, use HELO"}; }
Reply line_too_long() { return {500, "5.5.2", "line too long"}; }
Reply bare_line_end_in_command() { return {500, "5.5.2", "command line must end with CRLF"}; }
Reply syntax(std::string_view usage) { return {501, "5.5.4", "syntax: " + std::string(usage)}; }
Reply no_arguments(std::string_view verb) { return {501, "5.5.4", std::string(verb) + " takes no arguments"}; }
Reply bad_helo() { return {501, "5.5.4", "HELO/EHLO needs one domain name or address literal"}; }
Reply bad_address(std::string_view why) { return {501, "5.1.3", "bad address syntax: " + std::string(why)}; }
Reply address_too_long(std::string_view why) { return {553, "5.1.3", std::string(why)}; }
Reply address_not_allowed(std::string_view why) { return {553, "5.1.3", std::string(why)}; }
Reply non_ascii_address()
{
    // RFC 6531 §3.5 and the IANA enhanced status code registry: X.6.7.
    return {553, "5.6.7", "non-ASCII address needs the SMTPUTF8 parameter"};
}
Reply unknown_parameter(std::string_view name)
{
    return {555, "5.5.4", "parameter not recognized: " + std::string(name)};
}
Reply bad_parameter(std::string_view why) { return {501, "5.5.4", std::string(why)}; }
Reply parameters_need_ehlo() { return {555, "5.5.4", "parameters are not allowed after HELO, use EHLO"}; }
Reply message_too_big(std::size_t max_size)
{
    return {552, "5.3.4", "message exceeds the size limit of " + std::to_string(max_size) + " octets"};
}
Reply too_many_recipients() { return {452, "4.5.3", "too many recipients"}; }
Reply relaying_denied() { return {550, "5.7.1", "relaying denied"}; }
Reply untrusted_routing() { return {550, "5.7.1", "relaying denied: routing characters (% ! @) in the local part"}; }
Reply bare_line_end_in_data()
{
    return {550, "5.5.2", "message refused: bare CR or LF in data (lines must end with CRLF)"};
}
Reply nul_in_data() { return {550, "5.6.0", "message refused: NUL octet in data"}; }
Reply local_error() { return {451, "4.3.0", "local error, message not queued; try again later"}; }
Reply storage_full() { return {452, "4.3.1", "insufficient system storage; try again later"}; }
// RFC 3463 X.3.4: larger than the system lets a file grow (EFBIG: a file-size
// limit such as ulimit -f or LimitFSIZE=); the same message fails again.
Reply file_too_big() { return {552, "5.3.4", "message too big for this system; not queued"}; }
Reply envelope_too_large()
{
    return {552, "5.3.4", "message refused: too many recipients with long addresses or parameters; send it in parts"};
}
Reply timeout(std::string_view host) { return {421, "4.4.2", std::string(host) + " timeout, closing connection"}; }
Reply too_many_errors(std::string_view host)
{
    return {421, "4.7.0", std::string(host) + " too many errors, closing connection"};
}
Reply shutting_down(std::string_view host)
{
    return {421, "4.3.0", std::string(host) + " local error, closing connection"};
}

// RFC 5321 §3.1: a server that will not serve a client says 554 instead of
// 220 and then 503 to everything but QUIT.
Reply client_denied(std::string_view host)
{
    return {554, "5.7.1", std::string(host) + " no SMTP service for this client"};
}
Reply session_refused() { return {503, "5.5.1", "no SMTP service for this client; only QUIT"}; }
Reply sender_denied() { return {553, "5.7.1", "sender address refused"}; }
Reply user_unknown() { return {550, "5.1.1", "user unknown"}; }
Reply alias_loop() { return {550, "5.4.6", "alias loop or expansion too deep"}; }
Reply policy_refused(Stage stage)
{
    switch (stage) {
    case Stage::mail:
        return {553, "5.7.1", "sender refused by local policy"};
    case Stage::rcpt:
        return {550, "5.7.1", "recipient refused by local policy"};
    case Stage::data:
        break;
    }
    return {554, "5.7.1", "message refused by local policy"};
}
Reply policy_tempfail() { return {451, "4.3.0", "local policy check failed; try again later"}; }
Reply line_too_long_in_data(std::size_t max)
{
    return {550, "5.6.0", "message refused: a line longer than " + std::to_string(max) + " octets (without its CRLF)"};
}
Reply leading_white_space()
{
    return {550, "5.6.0", "message refused: the first line starts with white space (a header section cannot begin "
                          "with a continuation line)"};
}
Reply bad_headers(std::string_view why) { return {550, "5.6.0", "malformed header section: " + std::string(why)}; }
Reply mail_loop(std::size_t hops)
{
    return {554, "5.4.6", "mail loop: more than " + std::to_string(hops) + " Received: headers"};
}
Reply rate_limited(std::string_view host)
{
    return {421, "4.7.0", std::string(host) + " too many connections; try again later"};
}
Reply filter_rejected() { return {554, "5.7.1", "refused by a content filter"}; }
Reply filter_tempfail() { return {451, "4.7.1", "a content filter is not available; try again later"}; }
Reply filter_unavailable(std::string_view host)
{
    return {421, "4.7.1", std::string(host) + " a content filter is not available; closing connection"};
}
Reply too_many_messages(std::string_view host)
{
    return {421, "4.7.0", std::string(host) + " too many messages in this session; closing connection"};
}

std::optional<Reply> parse_hook_reply(std::string_view line)
{
    while (!line.empty() && (line.back() == '\r' || line.back() == '\n')) {
        line.remove_suffix(1);
    }
    auto digit = [](char c) { return c >= '0' && c <= '9'; };
    // "NNN X.Y.Z": 3 digits, a space, then class.subject.detail (RFC 3463 §2).
    if (line.size() < 9 || !digit(line[0]) || !digit(line[1]) || !digit(line[2]) || line[3] != ' ') {
        return std::nullopt;
    }
    int code = (line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0');
    if (code < 400 || code > 559) {
        return std::nullopt;
    }
    std::string_view rest = line.substr(4);
    std::size_t end = rest.find(' ');
    std::string_view status = rest.substr(0, end);
    std::string_view text = end == std::string_view::npos ? std::string_view{} : rest.substr(end + 1);
    // class "4" or "5" matching the code, subject 1-3 digits, detail 1-3 digits.
    if (status.size() < 5 || status.size() > 9 || status[0] != line[0] || status[1] != '.') {
        return std::nullopt;
    }
    std::size_t dot = status.find('.', 2);
    if (dot == std::string_view::npos || dot == 2 || dot > 5 || dot + 1 >= status.size() ||
        status.size() - dot - 1 > 3) {
        return std::nullopt;
    }
    for (std::size_t i = 2; i < status.size(); ++i) {
        if (i != dot && !digit(status[i])) {
            return std::nullopt;
        }
    }
    std::string clean = text::printable_line(text, 400);
    if (clean.empty()) {
        clean = "refused by local policy";
    }
    return Reply{code, std::string(status), std::move(clean)};
}

} // namespace replies
} // namespace smtpspool
