// policy_client: non-blocking socket, poll(2) against one deadline per question.
#include "server/policy_client.hpp"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>

namespace smtpspool {
namespace {

int remaining_ms(std::chrono::steady_clock::time_point deadline)
{
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    return static_cast<int>(std::clamp<long long>(left.count(), 0, 1 << 30));
}

// Waits until fd is ready for `events` or the deadline passes (false).
bool wait_for(int fd, short events, std::chrono::steady_clock::time_point deadline)
{
    for (;;) {
        pollfd p{fd, events, 0};
        int r = ::poll(&p, 1, remaining_ms(deadline));
        if (r > 0) {
            return true;
        }
        if (r == 0 || errno != EINTR) {
            return false;
        }
    }
}

// A non-blocking connect to one address, finished before the deadline.
Result<Fd> connect_to(const sockaddr* addr, socklen_t len, int family, std::chrono::steady_clock::time_point deadline)
{
    Fd fd(::socket(family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
    if (!fd) {
        return sys_error("socket");
    }
    if (::connect(fd.get(), addr, len) != 0) {
        if (errno != EINPROGRESS && errno != EINTR) {
            return sys_error("connect");
        }
        if (!wait_for(fd.get(), POLLOUT, deadline)) {
            return Error{ETIMEDOUT, "timeout connecting"};
        }
        int err = 0;
        socklen_t n = sizeof err;
        if (::getsockopt(fd.get(), SOL_SOCKET, SO_ERROR, &err, &n) != 0 || err != 0) {
            errno = err;
            return sys_error("connect");
        }
    }
    return fd;
}

} // namespace

PolicyClient::PolicyClient(std::string spec, PolicyServiceAddress address, std::chrono::milliseconds timeout)
    : m_spec(std::move(spec)), m_address(std::move(address)), m_timeout(timeout)
{
}

Result<void> PolicyClient::connect(Deadline deadline)
{
    if (m_address.kind == PolicyServiceAddress::Kind::unix_socket) {
        sockaddr_un sun{};
        sun.sun_family = AF_UNIX;
        std::memcpy(sun.sun_path, m_address.path.data(), std::min(m_address.path.size(), sizeof sun.sun_path - 1));
        auto fd = connect_to(reinterpret_cast<const sockaddr*>(&sun), sizeof sun, AF_UNIX, deadline);
        if (!fd) {
            return fd.error();
        }
        m_fd = std::move(fd.value());
        ++m_connections;
        return {};
    }
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* list = nullptr;
    if (int rc = ::getaddrinfo(m_address.host.c_str(), m_address.port.c_str(), &hints, &list); rc != 0) {
        return Error{0, std::string("cannot resolve host: ") + ::gai_strerror(rc)};
    }
    Error last{0, "no address"};
    for (addrinfo* ai = list; ai != nullptr; ai = ai->ai_next) {
        auto fd = connect_to(ai->ai_addr, ai->ai_addrlen, ai->ai_family, deadline);
        if (fd) {
            m_fd = std::move(fd.value());
            ++m_connections;
            ::freeaddrinfo(list);
            return {};
        }
        last = fd.error();
    }
    ::freeaddrinfo(list);
    return last;
}

Result<std::string> PolicyClient::exchange(std::string_view request, Deadline deadline, bool& stale)
{
    stale = false;
    std::size_t sent = 0;
    while (sent < request.size()) {
        ssize_t n = ::send(m_fd.get(), request.data() + sent, request.size() - sent, MSG_NOSIGNAL);
        if (n > 0) {
            sent += static_cast<std::size_t>(n);
            continue;
        }
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            if (!wait_for(m_fd.get(), POLLOUT, deadline)) {
                return Error{ETIMEDOUT, "timeout writing the request"};
            }
            continue;
        }
        stale = sent == 0 && (errno == EPIPE || errno == ECONNRESET);
        return sys_error("writing the request");
    }
    delegation::AnswerReader reader;
    char buffer[1024];
    bool got_any = false;
    for (;;) {
        ssize_t n = ::recv(m_fd.get(), buffer, sizeof buffer, 0);
        if (n > 0) {
            got_any = true;
            std::size_t used = 0;
            auto status = reader.feed(std::string_view(buffer, static_cast<std::size_t>(n)), used);
            if (status == delegation::AnswerReader::Status::done) {
                if (used != static_cast<std::size_t>(n)) {
                    return Error{0, "octets after the answer"};
                }
                return reader.lines();
            }
            if (status == delegation::AnswerReader::Status::malformed) {
                return Error{0, "answer too long or with a NUL octet"};
            }
            continue;
        }
        if (n == 0) {
            stale = !got_any;
            return Error{0, "connection closed before the answer"};
        }
        if (errno == EINTR) {
            continue;
        }
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
            if (!wait_for(m_fd.get(), POLLIN, deadline)) {
                return Error{ETIMEDOUT, "timeout waiting for the answer"};
            }
            continue;
        }
        stale = !got_any && errno == ECONNRESET;
        return sys_error("reading the answer");
    }
}

Result<std::string> PolicyClient::query(std::string_view request)
{
    const Deadline deadline = std::chrono::steady_clock::now() + m_timeout;
    for (int attempt = 0; attempt < 2; ++attempt) {
        const bool kept = m_fd.valid();
        if (!kept) {
            if (auto c = connect(deadline); !c) {
                return c.error();
            }
        }
        bool stale = false;
        auto answer = exchange(request, deadline, stale);
        if (answer) {
            return answer;
        }
        m_fd.reset();
        // A kept connection the service had closed: once more on a new one.
        if (!(kept && stale)) {
            return answer.error();
        }
    }
    return Error{0, "connection closed twice"};
}

} // namespace smtpspool
