// config: option tables per command, config-file parsing, validation.
#include "cli/config.hpp"

#include "base/cidr.hpp"
#include "base/clock.hpp"
#include "base/limits.hpp"
#include "smtp/smtp_address.hpp"

#include <boost/program_options.hpp>

#include <charconv>
#include <fstream>
#include <netdb.h>
#include <sstream>
#include <unistd.h>

namespace po = boost::program_options;

namespace smtpspool {
namespace {

#if __has_include("revision.h")
#include "revision.h"
#endif
#ifndef SMTPSPOOL_REVISION
#define SMTPSPOOL_REVISION ""
#endif

// "smtpspool 0.1.0 (git 1a2b3c4)", or without the revision when the build
// had no git checkout (the Debian package's source tree).
std::string version_text()
{
    std::string v = "smtpspool 0.1.0";
    if (std::string_view revision = SMTPSPOOL_REVISION; !revision.empty()) {
        v += " (git " + std::string(revision) + ")";
    }
    return v;
}

struct Usage {
    std::string text;
};
struct BadConfig {
    std::string text;
};

std::string command_name(Subcommand c)
{
    switch (c) {
    case Subcommand::serve:
        return "serve";
    case Subcommand::mailq:
        return "mailq";
    case Subcommand::runq:
        return "runq";
    case Subcommand::cat:
        return "cat";
    case Subcommand::remove:
        return "remove";
    case Subcommand::check_config:
        return "check-config";
    }
    return "serve";
}

std::optional<Subcommand> command_from(std::string_view s)
{
    for (Subcommand c : {Subcommand::serve, Subcommand::mailq, Subcommand::runq, Subcommand::cat, Subcommand::remove,
                         Subcommand::check_config}) {
        if (s == command_name(c)) {
            return c;
        }
    }
    return std::nullopt;
}

// Options every command takes.
po::options_description common_options()
{
    po::options_description d("Common options");
    // clang-format off
    d.add_options()
        ("help,h", "print this help and exit")
        ("version", "print the version and exit")
        ("config", po::value<std::string>()->value_name("FILE"), "read options from FILE (key = value lines)")
        ("spool", po::value<std::string>()->value_name("DIR"), "the spool directory (default /var/spool/smtpspool)")
        ("log", po::value<std::string>()->value_name("WHERE"), "syslog (default), stderr or none")
        ("hostname", po::value<std::string>()->value_name("NAME"), "our name in the greeting, Received: and bounces, and our HELO name (default: the machine's FQDN)")
        ("user", po::value<std::string>()->value_name("NAME"), "started as root: become this user (the spool's owner) before anything else");
    // clang-format on
    return d;
}

// Options of the SMTP session (serve, check-config, and the config file).
po::options_description session_options()
{
    po::options_description d("Session options");
    // clang-format off
    d.add_options()
        ("local-domain", po::value<std::vector<std::string>>()->value_name("D"), "a domain we accept mail for from anyone (repeatable; default: the hostname and localhost)")
        ("relay-client", po::value<std::vector<std::string>>()->value_name("CIDR"), "clients that may send to any domain (repeatable; default 127.0.0.0/8 and ::1)")
        ("max-message-size", po::value<std::string>()->value_name("N"), "octets per message, advertised in SIZE (default 20000000)")
        ("max-recipients", po::value<std::string>()->value_name("N"), "recipients per message (default 10000)")
        ("max-line-length", po::value<std::string>()->value_name("N"), "octets in a command line, CRLF included (default 2048, at least 512)")
        ("timeout", po::value<std::string>()->value_name("S"), "seconds to wait for the client (default 300)")
        ("max-errors", po::value<std::string>()->value_name("N"), "client errors before 421 and exit (default 20)")
        ("max-session-time", po::value<std::string>()->value_name("S"), "seconds a whole session may last, then 421 and exit (default 3600)")
        ("rfc821", po::value<std::string>()->implicit_value("yes")->value_name("yes|no"), "no ESMTP: EHLO gets 502")
        ("proxy-protocol", po::value<std::string>()->implicit_value("yes")->value_name("yes|no"), "read a PROXY protocol header (v1 or v2) before the greeting; the client is the address it names")
        ("proxy-from", po::value<std::vector<std::string>>()->value_name("CIDR"), "the load balancers that may send the header; others are cut off (repeatable; needed by --proxy-protocol)");
    // clang-format on
    return d;
}

// Options of TLS (serve, check-config, and the config file).
po::options_description tls_options()
{
    po::options_description d("TLS and AUTH options");
    // clang-format off
    d.add_options()
        ("tls-cert", po::value<std::string>()->value_name("FILE"), "PEM certificate chain: offer STARTTLS (read when a client asks for it)")
        ("tls-key", po::value<std::string>()->value_name("FILE"), "PEM private key of --tls-cert")
        ("require-tls", po::value<std::string>()->implicit_value("yes")->value_name("yes|no"), "530 to MAIL from network clients before STARTTLS")
        ("tls-on-connect", po::value<std::string>()->implicit_value("yes")->value_name("yes|no"), "TLS from the first octet, no STARTTLS (port 465)")
        ("auth-passwd", po::value<std::string>()->value_name("FILE"), "user:crypt-hash lines: offer AUTH PLAIN LOGIN inside TLS (and to local clients); authenticated clients may relay")
        ("auth-command", po::value<std::string>()->value_name("CMD"), "instead of --auth-passwd: a checkpassword program (credentials on fd 3; exit 0 good, 1 bad)");
    // clang-format on
    return d;
}

// Options of policy (serve, check-config, and the config file).
po::options_description policy_options()
{
    po::options_description d("Policy options");
    // clang-format off
    d.add_options()
        ("deny-client", po::value<std::vector<std::string>>()->value_name("CIDR"), "clients that get 554 instead of the greeting (repeatable)")
        ("allow-client", po::value<std::vector<std::string>>()->value_name("CIDR"), "exceptions to --deny-client; the most specific network decides (repeatable)")
        ("sender-deny", po::value<std::string>()->value_name("FILE"), "senders to refuse with 553: user@domain, @domain or @.domain per line")
        ("aliases", po::value<std::string>()->value_name("FILE"), "recipients to replace: 'name: address, address' per line")
        ("local-users", po::value<std::string>()->value_name("FILE"), "the local parts that exist in the local domains, one per line")
        ("reject-unknown-recipients", po::value<std::string>()->implicit_value("yes")->value_name("yes|no"), "550 for a local-domain recipient in neither --aliases nor --local-users")
        ("mail-hook", po::value<std::string>()->value_name("CMD"), "run CMD (by /bin/sh -c) at each MAIL FROM; see smtpspool(8), HOOKS")
        ("rcpt-hook", po::value<std::string>()->value_name("CMD"), "run CMD at each RCPT TO")
        ("data-hook", po::value<std::string>()->value_name("CMD"), "run CMD with each message on its standard input, before the reply")
        ("hook-timeout", po::value<std::string>()->value_name("TIME"), "how long a hook may run before 451 (default 30s)")
        ("add-envelope-to", po::value<std::string>()->implicit_value("yes")->value_name("yes|no"), "add X-Envelope-To: per recipient (shows Bcc recipients to all)")
        ("check-headers", po::value<std::string>()->implicit_value("yes")->value_name("yes|no"), "refuse a malformed header section with 550 5.6.0")
        ("max-hops", po::value<std::string>()->value_name("N"), "refuse a message with more Received: fields (554 5.4.6; default 100)")
        ("max-connections-per-minute", po::value<std::string>()->value_name("N"), "421 at the greeting above this many connections a minute (0: no limit)")
        ("max-connections-per-client-per-minute", po::value<std::string>()->value_name("N"), "the same per client address (IPv6: per /64; 0: no limit)")
        ("max-messages-per-session", po::value<std::string>()->value_name("N"), "421 at the MAIL after this many messages (0: no limit)");
    // clang-format on
    return d;
}

// Options of delivery (runq, and serve for --deliver-now).
po::options_description delivery_options()
{
    po::options_description d("Delivery options");
    // clang-format off
    d.add_options()
        ("route", po::value<std::vector<std::string>>()->value_name("DOMAIN=TRANSPORT"), "deliver mail for DOMAIN (and its subdomains; * for any) by smtp:HOST[:PORT], maildir:PATH or pipe:COMMAND (repeatable)")
        ("smarthost", po::value<std::string>()->value_name("HOST[:PORT]"), "the same as --route '*=smtp:HOST:PORT'")
        ("retry-schedule", po::value<std::string>()->value_name("LIST"), "waits after each run that leaves recipients pending, the last repeating (default 30m,1h,2h,4h,8h)")
        ("max-queue-time", po::value<std::string>()->value_name("TIME"), "give up and bounce after this long in the queue (default 5d)")
        ("smtp-timeout", po::value<std::string>()->value_name("TIME"), "one timeout for every SMTP client step (default: RFC 5321 section 4.5.3.2, and 60s to connect)")
        ("pipe-timeout", po::value<std::string>()->value_name("TIME"), "how long a pipe command may run (default 10m)")
        ("deliver-now", po::value<std::string>()->implicit_value("yes")->value_name("yes|no"), "serve: start a detached runq for each message accepted");
    // clang-format on
    return d;
}

po::options_description command_options(Subcommand c)
{
    po::options_description d(command_name(c) + " options");
    if (c == Subcommand::mailq) {
        d.add_options()("json", "one JSON object per message and line");
    }
    if (c == Subcommand::runq) {
        // clang-format off
        d.add_options()
            ("once", "one pass over the queue, then exit (the default without --interval)")
            ("interval", po::value<std::string>()->value_name("TIME"), "keep running: a pass, then wait TIME, and again");
        // clang-format on
    }
    return d;
}

std::string help_text(Subcommand c)
{
    std::ostringstream out;
    switch (c) {
    case Subcommand::serve:
        out << "Usage: smtpspool [serve] [OPTIONS]\n"
               "Serve one SMTP session on standard input and output and spool each accepted\n"
               "message. Started by inetd, xinetd, systemd (Accept=yes) or tcpserver.\n\n"
               "Commands: serve (default), mailq, runq, cat, remove, check-config, sendmail;\n"
               "'smtpspool COMMAND --help' describes each. See smtpspool(8).\n\n";
        out << common_options() << "\n"
            << session_options() << "\n"
            << tls_options() << "\n"
            << policy_options() << "\n"
            << delivery_options();
        break;
    case Subcommand::mailq:
        out << "Usage: smtpspool mailq [--json] [OPTIONS] [ID...]\n"
               "List the queue (all messages, or the IDs given), sendmail style or as JSON lines.\n\n";
        out << common_options() << "\n" << command_options(c);
        break;
    case Subcommand::runq:
        out << "Usage: smtpspool runq [--once | --interval TIME] [OPTIONS] [ID...]\n"
               "Deliver the queued messages that are due (or the IDs given, due or not) through\n"
               "their routes; retry, expire and bounce per recipient. See smtpspool(8).\n\n";
        out << common_options() << "\n" << delivery_options() << "\n" << command_options(c);
        break;
    case Subcommand::cat:
        out << "Usage: smtpspool cat [OPTIONS] ID\nPrint the stored message (message.eml) of one queued message.\n\n";
        out << common_options();
        break;
    case Subcommand::remove:
        out << "Usage: smtpspool remove [OPTIONS] ID\nDelete one queued message.\n\n";
        out << common_options();
        break;
    case Subcommand::check_config:
        out << "Usage: smtpspool check-config [OPTIONS]\n"
               "Validate the configuration (and read the policy files) and print the effective\n"
               "settings as config-file lines.\n\n";
        out << common_options() << "\n"
            << session_options() << "\n"
            << tls_options() << "\n"
            << policy_options() << "\n"
            << delivery_options();
        break;
    }
    return out.str();
}

std::size_t to_number(const std::string& name, const std::string& text, std::size_t min)
{
    std::size_t n = 0;
    auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), n);
    if (text.empty() || ec != std::errc() || ptr != text.data() + text.size()) {
        throw BadConfig{name + ": not a non-negative integer: '" + text + "'"};
    }
    if (n < min) {
        throw BadConfig{name + ": must be at least " + std::to_string(min)};
    }
    return n;
}

