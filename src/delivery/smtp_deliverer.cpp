// smtp_deliverer: the SMTP client session (RFC 5321 §3, §4.1, §4.5.3.2 timeouts;
// RFC 2920 PIPELINING; RFC 1870 SIZE; RFC 6152 8BITMIME; RFC 6531 SMTPUTF8;
// RFC 3461 DSN, whose parameters go on when the server offers it).
// Connection trouble is thrown as Lost inside this file and never escapes it.
#include "delivery/smtp_deliverer.hpp"
#include "delivery/smtp_lost.hpp"

#include "base/fd.hpp"
#include "smtp/dsn.hpp"
#include "base/limits.hpp"
#include "base/text.hpp"

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstring>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <tuple>
#include <unistd.h>

namespace smtpspool {
namespace {

using SteadyClock = std::chrono::steady_clock;

// Commands written at once with PIPELINING. RFC 2920 §3.1: a client that
// writes without reading can deadlock once the server's replies fill the
// buffers; groups of this size keep both directions far below a socket buffer.
inline constexpr std::size_t k_pipeline_group = 100;

Outcome outcome_of(const ServerReply& reply)
{
    return klass(reply) == 2 ? Outcome::delivered : klass(reply) == 4 ? Outcome::temporary : Outcome::permanent;
}


} // namespace

SmtpTimeouts SmtpTimeouts::uniform(std::chrono::seconds s)
{
    SmtpTimeouts t;
    t.connect = t.greeting = t.helo = t.mail = t.rcpt = t.data_init = t.data_block = t.data_done = s;
    return t;
}

// One message on its way: the outcome of each entry of delivery.recipients.
struct SmtpDeliverer::Transaction {
    enum class St { decided, waiting, accepted };

    const Delivery& delivery;
    std::vector<RecipientOutcome> out;
    std::vector<St> state;
    std::vector<std::size_t> sent; // positions in delivery.recipients given to RCPT
    int file = -1;
    std::uint64_t size = 0;        // octets to send (converted ones when converting)
    BodyTransfer transfer;         // how they go (prepare_body)
    Downgrade downgrade;           // the conversion's plan, when converting
    bool data_ended = false;       // the whole message was sent (final "." or BDAT LAST)

    explicit Transaction(const Delivery& d)
        : delivery(d), out(d.recipients.size()), state(d.recipients.size(), St::waiting)
    {
    }

