// sendmail: the sendmail(8) command-line interface (smtpspool(8), SENDMAIL):
// `smtpspool sendmail [FLAGS] [RECIPIENT...]`, or the binary under the name
// sendmail, queues the message on standard input with the same durable commit
// as serve; -bp, -q and -bs reach mailq, runq and serve.
#pragma once

#include "config.hpp"

#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace smtpspool {

struct SendmailOptions {
    enum class Mode { submit, list_queue, run_queue, smtp };
    Mode mode = Mode::submit;
    std::optional<std::string> sender;    // -f
    std::optional<std::string> full_name; // -F
    bool extract = false;                 // -t: recipients from To:, Cc:, Bcc:
    bool dot_ends = true;                 // without -i/-oi a line "." ends the message
    std::optional<std::string> interval;  // -qTIME
    std::vector<std::string> recipients;
    std::vector<std::string> ours; // our own long options, for parse_config
};

// Parses sendmail's flags. Pure; the string is a usage error.
std::variant<SendmailOptions, std::string> parse_sendmail_args(const std::vector<std::string>& args);

// The addresses of an RFC 5322 address list (a To:, Cc: or Bcc: field body):
// display names, comments, quoted strings and groups dropped. Pure.
std::vector<std::string> header_addresses(std::string_view field_body);

// Reads the message from fd and queues it; the exit status (sysexits(3)).
int run_sendmail(const SendmailOptions& options, Config config, int fd);

} // namespace smtpspool
