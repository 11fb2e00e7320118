// policy_delegation: the pure parts of policy delegation (smtpspool(8),
// POLICY DELEGATION), the protocol of Postfix's policy services: a request is
// "name=value" lines ended by an empty line, the answer "action=..." and an
// empty line. Here: where a service is (its SPEC), the request's encoding,
// a bounded reader of the answer, what an action means, and how the actions
// of several services add up. No I/O: the conversation itself is
// server/policy_client, behind PolicyServicePort; policy/delegation asks it.
#pragma once

#include "base/result.hpp"
#include "smtp/smtp_reply.hpp"

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

namespace smtpspool {

// Where a policy service listens: "unix:/path" or "inet:host:port" (host a
// name, an IPv4 address or an IPv6 address in brackets).
struct PolicyServiceAddress {
    enum class Kind { unix_socket, inet };
    Kind kind = Kind::unix_socket;
    std::string path; // unix
    std::string host; // inet, without brackets
    std::string port; // inet, 1 to 65535
};
// nullopt with `why` set when `spec` is none of these.
std::optional<PolicyServiceAddress> parse_policy_service(std::string_view spec, std::string& why);

// One conversation with one policy service (server/policy_client).
class PolicyServicePort {
public:
    virtual ~PolicyServicePort() = default;
    // The SPEC, for the log.
    virtual const std::string& name() const = 0;
    // Sends `request` (encode_policy_request's) and returns the answer's
    // lines without the empty line that ends it, or why there is none (the
    // service cannot be reached, is too slow, or answered out of bounds).
    virtual Result<std::string> query(std::string_view request) = 0;
};

namespace delegation {

// An answer: at most this many octets, its empty line included.
inline constexpr std::size_t k_max_answer = 4096;
// The text of an action kept for a reply or the log.
inline constexpr std::size_t k_max_text = 400;
// PREPEND fields of one transaction (more are ignored, and logged).
inline constexpr std::size_t k_max_prepend_fields = 20;

// The request: one "name=value\n" line per attribute, then "\n". A value's
// control octets (CR, LF, NUL among them) become '?' (text::detail_line), so
// a value ends on its line whatever the client sent; names are ours.
using Attributes = std::vector<std::pair<std::string, std::string>>;
std::string encode_request(const Attributes& attributes);

// The answer as it arrives, in pieces of any size: lines end in LF (a CR
// before it is dropped); an empty line ends the answer. More than
// k_max_answer octets, or a NUL, is malformed.
class AnswerReader {
public:
    enum class Status { more, done, malformed };
    // Takes octets of `bytes` up to the end of the answer (`used` says how
    // many); after done or malformed, takes none.
    Status feed(std::string_view bytes, std::size_t& used);
    Status status() const { return m_status; }
    // done: the lines, each ending in LF, without the empty line.
    const std::string& lines() const { return m_lines; }
    void reset();

private:
    Status m_status = Status::more;
    std::string m_lines;
    std::size_t m_total = 0;
    std::size_t m_line_begin = 0; // where the line being read starts in m_lines
};

// The value of the answer's one "action" attribute. Every line must be
// "name=value"; other attributes are ignored; none or two actions, or a line
// without '=', is malformed (the error says why).
Result<std::string, std::string> answer_action(std::string_view lines);

enum class Stage { rcpt, end_of_message };

struct Action {
    enum class Kind {
        ok,              // accept: ask no further service
        dunno,           // no opinion: ask the next
        reject,          // 550 5.7.1 (REJECT, or an explicit 5xx reply)
        defer,           // 450 4.7.1 (DEFER, or an explicit 4xx reply)
        defer_if_permit, // 450 4.7.1 unless a later service rejects
        defer_if_reject, // a later rejection becomes 450 4.7.1
        prepend,         // add a header field on top of the message
        hold,            // store the message on hold
        discard,         // say 250, store nothing; ask no further service
        warn,            // log, and ask the next
        info,            // log, and ask the next
    };
    Kind kind = Kind::dunno;
    // reject, defer, defer_if_*: the reply it stands for, checked (code and
    // enhanced code of the right class, printable text, bounded).
    std::optional<Reply> reply;
    std::string header; // prepend: "Name: value", checked, without CRLF
    std::string text;   // the optional text, printable (text::printable_line), for the log
};

// An action value: the keyword (any case) and its optional text, or an
// explicit reply "NNN [X.Y.Z] text" with a 4yz or 5yz code (not 421 or 521)
// whose enhanced code, when given, has the code's class. The text of REJECT,
// DEFER and DEFER_IF_* may begin with an enhanced code of the class the
// action gives, which the reply then carries. PREPEND's text must be a
// header field line (a field name, ':', printable US-ASCII or HT, at most
// 998 octets). Any other value is an error, which says why.
Result<Action, std::string> parse_action(std::string_view value);

const char* kind_name(Action::Kind kind);

// How the answers of several services to one question add up, as one
// Postfix restriction list of check_policy_service entries followed by
// "permit" (our own checks all passed before the services are asked):
// services are asked in order until one says OK, DISCARD, REJECT or DEFER
// (or a reply); PREPEND, HOLD, WARN and INFO take effect and the next is
// asked. DEFER_IF_PERMIT turns any outcome but a rejection into its
// deferral; DEFER_IF_REJECT turns a later rejection into its deferral.
class Decision {
public:
    // Adds a service's action; true when the next service is to be asked.
    bool add(const Action& action);
    // A service that could not be asked, under the default action: nullopt
    // (dunno) goes on to the next; a reply ends the question with it.
    bool add_failure(const std::optional<Reply>& refusal);

    struct Outcome {
        std::optional<Reply> refusal; // nullopt: accepted
        std::string headers;          // PREPEND fields, each ending in CRLF, in order
        bool hold = false;
        bool discard = false;
        std::size_t headers_dropped = 0; // PREPENDs past k_max_prepend_fields
    };
    // The outcome; a refusal carries no effects.
    Outcome outcome() const;

private:
    std::optional<Reply> m_refusal;
    bool m_rejected = false; // m_refusal is a 5yz
    std::optional<Reply> m_defer_if_permit;
    std::optional<Reply> m_defer_if_reject;
    std::vector<std::string> m_headers;
    std::size_t m_dropped = 0;
    bool m_hold = false;
    bool m_discard = false;
};

// What a service that cannot be asked gives by default: 451 4.3.5.
Reply service_unavailable();

} // namespace delegation
} // namespace smtpspool
