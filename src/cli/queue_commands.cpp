// queue_commands: the queue tools. Output on stdout, diagnostics on stderr.
#include "cli/queue_commands.hpp"

#include "base/text.hpp"
#include "delivery/route.hpp"
#include "policy/policy.hpp"
#include "server/tls.hpp"
#include "smtp/smtp_address.hpp"

#include "cli/lister.hpp"
#include "cli/terminal.hpp"
#include "delivery/runner.hpp"
#include "spool/spool.hpp"
#include "spool/spool_entry.hpp"
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

} // namespace

int run_mailq(const Config& config)
{
    if (!check_ids("mailq", config.ids)) {
        return k_exit_usage;
    }
    PosixFs fs;
    auto queue = QueueDir::open(config.spool, fs);
    auto listed = queue ? queue.value().list() : Result<std::vector<std::string>>(queue.error());
    if (!listed) {
        complain("mailq", listed.error().message);
        return listed.error().errnum == ENOENT ? k_exit_noinput : k_exit_ioerr;
    }
    std::vector<std::string> ids = config.ids.empty() ? listed.value() : config.ids;
    std::vector<QueueEntry> entries;
    int status = k_exit_ok;
    for (const std::string& id : ids) {
        auto entry = queue.value().entry(id);
        auto e = entry ? entry.value().load() : Result<Envelope>(entry.error());
        if (e) {
            entries.push_back({id, std::move(e.value()), ""});
        } else if (e.error().errnum == ENOENT && config.ids.empty()) {
            continue; // removed or delivered while we listed
        } else {
            std::string why = e.error().errnum == ENOENT ? "not in the queue" : e.error().message;
            complain("mailq", id + ": " + why);
            entries.push_back({id, std::nullopt, why});
            status = k_exit_failure;
        }
    }
    std::cout << (config.json ? format_json_lines(entries) : format_table(entries, utf8_locale())) << std::flush;
    return status;
}

int run_cat(const Config& config)
{
    if (!check_ids("cat", config.ids)) {
        return k_exit_usage;
    }
    const std::string& id = config.ids.front();
    auto file = with_entry(config.spool, id, [](SpoolEntry& e) { return e.open_message(); });
    if (!file) {
        int e = file.error().errnum;
        complain("cat", id + ": " + (e == ENOENT ? "not in the queue" : file.error().message));
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

int run_runq(Config config)
{
    if (!check_ids("runq", config.ids)) {
        return k_exit_usage;
    }
    apply_machine_defaults(config, config.hostname.empty() ? machine_fqdn() : config.hostname);
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
        }
    }
    auto log = open_log(config.log);
    SystemClock clock;
    RunnerConfig rc{config.spool, config.hostname, config.routes, config.retry_schedule, config.max_queue_time};
    Runner runner(
        std::move(rc), [&config](const TransportSpec& spec) { return make_deliverer(spec, config); }, *log, clock);
    bool tty = ::isatty(2) == 1;
    for (;;) {
        RunStats s = runner.run(config.ids);
        if (tty) {
            std::cerr << "smtpspool runq: " << s.attempted << " of " << s.messages << " messages tried: " << s.delivered
                      << " delivered, " << s.deferred << " deferred, " << s.failed << " failed, " << s.bounces
                      << " bounces; " << s.locked << " locked by another runner, " << s.not_due << " not due\n";
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
    std::cout << describe(config) << std::flush;
    for (const std::string& w : config_warnings(config)) {
        std::cerr << "smtpspool check-config: warning: " << w << "\n";
    }
    return k_exit_ok;
}

} // namespace smtpspool