bool to_bool(const std::string& name, const std::string& text)
{
    if (text == "yes" || text == "true" || text == "1" || text == "on") {
        return true;
    }
    if (text == "no" || text == "false" || text == "0" || text == "off") {
        return false;
    }
    throw BadConfig{name + ": expected yes or no, got '" + text + "'"};
}

class Sources {
public:
    Sources(const po::variables_map& cmd, const po::variables_map& file) : m_cmd(cmd), m_file(file) {}
    const po::variable_value* find(const char* name) const
    {
        if (m_cmd.count(name)) {
            return &m_cmd[name];
        }
        if (m_file.count(name)) {
            return &m_file[name];
        }
        return nullptr;
    }
    template <typename T>
    std::optional<T> get(const char* name) const
    {
        if (auto* v = find(name)) {
            return v->as<T>();
        }
        return std::nullopt;
    }

private:
    const po::variables_map& m_cmd;
    const po::variables_map& m_file;
};

// Setters for the common kinds of option: each leaves the field as it is when
// the option is not given, and names the option in its error.
void set_text(const Sources& s, const char* name, std::optional<std::string>& field)
{
    if (auto v = s.get<std::string>(name)) {
        if (v->empty()) {
            throw BadConfig{std::string(name) + ": must not be empty"};
        }
        field = *v;
    }
}

