// session: dispatch through the NFA table, the verb handlers, DATA streaming to
// the spool, the error budget. Replies come only from smtp_reply.
#include "smtp/session.hpp"

#include "base/limits.hpp"

#include <algorithm>

namespace smtpspool {
namespace {

// Client-supplied text for a trace header: printable ASCII only, no comment
// or literal delimiters, bounded (RFC 5322 §2.1.1 lines stay under 998).
std::string header_safe(std::string_view text)
{
    std::string out;
    for (char c : text.substr(0, 255)) {
        auto u = static_cast<unsigned char>(c);
        bool ok =
            u > 0x20 && u < 0x7f && c != '(' && c != ')' && c != '[' && c != ']' && c != '\\' && c != ';' && c != '"';
        out.push_back(ok ? c : '?');
    }
    return out;
}

// RFC 5321 §4.1.3 address literal for the FROM clause.
std::string address_literal(std::string_view address)
{
    if (address.find(':') != std::string_view::npos) {
        return "[IPv6:" + std::string(address) + "]";
    }
    return "[" + std::string(address) + "]";
}

// A HELO/EHLO argument: one word of printable octets (RFC 5321 §4.1.1.1 asks
// for a domain or address literal; §4.1.4 forbids refusing mail over it).
bool is_helo_word(std::string_view arg)
{
    if (arg.empty()) {
        return false;
    }
    return std::all_of(arg.begin(), arg.end(), [](char c) {
        auto u = static_cast<unsigned char>(c);
        return u > 0x20 && u != 0x7f;
    });
}

} // namespace

Session::Session(SessionConfig config, SpoolPort& spool, LogSink& log, const Clock& clock)
    : Session(std::move(config), spool, m_accept_all, log, clock)
{
}

Session::Session(SessionConfig config, SpoolPort& spool, PolicyPort& policy, LogSink& log, const Clock& clock)
    : m_config(std::move(config)), m_spool(spool), m_policy(policy), m_log(log), m_clock(clock)
{
    for (std::string& d : m_config.local_domains) {
        d = ascii_lower(d);
    }
}

void Session::reply(const Reply& r)
{
    m_out += render(r);
    if (is_client_error(r) && !m_closed) {
        count_error();
    }
}

void Session::count_error()
{
    ++m_errors;
    if (m_config.max_errors > 0 && m_errors >= m_config.max_errors) {
        m_out += render(replies::too_many_errors(m_config.hostname));
        close("too-many-errors");
    }
}

void Session::close(std::string_view reason)
{
    if (m_closed) {
        return;
    }
    if (m_data || m_bdat) {
        m_spool.abort();
        m_data.reset();
        m_bdat.reset();
    }
    m_bdat_chunk.reset();
    m_closed = true;
    m_log.log(LogLine("disconnect")
                  .add("reason", reason)
                  .add("messages", m_messages)
                  .add("recipients", m_recipients_total)
                  .add("errors", m_errors));
}

Output Session::start()
{
    LogLine connect("connect");
    if (m_config.peer.local) {
        connect.add("client", "local");
    } else {
        connect.add("client", m_config.peer.address);
        if (m_config.peer.port) {
            connect.add("port", *m_config.peer.port);
        }
        if (m_config.peer.hostname) {
            connect.add("hostname", *m_config.peer.hostname);
        }
        if (m_config.peer.local_address) {
            connect.add("server", *m_config.peer.local_address);
        }
        if (m_config.peer.local_port) {
            connect.add("server_port", *m_config.peer.local_port);
        }
    }
    connect.add("relay", m_config.may_relay ? "yes" : "no");
    m_log.log(connect);
    if (m_config.client_denied) {
        m_log.log(LogLine("client-denied").add("client", m_config.peer.local ? "local" : m_config.peer.address));
        m_out += render(replies::client_denied(m_config.hostname)); // not the client's error
    } else {
        reply(replies::greeting(m_config.hostname, !m_config.rfc821));
    }
    return {std::exchange(m_out, {}), m_closed};
}

Output Session::feed(std::string_view bytes)
{
    const std::size_t total = bytes.size();
    while (!bytes.empty() && !m_closed) {
        if (m_bdat_chunk) {
            bytes.remove_prefix(chunk(bytes));
            if (std::exchange(m_chunk_ended, false)) {
                break; // the reply to the chunk goes out first
            }
            continue;
        }
        if (m_data) {
            bytes.remove_prefix(data(bytes));
            if (!m_data) {
                break; // the reply to the data goes out first
            }
            continue;
        }
        std::size_t lf = bytes.find('\n');
        if (lf == std::string_view::npos) {
            // A partial line: keep at most max_line_length octets of it.
            if (!m_overlong && m_line.size() + bytes.size() <= m_config.max_line_length) {
                m_line.append(bytes);
            } else {
                m_overlong = true;
                m_line.clear();
            }
            bytes = {};
            break;
        }
        std::string_view piece = bytes.substr(0, lf + 1);
        bytes.remove_prefix(lf + 1);
        if (m_overlong || m_line.size() + piece.size() > m_config.max_line_length) {
            m_overlong = false;
            m_line.clear();
            // RFC 5321 §4.5.3.1.4 and §4.2.2: 500 line too long.
            reply(replies::line_too_long());
            continue;
        }
        if (m_line.empty()) {
            line(piece);
        } else {
            m_line.append(piece);
            std::string whole = std::exchange(m_line, {});
            line(whole);
        }
        if (m_start_tls) {
            break; // what follows STARTTLS is not to be read as plaintext
        }
        if (std::exchange(m_chunk_ended, false)) {
            break; // BDAT 0: its reply goes out first
        }
    }
    Output out{std::exchange(m_out, {}), m_closed, m_closed ? total : total - bytes.size()};
    out.start_tls = std::exchange(m_start_tls, false);
    return out;
}

Output Session::tls_started(TlsInfo tls, std::size_t discarded)
{
    m_log.log(LogLine("tls").add("version", tls.version).add("cipher", tls.cipher));
    m_config.tls = std::move(tls);
    // RFC 3207 §4.2: forget everything the client said before.
    reset_transaction();
    m_helo.clear();
    m_esmtp = false;
    m_line.clear();
    m_overlong = false;
    m_auth_step = AuthStep::none;
    m_state = State::connected;
    if (discarded > 0) {
        // Commands sent before the handshake (the STARTTLS injection): never
        // answered, and counted against the client.
        m_log.log(LogLine("tls-plaintext-discarded").add("octets", discarded));
        count_error();
    }
    return {std::exchange(m_out, {}), m_closed};
}

Output Session::tls_failed(std::string_view reason)
{
    m_log.log(LogLine("tls-error").add("reason", reason));
    close("tls-failed");
    return {std::exchange(m_out, {}), true};
}

Output Session::end_of_input()
{
    close(m_data ? "eof-in-data" : m_bdat_chunk || m_bdat ? "eof-in-bdat" : "eof");
    return {std::exchange(m_out, {}), true};
}

Output Session::timeout()
{
    if (!m_closed) {
        reply(replies::timeout(m_config.hostname));
        close("timeout");
    }
    return {std::exchange(m_out, {}), true};
}

// One command line including its LF.
void Session::line(std::string_view raw)
{
    raw.remove_suffix(1); // LF
    bool crlf = !raw.empty() && raw.back() == '\r';
    if (crlf) {
        raw.remove_suffix(1);
    }
    if (is_http_request(raw)) {
        m_log.log(LogLine("http-request"));
        close("http-request");
        return;
    }
    // RFC 5321 §2.3.8: only CRLF ends a line. Local clients may use LF alone.
    if ((!crlf && !m_config.peer.local) || raw.find('\r') != std::string_view::npos) {
        reply(replies::bare_line_end_in_command());
        return;
    }
    if (m_auth_step != AuthStep::none) {
        reply(auth_response(raw));
        return;
    }
    command(raw);
}

void Session::command(std::string_view text)
{
    Command cmd = parse_command(text);
    std::optional<Reply> refusal;
    // RFC 5321 §3.1: after a 554 greeting, only QUIT.
    if (m_config.client_denied && cmd.verb != Verb::quit) {
        refusal = replies::session_refused();
    } else if (!allowed(cmd.verb, m_state)) {
        refusal = replies::out_of_sequence(missing_for(cmd.verb, m_state));
    }
    if (cmd.verb == Verb::bdat) {
        on_bdat(cmd, std::move(refusal)); // its octets are read even when refused
        return;
    }
    if (refusal) {
        reply(*refusal);
        return;
    }
    Outcome out{replies::ok(), true};
    switch (cmd.verb) {
    case Verb::helo:
        out = on_helo(cmd, false);
        break;
    case Verb::ehlo:
        out = on_helo(cmd, true);
        break;
    case Verb::mail:
        out = on_mail(cmd);
        break;
    case Verb::rcpt:
        out = on_rcpt(cmd);
        break;
    case Verb::data:
        out = on_data(cmd);
        break;
    case Verb::bdat:
        break; // on_bdat, above
    case Verb::rset:
        out = on_rset(cmd);
        break;
    case Verb::noop:
        out = {replies::ok(), true};
        break;
    case Verb::quit:
        out = on_quit(cmd);
        break;
    case Verb::help:
        out = {replies::help(), true};
        break;
    case Verb::vrfy:
        out = on_vrfy(cmd);
        break;
    case Verb::expn:
        out = {replies::expn_refused(), false};
        break;
    case Verb::starttls:
        out = on_starttls(cmd);
        break;
    case Verb::auth:
        out = on_auth(cmd);
        break;
    case Verb::unimplemented:
        out = {replies::not_implemented(), false};
        break;
    case Verb::unknown:
        out = {replies::unknown_command(), false};
        break;
    }
    if (out.success) {
        m_state = successor(cmd.verb, m_state);
    }
    reply(out.reply);
    if (cmd.verb == Verb::quit && out.success) {
        close("quit");
    } else if (!out.close.empty()) {
        close(out.close);
    }
}

void Session::reset_transaction()
{
    if (m_data || m_bdat) {
        m_spool.abort();
        m_data.reset();
        m_bdat.reset();
    }
    m_headers.reset();
    m_tx.reset();
    m_spool_error.reset();
}

PolicyFacts Session::facts(std::string_view id, std::uint64_t size) const
{
    static const std::vector<std::string> none;
    return PolicyFacts{m_config.peer,
                       m_config.may_relay,
                       m_helo,
                       m_tx ? std::string_view(m_tx->mail.path.mailbox) : std::string_view{},
                       m_tx ? m_tx->recipients : none,
                       id,
                       size,
                       m_config.tls.has_value()};
}

Session::Outcome Session::on_helo(const Command& cmd, bool esmtp)
{
    if (esmtp && m_config.rfc821) {
        return {replies::ehlo_disabled(), false};
    }
    if (!is_helo_word(cmd.argument)) {
        return {replies::bad_helo(), false};
    }
    // RFC 5321 §4.1.4: HELO and EHLO reset the transaction.
    reset_transaction();
    m_helo = std::string(cmd.argument);
    m_esmtp = esmtp;
    m_log.log(LogLine(esmtp ? "ehlo" : "helo").add("name", m_helo));
    if (esmtp) {
        bool starttls = starttls_offered() && !m_config.tls;
        bool auth = auth_offered() && !m_auth_user;
        return {replies::ehlo_ok(m_config.hostname, header_safe(m_helo), m_config.max_message_size, starttls, auth),
                true};
    }
    return {replies::helo_ok(m_config.hostname, header_safe(m_helo)), true};
}

Session::Outcome Session::on_mail(const Command& cmd)
{
    if (m_config.max_messages > 0 && m_messages >= m_config.max_messages) {
        m_log.log(LogLine("mail").add("result", "refused").add("reason", "max-messages-per-session"));
        return {replies::too_many_messages(m_config.hostname), false, "max-messages-per-session"};
    }
    if (m_config.require_tls && !m_config.tls && !m_config.peer.local) {
        m_log.log(LogLine("mail").add("result", "refused").add("reason", "tls-required"));
        return {replies::tls_required(), false};
    }
    auto parsed = parse_mail(cmd.argument, MailOptions{m_esmtp, m_config.max_message_size, auth_offered()});
    if (auto* refusal = std::get_if<Reply>(&parsed)) {
        m_log.log(LogLine("mail")
                      .add("result", "refused")
                      .add("code", static_cast<std::uint64_t>(refusal->code))
                      .add("reason", refusal->text));
        return {*refusal, false};
    }
    m_tx = Transaction{std::move(std::get<MailCommand>(parsed)), {}, {}};
    if (auto refusal = m_policy.check_sender(facts())) {
        m_log.log(LogLine("mail")
                      .add("from", m_tx->mail.path.mailbox)
                      .add("result", "refused")
                      .add("code", static_cast<std::uint64_t>(refusal->code))
                      .add("reason", "policy"));
        m_tx.reset();
        return {*refusal, false};
    }
    if (m_log.enabled()) {
        m_log.log(LogLine("mail")
                      .add("from", m_tx->mail.path.mailbox)
                      .add("size", m_tx->mail.declared_size)
                      .add("body", body_name(m_tx->mail.body))
                      .add("smtputf8", m_tx->mail.smtputf8 ? "yes" : "no"));
    }
    return {replies::sender_ok(), true};
}

bool Session::is_local_domain(std::string_view domain) const
{
    std::string d = ascii_lower(domain);
    return std::find(m_config.local_domains.begin(), m_config.local_domains.end(), d) != m_config.local_domains.end();
}

Session::Outcome Session::on_rcpt(const Command& cmd)
{
    auto refuse = [&](Reply r, std::string_view to) {
        m_log.log(LogLine("rcpt")
                      .add("to", to)
                      .add("result", "refused")
                      .add("code", static_cast<std::uint64_t>(r.code))
                      .add("reason", r.text));
        return Outcome{std::move(r), false};
    };
    auto parsed = parse_rcpt(cmd.argument, m_esmtp, m_tx->mail.smtputf8);
    if (auto* refusal = std::get_if<Reply>(&parsed)) {
        return refuse(*refusal, cmd.argument); // the unparsed argument, "TO:" and all
    }
    RcptCommand& rcpt = std::get<RcptCommand>(parsed);
    const Path& path = rcpt.path;
    // <postmaster> (no domain) is always ours, RFC 5321 §4.5.1.
    const bool local = path.domain.empty() || is_local_domain(path.domain);
    if (!local && !m_config.may_relay) {
        return refuse(replies::relaying_denied(), path.mailbox);
    }
    std::string address = path.domain.empty() ? path.mailbox : path.local + "@" + ascii_lower(path.domain);
    if (std::find(m_tx->recipients.begin(), m_tx->recipients.end(), address) != m_tx->recipients.end()) {
        m_log.log(LogLine("rcpt").add("to", address).add("result", "duplicate"));
        return {replies::recipient_ok(), true};
    }
    auto verdict = m_policy.check_recipient(facts(), address, local);
    if (verdict.refusal) {
        return refuse(*verdict.refusal, address);
    }
    const bool expanded = verdict.addresses.size() != 1 || verdict.addresses.front() != address;
    const std::size_t count = verdict.addresses.size();
    std::vector<Recipient> added = new_recipients(m_tx->targets, std::move(verdict.addresses), address);
    // RFC 3461 §6.2.7: an alias's addresses keep the DSN parameters of the
    // recipient the client named.
    for (Recipient& r : added) {
        r.notify = rcpt.notify;
        r.orcpt = rcpt.orcpt;
    }
    // RFC 5321 §4.5.3.1.10: an implementation limit is 452, and the
    // transaction goes on with the recipients already accepted.
    if (m_tx->targets.size() + added.size() > m_config.max_recipients) {
        return refuse(replies::too_many_recipients(), address);
    }
    m_tx->recipients.push_back(address);
    std::move(added.begin(), added.end(), std::back_inserter(m_tx->targets));
    if (m_log.enabled()) {
        LogLine accepted("rcpt");
        accepted.add("to", address).add("result", "accepted");
        if (expanded) {
            accepted.add("expanded", static_cast<std::uint64_t>(count));
        }
        m_log.log(accepted);
    }
    return {replies::recipient_ok(), true};
}

std::string Session::received_header(std::string_view id) const
{
    // RFC 5321 §4.4: from the EHLO name and the peer's address literal, by our
    // name, with the protocol, id, for the recipient when there is only one.
    std::string h = "Received: from " + header_safe(m_helo);
    if (!m_config.peer.local) {
        h += " (";
        if (m_config.peer.hostname) {
            h += header_safe(*m_config.peer.hostname) + " ";
        }
        h += address_literal(m_config.peer.address) + ")";
    }
    h += "\r\n\tby " + header_safe(m_config.hostname) + " (smtpspool";
    if (m_config.tls) {
        h += ", " + header_safe(m_config.tls->version) + " " + header_safe(m_config.tls->cipher);
    }
    h += m_config.peer.local ? ", from a local client)" : ")";
    std::string with = m_esmtp ? "ESMTP" : "SMTP";
    if (m_tx->mail.smtputf8) {
        with = "UTF8SMTP"; // RFC 6531 §3.7.3
    }
    if (m_config.tls && m_esmtp) {
        with += "S"; // RFC 3848: ESMTPS, UTF8SMTPS
    }
    if (m_auth_user && m_esmtp) {
        with += "A"; // RFC 3848: ESMTPA, ESMTPSA, UTF8SMTPSA
    }
    h += " with " + with + " id " + std::string(id);
    if (m_tx->recipients.size() == 1) {
        h += "\r\n\tfor <" + m_tx->recipients.front() + ">";
    }
    h += "; " + rfc5322_date(m_data_started) + "\r\n";
    if (m_config.add_envelope_to) {
        for (const std::string& r : m_tx->recipients) {
            h += "X-Envelope-To: <" + r + ">\r\n";
        }
    }
    return h;
}

Reply Session::local_error_reply(const Error& e) const
{
    return is_storage_full(e) ? replies::storage_full() : replies::local_error();
}

Session::Outcome Session::on_data(const Command& cmd)
{
    if (cmd.has_argument) {
        return {replies::no_arguments("DATA"), false};
    }
    if (m_tx->mail.body == Body::binary_mime) {
        return {replies::binarymime_needs_bdat(), false};
    }
    if (auto refusal = begin_message()) {
        return {*refusal, false};
    }
    m_data.emplace(m_config.peer.local ? LineEnds::lf_accepted : LineEnds::crlf_only, m_config.max_message_size);
    // The state moves on when the data ends (finish_data), not at 354.
    return {replies::start_data(), false};
}

// The spool file of a new message, with the Received: header; DATA and the
// first BDAT chunk. A refusal leaves the transaction open: the client may try
// again, or RSET.
std::optional<Reply> Session::begin_message()
{
    auto id = m_spool.begin();
    if (!id) {
        m_log.log(LogLine("spool-error").add("reason", id.error().message));
        return local_error_reply(id.error());
    }
    m_data_started = m_clock.now();
    m_spool_error.reset();
    m_id = id.value();
    m_headers.emplace(HeaderCheck::Options{
        m_config.check_headers, m_tx->mail.smtputf8 || m_tx->mail.body != Body::seven_bit, m_config.max_hops});
    if (auto r = m_spool.append(received_header(id.value())); !r) {
        m_spool_error = r.error();
    }
    return std::nullopt;
}

std::size_t Session::data(std::string_view bytes)
{
    m_chunk.clear();
    std::size_t used = m_data->feed(bytes, m_chunk);
    store(m_data->refused());
    if (m_data->done()) {
        finish_data();
    }
    return used;
}

// The octets a reader let through (m_chunk), DATA's or BDAT's: to the header
// check and the spool. A refused message frees its disk at once; its data is
// read to the end anyway.
void Session::store(bool refused)
{
    m_headers->feed(m_chunk);
    refused = refused || m_spool_error.has_value();
    if (!refused && !m_chunk.empty()) {
        if (auto r = m_spool.append(m_chunk); !r) {
            m_spool_error = r.error();
            refused = true;
        }
    }
    if (refused) {
        m_spool.abort();
    }
}

// Why a message whose data has all been read is refused before its checks,
// if it is: the spool failed, a bare line end, too big.
std::optional<Reply> Session::read_refusal(bool bare_line_end, bool too_big, std::string_view& reason) const
{
    if (m_spool_error) {
        reason = "local-error";
        return local_error_reply(*m_spool_error);
    }
    if (bare_line_end) {
        reason = "bare-line-end";
        return replies::bare_line_end_in_data();
    }
    if (too_big) {
        reason = "too-big";
        return replies::message_too_big(m_config.max_message_size);
    }
    return std::nullopt;
}

Envelope Session::make_envelope() const
{
    Envelope e;
    e.received_at = rfc3339_utc(m_data_started); // the instant of the id and the Received: date
    e.hostname = m_config.hostname;
    if (!m_config.peer.local) {
        e.client.address = m_config.peer.address;
        e.client.port = m_config.peer.port;
        e.client.hostname = m_config.peer.hostname;
        e.client.ident = m_config.peer.ident;
    }
    e.client.helo = m_helo;
    e.client.protocol = m_esmtp ? "ESMTP" : "SMTP";
    e.client.tls = m_config.tls;
    e.client.auth = m_auth_user;
    e.mail_from = m_tx->mail.path.mailbox;
    e.body = std::string(body_name(m_tx->mail.body));
    e.smtputf8 = m_tx->mail.smtputf8;
    if (!m_tx->mail.ret.empty()) {
        e.dsn_ret = m_tx->mail.ret;
    }
    e.dsn_envid = m_tx->mail.envid;
    e.recipients = m_tx->targets;
    return e;
}

// The checks of a complete message that the data reader let through: the
// header section, then the policy (data hook), whose header lines go on top.
std::optional<Reply> Session::check_message(std::size_t size, std::string_view& reason)
{
    m_headers->finish();
    if (m_headers->loop()) {
        reason = "mail-loop";
        return replies::mail_loop(m_config.max_hops);
    }
    if (!m_headers->malformed().empty()) {
        reason = "bad-headers";
        return replies::bad_headers(m_headers->malformed());
    }
    auto verdict = m_policy.check_message(facts(m_id, size));
    if (verdict.refusal) {
        reason = "policy";
        return verdict.refusal;
    }
    if (!verdict.headers.empty()) {
        if (auto r = m_spool.prepend(verdict.headers); !r) {
            m_spool_error = r.error();
            reason = "local-error";
            return local_error_reply(r.error());
        }
    }
    return std::nullopt;
}

void Session::finish_data()
{
    const DataReader& d = *m_data;
    std::string_view reason;
    std::optional<Reply> refusal = read_refusal(d.bare_line_end(), d.too_big(), reason);
    std::size_t size = d.size();
    m_data.reset();
    finish_message(std::move(refusal), reason, size);
}

// RFC 3030 §2: BDAT <size> [LAST]. The announced octets follow the command
// line whatever the reply; a refused BDAT (its size known) has them read and
// discarded before its reply, so that the session stays in step.
void Session::on_bdat(const Command& cmd, std::optional<Reply> refusal)
{
    const std::optional<std::uint64_t> size = bdat_chunk_size(cmd.argument);
    BdatCommand bdat;
    // RFC 3030 §2: BDAT only where CHUNKING was offered, that is after EHLO.
    if (m_config.rfc821 && !m_config.client_denied) {
        refusal = replies::not_implemented();
    } else if (!refusal && !m_esmtp) {
        refusal = replies::needs_ehlo("BDAT");
    }
    if (!refusal) {
        auto parsed = parse_bdat(cmd.argument);
        if (auto* r = std::get_if<Reply>(&parsed)) {
            refusal = std::move(*r);
        } else {
            bdat = std::get<BdatCommand>(parsed);
        }
    }
    if (!size) {
        reply(*refusal); // where the chunk ends is unknown: nothing to discard
        return;
    }
    if (!refusal && !m_bdat) {
        // The first chunk of the message.
        refusal = begin_message();
        if (!refusal) {
            m_bdat.emplace(m_tx->mail.body == Body::binary_mime, m_config.max_message_size);
            m_chunks = 0;
        }
    }
    if (refusal && m_log.enabled()) {
        m_log.log(LogLine("bdat")
                      .add("size", *size)
                      .add("result", "refused")
                      .add("code", static_cast<std::uint64_t>(refusal->code)));
    }
    m_bdat_chunk = Chunk{*size, *size, bdat.last, std::move(refusal)};
    if (*size == 0) {
        end_chunk();
    }
}

// The octets of the current chunk among `bytes`; returns how many it took.
std::size_t Session::chunk(std::string_view bytes)
{
    Chunk& c = *m_bdat_chunk;
    const std::size_t n = c.remaining < bytes.size() ? static_cast<std::size_t>(c.remaining) : bytes.size();
    c.remaining -= n;
    if (!c.refusal) {
        m_chunk.clear();
        m_bdat->feed(bytes.substr(0, n), m_chunk);
        store(m_bdat->refused());
    }
    if (c.remaining == 0) {
        end_chunk();
    }
    return n;
}

// All octets of a chunk are in: its reply. A refused message ends the
// transaction at once (RFC 3030 §2: the client sends no more chunks, and any
// already pipelined get 503 and are discarded).
void Session::end_chunk()
{
    Chunk c = std::move(*m_bdat_chunk);
    m_bdat_chunk.reset();
    m_chunk_ended = true;
    if (c.refusal) {
        reply(*c.refusal); // nothing changes
        return;
    }
    ++m_chunks;
    ChunkReader& b = *m_bdat;
    if (c.last) {
        b.finish();
    }
    std::string_view reason;
    std::optional<Reply> refusal = read_refusal(b.bare_line_end(), b.too_big(), reason);
    if (!refusal && !c.last) {
        m_state = successor(Verb::bdat, m_state);
        reply(replies::chunk_received(c.size));
        return;
    }
    std::size_t size = b.size();
    m_bdat.reset();
    finish_message(std::move(refusal), reason, size);
}

// The end of a message, by DATA or BDAT: the checks, the commit and the reply.
void Session::finish_message(std::optional<Reply> refusal, std::string_view reason, std::size_t size)
{
    const std::size_t chunks = std::exchange(m_chunks, 0);
    if (!refusal) {
        refusal = check_message(size, reason);
    }
    m_headers.reset();
    if (!refusal) {
        Envelope e = make_envelope();
        if (auto r = m_spool.commit(e); r) {
            ++m_messages;
            m_recipients_total += e.recipients.size();
            if (m_log.enabled()) {
                LogLine queued("queued");
                queued.add("id", e.id).add("size", e.size).add("recipients", e.recipients.size());
                if (chunks > 0) {
                    queued.add("chunks", chunks);
                }
                m_log.log(queued);
            }
            reply(replies::queued(e.id));
        } else {
            m_spool_error = r.error();
            refusal = local_error_reply(r.error());
            reason = "local-error";
        }
    }
    if (refusal) {
        m_spool.abort();
        LogLine rejected("rejected");
        rejected.add("reason", reason).add("code", static_cast<std::uint64_t>(refusal->code)).add("size", size);
        if (chunks > 0) {
            rejected.add("chunks", chunks);
        }
        if (m_spool_error) {
            rejected.add("error", m_spool_error->message);
        }
        m_log.log(rejected);
        reply(*refusal);
    }
    // RFC 5321 §4.1.1.4: the transaction ends with the reply to the data.
    m_tx.reset();
    m_spool_error.reset();
    m_state = successor(Verb::data, m_state);
}

Session::Outcome Session::on_rset(const Command& cmd)
{
    if (cmd.has_argument) {
        return {replies::no_arguments("RSET"), false};
    }
    reset_transaction();
    return {replies::reset_ok(), true};
}

Session::Outcome Session::on_quit(const Command& cmd)
{
    if (cmd.has_argument) {
        return {replies::no_arguments("QUIT"), false};
    }
    return {replies::closing(m_config.hostname), true};
}

Session::Outcome Session::on_starttls(const Command& cmd)
{
    if (!starttls_offered()) {
        return {replies::not_implemented(), false};
    }
    if (m_config.tls) {
        return {replies::tls_active(), false};
    }
    if (cmd.has_argument) {
        return {replies::no_arguments("STARTTLS"), false};
    }
    if (!m_esmtp) {
        return {replies::needs_ehlo("STARTTLS"), false};
    }
    if (m_tls_port != nullptr) {
        if (auto error = m_tls_port->prepare()) {
            // RFC 3207 §4: 454, and the session goes on in the clear.
            m_log.log(LogLine("tls-error").add("reason", *error));
            return {replies::tls_unavailable(), false};
        }
    }
    m_start_tls = true;
    return {replies::tls_ready(), true};
}

bool Session::starttls_offered() const { return m_config.tls_offered && !m_config.peer.local; }

bool Session::auth_offered() const { return m_auth != nullptr && (m_config.tls || m_config.peer.local); }

Session::Outcome Session::on_auth(const Command& cmd)
{
    if (m_auth == nullptr) {
        return {replies::not_implemented(), false};
    }
    if (!m_esmtp) {
        return {replies::needs_ehlo("AUTH"), false};
    }
    if (m_auth_user) {
        return {replies::auth_again(), false};
    }
    if (!auth_offered()) {
        return {replies::auth_needs_tls(), false};
    }
    std::string_view arg = cmd.argument;
    std::size_t sp = arg.find(' ');
    std::string mechanism = ascii_lower(arg.substr(0, sp));
    std::optional<std::string_view> initial;
    if (sp != std::string_view::npos) {
        initial = arg.substr(sp + 1);
    }
    if (mechanism.empty()) {
        return {replies::syntax("AUTH mechanism [initial-response]"), false};
    }
    if (mechanism != "plain" && mechanism != "login") {
        return {replies::auth_unknown_mechanism(), false};
    }
    m_auth_step = mechanism == "plain" ? AuthStep::plain : AuthStep::login_user;
    if (!initial) {
        // RFC 4616 §2: an empty challenge; LOGIN asks "Username:".
        return {replies::auth_challenge(m_auth_step == AuthStep::plain ? "" : base64_encode("Username:")), true};
    }
    // RFC 4954 §4: "=" is an empty initial response.
    std::string_view text = *initial == "=" ? std::string_view{} : *initial;
    return {auth_response(text), true};
}

// A line that answers a 334 (or the initial response): "*" cancels.
Reply Session::auth_response(std::string_view line)
{
    AuthStep step = std::exchange(m_auth_step, AuthStep::none);
    if (line == "*") {
        m_log.log(LogLine("auth").add("result", "cancelled"));
        return replies::auth_cancelled();
    }
    auto decoded = base64_decode(line);
    if (!decoded) {
        m_log.log(LogLine("auth").add("result", "bad-base64"));
        return replies::auth_bad_base64();
    }
    switch (step) {
    case AuthStep::plain: {
        auto c = parse_plain(*decoded);
        // An authorization identity other than the user is not ours to grant.
        if (!c || (!c->authzid.empty() && c->authzid != c->user)) {
            m_log.log(LogLine("auth").add("mechanism", "PLAIN").add("result", "refused").add("reason", "malformed"));
            return replies::auth_refused();
        }
        return authenticate("PLAIN", c->user, c->password);
    }
    case AuthStep::login_user:
        m_auth_login = std::move(*decoded);
        m_auth_step = AuthStep::login_password;
        return replies::auth_challenge(base64_encode("Password:"));
    case AuthStep::login_password:
        return authenticate("LOGIN", std::exchange(m_auth_login, {}), *decoded);
    case AuthStep::none:
        break;
    }
    return replies::auth_cancelled(); // not reached: a response comes only after a 334
}

Reply Session::authenticate(std::string_view mechanism, const std::string& user, const std::string& password)
{
    AuthVerdict v = user.empty() || password.empty() ? AuthVerdict::refused : m_auth->check(user, password);
    LogLine line("auth");
    line.add("mechanism", mechanism).add("user", user); // never the password
    switch (v) {
    case AuthVerdict::ok:
        m_auth_user = user;
        m_config.may_relay = true;
        m_log.log(line.add("result", "ok"));
        return replies::auth_ok();
    case AuthVerdict::temporary:
        m_log.log(line.add("result", "temporary"));
        return replies::auth_temporary();
    case AuthVerdict::refused:
        break;
    }
    m_log.log(line.add("result", "refused"));
    return replies::auth_refused();
}

Session::Outcome Session::on_vrfy(const Command& cmd)
{
    if (!cmd.has_argument || cmd.argument.empty()) {
        return {replies::syntax("VRFY <address>"), false};
    }
    // RFC 5321 §3.5.3 and §7.3: 252 when we will not verify.
    return {replies::cannot_verify(), true};
}

} // namespace smtpspool
