// checkpassword: one child per check, its credentials on a pipe at fd 3.
#include "policy/checkpassword.hpp"

#include "base/child_process.hpp"
#include "base/fd.hpp"

#include <cerrno>
#include <cstring>
#include <ctime>
#include <fcntl.h>
#include <unistd.h>

namespace smtpspool {
namespace {

// The checkpassword interface reads at most this much from fd 3.
constexpr std::size_t k_max_credentials = 512;

} // namespace

CheckPassword::CheckPassword(std::string command, std::chrono::seconds timeout, LogSink& log)
    : m_command(std::move(command)), m_timeout(timeout), m_log(log)
{
}

AuthVerdict CheckPassword::check(std::string_view user, std::string_view password)
{
    AuthVerdict v = run(user, password);
    if (v == AuthVerdict::temporary) {
        m_log.log(LogLine("auth-error").add("command", m_command).add("reason", m_failure));
    }
    return v;
}

AuthVerdict CheckPassword::run(std::string_view user, std::string_view password)
{
    m_failure.clear();
    std::string credentials = std::string(user) + '\0' + std::string(password) + '\0' +
                              std::to_string(static_cast<long long>(std::time(nullptr))) + '\0';
    if (credentials.size() > k_max_credentials || user.find('\0') != std::string_view::npos ||
        password.find('\0') != std::string_view::npos) {
        return AuthVerdict::refused;
    }
    int p[2] = {-1, -1};
    if (::pipe2(p, O_CLOEXEC) != 0) {
        m_failure = std::string("pipe: ") + std::strerror(errno);
        return AuthVerdict::temporary;
    }
    Fd read_end(p[0]);
    Fd write_end(p[1]);
    // At most 512 octets: the pipe holds them all before the child reads.
    ssize_t n = ::write(write_end.get(), credentials.data(), credentials.size());
    std::memset(credentials.data(), 0, credentials.size());
    write_end.reset();
    if (n != static_cast<ssize_t>(credentials.size())) {
        m_failure = std::string("write: ") + std::strerror(errno);
        return AuthVerdict::temporary;
    }
    ChildRequest request;
    request.command = m_command + " true";
    request.input.fd3 = read_end.get();
    request.timeout = std::chrono::duration_cast<std::chrono::milliseconds>(m_timeout);
    ChildRun child = run_child(request);
    switch (child.end) {
    case ChildRun::End::exited:
        if (child.status == 0) {
            return AuthVerdict::ok;
        }
        if (child.status == 1) {
            return AuthVerdict::refused;
        }
        m_failure = "exit status " + std::to_string(child.status);
        return AuthVerdict::temporary;
    case ChildRun::End::timed_out:
        m_failure = "timed out";
        return AuthVerdict::temporary;
    case ChildRun::End::signaled:
        m_failure = "killed by signal " + std::to_string(child.status);
        return AuthVerdict::temporary;
    case ChildRun::End::failed_to_start:
        break;
    }
    m_failure = child.error;
    return AuthVerdict::temporary;
}

} // namespace smtpspool
