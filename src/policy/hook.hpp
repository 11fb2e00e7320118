// hook: policy hook programs. run_hook runs one admin-configured command
// (/bin/sh -c, through run_child) with a bounded time and bounded output;
// judge_hook (pure) turns what it did into accept, a reply, or a temporary
// failure.
#pragma once

#include "base/child_process.hpp"
#include "base/result.hpp"
#include "smtp/smtp_reply.hpp"

#include <chrono>
#include <cstddef>
#include <optional>
#include <string>
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

// What a hook did: how it ended, its status, and its output within
// k_hook_max_out / k_hook_max_err.
using HookRun = ChildRun;

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