void set_flag(const Sources& s, const char* name, bool& field)
{
    if (auto v = s.get<std::string>(name)) {
        field = to_bool(name, *v);
    }
}

void set_networks(const Sources& s, const char* name, std::vector<std::string>& field)
{
    if (auto v = s.get<std::vector<std::string>>(name)) {
        for (const std::string& n : *v) {
            if (!parse_network(n)) {
                throw BadConfig{std::string(name) + ": not an address or CIDR network: '" + n + "'"};
            }
        }
        field = *v;
    }
}

std::chrono::seconds to_duration(const std::string& name, const std::string& text)
{
    auto d = parse_duration(text);
    if (!d) {
        throw BadConfig{name + ": not a duration (like 90s, 30m, 4h, 5d): '" + text + "'"};
    }
    return *d;
}

void resolve_tls(Config& c, const Sources& s)
{
    set_text(s, "tls-cert", c.tls_cert);
    set_text(s, "tls-key", c.tls_key);
    set_flag(s, "require-tls", c.require_tls);
    set_flag(s, "tls-on-connect", c.tls_on_connect);
    set_text(s, "auth-passwd", c.auth_passwd);
    set_text(s, "auth-command", c.auth_command);
    if (c.auth_passwd && c.auth_command) {
        throw BadConfig{"auth-command: --auth-passwd and --auth-command exclude each other"};
    }
    if (c.tls_cert.has_value() != c.tls_key.has_value()) {
        throw BadConfig{c.tls_cert ? "tls-cert: needs --tls-key" : "tls-key: needs --tls-cert"};
    }
    if (!c.tls_cert && (c.require_tls || c.tls_on_connect)) {
        throw BadConfig{std::string(c.require_tls ? "require-tls" : "tls-on-connect") +
                        ": needs --tls-cert and --tls-key"};
    }
    if (c.require_tls && c.tls_on_connect) {
        c.require_tls = false; // every session is encrypted: nothing to require
    }
}

