// session_fixture: a Session wired to MemorySpool, ScriptedPolicy, RecordingLog
// and a FixedClock.
#pragma once

#include "feed.hpp"
#include "smtp/session.hpp"
#include "testutil.hpp"

#include <map>
#include <string>
#include <vector>

namespace testutil {

// A PolicyPort that answers as the test says and records what it was asked.
class ScriptedPolicy final : public PolicyPort {
public:
    std::optional<Reply> check_sender(const PolicyFacts& facts) override
    {
        asked.push_back("sender " + std::string(facts.sender) + " helo=" + std::string(facts.helo));
        tls_seen.push_back(facts.tls);
        return sender_refusal;
    }
    RecipientVerdict check_recipient(const PolicyFacts& facts, std::string_view recipient, bool local) override
    {
        asked.push_back("rcpt " + std::string(recipient) + (local ? " local" : " remote") + " after " +
                        std::to_string(facts.recipients.size()));
        tls_seen.push_back(facts.tls);
        if (auto it = recipients.find(std::string(recipient)); it != recipients.end()) {
            return it->second;
        }
        return {std::nullopt, {std::string(recipient)}};
    }
    MessageVerdict check_message(const PolicyFacts& facts) override
    {
        asked.push_back("message " + std::string(facts.id) + " size=" + std::to_string(facts.size) +
                        " rcpts=" + std::to_string(facts.recipients.size()));
        return message;
    }
    std::optional<Reply> sender_refusal;
    std::map<std::string, RecipientVerdict> recipients;
    MessageVerdict message;
    std::vector<std::string> asked;
    std::vector<bool> tls_seen; // PolicyFacts::tls of each sender and recipient check
};

inline SessionConfig test_config(bool local = false)
{
    SessionConfig c;
    c.hostname = "mx.test";
    c.local_domains = {"mx.test", "localhost"};
    c.max_message_size = 1000;
    c.max_recipients = 5;
    c.max_line_length = 600;
    c.max_errors = 10;
    c.peer.local = local;
    if (!local) {
        c.peer.address = "192.0.2.7";
        c.peer.port = 40000;
    }
    c.may_relay = local;
    return c;
}

struct SessionFixture {
    explicit SessionFixture(SessionConfig config = test_config())
        : clock(TimePoint(std::chrono::seconds(1795000000))), session(std::move(config), spool, policy, log, clock)
    {
        wire = session.start().wire;
    }
    // Sends bytes, returns what the server wrote in reply.
    std::string send(std::string_view bytes)
    {
        Fed fed = feed_until_consumed(session, bytes);
        feeds += fed.feeds;
        closed = closed || fed.close;
        if (fed.start_tls) {
            // A transport does the handshake now; the test says how it went.
            start_tls = true;
            after_starttls = std::string(bytes.substr(fed.consumed));
        }
        wire += fed.wire;
        return fed.wire;
    }
    int feeds = 0;
    bool start_tls = false;     // the session asked for the handshake
    std::string after_starttls; // the input after STARTTLS, not fed
    // Reply codes of each final reply line in `out`.
    static std::vector<int> codes(std::string_view out)
    {
        std::vector<int> result;
        std::size_t pos = 0;
        while (pos < out.size()) {
            std::size_t end = out.find("\r\n", pos);
            std::string_view line = out.substr(pos, end - pos);
            if (line.size() >= 4 && line[3] == ' ') {
                result.push_back(std::stoi(std::string(line.substr(0, 3))));
            }
            pos = end == std::string_view::npos ? out.size() : end + 2;
        }
        return result;
    }

    MemorySpool spool;
    ScriptedPolicy policy;
    RecordingLog log;
    FixedClock clock;
    Session session;
    std::string wire;
    bool closed = false;
};

} // namespace testutil
