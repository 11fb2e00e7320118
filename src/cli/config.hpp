// config: the command line and the config file -> one plain Config, through
// one table of options (config.cpp), which also gives --help, check-config's
// settings and the session's settings. Boost.ProgramOptions stays in
// config.cpp; the command line wins over the file. The defaults are here.
#pragma once

#include "base/limits.hpp"
#include "base/log.hpp"
#include "policy/policy.hpp"
#include "delivery/route.hpp"
#include "delivery/smtp_security.hpp"

#include <chrono>

#include <cstddef>
#include <optional>
#include <string>
#include <variant>
#include <vector>

namespace smtpspool {

struct SessionConfig;

enum class Subcommand { serve, mailq, runq, cat, remove, check_config, hold, release, requeue, bounce, stats };

// "serve", "runq", "check-config", ...: the command's name on the command line.
const char* subcommand_name(Subcommand c);

struct Config {
    Subcommand command = Subcommand::serve;
    std::optional<std::string> config_file;
    std::string spool = "/var/spool/smtpspool";
    std::string hostname;                   // "" until resolved: the machine's FQDN
    std::optional<std::string> user;        // --user: switch to this user when root
    std::vector<std::string> local_domains; // empty: the hostname and localhost
    std::vector<std::string> relay_clients{"127.0.0.0/8", "::1"};
    bool allow_untrusted_routing = false;
    std::size_t max_message_size = limits::k_default_max_message_size;
    std::size_t max_recipients = limits::k_default_max_recipients;
    std::size_t max_line_length = limits::k_default_max_line_length;
    std::size_t max_data_line_length = limits::k_default_max_data_line_length;
    unsigned timeout = limits::k_default_timeout_seconds;
    unsigned max_session_time = limits::k_default_max_session_time;
    std::size_t max_errors = limits::k_default_max_errors;
    bool rfc821 = false;
    // A UNIX-domain socket on standard input is a local client, not an unknown one.
    bool trust_unix_socket = false;
    // --proxy-protocol: a PROXY protocol header from one of proxy_from first.
    bool proxy_protocol = false;
    std::vector<std::string> proxy_from;
    // Policy (smtpspool(8), POLICY).
    std::vector<std::string> deny_clients;
    std::vector<std::string> allow_clients;
    std::optional<std::string> sender_deny; // files
    std::optional<std::string> aliases;
    std::optional<std::string> local_users;
    bool reject_unknown_recipients = false;
    std::optional<std::string> mail_hook; // commands, run by /bin/sh -c
    std::optional<std::string> rcpt_hook;
    std::optional<std::string> data_hook;
    std::chrono::seconds hook_timeout{limits::k_default_hook_timeout_seconds};
    // Policy delegation (smtpspool(8), POLICY DELEGATION).
    std::vector<std::string> policy_services; // unix:/path or inet:host:port, asked in order
    bool policy_at_data = false;
    std::chrono::seconds policy_timeout{limits::k_default_policy_timeout_seconds};
    std::string policy_default_action = "tempfail"; // or "dunno"
    bool add_envelope_to = false;
    bool check_headers = false;
    std::size_t max_hops = limits::k_default_max_hops;
    std::string authserv_id; // "" until resolved: the hostname
    std::size_t max_connections_per_minute = 0; // 0: no limit
    std::size_t max_connections_per_client_per_minute = 0;
    std::size_t max_messages_per_session = 0;
    // Milters (smtpspool(8), MILTERS): specs as given, checked by parse_milter_spec.
    std::vector<std::string> milters;
    std::string milter_default_action = "tempfail";
    std::chrono::seconds milter_timeout{limits::k_default_milter_timeout_seconds};
    // TLS (serve).
    std::optional<std::string> tls_cert; // PEM chain, leaf first
    std::optional<std::string> tls_key;  // PEM private key
    bool require_tls = false;
    bool tls_on_connect = false;
    std::optional<std::string> auth_passwd;  // AUTH: "user:crypt-hash" lines
    std::optional<std::string> auth_command; // AUTH: a checkpassword program
    LogTarget log = LogTarget::syslog;
    LogFormat log_format = LogFormat::logfmt;
    // Session transcripts (smtpspool(8), SESSION TRANSCRIPTS).
    std::optional<std::string> transcript_dir;
    std::vector<std::string> transcript_clients; // empty: every client
    std::size_t transcript_max_size = limits::k_default_transcript_max_size;
    bool transcript = false; // cat --transcript
    // Delivery (runq; serve with --deliver-now).
    std::vector<Route> routes;
    std::vector<std::chrono::seconds> retry_schedule{std::chrono::minutes(30), std::chrono::hours(1),
                                                     std::chrono::hours(2), std::chrono::hours(4),
                                                     std::chrono::hours(8)};
    std::chrono::seconds max_queue_time{5 * 86400};
    std::optional<std::chrono::seconds> smtp_timeout; // none: RFC 5321 §4.5.3.2 values
    std::chrono::seconds pipe_timeout{600};
    // The SMTP client's TLS and AUTH (runq).
    TlsLevel smtp_tls = TlsLevel::may;
    std::vector<TlsPolicyEntry> smtp_tls_policy;
    std::optional<std::string> smtp_tls_ca;   // PEM CA certificates; none: the system's
    std::optional<std::string> smtp_tls_cert; // PEM client certificate chain
    std::optional<std::string> smtp_tls_key;  // its private key
    std::optional<std::string> smtp_auth_file; // "HOST[:PORT] USER:PASSWORD" lines
    // The http and https transports (runq).
    std::optional<std::string> http_secret_file; // the key that signs each request
    std::optional<std::string> http_tls_ca;      // PEM CA certificates; none: the system's
    std::chrono::seconds http_timeout{60};       // one request, connection included
    // The amqp transport (runq).
    std::optional<std::string> amqp_credentials_file; // "HOST[:PORT] USER:PASSWORD" lines, for amqp routes
    std::chrono::seconds amqp_timeout{30};
    std::size_t concurrency = 10;         // runq: worker processes of a pass
    std::size_t concurrency_per_host = 2; // of them, at most this many per next hop
    std::optional<std::chrono::seconds> delay_warning; // runq: none: no delay notices
    std::size_t mx_port = 25;             // the mx transport's SMTP port
    std::vector<std::string> dns_servers; // the mx transport's name servers, IP[:PORT]; none: resolv.conf
    bool deliver_now = false;
    std::optional<std::chrono::seconds> interval; // runq --interval
    bool dry_run = false;                         // runq --dry-run
    bool json = false;                            // mailq, stats --json
    bool summary = false;                         // mailq --summary
    bool shape = false;                           // mailq --shape
    // The queue tools' selection (smtpspool(8), QUEUE ADMINISTRATION): every
    // message with --all, and the filters, which all must match.
    bool all = false;
    bool held = false;
    std::optional<std::string> sender;
    std::optional<std::string> recipient;
    std::optional<std::string> domain;
    std::optional<std::chrono::seconds> older_than;
    std::optional<std::chrono::seconds> younger_than;
    std::optional<std::string> reason; // bounce --reason
    std::vector<std::string> ids;      // mailq, cat, remove, runq and the queue tools
};

// sysexits(3) values used as exit statuses (smtpspool(8), EXIT STATUS).
enum ExitStatus : int {
    k_exit_ok = 0,
    k_exit_failure = 1,
    k_exit_usage = 64,
    k_exit_dataerr = 65,
    k_exit_noinput = 66,
    k_exit_nouser = 67,
    k_exit_unavailable = 69,
    k_exit_software = 70,
    k_exit_cantcreat = 73,
    k_exit_ioerr = 74,
    k_exit_tempfail = 75,
    k_exit_noperm = 77,
    k_exit_config = 78,
};

// What to print instead of running: --help/--version (stdout, status 0) or an
// error (stderr, status 64 or 78).
struct ConfigExit {
    int status;
    std::string text;
};

std::variant<Config, ConfigExit> parse_config(int argc, const char* const* argv);

// Fills in the hostname (when unset), the default local domains and the
// authserv-id.
void apply_machine_defaults(Config& config, const std::string& fqdn);

// The effective settings as config-file lines (check-config).
std::string describe(const Config& config);

// The settings of the session that the options give (hostname, limits, ...);
// serve adds the client's.
SessionConfig session_config(const Config& config);

// The table of options, for tests: each option's name (without "--"), its
// one-letter name (or 0), whether it takes a value, whether the config file
// may set it, and the commands that take it on the command line.
enum class OptionKind { flag, text, yes_no, list }; // yes_no: "--x" alone means yes; list: repeatable
struct OptionInfo {
    std::string name;
    char short_name;
    OptionKind kind;
    bool in_config_file;
    std::vector<Subcommand> commands;
};
std::vector<OptionInfo> option_table();

// The command line of a `runq` with the same spool, log and delivery settings
// (serve --deliver-now), without the program name and the ids.
std::vector<std::string> runq_arguments(const Config& config);

// The machine's fully qualified name: gethostname(), canonicalised when it has no dot.
std::string machine_fqdn();

// What the policy layer reads of the configuration.
PolicyConfig policy_config(const Config& config);

} // namespace smtpspool