void resolve_policy(Config& c, const Sources& s)
{
    set_networks(s, "deny-client", c.deny_clients);
    set_networks(s, "allow-client", c.allow_clients);
    set_text(s, "sender-deny", c.sender_deny);
    set_text(s, "aliases", c.aliases);
    set_text(s, "local-users", c.local_users);
    set_text(s, "mail-hook", c.mail_hook);
    set_text(s, "rcpt-hook", c.rcpt_hook);
    set_text(s, "data-hook", c.data_hook);
    set_flag(s, "reject-unknown-recipients", c.reject_unknown_recipients);
    set_flag(s, "add-envelope-to", c.add_envelope_to);
    set_flag(s, "check-headers", c.check_headers);
    if (c.reject_unknown_recipients && !c.aliases && !c.local_users) {
        throw BadConfig{"reject-unknown-recipients: needs --local-users or --aliases (or both)"};
    }
    if (auto v = s.get<std::string>("hook-timeout")) {
        c.hook_timeout = to_duration("hook-timeout", *v);
        if (c.hook_timeout.count() < 1 || c.hook_timeout.count() > 3600) {
            throw BadConfig{"hook-timeout: between 1s and 1h"};
        }
    }
    auto number = [&](const char* name, std::size_t& field, std::size_t min) {
        if (auto v = s.get<std::string>(name)) {
            field = to_number(name, *v, min);
        }
    };
    number("max-hops", c.max_hops, 1);
    number("max-connections-per-minute", c.max_connections_per_minute, 0);
    number("max-connections-per-client-per-minute", c.max_connections_per_client_per_minute, 0);
    number("max-messages-per-session", c.max_messages_per_session, 0);
    for (std::size_t* n : {&c.max_connections_per_minute, &c.max_connections_per_client_per_minute}) {
        if (*n > 1000000) {
            throw BadConfig{"max-connections-per-minute: at most 1000000"};
        }
    }
}

