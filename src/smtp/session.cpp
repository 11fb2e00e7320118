// session: the input modes, dispatch through the NFA table to the verb
// handlers, the message to the spool (DATA's and BDAT's), the error budget.
// Replies come only from smtp_reply; ordering only from smtp_nfa.
#include "smtp/session.hpp"

#include "base/limits.hpp"
#include "base/text.hpp"
#include "smtp/message_edit.hpp"

#include <algorithm>

namespace smtpspool {
namespace {

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

// The ESMTP parameters of a MAIL or RCPT argument as the client gave them:
// the words after the path.
std::vector<std::string> esmtp_parameters(std::string_view argument)
{
    std::vector<std::string> out;
    std::size_t lt = argument.find('<');
    if (lt == std::string_view::npos) {
        return out;
    }
    PathParse p = parse_path(argument.substr(lt), PathKind::reverse);
    if (p.error != PathError::none) {
        p = parse_path(argument.substr(lt), PathKind::forward); // <postmaster>
    }
    if (p.error != PathError::none) {
        return out;
    }
    std::string_view rest = argument.substr(lt + p.end);
    while (!rest.empty()) {
        std::size_t sp = rest.find(' ');
        if (sp != 0) {
            out.emplace_back(rest.substr(0, sp));
        }
        rest = sp == std::string_view::npos ? std::string_view{} : rest.substr(sp + 1);
    }
    return out;
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
    if (is_client_error(r) && m_mode != Mode::closed) {
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
    if (m_mode == Mode::closed) {
        return;
    }
    if (message_open()) {
        m_spool.abort();
    }
    m_data_reader.reset();
    m_bdat.clear();
    m_mode = Mode::closed;
    if (m_filter != nullptr) {
        filter_abort();
        m_filter->quit();
    }
    m_log.log(LogLine("disconnect")
                  .add("reason", reason)
                  .add("messages", m_messages)
                  .add("recipients", m_recipients_total)
                  .add("errors", m_errors));
}

Output Session::start()
{
    LogLine connect("connect");
    connect.add("client", client_name(m_config.peer));
    if (!m_config.peer.local) {
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
        m_log.log(LogLine("client-denied").add("client", client_name(m_config.peer)));
        m_out += render(replies::client_denied(m_config.hostname)); // not the client's error
        m_state = State::denied;
        m_filter_done = true;
        return {std::exchange(m_out, {}), m_mode == Mode::closed};
    }
    if (filtering()) {
        FilterVerdict v = m_filter->connect(FilterConnect{m_config.peer, m_config.hostname});
        switch (v.action) {
        case FilterVerdict::Action::reject:
            // Like a denied client: 554, then 503 to all but QUIT.
            m_log.log(LogLine("client-denied").add("client", client_name(m_config.peer)).add("reason", v.reason));
            m_out += render(v.reply ? *v.reply : replies::client_denied(m_config.hostname));
            m_state = State::denied;
            m_filter_done = true;
            return {std::exchange(m_out, {}), false};
        case FilterVerdict::Action::tempfail:
            m_log.log(LogLine("filter").add("stage", "connect").add("action", "tempfail").add("reason", v.reason));
            m_out += render(replies::filter_unavailable(m_config.hostname));
            close("filter-tempfail");
            return {std::exchange(m_out, {}), true};
        case FilterVerdict::Action::accept:
            m_filter_done = true;
            break;
        default:
            break;
        }
    }
    reply(replies::greeting(m_config.hostname, !m_config.rfc821));
    return {std::exchange(m_out, {}), m_mode == Mode::closed};
}

Output Session::feed(std::string_view bytes)
{
    const std::size_t total = bytes.size();
    m_reply_first = false;
    while (!bytes.empty() && !m_reply_first && m_mode != Mode::closed) {
        switch (m_mode) {
        case Mode::command:
        case Mode::auth_reply:
            bytes.remove_prefix(read_line(bytes));
            break;
        case Mode::data:
            bytes.remove_prefix(read_data(bytes));
            break;
        case Mode::bdat_octets:
            bytes.remove_prefix(read_bdat_octets(bytes));
            break;
        case Mode::closed:
            break;
        }
    }
    const bool closed = m_mode == Mode::closed;
    Output out{std::exchange(m_out, {}), closed, closed ? total : total - bytes.size()};
    out.start_tls = std::exchange(m_start_tls, false);
    return out;
}

// A command line, or an answer to a 334, among `bytes`; returns how many
// octets it took. A partial line is kept (at most max_line_length of it).
std::size_t Session::read_line(std::string_view bytes)
{
    std::size_t lf = bytes.find('\n');
    if (lf == std::string_view::npos) {
        if (!m_overlong && m_line.size() + bytes.size() <= m_config.max_line_length) {
            m_line.append(bytes);
        } else {
            m_overlong = true;
            m_line.clear();
        }
        return bytes.size();
    }
    std::string_view piece = bytes.substr(0, lf + 1);
    if (m_overlong || m_line.size() + piece.size() > m_config.max_line_length) {
        m_overlong = false;
        m_line.clear();
        // RFC 5321 §4.5.3.1.4 and §4.2.2: 500 line too long.
        reply(replies::line_too_long());
    } else if (m_line.empty()) {
        line(piece);
    } else {
        m_line.append(piece);
        std::string whole = std::exchange(m_line, {});
        line(whole);
    }
    return lf + 1;
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
    m_auth_dialogue.reset();
    if (m_mode != Mode::closed) {
        m_mode = Mode::command;
    }
    m_state = State::connected;
    if (discarded > 0) {
        // Commands sent before the handshake (the STARTTLS injection): never
        // answered, and counted against the client.
        m_log.log(LogLine("tls-plaintext-discarded").add("octets", discarded));
        count_error();
    }
    return {std::exchange(m_out, {}), m_mode == Mode::closed};
}

Output Session::tls_failed(std::string_view reason)
{
    m_log.log(LogLine("tls-error").add("reason", reason));
    close("tls-failed");
    return {std::exchange(m_out, {}), true};
}

Output Session::end_of_input()
{
    close(m_mode == Mode::data                                     ? "eof-in-data"
          : m_mode == Mode::bdat_octets || m_bdat.message_open() ? "eof-in-bdat"
                                                                   : "eof");
    return {std::exchange(m_out, {}), true};
}

Output Session::timeout()
{
    if (m_mode != Mode::closed) {
        reply(replies::timeout(m_config.hostname));
        close("timeout");
    }
    return {std::exchange(m_out, {}), true};
}

// One line including its LF: a command, or the answer to a 334.
void Session::line(std::string_view raw)
{
    raw.remove_suffix(1); // LF
    bool crlf = !raw.empty() && raw.back() == '\r';
    if (crlf) {
        raw.remove_suffix(1);
    }
    if (m_transcript != nullptr) {
        m_transcript->client_line(m_mode == Mode::auth_reply                  ? k_transcript_sasl_marker
                                  : parse_command(raw).verb == Verb::auth ? k_transcript_auth_marker
                                                                          : raw);
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
    if (m_mode == Mode::auth_reply) {
        auth_reply(raw);
        return;
    }
    command(raw);
}

constexpr std::array<Session::Handler, k_verb_count> Session::make_handlers()
{
    std::array<Handler, k_verb_count> h{};
    auto at = [&h](Verb v, Handler f) { h[static_cast<std::size_t>(v)] = f; };
    at(Verb::helo, &Session::on_helo);
    at(Verb::ehlo, &Session::on_ehlo);
    at(Verb::mail, &Session::on_mail);
    at(Verb::rcpt, &Session::on_rcpt);
    at(Verb::data, &Session::on_data);
    at(Verb::bdat, &Session::on_bdat);
    at(Verb::rset, &Session::on_rset);
    at(Verb::noop, &Session::on_noop);
    at(Verb::quit, &Session::on_quit);
    at(Verb::help, &Session::on_help);
    at(Verb::vrfy, &Session::on_vrfy);
    at(Verb::expn, &Session::on_expn);
    at(Verb::starttls, &Session::on_starttls);
    at(Verb::auth, &Session::on_auth);
    at(Verb::unimplemented, &Session::on_unimplemented);
    at(Verb::unknown, &Session::on_unknown);
    return h;
}

// The facts the NFA table's guards read.
GuardSet Session::guards() const
{
    const bool cleartext = !m_config.tls && !m_config.peer.local;
    GuardSet g = 0;
    auto set = [&g](Guard guard, bool on) {
        if (on) {
            g = static_cast<GuardSet>(g | bit(guard));
        }
    };
    set(Guard::ehlo, m_esmtp);
    set(Guard::tls_active, m_config.tls.has_value());
    set(Guard::authenticated, m_auth_user.has_value());
    set(Guard::tls_required, m_config.require_tls && cleartext);
    set(Guard::cleartext, cleartext);
    set(Guard::starttls_offered, starttls_offered());
    set(Guard::auth_configured, m_auth != nullptr);
    set(Guard::rfc821, m_config.rfc821);
    return g;
}

void Session::command(std::string_view text)
{
    static constexpr std::array<Handler, k_verb_count> k_handlers = make_handlers();
    static_assert(std::find(k_handlers.begin(), k_handlers.end(), nullptr) == k_handlers.end(),
                  "every verb has a handler");
    Command cmd = parse_command(text);
    if (Refusal why = refusal_for(cmd.verb, m_state, guards()); why != Refusal::none) {
        if (why == Refusal::tls_required) {
            m_log.log(LogLine("mail").add("result", "refused").add("reason", "tls-required"));
        }
        Reply refusal = replies::refusal(why, verb_label(cmd.verb));
        std::optional<std::uint64_t> size;
        if (cmd.verb == Verb::bdat && (size = bdat_chunk_size(cmd.argument))) {
            // RFC 3030 §2: its octets are read and discarded before the reply.
            expect_bdat_octets(*size, false, std::move(refusal));
        } else {
            reply(refusal);
        }
        return;
    }
    const Handled out = (this->*k_handlers[static_cast<std::size_t>(cmd.verb)])(cmd);
    if (out.success) {
        m_state = successor(cmd.verb, m_state);
    }
    if (out.reply) {
        reply(*out.reply);
    }
    if (rule_for(cmd.verb).next == Next::closing && out.success) {
        close("quit");
    } else if (!out.close.empty()) {
        close(out.close);
    }
}

void Session::reset_transaction()
{
    if (message_open()) {
        m_spool.abort();
        m_data_reader.reset();
        m_bdat.close_message();
    }
    m_headers.reset();
    m_tx.reset();
    m_spool_error.reset();
    filter_abort();
}

// The transaction ended without the end of a message: the filter forgets it.
void Session::filter_abort()
{
    if (m_filter_tx_open) {
        m_filter_tx_open = false;
        m_filter->abort();
    }
}

FilterMessageFacts Session::filter_facts(std::string_view id) const
{
    return FilterMessageFacts{id,
                              m_auth_user ? std::string_view(*m_auth_user) : std::string_view{},
                              m_auth_user ? std::string_view(m_auth_mechanism) : std::string_view{},
                              m_config.tls ? std::string_view(m_config.tls->version) : std::string_view{},
                              m_config.tls ? std::string_view(m_config.tls->cipher) : std::string_view{}};
}

Reply Session::filter_refusal(const FilterVerdict& v, std::string_view stage)
{
    const bool reject = v.action == FilterVerdict::Action::reject;
    Reply r = v.reply ? *v.reply : reject ? replies::filter_rejected() : replies::filter_tempfail();
    m_log.log(LogLine("filter")
                  .add("stage", stage)
                  .add("action", reject ? "reject" : "tempfail")
                  .add("code", static_cast<std::uint64_t>(r.code))
                  .add("reason", v.reason));
    return r;
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
                       m_config.tls.has_value(),
                       m_esmtp,
                       m_auth_user ? std::string_view(*m_auth_user) : std::string_view{},
                       m_config.tls ? &*m_config.tls : nullptr,
                       m_tx ? m_tx->mail.declared_size : 0,
                       m_transactions};
}

MessageFacts Session::message_facts() const
{
    return MessageFacts{m_config.hostname, m_config.peer,   m_config.tls,       m_helo,
                        m_esmtp,           m_auth_user,     m_tx->mail,         m_tx->recipients,
                        m_tx->targets,     m_data_started, m_config.add_envelope_to, m_config.may_relay};
}

Session::Handled Session::on_helo(const Command& cmd) { return greet(cmd, false); }

Session::Handled Session::on_ehlo(const Command& cmd) { return greet(cmd, true); }

Session::Handled Session::greet(const Command& cmd, bool esmtp)
{
    if (esmtp && m_config.rfc821) {
        return {replies::ehlo_disabled(), false};
    }
    if (!is_helo_word(cmd.argument)) {
        return {replies::bad_helo(), false};
    }
    // RFC 5321 §4.1.4: HELO and EHLO reset the transaction.
    reset_transaction();
    if (filtering()) {
        FilterVerdict v = m_filter->helo(cmd.argument);
        if (v.action == FilterVerdict::Action::reject || v.action == FilterVerdict::Action::tempfail) {
            Reply r = filter_refusal(v, "helo");
            return {r, false, r.code == 421 ? "filter-421" : ""};
        }
        if (v.action == FilterVerdict::Action::accept) {
            m_filter_done = true;
        }
    }
    m_helo = std::string(cmd.argument);
    m_esmtp = esmtp;
    m_log.log(LogLine(esmtp ? "ehlo" : "helo").add("name", m_helo));
    if (esmtp) {
        bool starttls = starttls_offered() && !m_config.tls;
        bool auth = auth_offered() && !m_auth_user;
        return {replies::ehlo_ok(m_config.hostname, helo_text(m_helo), m_config.max_message_size, starttls, auth),
                true};
    }
    return {replies::helo_ok(m_config.hostname, helo_text(m_helo)), true};
}

Session::Handled Session::on_mail(const Command& cmd)
{
    if (m_config.max_messages > 0 && m_messages >= m_config.max_messages) {
        m_log.log(LogLine("mail").add("result", "refused").add("reason", "max-messages-per-session"));
        return {replies::too_many_messages(m_config.hostname), false, "max-messages-per-session"};
    }
    auto parsed = parse_mail(cmd.argument, MailOptions{m_esmtp, m_config.max_message_size, auth_offered()});
    if (auto* refusal = std::get_if<Reply>(&parsed)) {
        m_log.log(LogLine("mail")
                      .add("result", "refused")
                      .add("code", static_cast<std::uint64_t>(refusal->code))
                      .add("reason", refusal->text));
        return {*refusal, false};
    }
    m_tx = Transaction{std::move(std::get<MailCommand>(parsed)), {}, {}, {}, {}, false, false, false, std::nullopt};
    ++m_transactions;
    if (auto refusal = m_policy.check_sender(facts())) {
        m_log.log(LogLine("mail")
                      .add("from", m_tx->mail.path.mailbox)
                      .add("result", "refused")
                      .add("code", static_cast<std::uint64_t>(refusal->code))
                      .add("reason", "policy"));
        m_tx.reset();
        return {*refusal, false};
    }
    if (filtering()) {
        m_filter_tx_open = true;
        FilterVerdict v = m_filter->mail(m_tx->mail.path.mailbox, esmtp_parameters(cmd.argument), filter_facts({}));
        if (v.action == FilterVerdict::Action::reject || v.action == FilterVerdict::Action::tempfail) {
            m_tx.reset();
            filter_abort();
            Reply r = filter_refusal(v, "mail");
            return {r, false, r.code == 421 ? "filter-421" : ""};
        }
        m_tx->filter_done = v.action == FilterVerdict::Action::accept;
        if (v.action == FilterVerdict::Action::discard) {
            m_log.log(LogLine("filter").add("stage", "mail").add("action", "discard").add("reason", v.reason));
            m_tx->discard = true;
            m_tx->filter_done = true;
        }
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
    return smtpspool::is_local_domain(domain, m_config.local_domains);
}

// A BODY=BINARYMIME message to an address routed by SMTP bounces unless the
// next hop offers CHUNKING and BINARYMIME (which the session cannot know), and
// the bounce of a client that may not relay goes to anyone's address: that
// recipient is refused instead.
bool Session::binarymime_bounces(const std::vector<std::string>& addresses) const
{
    if (m_tx->mail.body != Body::binary_mime || m_config.may_relay || !m_config.routed_by_smtp) {
        return false;
    }
    return std::any_of(addresses.begin(), addresses.end(), [this](const std::string& a) {
        const std::size_t at = a.rfind('@');
        return m_config.routed_by_smtp(at == std::string::npos ? std::string_view(m_config.hostname)
                                                               : std::string_view(a).substr(at + 1));
    });
}

Session::Handled Session::on_rcpt(const Command& cmd)
{
    auto refuse = [&](Reply r, std::string_view to) {
        m_log.log(LogLine("rcpt")
                      .add("to", to)
                      .add("result", "refused")
                      .add("code", static_cast<std::uint64_t>(r.code))
                      .add("reason", r.text));
        return Handled{std::move(r), false};
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
    // A downstream server that applies the percent hack or a bang path, or
    // reads an address quoted in the local part, would relay these for us.
    if (local && !m_config.may_relay && !m_config.allow_untrusted_routing && has_routing_character(path.local)) {
        return refuse(replies::untrusted_routing(), path.mailbox);
    }
    // Our own recipients are stored in one canonical form (smtp_address).
    std::string address =
        local ? canonical_mailbox(path.local, path.domain) : path.local + "@" + ascii_lower(path.domain);
    if (m_tx->named.count(address) > 0) {
        m_log.log(LogLine("rcpt").add("to", address).add("result", "duplicate"));
        return {replies::recipient_ok(), true};
    }
    // RFC 5321 §4.5.3.1.10: an implementation limit is 452, and the
    // transaction goes on with the recipients already accepted. Checked before
    // the work for a new recipient (aliases, the rcpt hook), and counted
    // toward --max-errors (is_client_error), so RCPTs past the limit cost
    // little and end the session soon.
    if (m_tx->targets.size() >= m_config.max_recipients) {
        return refuse(replies::too_many_recipients(), address);
    }
    auto verdict = m_policy.check_recipient(facts(), address, local);
    if (verdict.refusal) {
        return refuse(*verdict.refusal, address);
    }
    if (binarymime_bounces(verdict.addresses)) {
        return refuse(replies::binarymime_undeliverable(), address);
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
    // An alias may expand past the limit.
    if (m_tx->targets.size() + added.size() > m_config.max_recipients) {
        return refuse(replies::too_many_recipients(), address);
    }
    if (filtering_transaction()) {
        FilterVerdict v = m_filter->rcpt(address, esmtp_parameters(cmd.argument));
        if (v.action == FilterVerdict::Action::reject || v.action == FilterVerdict::Action::tempfail) {
            Reply r = filter_refusal(v, "rcpt");
            m_log.log(LogLine("rcpt")
                          .add("to", address)
                          .add("result", "refused")
                          .add("code", static_cast<std::uint64_t>(r.code))
                          .add("reason", "filter"));
            const bool closing = r.code == 421;
            return {std::move(r), false, closing ? "filter-421" : ""};
        }
        if (v.action == FilterVerdict::Action::discard) {
            // This recipient only, silently.
            m_log.log(LogLine("rcpt").add("to", address).add("result", "discarded").add("reason", v.reason));
            return {replies::recipient_ok(), true};
        }
        m_tx->filter_done = v.action == FilterVerdict::Action::accept;
    }
    m_tx->named.insert(address);
    m_tx->recipients.push_back(address);
    if (m_tx->prepend.size() + verdict.headers.size() <= limits::k_max_policy_header_bytes) {
        m_tx->prepend += verdict.headers;
    } else {
        m_log.log(LogLine("policy-headers-dropped").add("to", address).add("size", verdict.headers.size()));
    }
    m_tx->hold = m_tx->hold || verdict.hold;
    m_tx->discard = m_tx->discard || verdict.discard;
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

Reply Session::local_error_reply(const Error& e) const
{
    if (is_file_too_big(e)) {
        return replies::file_too_big();
    }
    if (is_envelope_too_large(e)) {
        return replies::envelope_too_large();
    }
    return is_storage_full(e) ? replies::storage_full() : replies::local_error();
}

Session::Handled Session::on_data(const Command& cmd)
{
    if (cmd.has_argument) {
        return {replies::no_arguments("DATA"), false};
    }
    if (m_tx->mail.body == Body::binary_mime) {
        return {replies::binarymime_needs_bdat(), false};
    }
    if (auto refusal = begin_message()) {
        // A filter's 421 ends the session, as its code says.
        return {*refusal, false, refusal->code == 421 && m_tx->filter_refusal ? "filter-421" : ""};
    }
    m_data_reader.emplace(m_config.peer.local ? LineEnds::lf_accepted : LineEnds::crlf_only, m_config.max_message_size,
                          max_data_line());
    m_mode = Mode::data;
    return {replies::start_data(), true};
}

// The spool file of a new message, with the Received: header; DATA and the
// first BDAT chunk. A refusal leaves the transaction open: the client may try
// again, or RSET.
std::optional<Reply> Session::begin_message()
{
    if (m_tx->filter_refusal) {
        return m_tx->filter_refusal;
    }
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
    if (filtering_transaction()) {
        FilterVerdict v = m_filter->data(filter_facts(m_id));
        if (v.action == FilterVerdict::Action::reject || v.action == FilterVerdict::Action::tempfail) {
            // The transaction stays open for RSET; its data is refused again.
            m_spool.abort();
            m_headers.reset();
            filter_abort();
            m_tx->filter_refusal = filter_refusal(v, "data");
            return m_tx->filter_refusal;
        }
        if (v.action == FilterVerdict::Action::discard) {
            m_log.log(LogLine("filter").add("stage", "data").add("action", "discard").add("reason", v.reason));
            m_tx->discard = true;
        }
        m_tx->filter_done = v.action != FilterVerdict::Action::proceed;
    }
    m_auth_results.emplace(m_config.authserv_id.empty() ? m_config.hostname : m_config.authserv_id);
    const std::string received = received_header(message_facts(), id.value());
    if (auto r = m_spool.append(received); !r) {
        m_spool_error = r.error();
    } else if (filtering_transaction()) {
        m_filter->message(received);
    }
    return std::nullopt;
}

// DATA's octets among `bytes`, up to the end-of-data mark; returns how many
// it took.
std::size_t Session::read_data(std::string_view bytes)
{
    m_message_octets.clear();
    std::size_t used = m_data_reader->feed(bytes, m_message_octets);
    store(m_data_reader->refused());
    if (m_data_reader->done()) {
        const DataReader& d = *m_data_reader;
        std::string_view reason;
        std::optional<Reply> refusal = read_refusal(d.bare_line_end(), d.nul(), d.too_big(), d.long_line(), reason);
        std::size_t size = d.size();
        m_data_reader.reset();
        m_mode = Mode::command;
        finish_message(std::move(refusal), reason, size, 0);
    }
    return used;
}

// The octets a reader let through (m_message_octets), DATA's or BDAT's,
// without the Authentication-Results: fields that claim our authserv-id: to
// the header check and the spool.
void Session::store(bool refused)
{
    m_kept_octets.clear();
    m_auth_results->feed(m_message_octets, m_kept_octets);
    keep(m_kept_octets, refused);
}

// What the Authentication-Results: filter still held when the data ended.
void Session::end_of_stored_octets(bool refused)
{
    if (!m_auth_results || !m_headers) {
        return;
    }
    m_kept_octets.clear();
    m_auth_results->finish(m_kept_octets);
    keep(m_kept_octets, refused);
    if (m_auth_results->removed() > 0) {
        m_log.log(LogLine("authentication-results-removed")
                      .add("id", m_id)
                      .add("fields", static_cast<std::uint64_t>(m_auth_results->removed())));
    }
    m_auth_results.reset();
}

// Message octets to the header check and the spool. A refused message frees
// its disk at once; its data is read to the end anyway.
void Session::keep(std::string_view octets, bool refused)
{
    m_headers->feed(octets);
    refused = refused || m_spool_error.has_value();
    if (!refused && !octets.empty()) {
        if (auto r = m_spool.append(octets); !r) {
            m_spool_error = r.error();
            refused = true;
        } else if (filtering_transaction()) {
            m_filter->message(octets);
        }
    }
    if (refused) {
        m_spool.abort();
    }
}

// The longest line a message may have, before its CRLF (0: any): local
// clients, like the sendmail interface, are not held to it.
std::size_t Session::max_data_line() const { return m_config.peer.local ? 0 : m_config.max_data_line_length; }

// Why a message whose data has all been read is refused before its checks,
// if it is: the spool failed, a bare line end, a NUL octet, too big, a line
// too long.
std::optional<Reply> Session::read_refusal(bool bare_line_end, bool nul, bool too_big, bool long_line,
                                           std::string_view& reason) const
{
    if (m_spool_error) {
        reason = "local-error";
        return local_error_reply(*m_spool_error);
    }
    if (bare_line_end) {
        reason = "bare-line-end";
        return replies::bare_line_end_in_data();
    }
    if (nul) {
        reason = "nul-octet";
        return replies::nul_in_data();
    }
    if (too_big) {
        reason = "too-big";
        return replies::message_too_big(m_config.max_message_size);
    }
    if (long_line) {
        reason = "line-too-long";
        return replies::line_too_long_in_data(m_config.max_data_line_length);
    }
    return std::nullopt;
}

// The session's own checks of a complete message that the data reader let
// through: its header section.
std::optional<Reply> Session::check_headers(std::string_view& reason)
{
    m_headers->finish();
    if (m_headers->loop()) {
        reason = "mail-loop";
        return replies::mail_loop(m_config.max_hops);
    }
    if (m_headers->leading_white_space()) {
        // Stored as it is, the first line would continue our Received: field.
        reason = "leading-white-space";
        return replies::leading_white_space();
    }
    if (!m_headers->malformed().empty()) {
        reason = "bad-headers";
        return replies::bad_headers(m_headers->malformed());
    }
    return std::nullopt;
}

// The policy (data hook), whose header lines go on top.
std::optional<Reply> Session::check_policy(std::size_t size, std::string_view& reason)
{
    auto verdict = m_policy.check_message(facts(m_id, size));
    if (verdict.refusal) {
        reason = "policy";
        return verdict.refusal;
    }
    m_tx->hold = m_tx->hold || verdict.hold;
    m_tx->discard = m_tx->discard || verdict.discard;
    // The recipients' header lines first, then the message's.
    if (std::string headers = m_tx->prepend + verdict.headers; !headers.empty() && !m_tx->discard) {
        if (auto r = m_spool.prepend(headers); !r) {
            m_spool_error = r.error();
            reason = "local-error";
            return local_error_reply(r.error());
        }
    }
    return std::nullopt;
}

// RFC 3030 §2: BDAT <size> [LAST], where the NFA table allows it. The
// announced octets follow the command line whatever the reply; a BDAT refused
// here (its size known) has them read and discarded before its reply, so that
// the session stays in step.
Session::Handled Session::on_bdat(const Command& cmd)
{
    auto parsed = parse_bdat(cmd.argument);
    if (auto* r = std::get_if<Reply>(&parsed)) {
        if (auto size = bdat_chunk_size(cmd.argument)) {
            expect_bdat_octets(*size, false, std::move(*r));
            return {std::nullopt, false};
        }
        return {std::move(*r), false}; // where the chunk ends is unknown: nothing to discard
    }
    const BdatCommand bdat = std::get<BdatCommand>(parsed);
    std::optional<Reply> refusal;
    if (!m_bdat.message_open()) {
        // The first chunk of the message.
        refusal = begin_message();
        if (!refusal) {
            m_bdat.open_message(m_tx->mail.body == Body::binary_mime, m_config.max_message_size, max_data_line());
        }
    }
    const bool accepted = !refusal;
    expect_bdat_octets(bdat.size, bdat.last, std::move(refusal));
    // The state moves on when the octets are in (end_bdat_chunk).
    return {std::nullopt, accepted};
}

// The octets of a BDAT command follow: in Mode::bdat_octets until they are
// all in, then the reply (at once for BDAT 0).
void Session::expect_bdat_octets(std::uint64_t size, bool last, std::optional<Reply> refusal)
{
    if (refusal && m_log.enabled()) {
        m_log.log(LogLine("bdat")
                      .add("size", size)
                      .add("result", "refused")
                      .add("code", static_cast<std::uint64_t>(refusal->code)));
    }
    m_bdat.announce(size, last, std::move(refusal));
    m_mode = Mode::bdat_octets;
    if (size == 0) {
        end_bdat_chunk();
    }
}

// The announced chunk's octets among `bytes`; returns how many it took.
std::size_t Session::read_bdat_octets(std::string_view bytes)
{
    m_message_octets.clear();
    const bool accepted = m_bdat.accepted();
    const std::size_t n = m_bdat.take(bytes, m_message_octets);
    if (accepted) {
        store(m_bdat.reader().refused());
    }
    if (m_bdat.complete()) {
        end_bdat_chunk();
    }
    return n;
}

// All octets of a chunk are in: its reply. A refused message ends the
// transaction at once (RFC 3030 §2: the client sends no more chunks, and any
// already pipelined get 503 and are discarded).
void Session::end_bdat_chunk()
{
    BdatTransfer::Chunk c = m_bdat.end_chunk();
    m_mode = Mode::command;
    m_reply_first = true;
    if (c.refusal) {
        reply(*c.refusal); // nothing changes
        return;
    }
    const ChunkReader& b = m_bdat.reader();
    std::string_view reason;
    std::optional<Reply> refusal = read_refusal(b.bare_line_end(), b.nul(), b.too_big(), b.long_line(), reason);
    if (!refusal && !c.last) {
        m_state = after_chunk(false);
        reply(replies::chunk_received(c.size));
        return;
    }
    const std::size_t size = b.size();
    const std::size_t chunks = m_bdat.accepted_chunks();
    m_bdat.close_message();
    finish_message(std::move(refusal), reason, size, chunks);
}

// The content filters' verdict at the end of a message (after the session's
// own checks, before the data hook and the commit): a refusal, a discard, a
// hold, and the edits they asked for, applied to the stored message and the
// transaction (smtpspool(8), MILTERS).
std::optional<Reply> Session::filter_message(std::string_view& reason, FilterOutcome& outcome)
{
    EndOfMessageVerdict v =
        m_filter->end_of_message([this](const MessagePiece& piece) { return m_spool.read_message(piece); });
    using Action = FilterVerdict::Action;
    LogLine line("filter");
    line.add("stage", "eom").add("id", m_id);
    auto log_with = [&](std::string_view action) {
        line.add("action", action);
        if (!v.verdict.reason.empty()) {
            line.add("reason", v.verdict.reason);
        }
    };
    switch (v.verdict.action) {
    case Action::reject:
    case Action::tempfail:
        reason = "filter";
        return filter_refusal(v.verdict, "eom");
    case Action::discard:
        log_with("discard");
        m_log.log(line);
        outcome.discard = true;
        outcome.reason = "filter";
        return std::nullopt;
    case Action::quarantine:
        log_with("quarantine");
        outcome.held = true;
        break;
    case Action::proceed:
    case Action::accept:
        if (v.edits.empty()) {
            return std::nullopt;
        }
        log_with(v.verdict.action == Action::accept ? "accept" : "continue");
        break;
    }
    std::optional<Reply> refusal;
    if (!v.edits.empty()) {
        refusal = apply_edits(v.edits, reason, line);
    }
    m_log.log(line);
    if (!refusal && m_tx->targets.empty()) {
        // Every recipient deleted: as Postfix does, the message is taken
        // (250) and goes nowhere.
        outcome.discard = true;
        outcome.reason = "no-recipients";
    }
    return refusal;
}

// A recipient a filter adds or deletes, as the session would store it from
// RCPT TO (parse_rcpt: syntax, length, SMTPUTF8; our domains' canonical
// local part); nullopt and `refusal` when it is not one.
std::optional<std::string> Session::edited_recipient(std::string_view address, Reply& refusal) const
{
    auto parsed = parse_rcpt("TO:<" + std::string(address) + ">", true, m_tx->mail.smtputf8);
    if (auto* r = std::get_if<Reply>(&parsed)) {
        refusal = *r;
        return std::nullopt;
    }
    const Path& path = std::get<RcptCommand>(parsed).path;
    const bool local = path.domain.empty() || is_local_domain(path.domain);
    return local ? canonical_mailbox(path.local, path.domain) : path.local + "@" + ascii_lower(path.domain);
}

// Every edit is checked before any is made; then the sender, the recipients
// deleted, the recipients added, and the header section and body (the spool
// rewrites the message). A filter's edit that cannot be made is a local
// error: 451, the reason in the log (the client tries again; nothing is lost).
std::optional<Reply> Session::apply_edits(const MessageEdits& edits, std::string_view& reason, LogLine& line)
{
    auto cannot = [&](std::string why) -> std::optional<Reply> {
        line.add("error", why);
        reason = "filter-edit";
        return replies::local_error();
    };
    for (const HeaderEdit& h : edits.headers) {
        if (std::string why = header_edit_problem(h); !why.empty()) {
            return cannot(why);
        }
    }
    if (edits.body) {
        if (std::string why = body_problem(*edits.body); !why.empty()) {
            return cannot(why);
        }
    }
    Transaction tx = *m_tx;
    if (edits.sender) {
        // As MAIL FROM would take it, with the transaction's SMTPUTF8.
        std::string argument = "FROM:<" + *edits.sender + ">" + (tx.mail.smtputf8 ? " SMTPUTF8" : "");
        auto parsed = parse_mail(argument, MailOptions{true, 0, false});
        if (auto* r = std::get_if<Reply>(&parsed)) {
            return cannot("sender <" + *edits.sender + ">: " + r->text);
        }
        tx.mail.path = std::get<MailCommand>(parsed).path;
        line.add("from", tx.mail.path.mailbox);
    }
    // Deleted: the recipient as the client named it, and all it stands for
    // (an alias's addresses), or an address it stands for. One that is not
    // there is passed over.
    std::size_t deleted = 0;
    for (const std::string& d : edits.delete_recipients) {
        Reply refusal;
        std::optional<std::string> address = edited_recipient(d, refusal);
        if (!address) {
            continue; // never accepted, so not there
        }
        const std::size_t before = tx.targets.size();
        std::erase_if(tx.targets, [&](const Recipient& r) {
            return r.address == *address || (r.original && *r.original == *address);
        });
        deleted += before - tx.targets.size();
        std::erase(tx.recipients, *address);
        tx.named.erase(*address);
    }
    // Added: checked as RCPT TO is (the policy: aliases, unknown users, the
    // rcpt hook; BINARYMIME routing), counted against --max-recipients; not
    // the relaying rules (the filter is ours to trust).
    std::size_t added = 0;
    for (const std::string& a : edits.add_recipients) {
        Reply refusal;
        std::optional<std::string> address = edited_recipient(a, refusal);
        if (!address) {
            return cannot("recipient <" + a + ">: " + refusal.text);
        }
        if (tx.named.count(*address) > 0) {
            continue;
        }
        if (tx.targets.size() >= m_config.max_recipients) {
            return cannot("recipient <" + a + ">: more than --max-recipients");
        }
        const std::size_t at = address->rfind('@');
        const bool local = at == std::string::npos || is_local_domain(std::string_view(*address).substr(at + 1));
        PolicyFacts asked = facts();
        asked.sender = tx.mail.path.mailbox;
        PolicyFacts with_tx{asked.peer,          asked.may_relay, asked.helo,      asked.sender,
                            tx.recipients,       asked.id,        asked.size,      asked.tls,
                            asked.esmtp,         asked.auth_user, asked.tls_info,  asked.declared_size,
                            asked.transaction};
        auto verdict = m_policy.check_recipient(with_tx, *address, local);
        if (verdict.refusal) {
            return cannot("recipient <" + a + ">: " + verdict.refusal->text);
        }
        if (binarymime_bounces(verdict.addresses)) {
            return cannot("recipient <" + a + ">: " + replies::binarymime_undeliverable().text);
        }
        std::vector<Recipient> more = new_recipients(tx.targets, std::move(verdict.addresses), *address);
        if (tx.targets.size() + more.size() > m_config.max_recipients) {
            return cannot("recipient <" + a + ">: more than --max-recipients");
        }
        added += more.size();
        // What a policy service says of it counts as for a recipient of RCPT.
        if (tx.prepend.size() + verdict.headers.size() <= limits::k_max_policy_header_bytes) {
            tx.prepend += verdict.headers;
        }
        tx.hold = tx.hold || verdict.hold;
        tx.discard = tx.discard || verdict.discard;
        tx.named.insert(*address);
        tx.recipients.push_back(*address);
        std::move(more.begin(), more.end(), std::back_inserter(tx.targets));
    }
    if (!edits.headers.empty() || edits.body) {
        if (auto r = m_spool.rewrite(edits); !r) {
            m_spool_error = r.error();
            reason = "local-error";
            line.add("error", r.error().message);
            return local_error_reply(r.error());
        }
    }
    *m_tx = std::move(tx);
    if (!edits.headers.empty()) {
        line.add("headers", static_cast<std::uint64_t>(edits.headers.size()));
    }
    if (edits.body) {
        line.add("body", "replaced");
    }
    if (!edits.add_recipients.empty()) {
        line.add("added", static_cast<std::uint64_t>(added));
    }
    if (!edits.delete_recipients.empty()) {
        line.add("deleted", static_cast<std::uint64_t>(deleted));
    }
    return std::nullopt;
}

// The end of a message, by DATA or BDAT: the checks, the commit and the reply.
void Session::finish_message(std::optional<Reply> refusal, std::string_view reason, std::size_t size,
                             std::size_t chunks)
{
    m_reply_first = true;
    end_of_stored_octets(refusal.has_value());
    if (!refusal && m_spool_error) {
        reason = "local-error";
        refusal = local_error_reply(*m_spool_error);
    }
    if (!refusal) {
        refusal = check_headers(reason);
    }
    m_headers.reset();
    FilterOutcome filtered;
    if (!refusal && !m_tx->discard && filtering_transaction()) {
        refusal = filter_message(reason, filtered);
    }
    if (!refusal && !filtered.discard) {
        refusal = check_policy(size, reason);
    }
    if (!refusal && (filtered.discard || m_tx->discard)) {
        // A policy service or a content filter said discard, or the filters
        // deleted every recipient: the client hears what a stored message
        // gets, and nothing is stored.
        m_spool.abort();
        LogLine discarded("discarded");
        discarded.add("id", m_id).add("size", size).add("recipients", m_tx->targets.size());
        if (filtered.discard) {
            discarded.add("reason", filtered.reason); // decided at the end of the message
        }
        m_log.log(discarded);
        reply(replies::queued(m_id));
    } else if (!refusal) {
        Envelope e = make_envelope(message_facts());
        e.held = m_tx->hold || filtered.held;
        if (auto r = m_spool.commit(e); r) {
            ++m_messages;
            m_recipients_total += e.recipients.size();
            if (m_log.enabled()) {
                LogLine queued("queued");
                queued.add("id", e.id).add("size", e.size).add("recipients", e.recipients.size());
                if (chunks > 0) {
                    queued.add("chunks", chunks);
                }
                if (e.dsn_limited) {
                    queued.add("dsn", "limited");
                }
                if (e.held) {
                    queued.add("held", "yes");
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
    filter_abort();
    m_state = k_after_message;
}

Session::Handled Session::on_rset(const Command& cmd)
{
    if (cmd.has_argument) {
        return {replies::no_arguments("RSET"), false};
    }
    reset_transaction();
    return {replies::reset_ok(), true};
}

Session::Handled Session::on_noop(const Command&) { return {replies::ok(), true}; }

Session::Handled Session::on_quit(const Command& cmd)
{
    if (cmd.has_argument) {
        return {replies::no_arguments("QUIT"), false};
    }
    return {replies::closing(m_config.hostname), true};
}

Session::Handled Session::on_help(const Command&) { return {replies::help(), true}; }

Session::Handled Session::on_vrfy(const Command& cmd)
{
    if (!cmd.has_argument || cmd.argument.empty()) {
        return {replies::syntax("VRFY <address>"), false};
    }
    // RFC 5321 §3.5.3 and §7.3: 252 when we will not verify.
    return {replies::cannot_verify(), true};
}

Session::Handled Session::on_expn(const Command&) { return {replies::expn_refused(), false}; }

Session::Handled Session::on_unimplemented(const Command&) { return {replies::not_implemented(), false}; }

Session::Handled Session::on_unknown(const Command&) { return {replies::unknown_command(), false}; }

Session::Handled Session::on_starttls(const Command& cmd)
{
    if (cmd.has_argument) {
        return {replies::no_arguments("STARTTLS"), false};
    }
    if (m_tls_port != nullptr) {
        if (auto ready = m_tls_port->prepare(); !ready) {
            // RFC 3207 §4: 454, and the session goes on in the clear.
            m_log.log(LogLine("tls-error").add("reason", ready.error().message));
            return {replies::tls_unavailable(), false};
        }
    }
    m_start_tls = true;
    m_reply_first = true; // what follows STARTTLS is not to be read as plaintext
    return {replies::tls_ready(), true};
}

bool Session::starttls_offered() const { return m_config.tls_offered && !m_config.peer.local; }

bool Session::auth_offered() const { return m_auth != nullptr && (m_config.tls || m_config.peer.local); }

Session::Handled Session::on_auth(const Command& cmd)
{
    AuthDialogue::Result r = m_auth_dialogue.begin(cmd.argument, *m_auth, m_log);
    authenticated(r);
    return {std::move(r.reply), true};
}

// A line that answers a 334: "*" cancels.
void Session::auth_reply(std::string_view line)
{
    AuthDialogue::Result r = m_auth_dialogue.respond(line, *m_auth, m_log);
    authenticated(r);
    reply(r.reply);
}

// After each step of the AUTH dialogue: the next line is another answer, or
// a command again; a client that authenticated may relay.
void Session::authenticated(const AuthDialogue::Result& r)
{
    m_mode = m_auth_dialogue.waiting() ? Mode::auth_reply : Mode::command;
    if (r.user) {
        m_auth_user = r.user;
        m_auth_mechanism = r.mechanism;
        m_config.may_relay = true;
    }
}

} // namespace smtpspool
