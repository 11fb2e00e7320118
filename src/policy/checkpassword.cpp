// checkpassword: one child per check, its credentials on a pipe at fd 3.
#include "policy/checkpassword.hpp"

#include "policy/hook.hpp"

#include <cerrno>
#include <cstring>
#include <ctime>
#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

namespace smtpspool {
namespace {

// The checkpassword interface reads at most this much from fd 3.
constexpr std::size_t k_max_credentials = 512;

void close_fd(int& fd)
{
    if (fd >= 0) {
        ::close(fd);
        fd = -1;
    }
}

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
    // At most 512 octets: the pipe holds them all before the child reads.
    ssize_t n = ::write(p[1], credentials.data(), credentials.size());
    std::memset(credentials.data(), 0, credentials.size());
    close_fd(p[1]);
    if (n != static_cast<ssize_t>(credentials.size())) {
        close_fd(p[0]);
        m_failure = std::string("write: ") + std::strerror(errno);
        return AuthVerdict::temporary;
    }
    int null = ::open("/dev/null", O_RDWR | O_CLOEXEC);
    auto env = child_environment({});
    if (null < 0 || !env) {
        close_fd(p[0]);
        close_fd(null);
        m_failure = "cannot set up the child";
        return AuthVerdict::temporary;
    }
    auto child = ChildProcess::spawn(m_command + " true", env.value(), {null, null, null}, p[0]);
    close_fd(p[0]);
    close_fd(null);
    if (!child) {
        m_failure = child.error().message;
        return AuthVerdict::temporary;
    }
    if (!child.value().wait_until(std::chrono::steady_clock::now() + m_timeout)) {
        child.value().stop();
        m_failure = "timed out";
        return AuthVerdict::temporary;
    }
    int status = child.value().stop(); // reaps it, and ends whatever it left behind
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
        return AuthVerdict::ok;
    }
    if (WIFEXITED(status) && WEXITSTATUS(status) == 1) {
        return AuthVerdict::refused;
    }
    m_failure = WIFEXITED(status) ? "exit status " + std::to_string(WEXITSTATUS(status))
                                  : "killed by signal " + std::to_string(WTERMSIG(status));
    return AuthVerdict::temporary;
}

} // namespace smtpspool
