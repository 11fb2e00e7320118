// queue_report: what the queue tools compute over envelopes: the filters that
// select messages (mailq, hold, release, requeue, bounce), the summary per
// destination domain (mailq --summary), the shape by domain and age (mailq
// --shape) and the gauges (stats), with their text and JSON forms. Pure: the
// envelopes are read by the caller; each report takes them one at a time, so
// a large queue is never held in memory.
#pragma once

#include "base/clock.hpp"
#include "model/envelope.hpp"

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace smtpspool {

// Every filter that is set must match (smtpspool(8), QUEUE ADMINISTRATION).
struct MessageFilter {
    bool held = false;                      // on hold
    std::optional<std::string> sender;      // contains, ASCII case ignored; "<>": the null sender
    std::optional<std::string> recipient;   // a pending recipient contains, ASCII case ignored
    std::optional<std::string> domain;      // a pending recipient's domain is it or under it
    std::optional<std::chrono::seconds> older_than;   // arrived more than this long ago
    std::optional<std::chrono::seconds> younger_than; // less than this long ago

    bool matches(const Envelope& e, TimePoint now) const;
    // Whether a pending recipient of e is one that --recipient and --domain
    // name (any pending one when neither is set): those that bounce gives up on.
    bool names(const Recipient& r, const Envelope& e) const;
};

// The time a message has been in the queue (0 when received_at is unreadable
// or in the future).
std::chrono::seconds message_age(const Envelope& e, TimePoint now);

// mailq --summary: per destination domain of the pending recipients, the
// messages (each once), the recipients, the volume (octets of those
// messages) and the ages of the oldest and the newest; the total counts each
// message once.
struct SummaryRow {
    std::string domain;
    std::size_t messages = 0;
    std::size_t recipients = 0;
    std::uint64_t octets = 0;
    std::chrono::seconds oldest{0};
    std::chrono::seconds newest{0};
};

class QueueSummary {
public:
    void add(const Envelope& e, TimePoint now);
    std::vector<SummaryRow> rows() const; // by domain
    const SummaryRow& total() const { return m_total; }

private:
    std::map<std::string, SummaryRow> m_domains;
    SummaryRow m_total{"TOTAL"};
};

std::string format_summary(const QueueSummary& summary, bool utf8);
std::string summary_json(const QueueSummary& summary);

// mailq --shape: pending recipients per destination domain in age buckets
// (minutes: up to 5, 10, 20, ... 1280, and older), like qshape.
inline constexpr std::array<long, 9> k_shape_minutes{5, 10, 20, 40, 80, 160, 320, 640, 1280};
inline constexpr std::size_t k_shape_buckets = k_shape_minutes.size() + 1;

struct ShapeRow {
    std::string domain;
    std::size_t total = 0;
    std::array<std::size_t, k_shape_buckets> counts{};
};

class QueueShape {
public:
    void add(const Envelope& e, TimePoint now);
    std::vector<ShapeRow> rows() const; // most recipients first, then by domain
    const ShapeRow& total() const { return m_total; }

private:
    std::map<std::string, ShapeRow> m_domains;
    ShapeRow m_total{"TOTAL"};
};

std::string format_shape(const QueueShape& shape, bool utf8);
std::string shape_json(const QueueShape& shape);

// smtpspool stats: the queue's gauges.
struct QueueStats {
    std::size_t due = 0;        // messages runq would take up now
    std::size_t waiting = 0;    // messages not due yet
    std::size_t held = 0;       // messages on hold
    std::size_t unreadable = 0; // messages whose envelope cannot be read
    std::size_t pending = 0;    // recipients
    std::size_t delivered = 0;
    std::size_t failed = 0;
    std::uint64_t octets = 0;           // message.eml of the readable messages
    std::chrono::seconds oldest{0};     // age of the oldest readable message
    std::size_t notices = 0;            // messages from the null sender (bounces, notices)

    void add(const Envelope& e, TimePoint now, std::chrono::seconds max_queue_time);
};

// The Prometheus text exposition format (version 0.0.4): HELP and TYPE for
// each metric, every sample labelled spool="...".
std::string prometheus_text(const QueueStats& stats, std::string_view spool);
std::string stats_json(const QueueStats& stats, std::string_view spool);

} // namespace smtpspool
