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
#include <charconv>
#include <cstring>
#include <csignal>
#include <fcntl.h>
#include <sys/prctl.h>
#include <set>
#include <sys/wait.h>
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

namespace {

// RunStats' counts by name, for serialize and parse.
template <class S, class F>
void each_count(S& s, F&& f)
{
    f("messages", s.messages);
    f("attempted", s.attempted);
    f("locked", s.locked);
    f("not_due", s.not_due);
    f("held", s.held);
    f("unreadable", s.unreadable);
    f("delivered", s.delivered);
    f("deferred", s.deferred);
    f("failed", s.failed);
    f("bounces", s.bounces);
    f("delayed", s.delayed);
    f("removed", s.removed);
    f("errors", s.errors);
}

std::optional<std::size_t> to_count(std::string_view text)
{
    std::size_t n = 0;
    auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), n);
    if (text.empty() || ec != std::errc() || ptr != text.data() + text.size()) {
        return std::nullopt;
    }
    return n;
}

} // namespace

void RunStats::add(const RunStats& other)
{
    std::vector<std::size_t> theirs;
    each_count(other, [&](const char*, const std::size_t& n) { theirs.push_back(n); });
    std::size_t k = 0;
    each_count(*this, [&](const char*, std::size_t& n) { n += theirs[k++]; });
    for (const auto& [domain, n] : other.no_route) {
        no_route[domain] += n;
    }
}

// "NAME COUNT" lines, then "no_route COUNT DOMAIN" lines (a domain has no
// line end: it comes from a checked address).
std::string RunStats::serialize() const
{
    std::string out;
    each_count(*this, [&](const char* name, const std::size_t& n) {
        out += std::string(name) + " " + std::to_string(n) + "\n";
    });
    for (const auto& [domain, n] : no_route) {
        out += "no_route " + std::to_string(n) + " " + domain + "\n";
    }
    return out;
}

std::optional<RunStats> RunStats::parse(std::string_view text)
{
    RunStats s;
    std::map<std::string, std::size_t> counts;
    while (!text.empty()) {
        std::size_t end = text.find('\n');
        if (end == std::string_view::npos) {
            return std::nullopt;
        }
        std::string_view line = text.substr(0, end);
        text.remove_prefix(end + 1);
        std::size_t sp = line.find(' ');
        if (sp == std::string_view::npos) {
            return std::nullopt;
        }
        std::string_view name = line.substr(0, sp);
        std::string_view rest = line.substr(sp + 1);
        if (name == "no_route") {
            std::size_t sp2 = rest.find(' ');
            auto n = to_count(rest.substr(0, sp2));
            if (sp2 == std::string_view::npos || !n) {
                return std::nullopt;
            }
            s.no_route[std::string(rest.substr(sp2 + 1))] += *n;
            continue;
        }
        auto n = to_count(rest);
        if (!n || !counts.emplace(std::string(name), *n).second) {
            return std::nullopt;
        }
    }
    bool complete = true;
    each_count(s, [&](const char* name, std::size_t& n) {
        auto it = counts.find(name);
        if (it == counts.end()) {
            complete = false;
        } else {
            n = it->second;
            counts.erase(it);
        }
    });
    if (!complete || !counts.empty()) {
        return std::nullopt;
    }
    return s;
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
    const bool force = !ids.empty();
    std::vector<std::vector<Lane>> phases;
    if (m_config.concurrency > 1 && todo.value().size() > 1) {
        phases = plan_phases(survey(queue.value(), todo.value(), force), m_config.concurrency,
                             m_config.concurrency_per_host);
    }
    const bool parallel = std::any_of(phases.begin(), phases.end(), [](const auto& p) { return p.size() > 1; });
    const std::size_t total = todo.value().size();
    auto progress = [&] {
        if (m_progress) {
            m_progress(stats, total);
        }
    };
    progress();
    if (parallel) {
        for (const std::vector<Lane>& lanes : phases) {
            run_lanes(queue.value(), lanes, force, stats);
            progress();
        }
    } else {
        for (const std::string& id : todo.value()) {
            process(queue.value(), id, force, stats);
            progress();
        }
        finish_deliverers();
    }
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
                  .add("held", stats.held)
                  .add("workers", stats.workers));
    return stats;
}

