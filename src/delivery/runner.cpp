// runner: lock, load, expire, route, deliver, record, bounce, remove.
#include "delivery/runner.hpp"
#include "spool/envelope_json.hpp"

#include "delivery/bounce.hpp"
#include "delivery/plan.hpp"
#include "smtp/dsn.hpp"
#include "base/fs.hpp"
#include "base/limits.hpp"
#include "base/text.hpp"
#include "spool/spool.hpp"
#include "spool/spool_entry.hpp"

#include <algorithm>
#include <cerrno>
#include <tuple>
#include <unistd.h>

namespace smtpspool {
namespace {

// What the envelope keeps of each last error: one line, at most
// limits::k_max_last_error octets (the bound on the envelope's growth rests on it).
void bound_last_errors(Envelope& e)
{
    for (Recipient& r : e.recipients) {
        if (r.last_error) {
            r.last_error = text::detail_line(*r.last_error, limits::k_max_last_error);
        }
    }
}

bool has_high_bit(std::string_view s)
{
    for (char c : s) {
        if (static_cast<unsigned char>(c) >= 0x80) {
            return true;
        }
    }
    return false;
}

} // namespace

Runner::Runner(RunnerConfig config, DelivererFactory factory, LogSink& log, const Clock& clock)
    : Runner(std::move(config), std::move(factory), log, clock, m_posix_fs)
{
}

Runner::Runner(RunnerConfig config, DelivererFactory factory, LogSink& log, const Clock& clock, Fs& fs)
    : m_config(std::move(config)), m_factory(std::move(factory)), m_log(log), m_clock(clock), m_fs(fs)
{
}

Runner::~Runner() { finish_deliverers(); }

void Runner::finish_deliverers()
{
    for (auto& [key, t] : m_deliverers) {
        t->finish();
    }
    m_deliverers.clear();
}

Deliverer& Runner::deliverer_for(const TransportSpec& spec)
{
    auto it = m_deliverers.find(spec.text);
    if (it == m_deliverers.end()) {
        it = m_deliverers.emplace(spec.text, m_factory(spec)).first;
    }
    return *it->second;
}

RunStats Runner::run(const std::vector<std::string>& ids)
{
    RunStats stats;
    auto queue = QueueDir::open(m_config.spool, m_fs);
    // Named ids need no listing: each is looked up as it comes.
    auto todo = !queue ? Result<std::vector<std::string>>(queue.error())
                : ids.empty() ? queue.value().list()
                              : Result<std::vector<std::string>>(ids);
    if (!todo) {
        m_log.log(LogLine("runq-error").add("reason", todo.error().message));
        ++stats.errors;
        return stats;
    }
    for (const std::string& id : todo.value()) {
        process(queue.value(), id, !ids.empty(), stats);
    }
    finish_deliverers();
    for (const auto& [domain, recipients] : stats.no_route) {
        m_log.log(LogLine("no-route").add("domain", domain).add("deferred", recipients));
    }
    m_log.log(LogLine("runq-done")
                  .add("messages", stats.messages)
                  .add("attempted", stats.attempted)
                  .add("delivered", stats.delivered)
                  .add("deferred", stats.deferred)
                  .add("failed", stats.failed)
                  .add("bounces", stats.bounces)
                  .add("removed", stats.removed)
                  .add("locked", stats.locked)
                  .add("held", stats.held));
    return stats;
}

// Queues one notification about `reported` (all failed, or none) to the
// sender of e. RFC 3461 §4.3: RET=FULL returns the whole message in a failure
// notice; otherwise, and in success notices, the header section.
bool Runner::queue_notice(const SpoolEntry& entry, const Envelope& e, const std::vector<ReportedRecipient>& reported,
                          TimePoint now, RunStats& stats)
{
    const bool failure = reported.front().action == Action::failed;
    // A BINARYMIME message cannot travel inside a notice sent with DATA:
    // only its header section is returned. Nor does a limited envelope's
    // (from a client that could not relay) return more than a little of it.
    const bool full = failure && e.dsn_ret == "FULL" && e.body != Body::binary_mime && !e.dsn_limited;
    const std::size_t header_max = e.dsn_limited ? limits::k_limited_header_section : limits::k_notice_header_section;
    SpoolWriter writer(m_config.spool, m_fs, m_clock, static_cast<long>(::getpid()));
    auto bid = writer.begin();
    auto text = entry.read_message(full ? limits::k_max_returned_message : limits::k_notice_read);
    Result<void> done = bid ? Result<void>{} : Result<void>{bid.error()};
    if (bid) {
        std::string head = text ? header_section(text.value(), header_max) : "";
        const bool fits = text && text.value().size() <= limits::k_max_returned_message;
        std::optional<std::string> whole;
        if (full && fits) {
            whole.emplace(std::move(text.value()));
        }
        BounceInput in{e,           reported, std::move(head),  m_config.hostname,
                       bid.value(), now,      std::move(whole), full && text && !fits};
        std::string report = compose_bounce(in);
        done = writer.append(report);
        if (done) {
            Envelope b;
            b.received_at = rfc3339_utc(now);
            b.hostname = m_config.hostname;
            b.client.helo = m_config.hostname;
            b.mail_from = "";
            b.body = has_high_bit(report) ? Body::eight_bit_mime : Body::seven_bit;
            b.smtputf8 = has_high_bit(e.mail_from);
            Recipient to;
            to.address = e.mail_from;
            b.recipients = {to};
            done = writer.commit(b);
        }
    }
    if (!done) {
        m_log.log(LogLine("bounce-error").add("id", e.id).add("reason", done.error().message));
        ++stats.errors;
        return false;
    }
    ++stats.bounces;
    m_log.log(LogLine("bounce")
                  .add("id", e.id)
                  .add("bounce_id", bid.value())
                  .add("to", e.mail_from)
                  .add("kind", failure ? "failure" : "success"));
    return true;
}

// A message whose envelope cannot be read (damaged, or too large) can be
// neither delivered nor bounced; it is reported at every run, and once its
// id's arrival time is --max-queue-time ago it is removed, like an expired
// message, with the log line unreadable-expired. An id without that time (not
// made by smtpspool) is only reported.
void Runner::expire_unreadable(SpoolEntry& entry, const std::string& id, RunStats& stats)
{
    // YYYYMMDDTHHMMSS, the first 15 characters of the ids SpoolWriter makes.
    if (id.size() < 15 || id[8] != 'T') {
        return;
    }
    std::string stamp = id.substr(0, 4) + "-" + id.substr(4, 2) + "-" + id.substr(6, 2) + "T" + id.substr(9, 2) + ":" +
                        id.substr(11, 2) + ":" + id.substr(13, 2) + "Z";
    auto arrived = parse_rfc3339_utc(stamp);
    if (!arrived || m_clock.now() - *arrived < m_config.max_queue_time) {
        return;
    }
    if (auto r = entry.remove(); !r) {
        ++stats.errors;
        m_log.log(LogLine("runq-error").add("id", id).add("reason", r.error().message));
        return;
    }
    ++stats.removed;
    m_log.log(LogLine("unreadable-expired").add("id", id).add("arrived", stamp));
}

std::optional<Runner::Locked> Runner::load_locked(const QueueDir& queue, const std::string& id, RunStats& stats)
{
    auto entry = queue.entry(id);
    if (!entry) {
        if (entry.error().errnum != ENOENT) { // gone: delivered or removed meanwhile
            ++stats.unreadable;
            m_log.log(LogLine("unreadable").add("id", id).add("reason", entry.error().message));
        }
        return std::nullopt;
    }
    auto locked = entry.value().try_lock();
    if (!locked || !locked.value()) {
        ++stats.locked;
        m_log.log(LogLine("locked").add("id", id));
        return std::nullopt;
    }
    // Read again under the lock: another runner may have just finished with it.
    auto e = entry.value().load();
    if (!e) {
        if (e.error().errnum != ENOENT) { // removed while we waited for the directory
            ++stats.unreadable;
            m_log.log(LogLine("unreadable").add("id", id).add("reason", e.error().message));
            expire_unreadable(entry.value(), id, stats);
        }
        return std::nullopt;
    }
    return Locked{std::move(entry.value()), std::move(e.value())};
}

bool Runner::is_due(const Envelope& e, TimePoint now) const { return message_due(e, now); }

std::optional<std::chrono::seconds> Runner::expired_age(const Envelope& e, TimePoint now) const
{
    return message_expired_age(e, now, m_config.max_queue_time);
}

void Runner::expire(const Envelope& e, Recipient& r, std::chrono::seconds age, Reports& reports, RunStats& stats)
{
    r.status = RecipientStatus::failed;
    std::string last = r.last_error ? "; last error: " + *r.last_error : "";
    r.last_error = "message expired after " + format_age(age) + " in the queue" + last;
    if (notify_failure(r.notify)) {
        reports.failed.push_back({r.address, *r.last_error, true, Action::failed, r.orcpt});
    }
    ++stats.failed;
    m_log.log(LogLine("expired").add("id", e.id).add("to", r.address).add("age", format_age(age)));
}

Runner::Routed Runner::expire_and_route(Envelope& e, TimePoint now, Reports& reports, RunStats& stats)
{
    Routed routed;
    routed.expired_age = expired_age(e, now);
    for (std::size_t i = 0; i < e.recipients.size(); ++i) {
        Recipient& r = e.recipients[i];
        if (r.status != RecipientStatus::pending) {
            continue;
        }
        std::string domain = recipient_domain(r.address, e.hostname);
        const Route* route = find_route(m_config.routes, domain);
        if (route == nullptr) {
            // A configuration matter, not the message's: the envelope says
            // why, and the log says it once per domain at the end of the run.
            ++r.attempts;
            r.last_error = "no route for domain " + domain;
            if (routed.expired_age) {
                expire(e, r, *routed.expired_age, reports, stats);
                continue;
            }
            ++stats.deferred;
            ++stats.no_route[domain];
            continue;
        }
        routed.by_route[route->transport.text].push_back(i);
        routed.specs[route->transport.text] = &route->transport;
    }
    return routed;
}

void Runner::deliver_routed(const SpoolEntry& entry, Envelope& e, const Routed& routed, Reports& reports,
                            RunStats& stats)
{
    for (const auto& [key, indices] : routed.by_route) {
        Deliverer& t = deliverer_for(*routed.specs.at(key));
        auto outcomes = t.deliver(Delivery{e, [&entry] { return entry.open_message(); }, indices});
        for (const std::string& notice : t.take_notices()) {
            m_log.log(LogLine("delivery-config-error").add("via", key).add("reason", notice));
        }
        for (std::size_t k = 0; k < indices.size(); ++k) {
            Recipient& r = e.recipients[indices[k]];
            RecipientOutcome o = k < outcomes.size() ? outcomes[k] : RecipientOutcome{Outcome::temporary, "no outcome"};
            ++r.attempts;
            r.last_tls = o.tls;
            const char* result = "deferred";
            if (o.outcome == Outcome::delivered) {
                r.status = RecipientStatus::delivered;
                r.last_error.reset();
                ++stats.delivered;
                result = "delivered";
                // RFC 3461 §6.2.3: a server with DSN reports success itself.
                if (notify_success(r.notify) && o.handoff != Handoff::relayed_dsn) {
                    Action a = o.handoff == Handoff::relayed ? Action::relayed : Action::delivered;
                    reports.succeeded.push_back({r.address, o.detail, false, a, r.orcpt});
                }
            } else if (o.outcome == Outcome::permanent) {
                r.status = RecipientStatus::failed;
                r.last_error = o.detail;
                if (notify_failure(r.notify)) {
                    reports.failed.push_back({r.address, o.detail, false, Action::failed, r.orcpt});
                }
                ++stats.failed;
                result = "failed";
            } else if (routed.expired_age) { // that was the last attempt
                r.last_error = o.detail;
                result = "expired";
            } else {
                r.last_error = o.detail;
                ++stats.deferred;
            }
            LogLine line("delivery");
            line.add("id", e.id).add("to", r.address).add("via", key).add("result", result);
            if (o.tls) {
                line.add("tls", o.tls->version).add("cipher", o.tls->cipher).add("verified", o.tls->verified ? "yes" : "no");
            }
            m_log.log(line.add("detail", o.detail));
            if (o.outcome == Outcome::temporary && routed.expired_age) {
                expire(e, r, *routed.expired_age, reports, stats);
            }
        }
    }
}

void Runner::send_notices(const SpoolEntry& entry, Envelope& e, const Reports& reports, TimePoint now,
                          RunStats& stats)
{
    // RFC 3464: tell the sender, but never answer the null sender (no bounce of a bounce).
    if (e.mail_from.empty()) {
        return;
    }
    if (!reports.failed.empty() && !queue_notice(entry, e, reports.failed, now, stats)) {
        // Without the bounce queued, keep the failures pending (and so
        // tried again) rather than lose them; the rest is recorded.
        for (const ReportedRecipient& f : reports.failed) {
            for (Recipient& r : e.recipients) {
                if (r.address == f.address && r.status == RecipientStatus::failed) {
                    r.status = RecipientStatus::pending;
                }
            }
        }
    }
    // A success notice that cannot be queued is lost (logged): delivering
    // again to get another chance at it would duplicate the message.
    if (!reports.succeeded.empty()) {
        std::ignore = queue_notice(entry, e, reports.succeeded, now, stats);
    }
}

void Runner::finish_message(SpoolEntry& entry, Envelope& e, TimePoint now, RunStats& stats)
{
    bool pending = std::any_of(e.recipients.begin(), e.recipients.end(),
                               [](const Recipient& r) { return r.status == RecipientStatus::pending; });
    if (!pending) {
        if (auto r = entry.remove(); !r) {
            m_log.log(LogLine("runq-error").add("id", e.id).add("reason", r.error().message));
            ++stats.errors;
            return;
        }
        ++stats.removed;
        m_log.log(LogLine("removed").add("id", e.id));
        return;
    }
    e.next_attempt = rfc3339_utc(now + retry_delay(m_config.schedule, e.attempts));
    bound_last_errors(e);
    if (auto r = entry.rewrite(e); !r) {
        ++stats.errors;
        m_log.log(LogLine("runq-error").add("id", e.id).add("reason", r.error().message));
    }
}

void Runner::process(const QueueDir& queue, const std::string& id, bool force, RunStats& stats)
{
    ++stats.messages;
    auto locked = load_locked(queue, id, stats);
    if (!locked) {
        return;
    }
    auto& [entry, e] = *locked;
    if (e.held) { // named or not: released first (smtpspool release)
        ++stats.held;
        return;
    }
    TimePoint now = m_clock.now();
    if (!force && !is_due(e, now) && !expired_age(e, now)) {
        ++stats.not_due;
        return;
    }
    ++stats.attempted;
    Reports reports;
    Routed routed = expire_and_route(e, now, reports, stats);
    deliver_routed(entry, e, routed, reports, stats);
    ++e.attempts;
    e.last_attempt = rfc3339_utc(now);
    send_notices(entry, e, reports, now, stats);
    finish_message(entry, e, now, stats);
}

void Runner::give_up(SpoolEntry& entry, Envelope& e, const std::string& reason,
                     const std::function<bool(const Recipient&)>& which, RunStats& stats)
{
    TimePoint now = m_clock.now();
    Reports reports;
    for (Recipient& r : e.recipients) {
        if (r.status != RecipientStatus::pending || !which(r)) {
            continue;
        }
        r.status = RecipientStatus::failed;
        r.last_error = reason;
        if (notify_failure(r.notify)) {
            reports.failed.push_back({r.address, reason, false, Action::failed, r.orcpt});
        }
        ++stats.failed;
        m_log.log(LogLine("given-up").add("id", e.id).add("to", r.address).add("reason", reason));
    }
    send_notices(entry, e, reports, now, stats);
    if (std::none_of(e.recipients.begin(), e.recipients.end(),
                     [](const Recipient& r) { return r.status == RecipientStatus::pending; })) {
        finish_message(entry, e, now, stats); // removes it
        return;
    }
    // The others wait for their next run, as they did.
    bound_last_errors(e);
    if (auto r = entry.rewrite(e); !r) {
        ++stats.errors;
        m_log.log(LogLine("runq-error").add("id", e.id).add("reason", r.error().message));
    }
}

} // namespace smtpspool
