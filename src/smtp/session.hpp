// session: one SMTP session as a pure state machine: bytes in, replies and
// spool calls out. No file descriptors, no clock of its own, no files.
#pragma once

#include "smtp/auth.hpp"
#include "smtp/auth_dialogue.hpp"
#include "smtp/auth_results.hpp"
#include "smtp/bdat_transfer.hpp"
#include "smtp/message_facts.hpp"
#include "base/clock.hpp"
#include "model/envelope.hpp"
#include "smtp/filter_port.hpp"
#include "smtp/header_check.hpp"
#include "base/log.hpp"
#include "base/result.hpp"
#include "smtp/smtp_command.hpp"
#include "smtp/transcript_port.hpp"
#include "smtp/smtp_data.hpp"
#include "smtp/filter_port.hpp"
#include "smtp/policy_port.hpp"
#include "smtp/smtp_nfa.hpp"
#include "smtp/smtp_reply.hpp"
#include "smtp/spool_port.hpp"

#include <array>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

namespace smtpspool {

// Asked before the 220 to STARTTLS: can TLS be had now? serve loads the
// certificate only then, so sessions that never ask do not pay for it. An
// error when not (the session answers 454 and logs its message).
class TlsPort {
public:
    virtual ~TlsPort() = default;
    virtual Result<void> prepare() = 0;
};

struct SessionConfig {
    std::string hostname = "localhost";
    std::vector<std::string> local_domains; // compared case-insensitively
    std::size_t max_message_size = 0;
    std::size_t max_recipients = 0;
    std::size_t max_line_length = 0;
    std::size_t max_data_line_length = 0; // of a network client's message, before CRLF; 0: any
    std::size_t max_errors = 0;
    bool rfc821 = false;
    bool may_relay = false; // from relay-client, RELAYCLIENT or a local client
    // Whether runq delivers mail for a domain (any case) by SMTP; unset: no
    // route is known. A client that may not relay gets 550 to a recipient of
    // a BODY=BINARYMIME message so routed (it bounces unless the next hop offers BINARYMIME).
    std::function<bool(std::string_view domain)> routed_by_smtp;
    // Take local recipients whose local part routes (%, !, @) from clients
    // that may not relay too.
    bool allow_untrusted_routing = false;
    // Policy (smtpspool(8), POLICY).
    bool client_denied = false;   // 554 instead of 220, then 503 to all but QUIT
    std::size_t max_messages = 0; // per session, then 421; 0: no limit
    bool check_headers = false;   // refuse malformed header sections
    std::size_t max_hops = 100;   // Received: fields before 554 5.4.6
    bool add_envelope_to = false; // X-Envelope-To: per recipient
    // Authentication-Results: fields that claim this authserv-id are taken
    // out of every message (RFC 8601 §5); "": the hostname.
    std::string authserv_id;
    Peer peer;
    // TLS (smtpspool(8), TLS).
    bool tls_offered = false;   // STARTTLS in the EHLO reply: a certificate is loaded
    bool require_tls = false;   // 530 to MAIL before STARTTLS (network clients)
    std::optional<TlsInfo> tls; // already encrypted from the start (--tls-on-connect)
};

struct Output {
    std::string wire;   // rendered replies, to be written before reading again
    bool close = false; // the session is over: write wire, then exit
    // Octets of the input that feed() used. Less than all of it only right
    // after the end of a message's data or of a BDAT chunk: its reply is
    // written before anything after it is looked at, so a 250 never waits
    // behind later input.
    std::size_t consumed = 0;
    // STARTTLS was accepted: write wire, then do the TLS handshake; the input
    // after `consumed` was sent before it and is discarded (RFC 3207 §6).
    bool start_tls = false;
};

class Session {
public:
    Session(SessionConfig config, SpoolPort& spool, PolicyPort& policy, LogSink& log, const Clock& clock);
    // With no policy: AcceptAll.
    Session(SessionConfig config, SpoolPort& spool, LogSink& log, const Clock& clock);

