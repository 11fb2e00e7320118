// transcript: the session transcripts of tests/sessions (format in its README)
// run in-process: Session driven through the real Policy and a SpoolWriter on
// a temporary spool, configured from the transcript's options by the real
// parse_config, as `serve` does, with no process, pipe or transport. The same
// checks as tests/sessions/run.py. What only the binary has (the PROXY header
// read from the connection, TLS, the transport's timers, held input, exit
// statuses) is skipped, with the reason.
#pragma once

#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace testutil {

struct Transcript {
    struct Line {
        std::string op; // "<-", "<~" or "<*" (a "<=" becomes several "<-")
        std::string arg;
        std::string where; // file:line
    };
    std::string name;
    std::vector<std::string> modes{"local", "network"};
    std::vector<std::string> options; // {here} replaced
    std::map<std::string, std::string> env;
    std::string input;
    std::vector<Line> expect;
    std::vector<Line> checks; // op "=": arg is the check
    double hold = 0;
    int status = 0;
};

// A line the format does not know.
struct TranscriptError : std::runtime_error {
    using std::runtime_error::runtime_error;
};

// Python's unicode_escape as run.py uses it: \r \n \t \\ \xHH ... to octets.
std::string unescape(std::string_view text);

Transcript parse_transcript(const std::string& path);
Transcript parse_transcript_text(const std::string& text, const std::string& name, const std::string& here);

// Why the transcript cannot run in-process, or nullopt.
std::optional<std::string> in_process_skip(const Transcript& t);

struct TranscriptRun {
    std::string replies;              // what the session wrote
    std::optional<std::string> error; // the first divergence; nullopt: passed
};

// Runs one mode ("local" or "network") in a fresh temporary spool and checks it.
TranscriptRun run_in_process(const Transcript& t, const std::string& mode);

} // namespace testutil
