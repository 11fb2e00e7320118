// child_process: posix_spawn(3) into a process group of its own, and the one
// poll(2) loop that feeds a child, reads it and keeps its deadline.
#include "base/child_process.hpp"

#include "base/fd.hpp"
#include "base/text.hpp"

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

using SteadyClock = std::chrono::steady_clock;

// Without a pidfd, how often a waiting loop looks at the child.
constexpr std::chrono::milliseconds k_poll_step{10};
// Reads after the child has gone, for output still in the pipes: bounded, as
// a detached process could keep writing.
constexpr int k_max_drain_reads = 64;
constexpr std::size_t k_read_size = 65536;

std::string errno_text(const std::string& what, int errnum) { return what + ": " + std::strerror(errnum); }

int milliseconds_until(SteadyClock::time_point deadline)
{
    auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - SteadyClock::now()).count();
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

// The child's standard input when it is a file or /dev/null; see ChildInput::file.
Result<Fd> open_input_file(int fd)
{
    if (fd < 0) {
        Fd null(::open("/dev/null", O_RDONLY | O_CLOEXEC));
        if (!null) {
            return Error{errno, errno_text("cannot open /dev/null", errno)};
        }
        return null;
    }
    Fd fresh(::open(("/proc/self/fd/" + std::to_string(fd)).c_str(), O_RDONLY | O_CLOEXEC));
    if (fresh) {
        return fresh;
    }
    Fd shared(::fcntl(fd, F_DUPFD_CLOEXEC, 3));
    if (!shared) {
        return Error{errno, errno_text("cannot duplicate the child's input descriptor", errno)};
    }
    ::lseek(shared.get(), 0, SEEK_SET); // fails harmlessly on a pipe
    return shared;
}

Result<std::pair<Fd, Fd>> make_pipe()
{
    int p[2];
    if (::pipe2(p, O_CLOEXEC) != 0) {
        return Error{errno, errno_text("pipe", errno)};
    }
    return std::pair<Fd, Fd>{Fd(p[0]), Fd(p[1])};
}

// One output pipe of a child and what is kept of it.
struct Capture {
    Fd fd;
    std::string* text = nullptr;
    OutputKeep keep;
    bool* truncated = nullptr;

