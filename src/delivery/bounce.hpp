// bounce: the delivery status notifications (RFC 3464 multipart/report) sent
// to the sender: failures for good, and the successes and delays that RFC 3461
// NOTIFY=SUCCESS and NOTIFY=DELAY ask for. Pure: which recipients to report is the runner's decision.
#pragma once

#include "base/clock.hpp"
#include "model/envelope.hpp"

#include <optional>
#include <string>
#include <vector>

namespace smtpspool {

// RFC 3464 §2.3.3, the actions we report (no "expanded").
enum class Action { failed, delivered, relayed, delayed };

struct ReportedRecipient {
    std::string address;
    std::string detail; // the remote reply or local reason
    bool expired = false;
    Action action = Action::failed;
    std::optional<std::string> orcpt; // "addr-type;address": Original-Recipient
};

struct BounceInput {
    const Envelope& original;
    std::vector<ReportedRecipient> recipients; // all failed, all delayed, or delivered and relayed
    std::string original_headers;              // the header section of message.eml, CRLF line ends
    std::string hostname;                      // our name: Reporting-MTA and MAILER-DAEMON@
    std::string id;                            // the bounce's own queue id
    TimePoint now;
    // RET=FULL: the whole of message.eml, returned as message/rfc822 instead
    // of the header section as text/rfc822-headers.
    std::optional<std::string> original_message = std::nullopt;
    // RET=FULL asked for a message too big to return (only its headers are).
    bool too_big_to_return = false;
    // A delay notice: until when delivery will be tried (RFC 3464 §2.3.9
    // Will-Retry-Until), the message's arrival plus --max-queue-time.
    std::optional<TimePoint> retry_until = std::nullopt;
    // When the recipients were last tried, when not now (Last-Attempt-Date).
    std::optional<TimePoint> last_attempt = std::nullopt;
};

// The whole message with CRLF line ends, a Received: header first.
std::string compose_bounce(const BounceInput& in);

// The RFC 3463 code in a reply ("550 5.1.1 ..." -> "5.1.1"), or the default.
std::string status_code_of(std::string_view detail, std::string_view fallback);

// The header fields at the start of a message, whole, at most max octets of
// them: up to the empty line that ends the header section, or to the first
// line that is no header field (a message without an empty line is not
// returned whole). Lines end in CRLF; a line with a bare CR or LF ends it too.
std::string header_section(std::string_view message_start, std::size_t max);

} // namespace smtpspool
