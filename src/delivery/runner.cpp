// runner: lock, load, expire, route, deliver, record, bounce, remove.
#include "delivery/runner.hpp"
#include "spool/envelope_json.hpp"

#include "delivery/bounce.hpp"
#include "smtp/dsn.hpp"
#include "base/fs.hpp"
#include "base/limits.hpp"
#include "spool/spool.hpp"

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <sys/file.h>
#include <tuple>
#include <unistd.h>

namespace smtpspool {
namespace {

class DirLock {
public:
    explicit DirLock(const std::string& path) : m_fd(::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC)) {}
    ~DirLock()
    {
        if (m_fd >= 0) {
            ::close(m_fd); // releases the flock
        }
    }
    DirLock(const DirLock&) = delete;
    DirLock& operator=(const DirLock&) = delete;
    int fd() const { return m_fd; }
    bool try_lock() { return m_fd >= 0 && ::flock(m_fd, LOCK_EX | LOCK_NB) == 0; }

private:
    int m_fd;
};

Result<std::string> read_at(int dir, const char* name, std::size_t max)
{
    int fd = ::openat(dir, name, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        return Error{e, std::string("cannot open ") + name + ": " + std::strerror(e)};
    }
    std::string text;
    char buf[65536];
    ssize_t n;
    while (text.size() < max && (n = ::read(fd, buf, sizeof buf)) > 0) {
        text.append(buf, static_cast<std::size_t>(n));
    }
    ::close(fd);
    if (text.size() > max) {
        text.resize(max);
    }
    return text;
}

// Write new, fsync, rename over, fsync the directory (smtpspool-spool(5)).
Result<void> rewrite_envelope(int dir, const Envelope& e)
{
    std::string json = envelope_to_json(e);
    auto fail = [](const char* what) {
        int err = errno;
        return Error{err, std::string(what) + ": " + std::strerror(err)};
    };
    int fd = ::openat(dir, "envelope.json.new", O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
        return fail("cannot create envelope.json.new");
    }
    std::string_view rest = json;
    while (!rest.empty()) {
        ssize_t n = ::write(fd, rest.data(), rest.size());
        if (n <= 0) {
            if (n < 0 && errno == EINTR) {
                continue;
            }
            auto err = fail("cannot write envelope.json.new");
            ::close(fd);
            ::unlinkat(dir, "envelope.json.new", 0);
            return err;
        }
        rest.remove_prefix(static_cast<std::size_t>(n));
    }
    if (::fsync(fd) != 0) {
        auto err = fail("cannot fsync envelope.json.new");
        ::close(fd);
        ::unlinkat(dir, "envelope.json.new", 0);
        return err;
    }
    ::close(fd);
    if (::renameat(dir, "envelope.json.new", dir, "envelope.json") != 0) {
        auto err = fail("cannot rename envelope.json.new");
        ::unlinkat(dir, "envelope.json.new", 0);
        return err;
    }
    if (::fsync(dir) != 0) {
        return fail("cannot fsync the message directory");
    }
    return {};
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

Runner::Runner(RunnerConfig config, TransportFactory factory, LogSink& log, const Clock& clock)
    : m_config(std::move(config)), m_factory(std::move(factory)), m_log(log), m_clock(clock)
{
}

Runner::~Runner() { finish_transports(); }

void Runner::finish_transports()
{
    for (auto& [key, t] : m_transports) {
        t->finish();
    }
    m_transports.clear();
}

Transport& Runner::transport_for(const TransportSpec& spec)
{
    auto it = m_transports.find(spec.text);
    if (it == m_transports.end()) {
        it = m_transports.emplace(spec.text, m_factory(spec)).first;
    }
    return *it->second;
}

RunStats Runner::run(const std::vector<std::string>& ids)
{
    RunStats stats;
    std::vector<std::string> todo = ids;
    if (todo.empty()) {
        auto listed = list_queue(m_config.spool);
        if (!listed) {
            m_log.log(LogLine("runq-error").add("reason", listed.error().message));
            ++stats.errors;
            return stats;
        }
        todo = std::move(listed.value());
    }
    for (const std::string& id : todo) {
        process(id, !ids.empty(), stats);
    }
    finish_transports();
    m_log.log(LogLine("runq-done")
                  .add("messages", stats.messages)
                  .add("attempted", stats.attempted)
                  .add("delivered", stats.delivered)
                  .add("deferred", stats.deferred)
                  .add("failed", stats.failed)
                  .add("bounces", stats.bounces)
                  .add("removed", stats.removed)
                  .add("locked", stats.locked));
    return stats;
}

// Queues one notification about `reported` (all failed, or none) to the
// sender of e. RFC 3461 §4.3: RET=FULL returns the whole message in a failure
// notice; otherwise, and in success notices, the header section.
bool Runner::queue_notice(int dir, const Envelope& e, const std::vector<ReportedRecipient>& reported, TimePoint now,
                          RunStats& stats)
{
    const bool failure = reported.front().action == Action::failed;
    // A BINARYMIME message cannot travel inside a notice sent with DATA:
    // only its header section is returned.
    const bool full = failure && e.dsn_ret == "FULL" && e.body != "BINARYMIME";
    PosixFs fs;
    SpoolWriter writer(m_config.spool, fs, m_clock, static_cast<long>(::getpid()));
    auto bid = writer.begin();
    auto text = read_at(dir, "message.eml", full ? limits::k_max_returned_message + 1 : 256 << 10);
    Result<void> done = bid ? Result<void>{} : Result<void>{bid.error()};
    if (bid) {
        std::string head = text ? header_section(text.value(), 64 << 10) : "";
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
            b.body = has_high_bit(report) ? "8BITMIME" : "7BIT";
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

void Runner::process(const std::string& id, bool force, RunStats& stats)
{
    ++stats.messages;
    DirLock lock(m_config.spool + "/queue/" + id);
    if (lock.fd() < 0) {
        return; // gone: delivered or removed meanwhile
    }
    if (!lock.try_lock()) {
        ++stats.locked;
        m_log.log(LogLine("locked").add("id", id));
        return;
    }
    // Read again under the lock: another runner may have just finished with it.
    auto text = read_at(lock.fd(), "envelope.json", 16 << 20);
    if (!text) {
        return; // removed while we waited for the directory
    }
    auto parsed = envelope_from_json(text.value());
    if (!parsed || parsed.value().id != id) {
        ++stats.unreadable;
        m_log.log(LogLine("unreadable").add("id", id).add("reason", parsed ? "id mismatch" : parsed.error().message));
        return;
    }
    Envelope e = std::move(parsed.value());
    TimePoint now = m_clock.now();
    if (!force && e.next_attempt) {
        auto due = parse_rfc3339_utc(*e.next_attempt);
        if (due && *due > now) {
            ++stats.not_due;
            return;
        }
    }
    ++stats.attempted;
    std::vector<ReportedRecipient> failed_now;    // RFC 3461: those whose NOTIFY asks for FAILURE
    std::vector<ReportedRecipient> succeeded_now; // and SUCCESS, when we are the last to know
    auto arrived = parse_rfc3339_utc(e.received_at);
    bool expired = arrived && now - *arrived >= m_config.max_queue_time;
    std::map<std::string, std::vector<std::size_t>> by_route;
    std::map<std::string, const TransportSpec*> specs;
    for (std::size_t i = 0; i < e.recipients.size(); ++i) {
        Recipient& r = e.recipients[i];
        if (r.status != "pending") {
            continue;
        }
        if (expired) {
            r.status = "failed";
            std::string last = r.last_error ? "; last error: " + *r.last_error : "";
            r.last_error = "message expired after " + format_duration(m_config.max_queue_time) + " in the queue" + last;
            if (notify_failure(r.notify)) {
                failed_now.push_back({r.address, *r.last_error, true, Action::failed, r.orcpt});
            }
            ++stats.failed;
            m_log.log(LogLine("expired").add("id", id).add("to", r.address));
            continue;
        }
        const Route* route = find_route(m_config.routes, recipient_domain(r.address, e.hostname));
        if (route == nullptr) {
            ++r.attempts;
            r.last_error = "no route for domain " + recipient_domain(r.address, e.hostname);
            ++stats.deferred;
            m_log.log(LogLine("delivery")
                          .add("id", id)
                          .add("to", r.address)
                          .add("result", "deferred")
                          .add("detail", *r.last_error));
            continue;
        }
        by_route[route->transport.text].push_back(i);
        specs[route->transport.text] = &route->transport;
    }
    std::string message = message_path(m_config.spool, id);
    for (auto& [key, indices] : by_route) {
        Transport& t = transport_for(*specs[key]);
        auto outcomes = t.deliver(Delivery{e, message, indices});
        for (std::size_t k = 0; k < indices.size(); ++k) {
            Recipient& r = e.recipients[indices[k]];
            RecipientOutcome o = k < outcomes.size() ? outcomes[k] : RecipientOutcome{Outcome::temporary, "no outcome"};
            ++r.attempts;
            const char* result = "deferred";
            if (o.outcome == Outcome::delivered) {
                r.status = "delivered";
                r.last_error.reset();
                ++stats.delivered;
                result = "delivered";
                // RFC 3461 §6.2.3: a server with DSN reports success itself.
                if (notify_success(r.notify) && o.handoff != Handoff::relayed_dsn) {
                    Action a = o.handoff == Handoff::relayed ? Action::relayed : Action::delivered;
                    succeeded_now.push_back({r.address, o.detail, false, a, r.orcpt});
                }
            } else if (o.outcome == Outcome::permanent) {
                r.status = "failed";
                r.last_error = o.detail;
                if (notify_failure(r.notify)) {
                    failed_now.push_back({r.address, o.detail, false, Action::failed, r.orcpt});
                }
                ++stats.failed;
                result = "failed";
            } else {
                r.last_error = o.detail;
                ++stats.deferred;
            }
            m_log.log(LogLine("delivery")
                          .add("id", id)
                          .add("to", r.address)
                          .add("via", key)
                          .add("result", result)
                          .add("detail", o.detail));
        }
    }
    ++e.attempts;
    e.last_attempt = rfc3339_utc(now);
    // RFC 3464: tell the sender, but never answer the null sender (no bounce of a bounce).
    if (!failed_now.empty() && !e.mail_from.empty()) {
        if (!queue_notice(lock.fd(), e, failed_now, now, stats)) {
            // Without the bounce queued, keep the failures pending (and so
            // tried again) rather than lose them; the rest is recorded.
            for (const ReportedRecipient& f : failed_now) {
                for (Recipient& r : e.recipients) {
                    if (r.address == f.address && r.status == "failed") {
                        r.status = "pending";
                    }
                }
            }
        }
    }
    // A success notice that cannot be queued is lost (logged): delivering
    // again to get another chance at it would duplicate the message.
    if (!succeeded_now.empty() && !e.mail_from.empty()) {
        std::ignore = queue_notice(lock.fd(), e, succeeded_now, now, stats);
    }
    bool pending = false;
    for (const Recipient& r : e.recipients) {
        pending = pending || r.status == "pending";
    }
    if (!pending) {
        if (auto r = remove_message(m_config.spool, id); !r) {
            m_log.log(LogLine("runq-error").add("id", id).add("reason", r.error().message));
            ++stats.errors;
            return;
        }
        ++stats.removed;
        m_log.log(LogLine("removed").add("id", id));
        return;
    }
    e.next_attempt = rfc3339_utc(now + retry_delay(m_config.schedule, e.attempts));
    if (auto r = rewrite_envelope(lock.fd(), e); !r) {
        ++stats.errors;
        m_log.log(LogLine("runq-error").add("id", id).add("reason", r.error().message));
    }
}

} // namespace smtpspool
