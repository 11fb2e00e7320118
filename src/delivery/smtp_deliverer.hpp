// smtp_deliverer: delivery of queued messages to one SMTP server (a smarthost)
// over TCP, RFC 5321 with PIPELINING, SIZE, 8BITMIME and SMTPUTF8; one
// connection reused for all messages of a run.
#pragma once

#include "delivery/smtp_client.hpp"
#include "delivery/deliverer.hpp"

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace smtpspool {

struct SmtpTarget {
    std::string host; // a name, an IPv4 address, or an IPv6 address (with or without [])
    std::uint16_t port = 25;
};

// RFC 5321 §4.5.3.2 gives the minimum time to wait for each reply.
struct SmtpTimeouts {
    std::chrono::seconds connect{60};     // our choice (the RFC has none)
    std::chrono::seconds greeting{300};   // §4.5.3.2.1 initial 220 message
    std::chrono::seconds helo{300};       // EHLO/HELO: not in the RFC, as MAIL
    std::chrono::seconds mail{300};       // §4.5.3.2.2; also RSET and QUIT
    std::chrono::seconds rcpt{300};       // §4.5.3.2.3
    std::chrono::seconds data_init{120};  // §4.5.3.2.4 the 354 to DATA
    std::chrono::seconds data_block{180}; // §4.5.3.2.5 each block of data we write
    std::chrono::seconds data_done{600};  // §4.5.3.2.6 the reply to the final "."

    // Every timeout set to s (runq --smtp-timeout S).
    static SmtpTimeouts uniform(std::chrono::seconds s);
};

// One SMTP client session per run, to one server.
//
// Outcomes, per recipient:
// - RCPT and the reply to the end of data decide: 2xx delivered, 4xx temporary,
//   5xx permanent; a 4xx/5xx to MAIL or DATA decides for every recipient; the
//   detail is the server's reply on one line.
// - An address with a control character, '<' or '>' (or otherwise unusable on
//   the wire, see address_refusal) is never sent: permanent "553 5.1.3 ..."
//   (or "553 5.1.7" for the sender, which fails every recipient).
// - An entry of delivery.recipients that is not an index of the envelope's
//   recipients is temporary (a bug of the caller, never sent).
// - SMTPUTF8 message, server without SMTPUTF8: every recipient permanent
//   "553 5.6.7 ...", nothing sent. 8BITMIME message, server without 8BITMIME
//   (including a server that refused EHLO): every recipient permanent
//   "554 5.6.3 ...", nothing sent. RFC 6152 §3 allows converting to 7 bits
//   or failing for good; we fail, since conversion would break signed
//   messages, and the sender gets a bounce saying why.
// - A message larger than the server's SIZE limit: permanent "552 5.3.4 ...",
//   nothing sent (RFC 1870: the server would refuse it anyway).
// - Connection-level trouble (DNS failure, connection refused, a timeout, a
//   dropped connection, a malformed reply, a 421, a greeting or HELO that is not
//   2xx): every recipient not yet decided by its own RCPT reply is temporary
//   with a description of what happened (RFC 5321 §3.8: as if 451), and the
//   connection is closed; the next message tries a new one. A 5xx RCPT reply
//   received before the trouble stays permanent (the server has answered for
//   that recipient).
// - A HELO name that is empty or has a space or control character: every
//   recipient temporary, nothing sent.
//
// Session: EHLO, or HELO when EHLO gets 5xx (RFC 5321 §3.2). With PIPELINING,
// MAIL, the RCPTs and DATA go in one write (RFC 2920; above 99 recipients in
// writes of 100 commands, DATA with the last); without it, one at a time, and
// DATA only once a RCPT was accepted. RSET goes before each transaction on a
// reused connection, and at once after a transaction that stopped before the
// message (MAIL refused, no recipient accepted, DATA refused); the connection
// is kept only when RSET gets 250. finish() and the destructor send QUIT.
//
// Timeouts are per reply (from the moment we start waiting for it) and per
// written block. getaddrinfo(3) has no timeout of ours: resolv.conf governs it.
// Never logs; never raises SIGPIPE (MSG_NOSIGNAL).
class SmtpDeliverer final : public Deliverer {
public:
    // helo_name: our name for EHLO/HELO (a domain or an address literal).
    // Does not connect; the first deliver() does.
    SmtpDeliverer(SmtpTarget target, std::string helo_name, SmtpTimeouts timeouts = {});
    // Sends QUIT if a connection is still open.
    ~SmtpDeliverer() override;
    SmtpDeliverer(const SmtpDeliverer&) = delete;
    SmtpDeliverer& operator=(const SmtpDeliverer&) = delete;

    std::vector<RecipientOutcome> deliver(const Delivery& delivery) override;
    // QUIT and close; a later deliver() opens a new connection.
    void finish() override;

    // True while a connection is open (for tests and the runner's curiosity).
    bool connected() const { return m_fd >= 0; }

private:
    struct Transaction;

    std::string where() const;
    void connect_socket();
    void open_session();
    void ensure_session();
    bool reset();
    void quit();
    void drop();
    [[noreturn]] void refuse_session(const ServerReply& reply, std::string_view what);
    void run_transaction(Transaction& tx);
    void send_data(Transaction& tx);
    void abort_transaction();

    void send_all(std::string_view bytes, std::chrono::seconds timeout, std::string_view what);
    ServerReply read_reply(std::chrono::seconds timeout, std::string_view what);
    std::string closed_detail(std::string_view doing);

    SmtpTarget m_target;
    std::string m_helo;
    SmtpTimeouts m_timeouts;
    int m_fd = -1;
    std::string m_in; // octets received and not yet given to the parser
    ReplyParser m_parser;
    EhloFeatures m_features;
    bool m_need_rset = false; // a transaction has used the connection since the last RSET
    std::string m_buffer;     // one 64 KiB buffer for reads (socket and message file)
};

} // namespace smtpspool
