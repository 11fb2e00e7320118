// session: one SMTP session as a pure state machine: bytes in, replies and
// spool calls out. No file descriptors, no clock of its own, no files (R2).
#pragma once

#include "clock.hpp"
#include "envelope.hpp"
#include "log.hpp"
#include "smtp_command.hpp"
#include "smtp_data.hpp"
#include "smtp_nfa.hpp"
#include "smtp_reply.hpp"
#include "spool_port.hpp"

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace smtpspool {

// Who is on the other end, as main found out (smtpspool(8), PEER IDENTITY).
struct Peer {
    bool local = true;   // a pipe, file or terminal: no network peer
    std::string address; // "192.0.2.7" or "2001:db8::1"; "" when local
    std::optional<std::uint64_t> port;
    std::optional<std::string> hostname;
    std::optional<std::string> ident;
    std::optional<std::string> local_address; // our end, when the superserver says (TCPLOCALIP)
    std::optional<std::uint64_t> local_port;
};

struct SessionConfig {
    std::string hostname = "localhost";
    std::vector<std::string> local_domains; // compared case-insensitively
    std::size_t max_message_size = 0;
    std::size_t max_recipients = 0;
    std::size_t max_line_length = 0;
    std::size_t max_errors = 0;
    bool rfc821 = false;
    bool may_relay = false; // from relay-client, RELAYCLIENT or a local client
    Peer peer;
};

struct Output {
    std::string wire;   // rendered replies, to be written before reading again
    bool close = false; // the session is over: write wire, then exit
    // Octets of the input that feed() used. Less than all of it only right
    // after the end of a message's data: its reply is written before anything
    // after it is looked at, so a 250 never waits behind later input.
    std::size_t consumed = 0;
};

class Session {
public:
    Session(SessionConfig config, SpoolPort& spool, LogSink& log, const Clock& clock);

    Output start();
    // Call again with the rest when Output::consumed < bytes.size().
    Output feed(std::string_view bytes);
    Output end_of_input();
    Output timeout();

    State state() const { return m_state; }

private:
    struct Transaction {
        MailCommand mail;
        std::vector<std::string> recipients;
    };

    void reply(const Reply& r);
    void close(std::string_view reason);
    void line(std::string_view raw);
    void command(std::string_view text);
    std::size_t data(std::string_view bytes);
    void finish_data();
    void reset_transaction();

    // Handlers: each returns its reply; success decides the NFA successor.
    struct Outcome {
        Reply reply;
        bool success;
    };
    Outcome on_helo(const Command& cmd, bool esmtp);
    Outcome on_mail(const Command& cmd);
    Outcome on_rcpt(const Command& cmd);
    Outcome on_data(const Command& cmd);
    Outcome on_rset(const Command& cmd);
    Outcome on_quit(const Command& cmd);
    Outcome on_vrfy(const Command& cmd);

    bool is_local_domain(std::string_view domain) const;
    std::string received_header(std::string_view id) const;
    Envelope make_envelope() const;
    Reply local_error_reply(const Error& e) const;

    SessionConfig m_config;
    SpoolPort& m_spool;
    LogSink& m_log;
    const Clock& m_clock;

    State m_state = State::connected;
    std::string m_helo;
    bool m_esmtp = false;
    std::optional<Transaction> m_tx;

    std::string m_line;      // a partial command line, at most max_line_length
    bool m_overlong = false; // discarding the rest of an over-long line

    std::optional<DataReader> m_data; // set while reading DATA
    std::string m_chunk;              // message octets to append, reused
    std::optional<Error> m_spool_error;
    TimePoint m_data_started{};

    std::string m_out;
    bool m_closed = false;
    std::size_t m_errors = 0;
    std::size_t m_messages = 0;
    std::size_t m_recipients_total = 0;
};

} // namespace smtpspool
