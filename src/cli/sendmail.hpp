// sendmail: the sendmail(8) command-line interface (smtpspool(8), SENDMAIL):
// `smtpspool sendmail [FLAGS] [RECIPIENT...]`, or the binary under the name
// sendmail, queues the message on standard input with the same durable commit
// as serve; -bp, -q and -bs reach mailq, runq and serve.
#pragma once

#include "cli/config.hpp"

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace smtpspool {

struct SendmailOptions {
    // -bm, -bp, -q, -bs, -bi (newaliases: check --aliases), -bv (verify the
    // recipients, queue nothing).
    enum class Mode { submit, list_queue, run_queue, smtp, check_aliases, verify };
    Mode mode = Mode::submit;
    std::optional<std::string> sender;    // -f
    std::optional<std::string> full_name; // -F
    bool extract = false;                 // -t: recipients from To:, Cc:, Bcc: (or Resent-*)
    bool dot_ends = true;                 // without -i/-oi a line "." ends the message
    std::optional<std::string> interval;  // -qTIME
    bool quiet = false;                   // -eq, -oeq: errors by the exit status only
    // RFC 3461 DSN requests, as a network client makes them with NOTIFY, RET
    // and ENVID: -N (every recipient's), -R, -V (xtext, stored decoded).
    std::optional<std::vector<std::string>> notify;
    std::optional<std::string> ret;   // "FULL" | "HDRS"
    std::optional<std::string> envid;
    std::vector<std::string> recipients;
    std::vector<std::string> ours; // our own long options, for parse_config
};

// Parses sendmail's flags. Pure; the string is a usage error.
std::variant<SendmailOptions, std::string> parse_sendmail_args(const std::vector<std::string>& args);

// The addresses of an RFC 5322 address list (a To:, Cc: or Bcc: field body):
// display names, comments, quoted strings and groups dropped. Pure.
std::vector<std::string> header_addresses(std::string_view field_body);

// Splits bytes into lines: LF, CR or CRLF end a line, and every line comes
// out ending in CRLF. A line longer than the piece size comes out in pieces
// of that many octets, the last one with the line end, so that no line is
// held whole in memory. Pure; the same pieces whatever the chunking of the
// input.
class LineSplitter {
public:
    explicit LineSplitter(std::size_t max_piece = static_cast<std::size_t>(-1)) : m_max(max_piece) {}
    // The size of the pieces from now on (at least 1).
    void set_max_piece(std::size_t max_piece) { m_max = max_piece < 1 ? 1 : max_piece; }
    // Moves bytes from `input` into `line` (cleared first when the previous
    // call completed it); true when `line` is complete: a whole line, or a
    // piece of one.
    bool take(std::string_view& input, std::string& line);
    // At the end of input: true (and `line` completed) when bytes were left
    // without their line end.
    bool finish(std::string& line);
    // The piece last completed begins a line (else it continues the one
    // before), and ends it (with CRLF).
    bool starts_line() const { return m_starts; }
    bool ends_line() const { return !m_open; }

private:
    std::size_t m_max;
    bool m_after_cr = false;
    bool m_complete = true;
    bool m_open = false;   // a piece was completed without the line end
    bool m_starts = true;  // the current piece begins a line
};

// The header section of a submitted message, a line (ending CRLF) at a time:
// whole fields (folded lines joined), up to the empty line or the first line
// that is not a field, where the body starts. A first line "From " or
// ">From " (the separator of an mbox file, as git format-patch --stdout and
// mbox exports begin) is not part of the message: it is skipped. Pure.
class HeaderSection {
public:
    struct Field {
        std::string name; // lower case
        std::string text; // the whole field, folded lines included, each ending CRLF
    };
    enum class Step { more, body, too_long };
    Step add(const std::string& line);
    std::vector<Field> fields;
    std::string first_body_line; // set at Step::body: the empty line, or the body's first line
    std::size_t size = 0;        // octets taken into the fields
    bool skipped_from_line = false; // the first line was an mbox "From " line

private:
    bool m_first = true;
};

// A command-line or header address as a mailbox: bare local parts get
// `hostname`; "" when it is not an address. Pure.
std::string submission_mailbox(std::string_view text, const std::string& hostname, bool& non_ascii);

// Reads the message from fd and queues it; the exit status (sysexits(3)).
// What the fields sendmail adds to a submission say.
struct LocalSubmission {
    std::string hostname;
    std::string id;   // the queue id
    std::string date; // RFC 5322 date-time of the submission
    std::string user; // login name
    long uid = 0;
    std::string sender; // "" for the null sender
    std::optional<std::string> full_name; // -F
};

// The header section as stored: our Received: field first (RFC 5321 §4.4
// for a local submission: by us, with the user's id), the fields given but
// Bcc: and Resent-Bcc:, then Date:, Message-ID: and From: when they were
// missing. Pure.
std::string local_header_section(const HeaderSection& header, const LocalSubmission& submission);

int run_sendmail(const SendmailOptions& options, Config config, int fd);

// -bi (newaliases): reads --aliases (when set) and reports the first error; 0
// or 78 (EX_CONFIG).
int run_check_aliases(const SendmailOptions& options, Config config);

// -bv: each command-line recipient, as a submission would take it (address,
// --aliases), with the route runq would deliver it by; nothing is read or
// queued. 0 when every one has a route, 67 (EX_NOUSER) when one has none or
// its alias cannot be expanded, 65 for one that is not an address, 64 when
// none is given.
int run_verify(const SendmailOptions& options, Config config);

} // namespace smtpspool