void resolve_delivery(Config& c, const Sources& s, const po::variables_map& cmd)
{
    std::string why;
    if (auto v = s.get<std::vector<std::string>>("route")) {
        for (const std::string& text : *v) {
            auto r = parse_route(text, why);
            if (!r) {
                throw BadConfig{"route: " + why + ": '" + text + "'"};
            }
            for (const Route& other : c.routes) {
                if (other.domain == r->domain) {
                    throw BadConfig{"route: two routes for " + r->domain};
                }
            }
            c.routes.push_back(std::move(*r));
        }
    }
    if (auto v = s.get<std::string>("smarthost")) {
        auto r = smarthost_route(*v, why);
        if (!r) {
            throw BadConfig{"smarthost: " + why + ": '" + *v + "'"};
        }
        for (const Route& other : c.routes) {
            if (other.domain == "*") {
                throw BadConfig{"smarthost: a --route for * is given as well"};
            }
        }
        c.routes.push_back(std::move(*r));
    }
    if (auto v = s.get<std::string>("retry-schedule")) {
        auto sched = parse_schedule(*v, why);
        if (!sched) {
            throw BadConfig{"retry-schedule: " + why};
        }
        c.retry_schedule = *sched;
    }
    if (auto v = s.get<std::string>("max-queue-time")) {
        c.max_queue_time = to_duration("max-queue-time", *v);
    }
    if (auto v = s.get<std::string>("smtp-timeout")) {
        c.smtp_timeout = to_duration("smtp-timeout", *v);
    }
    if (auto v = s.get<std::string>("pipe-timeout")) {
        c.pipe_timeout = to_duration("pipe-timeout", *v);
    }
    set_flag(s, "deliver-now", c.deliver_now);
    if (cmd.count("interval")) {
        if (cmd.count("once")) {
            throw BadConfig{"interval: --once and --interval exclude each other"};
        }
        c.interval = to_duration("interval", cmd["interval"].as<std::string>());
    }
}