    void append(const char* data, std::size_t n)
    {
        if (keep.tail) {
            text->append(data, n);
            if (text->size() > keep.octets) {
                text->erase(0, text->size() - keep.octets);
                *truncated = true;
            }
            return;
        }
        std::size_t room = keep.octets - std::min(keep.octets, text->size());
        text->append(data, std::min(n, room));
        if (n > room) {
            *truncated = true;
        }
    }
    // One read(2); the pipe is closed at end of file or an error.
    void read_some()
    {
        char buf[k_read_size];
        ssize_t n = ::read(fd.get(), buf, sizeof buf);
        if (n > 0) {
            append(buf, static_cast<std::size_t>(n));
        } else if (n == 0 || (errno != EINTR && errno != EAGAIN)) {
            fd.reset();
        }
    }
    // What is still in the pipe, without waiting for writers that remain.
    void drain()
    {
        for (int i = 0; i < k_max_drain_reads && fd; ++i) {
            char buf[k_read_size];
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

// The write end of the child's standard input, fed from ChildInput::produce.
struct Feed {
    Fd fd;
    std::string pending;
    bool done = false;
    const std::function<std::optional<std::string>()>* produce = nullptr;

    // Fills `pending` when it is empty; closes the pipe after the last octet.
    void refill()
    {
        while (fd && !done && pending.empty()) {
            auto next = (*produce)();
            if (!next) {
                done = true;
            } else {
                pending = std::move(*next);
            }
        }
        if (fd && done && pending.empty()) {
            fd.reset();
        }
    }
    void write_some()
    {
        ssize_t n = ::write(fd.get(), pending.data(), pending.size());
        if (n > 0) {
            pending.erase(0, static_cast<std::size_t>(n));
        } else if (n < 0 && errno != EAGAIN && errno != EINTR) {
            // The child stopped reading (EPIPE): its exit status decides.
            fd.reset();
            pending.clear();
            done = true;
        }
    }
};

} // namespace

Result<std::vector<std::string>> child_environment(const EnvironmentVariables& variables)
{
    std::vector<std::string> env{"PATH=/usr/local/bin:/usr/bin:/bin"};
    for (const auto& [name, value] : variables) {
        if (!valid_variable_name(name) || value.find('\0') != std::string::npos) {
            return Error{EINVAL, "unusable environment variable " + text::printable_line(name, 64)};
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
    return start("/bin/sh", {"/bin/sh", "-c", command}, environment, stdio, fd3, false);
}

Result<ChildProcess> ChildProcess::spawn_program(const std::string& path, const std::vector<std::string>& argv,
                                                 const std::vector<std::string>& environment,
                                                 std::array<int, 3> stdio, bool new_session, int fd3)
{
    if (argv.empty()) {
        return Error{EINVAL, "no arguments for " + path};
    }
    return start(path, argv, environment, stdio, fd3, new_session);
}

Result<ChildProcess> ChildProcess::start(const std::string& path, const std::vector<std::string>& arguments,
                                         const std::vector<std::string>& environment, std::array<int, 3> stdio,
                                         int fd3, bool new_session)
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
            if (!copies[i]) {
                return Error{errno, errno_text("cannot duplicate a descriptor", errno)};
            }
            stdio[i] = copies[i].get();
        }
    }
    Fd fd3_copy;
    if (fd3 >= 0 && fd3 <= 3) {
        fd3_copy = Fd(::fcntl(fd3, F_DUPFD_CLOEXEC, 4));
        if (!fd3_copy) {
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
    // A new session makes it the leader of a new process group as well.
    short group = new_session ? POSIX_SPAWN_SETSID : POSIX_SPAWN_SETPGROUP;
    rc = rc != 0 ? rc
                 : ::posix_spawnattr_setflags(&attr, static_cast<short>(group | POSIX_SPAWN_SETSIGDEF |
                                                                        POSIX_SPAWN_SETSIGMASK));
    std::vector<std::string> args = arguments;
    std::vector<char*> argv;
    for (std::string& a : args) {
        argv.push_back(a.data());
    }
    argv.push_back(nullptr);
    std::vector<std::string> env = environment;
    std::vector<char*> envp;
    for (std::string& e : env) {
        envp.push_back(e.data());
    }
    envp.push_back(nullptr);
    pid_t pid = -1;
    rc = rc != 0 ? rc : ::posix_spawn(&pid, path.c_str(), &actions, &attr, argv.data(), envp.data());
    ::posix_spawnattr_destroy(&attr);
    ::posix_spawn_file_actions_destroy(&actions);
    if (rc != 0) {
        return Error{rc, errno_text("cannot run " + path, rc)};
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

bool ChildProcess::wait_until(SteadyClock::time_point deadline)
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
    wait_until(SteadyClock::now() + grace);
    signal_group(SIGKILL);
    return reap();
}

pid_t ChildProcess::release()
{
    if (m_exit_fd >= 0) {
        ::close(m_exit_fd);
        m_exit_fd = -1;
    }
    return std::exchange(m_pid, -1);
}

ChildRun run_child(const ChildRequest& request)
{
    ChildRun run;
    auto failed = [&run](std::string why) {
        run.end = ChildRun::End::failed_to_start;
        run.error = std::move(why);
        return run;
    };
    auto env = child_environment(request.environment);
    if (!env) {
        return failed(env.error().message);
    }
    // The child's ends of its pipes: closed here once it has them, or the
    // pipes never reach end of file.
    Fd child_in;
    Feed feed;
    if (request.input.produce) {
        auto p = make_pipe();
        if (!p) {
            return failed(p.error().message);
        }
        child_in = std::move(p.value().first);
        feed.fd = std::move(p.value().second);
        feed.produce = &request.input.produce;
    } else {
        auto in = open_input_file(request.input.file);
        if (!in) {
            return failed(in.error().message);
        }
        child_in = std::move(in.value());
    }
    auto out_pipe = make_pipe();
    if (!out_pipe) {
        return failed(out_pipe.error().message);
    }
    Capture out{std::move(out_pipe.value().first), &run.out, request.keep_out, &run.out_truncated};
    Fd out_w = std::move(out_pipe.value().second);
    Capture err{Fd(), &run.err, request.keep_err, &run.err_truncated};
    Fd err_w;
    if (!request.merge_err) {
        auto err_pipe = make_pipe();
        if (!err_pipe) {
            return failed(err_pipe.error().message);
        }
        err.fd = std::move(err_pipe.value().first);
        err_w = std::move(err_pipe.value().second);
    }
    auto spawned = ChildProcess::spawn(request.command, env.value(),
                                       {child_in.get(), out_w.get(), request.merge_err ? out_w.get() : err_w.get()},
                                       request.input.fd3);
    child_in.reset();
    out_w.reset();
    err_w.reset();
    if (!spawned) {
        return failed(spawned.error().message);
    }
    ChildProcess child = std::move(spawned.value());
    // Our ends only: the descriptors are ours alone, their flags nobody else's.
    for (int fd : {out.fd.get(), err.fd.get(), feed.fd.get()}) {
        if (fd >= 0 && !set_nonblocking(fd)) {
            child.stop();
            return failed(errno_text("fcntl", errno));
        }
    }

    auto deadline = SteadyClock::now() + request.timeout;
    bool timed_out = false;
    while (!child.exited()) {
        feed.refill();
        int left = milliseconds_until(deadline);
        if (left <= 0) {
            timed_out = true;
            break;
        }
        pollfd fds[4];
        Capture* owner[4] = {nullptr, nullptr, nullptr, nullptr};
        nfds_t n = 0;
        for (Capture* c : {&out, &err}) {
            if (c->fd) {
                owner[n] = c;
                fds[n++] = {c->fd.get(), POLLIN, 0};
            }
        }
        nfds_t feed_index = n;
        if (feed.fd) {
            fds[n++] = {feed.fd.get(), POLLOUT, 0};
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
        if (feed.fd && feed_index < n && (fds[feed_index].revents & (POLLOUT | POLLERR | POLLHUP)) != 0) {
            feed.write_some();
        }
    }
    feed.fd.reset();
    int status = 0;
    if (timed_out) {
        status = child.stop();
    } else {
        if (request.kill_group_on_exit) {
            child.signal_group(SIGKILL); // what it left running in its group
        }
        status = child.reap();
    }
    out.drain();
    err.drain();

    if (timed_out) {
        run.end = ChildRun::End::timed_out;
        run.status = WIFSIGNALED(status) ? WTERMSIG(status) : 0;
    } else if (WIFSIGNALED(status)) {
        run.end = ChildRun::End::signaled;
        run.status = WTERMSIG(status);
    } else {
        run.end = ChildRun::End::exited;
        run.status = WEXITSTATUS(status);
        // POSIX XCU 2.8.2: the shell's 127 is "not found", 126 "not executable".
        if (run.status == 127 || run.status == 126) {
            std::string why = run.status == 127 ? "command not found" : "command not executable";
            std::string said = text::printable_line(request.merge_err ? run.out : run.err, 200);
            run.end = ChildRun::End::failed_to_start;
            run.error = "exit " + std::to_string(run.status) + ", " + why + (said.empty() ? "" : ": " + said);
        }
    }
    return run;
}

} // namespace smtpspool
