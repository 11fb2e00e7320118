// stdio_transport: poll(2)-guarded read and write on the session's descriptors.
#include "server/stdio_transport.hpp"

#include "base/cidr.hpp"
#include "base/limits.hpp"

#include <tuple>
#include <algorithm>
#include <climits>
#include <sys/stat.h>
#include <arpa/inet.h>
#include <cerrno>
#include <cstring>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

namespace smtpspool {

StdioTransport::StdioTransport(int in, int out, unsigned timeout_seconds, unsigned session_seconds)
    : m_in(in), m_out(out), m_timeout_ms(static_cast<int>(timeout_seconds) * 1000),
      m_deadline(std::chrono::steady_clock::now() + std::chrono::seconds(session_seconds))
{
    // Not a std::string: resizing one back up after each short read would
    // zero-fill the buffer, a pass over 64 KiB per read for nothing.
    m_buffer = std::make_unique_for_overwrite<char[]>(limits::k_read_buffer);
    m_out_is_socket = is_socket(out);
}

StdioTransport::~StdioTransport() = default;

void StdioTransport::use_tls(std::shared_ptr<TlsContext> context, bool on_connect)
{
    m_tls_context = std::move(context);
    m_tls_on_connect = on_connect;
}

Output StdioTransport::start_tls(Session& session, std::size_t discarded)
{
    auto stream = TlsStream::accept(m_tls_context, m_in, m_out, [this] { return wait_ms(); });
    if (!stream) {
        m_tls_failed = true;
        return session.tls_failed(stream.error().message);
    }
    m_tls = std::move(stream.value());
    return session.tls_started(m_tls->info(), discarded);
}

// The idle timeout, or less when the session's deadline is nearer.
int StdioTransport::wait_ms() const
{
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(m_deadline - std::chrono::steady_clock::now());
    return static_cast<int>(std::clamp<long long>(left.count(), 0, m_timeout_ms));
}

StdioTransport::Read StdioTransport::read_some()
{
    if (m_tls) {
        switch (m_tls->read(m_buffer.get(), limits::k_read_buffer, m_length)) {
        case TlsStream::Io::ok:
            return Read::data;
        case TlsStream::Io::eof:
            return Read::eof;
        case TlsStream::Io::timeout:
            return Read::timeout;
        case TlsStream::Io::error:
            return Read::error;
        }
    }
    for (;;) {
        pollfd p{m_in, POLLIN, 0};
        int r = ::poll(&p, 1, wait_ms());
        if (r == 0) {
            return Read::timeout;
        }
        if (r < 0) {
            if (errno == EINTR) {
                continue;
            }
            return Read::error;
        }
        ssize_t n = ::read(m_in, m_buffer.get(), limits::k_read_buffer);
        if (n > 0) {
            m_length = static_cast<std::size_t>(n);
            return Read::data;
        }
        if (n == 0) {
            return Read::eof;
        }
        if (errno != EINTR && errno != EAGAIN) {
            return errno == ECONNRESET ? Read::eof : Read::error;
        }
    }
}

bool StdioTransport::write_all(std::string_view bytes)
{
    if (m_transcript != nullptr) {
        m_transcript->server(bytes);
    }
    if (m_tls) {
        return m_tls->write(bytes) == TlsStream::Io::ok;
    }
    while (!bytes.empty()) {
        pollfd p{m_out, POLLOUT, 0};
        int r = ::poll(&p, 1, wait_ms());
        if (r == 0) {
            return false;
        }
        if (r < 0) {
            if (errno == EINTR) {
                continue;
            }
            return false;
        }
        // Never block past the deadline in write(2) itself: a socket gets a
        // non-blocking send; a pipe or file at most PIPE_BUF octets, which
        // fit once poll(2) reports room.
        ssize_t n = -1;
        if (m_out_is_socket) {
            n = ::send(m_out, bytes.data(), bytes.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
        } else {
            n = ::write(m_out, bytes.data(), std::min<std::size_t>(bytes.size(), PIPE_BUF));
        }
        if (n < 0) {
            if (errno == EINTR || errno == EAGAIN) {
                continue;
            }
            return false;
        }
        bytes.remove_prefix(static_cast<std::size_t>(n));
    }
    return true;
}

SessionEnd StdioTransport::run(Session& session, const std::function<void()>& after_write)
{
    Output out = session.start();
    if (m_tls_on_connect && m_tls_context) {
        // Implicit TLS: the greeting is the first thing sent inside it.
        Output tls = start_tls(session, 0);
        if (m_tls_failed) {
            return SessionEnd::tls_failed;
        }
        out.wire += tls.wire;
    }
    for (;;) {
        if (!write_all(out.wire)) {
            session.end_of_input();
            return SessionEnd::write_failed;
        }
        if (after_write) {
            after_write();
        }
        if (out.close) {
            return m_tls_failed ? SessionEnd::tls_failed : SessionEnd::quit;
        }
        switch (read_some()) {
        case Read::data: {
            std::string_view rest(m_buffer.get(), m_length);
            out = session.feed(rest);
            for (;;) {
                if (out.start_tls) {
                    // The 220 goes out in the clear; what the client sent
                    // after STARTTLS, before the handshake, is dropped.
                    if (!write_all(out.wire)) {
                        session.end_of_input();
                        return SessionEnd::write_failed;
                    }
                    out = start_tls(session, rest.size() - out.consumed);
                    break;
                }
                // After the end of a message the rest of the buffer waits
                // until the reply to the data is written.
                if (out.consumed >= rest.size() || out.close) {
                    break;
                }
                rest.remove_prefix(out.consumed);
                if (!write_all(out.wire)) {
                    session.end_of_input();
                    return SessionEnd::write_failed;
                }
                if (after_write) {
                    after_write();
                }
                out = session.feed(rest);
            }
            break;
        }
        case Read::eof:
            session.end_of_input();
            return SessionEnd::eof;
        case Read::timeout:
            out = session.timeout();
            std::ignore = write_all(out.wire);
            return SessionEnd::timeout;
        case Read::error:
            session.end_of_input();
            return SessionEnd::read_failed;
        }
    }
}

ProxyRead read_proxy_header(int in, unsigned timeout_seconds)
{
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(timeout_seconds);
    std::string have;
    char chunk[limits::k_proxy_v1_max];
    for (;;) {
        ProxyParse p = parse_proxy_header(have);
        if (auto* h = std::get_if<ProxyHeader>(&p)) {
            return {ProxyRead::End::header, *h, {}};
        }
        if (auto* bad = std::get_if<ProxyMalformed>(&p)) {
            return {ProxyRead::End::malformed, {}, bad->reason};
        }
        std::size_t want = std::min(std::get<ProxyNeedMore>(p).at_most, sizeof chunk);
        auto left =
            std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now()).count();
        pollfd pfd{in, POLLIN, 0};
        int r = left <= 0 ? 0 : ::poll(&pfd, 1, static_cast<int>(std::min<long long>(left, INT_MAX)));
        if (r == 0) {
            return {ProxyRead::End::timeout, {}, {}};
        }
        if (r < 0) {
            if (errno == EINTR) {
                continue;
            }
            return {ProxyRead::End::error, {}, std::strerror(errno)};
        }
        ssize_t n = ::read(in, chunk, want);
        if (n > 0) {
            have.append(chunk, static_cast<std::size_t>(n));
        } else if (n == 0 || errno == ECONNRESET) {
            return {ProxyRead::End::eof, {}, {}};
        } else if (errno != EINTR && errno != EAGAIN) {
            return {ProxyRead::End::error, {}, std::strerror(errno)};
        }
    }
}

bool is_socket(int fd)
{
    struct stat st {};
    return ::fstat(fd, &st) == 0 && S_ISSOCK(st.st_mode);
}

Peer peer_from_socket(int fd, bool trust_unix_socket)
{
    Peer peer;
    struct stat st {};
    if (::fstat(fd, &st) == 0 && !S_ISSOCK(st.st_mode)) {
        return peer; // a pipe, a file or a terminal: local
    }
    peer.local = false; // from here on, whatever cannot be told is a stranger
    sockaddr_storage ss{};
    socklen_t len = sizeof ss;
    if (::getpeername(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) {
        return peer;
    }
    char text[INET6_ADDRSTRLEN] = {};
    if (ss.ss_family == AF_INET) {
        auto* sin = reinterpret_cast<sockaddr_in*>(&ss);
        ::inet_ntop(AF_INET, &sin->sin_addr, text, sizeof text);
        peer.port = ntohs(sin->sin_port);
    } else if (ss.ss_family == AF_INET6) {
        auto* sin6 = reinterpret_cast<sockaddr_in6*>(&ss);
        ::inet_ntop(AF_INET6, &sin6->sin6_addr, text, sizeof text);
        peer.port = ntohs(sin6->sin6_port);
    } else {
        peer.local = ss.ss_family == AF_UNIX && trust_unix_socket;
        return peer;
    }
    peer.address = unmap_ipv4(text);
    return peer;
}

} // namespace smtpspool