    void decide(std::size_t pos, Outcome outcome, std::string detail)
    {
        out[pos] = {outcome, std::move(detail)};
        state[pos] = St::decided;
    }
    // Every recipient still waiting (and, with accepted_too, accepted) gets this outcome.
    void decide_open(Outcome outcome, const std::string& detail, bool accepted_too)
    {
        for (std::size_t i = 0; i < state.size(); ++i) {
            if (state[i] == St::waiting || (accepted_too && state[i] == St::accepted)) {
                decide(i, outcome, detail);
            }
        }
    }
    std::size_t accepted() const
    {
        return static_cast<std::size_t>(std::count(state.begin(), state.end(), St::accepted));
    }
};

SmtpDeliverer::SmtpDeliverer(SmtpTarget target, std::string helo_name, SmtpTimeouts timeouts, SmtpSecurity security)
    : m_target(std::move(target)), m_helo(std::move(helo_name)), m_timeouts(timeouts), m_security(std::move(security))
{
    m_buffer.resize(limits::k_read_buffer);
}

SmtpDeliverer::~SmtpDeliverer()
{
    try {
        finish();
    } catch (...) {
        drop(); // a destructor must not throw (only bad_alloc could get here)
    }
}

std::string SmtpDeliverer::where() const
{
    const std::string& h = m_target.host;
    bool v6 = h.find(':') != std::string::npos && h.front() != '[';
    return (v6 ? "[" + h + "]" : h) + ":" + std::to_string(m_target.port);
}

void SmtpDeliverer::drop()
{
    m_tls.reset(); // close_notify first, while the socket is open
    if (m_fd >= 0) {
        ::close(m_fd);
    }
    m_fd = -1;
    m_in.clear();
    m_parser = ReplyParser();
    m_features = EhloFeatures();
    m_need_rset = false;
}

// getaddrinfo, then a non-blocking connect to each address in turn.
void SmtpDeliverer::connect_socket()
{
    std::string host = m_target.host;
    if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
        host = host.substr(1, host.size() - 2);
    }
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV;
    addrinfo* list = nullptr;
    std::string port = std::to_string(m_target.port);
    int rc = ::getaddrinfo(host.c_str(), port.c_str(), &hints, &list);
    if (rc != 0) {
        std::string why = rc == EAI_SYSTEM ? std::strerror(errno) : ::gai_strerror(rc);
        throw Lost{"cannot resolve " + host + ": " + why};
    }
    std::string failure = "cannot connect to " + where() + ": no address";
    for (addrinfo* ai = list; ai != nullptr; ai = ai->ai_next) {
        int fd = ::socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
        if (fd < 0) {
            failure = "cannot connect to " + where() + ": " + std::strerror(errno);
            continue;
        }
        int err = 0;
        if (::connect(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
            err = errno;
        }
        if (err == EINPROGRESS || err == EINTR) {
            auto deadline = SteadyClock::now() + m_timeouts.connect;
            for (;;) {
                pollfd p{fd, POLLOUT, 0};
                int r = ::poll(&p, 1, remaining_ms(deadline));
                if (r < 0 && errno == EINTR) {
                    continue;
                }
                if (r <= 0) {
                    err = r == 0 ? ETIMEDOUT : errno;
                    break;
                }
                socklen_t len = sizeof err;
                if (::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0) {
                    err = errno;
                }
                break;
            }
        }
        if (err == 0) {
            ::freeaddrinfo(list);
            // Our writes are whole commands or data blocks, each followed by a
            // wait for the reply: Nagle's algorithm would hold the short last
            // write (".\r\n", a lone RSET) until the server's delayed ACK.
            int one = 1;
            std::ignore = ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
            m_fd = fd;
            return;
        }
        ::close(fd);
        if (err == ECONNREFUSED) {
            failure = "connection to " + where() + " refused";
        } else if (err == ETIMEDOUT) {
            failure = "timeout connecting to " + where() + " after " + seconds(m_timeouts.connect);
        } else {
            failure = "cannot connect to " + where() + ": " + std::strerror(err);
        }
    }
    ::freeaddrinfo(list);
    throw Lost{failure};
}

// A greeting or EHLO/HELO the server refuses: QUIT politely unless it is
// closing anyway (421, RFC 5321 §3.8), then give up on the connection.
void SmtpDeliverer::refuse_session(const ServerReply& reply, std::string_view what)
{
    std::string detail = where() + " refused " + std::string(what) + ": " + reply_detail(reply);
    if (reply.code != 421) {
        quit();
    }
    drop();
    throw Lost{detail};
}

// Connect, read the greeting, EHLO (HELO when EHLO gets 5xx, RFC 5321 §3.2).
void SmtpDeliverer::open_session()
{
    drop();
    // Our own name goes on the wire too: nothing in it may end the command.
    if (m_helo.empty() || std::any_of(m_helo.begin(), m_helo.end(),
                                      [](char c) { return static_cast<unsigned char>(c) <= 0x20 || c == 0x7f; })) {
        throw Lost{"no usable HELO name (empty, or with a space or control character)"};
    }
    m_tls_record.reset();
    connect_socket();
    if (m_target.tls_on_connect) {
        start_tls(true);
    }
    ServerReply greeting = read_reply(m_timeouts.greeting, "greeting");
    if (greeting.code != 220) {
        refuse_session(greeting, "the session");
    }
    send_all("EHLO " + m_helo + "\r\n", m_timeouts.helo, "EHLO");
    ServerReply ehlo = read_reply(m_timeouts.helo, "reply to EHLO");
    if (klass(ehlo) == 2) {
        m_features = parse_ehlo(ehlo);
        return;
    }
    if (klass(ehlo) != 5) {
        refuse_session(ehlo, "EHLO");
    }
    send_all("HELO " + m_helo + "\r\n", m_timeouts.helo, "HELO");
    ServerReply helo = read_reply(m_timeouts.helo, "reply to HELO");
    if (klass(helo) != 2) {
        refuse_session(helo, "HELO");
    }
    m_features = EhloFeatures();
}

// RSET between two transactions (RFC 5321 §4.1.1.5); true when the server said 250.
bool SmtpDeliverer::reset()
{
    try {
        send_all("RSET\r\n", m_timeouts.mail, "RSET");
        ServerReply r = read_reply(m_timeouts.mail, "reply to RSET");
        if (r.code == 250) {
            m_need_rset = false;
            return true;
        }
        if (r.code != 421) {
            quit();
        }
    } catch (const Lost&) {
    }
    drop();
    return false;
}

// Reuse the connection if RSET gets 250; otherwise open a new one.
void SmtpDeliverer::ensure_session()
{
    if (m_fd >= 0 && m_need_rset) {
        std::ignore = reset();
    }
    if (m_fd < 0) {
        open_secure_session();
    }
}

// QUIT and wait for its reply (RFC 5321 §4.1.1.10); never throws.
void SmtpDeliverer::quit()
{
    if (m_fd < 0) {
        return;
    }
    try {
        send_all("QUIT\r\n", m_timeouts.mail, "QUIT");
        std::ignore = read_reply(m_timeouts.mail, "reply to QUIT");
    } catch (const Lost&) {
    }
    drop();
}

void SmtpDeliverer::finish() { quit(); }

// After a connection error: the reply the server sent before closing, if one
// is already here (a 421 often is), else a plain description.
std::string SmtpDeliverer::closed_detail(std::string_view doing)
{
    std::string detail = "connection to " + where() + " closed while " + std::string(doing);
    for (; !m_tls;) {
        ssize_t n = ::recv(m_fd, m_buffer.data(), m_buffer.size(), MSG_DONTWAIT);
        if (n <= 0) {
            break;
        }
        m_in.append(m_buffer.data(), static_cast<std::size_t>(n));
        if (m_in.size() > limits::k_read_buffer) {
            break;
        }
    }
    std::size_t used = m_parser.feed(m_in);
    m_in.erase(0, used);
    if (m_parser.ready()) {
        detail += ": " + reply_detail(m_parser.take());
    }
    return text::detail_line(detail, k_max_detail);
}

void SmtpDeliverer::send_all(std::string_view bytes, std::chrono::seconds timeout, std::string_view what)
{
    if (m_fd < 0) {
        throw Lost{"connection to " + where() + " is closed"};
    }
    m_used = true;
    if (m_tls) {
        tls_send(bytes, timeout, what);
        return;
    }
    auto deadline = SteadyClock::now() + timeout;
    while (!bytes.empty()) {
        ssize_t n = ::send(m_fd, bytes.data(), bytes.size(), MSG_NOSIGNAL);
        if (n > 0) {
            bytes.remove_prefix(static_cast<std::size_t>(n));
            continue;
        }
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
            int err = errno;
            if (err == EPIPE || err == ECONNRESET) {
                throw Lost{closed_detail("sending " + std::string(what))};
            }
            throw Lost{"error sending " + std::string(what) + " to " + where() + ": " + std::strerror(err)};
        }
        pollfd p{m_fd, POLLOUT, 0};
        int r = ::poll(&p, 1, remaining_ms(deadline));
        if (r == 0) {
            throw Lost{"timeout sending " + std::string(what) + " to " + where() + " after " +
                                             seconds(timeout)};
        }
        if (r < 0 && errno != EINTR) {
            throw Lost{"error waiting to send to " + where() + ": " + std::strerror(errno)};
        }
    }
}

