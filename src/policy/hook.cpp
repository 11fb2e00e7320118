// hook: policy hook programs (run_hook, judge_hook) and ChildProcess, the
// process-group child they and the pipe transport run (posix_spawn(3)).
#include "policy/hook.hpp"

#include "base/limits.hpp"

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <fcntl.h>
#include <poll.h>
#include <spawn.h>
#include <string_view>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

namespace smtpspool {
namespace {

using Clock = std::chrono::steady_clock;

// Without a pidfd, how often a waiting loop looks at the child.
constexpr std::chrono::milliseconds k_poll_step{10};
// Reads after the child has gone, for output still in the pipes: bounded, as
// a detached process could keep writing.
constexpr int k_max_drain_reads = 64;

std::string errno_text(const std::string& what, int errnum) { return what + ": " + std::strerror(errnum); }

// A descriptor closed when it goes out of scope.
class Fd {
public:
    Fd() = default;
    explicit Fd(int fd) : m_fd(fd) {}
    Fd(Fd&& other) noexcept : m_fd(std::exchange(other.m_fd, -1)) {}
    Fd& operator=(Fd&& other) noexcept
    {
        if (this != &other) {
            reset();
            m_fd = std::exchange(other.m_fd, -1);
        }
        return *this;
    }
    Fd(const Fd&) = delete;
    Fd& operator=(const Fd&) = delete;
    ~Fd() { reset(); }
    int get() const { return m_fd; }
    void reset()
    {
        if (m_fd >= 0) {
            ::close(m_fd);
        }
        m_fd = -1;
    }

private:
    int m_fd = -1;
};

int milliseconds_until(Clock::time_point deadline)
{
    auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - Clock::now()).count();
    return static_cast<int>(std::clamp<decltype(left)>(left, 0, 24 * 3600 * 1000));
}

int open_pidfd(pid_t pid)
{
#ifdef SYS_pidfd_open
    // pidfd_open(2), Linux 5.3; its descriptor is always close-on-exec.
    return static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
#else
    (void)pid;
    return -1;
#endif
}

bool valid_variable_name(std::string_view name)
{
    return !name.empty() && name.find('=') == std::string_view::npos && name.find('\0') == std::string_view::npos;
}

// The hook's standard input; see HookRequest::stdin_fd.
Result<Fd> open_stdin(int fd)
{
    if (fd < 0) {
        Fd null(::open("/dev/null", O_RDONLY | O_CLOEXEC));
        if (null.get() < 0) {
            return Error{errno, errno_text("cannot open /dev/null", errno)};
        }
        return null;
    }
    Fd fresh(::open(("/proc/self/fd/" + std::to_string(fd)).c_str(), O_RDONLY | O_CLOEXEC));
    if (fresh.get() >= 0) {
        return fresh;
    }
    Fd shared(::fcntl(fd, F_DUPFD_CLOEXEC, 3));
    if (shared.get() < 0) {
        return Error{errno, errno_text("cannot duplicate the hook's input descriptor", errno)};
    }
    ::lseek(shared.get(), 0, SEEK_SET); // fails harmlessly on a pipe
    return shared;
}

// One output pipe of a hook and where its bytes go.
struct Capture {
    Fd fd;
    std::string* text;
    std::size_t cap;
    bool* truncated;