    Output start();
    // Call again with the rest when Output::consumed < bytes.size().
    Output feed(std::string_view bytes);
    Output end_of_input();
    Output timeout();
    // The handshake after Output::start_tls: done, with `discarded` octets of
    // plaintext that came after STARTTLS thrown away (each such session
    // counts one client error); or failed, which ends the session.
    Output tls_started(TlsInfo tls, std::size_t discarded);
    Output tls_failed(std::string_view reason);
    // AUTH PLAIN and LOGIN (RFC 4954), offered inside TLS and to local
    // clients; a client that authenticated may relay.
    void use_auth(AuthPort& auth) { m_auth = &auth; }
    // Without one, TLS is taken to be ready whenever it is offered.
    void use_tls(TlsPort& tls) { m_tls_port = &tls; }
    // Each command line (credentials as markers) also to a transcript.
    void use_transcript(TranscriptPort& transcript) { m_transcript = &transcript; }
    // Content filters (milters) asked at each stage (smtpspool(8), MILTERS).
    void use_filter(FilterPort& filter) { m_filter = &filter; }

    State state() const { return m_state; }

private:
    // What the next input octets are. The NFA state says which commands may
    // come; the mode says whether a command comes at all.
    enum class Mode {
        command,     // command lines
        data,        // a message after DATA's 354, up to the end-of-data mark
        bdat_octets, // the octets a BDAT command announced
        auth_reply,  // a line that answers AUTH's 334
        closed,      // nothing more is read
    };

    struct Transaction {
        MailCommand mail;
        std::vector<std::string> recipients; // as the client named them
        std::vector<Recipient> targets;      // what they stand for (aliases)
        std::unordered_set<std::string> named; // recipients, to find a repeat at once
        // What the policy said of the message with its recipients.
        std::string prepend; // header lines for the top of the message
        bool hold = false;   // store it on hold
        bool discard = false; // say 250, store nothing (the policy's or a filter's)
        bool filter_done = false;              // the filter accepted it: no more filter calls
        std::optional<Reply> filter_refusal;   // a filter refused its data: the same to each DATA or BDAT
    };

    // A handler's result; the NFA table has allowed the command already.
    struct Handled {
        std::optional<Reply> reply;  // none: the reply comes later (BDAT, after its octets)
        bool success;                // the NFA successor applies
        std::string_view close = {}; // end the session after the reply, for this reason
    };
    using Handler = Handled (Session::*)(const Command&);
    static constexpr std::array<Handler, k_verb_count> make_handlers();

    void reply(const Reply& r);
    void close(std::string_view reason);
    std::size_t read_line(std::string_view bytes);
    void line(std::string_view raw);
    void command(std::string_view text);
    GuardSet guards() const;

    Handled on_helo(const Command& cmd);
    Handled on_ehlo(const Command& cmd);
    Handled greet(const Command& cmd, bool esmtp);
    Handled on_mail(const Command& cmd);
    Handled on_rcpt(const Command& cmd);
    Handled on_data(const Command& cmd);
    Handled on_bdat(const Command& cmd);
    Handled on_rset(const Command& cmd);
    Handled on_noop(const Command& cmd);
    Handled on_quit(const Command& cmd);
    Handled on_help(const Command& cmd);
    Handled on_vrfy(const Command& cmd);
    Handled on_expn(const Command& cmd);
    Handled on_starttls(const Command& cmd);
    Handled on_auth(const Command& cmd);
    Handled on_unimplemented(const Command& cmd);
    Handled on_unknown(const Command& cmd);

    void auth_reply(std::string_view line);
    void authenticated(const AuthDialogue::Result& r);
    bool auth_offered() const;
    bool starttls_offered() const; // to this client, encrypted already or not