Config resolve(Subcommand command, const po::variables_map& cmd, const po::variables_map& file,
               const std::vector<std::string>& ids)
{
    Sources s(cmd, file);
    Config c;
    c.command = command;
    c.ids = ids;
    c.json = cmd.count("json") > 0;
    if (auto v = s.get<std::string>("config")) {
        c.config_file = *v;
    }
    if (auto v = s.get<std::string>("spool")) {
        if (v->empty()) {
            throw BadConfig{"spool: must not be empty"};
        }
        c.spool = *v;
    }
    if (auto v = s.get<std::string>("log")) {
        if (*v == "syslog") {
            c.log = LogTarget::syslog;
        } else if (*v == "stderr") {
            c.log = LogTarget::stderr_;
        } else if (*v == "none") {
            c.log = LogTarget::none;
        } else {
            throw BadConfig{"log: expected syslog, stderr or none, got '" + *v + "'"};
        }
    }
    if (auto v = s.get<std::string>("user")) {
        if (v->empty()) {
            throw BadConfig{"user: must not be empty"};
        }
        c.user = *v;
    }
    if (auto v = s.get<std::string>("hostname")) {
        if (!is_domain(*v)) {
            throw BadConfig{"hostname: not a domain name: '" + *v + "'"};
        }
        c.hostname = *v;
    }
    if (auto v = s.get<std::vector<std::string>>("local-domain")) {
        for (const std::string& d : *v) {
            if (!is_domain(d) && !is_address_literal(d)) {
                throw BadConfig{"local-domain: not a domain name or address literal: '" + d + "'"};
            }
        }
        c.local_domains = *v;
    }
    set_networks(s, "relay-client", c.relay_clients);
    auto number = [&](const char* name, std::size_t def, std::size_t min) {
        auto v = s.get<std::string>(name);
        return v ? to_number(name, *v, min) : def;
    };
    c.max_message_size = number("max-message-size", limits::k_default_max_message_size, 1);
    c.max_recipients = number("max-recipients", limits::k_default_max_recipients, 1);
    c.max_line_length = number("max-line-length", limits::k_default_max_line_length, limits::k_rfc_command_line);
    std::size_t timeout = number("timeout", limits::k_default_timeout_seconds, 1);
    if (timeout > 86400) {
        throw BadConfig{"timeout: at most 86400 seconds"};
    }
    c.timeout = static_cast<unsigned>(timeout);
    c.max_errors = number("max-errors", limits::k_default_max_errors, 1);
    std::size_t session_time = number("max-session-time", limits::k_default_max_session_time, 1);
    if (session_time > 7 * 86400) {
        throw BadConfig{"max-session-time: at most 604800 seconds"};
    }
    c.max_session_time = static_cast<unsigned>(session_time);
    set_flag(s, "rfc821", c.rfc821);
    resolve_tls(c, s);
    set_flag(s, "proxy-protocol", c.proxy_protocol);
    set_networks(s, "proxy-from", c.proxy_from);
    if (c.proxy_protocol && c.proxy_from.empty()) {
        throw BadConfig{"proxy-protocol: needs --proxy-from (the load balancers' addresses)"};
    }
    resolve_policy(c, s);
    resolve_delivery(c, s, cmd);
    return c;
}

po::variables_map read_file(const std::string& path, const po::options_description& all)
{
    std::ifstream file(path);
    if (!file) {
        throw BadConfig{"cannot read config file " + path};
    }
    std::ostringstream text;
    text << file.rdbuf();
    // Boost.ProgramOptions puts an unknown key into its error message by
    // replacing placeholders like %canonical_option% until none is left: a
    // key that contains one never ends (found by fuzz_config). No option
    // name has a '%', so such a key is refused here.
    std::istringstream lines(text.str());
    std::size_t number = 0;
    for (std::string line; std::getline(lines, line);) {
        ++number;
        std::string key = line.substr(0, std::min(line.find('='), line.find('#')));
        if (key.find('%') != std::string::npos) {
            throw BadConfig{path + " line " + std::to_string(number) + ": unrecognised option (no option has a '%')"};
        }
    }
    std::istringstream in(text.str());
    po::variables_map vm;
    try {
        po::store(po::parse_config_file(in, all, false), vm);
    } catch (const po::error& e) {
        throw BadConfig{path + ": " + e.what()};
    }
    if (vm.count("config")) {
        throw BadConfig{path + ": 'config' cannot be set in a config file"};
    }
    return vm;
}

} // namespace