    void append(const char* data, std::size_t n)
    {
        std::size_t room = cap - std::min(cap, text->size());
        text->append(data, std::min(n, room));
        if (n > room) {
            *truncated = true;
        }
    }
    // One read(2); false once the pipe is closed (end of file or an error).
    bool read_some()
    {
        char buf[65536];
        ssize_t n = ::read(fd.get(), buf, sizeof buf);
        if (n > 0) {
            append(buf, static_cast<std::size_t>(n));
            return true;
        }
        if (n < 0 && (errno == EINTR || errno == EAGAIN)) {
            return true;
        }
        fd.reset();
        return false;
    }
    // What is still in the pipe, without waiting for writers that remain.
    void drain()
    {
        for (int i = 0; i < k_max_drain_reads && fd.get() >= 0; ++i) {
            char buf[65536];
            ssize_t n = ::read(fd.get(), buf, sizeof buf);
            if (n < 0 && errno == EINTR) {
                continue;
            }
            if (n <= 0) {
                break;
            }
            append(buf, static_cast<std::size_t>(n));
        }
        fd.reset();
    }
};

std::string printable_first_line(std::string_view text, std::size_t max)
{
    std::string line(text.substr(0, std::min(text.find('\n'), max)));
    for (char& c : line) {
        auto u = static_cast<unsigned char>(c);
        if (u < 0x20 || u >= 0x7f) {
            c = '?';
        }
    }
    return line;
}

// RFC 5322 §2.1.1, §2.2: at most 998 octets of US-ASCII; of the controls only
// HT (in folding white space).
bool header_line_ok(std::string_view line)
{
    if (line.size() > limits::k_max_header_line) {
        return false;
    }
    return std::all_of(line.begin(), line.end(), [](char c) {
        auto u = static_cast<unsigned char>(c);
        return c == '\t' || (u >= 0x20 && u < 0x7f);
    });
}

// RFC 5322 §2.2: "name: body", the name printable US-ASCII without ':'.
bool field_start_ok(std::string_view line)
{
    std::size_t colon = line.find(':');
    if (colon == std::string_view::npos || colon == 0 || colon > k_max_field_name || !header_line_ok(line)) {
        return false;
    }
    return std::all_of(line.begin(), line.begin() + static_cast<std::ptrdiff_t>(colon), [](char c) {
        auto u = static_cast<unsigned char>(c);
        return u > 0x20 && u < 0x7f;
    });
}

// RFC 5322 §2.2.3: a folded line starts with WSP, and is not WSP only (§3.2.2).
bool continuation_ok(std::string_view line)
{
    return header_line_ok(line) && line.find_first_not_of(" \t") != std::string_view::npos;
}

class HeaderCollector {
public:
    explicit HeaderCollector(HookVerdict& verdict) : m_verdict(verdict) {}

    void line(std::string_view text)
    {
        if (text.empty()) {
            flush(); // an empty line would end a header section: nothing continues across it
            m_open = false;
            return;
        }
        if (text[0] == ' ' || text[0] == '\t') {
            if (m_open) {
                m_field.push_back(text);
            } else {
                ignore(text);
            }
            return;
        }
        flush();
        m_field.push_back(text);
        m_open = true;
    }
    void ignore(std::string_view text)
    {
        ++m_verdict.ignored_total;
        if (m_verdict.ignored_lines.size() < k_hook_max_ignored_lines) {
            m_verdict.ignored_lines.emplace_back(text.substr(0, k_hook_max_ignored_line));
        }
    }
    // A field goes in whole, continuation lines and all, or not at all.
    void flush()
    {
        if (m_field.empty()) {
            return;
        }
        bool ok = field_start_ok(m_field[0]) && std::all_of(m_field.begin() + 1, m_field.end(),
                                                            [](std::string_view l) { return continuation_ok(l); });
        std::size_t bytes = 0;
        for (std::string_view l : m_field) {
            bytes += l.size() + 2;
        }
        ok = ok && m_verdict.header_lines.size() + m_field.size() <= k_hook_max_header_lines &&
             m_bytes + bytes <= k_hook_max_header_bytes;
        for (std::string_view l : m_field) {
            if (ok) {
                m_verdict.header_lines.push_back(std::string(l) + "\r\n");
            } else {
                ignore(l);
            }
        }
        if (ok) {
            m_bytes += bytes;
        }
        m_field.clear();
    }

private:
    HookVerdict& m_verdict;
    std::vector<std::string_view> m_field; // a field line and its continuation lines
    bool m_open = false;                   // a continuation line has a field to belong to
    std::size_t m_bytes = 0;
};

void collect_headers(const HookRun& run, HookVerdict& verdict)
{
    HeaderCollector collector(verdict);
    std::string_view rest = run.out;
    while (!rest.empty()) {
        std::size_t nl = rest.find('\n');
        if (nl == std::string_view::npos) {
            // A last line without its newline is whole, unless the output was cut.
            if (run.out_truncated) {
                collector.flush();
                collector.ignore(rest);
            } else {
                collector.line(rest);
            }
            break;
        }
        std::string_view line = rest.substr(0, nl);
        if (!line.empty() && line.back() == '\r') {
            line.remove_suffix(1);
        }
        collector.line(line);
        rest.remove_prefix(nl + 1);
    }
    collector.flush();
}

} // namespace