    // The message: DATA's and BDAT's.
    std::optional<Reply> begin_message();
    bool message_open() const { return m_data_reader || m_bdat.message_open(); }
    std::size_t read_data(std::string_view bytes);
    void expect_bdat_octets(std::uint64_t size, bool last, std::optional<Reply> refusal);
    std::size_t read_bdat_octets(std::string_view bytes);
    void end_bdat_chunk();
    void store(bool refused);
    void keep(std::string_view octets, bool refused);
    void end_of_stored_octets(bool refused);
    std::optional<Reply> read_refusal(bool bare_line_end, bool nul, bool too_big, bool long_line,
                                      std::string_view& reason) const;
    std::size_t max_data_line() const;
    std::optional<Reply> check_headers(std::string_view& reason);
    std::optional<Reply> check_policy(std::size_t size, std::string_view& reason);
    // What the content filters decided at the end of the message.
    struct FilterOutcome {
        bool discard = false; // 250, nothing stored
        bool held = false;    // stored on hold (quarantine)
        std::string reason;   // the filter's, for the log
    };
    std::optional<Reply> filter_message(std::string_view& reason, FilterOutcome& outcome);
    std::optional<Reply> apply_edits(const MessageEdits& edits, std::string_view& reason, LogLine& line);
    std::optional<std::string> edited_recipient(std::string_view address, Reply& refusal) const;
    void finish_message(std::optional<Reply> refusal, std::string_view reason, std::size_t size,
                        std::size_t chunks);
    void reset_transaction();
    void count_error();

    // The filter port, while it wants to hear about this stage.
    bool filtering() const { return m_filter != nullptr && !m_filter_done; }
    bool filtering_transaction() const { return filtering() && m_tx && !m_tx->filter_done; }
    FilterMessageFacts filter_facts(std::string_view id) const;
    void filter_abort();
    // The refusal a filter's reject or tempfail stands for, logged.
    Reply filter_refusal(const FilterVerdict& v, std::string_view stage);

    bool is_local_domain(std::string_view domain) const;
    bool binarymime_bounces(const std::vector<std::string>& addresses) const;
    MessageFacts message_facts() const;
    PolicyFacts facts(std::string_view id = {}, std::uint64_t size = 0) const;
    Reply local_error_reply(const Error& e) const;

    SessionConfig m_config;
    SpoolPort& m_spool;
    AcceptAll m_accept_all;
    PolicyPort& m_policy;
    LogSink& m_log;
    TranscriptPort* m_transcript = nullptr;
    FilterPort* m_filter = nullptr;
    bool m_filter_done = false;    // accepted for the session, at connect or helo
    bool m_filter_tx_open = false; // the filter heard MAIL and no end of the transaction yet
    const Clock& m_clock;

    State m_state = State::connected;
    Mode m_mode = Mode::command;
    std::string m_helo;
    bool m_esmtp = false;
    std::optional<Transaction> m_tx;

    std::string m_line;      // a partial command line, at most max_line_length
    bool m_overlong = false; // discarding the rest of an over-long line

    std::optional<DataReader> m_data_reader; // the reader of DATA's octets, in Mode::data
    BdatTransfer m_bdat;
    std::optional<HeaderCheck> m_headers;
    std::string m_id;             // the open message's queue id
    std::string m_message_octets; // what a reader let through, to be stored; reused
    std::optional<AuthResultsFilter> m_auth_results; // of the open message
    std::string m_kept_octets;    // m_message_octets without our Authentication-Results:; reused
    std::optional<Error> m_spool_error;
    TimePoint m_data_started{};

    std::string m_out;
    // A reply must go out before more input is read: after the end of a
    // message's data, of a BDAT chunk, and after STARTTLS.
    bool m_reply_first = false;
    bool m_start_tls = false; // STARTTLS accepted: the handshake comes next
    AuthPort* m_auth = nullptr;
    TlsPort* m_tls_port = nullptr;
    AuthDialogue m_auth_dialogue;
    std::optional<std::string> m_auth_user; // authenticated as
    std::string m_auth_mechanism;           // by this mechanism
    std::size_t m_errors = 0;
    std::size_t m_messages = 0;
    std::size_t m_recipients_total = 0;
    std::uint64_t m_transactions = 0; // MAIL commands taken
};

} // namespace smtpspool
