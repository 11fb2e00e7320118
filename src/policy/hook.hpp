// hook: policy hook programs. run_hook runs one admin-configured command
// (/bin/sh -c) with a bounded time and bounded output; judge_hook (pure) turns
// what it did into accept, a reply, or a temporary failure. ChildProcess, the
// process-group child both hooks and the pipe transport run, lives here too.
#pragma once

#include "base/result.hpp"
#include "smtp/smtp_reply.hpp"

#include <array>
#include <chrono>
#include <cstddef>
#include <optional>
#include <string>
#include <sys/types.h>
#include <utility>
#include <vector>

namespace smtpspool {

// Output kept from a hook; the rest is read and dropped, so it never blocks.
inline constexpr std::size_t k_hook_max_out = 64 * 1024;
inline constexpr std::size_t k_hook_max_err = 8 * 1024;
// Header fields a data hook may add (lines, and octets with CRLF).
inline constexpr std::size_t k_hook_max_header_lines = 100;
inline constexpr std::size_t k_hook_max_header_bytes = 16 * 1024;
// A field name short enough that "name: " plus a value fits the 78-octet
// line that RFC 5322 §2.1.1 recommends.
inline constexpr std::size_t k_max_field_name = 76;
// Ignored stdout lines listed for the log, each cut to this many octets.
inline constexpr std::size_t k_hook_max_ignored_lines = 10;
inline constexpr std::size_t k_hook_max_ignored_line = 200;
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
// dispositions and an empty signal mask, and no descriptor but its 0, 1, 2.
// A ChildProcess not yet reaped is killed (the group, SIGKILL) and reaped on
// destruction: no zombies, whatever path the caller takes.
class ChildProcess {
public:
    // stdio: the descriptors that become the child's 0, 1 and 2 (the caller
    // still owns and closes them). Error when /bin/sh cannot be started.
    // fd3, when not -1, becomes the child's descriptor 3 (the checkpassword
    // interface reads the credentials there).
    static Result<ChildProcess> spawn(const std::string& command, const std::vector<std::string>& environment,
                                      std::array<int, 3> stdio, int fd3 = -1);

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

private:
    ChildProcess(pid_t pid, int exit_fd) : m_pid(pid), m_exit_fd(exit_fd) {}
    pid_t m_pid = -1;
    int m_exit_fd = -1;
};

// Hook stages are the policy stages of the reply catalogue.
using HookStage = replies::Stage;

struct HookRequest {
    std::string command;              // admin-configured; run as /bin/sh -c command
    EnvironmentVariables environment; // added to child_environment's base
    // -1: /dev/null. Otherwise the message (or any file) for the hook's
    // standard input, read from offset 0: the hook gets a fresh open file
    // description of it (open(2) of /proc/self/fd/N, proc(5)), so neither the
    // caller's offset nor its access mode matter (the spool writes the
    // message through an O_WRONLY descriptor) and the caller's offset does
    // not move. Without /proc the descriptor itself is shared, rewound to 0:
    // its offset moves, and it must be readable.
    int stdin_fd = -1;
    std::chrono::milliseconds timeout{30000};
};

struct HookRun {
    enum class End { exited, signaled, timed_out, failed_to_start };
    End end = End::failed_to_start;
    // The exit status (126 or 127 too when failed_to_start by the shell),
    // or the signal that ended it (signaled, timed_out).
    int status = 0;
    std::string out;            // stdout, the first k_hook_max_out octets
    std::string err;            // stderr, the first k_hook_max_err octets
    bool out_truncated = false; // stdout had more than was kept
    bool err_truncated = false;
    // Why it failed to start: pipe, /proc, environment or spawn errors, and
    // the shell's own "command not found" (exit 127) and "not executable"
    // (126), POSIX XCU 2.8.2, with status set to that exit code.
    std::string error;
};

// Runs the hook until it exits or request.timeout has passed; then the whole
// process group is stopped (SIGTERM, k_child_stop_grace, SIGKILL). When the
// hook exits, whatever it left running in its process group is killed too: a
// policy check starts no lasting processes (one that must, detaches with
// setsid). Output written until then is kept. Never throws for anything the
// child does; reaps the child; leaves no descriptor open. It never writes to
// a pipe, so SIGPIPE cannot reach the caller; the child starts with SIGPIPE at
// its default, whatever the caller ignores.
HookRun run_hook(const HookRequest& request);

struct HookVerdict {
    bool accept = false;
    std::optional<Reply> reply;             // when !accept: the reply to give (4yz/5yz)
    std::vector<std::string> header_lines;  // data stage, accept: header field lines for the message, each ending CRLF
    std::string log_reason;                 // "exit=0", "exit=1", "exit=1,bad-output", "timeout", "signal=9", ...
    std::vector<std::string> ignored_lines; // stdout lines that were not header fields (data stage), bounded
    std::size_t ignored_total = 0;          // all such lines, listed or not
};

// Pure. Exit 0 accepts; at the data stage, stdout lines that are RFC 5322
// header fields become header_lines, a field with its folded continuation
// lines whole or not at all, at most k_hook_max_header_lines and
// k_hook_max_header_bytes; other lines go to ignored_lines (empty ones are
// skipped). A non-zero exit whose first stdout line is a reply
// ("NNN X.Y.Z text", replies::parse_hook_reply) gives that reply; otherwise
// exit 100 refuses (replies::policy_refused) and any other exit, as do a
// signal, the timeout and a failure to start, gives replies::policy_tempfail
// (the qmail convention: 100 permanent, 111 temporary). A hook that fails
// never accepts.
HookVerdict judge_hook(const HookRun& run, HookStage stage);

} // namespace smtpspool
