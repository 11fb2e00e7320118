// smtp_command: one command line -> verb and argument; MAIL/RCPT arguments ->
// path and ESMTP parameters (SIZE, BODY, SMTPUTF8, the DSN ones). Pure. Refusals come back as Reply values.
#pragma once

#include "model/envelope.hpp"
#include "smtp/smtp_address.hpp"
#include "smtp/smtp_nfa.hpp"
#include "smtp/smtp_reply.hpp"

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace smtpspool {

struct Command {
    Verb verb = Verb::unknown;
    std::string_view argument; // after the first space; may be empty
    bool has_argument = false;
};

// line has no CRLF.
Command parse_command(std::string_view line);

// A first line that looks like an HTTP request: the session ends at once.
bool is_http_request(std::string_view line);

struct MailCommand {
    Path path;
    Body body = Body::seven_bit;
    bool smtputf8 = false;
    std::size_t declared_size = 0;    // 0 when no SIZE= was given
    std::string ret;                  // RFC 3461 §4.3: "FULL", "HDRS", or "" when not given
    std::optional<std::string> envid; // RFC 3461 §4.4, decoded from xtext
};

struct RcptCommand {
    Path path;
    // RFC 3461 §4.1: "NEVER", or some of "SUCCESS", "FAILURE", "DELAY".
    std::optional<std::vector<std::string>> notify;
    std::optional<std::string> orcpt; // RFC 3461 §4.2: "addr-type;decoded address"
};

struct MailOptions {
    bool esmtp = true;        // false after HELO: no parameters allowed
    std::size_t max_size = 0; // SIZE= above this is refused (RFC 1870)
    bool auth = false;        // AUTH is offered: the AUTH= parameter is accepted (RFC 4954 §5)
};

std::variant<MailCommand, Reply> parse_mail(std::string_view argument, const MailOptions& options);
std::variant<RcptCommand, Reply> parse_rcpt(std::string_view argument, bool esmtp, bool smtputf8);

// RFC 3030 §2: "BDAT" SP chunk-size [SP "LAST"], chunk-size = 1*DIGIT (we take
// at most 20 digits, a value below 2^64).
struct BdatCommand {
    std::uint64_t size = 0;
    bool last = false;
};
std::variant<BdatCommand, Reply> parse_bdat(std::string_view argument);
// The chunk size alone, when the argument starts with one: the octets that
// follow the command line, to be read and discarded even when BDAT is refused.
std::optional<std::uint64_t> bdat_chunk_size(std::string_view argument);

} // namespace smtpspool
