// schedule: how one runq pass shares its messages among worker processes
// (--concurrency N, --concurrency-per-host M). Pure.
//
// A message is handled whole by one worker (its lock, its recipients, its
// envelope), so a worker connects to every next hop of its messages. Next
// hops linked by a message with recipients at both form one group; a group
// gets up to M workers (each may talk to every hop of the group), all groups
// together at most N. So at most M workers ever connect to one next hop, and
// each keeps its connection for all its messages to that hop (in a phase).
#pragma once

#include <cstddef>
#include <string>
#include <vector>

namespace smtpspool {

struct PlannedMessage {
    std::string id;
    // The next hops of its pending recipients (the route's transport,
    // "smtp:mx.example:25"; for the mx transport the recipient's domain,
    // "mx:example.org"); empty when it needs none (not due, unreadable, no
    // route).
    std::vector<std::string> hops;
};

struct Lane {
    std::vector<std::string> hops; // sorted, each once: every next hop this worker may connect to
    std::vector<std::string> ids;  // its messages, in the order given
};

// The lanes (one worker each) for these messages. Every message is in
// exactly one lane; each lane keeps the messages' order; no hop is in more
// than per_host lanes and there are at most concurrency lanes (0 counts as 1).
// A group's messages go round-robin to its lanes; messages without hops go
// to the lanes with the fewest messages. No messages: no lanes.
std::vector<Lane> plan_lanes(const std::vector<PlannedMessage>& messages, std::size_t concurrency,
                             std::size_t per_host);

// A pass in two phases, one after the other: first the messages with at most
// one next hop (each hop its own group), then those with several. So a few
// messages with recipients at several hops do not join every hop into one
// group of M workers; the price is that the workers of the second phase
// open their connections anew. A phase without messages is left out.
std::vector<std::vector<Lane>> plan_phases(const std::vector<PlannedMessage>& messages, std::size_t concurrency,
                                           std::size_t per_host);

} // namespace smtpspool