std::vector<PlannedMessage> Runner::survey(const QueueDir& queue, const std::vector<std::string>& ids, bool force)
{
    std::vector<PlannedMessage> out;
    out.reserve(ids.size());
    const TimePoint now = m_clock.now();
    for (const std::string& id : ids) {
        PlannedMessage m{id, {}};
        auto entry = queue.entry(id);
        auto e = entry ? entry.value().load() : Result<Envelope>(entry.error());
        if (e && !e.value().held && (force || is_due(e.value(), now) || expired_age(e.value(), now))) {
            std::set<std::string> hops;
            for (const Recipient& r : e.value().recipients) {
                if (r.status != RecipientStatus::pending) {
                    continue;
                }
                const std::string domain = recipient_domain(r.address, e.value().hostname);
                if (const Route* route = find_route(m_config.routes, domain)) {
                    // The mx transport's next hop is the recipient's domain
                    // (its mail exchangers), so that domains go to different
                    // workers; any other transport's is its text.
                    hops.insert(route->transport.kind == TransportKind::mx ? "mx:" + domain : route->transport.text);
                }
            }
            m.hops.assign(hops.begin(), hops.end());
        }
        out.push_back(std::move(m));
    }
    return out;
}

// Each worker is this process forked, without exec: it handles its lane's
// messages as a pass without workers would (the same locks, the same
// records), with deliverers of its own that it opens only in itself, and
// writes its counts to a pipe before it exits. A worker that dies leaves its
// remaining messages to the next pass (the locks die with it).
void Runner::run_lanes(const QueueDir& queue, const std::vector<Lane>& lanes, bool force, RunStats& stats)
{
    finish_deliverers(); // none may be shared with a worker
    struct Worker {
        pid_t pid = -1;
        int from = -1; // the read end of its pipe
    };
    std::vector<Worker> workers;
    const pid_t parent = ::getpid();
    for (std::size_t n = 0; n < lanes.size(); ++n) {
        int fds[2];
        if (::pipe2(fds, O_CLOEXEC) != 0) {
            m_log.log(LogLine("runq-error").add("reason", std::string("pipe: ") + std::strerror(errno)));
            ++stats.errors;
            break;
        }
        pid_t pid = ::fork();
        if (pid < 0) {
            m_log.log(LogLine("runq-error").add("reason", std::string("fork: ") + std::strerror(errno)));
            ++stats.errors;
            ::close(fds[0]);
            ::close(fds[1]);
            break;
        }
        if (pid == 0) {
            // A worker ends with its runq (killed, say), as a runq's own
            // delivery would: no orphan goes on delivering. The runq may have
            // ended before the request took effect.
            if (::prctl(PR_SET_PDEATHSIG, SIGTERM) != 0 || ::getppid() != parent) {
                ::_exit(75);
            }
            ::close(fds[0]);
            for (const Worker& w : workers) {
                ::close(w.from);
            }
            int status = 0;
            RunStats mine;
            try {
                for (const std::string& id : lanes[n].ids) {
                    process(queue, id, force, mine);
                }
                finish_deliverers();
            } catch (...) {
                status = 70; // what main does with an exception
            }
            std::string text = mine.serialize();
            for (std::size_t done = 0; done < text.size();) {
                ssize_t w = ::write(fds[1], text.data() + done, text.size() - done);
                if (w < 0 && errno == EINTR) {
                    continue;
                }
                if (w <= 0) {
                    status = 74;
                    break;
                }
                done += static_cast<std::size_t>(w);
            }
            ::_exit(status);
        }
        ::close(fds[1]);
        workers.push_back({pid, fds[0]});
    }
    stats.workers += workers.size();
    // Each pipe to its end (a worker writes only when it is done), then its status.
    for (std::size_t n = 0; n < workers.size(); ++n) {
        std::string text;
        char buf[4096];
        for (;;) {
            ssize_t r = ::read(workers[n].from, buf, sizeof buf);
            if (r < 0 && errno == EINTR) {
                continue;
            }
            if (r <= 0) {
                break;
            }
            text.append(buf, static_cast<std::size_t>(r));
        }
        ::close(workers[n].from);
        int status = 0;
        while (::waitpid(workers[n].pid, &status, 0) < 0 && errno == EINTR) {
        }
        auto counts = RunStats::parse(text);
        if (counts) {
            stats.add(*counts);
        }
        if (!counts || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
            ++stats.errors;
            std::string how = WIFSIGNALED(status) ? "killed by signal " + std::to_string(WTERMSIG(status))
                                                  : "exit status " + std::to_string(WEXITSTATUS(status));
            m_log.log(LogLine("runq-error")
                          .add("worker", static_cast<std::uint64_t>(n))
                          .add("reason", "worker ended with " + how + (counts ? "" : ", its counts lost")));
        }
    }
}