ServerReply SmtpDeliverer::read_reply(std::chrono::seconds timeout, std::string_view what)
{
    if (m_fd < 0) {
        throw Lost{"connection to " + where() + " is closed"};
    }
    auto deadline = SteadyClock::now() + timeout;
    for (;;) {
        std::size_t used = m_parser.feed(m_in);
        m_in.erase(0, used);
        if (m_parser.ready()) {
            return m_parser.take();
        }
        if (m_parser.failed()) {
            throw Lost{"malformed " + std::string(what) + " from " + where() + ": " + m_parser.error()};
        }
        // The parser has consumed all of m_in: read more.
        if (m_tls) {
            tls_receive(deadline, timeout, what);
            continue;
        }
        pollfd p{m_fd, POLLIN, 0};
        int r = ::poll(&p, 1, remaining_ms(deadline));
        if (r == 0) {
            throw Lost{"timeout waiting for " + std::string(what) + " from " + where() + " after " +
                                             seconds(timeout)};
        }
        if (r < 0) {
            if (errno == EINTR) {
                continue;
            }
            throw Lost{"error waiting for " + std::string(what) + " from " + where() + ": " +
                                             std::strerror(errno)};
        }
        ssize_t n = ::recv(m_fd, m_buffer.data(), m_buffer.size(), 0);
        if (n > 0) {
            m_in.append(m_buffer.data(), static_cast<std::size_t>(n));
            continue;
        }
        if (n == 0 || errno == ECONNRESET) {
            throw Lost{"connection to " + where() + " closed while waiting for " + std::string(what)};
        }
        if (errno != EINTR && errno != EAGAIN && errno != EWOULDBLOCK) {
            throw Lost{"error reading " + std::string(what) + " from " + where() + ": " + std::strerror(errno)};
        }
    }
}

