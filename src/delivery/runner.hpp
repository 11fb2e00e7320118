// runner: one pass of `smtpspool runq` over the queue. Each message is taken
// under an exclusive flock(2) on its directory, its pending recipients are
// delivered through their routes, and its envelope is rewritten atomically
// (or the message removed when nothing is pending). Bounces are queued here.
#pragma once

#include "delivery/bounce.hpp"
#include "base/clock.hpp"
#include "base/log.hpp"
#include "delivery/route.hpp"
#include "delivery/transport.hpp"

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace smtpspool {

struct RunnerConfig {
    std::string spool;
    std::string hostname;
    std::vector<Route> routes;
    std::vector<std::chrono::seconds> schedule;
    std::chrono::seconds max_queue_time{5 * 86400};
};

struct RunStats {
    std::size_t messages = 0;   // looked at
    std::size_t attempted = 0;  // delivery tried
    std::size_t locked = 0;     // skipped: another runner has it
    std::size_t not_due = 0;    // skipped: next_attempt in the future
    std::size_t unreadable = 0; // skipped: envelope malformed
    std::size_t delivered = 0;  // recipients
    std::size_t deferred = 0;   // recipients
    std::size_t failed = 0;     // recipients
    std::size_t bounces = 0;    // notifications queued
    std::size_t removed = 0;    // messages done with
    std::size_t errors = 0;     // local failures (envelope not updated)
};

using TransportFactory = std::function<std::unique_ptr<Transport>(const TransportSpec&)>;

class Runner {
public:
    Runner(RunnerConfig config, TransportFactory factory, LogSink& log, const Clock& clock);
    ~Runner();
    // ids empty: every message in the queue that is due. With ids: those, due or not.
    RunStats run(const std::vector<std::string>& ids);

private:
    void process(const std::string& id, bool force, RunStats& stats);
    bool queue_notice(int dir, const Envelope& e, const std::vector<ReportedRecipient>& reported, TimePoint now,
                      RunStats& stats);
    Transport& transport_for(const TransportSpec& spec);
    void finish_transports();

    RunnerConfig m_config;
    TransportFactory m_factory;
    LogSink& m_log;
    const Clock& m_clock;
    std::map<std::string, std::unique_ptr<Transport>> m_transports;
};

} // namespace smtpspool
