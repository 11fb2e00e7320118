// policy_port: what the session asks before it takes a sender, a recipient or
// a message (smtpspool(8), POLICY). The session stays pure: lists, aliases and
// hook programs live behind this interface (Policy in policy.hpp); the tests'
// fakes and AcceptAll implement it too.
#pragma once

#include "model/envelope.hpp"
#include "model/peer.hpp"
#include "smtp/smtp_reply.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace smtpspool {

// The session's facts at the moment of a check; views into the session.
struct PolicyFacts {
    const Peer& peer;
    bool may_relay;
    std::string_view helo;
    std::string_view sender;                    // "" for the null sender
    const std::vector<std::string>& recipients; // accepted so far, as the client named them
    std::string_view id;                        // the queue id: data stage only
    std::uint64_t size = 0;                     // message octets: data stage only
    bool tls = false;                           // the session is encrypted
    // For policy services (smtpspool(8), POLICY DELEGATION).
    bool esmtp = false;                         // EHLO, not HELO
    std::string_view auth_user = {};            // "" unless the client authenticated
    const TlsInfo* tls_info = nullptr;          // the TLS session, when encrypted
    std::uint64_t declared_size = 0;            // MAIL's SIZE=, 0 when not given
    std::uint64_t transaction = 0;              // counts the session's transactions from 1
};

class PolicyPort {
public:
    virtual ~PolicyPort() = default;

    // MAIL FROM: nullopt accepts.
    virtual std::optional<Reply> check_sender(const PolicyFacts& facts) = 0;

    // RCPT TO (relaying already checked): a refusal, or the addresses to
    // deliver to in its place (the recipient itself when nothing replaces it).
    // With an accepted recipient, what it does to the message (policy
    // services): header lines (each ending in CRLF) for the top of the
    // stored message, store it on hold, or say 250 and store nothing.
    struct RecipientVerdict {
        std::optional<Reply> refusal;
        std::vector<std::string> addresses;
        std::string headers = {};
        bool hold = false;
        bool discard = false;
    };
    virtual RecipientVerdict check_recipient(const PolicyFacts& facts, std::string_view recipient,
                                             bool local_domain) = 0;

    // After the data, before the commit: a refusal, or header lines (each
    // ending in CRLF) to put at the top of the stored message; the message
    // may be stored on hold, or not at all (discard: the client hears 250).
    struct MessageVerdict {
        std::optional<Reply> refusal;
        std::string headers;
        bool hold = false;
        bool discard = false;
    };
    virtual MessageVerdict check_message(const PolicyFacts& facts) = 0;
};

// No policy: every sender, recipient and message is taken.
class AcceptAll final : public PolicyPort {
public:
    std::optional<Reply> check_sender(const PolicyFacts&) override { return std::nullopt; }
    RecipientVerdict check_recipient(const PolicyFacts&, std::string_view recipient, bool) override
    {
        return {std::nullopt, {std::string(recipient)}};
    }
    MessageVerdict check_message(const PolicyFacts&) override { return {}; }
};

} // namespace smtpspool
