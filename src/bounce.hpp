// bounce: the delivery status notification (RFC 3464 multipart/report) sent to
// the sender of a message some of whose recipients failed for good. Pure.
#pragma once

#include "clock.hpp"
#include "envelope.hpp"

#include <string>
#include <vector>

namespace smtpspool {

struct FailedRecipient {
    std::string address;
    std::string detail; // the remote reply or local reason
    bool expired = false;
};

struct BounceInput {
    const Envelope& original;
    std::vector<FailedRecipient> failed;
    std::string original_headers; // the header section of message.eml, CRLF line ends
    std::string hostname;         // our name: Reporting-MTA and MAILER-DAEMON@
    std::string id;               // the bounce's own queue id
    TimePoint now;
};

// The whole message with CRLF line ends, a Received: header first.
std::string compose_bounce(const BounceInput& in);

// The RFC 3463 code in a reply ("550 5.1.1 ..." -> "5.1.1"), or the default.
std::string status_code_of(std::string_view detail, std::string_view fallback);

// The header section of a message (up to the first empty line), at most max octets.
std::string header_section(std::string_view message_start, std::size_t max);

} // namespace smtpspool