// Queues one notification about `reported` (all failed, or none) to the
// sender of e. RFC 3461 §4.3: RET=FULL returns the whole message in a failure
// notice; otherwise, and in success notices, the header section.
bool Runner::queue_notice(const SpoolEntry& entry, const Envelope& e, const std::vector<ReportedRecipient>& reported,
                          TimePoint now, RunStats& stats)
{
    const Action kind = reported.front().action;
    const bool failure = kind == Action::failed;
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
        if (kind == Action::delayed) {
            if (auto arrived = parse_rfc3339_utc(e.received_at)) {
                in.retry_until = *arrived + m_config.max_queue_time;
            }
            if (e.last_attempt) {
                in.last_attempt = parse_rfc3339_utc(*e.last_attempt);
            }
        }
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
                  .add("kind", failure ? "failure" : kind == Action::delayed ? "delay" : "success"));
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

std::chrono::seconds Runner::deliver_routed(const SpoolEntry& entry, Envelope& e, const Routed& routed,
                                            Reports& reports, RunStats& stats)
{
    std::chrono::seconds asked{0};
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
            // Only a hop of the envelope's character set is kept (the
            // envelope's growth bound counts one octet for each of its octets).
            if (is_valid_last_hop(o.hop)) {
                r.last_hop = o.hop;
            } else {
                r.last_hop.reset();
            }
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
                asked = std::max(asked, o.retry_after);
            }
            LogLine line("delivery");
            line.add("id", e.id).add("to", r.address).add("via", key).add("result", result);
            if (o.tls) {
                line.add("tls", o.tls->version).add("cipher", o.tls->cipher).add("verified", o.tls->verified ? "yes" : "no");
            }
            line.add("detail", o.detail);
            if (!o.hop.empty()) {
                line.add("hop", o.hop);
            }
            m_log.log(line);
            if (o.outcome == Outcome::temporary && routed.expired_age) {
                expire(e, r, *routed.expired_age, reports, stats);
            }
        }
    }
    return asked;
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
    // Recorded only once queued: a notice that could not be queued is tried
    // again at the next pass.
    if (!reports.delayed.empty() && queue_notice(entry, e, reports.delayed, now, stats)) {
        e.delay_notified = rfc3339_utc(now);
        ++stats.delayed;
    }
}

// RFC 3461 §4.1: a delay notice, once per message, when it has waited
// --delay-warning, to the recipients still pending whose NOTIFY has DELAY or
// who gave no NOTIFY; never to the null sender, nor about a message from a
// client that could not relay (dsn_limited: the sender address is anyone's).
void Runner::add_delay_warnings(const Envelope& e, TimePoint now, Reports& reports) const
{
    if (!m_config.delay_warning || e.delay_notified || e.mail_from.empty() || e.dsn_limited) {
        return;
    }
    auto arrived = parse_rfc3339_utc(e.received_at);
    if (!arrived || now - *arrived < *m_config.delay_warning) {
        return;
    }
    for (const Recipient& r : e.recipients) {
        if (r.status == RecipientStatus::pending && notify_delay(r.notify)) {
            reports.delayed.push_back({r.address, r.last_error.value_or(""), false, Action::delayed, r.orcpt});
        }
    }
}

void Runner::finish_message(SpoolEntry& entry, Envelope& e, TimePoint now, RunStats& stats,
                            std::chrono::seconds asked)
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
    // A next hop's Retry-After may lengthen the schedule's wait, up to the expiry.
    std::optional<std::chrono::seconds> until_expiry;
    if (auto arrived = parse_rfc3339_utc(e.received_at);
        arrived && now < *arrived + m_config.max_queue_time) {
        until_expiry = std::chrono::ceil<std::chrono::seconds>(*arrived + m_config.max_queue_time - now);
    }
    e.next_attempt = rfc3339_utc(now + next_wait(retry_delay(m_config.schedule, e.attempts), asked, until_expiry));
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
        // Not tried now, but it may have waited long enough for its delay notice.
        Reports reports;
        add_delay_warnings(e, now, reports);
        if (!reports.delayed.empty()) {
            send_notices(entry, e, reports, now, stats);
            if (!e.delay_notified) {
                return; // not queued: the next pass tries again
            }
            if (auto r = entry.rewrite(e); !r) {
                ++stats.errors;
                m_log.log(LogLine("runq-error").add("id", e.id).add("reason", r.error().message));
            }
        }
        return;
    }
    ++stats.attempted;
    Reports reports;
    Routed routed = expire_and_route(e, now, reports, stats);
    std::chrono::seconds asked = deliver_routed(entry, e, routed, reports, stats);
    ++e.attempts;
    e.last_attempt = rfc3339_utc(now);
    add_delay_warnings(e, now, reports);
    send_notices(entry, e, reports, now, stats);
    finish_message(entry, e, now, stats, asked);
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