Result<std::vector<std::string>> child_environment(const EnvironmentVariables& variables)
{
    std::vector<std::string> env{"PATH=/usr/local/bin:/usr/bin:/bin"};
    for (const auto& [name, value] : variables) {
        if (!valid_variable_name(name) || value.find('\0') != std::string::npos) {
            return Error{EINVAL, "unusable environment variable " + printable_first_line(name, 64)};
        }
        std::string entry = name + "=" + value;
        auto same = std::find_if(env.begin(), env.end(), [&name = name](const std::string& e) {
            return e.size() > name.size() && e.compare(0, name.size(), name) == 0 && e[name.size()] == '=';
        });
        if (same != env.end()) {
            *same = std::move(entry);
        } else {
            env.push_back(std::move(entry));
        }
    }
    return env;
}

Result<ChildProcess> ChildProcess::spawn(const std::string& command, const std::vector<std::string>& environment,
                                         std::array<int, 3> stdio, int fd3)
{
    // The dup2 actions onto 0, 1, 2 would clobber a source that is itself one
    // of them (fresh descriptors are that low when our own stdio is closed):
    // such a source is copied above 2 first.
    std::array<Fd, 3> copies;
    for (std::size_t i = 0; i < stdio.size(); ++i) {
        if (stdio[i] < 0) {
            return Error{EBADF, "no descriptor for the child's fd " + std::to_string(i)};
        }
        if (stdio[i] < 3) {
            copies[i] = Fd(::fcntl(stdio[i], F_DUPFD_CLOEXEC, 3));
            if (copies[i].get() < 0) {
                return Error{errno, errno_text("cannot duplicate a descriptor", errno)};
            }
            stdio[i] = copies[i].get();
        }
    }
    Fd fd3_copy;
    if (fd3 >= 0 && fd3 <= 3) {
        fd3_copy = Fd(::fcntl(fd3, F_DUPFD_CLOEXEC, 4));
        if (fd3_copy.get() < 0) {
            return Error{errno, errno_text("cannot duplicate a descriptor", errno)};
        }
        fd3 = fd3_copy.get();
    }
    posix_spawn_file_actions_t actions;
    posix_spawnattr_t attr;
    if (int rc = ::posix_spawn_file_actions_init(&actions); rc != 0) {
        return Error{rc, errno_text("posix_spawn", rc)};
    }
    if (int rc = ::posix_spawnattr_init(&attr); rc != 0) {
        ::posix_spawn_file_actions_destroy(&actions);
        return Error{rc, errno_text("posix_spawn", rc)};
    }
    int rc = 0;
    for (int i = 0; i < 3 && rc == 0; ++i) {
        rc = ::posix_spawn_file_actions_adddup2(&actions, stdio[static_cast<std::size_t>(i)], i);
    }
    if (fd3 >= 0) {
        rc = rc != 0 ? rc : ::posix_spawn_file_actions_adddup2(&actions, fd3, 3);
    }
    // Nothing else of ours reaches the child: not the client's socket, not the spool.
    rc = rc != 0 ? rc : ::posix_spawn_file_actions_addclosefrom_np(&actions, fd3 >= 0 ? 4 : 3);
    // Its own process group (pgid = its pid), so that one kill(2) reaches
    // everything it starts; every signal at its default (we ignore SIGPIPE)
    // and none blocked.
    sigset_t all, none;
    sigfillset(&all);
    sigemptyset(&none);
    rc = rc != 0 ? rc : ::posix_spawnattr_setpgroup(&attr, 0);
    rc = rc != 0 ? rc : ::posix_spawnattr_setsigdefault(&attr, &all);
    rc = rc != 0 ? rc : ::posix_spawnattr_setsigmask(&attr, &none);
    rc = rc != 0 ? rc
                 : ::posix_spawnattr_setflags(&attr,
                                              POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK);
    std::string sh = "/bin/sh", dash_c = "-c", cmd = command;
    char* argv[] = {sh.data(), dash_c.data(), cmd.data(), nullptr};
    std::vector<std::string> env = environment;
    std::vector<char*> envp;
    for (std::string& e : env) {
        envp.push_back(e.data());
    }
    envp.push_back(nullptr);
    pid_t pid = -1;
    rc = rc != 0 ? rc : ::posix_spawn(&pid, argv[0], &actions, &attr, argv, envp.data());
    ::posix_spawnattr_destroy(&attr);
    ::posix_spawn_file_actions_destroy(&actions);
    if (rc != 0) {
        return Error{rc, errno_text("cannot run /bin/sh", rc)};
    }
    return ChildProcess(pid, open_pidfd(pid));
}