std::variant<Config, ConfigExit> parse_config(int argc, const char* const* argv)
{
    std::vector<std::string> args(argv + (argc > 0 ? 1 : 0), argv + argc);
    Subcommand command = Subcommand::serve;
    if (!args.empty()) {
        if (auto c = command_from(args.front())) {
            command = *c;
            args.erase(args.begin());
        } else if (args.front().empty() || args.front().front() != '-') {
            return ConfigExit{k_exit_usage,
                              "smtpspool: unknown command '" + args.front() + "' (try 'smtpspool --help')\n"};
        }
    }
    std::string name = command_name(command);
    po::options_description visible;
    visible.add(common_options());
    if (command == Subcommand::serve || command == Subcommand::check_config) {
        visible.add(session_options());
        visible.add(tls_options());
        visible.add(policy_options());
    }
    if (command == Subcommand::serve || command == Subcommand::check_config || command == Subcommand::runq) {
        visible.add(delivery_options());
    }
    visible.add(command_options(command));
    po::options_description hidden;
    hidden.add_options()("id", po::value<std::vector<std::string>>());
    po::options_description cmdline;
    cmdline.add(visible).add(hidden);
    po::positional_options_description positional;
    bool takes_ids = command == Subcommand::mailq || command == Subcommand::runq || command == Subcommand::cat ||
                     command == Subcommand::remove;
    if (takes_ids) {
        positional.add("id", -1);
    }
    try {
        po::variables_map cmd;
        po::store(po::command_line_parser(args).options(cmdline).positional(positional).run(), cmd);
        if (cmd.count("help")) {
            return ConfigExit{k_exit_ok, help_text(command)};
        }
        if (cmd.count("version")) {
            return ConfigExit{k_exit_ok, version_text() + "\n"};
        }
        std::vector<std::string> ids;
        if (cmd.count("id")) {
            ids = cmd["id"].as<std::vector<std::string>>();
        }
        if ((command == Subcommand::cat || command == Subcommand::remove) && ids.size() != 1) {
            return ConfigExit{k_exit_usage, "smtpspool " + name + ": exactly one ID expected\n"};
        }
        po::variables_map file;
        if (cmd.count("config")) {
            po::options_description all;
            all.add(common_options())
                .add(session_options())
                .add(tls_options())
                .add(policy_options())
                .add(delivery_options());
            file = read_file(cmd["config"].as<std::string>(), all);
        }
        return resolve(command, cmd, file, ids);
    } catch (const po::error& e) {
        return ConfigExit{k_exit_usage,
                          "smtpspool " + name + ": " + e.what() + " (try 'smtpspool " + name + " --help')\n"};
    } catch (const BadConfig& e) {
        return ConfigExit{k_exit_config, "smtpspool " + name + ": configuration error: " + e.text + "\n"};
    }
}

void apply_machine_defaults(Config& config, const std::string& fqdn)
{
    if (config.hostname.empty()) {
        config.hostname = fqdn;
    }
    if (config.local_domains.empty()) {
        config.local_domains = {config.hostname, "localhost"};
    }
}

std::string describe(const Config& c)
{
    std::ostringstream out;
    out << "spool = " << c.spool << "\n";
    out << "hostname = " << c.hostname << "\n";
    if (c.user) {
        out << "user = " << *c.user << "\n";
    }
    for (const std::string& d : c.local_domains) {
        out << "local-domain = " << d << "\n";
    }
    for (const std::string& n : c.relay_clients) {
        out << "relay-client = " << n << "\n";
    }
    out << "max-message-size = " << c.max_message_size << "\n";
    out << "max-recipients = " << c.max_recipients << "\n";
    out << "max-line-length = " << c.max_line_length << "\n";
    out << "timeout = " << c.timeout << "\n";
    out << "max-errors = " << c.max_errors << "\n";
    out << "max-session-time = " << c.max_session_time << "\n";
    out << "rfc821 = " << (c.rfc821 ? "yes" : "no") << "\n";
    if (c.tls_cert) {
        out << "tls-cert = " << *c.tls_cert << "\n";
        out << "tls-key = " << *c.tls_key << "\n";
    }
    out << "require-tls = " << (c.require_tls ? "yes" : "no") << "\n";
    out << "tls-on-connect = " << (c.tls_on_connect ? "yes" : "no") << "\n";
    if (c.auth_passwd) {
        out << "auth-passwd = " << *c.auth_passwd << "\n";
    }
    if (c.auth_command) {
        out << "auth-command = " << *c.auth_command << "\n";
    }
    out << "proxy-protocol = " << (c.proxy_protocol ? "yes" : "no") << "\n";
    for (const std::string& n : c.proxy_from) {
        out << "proxy-from = " << n << "\n";
    }
    for (const std::string& n : c.deny_clients) {
        out << "deny-client = " << n << "\n";
    }
    for (const std::string& n : c.allow_clients) {
        out << "allow-client = " << n << "\n";
    }
    auto optional = [&](const char* name, const std::optional<std::string>& v) {
        if (v) {
            out << name << " = " << *v << "\n";
        }
    };
    optional("sender-deny", c.sender_deny);
    optional("aliases", c.aliases);
    optional("local-users", c.local_users);
    out << "reject-unknown-recipients = " << (c.reject_unknown_recipients ? "yes" : "no") << "\n";
    optional("mail-hook", c.mail_hook);
    optional("rcpt-hook", c.rcpt_hook);
    optional("data-hook", c.data_hook);
    out << "hook-timeout = " << format_duration(c.hook_timeout) << "\n";
    out << "add-envelope-to = " << (c.add_envelope_to ? "yes" : "no") << "\n";
    out << "check-headers = " << (c.check_headers ? "yes" : "no") << "\n";
    out << "max-hops = " << c.max_hops << "\n";
    out << "max-connections-per-minute = " << c.max_connections_per_minute << "\n";
    out << "max-connections-per-client-per-minute = " << c.max_connections_per_client_per_minute << "\n";
    out << "max-messages-per-session = " << c.max_messages_per_session << "\n";
    for (const Route& r : c.routes) {
        out << "route = " << r.domain << "=" << r.transport.text << "\n";
    }
    out << "retry-schedule = " << format_schedule(c.retry_schedule) << "\n";
    out << "max-queue-time = " << format_duration(c.max_queue_time) << "\n";
    if (c.smtp_timeout) {
        out << "smtp-timeout = " << format_duration(*c.smtp_timeout) << "\n";
    }
    out << "pipe-timeout = " << format_duration(c.pipe_timeout) << "\n";
    out << "deliver-now = " << (c.deliver_now ? "yes" : "no") << "\n";
    out << "log = "
        << (c.log == LogTarget::syslog    ? "syslog"
            : c.log == LogTarget::stderr_ ? "stderr"
                                          : "none")
        << "\n";
    return out.str();
}