// After a transaction that ended before the message was sent: RSET at once
// (RFC 5321 §4.1.1.5); the outcomes are already decided, so trouble here only
// closes the connection.
void SmtpDeliverer::abort_transaction()
{
    if (m_fd >= 0) {
        std::ignore = reset();
    }
}

std::vector<RecipientOutcome> SmtpDeliverer::deliver_message(const Delivery& delivery)
{
    Transaction tx(delivery);
    const Envelope& envelope = delivery.envelope;

    // Local checks first: what may never go on the wire is refused for good.
    if (std::string why = address_refusal(envelope.mail_from, envelope.smtputf8); !why.empty()) {
        tx.decide_open(Outcome::permanent, "553 5.1.7 sender address not sent: " + why, false);
        return tx.out;
    }
    for (std::size_t pos = 0; pos < delivery.recipients.size(); ++pos) {
        std::size_t index = delivery.recipients[pos];
        if (index >= envelope.recipients.size()) {
            tx.decide(pos, Outcome::temporary, "no recipient " + std::to_string(index) + " in the envelope");
            continue;
        }
        const std::string& address = envelope.recipients[index].address;
        std::string why = address.empty() ? "empty address" : address_refusal(address, envelope.smtputf8);
        if (!why.empty()) {
            tx.decide(pos, Outcome::permanent, "553 5.1.3 recipient address not sent: " + why);
            continue;
        }
        tx.sent.push_back(pos);
    }
    if (tx.sent.empty()) {
        return tx.out;
    }

    auto opened = delivery.open_message();
    if (!opened) {
        tx.decide_open(
            Outcome::temporary,
            text::detail_line("cannot open the message file: " + std::string(std::strerror(opened.error().errnum)),
                              k_max_detail),
            false);
        return tx.out;
    }
    Fd file = std::move(opened.value());
    tx.file = file.get();
    struct stat st {};
    if (::fstat(tx.file, &st) != 0) {
        tx.decide_open(
            Outcome::temporary,
            text::detail_line("cannot stat the message file: " + std::string(std::strerror(errno)), k_max_detail),
            false);
        return tx.out;
    }
    tx.size = static_cast<std::uint64_t>(st.st_size);

    try {
        ensure_session();
        if (envelope.smtputf8 && !m_features.smtputf8) {
            tx.decide_open(Outcome::permanent,
                           text::detail_line("553 5.6.7 not sent: " + where() +
                                                 " does not offer SMTPUTF8, which the message needs",
                                             k_max_detail),
                           false);
            return tx.out;
        }
        if (!prepare_body(tx)) {
            return tx.out;
        }
        if (m_features.size && m_features.max_size != 0 && tx.size > m_features.max_size) {
            tx.decide_open(Outcome::permanent,
                           text::detail_line("552 5.3.4 not sent: the message (" + std::to_string(tx.size) +
                                                 " octets) exceeds the size limit of " + where() + " (" +
                                                 std::to_string(m_features.max_size) + " octets)",
                                             k_max_detail),
                           false);
            return tx.out;
        }
        run_transaction(tx);
    } catch (const Lost& lost) {
        drop();
        for (std::size_t pos = 0; pos < tx.state.size(); ++pos) {
            if (tx.state[pos] != Transaction::St::decided) {
                tx.decide(pos, Outcome::temporary, lost.detail);
                // After the end of the data the server may have the message:
                // another server must not get it too.
                tx.out[pos].try_next = !tx.data_ended;
            }
        }
    }
    for (RecipientOutcome& o : tx.out) {
        o.hop = where();
    }
    return tx.out;
}