ChildProcess::ChildProcess(ChildProcess&& other) noexcept
    : m_pid(std::exchange(other.m_pid, -1)), m_exit_fd(std::exchange(other.m_exit_fd, -1))
{
}

ChildProcess::~ChildProcess()
{
    if (m_pid > 0) {
        signal_group(SIGKILL);
        reap();
    }
}

bool ChildProcess::exited()
{
    if (m_pid <= 0) {
        return true;
    }
    siginfo_t info{};
    int r = ::waitid(P_PID, static_cast<id_t>(m_pid), &info, WEXITED | WNOHANG | WNOWAIT);
    return (r == 0 && info.si_pid != 0) || (r < 0 && errno == ECHILD);
}

bool ChildProcess::wait_until(Clock::time_point deadline)
{
    for (;;) {
        if (exited()) {
            return true;
        }
        int left = milliseconds_until(deadline);
        if (left <= 0) {
            return false;
        }
        pollfd p{m_exit_fd, POLLIN, 0};
        if (m_exit_fd >= 0) {
            ::poll(&p, 1, left);
        } else {
            ::poll(nullptr, 0, std::min(left, static_cast<int>(k_poll_step.count())));
        }
    }
}

void ChildProcess::signal_group(int signal)
{
    // Until it is reaped the child holds its pid, and so its group id: the
    // signal cannot reach a stranger's group.
    if (m_pid > 0) {
        ::kill(-m_pid, signal);
    }
}

int ChildProcess::reap()
{
    if (m_pid <= 0) {
        return 0;
    }
    int status = 0;
    pid_t r;
    while ((r = ::waitpid(m_pid, &status, 0)) < 0 && errno == EINTR) {
    }
    if (r < 0) {
        // Reaped elsewhere (SIGCHLD ignored): the status is lost; count it killed.
        status = SIGKILL;
    }
    m_pid = -1;
    if (m_exit_fd >= 0) {
        ::close(m_exit_fd);
        m_exit_fd = -1;
    }
    return status;
}

int ChildProcess::stop(std::chrono::milliseconds grace)
{
    signal_group(SIGTERM);
    wait_until(Clock::now() + grace);
    signal_group(SIGKILL);
    return reap();
}

