// child_process: the one way smtpspool runs another program. ChildProcess
// spawns `/bin/sh -c command` in a process group of its own with a clean
// environment; run_child drives it to the end: its standard input fed from
// a file or from octets we produce, its output kept within bounds, all of it
// under one deadline after which the whole group is stopped. The hooks, the
// pipe deliverer and checkpassword use it; --deliver-now spawns runq with it.
#pragma once

#include "base/result.hpp"

#include <array>
#include <chrono>
#include <cstddef>
#include <functional>
#include <optional>
#include <string>
#include <sys/types.h>
#include <utility>
#include <vector>

namespace smtpspool {

// Between SIGTERM and SIGKILL when a child is stopped.
inline constexpr std::chrono::milliseconds k_child_stop_grace{500};

using EnvironmentVariables = std::vector<std::pair<std::string, std::string>>;

// The whole environment of a child program: PATH=/usr/local/bin:/usr/bin:/bin
// and `variables` ("NAME=value"; a later name replaces an earlier one, PATH
// included). Nothing is inherited: the receiver's own environment holds the
// superserver's variables (TCPREMOTEIP, ...), and a child sees only what it is
// given. Error for an empty name, a name with '=', or a NUL anywhere (execve(2)
// would cut the string there without a word).
Result<std::vector<std::string>> child_environment(const EnvironmentVariables& variables);

// A `/bin/sh -c command` child leading a process group of its own, so that
// stopping it stops whatever it started. It is spawned with default signal
// dispositions and an empty signal mask, and no descriptor but its 0, 1, 2
// (and 3 when asked). A ChildProcess not yet reaped is killed (the group,
// SIGKILL) and reaped on destruction: no zombies, whatever path the caller
// takes.
class ChildProcess {
public:
    // stdio: the descriptors that become the child's 0, 1 and 2 (the caller
    // still owns and closes them). Error when /bin/sh cannot be started.
    // fd3, when not -1, becomes the child's descriptor 3 (the checkpassword
    // interface reads the credentials there).
    static Result<ChildProcess> spawn(const std::string& command, const std::vector<std::string>& environment,
                                      std::array<int, 3> stdio, int fd3 = -1);
    // The program at `path` (no shell) with these arguments (argv[0] first),
    // for programs we start ourselves. With new_session it leads a session of
    // its own (setsid(2)), so that nothing sent to ours (a hangup) reaches it.
    // fd3, when not -1, becomes its descriptor 3 (a lock it holds while it runs).
    static Result<ChildProcess> spawn_program(const std::string& path, const std::vector<std::string>& argv,
                                              const std::vector<std::string>& environment, std::array<int, 3> stdio,
                                              bool new_session = false, int fd3 = -1);
    ChildProcess(ChildProcess&& other) noexcept;
    ChildProcess& operator=(ChildProcess&&) = delete;
    ChildProcess(const ChildProcess&) = delete;
    ChildProcess& operator=(const ChildProcess&) = delete;
    ~ChildProcess();

    pid_t pid() const { return m_pid; }
    // Readable once the child has exited (pidfd_open(2)), for poll(2); -1
    // where the kernel has none (callers then poll in short steps).
    int exit_fd() const { return m_exit_fd; }
    // True once the child has exited; it is not reaped yet, so its process
    // group id stays its own (waitid(2) WNOWAIT).
    bool exited();
    // Until the child has exited or the deadline has passed; true if it exited.
    bool wait_until(std::chrono::steady_clock::time_point deadline);
    // kill(2) to the whole process group, before the child is reaped.
    void signal_group(int signal);
    // Waits for the child and returns its wait status; whatever else runs in
    // its group is left alone (signal_group first to end it).
    int reap();
    // SIGTERM to the group, up to `grace` for the child to exit, then SIGKILL
    // to the group; reaps the child and returns its wait status.
    int stop(std::chrono::milliseconds grace = k_child_stop_grace);
    // Forgets the child without killing or reaping it (a detached program
    // that reports elsewhere; the caller reaps it or ignores SIGCHLD).
    pid_t release();

private:
    ChildProcess(pid_t pid, int exit_fd) : m_pid(pid), m_exit_fd(exit_fd) {}
    static Result<ChildProcess> start(const std::string& path, const std::vector<std::string>& argv,
                                      const std::vector<std::string>& environment, std::array<int, 3> stdio, int fd3,
                                      bool new_session);
    pid_t m_pid = -1;
    int m_exit_fd = -1;
};

// Where a child's standard input comes from in run_child.
struct ChildInput {
    // -1: /dev/null, unless `produce` is set. Otherwise a file the child reads
    // from offset 0 through a fresh open file description of its own (open(2)
    // of /proc/self/fd/N), so neither the caller's offset nor its access mode
    // matter and the caller's offset does not move; without /proc the
    // descriptor itself is shared, rewound to 0.
    int file = -1;
    // When set, the child reads a pipe that run_child fills with what this
    // returns, call after call, until it returns nullopt (the pipe is then
    // closed). The child may stop reading early; then the rest is dropped and
    // its exit status decides. The caller ignores SIGPIPE.
    std::function<std::optional<std::string>()> produce;
    // When not -1, a descriptor given to the child as its fd 3.
    int fd3 = -1;
};

// How much of an output stream is kept: its first or its last `octets`.
// The rest is read and dropped, so the child never blocks on a full pipe.
struct OutputKeep {
    std::size_t octets = 0;
    bool tail = false;
};

struct ChildRun {
    enum class End { exited, signaled, timed_out, failed_to_start };
    End end = End::failed_to_start;
    // The exit status (126 or 127 too when failed_to_start by the shell),
    // or the signal that ended it (signaled, timed_out).
    int status = 0;
    std::string out; // what OutputKeep kept of stdout (and stderr when merged)
    std::string err;
    bool out_truncated = false;
    bool err_truncated = false;
    // Why it failed to start: pipe, /proc, environment or spawn errors, and
    // the shell's own "command not found" (exit 127) and "not executable"
    // (126), POSIX XCU 2.8.2, with status set to that exit code.
    std::string error;
};

struct ChildRequest {
    std::string command; // run as /bin/sh -c command
    EnvironmentVariables environment;
    ChildInput input;
    OutputKeep keep_out;
    OutputKeep keep_err;
    bool merge_err = false; // stderr into the stdout stream (keep_out)
    std::chrono::milliseconds timeout{30000};
    // When the child exits, whatever it left running in its process group is
    // killed too (a check starts no lasting processes). Otherwise the group
    // is left alone.
    bool kill_group_on_exit = true;
};

// Runs the child until it exits or request.timeout has passed; then the whole
// process group is stopped (SIGTERM, k_child_stop_grace, SIGKILL). Output
// written until then is kept. Never throws for anything the child does; reaps
// the child; leaves no descriptor open; changes no descriptor flags of the
// caller's.
ChildRun run_child(const ChildRequest& request);

} // namespace smtpspool