void SmtpDeliverer::run_transaction(Transaction& tx)
{
    const Envelope& envelope = tx.delivery.envelope;
    enum class Kind { mail, rcpt, data };
    struct Command {
        Kind kind;
        std::string line;
        std::size_t pos = 0; // for RCPT: the position in delivery.recipients
    };

    std::vector<Command> commands;
    commands.push_back({Kind::mail, mail_command(envelope, m_features, tx.size, tx.transfer.declare)});
    for (std::size_t pos : tx.sent) {
        const Recipient& r = envelope.recipients[tx.delivery.recipients[pos]];
        commands.push_back({Kind::rcpt, rcpt_command(r, m_features), pos});
    }
    if (!tx.transfer.bdat) {
        commands.push_back({Kind::data, "DATA\r\n"});
    }

    const bool pipelining = m_features.pipelining;
    const std::size_t group = pipelining ? k_pipeline_group : 1;
    m_need_rset = true; // from here on the server may hold transaction state
    bool mail_refused = false;
    bool data_sent = false;
    ServerReply data_reply;

    std::size_t next = 0;
    while (next < commands.size()) {
        if (mail_refused || (commands[next].kind == Kind::data && tx.accepted() == 0)) {
            break; // nothing more is worth sending
        }
        // RFC 2920 §3.1: DATA ends a group, so it goes with the last RCPTs.
        std::size_t end = std::min(commands.size(), next + group);
        if (pipelining && !tx.transfer.bdat && end == commands.size() - 1) {
            ++end;
        }
        std::string batch;
        for (std::size_t i = next; i < end; ++i) {
            batch += commands[i].line;
        }
        auto send_timeout = commands[next].kind == Kind::data ? m_timeouts.data_init : m_timeouts.mail;
        send_all(batch, send_timeout, "commands");
        for (std::size_t i = next; i < end; ++i) {
            const Command& cmd = commands[i];
            switch (cmd.kind) {
            case Kind::mail: {
                ServerReply r = read_reply(m_timeouts.mail, "reply to MAIL");
                if (r.code == 421) {
                    throw Lost{reply_detail(r)};
                }
                if (klass(r) == 4 || klass(r) == 5) {
                    tx.decide_open(outcome_of(r), reply_detail(r), false);
                    mail_refused = true;
                } else if (klass(r) != 2) {
                    throw Lost{"unexpected reply to MAIL from " + where() + ": " + reply_detail(r)};
                }
                break;
            }
            case Kind::rcpt: {
                ServerReply r = read_reply(m_timeouts.rcpt, "reply to RCPT");
                if (r.code == 421) {
                    throw Lost{reply_detail(r)};
                }
                if (mail_refused) {
                    break; // pipelined after a refused MAIL: the reply is moot
                }
                if (klass(r) == 2) {
                    tx.state[cmd.pos] = Transaction::St::accepted;
                } else if (klass(r) == 4 || klass(r) == 5) {
                    tx.decide(cmd.pos, outcome_of(r), reply_detail(r));
                } else {
                    throw Lost{"unexpected reply to RCPT from " + where() + ": " + reply_detail(r)};
                }
                break;
            }
            case Kind::data:
                data_sent = true;
                data_reply = read_reply(m_timeouts.data_init, "reply to DATA");
                if (data_reply.code == 421) {
                    throw Lost{reply_detail(data_reply)};
                }
                break;
            }
        }
        next = end;
    }

    ServerReply done;
    if (tx.transfer.bdat) {
        if (mail_refused || tx.accepted() == 0) {
            abort_transaction();
            return;
        }
        ChunksReply chunks = send_chunks(tx);
        if (!chunks.last && (klass(chunks.reply) == 4 || klass(chunks.reply) == 5) && chunks.reply.code != 421) {
            // RFC 3030 §2: after a refused chunk, no more chunks; RSET.
            tx.decide_open(outcome_of(chunks.reply), reply_detail(chunks.reply), true);
            abort_transaction();
            return;
        }
        done = chunks.reply;
    } else if (mail_refused || tx.accepted() == 0) {
        if (data_sent && data_reply.code == 354) {
            // A server that starts DATA although no recipient was accepted (or
            // MAIL was refused) gets the end of data at once; its reply does not
            // matter (RFC 2920 §3.1 discusses this case).
            send_all(".\r\n", m_timeouts.data_block, "the end of data");
            std::ignore = read_reply(m_timeouts.data_done, "reply to the end of data");
        }
        abort_transaction();
        return;
    } else if (data_reply.code != 354) {
        if (klass(data_reply) == 4 || klass(data_reply) == 5) {
            tx.decide_open(outcome_of(data_reply), reply_detail(data_reply), true);
            abort_transaction();
            return;
        }
        throw Lost{"unexpected reply to DATA from " + where() + ": " + reply_detail(data_reply)};
    } else {
        send_data(tx);
        tx.data_ended = true;
        done = read_reply(m_timeouts.data_done, "reply to the end of data");
    }
    if (done.code == 421 || klass(done) == 3) {
        throw Lost{klass(done) == 3 ? "unexpected reply to the end of data from " + where() + ": " +
                                                            reply_detail(done)
                                                      : reply_detail(done)};
    }
    for (std::size_t pos = 0; pos < tx.state.size(); ++pos) {
        if (tx.state[pos] == Transaction::St::accepted) {
            tx.decide(pos, outcome_of(done), reply_detail(done));
            tx.out[pos].handoff = m_features.dsn ? Handoff::relayed_dsn : Handoff::relayed;
        }
    }
}

