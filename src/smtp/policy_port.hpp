// policy_port: what the session asks before it takes a sender, a recipient or
// a message (smtpspool(8), POLICY). The session stays pure: lists, aliases and
// hook programs live behind this interface (Policy in policy.hpp); the tests'
// fakes and AcceptAll implement it too.
#pragma once

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
};

class PolicyPort {
public:
    virtual ~PolicyPort() = default;

    // MAIL FROM: nullopt accepts.
    virtual std::optional<Reply> check_sender(const PolicyFacts& facts) = 0;

    // RCPT TO (relaying already checked): a refusal, or the addresses to
    // deliver to in its place (the recipient itself when nothing replaces it).
    struct RecipientVerdict {
        std::optional<Reply> refusal;
        std::vector<std::string> addresses;
    };
    virtual RecipientVerdict check_recipient(const PolicyFacts& facts, std::string_view recipient,
                                             bool local_domain) = 0;

    // After the data, before the commit: a refusal, or header lines (each
    // ending in CRLF) to put at the top of the stored message.
    struct MessageVerdict {
        std::optional<Reply> refusal;
        std::string headers;
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
