// smtp_deliverer: delivery of queued messages to one SMTP server (a smarthost)
// over TCP, RFC 5321 with PIPELINING, SIZE, 8BITMIME, SMTPUTF8, CHUNKING and
// BINARYMIME; one connection reused for all messages of a run.
#pragma once

#include "delivery/client_tls.hpp"
#include "delivery/body_transfer.hpp"
#include "delivery/deliverer.hpp"
#include "delivery/smtp_client.hpp"
#include "delivery/smtp_security.hpp"

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace smtpspool {

struct SmtpTarget {
    std::string host; // a name, an IPv4 address, or an IPv6 address (with or without [])
    std::uint16_t port = 25;
    bool tls_on_connect = false; // smtps: TLS before the greeting (RFC 8314 §3)
    // The name TLS is for (SNI, the certificate's name) when it is not host:
    // the mail exchanger's name of an address found through an MX lookup.
    std::string tls_name{};
};

// TLS and AUTH toward one next hop (smtp_security.hpp defines the levels).
struct SmtpSecurity {
    TlsLevel level = TlsLevel::none;
    std::shared_ptr<ClientTlsConnector> tls; // null: no TLS (encrypt and verify then defer)
    std::optional<AuthEntry> credentials;    // AUTH PLAIN or LOGIN with these
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
//   "553 5.6.7 ...", nothing sent.
// - The body goes as choose_transfer (body_transfer.hpp) says, from what the
//   envelope's "content" records (or, for an envelope without it, what a look
//   at the message finds), not from BODY= alone: 8-bit content to a server
//   without 8BITMIME (including one that refused EHLO) is converted to 7 bits
//   (MimeDowngrade, RFC 6152 §3); what cannot be converted (8-bit content of
//   a multipart/signed entity, 8-bit structured header fields of a message
//   without SMTPUTF8, ...) is permanent "554 5.6.3 ... cannot be converted to 7 bits:
//   why", nothing sent. A BINARYMIME message goes only to a server that
//   offers CHUNKING and BINARYMIME; elsewhere permanent "554 5.6.3 ...".
// - A server that offers CHUNKING gets the message in BDAT chunks (RFC 3030)
//   instead of DATA; a 4xx/5xx to a chunk before the last decides for every
//   accepted recipient, as the reply to the last one does.
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
// DATA only once a RCPT was accepted. To a server that offers CHUNKING, no
// DATA: the BDAT chunks follow once the RCPT replies are in and one was
// accepted (send_chunks). RSET goes before each transaction on a
// reused connection, and at once after a transaction that stopped before the
// message (MAIL refused, no recipient accepted, DATA refused); the connection
// is kept only when RSET gets 250. finish() and the destructor send QUIT.
//
// TLS (smtp_deliverer_security.cpp): an smtps target gets the handshake
// before the greeting; otherwise STARTTLS (RFC 3207) follows the first EHLO
// as the level says (none: never; may: when offered, and a handshake that
// fails makes the rest of the run use clear text; encrypt and verify: when
// not offered or failing, every recipient temporary). verify also needs the
// certificate verified, else every recipient temporary with the library's
// reason. After STARTTLS's 220 the octets that came with it are discarded
// and EHLO is sent again; the first reply is forgotten. The TLS version,
// cipher and verdict go with every outcome of a session that used TLS.
//
// AUTH (with credentials): after TLS, PLAIN or else LOGIN, as the EHLO reply
// offers; credentials go only inside TLS or to a loopback address. No
// mechanism, no TLS to a remote host, or a refusal: every recipient
// temporary; after a 5xx to AUTH (535: bad credentials), every later message
// of the run is deferred at once with the same detail, and take_notices()
// returns it once.
//
// Timeouts are per reply (from the moment we start waiting for it) and per
// written block. getaddrinfo(3) has no timeout of ours: resolv.conf governs it.
// Never logs (take_notices() hands configuration trouble to the runner). In
// clear text it never raises SIGPIPE (MSG_NOSIGNAL); the TLS layer writes with
// write(2), so a caller that uses TLS ignores SIGPIPE (runq does).
class SmtpDeliverer final : public Deliverer {
public:
    // helo_name: our name for EHLO/HELO (a domain or an address literal).
    // Does not connect; the first deliver() does.
    SmtpDeliverer(SmtpTarget target, std::string helo_name, SmtpTimeouts timeouts = {}, SmtpSecurity security = {});
    // Sends QUIT if a connection is still open.
    ~SmtpDeliverer() override;
    SmtpDeliverer(const SmtpDeliverer&) = delete;
    SmtpDeliverer& operator=(const SmtpDeliverer&) = delete;

    std::vector<RecipientOutcome> deliver(const Delivery& delivery) override;
    // QUIT and close; a later deliver() opens a new connection.
    void finish() override;
    std::vector<std::string> take_notices() override;

    // True while a connection is open (for tests and the runner's curiosity).
    bool connected() const { return m_fd >= 0; }

private:
    struct Transaction;

    // smtp_deliverer_security.cpp
    std::vector<RecipientOutcome> deliver_message(const Delivery& delivery);
    void open_secure_session();
    void start_tls(bool verify);
    void secure_session();
    void authenticate();
    bool auth_round(std::string_view line, ServerReply& reply);
    void tls_send(std::string_view bytes, std::chrono::seconds timeout, std::string_view what);
    void tls_receive(std::chrono::steady_clock::time_point deadline, std::chrono::seconds timeout,
                     std::string_view what);

    std::string where() const;
    void connect_socket();
    void open_session();
    void ensure_session();
    bool reset();
    void quit();
    void drop();
    [[noreturn]] void refuse_session(const ServerReply& reply, std::string_view what);
    void run_transaction(Transaction& tx);
    // The body: how it goes (choose_transfer, and the conversion's passes),
    // then DATA's octets or the BDAT chunks.
    bool prepare_body(Transaction& tx);
    void send_data(Transaction& tx);
    struct ChunksReply {
        ServerReply reply;
        bool last = true; // the reply to the LAST chunk (else a refused chunk before it)
    };
    ChunksReply send_chunks(Transaction& tx);
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

    SmtpSecurity m_security;
    std::unique_ptr<ClientTlsChannel> m_tls;     // the connection's TLS, when it has it
    std::optional<DeliveryTls> m_tls_record;     // the TLS of the last session opened
    std::chrono::steady_clock::time_point m_tls_deadline; // what the TLS layer may wait until
    bool m_used = false;               // this deliver() spoke to the server
    bool m_clear_text_only = false;    // may: a handshake failed, clear text for the rest of the run
    std::string m_auth_refused;        // after a 5xx to AUTH: why, for every later message
    std::vector<std::string> m_notices;
};

} // namespace smtpspool