// Decides how the body goes; false when that decided every recipient
// (refused for good, or the message file unreadable).
bool SmtpDeliverer::prepare_body(Transaction& tx)
{
    const Envelope& envelope = tx.delivery.envelope;
    auto unreadable = [&tx](const Error& e) {
        tx.decide_open(Outcome::temporary, text::detail_line(e.message, k_max_detail), false);
        return false;
    };
    Content content = Content::binary;
    if (envelope.content) {
        content = *envelope.content;
    } else {
        // An envelope from before "content" was recorded: look at the message.
        auto scanned = scan_content(tx.file);
        if (!scanned) {
            return unreadable(scanned.error());
        }
        content = *scanned;
    }
    tx.transfer = choose_transfer(envelope.body, content, m_features, where());
    if (tx.transfer.way == BodyTransfer::Way::refused) {
        tx.decide_open(Outcome::permanent, tx.transfer.refusal, false);
        return false;
    }
    if (tx.transfer.way == BodyTransfer::Way::converted) {
        auto planned = plan_downgrade(tx.file, envelope.smtputf8);
        if (!planned) {
            return unreadable(planned.error());
        }
        if (!planned->refusal.empty()) {
            tx.decide_open(Outcome::permanent,
                           text::detail_line("554 5.6.3 not sent: " + where() +
                                                 " does not offer 8BITMIME, and the message cannot be converted "
                                                 "to 7 bits: " + planned->refusal,
                                             k_max_detail),
                           false);
            return false;
        }
        tx.downgrade = std::move(*planned);
        tx.size = tx.downgrade.size;
    }
    return true;
}