HookRun run_hook(const HookRequest& request)
{
    HookRun run;
    auto failed = [&run](std::string why) {
        run.end = HookRun::End::failed_to_start;
        run.error = std::move(why);
        return run;
    };
    auto env = child_environment(request.environment);
    if (!env) {
        return failed(env.error().message);
    }
    auto in = open_stdin(request.stdin_fd);
    if (!in) {
        return failed(in.error().message);
    }
    int out_pipe[2], err_pipe[2];
    if (::pipe2(out_pipe, O_CLOEXEC) != 0) {
        return failed(errno_text("pipe", errno));
    }
    Capture out{Fd(out_pipe[0]), &run.out, k_hook_max_out, &run.out_truncated};
    Fd out_w(out_pipe[1]);
    if (::pipe2(err_pipe, O_CLOEXEC) != 0) {
        return failed(errno_text("pipe", errno));
    }
    Capture err{Fd(err_pipe[0]), &run.err, k_hook_max_err, &run.err_truncated};
    Fd err_w(err_pipe[1]);
    auto spawned = ChildProcess::spawn(request.command, env.value(), {in.value().get(), out_w.get(), err_w.get()});
    // Only the child may hold the write ends, or the pipes never reach end of file.
    in.value().reset();
    out_w.reset();
    err_w.reset();
    if (!spawned) {
        return failed(spawned.error().message);
    }
    ChildProcess child = std::move(spawned.value());
    ::fcntl(out.fd.get(), F_SETFL, O_NONBLOCK);
    ::fcntl(err.fd.get(), F_SETFL, O_NONBLOCK);

    auto deadline = Clock::now() + request.timeout;
    bool timed_out = false;
    while (!child.exited()) {
        int left = milliseconds_until(deadline);
        if (left <= 0) {
            timed_out = true;
            break;
        }
        pollfd fds[3];
        Capture* owner[3] = {nullptr, nullptr, nullptr};
        nfds_t n = 0;
        for (Capture* c : {&out, &err}) {
            if (c->fd.get() >= 0) {
                owner[n] = c;
                fds[n++] = {c->fd.get(), POLLIN, 0};
            }
        }
        if (child.exit_fd() >= 0) {
            fds[n++] = {child.exit_fd(), POLLIN, 0};
        } else {
            left = std::min(left, static_cast<int>(k_poll_step.count()));
        }
        if (::poll(fds, n, left) <= 0) {
            continue; // timeout or EINTR: the loop's checks decide
        }
        for (nfds_t i = 0; i < n; ++i) {
            if (owner[i] != nullptr && (fds[i].revents & (POLLIN | POLLHUP | POLLERR)) != 0) {
                owner[i]->read_some();
            }
        }
    }
    int status = 0;
    if (timed_out) {
        status = child.stop();
    } else {
        child.signal_group(SIGKILL); // what it left running in its group
        status = child.reap();
    }
    out.drain();
    err.drain();

    if (timed_out) {
        run.end = HookRun::End::timed_out;
        run.status = WIFSIGNALED(status) ? WTERMSIG(status) : 0;
    } else if (WIFSIGNALED(status)) {
        run.end = HookRun::End::signaled;
        run.status = WTERMSIG(status);
    } else {
        run.end = HookRun::End::exited;
        run.status = WEXITSTATUS(status);
        // POSIX XCU 2.8.2: the shell's 127 is "not found", 126 "not executable".
        if (run.status == 127 || run.status == 126) {
            std::string why = run.status == 127 ? "command not found" : "command not executable";
            std::string said = printable_first_line(run.err, 200);
            run.end = HookRun::End::failed_to_start;
            run.error = "exit " + std::to_string(run.status) + ", " + why + (said.empty() ? "" : ": " + said);
        }
    }
    return run;
}

HookVerdict judge_hook(const HookRun& run, HookStage stage)
{
    HookVerdict verdict;
    switch (run.end) {
    case HookRun::End::failed_to_start:
        verdict.reply = replies::policy_tempfail();
        verdict.log_reason = run.status == 127 ? "not-found" : run.status == 126 ? "not-executable" : "start-failed";
        return verdict;
    case HookRun::End::timed_out:
        verdict.reply = replies::policy_tempfail();
        verdict.log_reason = "timeout";
        return verdict;
    case HookRun::End::signaled:
        verdict.reply = replies::policy_tempfail();
        verdict.log_reason = "signal=" + std::to_string(run.status);
        return verdict;
    case HookRun::End::exited:
        break;
    }
    verdict.log_reason = "exit=" + std::to_string(run.status);
    if (run.status == 0) {
        verdict.accept = true;
        if (stage == HookStage::data) {
            collect_headers(run, verdict);
        }
        return verdict;
    }
    std::string_view out = run.out;
    if (auto reply = replies::parse_hook_reply(out.substr(0, out.find('\n')))) {
        verdict.reply = std::move(reply);
        return verdict;
    }
    if (!out.empty()) {
        verdict.log_reason += ",bad-output";
    }
    verdict.reply = run.status == 100 ? replies::policy_refused(stage) : replies::policy_tempfail();
    return verdict;
}

} // namespace smtpspool
