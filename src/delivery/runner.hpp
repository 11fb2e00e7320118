// runner: one pass of `smtpspool runq` over the queue. Each message is taken
// under an exclusive flock(2) on its directory (SpoolEntry), its pending
// recipients are delivered through their routes, and its envelope is
// rewritten atomically (or the message removed when nothing is pending).
// Bounces are queued here, through SpoolWriter.
#pragma once

#include "delivery/bounce.hpp"
#include "base/clock.hpp"
#include "base/log.hpp"
#include "delivery/route.hpp"
#include "delivery/schedule.hpp"
#include "delivery/deliverer.hpp"
#include "base/fs.hpp"
#include "spool/spool_entry.hpp"

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace smtpspool {

struct RunnerConfig {
    std::string spool;
    std::string hostname;
    std::vector<Route> routes;
    std::vector<std::chrono::seconds> schedule;
    std::chrono::seconds max_queue_time{5 * 86400};
    // Worker processes of one pass, in all and per next hop (schedule.hpp);
    // 1: the pass runs in this process.
    std::size_t concurrency = 1;
    std::size_t concurrency_per_host = 1;
    // Send one "delayed" notice (RFC 3464) about a message that has waited
    // this long, to the recipients whose NOTIFY allows it; none: never.
    std::optional<std::chrono::seconds> delay_warning{};
};

struct RunStats {
    std::size_t messages = 0;   // looked at
    std::size_t attempted = 0;  // delivery tried
    std::size_t locked = 0;     // skipped: another runner has it
    std::size_t not_due = 0;    // skipped: next_attempt in the future
    std::size_t held = 0;       // skipped: on hold
    std::size_t unreadable = 0; // skipped: envelope malformed
    std::size_t delivered = 0;  // recipients
    std::size_t deferred = 0;   // recipients
    std::size_t failed = 0;     // recipients
    std::size_t bounces = 0;    // notifications queued
    std::size_t delayed = 0;    // of them, delay notices
    std::size_t removed = 0;    // messages done with
    std::size_t errors = 0;     // local failures (envelope not updated)
    // Recipients deferred because no route covers their domain, by domain:
    // logged once per domain at the end of the run, not per message.
    std::map<std::string, std::size_t> no_route;
    std::size_t workers = 0; // worker processes the pass used (0: none, it ran in runq itself)

    // Another part of the same pass (a worker's) added to this one.
    void add(const RunStats& other);
    // One line per count and per no_route domain, and back (for the pipe from
    // a worker to the runner); nullopt when malformed.
    std::string serialize() const;
    static std::optional<RunStats> parse(std::string_view text);
};

using DelivererFactory = std::function<std::unique_ptr<Deliverer>(const TransportSpec&)>;

// Told how a pass goes: the counts so far and the messages it has to look
// at; after each message in runq's own process, after each phase of worker
// processes, and once at the start.
using RunProgress = std::function<void(const RunStats& so_far, std::size_t total)>;

class Runner {
public:
    Runner(RunnerConfig config, DelivererFactory factory, LogSink& log, const Clock& clock);
    // With the file system calls of the spool made through fs (tests inject failures).
    Runner(RunnerConfig config, DelivererFactory factory, LogSink& log, const Clock& clock, Fs& fs);
    ~Runner();
    // ids empty: every message in the queue that is due. With ids: those, due or not.
    // With concurrency above 1, the messages are shared among worker
    // processes forked here (plan_lanes), each with its own deliverers.
    RunStats run(const std::vector<std::string>& ids);
    void on_progress(RunProgress progress) { m_progress = std::move(progress); }
    // smtpspool bounce: gives up now on the pending recipients of the
    // message that `entry` holds locked, whose envelope is e, for which
    // `which` holds, with the error `reason`; tells the sender as a run does,
    // and removes the message when none is left pending, else rewrites its
    // envelope with next_attempt as it was (when the notice cannot be queued,
    // those recipients stay pending too).
    void give_up(SpoolEntry& entry, Envelope& e, const std::string& reason,
                 const std::function<bool(const Recipient&)>& which, RunStats& stats);

private:
    struct Locked {
        SpoolEntry entry; // locked until destroyed
        Envelope envelope;
    };
    struct Routed {
        std::map<std::string, std::vector<std::size_t>> by_route; // route's transport text -> recipient indices
        std::map<std::string, const TransportSpec*> specs;
        std::optional<std::chrono::seconds> expired_age; // set when this is the message's last attempt
    };
    struct Reports {
        std::vector<ReportedRecipient> failed;    // RFC 3461: those whose NOTIFY asks for FAILURE
        std::vector<ReportedRecipient> succeeded; // and SUCCESS, when we are the last to know
        std::vector<ReportedRecipient> delayed;   // and DELAY (or says nothing), once per message
    };

    // The steps of one message: lock and load, due or not (an expired message
    // is always taken, for a last attempt), route each pending recipient,
    // deliver, expire what is still pending when the message is expired, tell
    // the sender, remove or reschedule.
    void process(const QueueDir& queue, const std::string& id, bool force, RunStats& stats);
    // The messages and the next hops of their pending recipients, as the
    // envelopes say without their locks (a worker reads again under the lock).
    std::vector<PlannedMessage> survey(const QueueDir& queue, const std::vector<std::string>& ids, bool force);
    // Forks one worker per lane, waits for all, adds up their counts.
    void run_lanes(const QueueDir& queue, const std::vector<Lane>& lanes, bool force, RunStats& stats);
    void add_delay_warnings(const Envelope& e, TimePoint now, Reports& reports) const;
    std::optional<Locked> load_locked(const QueueDir& queue, const std::string& id, RunStats& stats);
    void expire_unreadable(SpoolEntry& entry, const std::string& id, RunStats& stats);
    bool is_due(const Envelope& e, TimePoint now) const;
    std::optional<std::chrono::seconds> expired_age(const Envelope& e, TimePoint now) const;
    void expire(const Envelope& e, Recipient& r, std::chrono::seconds age, Reports& reports, RunStats& stats);
    Routed expire_and_route(Envelope& e, TimePoint now, Reports& reports, RunStats& stats);
    // Returns the longest wait a next hop asked for (RecipientOutcome::retry_after).
    std::chrono::seconds deliver_routed(const SpoolEntry& entry, Envelope& e, const Routed& routed,
                                        Reports& reports, RunStats& stats);
    void send_notices(const SpoolEntry& entry, Envelope& e, const Reports& reports, TimePoint now, RunStats& stats);
    void finish_message(SpoolEntry& entry, Envelope& e, TimePoint now, RunStats& stats,
                        std::chrono::seconds asked = std::chrono::seconds(0));
    bool queue_notice(const SpoolEntry& entry, const Envelope& e, const std::vector<ReportedRecipient>& reported,
                      TimePoint now, RunStats& stats);
    Deliverer& deliverer_for(const TransportSpec& spec);
    void finish_deliverers();

    RunnerConfig m_config;
    DelivererFactory m_factory;
    LogSink& m_log;
    const Clock& m_clock;
    PosixFs m_posix_fs;
    Fs& m_fs;
    std::map<std::string, std::unique_ptr<Deliverer>> m_deliverers;
    RunProgress m_progress;
};

} // namespace smtpspool
