// stdio_transport: the session's reads of fd 0 and writes to fd 1. Reads into a
// bounded buffer with a timeout; writes each batch of replies in full before
// reading again (RFC 2920: flush when no more input is waiting).
#pragma once

#include "server/proxy_protocol.hpp"
#include "smtp/session.hpp"
#include "server/tls.hpp"
#include "server/transcript.hpp"

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

namespace smtpspool {

enum class SessionEnd { quit, eof, timeout, write_failed, read_failed, tls_failed };

class StdioTransport {
public:
    // timeout_seconds: idle time allowed for each read and write;
    // session_seconds: the whole session, after which it ends with 421 4.4.2.
    StdioTransport(int in, int out, unsigned timeout_seconds, unsigned session_seconds);
    ~StdioTransport();

    // TLS for the session's STARTTLS; on_connect: the handshake comes first,
    // before the greeting (--tls-on-connect).
    void use_tls(std::shared_ptr<TlsContext> context, bool on_connect);
    // Each batch of replies also into a session transcript.
    void use_transcript(SessionTranscript& transcript) { m_transcript = &transcript; }

    // Runs the session to its end; after_write runs after each batch of
    // replies has been written.
    SessionEnd run(Session& session, const std::function<void()>& after_write = {});

private:
    enum class Read { data, eof, timeout, error };
    Read read_some();
    bool write_all(std::string_view bytes);
    // The handshake; then the session is told how it went.
    Output start_tls(Session& session, std::size_t discarded);

    int m_in;
    int m_out;
    int m_timeout_ms;
    std::chrono::steady_clock::time_point m_deadline;
    // The input buffer, allocated once: k_read_buffer octets, m_length of them read.
    std::unique_ptr<char[]> m_buffer;
    std::size_t m_length = 0;
    bool m_out_is_socket = false;
    std::shared_ptr<TlsContext> m_tls_context;
    bool m_tls_on_connect = false;
    std::unique_ptr<TlsStream> m_tls;
    bool m_tls_failed = false;
    SessionTranscript* m_transcript = nullptr;
    int wait_ms() const;
};

// The PROXY protocol header at the start of fd `in`, read octet-bounded (as
// many as the parser allows at a time, so nothing after the header is taken
// from the client's bytes) within timeout_seconds in all.
struct ProxyRead {
    enum class End { header, malformed, timeout, eof, error };
    End end = End::error;
    ProxyHeader header; // End::header
    std::string reason; // End::malformed: what is wrong; End::error: strerror
};
ProxyRead read_proxy_header(int in, unsigned timeout_seconds);

// True when fd is a socket (under inetd, stdin, stdout and stderr all are).
bool is_socket(int fd);

// Who is on the other end of fd (smtpspool(8), PEER IDENTITY): local when fd
// is no socket (a pipe, file or terminal), and a UNIX-domain socket only when
// trust_unix_socket says so; an IPv4 or IPv6 socket's peer by getpeername(2);
// any other socket (untrusted UNIX, a peer that cannot be read, another
// family) a network client whose address is unknown.
Peer peer_from_socket(int fd, bool trust_unix_socket);

} // namespace smtpspool
