// smtp_deliverer_security: the SMTP client's connection layer above TCP:
// implicit TLS (RFC 8314) and STARTTLS (RFC 3207) through the ClientTlsConnector
// port, the TLS levels, and AUTH PLAIN / LOGIN (RFC 4954, RFC 4616).
#include "delivery/smtp_deliverer.hpp"
#include "delivery/smtp_lost.hpp"

#include "base/text.hpp"

#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>

namespace smtpspool {
namespace {

// Thrown by secure_session when a `may` handshake failed: the caller opens a
// new connection in clear text.
struct ClearTextFallback {
    std::string why;
};

bool peer_is_loopback(int fd)
{
    sockaddr_storage ss{};
    socklen_t len = sizeof ss;
    if (::getpeername(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) {
        return false;
    }
    char text[INET6_ADDRSTRLEN] = {};
    if (ss.ss_family == AF_INET) {
        ::inet_ntop(AF_INET, &reinterpret_cast<sockaddr_in*>(&ss)->sin_addr, text, sizeof text);
    } else if (ss.ss_family == AF_INET6) {
        ::inet_ntop(AF_INET6, &reinterpret_cast<sockaddr_in6*>(&ss)->sin6_addr, text, sizeof text);
    } else {
        return false;
    }
    return is_loopback_address(text);
}

} // namespace

std::vector<RecipientOutcome> SmtpDeliverer::deliver(const Delivery& delivery)
{
    m_used = false;
    std::vector<RecipientOutcome> out = deliver_message(delivery);
    if (m_used && m_tls_record) {
        for (RecipientOutcome& o : out) {
            o.tls = m_tls_record;
        }
    }
    return out;
}

std::vector<std::string> SmtpDeliverer::take_notices() { return std::exchange(m_notices, {}); }

// The session (open_session: TCP, implicit TLS for smtps, greeting, EHLO),
// then STARTTLS as the level says and AUTH. After bad credentials, the rest
// of the run defers at once (no server sees the same wrong password again and
// again); after a failed `may` handshake, one new connection in clear text.
void SmtpDeliverer::open_secure_session()
{
    if (!m_auth_refused.empty()) {
        throw Lost{m_auth_refused};
    }
    try {
        open_session();
        secure_session();
    } catch (const ClearTextFallback&) {
        drop();
        m_clear_text_only = true;
        open_session();
    }
    authenticate();
}

// The handshake on the connected socket; with verify, an unverified
// certificate ends the session.
void SmtpDeliverer::start_tls(bool implicit)
{
    TlsLevel level = m_security.level;
    // The name the certificate must bear and SNI carries: the host we
    // connected to, or the name that gave its address (an MX host).
    std::string host = m_target.tls_name.empty() ? m_target.host : m_target.tls_name;
    if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
        host = host.substr(1, host.size() - 2);
    }
    if (!m_security.tls) {
        throw Lost{"no TLS available to reach " + where()};
    }
    m_tls_deadline = std::chrono::steady_clock::now() + m_timeouts.helo;
    auto channel = m_security.tls->handshake(m_fd, host, [this] { return remaining_ms(m_tls_deadline); });
    if (!channel) {
        std::string why = "TLS with " + where() + " failed: " + channel.error().message;
        if (!implicit && level == TlsLevel::may) {
            throw ClearTextFallback{why};
        }
        drop();
        throw Lost{why};
    }
    m_tls = std::move(channel.value());
    std::string unverified = m_tls->verify_error();
    m_tls_record = m_tls->record();
    if (level == TlsLevel::verify && !unverified.empty()) {
        std::string why = "certificate of " + where() + " not verified (--smtp-tls verify): " + unverified;
        quit();
        throw Lost{why};
    }
}

// STARTTLS after the first EHLO, as the level says; then EHLO again.
void SmtpDeliverer::secure_session()
{
    if (m_tls) {
        return; // smtps: TLS from the start
    }
    TlsLevel level = m_security.level;
    bool opportunistic_only = level == TlsLevel::may && (m_clear_text_only || !m_features.starttls || !m_security.tls);
    if (level == TlsLevel::none || opportunistic_only) {
        return;
    }
    if (!m_features.starttls) {
        std::string why = where() + " does not offer STARTTLS, which --smtp-tls " +
                          std::string(tls_level_name(level)) + " requires";
        quit();
        throw Lost{why};
    }
    send_all("STARTTLS\r\n", m_timeouts.helo, "STARTTLS");
    ServerReply reply = read_reply(m_timeouts.helo, "reply to STARTTLS");
    if (reply.code != 220) {
        if (level == TlsLevel::may && reply.code != 421) {
            return; // opportunistic: go on in clear text
        }
        refuse_session(reply, "STARTTLS");
    }
    // RFC 3207 §4.2, and the response injection of CVE-2011-0411: whatever
    // came with the 220 was sent before TLS and is thrown away.
    m_in.clear();
    m_parser = ReplyParser();
    start_tls(false);
    // RFC 3207 §4.2: forget what the server said before TLS, and ask again.
    m_features = EhloFeatures();
    send_all("EHLO " + m_helo + "\r\n", m_timeouts.helo, "EHLO");
    ServerReply ehlo = read_reply(m_timeouts.helo, "reply to EHLO after STARTTLS");
    if (klass(ehlo) != 2) {
        refuse_session(ehlo, "EHLO after STARTTLS");
    }
    m_features = parse_ehlo(ehlo);
}

// One step of the AUTH dialogue: send line, read the reply; false when the
// server ended the dialogue.
bool SmtpDeliverer::auth_round(std::string_view line, ServerReply& reply)
{
    send_all(line, m_timeouts.helo, "AUTH");
    reply = read_reply(m_timeouts.helo, "reply to AUTH");
    return reply.code == 334;
}

void SmtpDeliverer::authenticate()
{
    if (!m_security.credentials) {
        return;
    }
    const AuthEntry& cred = *m_security.credentials;
    if (!m_tls && !peer_is_loopback(m_fd)) {
        std::string why = "credentials for " + where() +
                          " not sent: the connection is not encrypted (" +
                          (m_features.starttls ? "TLS failed" : "no STARTTLS offered") +
                          "; set --smtp-tls encrypt or use smtps)";
        quit();
        throw Lost{why};
    }
    AuthMechanism mechanism = choose_auth_mechanism(m_features.auth);
    if (mechanism == AuthMechanism::none) {
        std::string offered;
        for (const std::string& m : m_features.auth) {
            offered += " " + m;
        }
        std::string why = where() + " offers no AUTH mechanism that runq uses (PLAIN, LOGIN); offered:" +
                          (offered.empty() ? std::string(" none") : offered);
        quit();
        throw Lost{why};
    }
    ServerReply reply;
    if (mechanism == AuthMechanism::plain) {
        if (auth_round(auth_plain_command(cred.user, cred.password), reply)) {
            send_all("*\r\n", m_timeouts.helo, "AUTH"); // a challenge PLAIN never has: cancel
            reply = read_reply(m_timeouts.helo, "reply to AUTH");
        }
    } else if (auth_round("AUTH LOGIN\r\n", reply) && auth_round(auth_login_answer(cred.user), reply)) {
        std::ignore = auth_round(auth_login_answer(cred.password), reply);
    }
    if (reply.code == 235) {
        return;
    }
    std::string why = "authentication as " + text::detail_line(cred.user, 100) + " to " + where() + " by " +
                      std::string(auth_mechanism_name(mechanism)) + " refused: " + reply_detail(reply);
    if (klass(reply) == 5) {
        why += " (check --smtp-auth-file; messages wait until the next run)";
        m_auth_refused = text::detail_line(why, k_max_detail);
        m_notices.push_back(m_auth_refused);
    }
    if (reply.code == 421) {
        drop();
    } else {
        quit();
    }
    throw Lost{why};
}

void SmtpDeliverer::tls_send(std::string_view bytes, std::chrono::seconds timeout, std::string_view what)
{
    m_tls_deadline = std::chrono::steady_clock::now() + timeout;
    switch (m_tls->write(bytes)) {
    case ClientTlsChannel::Io::ok:
        return;
    case ClientTlsChannel::Io::timeout:
        throw Lost{"timeout sending " + std::string(what) + " to " + where() + " after " + seconds(timeout)};
    case ClientTlsChannel::Io::eof:
        throw Lost{"connection to " + where() + " closed while sending " + std::string(what)};
    case ClientTlsChannel::Io::error:
        break;
    }
    throw Lost{"error sending " + std::string(what) + " to " + where() + ": " + m_tls->error()};
}

void SmtpDeliverer::tls_receive(std::chrono::steady_clock::time_point deadline, std::chrono::seconds timeout,
                                std::string_view what)
{
    m_tls_deadline = deadline;
    std::size_t n = 0;
    switch (m_tls->read(m_buffer.data(), m_buffer.size(), n)) {
    case ClientTlsChannel::Io::ok:
        m_in.append(m_buffer.data(), n);
        return;
    case ClientTlsChannel::Io::timeout:
        throw Lost{"timeout waiting for " + std::string(what) + " from " + where() + " after " + seconds(timeout)};
    case ClientTlsChannel::Io::eof:
        throw Lost{"connection to " + where() + " closed while waiting for " + std::string(what)};
    case ClientTlsChannel::Io::error:
        break;
    }
    throw Lost{"error reading " + std::string(what) + " from " + where() + ": " + m_tls->error()};
}

} // namespace smtpspool
