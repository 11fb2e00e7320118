// queue_commands: the queue tools. Output on stdout, diagnostics on stderr.
#include "cli/queue_commands.hpp"

#include "base/text.hpp"
#include "delivery/route.hpp"
#include "policy/policy.hpp"
#include "server/tls.hpp"
#include "server/transcript.hpp"
#include "smtp/smtp_address.hpp"

#include "cli/lister.hpp"
#include "cli/progress.hpp"
#include "cli/queue_report.hpp"
#include "delivery/plan.hpp"
#include "base/limits.hpp"
#include "cli/terminal.hpp"
#include "delivery/runner.hpp"
#include "spool/spool.hpp"
#include "spool/spool_entry.hpp"
#include "cli/client_tls.hpp"
#include "cli/deliverers.hpp"

#include <algorithm>
#include <csignal>
#include <thread>

#include <cerrno>
#include <cstring>
#include <iostream>
#include <unistd.h>

namespace smtpspool {
namespace {

void complain(const std::string& command, const std::string& message)
{
    std::cerr << "smtpspool " << command << ": " << message << "\n";
}

// IDs from the command line name one directory under queue/: no path tricks.
bool check_ids(const std::string& command, const std::vector<std::string>& ids)
{
    for (const std::string& id : ids) {
        if (!is_valid_queue_id(id)) {
            complain(command, "invalid queue id '" + id + "' (expected [A-Za-z0-9_-])");
            return false;
        }
    }
    return true;
}

MessageFilter filter_of(const Config& c)
{
    return MessageFilter{c.held, c.sender, c.recipient, c.domain, c.older_than, c.younger_than};
}

bool filtering(const Config& c)
{
    return c.held || c.sender || c.recipient || c.domain || c.older_than || c.younger_than;
}

// The messages a read-only tool looks at: each id of the queue (or each id
// named), with its envelope, or nullptr and why not; use(id, envelope, why).
// A message removed while the queue is read is left out unless it was named.
// Returns the exit status: 0, 1 when a message named is missing or an
// envelope could not be read, 66 or 74 when the queue could not be listed (and
// nothing was used).
template <typename Use>
int read_queue(const Config& config, const char* command, Use&& use)
{
    PosixFs fs;
    auto queue = QueueDir::open(config.spool, fs);
    auto listed = queue ? queue.value().list() : Result<std::vector<std::string>>(queue.error());
    if (!listed) {
        complain(command, listed.error().message);
        return listed.error().errnum == ENOENT ? k_exit_noinput : k_exit_ioerr;
    }
    const std::vector<std::string>& ids = config.ids.empty() ? listed.value() : config.ids;
    int status = k_exit_ok;
    for (const std::string& id : ids) {
        auto entry = queue.value().entry(id);
        auto e = entry ? entry.value().load() : Result<Envelope>(entry.error());
        if (e) {
            use(id, &e.value(), std::string());
        } else if (e.error().errnum == ENOENT && config.ids.empty()) {
            continue; // removed or delivered while we listed
        } else {
            std::string why = e.error().errnum == ENOENT ? "not in the queue" : e.error().message;
            complain(command, id + ": " + why);
            use(id, nullptr, why);
            status = k_exit_failure;
        }
    }
    return status;
}

bool queue_unread(int status) { return status == k_exit_noinput || status == k_exit_ioerr; }

} // namespace

int run_mailq(const Config& config)
{
    if (!check_ids("mailq", config.ids)) {
        return k_exit_usage;
    }
    const MessageFilter filter = filter_of(config);
    const TimePoint now = SystemClock().now();
    if (config.summary || config.shape) {
        QueueSummary summary;
        QueueShape shape;
        int status = read_queue(config, "mailq", [&](const std::string&, const Envelope* e, const std::string&) {
            if (e != nullptr && filter.matches(*e, now)) {
                config.summary ? summary.add(*e, now) : shape.add(*e, now);
            }
        });
        if (queue_unread(status)) {
            return status;
        }
        if (config.summary) {
            std::cout << (config.json ? summary_json(summary) : format_summary(summary, utf8_locale()));
        } else {
            std::cout << (config.json ? shape_json(shape) : format_shape(shape, utf8_locale()));
        }
        std::cout << std::flush;
        return status;
    }
    std::vector<QueueEntry> entries;
    // A message that cannot be read matches no filter; it is listed when
    // there is none, or when it was named.
    const bool all = !filtering(config) || !config.ids.empty();
    int status = read_queue(config, "mailq", [&](const std::string& id, const Envelope* e, const std::string& why) {
        if (e == nullptr) {
            if (all) {
                entries.push_back({id, std::nullopt, why});
            }
        } else if (filter.matches(*e, now)) {
            entries.push_back({id, *e, ""});
        }
    });
    if (queue_unread(status)) {
        return status;
    }
    std::cout << (config.json ? format_json_lines(entries) : format_table(entries, utf8_locale())) << std::flush;
    return status;
}

int run_stats(const Config& config)
{
    QueueStats stats;
    const TimePoint now = SystemClock().now();
    PosixFs fs;
    auto queue = QueueDir::open(config.spool, fs);
    auto listed = queue ? queue.value().list() : Result<std::vector<std::string>>(queue.error());
    if (!listed) {
        complain("stats", listed.error().message);
        return listed.error().errnum == ENOENT ? k_exit_noinput : k_exit_ioerr;
    }
    for (const std::string& id : listed.value()) {
        auto entry = queue.value().entry(id);
        auto e = entry ? entry.value().load() : Result<Envelope>(entry.error());
        if (e) {
            stats.add(e.value(), now, config.max_queue_time);
        } else if (e.error().errnum != ENOENT) { // gone: delivered meanwhile
            ++stats.unreadable;
        }
    }
    std::cout << (config.json ? stats_json(stats, config.spool) : prometheus_text(stats, config.spool)) << std::flush;
    return std::cout ? k_exit_ok : k_exit_ioerr;
}

namespace {

// The first count of a queue tool's status line.
const char* name_done(Subcommand command)
{
    switch (command) {
    case Subcommand::hold: return "held";
    case Subcommand::release: return "released";
    case Subcommand::requeue: return "requeued";
    default: return "bounced";
    }
}

} // namespace

int run_change(const Config& config)
{
    const char* name = config.command == Subcommand::hold      ? "hold"
                       : config.command == Subcommand::release ? "release"
                       : config.command == Subcommand::requeue ? "requeue"
                                                               : "bounce";
    if (!check_ids(name, config.ids)) {
        return k_exit_usage;
    }
    PosixFs fs;
    auto queue = QueueDir::open(config.spool, fs);
    auto listed = !queue ? Result<std::vector<std::string>>(queue.error())
                  : config.all ? queue.value().list()
                               : Result<std::vector<std::string>>(config.ids);
    if (!listed) {
        complain(name, listed.error().message);
        return listed.error().errnum == ENOENT ? k_exit_noinput : k_exit_ioerr;
    }
    Config c = config;
    if (c.command == Subcommand::bounce) {
        apply_machine_defaults(c, c.hostname.empty() ? machine_fqdn() : c.hostname);
        if (auto r = ensure_spool_layout(c.spool); !r) { // tmp/ is needed for the notices
            complain(name, r.error().message);
            return k_exit_ioerr;
        }
    }
    auto log = open_log(c.log, c.log_format);
    SystemClock clock;
    RunnerConfig rc{c.spool, c.hostname, c.routes, c.retry_schedule, c.max_queue_time};
    Runner runner(
        std::move(rc), [&c](const TransportSpec& spec) { return make_deliverer(spec, c); }, *log, clock);
    const std::string reason =
        text::detail_line("delivery cancelled by the postmaster" + (c.reason ? ": " + *c.reason : std::string()),
                          limits::k_max_last_error);
    const MessageFilter filter = filter_of(c);
    const bool named = !c.all;
    // With --all, a status line on a terminal: done of total, changed,
    // passed over (not selected, or nothing to change), failed.
    ProgressCounts counts;
    counts.total = listed.value().size();
    ProgressLine line(name, c.all ? 2 : -1, {name_done(c.command), "passed over", "failed"});
    int status = k_exit_ok;
    auto fail = [&](int s) {
        status = std::max(status, s);
        ++counts.failed;
    };
    auto say = [&](const std::string& text) { // a line of standard output under the status line
        line.finish();
        std::cout << text << std::flush;
    };
    for (const std::string& id : listed.value()) {
        line.update(counts);
        ++counts.done;
        auto entry = queue.value().entry(id);
        if (!entry) {
            if (entry.error().errnum != ENOENT || named) {
                line.finish();
                complain(name, id + ": " + (entry.error().errnum == ENOENT ? "not in the queue" : entry.error().message));
                fail(entry.error().errnum == ENOENT ? k_exit_failure : k_exit_ioerr);
            } else {
                ++counts.deferred;
            }
            continue;
        }
        // A message the filters do not select is passed over without waiting
        // for its lock (it is checked again under the lock).
        if (auto seen = entry.value().load(); seen && !filter.matches(seen.value(), clock.now())) {
            ++counts.deferred;
            continue;
        }
        // The lock of runq: a message that one is delivering is changed when
        // that run has rewritten its envelope, never under it.
        auto locked = entry.value().try_lock();
        if (locked && !locked.value()) {
            line.finish();
            complain(name, id + ": a runq is delivering it; waiting until it is done");
            auto waited = entry.value().lock();
            locked = waited ? Result<bool>(true) : Result<bool>(waited.error());
        }
        if (!locked) {
            line.finish();
            complain(name, locked.error().message);
            fail(k_exit_ioerr);
            continue;
        }
        auto e = entry.value().load();
        if (!e) {
            if (e.error().errnum != ENOENT || named) {
                line.finish();
                complain(name, id + ": " +
                                   (e.error().errnum == ENOENT ? "no longer in the queue (delivered or removed meanwhile)"
                                                               : e.error().message));
                fail(k_exit_failure);
            } else {
                ++counts.deferred;
            }
            continue;
        }
        Envelope& env = e.value();
        if (!filter.matches(env, clock.now())) {
            ++counts.deferred;
            continue;
        }
        if (c.command == Subcommand::bounce) {
            RunStats stats;
            runner.give_up(
                entry.value(), env, reason, [&](const Recipient& r) { return filter.names(r, env); }, stats);
            if (stats.errors > 0) {
                line.finish();
                complain(name, id + ": the notice, the rewrite or the removal failed (see the log)");
                fail(k_exit_ioerr);
                continue;
            }
            const auto left = std::count_if(env.recipients.begin(), env.recipients.end(), [](const Recipient& r) {
                return r.status == RecipientStatus::pending;
            });
            ++counts.delivered;
            say(id + ": bounced, " + std::to_string(stats.failed) + (stats.failed == 1 ? " recipient" : " recipients") +
                (stats.bounces > 0 ? ", notice queued" : ", no notice") +
                (left > 0 ? "; " + std::to_string(left) + " still pending" : std::string()) + "\n");
            continue;
        }
        const char* event = nullptr; // logged when the envelope changes
        const char* said = nullptr;
        switch (c.command) {
        case Subcommand::hold:
            event = env.held ? nullptr : "held";
            said = env.held ? "already held" : "held";
            env.held = true;
            break;
        case Subcommand::release:
            event = env.held ? "released" : nullptr;
            said = env.held ? "released" : "not held";
            env.held = false;
            break;
        default: // requeue: due now, and the retry schedule starts again at its first wait
            env.next_attempt.reset();
            env.attempts = 0;
            event = "requeued";
            said = env.held ? "requeued (still held)" : "requeued";
            break;
        }
        if (event != nullptr) {
            if (auto r = entry.value().rewrite(env); !r) {
                line.finish();
                complain(name, r.error().message);
                fail(k_exit_ioerr);
                continue;
            }
            log->log(LogLine(event).add("id", id));
            ++counts.delivered;
        } else {
            ++counts.deferred;
        }
        say(id + ": " + said + "\n");
    }
    line.update(counts);
    line.finish();
    std::cout << std::flush;
    return status;
}

int run_cat(const Config& config)
{
    if (!check_ids("cat", config.ids)) {
        return k_exit_usage;
    }
    const std::string& id = config.ids.front();
    if (config.transcript && !config.transcript_dir) {
        complain("cat", "--transcript needs --transcript-dir (or transcript-dir in the configuration)");
        return k_exit_usage;
    }
    auto file = config.transcript ? open_transcript_of(*config.transcript_dir, id)
                                  : with_entry(config.spool, id, [](SpoolEntry& e) { return e.open_message(); });
    if (!file) {
        int e = file.error().errnum;
        complain("cat", id + ": " + (e != ENOENT ? file.error().message
                                     : config.transcript ? "no transcript in " + *config.transcript_dir
                                                         : std::string("not in the queue")));
        return e == ENOENT ? k_exit_noinput : k_exit_ioerr;
    }
    char buf[65536];
    ssize_t n;
    while ((n = ::read(file.value().get(), buf, sizeof buf)) > 0) {
        std::cout.write(buf, n);
    }
    std::cout.flush();
    if (n < 0 || !std::cout) {
        complain("cat", "read or write error");
        return k_exit_ioerr;
    }
    return k_exit_ok;
}

int run_remove(const Config& config)
{
    if (!check_ids("remove", config.ids)) {
        return k_exit_usage;
    }
    const std::string& id = config.ids.front();
    auto r = with_entry(config.spool, id, [](SpoolEntry& e) { return e.remove(); });
    if (!r) {
        bool missing = r.error().errnum == ENOENT;
        complain("remove", id + ": " + (missing ? "not in the queue" : r.error().message));
        return missing ? k_exit_noinput : k_exit_ioerr;
    }
    return k_exit_ok;
}

namespace {

// runq --dry-run: what a run would do, read without the lock (the envelope
// is replaced by one rename) and changed in nothing.
int dry_run(const Config& config)
{
    auto shown = utf8_locale() ? text::terminal_text_utf8 : text::terminal_text;
    const TimePoint now = SystemClock().now();
    const bool named = !config.ids.empty();
    std::size_t tried = 0;
    std::size_t recipients = 0;
    std::size_t not_due = 0;
    std::size_t held = 0;
    std::size_t unreadable = 0;
    int status = read_queue(config, "runq", [&](const std::string& id, const Envelope* e, const std::string&) {
        if (e == nullptr) {
            ++unreadable;
            return;
        }
        MessagePlan plan = plan_message(*e, config.routes, now, config.max_queue_time, named);
        if (plan.take == MessagePlan::Take::held) {
            ++held;
            if (named) {
                std::cout << id << ": on hold, not delivered (smtpspool release " << id << ")\n";
            }
            return;
        }
        if (plan.take == MessagePlan::Take::not_due) {
            ++not_due;
            return;
        }
        ++tried;
        std::cout << id << " <" << shown(e->mail_from) << "> " << e->size << " octets: ";
        if (plan.expired_age) {
            std::cout << "expired after " << format_age(*plan.expired_age) << ", last attempt\n";
        } else {
            std::cout << (message_due(*e, now) ? "due" : "not due, named") << ", run " << e->attempts + 1 << "\n";
        }
        for (const RecipientPlan& r : plan.recipients) {
            ++recipients;
            std::cout << "  <" << shown(r.address) << "> " << shown(r.domain) << " via "
                      << (r.route == nullptr ? std::string("no route")
                                             : shown(r.route->domain + "=" + r.route->transport.text))
                      << ": " << shown(r.action) << "\n";
        }
    });
    if (queue_unread(status)) {
        return status;
    }
    std::cout << "runq --dry-run: " << tried << (tried == 1 ? " message" : " messages") << " with " << recipients
              << (recipients == 1 ? " recipient" : " recipients") << " would be tried; " << not_due << " not due, "
              << held << " held, " << unreadable << " unreadable; nothing was delivered or changed\n"
              << std::flush;
    return status;
}

// The secret of --http-secret-file, needed when a route goes by http or
// https; "" when none does and none is given.
Result<std::string> http_secret(const Config& config)
{
    if (config.http_secret_file) {
        return load_http_secret(*config.http_secret_file);
    }
    if (has_http_route(config.routes)) {
        return Error{0, "an http or https route needs --http-secret-file (the key that signs its requests)"};
    }
    return std::string();
}

} // namespace

int run_runq(Config config)
{
    if (!check_ids("runq", config.ids)) {
        return k_exit_usage;
    }
    apply_machine_defaults(config, config.hostname.empty() ? machine_fqdn() : config.hostname);
    if (config.dry_run) {
        return dry_run(config);
    }
    // A pipe command that exits without reading its input must not kill us:
    // its exit status decides (EPIPE is handled where we write).
    std::signal(SIGPIPE, SIG_IGN);
    auto listed = list_queue(config.spool);
    if (!listed) {
        complain("runq", listed.error().message);
        return listed.error().errnum == ENOENT ? k_exit_noinput : k_exit_ioerr;
    }
    if (auto r = ensure_spool_layout(config.spool); !r) { // tmp/ is needed for bounces
        complain("runq", r.error().message);
        return k_exit_ioerr;
    }
    int missing = 0;
    for (const std::string& id : config.ids) {
        if (std::find(listed.value().begin(), listed.value().end(), id) == listed.value().end()) {
            complain("runq", id + ": not in the queue");
            ++missing;
        } else if (auto e = load_envelope(config.spool, id); e && e.value().held) {
            // The runner skips it too (it may be held meanwhile): this says why.
            complain("runq", id + ": on hold, not delivered (smtpspool release " + id + ")");
            ++missing;
        }
    }
    auto log = open_log(config.log, config.log_format);
    SmtpClientSetup smtp{make_client_tls(config), {}, {}};
    if (config.smtp_auth_file) {
        auto credentials = load_auth_file(*config.smtp_auth_file);
        if (!credentials) {
            complain("runq", "configuration error: " + credentials.error().message);
            log->log(LogLine("runq-error").add("reason", credentials.error().message));
            return k_exit_config;
        }
        smtp.credentials = std::move(credentials.value());
    }
    if (auto secret = http_secret(config); !secret) {
        complain("runq", "configuration error: " + secret.error().message);
        log->log(LogLine("runq-error").add("reason", secret.error().message));
        return k_exit_config;
    } else {
        smtp.http_secret = std::move(secret.value());
    }
    if (config.amqp_credentials_file) {
        auto credentials = load_credentials_file(*config.amqp_credentials_file, "amqp-credentials-file");
        if (!credentials) {
            complain("runq", "configuration error: " + credentials.error().message);
            log->log(LogLine("runq-error").add("reason", credentials.error().message));
            return k_exit_config;
        }
        smtp.amqp_credentials = std::move(credentials.value());
    }
    SystemClock clock;
    RunnerConfig rc{config.spool,          config.hostname,    config.routes,
                    config.retry_schedule, config.max_queue_time, config.concurrency,
                    config.concurrency_per_host, config.delay_warning};
    Runner runner(
        std::move(rc), [&config, &smtp](const TransportSpec& spec) { return make_deliverer(spec, config, smtp); },
        *log, clock);
    bool tty = ::isatty(2) == 1;
    for (;;) {
        // On a terminal, a status line while the pass goes on; then its summary.
        ProgressLine line("runq", 2);
        runner.on_progress([&line](const RunStats& so_far, std::size_t total) {
            line.update({so_far.messages, total, so_far.delivered, so_far.deferred, so_far.failed});
        });
        RunStats s = runner.run(config.ids);
        line.finish();
        if (tty) {
            std::cerr << "smtpspool runq: " << s.attempted << " of " << s.messages << " messages tried: " << s.delivered
                      << " delivered, " << s.deferred << " deferred, " << s.failed << " failed, " << s.bounces
                      << " bounces; " << s.locked << " locked by another runner, " << s.not_due << " not due, "
                      << s.held << " held\n";
        }
        if (!config.interval) {
            return s.errors > 0 || s.unreadable > 0 || missing > 0 ? k_exit_failure : k_exit_ok;
        }
        std::this_thread::sleep_for(*config.interval);
    }
}

std::vector<std::string> config_warnings(const Config& config)
{
    std::vector<std::string> out;
    const std::string& host = config.hostname;
    if (host.find('.') == std::string::npos && !is_address_literal(host)) {
        out.push_back("hostname '" + text::terminal_text(host) +
                      "' is not fully qualified (it has no dot): servers may refuse it in HELO, and it names the "
                      "sender of bounces and bare local parts; set hostname");
    }
    if (config.routes.empty()) {
        out.push_back("no routes (no smarthost, no route): runq delivers nothing, every message is deferred until "
                      "it expires after max-queue-time");
        return out;
    }
    for (const std::string& domain : config.local_domains) {
        if (find_route(config.routes, domain) == nullptr) {
            out.push_back("no route for the local domain " + text::terminal_text(domain) +
                          ": its mail is deferred until it expires");
        }
    }
    if (std::none_of(config.routes.begin(), config.routes.end(), [](const Route& r) { return r.domain == "*"; })) {
        out.push_back("no default route (no smarthost, no route for *): mail to other domains, bounces "
                      "included, is deferred until it expires");
    }
    return out;
}

int run_check_config(Config config)
{
    apply_machine_defaults(config, config.hostname.empty() ? machine_fqdn() : config.hostname);
    // The policy files are read as serve reads them: a bad line is an error here.
    if (auto files = load_policy_files(policy_config(config)); !files) {
        std::cerr << "smtpspool check-config: configuration error: " << files.error().message << "\n";
        return k_exit_config;
    }
    // So are the certificate and key: check-config says what serve would log.
    if (config.tls_cert) {
        if (auto tls = TlsContext::load(*config.tls_cert, *config.tls_key); !tls) {
            std::cerr << "smtpspool check-config: configuration error: " << tls.error().message << "\n";
            return k_exit_config;
        }
    }
    // The SMTP client's TLS files and credentials, as runq reads them.
    if (config.smtp_tls_ca || config.smtp_tls_cert) {
        if (auto tls = check_client_tls(config); !tls) {
            std::cerr << "smtpspool check-config: configuration error: " << tls.error().message << "\n";
            return k_exit_config;
        }
    }
    std::vector<std::string> auth_unused;
    if (config.smtp_auth_file) {
        auto credentials = load_auth_file(*config.smtp_auth_file);
        if (!credentials) {
            std::cerr << "smtpspool check-config: configuration error: " << credentials.error().message << "\n";
            return k_exit_config;
        }
        for (const std::string& u : unused_auth_entries(credentials.value(), config.routes)) {
            auth_unused.push_back("smtp-auth-file " + *config.smtp_auth_file + ", " + text::terminal_text(u) +
                                  ": no smtp or smtps route goes to this host");
        }
    }
    if (auto secret = http_secret(config); !secret) {
        std::cerr << "smtpspool check-config: configuration error: " << secret.error().message << "\n";
        return k_exit_config;
    }
    if (config.http_tls_ca && ::access(config.http_tls_ca->c_str(), R_OK) != 0) {
        std::cerr << "smtpspool check-config: configuration error: http-tls-ca " << *config.http_tls_ca << ": "
                  << std::strerror(errno) << "\n";
        return k_exit_config;
    }
    if (config.amqp_credentials_file) {
        auto credentials = load_credentials_file(*config.amqp_credentials_file, "amqp-credentials-file");
        if (!credentials) {
            std::cerr << "smtpspool check-config: configuration error: " << credentials.error().message << "\n";
            return k_exit_config;
        }
    }
    std::cout << describe(config) << std::flush;
    for (const std::string& w : auth_unused) {
        std::cerr << "smtpspool check-config: warning: " << w << "\n";
    }
    for (const std::string& w : config_warnings(config)) {
        std::cerr << "smtpspool check-config: warning: " << w << "\n";
    }
    return k_exit_ok;
}

} // namespace smtpspool