// The message (as stored or converted), a block at a time, through the dot-stuffer.
void SmtpDeliverer::send_data(Transaction& tx)
{
    bool converting = tx.transfer.way == BodyTransfer::Way::converted;
    BodySource source(tx.file, converting ? &tx.downgrade : nullptr, tx.delivery.envelope.smtputf8);
    DotStuffer stuffer;
    std::string block;
    std::string wire;
    for (;;) {
        block.clear();
        auto more = source.next(block);
        if (!more) {
            // The server has the message half-sent; only closing the
            // connection keeps it from taking a truncated one.
            throw Lost{more.error().message};
        }
        if (!*more) {
            break;
        }
        wire.clear();
        stuffer.feed(block, wire);
        send_all(wire, m_timeouts.data_block, "data");
    }
    if (!source.refusal().empty()) {
        throw Lost{"not sent: " + source.refusal()};
    }
    wire.clear();
    stuffer.finish(wire);
    send_all(wire, m_timeouts.data_block, "data");
}

// The message in BDAT chunks of at most k_bdat_chunk octets (RFC 3030 §2),
// each streamed from the source as it comes. Without PIPELINING each chunk's
// reply is read before the next chunk; with it (RFC 3030 §4.2) the replies are
// read after the LAST chunk. The reply returned is the first refusal of a
// chunk before the last, or else the LAST chunk's.
SmtpDeliverer::ChunksReply SmtpDeliverer::send_chunks(Transaction& tx)
{
    bool converting = tx.transfer.way == BodyTransfer::Way::converted;
    BodySource source(tx.file, converting ? &tx.downgrade : nullptr, tx.delivery.envelope.smtputf8);
    const std::uint64_t total = tx.size;
    std::uint64_t sent = 0;
    std::size_t unread = 0; // replies to chunks before the last, not read yet
    std::string carry;      // octets from the source not sent yet
    auto pull = [&]() {
        auto more = source.next(carry);
        if (!more) {
            throw Lost{more.error().message};
        }
        return *more;
    };
    for (;;) {
        std::uint64_t n = std::min(k_bdat_chunk, total - sent);
        bool last = sent + n == total;
        send_all("BDAT " + std::to_string(n) + (last ? " LAST" : "") + "\r\n", m_timeouts.data_block, "BDAT");
        for (std::uint64_t left = n; left > 0;) {
            if (carry.empty() && !pull()) {
                // The server waits for octets that will not come: only closing tells it.
                throw Lost{"the message file is shorter than its size"};
            }
            std::size_t take = static_cast<std::size_t>(std::min<std::uint64_t>(left, carry.size()));
            if (last && take == left) {
                // Before the octets that complete the message: nothing may follow them.
                if (carry.size() > take || pull()) {
                    throw Lost{"the message file is longer than its size"};
                }
                if (!source.refusal().empty()) {
                    throw Lost{"not sent: " + source.refusal()};
                }
            }
            send_all(std::string_view(carry).substr(0, take), m_timeouts.data_block, "data");
            carry.erase(0, take);
            left -= take;
        }
        sent += n;
        if (last) {
            tx.data_ended = true;
            break;
        }
        if (m_features.pipelining) {
            ++unread;
            continue;
        }
        ServerReply r = read_reply(m_timeouts.data_done, "reply to BDAT");
        if (r.code == 421 || klass(r) == 3) {
            throw Lost{klass(r) == 3 ? "unexpected reply to BDAT from " + where() + ": " + reply_detail(r)
                                     : reply_detail(r)};
        }
        if (klass(r) != 2) {
            return {r, false};
        }
    }
    std::optional<ServerReply> refused;
    for (; unread > 0; --unread) {
        ServerReply r = read_reply(m_timeouts.data_done, "reply to BDAT");
        if (r.code == 421 || klass(r) == 3) {
            throw Lost{klass(r) == 3 ? "unexpected reply to BDAT from " + where() + ": " + reply_detail(r)
                                     : reply_detail(r)};
        }
        if (klass(r) != 2 && !refused) {
            refused = r;
        }
    }
    ServerReply done = read_reply(m_timeouts.data_done, "reply to BDAT LAST");
    if (refused) {
        return {*refused, false};
    }
    return {done, true};
}

} // namespace smtpspool