std::vector<std::string> runq_arguments(const Config& c)
{
    std::vector<std::string> args{"runq",
                                  "--spool",
                                  c.spool,
                                  "--hostname",
                                  c.hostname,
                                  "--log",
                                  c.log == LogTarget::syslog    ? "syslog"
                                  : c.log == LogTarget::stderr_ ? "stderr"
                                                                : "none",
                                  "--retry-schedule",
                                  format_schedule(c.retry_schedule),
                                  "--max-queue-time",
                                  format_duration(c.max_queue_time),
                                  "--pipe-timeout",
                                  format_duration(c.pipe_timeout)};
    if (c.smtp_timeout) {
        args.insert(args.end(), {"--smtp-timeout", format_duration(*c.smtp_timeout)});
    }
    for (const Route& r : c.routes) {
        args.insert(args.end(), {"--route", r.domain + "=" + r.transport.text});
    }
    return args;
}

std::string machine_fqdn()
{
    char name[256] = {};
    if (::gethostname(name, sizeof name - 1) != 0 || name[0] == '\0') {
        return "localhost";
    }
    std::string host = name;
    if (host.find('.') != std::string::npos) {
        return host;
    }
    addrinfo hints{};
    hints.ai_flags = AI_CANONNAME;
    addrinfo* res = nullptr;
    if (::getaddrinfo(host.c_str(), nullptr, &hints, &res) == 0 && res != nullptr) {
        if (res->ai_canonname != nullptr && is_domain(res->ai_canonname)) {
            host = res->ai_canonname;
        }
        ::freeaddrinfo(res);
    }
    return host;
}

PolicyConfig policy_config(const Config& config)
{
    PolicyConfig p;
    p.hostname = config.hostname;
    p.local_domains = config.local_domains;
    p.max_recipients = config.max_recipients;
    p.sender_deny = config.sender_deny;
    p.aliases = config.aliases;
    p.local_users = config.local_users;
    p.auth_passwd = config.auth_passwd;
    p.reject_unknown_recipients = config.reject_unknown_recipients;
    p.mail_hook = config.mail_hook;
    p.rcpt_hook = config.rcpt_hook;
    p.data_hook = config.data_hook;
    p.hook_timeout = config.hook_timeout;
    return p;
}

} // namespace smtpspool
