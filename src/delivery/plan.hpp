// plan: what a queue run would do with a message, without doing it (runq
// --dry-run), and the tests a run makes of a message (due, expired), which
// the runner and the queue tools share. Pure.
#pragma once

#include "base/clock.hpp"
#include "delivery/route.hpp"
#include "model/envelope.hpp"

#include <chrono>
#include <optional>
#include <string>
#include <vector>

namespace smtpspool {

// Due for a run: no next_attempt, one that is not later than now, or one
// that cannot be read.
bool message_due(const Envelope& e, TimePoint now);

// The message's age when it has been in the queue for max_queue_time or
// longer (its next run is its last attempt); nullopt otherwise.
std::optional<std::chrono::seconds> message_expired_age(const Envelope& e, TimePoint now,
                                                        std::chrono::seconds max_queue_time);

struct RecipientPlan {
    std::string address;
    std::string domain;
    const Route* route = nullptr; // nullptr: no route covers the domain
    std::string next_hop;         // host:port, the maildir, the command
    std::string action;           // what the run would do, in words
};

struct MessagePlan {
    enum class Take { run, not_due, held };
    Take take = Take::run;
    std::optional<std::chrono::seconds> expired_age; // the run would be the last attempt
    std::vector<RecipientPlan> recipients;            // the pending ones, in envelope order
};

// What runq would do with the message: skip it (held; not due unless named
// or expired), or route each pending recipient.
MessagePlan plan_message(const Envelope& e, const std::vector<Route>& routes, TimePoint now,
                         std::chrono::seconds max_queue_time, bool named);

} // namespace smtpspool
