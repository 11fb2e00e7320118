// config: one table of options (k_options) drives the command line, the
// config file, --help, check-config's settings (describe) and the session's
// settings; the defaults are those of Config (config.hpp).
#include "cli/config.hpp"
#include "server/milter.hpp"

#include "base/cidr.hpp"
#include "base/clock.hpp"
#include "base/limits.hpp"
#include "delivery/dns_resolver.hpp"
#include "smtp/policy_delegation.hpp"
#include "smtp/session.hpp"
#include "smtp/smtp_address.hpp"

#include <boost/program_options.hpp>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <fstream>
#include <limits>
#include <netdb.h>
#include <span>
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

struct BadConfig {
    std::string text;
};

constexpr std::pair<Subcommand, const char*> k_commands[] = {
    {Subcommand::serve, "serve"},     {Subcommand::mailq, "mailq"},     {Subcommand::runq, "runq"},
    {Subcommand::cat, "cat"},         {Subcommand::remove, "remove"},   {Subcommand::check_config, "check-config"},
    {Subcommand::hold, "hold"},       {Subcommand::release, "release"}, {Subcommand::requeue, "requeue"},
    {Subcommand::bounce, "bounce"},   {Subcommand::stats, "stats"}};

const char* command_name(Subcommand c)
{
    for (auto [command, name] : k_commands) {
        if (command == c) {
            return name;
        }
    }
    return "serve";
}

std::optional<Subcommand> command_from(std::string_view s)
{
    for (auto [command, name] : k_commands) {
        if (s == name) {
            return command;
        }
    }
    return std::nullopt;
}

constexpr unsigned bit(Subcommand c) { return 1u << static_cast<unsigned>(c); }
constexpr unsigned k_changing = bit(Subcommand::hold) | bit(Subcommand::release) | bit(Subcommand::requeue) |
                                bit(Subcommand::bounce); // the queue tools that change envelopes
constexpr unsigned k_selecting = k_changing | bit(Subcommand::mailq); // and take the filters
constexpr unsigned k_every = bit(Subcommand::serve) | bit(Subcommand::mailq) | bit(Subcommand::runq) |
                             bit(Subcommand::cat) | bit(Subcommand::remove) | bit(Subcommand::check_config) |
                             k_changing | bit(Subcommand::stats);
constexpr unsigned k_serving = bit(Subcommand::serve) | bit(Subcommand::check_config);
constexpr unsigned k_delivering = k_serving | bit(Subcommand::runq);

// The sections of --help, in order; options of the command group are not read
// from the config file.
enum class Group { common, session, tls, policy, delivery, command };
constexpr Group k_groups[] = {Group::common, Group::session,  Group::tls,
                              Group::policy, Group::delivery, Group::command};

std::string group_title(Group g, Subcommand c)
{
    constexpr const char* k_titles[] = {"Common options", "Session options", "TLS and AUTH options", "Policy options",
                                        "Delivery options"};
    return g == Group::command ? std::string(command_name(c)) + " options" : k_titles[static_cast<int>(g)];
}

using Values = std::span<const std::string>; // a text option's one value, a list's each
using Lines = std::vector<std::string>;      // a setting's values in the config file

struct Option;
using Setter = void (*)(Config&, const Option&, Values);
using Shower = void (*)(const Config&, Lines&);
using SessionCopy = void (*)(const Config&, SessionConfig&);

struct Option {
    const char* name;
    char short_name;
    OptionKind kind;
    Group group;
    unsigned commands; // bits of the commands that take it on the command line
    const char* value_name;
    const char* help;                   // without its default, which --help adds
    Setter set;                         // parses, checks and stores the value (null: only counted)
    Shower show;                        // the setting as check-config prints it (null: not a setting)
    SessionCopy session = nullptr;      // the field of SessionConfig it also sets
    const char* default_text = nullptr; // the default when it is no value of Config
    std::size_t min = 0;                // numbers and durations (in seconds)
    std::size_t max = std::numeric_limits<std::size_t>::max();
};

// Parsers of values.

std::size_t to_number(const char* name, const std::string& text, std::size_t min)
{
    std::size_t n = 0;
    auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), n);
    if (text.empty() || ec != std::errc() || ptr != text.data() + text.size()) {
        throw BadConfig{std::string(name) + ": not a non-negative integer: '" + text + "'"};
    }
    if (n < min) {
        throw BadConfig{std::string(name) + ": must be at least " + std::to_string(min)};
    }
    return n;
}

bool to_bool(const char* name, const std::string& text)
{
    if (text == "yes" || text == "true" || text == "1" || text == "on") {
        return true;
    }
    if (text == "no" || text == "false" || text == "0" || text == "off") {
        return false;
    }
    throw BadConfig{std::string(name) + ": expected yes or no, got '" + text + "'"};
}

std::chrono::seconds to_duration(const char* name, const std::string& text)
{
    auto d = parse_duration(text);
    if (!d) {
        throw BadConfig{std::string(name) + ": not a duration (like 90s, 30m, 4h, 5d): '" + text + "'"};
    }
    return *d;
}

const char* log_name(LogTarget t)
{
    return t == LogTarget::syslog ? "syslog" : t == LogTarget::stderr_ ? "stderr" : "none";
}

// Setters: Field is the member of Config the option sets.

template <auto Field>
void set_text(Config& c, const Option& o, Values v)
{
    if (v.front().empty()) {
        throw BadConfig{std::string(o.name) + ": must not be empty"};
    }
    c.*Field = v.front();
}

template <auto Field>
void set_flag(Config& c, const Option& o, Values v)
{
    c.*Field = to_bool(o.name, v.front());
}

template <auto Field>
void set_number(Config& c, const Option& o, Values v)
{
    std::size_t n = to_number(o.name, v.front(), o.min);
    if (n > o.max) {
        throw BadConfig{std::string(o.name) + ": at most " + std::to_string(o.max)};
    }
    c.*Field = n;
}

template <auto Field>
void set_seconds(Config& c, const Option& o, Values v)
{
    std::size_t n = to_number(o.name, v.front(), o.min);
    if (n > o.max) {
        throw BadConfig{std::string(o.name) + ": at most " + std::to_string(o.max) + " seconds"};
    }
    c.*Field = static_cast<unsigned>(n);
}

template <auto Field>
void set_duration(Config& c, const Option& o, Values v)
{
    std::chrono::seconds d = to_duration(o.name, v.front());
    if (static_cast<std::size_t>(d.count()) < o.min || static_cast<std::size_t>(d.count()) > o.max) {
        throw BadConfig{std::string(o.name) + ": between " +
                        format_duration(std::chrono::seconds(static_cast<long>(o.min))) + " and " +
                        format_duration(std::chrono::seconds(static_cast<long>(o.max)))};
    }
    c.*Field = d;
}

template <auto Field>
void set_networks(Config& c, const Option& o, Values v)
{
    for (const std::string& n : v) {
        if (!parse_network(n)) {
            throw BadConfig{std::string(o.name) + ": not an address or CIDR network: '" + n + "'"};
        }
    }
    (c.*Field).assign(v.begin(), v.end());
}

void set_policy_services(Config& c, const Option& o, Values v)
{
    std::string why;
    for (const std::string& text : v) {
        if (!parse_policy_service(text, why)) {
            throw BadConfig{std::string(o.name) + ": " + why + ": '" + text + "'"};
        }
    }
    c.policy_services.assign(v.begin(), v.end());
}

void set_policy_default_action(Config& c, const Option& o, Values v)
{
    if (v.front() != "tempfail" && v.front() != "dunno") {
        throw BadConfig{std::string(o.name) + ": expected tempfail or dunno, got '" + v.front() + "'"};
    }
    c.policy_default_action = v.front();
}

void set_config(Config& c, const Option&, Values v) { c.config_file = v.front(); }

void set_json(Config& c, const Option&, Values) { c.json = true; }

template <auto Field>
void set_true(Config& c, const Option&, Values)
{
    c.*Field = true;
}

void set_log(Config& c, const Option&, Values v)
{
    for (LogTarget t : {LogTarget::syslog, LogTarget::stderr_, LogTarget::none}) {
        if (v.front() == log_name(t)) {
            c.log = t;
            return;
        }
    }
    throw BadConfig{"log: expected syslog, stderr or none, got '" + v.front() + "'"};
}

void set_log_format(Config& c, const Option&, Values v)
{
    if (v.front() == "logfmt" || v.front() == "json") {
        c.log_format = v.front() == "json" ? LogFormat::json : LogFormat::logfmt;
        return;
    }
    throw BadConfig{"log-format: expected logfmt or json, got '" + v.front() + "'"};
}

void set_hostname(Config& c, const Option&, Values v)
{
    if (!is_domain(v.front())) {
        throw BadConfig{"hostname: not a domain name: '" + v.front() + "'"};
    }
    c.hostname = v.front();
}

// RFC 8601 §2.2: an authserv-id is a value (RFC 2045 §5.1); we take a token
// (a host name is one), which needs no quoting when compared.
void set_authserv_id(Config& c, const Option&, Values v)
{
    const std::string& id = v.front();
    const bool token = !id.empty() && std::all_of(id.begin(), id.end(), [](char ch) {
        auto u = static_cast<unsigned char>(ch);
        return u > 0x20 && u < 0x7f && std::string_view("()<>@,;:\\\"/[]?=").find(ch) == std::string_view::npos;
    });
    if (!token) {
        throw BadConfig{"authserv-id: not a token (RFC 2045 section 5.1): '" + id + "'"};
    }
    c.authserv_id = id;
}

void set_local_domains(Config& c, const Option&, Values v)
{
    for (const std::string& d : v) {
        if (!is_domain(d) && !is_address_literal(d)) {
            throw BadConfig{"local-domain: not a domain name or address literal: '" + d + "'"};
        }
    }
    c.local_domains.assign(v.begin(), v.end());
}

void set_routes(Config& c, const Option&, Values v)
{
    std::string why;
    for (const std::string& text : v) {
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

void set_smarthost(Config& c, const Option&, Values v)
{
    std::string why;
    auto r = smarthost_route(v.front(), why);
    if (!r) {
        throw BadConfig{"smarthost: " + why + ": '" + v.front() + "'"};
    }
    for (const Route& other : c.routes) {
        if (other.domain == "*") {
            throw BadConfig{"smarthost: a --route for * is given as well"};
        }
    }
    c.routes.push_back(std::move(*r));
}

void set_mx_port(Config& c, const Option& o, Values v)
{
    std::size_t n = to_number(o.name, v.front(), o.min);
    if (n > o.max) {
        throw BadConfig{std::string(o.name) + ": a port, 1 to 65535"};
    }
    c.mx_port = n;
}

void set_dns_servers(Config& c, const Option& o, Values v)
{
    std::string why;
    for (const std::string& text : v) {
        if (!parse_dns_server(text, why)) {
            throw BadConfig{std::string(o.name) + ": " + why + ": '" + text + "'"};
        }
    }
    if (v.size() > k_max_dns_servers) {
        throw BadConfig{std::string(o.name) + ": at most " + std::to_string(k_max_dns_servers) + " name servers"};
    }
    c.dns_servers.assign(v.begin(), v.end());
}

void set_milters(Config& c, const Option&, Values v)
{
    std::string why;
    for (const std::string& text : v) {
        if (!parse_milter_spec(text, why)) {
            throw BadConfig{"milter: " + why + ": '" + text + "'"};
        }
    }
    c.milters.assign(v.begin(), v.end());
}

void set_milter_default_action(Config& c, const Option&, Values v)
{
    if (!parse_milter_default(v.front())) {
        throw BadConfig{"milter-default-action: expected tempfail, accept or reject, got '" + v.front() + "'"};
    }
    c.milter_default_action = v.front();
}

void set_schedule(Config& c, const Option&, Values v)
{
    std::string why;
    auto schedule = parse_schedule(v.front(), why);
    if (!schedule) {
        throw BadConfig{"retry-schedule: " + why};
    }
    c.retry_schedule = std::move(*schedule);
}

void set_smtp_tls(Config& c, const Option&, Values v)
{
    auto level = tls_level_from_name(v.front());
    if (!level) {
        throw BadConfig{"smtp-tls: expected none, may, encrypt or verify, got '" + v.front() + "'"};
    }
    c.smtp_tls = *level;
}

void set_smtp_tls_policy(Config& c, const Option&, Values v)
{
    std::string why;
    for (const std::string& text : v) {
        auto entry = parse_tls_policy_entry(text, why);
        if (!entry) {
            throw BadConfig{"smtp-tls-policy: " + why + ": '" + text + "'"};
        }
        for (const TlsPolicyEntry& other : c.smtp_tls_policy) {
            if (other.host == entry->host) {
                throw BadConfig{"smtp-tls-policy: two levels for " + entry->host};
            }
        }
        c.smtp_tls_policy.push_back(std::move(*entry));
    }
}

// Showers: the values of a setting as config-file text.

std::string text_of(const std::string& s) { return s; }
std::string text_of(bool b) { return b ? "yes" : "no"; }
std::string text_of(std::size_t n) { return std::to_string(n); }
std::string text_of(unsigned n) { return std::to_string(n); }
std::string text_of(std::chrono::seconds d) { return format_duration(d); }
std::string text_of(LogTarget t) { return log_name(t); }
std::string text_of(LogFormat f) { return f == LogFormat::json ? "json" : "logfmt"; }

template <typename T>
void add_lines(Lines& out, const T& v)
{
    out.push_back(text_of(v));
}

template <typename T>
void add_lines(Lines& out, const std::optional<T>& v)
{
    if (v) {
        out.push_back(text_of(*v));
    }
}

template <typename T>
void add_lines(Lines& out, const std::vector<T>& v)
{
    for (const T& x : v) {
        out.push_back(text_of(x));
    }
}

template <auto Field>
void show(const Config& c, Lines& out)
{
    add_lines(out, c.*Field);
}

void show_routes(const Config& c, Lines& out)
{
    for (const Route& r : c.routes) {
        out.push_back(r.domain + "=" + r.transport.text);
    }
}

void show_schedule(const Config& c, Lines& out) { out.push_back(format_schedule(c.retry_schedule)); }

void show_smtp_tls(const Config& c, Lines& out) { out.push_back(std::string(tls_level_name(c.smtp_tls))); }

void show_smtp_tls_policy(const Config& c, Lines& out)
{
    for (const TlsPolicyEntry& e : c.smtp_tls_policy) {
        bool v6 = e.host.find(':') != std::string::npos;
        out.push_back((v6 ? "[" + e.host + "]" : e.host) + "=" + std::string(tls_level_name(e.level)));
    }
}

template <auto From, auto To>
void copy(const Config& c, SessionConfig& s)
{
    s.*To = c.*From;
}

// The session learns of the routes (--route and --smarthost) only which
// domains go by SMTP.
void copy_smtp_routes(const Config& c, SessionConfig& s)
{
    if (c.routes.empty()) {
        s.routed_by_smtp = nullptr;
        return;
    }
    s.routed_by_smtp = [routes = c.routes](std::string_view domain) {
        const Route* r = find_route(routes, domain);
        return r != nullptr && (r->transport.kind == TransportKind::smtp || r->transport.kind == TransportKind::mx);
    };
}

using K = OptionKind;
using G = Group;
using C = Config;
using S = SessionConfig;

// clang-format off
constexpr Option k_options[] = {
    {"help", 'h', K::flag, G::common, k_every, nullptr, "print this help and exit", nullptr, nullptr},
    {"version", 0, K::flag, G::common, k_every, nullptr, "print the version and exit", nullptr, nullptr},
    {"config", 0, K::text, G::common, k_every, "FILE", "read options from FILE (key = value lines)", set_config, nullptr},
    {"spool", 0, K::text, G::common, k_every, "DIR", "the spool directory", set_text<&C::spool>, show<&C::spool>},
    {"log", 0, K::text, G::common, k_every, "WHERE", "syslog, stderr or none", set_log, show<&C::log>},
    {"log-format", 0, K::text, G::common, k_every, "FORMAT", "logfmt (key=value) or json (one object per line)",
     set_log_format, show<&C::log_format>},
    {"hostname", 0, K::text, G::common, k_every, "NAME", "our name in the greeting, Received: and bounces, and our HELO name",
     set_hostname, show<&C::hostname>, copy<&C::hostname, &S::hostname>, "the machine's FQDN"},
    {"user", 0, K::text, G::common, k_every, "NAME", "started as root: become this user (the spool's owner) before anything else",
     set_text<&C::user>, show<&C::user>},

    {"local-domain", 0, K::list, G::session, k_serving, "D", "a domain we accept mail for from anyone",
     set_local_domains, show<&C::local_domains>, copy<&C::local_domains, &S::local_domains>, "the hostname and localhost"},
    {"relay-client", 0, K::list, G::session, k_serving, "CIDR", "clients that may send to any domain",
     set_networks<&C::relay_clients>, show<&C::relay_clients>},
    {"allow-untrusted-routing", 0, K::yes_no, G::session, k_serving, "yes|no",
     "take local recipients with %, ! or @ in the local part from clients that may not relay too",
     set_flag<&C::allow_untrusted_routing>, show<&C::allow_untrusted_routing>,
     copy<&C::allow_untrusted_routing, &S::allow_untrusted_routing>},
    {"max-message-size", 0, K::text, G::session, k_delivering, "N", "octets per message, advertised in SIZE (runq: the largest an amqp route sends, plus 64 KiB)",
     set_number<&C::max_message_size>, show<&C::max_message_size>, copy<&C::max_message_size, &S::max_message_size>, nullptr, 1},
    {"max-recipients", 0, K::text, G::session, k_serving, "N", "recipients per message",
     set_number<&C::max_recipients>, show<&C::max_recipients>, copy<&C::max_recipients, &S::max_recipients>, nullptr, 1},
    {"max-line-length", 0, K::text, G::session, k_serving, "N", "octets in a command line, CRLF included",
     set_number<&C::max_line_length>, show<&C::max_line_length>, copy<&C::max_line_length, &S::max_line_length>, nullptr, limits::k_rfc_command_line},
    {"max-data-line-length", 0, K::text, G::session, k_serving, "N",
     "octets in a line of a network client's message, CRLF not counted (longer: 550 5.6.0); 0: no limit",
     set_number<&C::max_data_line_length>, show<&C::max_data_line_length>,
     copy<&C::max_data_line_length, &S::max_data_line_length>},
    {"timeout", 0, K::text, G::session, k_serving, "S", "seconds to wait for the client",
     set_seconds<&C::timeout>, show<&C::timeout>, nullptr, nullptr, 1, 86400},
    {"max-errors", 0, K::text, G::session, k_serving, "N", "client errors before 421 and exit",
     set_number<&C::max_errors>, show<&C::max_errors>, copy<&C::max_errors, &S::max_errors>, nullptr, 1},
    {"max-session-time", 0, K::text, G::session, k_serving, "S", "seconds a whole session may last, then 421 and exit",
     set_seconds<&C::max_session_time>, show<&C::max_session_time>, nullptr, nullptr, 1, 7 * 86400},
    {"rfc821", 0, K::yes_no, G::session, k_serving, "yes|no", "no ESMTP: EHLO gets 502",
     set_flag<&C::rfc821>, show<&C::rfc821>, copy<&C::rfc821, &S::rfc821>},
    {"trust-unix-socket", 0, K::yes_no, G::session, k_serving, "yes|no",
     "a client on a UNIX-domain socket is local (may relay, LF line ends, AUTH in the clear), not a stranger",
     set_flag<&C::trust_unix_socket>, show<&C::trust_unix_socket>},
    {"proxy-protocol", 0, K::yes_no, G::session, k_serving, "yes|no",
     "read a PROXY protocol header (v1 or v2) before the greeting; the client is the address it names",
     set_flag<&C::proxy_protocol>, show<&C::proxy_protocol>},
    {"proxy-from", 0, K::list, G::session, k_serving, "CIDR",
     "the load balancers that may send the header, needed by --proxy-protocol; others are cut off",
     set_networks<&C::proxy_from>, show<&C::proxy_from>},

    {"tls-cert", 0, K::text, G::tls, k_serving, "FILE", "PEM certificate chain: offer STARTTLS (read when a client asks for it)",
     set_text<&C::tls_cert>, show<&C::tls_cert>},
    {"tls-key", 0, K::text, G::tls, k_serving, "FILE", "PEM private key of --tls-cert", set_text<&C::tls_key>, show<&C::tls_key>},
    {"require-tls", 0, K::yes_no, G::tls, k_serving, "yes|no", "530 to MAIL from network clients before STARTTLS",
     set_flag<&C::require_tls>, show<&C::require_tls>, copy<&C::require_tls, &S::require_tls>},
    {"tls-on-connect", 0, K::yes_no, G::tls, k_serving, "yes|no", "TLS from the first octet, no STARTTLS (port 465)",
     set_flag<&C::tls_on_connect>, show<&C::tls_on_connect>},
    {"auth-passwd", 0, K::text, G::tls, k_serving, "FILE",
     "user:crypt-hash lines: offer AUTH PLAIN LOGIN inside TLS (and to local clients); authenticated clients may relay",
     set_text<&C::auth_passwd>, show<&C::auth_passwd>},
    {"auth-command", 0, K::text, G::tls, k_serving, "CMD",
     "instead of --auth-passwd: a checkpassword program (credentials on fd 3; exit 0 good, 1 bad)",
     set_text<&C::auth_command>, show<&C::auth_command>},

    {"deny-client", 0, K::list, G::policy, k_serving, "CIDR", "clients that get 554 instead of the greeting",
     set_networks<&C::deny_clients>, show<&C::deny_clients>},
    {"allow-client", 0, K::list, G::policy, k_serving, "CIDR", "exceptions to --deny-client; the most specific network decides",
     set_networks<&C::allow_clients>, show<&C::allow_clients>},
    {"sender-deny", 0, K::text, G::policy, k_serving, "FILE", "senders to refuse with 553: user@domain, @domain or @.domain per line",
     set_text<&C::sender_deny>, show<&C::sender_deny>},
    {"aliases", 0, K::text, G::policy, k_serving, "FILE", "recipients to replace: 'name: address, address' per line",
     set_text<&C::aliases>, show<&C::aliases>},
    {"local-users", 0, K::text, G::policy, k_serving, "FILE", "the local parts that exist in the local domains, one per line",
     set_text<&C::local_users>, show<&C::local_users>},
    {"reject-unknown-recipients", 0, K::yes_no, G::policy, k_serving, "yes|no",
     "550 for a local-domain recipient in neither --aliases nor --local-users",
     set_flag<&C::reject_unknown_recipients>, show<&C::reject_unknown_recipients>},
    {"mail-hook", 0, K::text, G::policy, k_serving, "CMD", "run CMD (by /bin/sh -c) at each MAIL FROM; see smtpspool(8), Hooks",
     set_text<&C::mail_hook>, show<&C::mail_hook>},
    {"rcpt-hook", 0, K::text, G::policy, k_serving, "CMD", "run CMD at each RCPT TO", set_text<&C::rcpt_hook>, show<&C::rcpt_hook>},
    {"data-hook", 0, K::text, G::policy, k_serving, "CMD", "run CMD with each message on its standard input, before the reply",
     set_text<&C::data_hook>, show<&C::data_hook>},
    {"hook-timeout", 0, K::text, G::policy, k_serving, "TIME", "how long a hook may run before 451",
     set_duration<&C::hook_timeout>, show<&C::hook_timeout>, nullptr, nullptr, 1, 3600},
    {"policy-service", 0, K::list, G::policy, k_serving, "SPEC",
     "a policy service (Postfix's protocol) at unix:/path or inet:host:port, asked at each RCPT after our own checks; in order",
     set_policy_services, show<&C::policy_services>},
    {"policy-at-data", 0, K::yes_no, G::policy, k_serving, "yes|no",
     "ask the policy services at the end of each message too (END-OF-MESSAGE)",
     set_flag<&C::policy_at_data>, show<&C::policy_at_data>},
    {"policy-timeout", 0, K::text, G::policy, k_serving, "TIME",
     "how long one question to a policy service may take (connect, request, answer)",
     set_duration<&C::policy_timeout>, show<&C::policy_timeout>, nullptr, nullptr, 1, 3600},
    {"policy-default-action", 0, K::text, G::policy, k_serving, "ACTION",
     "when a policy service is down, slow or answers nonsense: tempfail (451 4.3.5) or dunno (ask the next, accept)",
     set_policy_default_action, show<&C::policy_default_action>},
    {"add-envelope-to", 0, K::yes_no, G::policy, k_serving, "yes|no", "add X-Envelope-To: per recipient (shows Bcc recipients to all)",
     set_flag<&C::add_envelope_to>, show<&C::add_envelope_to>, copy<&C::add_envelope_to, &S::add_envelope_to>},
    {"check-headers", 0, K::yes_no, G::policy, k_serving, "yes|no", "refuse a malformed header section with 550 5.6.0",
     set_flag<&C::check_headers>, show<&C::check_headers>, copy<&C::check_headers, &S::check_headers>},
    {"max-hops", 0, K::text, G::policy, k_serving, "N", "refuse a message with more Received: fields (554 5.4.6)",
     set_number<&C::max_hops>, show<&C::max_hops>, copy<&C::max_hops, &S::max_hops>, nullptr, 1},
    {"authserv-id", 0, K::text, G::policy, k_serving, "ID",
     "take out incoming Authentication-Results: fields that claim ID (RFC 8601 section 5)",
     set_authserv_id, show<&C::authserv_id>, copy<&C::authserv_id, &S::authserv_id>, "the hostname"},
    {"max-connections-per-minute", 0, K::text, G::policy, k_serving, "N",
     "421 at the greeting above this many connections a minute, 0: no limit",
     set_number<&C::max_connections_per_minute>, show<&C::max_connections_per_minute>},
    {"max-connections-per-client-per-minute", 0, K::text, G::policy, k_serving, "N",
     "the same per client address (IPv6: per /64), 0: no limit",
     set_number<&C::max_connections_per_client_per_minute>, show<&C::max_connections_per_client_per_minute>},
    {"max-messages-per-session", 0, K::text, G::policy, k_serving, "N", "421 at the MAIL after this many messages, 0: no limit",
     set_number<&C::max_messages_per_session>, show<&C::max_messages_per_session>, copy<&C::max_messages_per_session, &S::max_messages>},
    {"milter", 0, K::list, G::policy, k_serving, "SPEC",
     "a milter to ask at each stage: unix:/PATH, inet:HOST:PORT or inet6:HOST:PORT (repeat: asked in order)",
     set_milters, show<&C::milters>},
    {"milter-default-action", 0, K::text, G::policy, k_serving, "tempfail|accept|reject",
     "for a milter that is down, too slow or breaks the protocol: 451, skip it, or 554",
     set_milter_default_action, show<&C::milter_default_action>},
    {"milter-timeout", 0, K::text, G::policy, k_serving, "TIME",
     "how long a milter may take to accept the connection and to answer each event",
     set_duration<&C::milter_timeout>, show<&C::milter_timeout>, nullptr, nullptr, 1, 3600},
    {"transcript-dir", 0, K::text, G::session, k_serving | bit(Subcommand::cat), "DIR",
     "write a transcript of each session (commands, replies, events; no credentials, no message content) into DIR",
     set_text<&C::transcript_dir>, show<&C::transcript_dir>},
    {"transcript-client", 0, K::list, G::session, k_serving, "CIDR",
     "with --transcript-dir: only the sessions of these clients (default: every session)",
     set_networks<&C::transcript_clients>, show<&C::transcript_clients>},
    {"transcript-max-size", 0, K::text, G::session, k_serving, "N",
     "octets of one transcript; past them a marker ends it",
     set_number<&C::transcript_max_size>, show<&C::transcript_max_size>, nullptr, nullptr, 256},

    {"route", 0, K::list, G::delivery, k_delivering, "DOMAIN=TRANSPORT",
     "deliver mail for DOMAIN (and its subdomains; * for any) by smtp:HOST[:PORT], mx, maildir:PATH, pipe:COMMAND, an "
     "http(s):// URL or amqp://[USER@]HOST[:PORT][/VHOST][?exchange=E&routing_key=K]",
     set_routes, show_routes, copy_smtp_routes},
    {"smarthost", 0, K::text, G::delivery, k_delivering, "HOST[:PORT]", "the same as --route '*=smtp:HOST:PORT'",
     set_smarthost, nullptr},
    {"retry-schedule", 0, K::text, G::delivery, k_delivering, "LIST",
     "waits after each run that leaves recipients pending, the last repeating", set_schedule, show_schedule},
    {"max-queue-time", 0, K::text, G::delivery, k_delivering, "TIME", "give up and bounce after this long in the queue",
     set_duration<&C::max_queue_time>, show<&C::max_queue_time>},
    {"smtp-timeout", 0, K::text, G::delivery, k_delivering, "TIME", "one timeout for every SMTP client step",
     set_duration<&C::smtp_timeout>, show<&C::smtp_timeout>, nullptr, "RFC 5321 section 4.5.3.2, and 60s to connect"},
    {"mx-port", 0, K::text, G::delivery, k_delivering, "PORT", "the port the mx transport connects to",
     set_mx_port, show<&C::mx_port>, nullptr, nullptr, 1, 65535},
    {"dns-server", 0, K::list, G::delivery, k_delivering, "IP[:PORT]",
     "a name server for the mx transport (at most 3), instead of those of /etc/resolv.conf",
     set_dns_servers, show<&C::dns_servers>, nullptr, "those of /etc/resolv.conf"},
    {"pipe-timeout", 0, K::text, G::delivery, k_delivering, "TIME", "how long a pipe command may run",
     set_duration<&C::pipe_timeout>, show<&C::pipe_timeout>},
    {"smtp-tls", 0, K::text, G::delivery, k_delivering, "LEVEL",
     "TLS toward SMTP next hops: none, may (STARTTLS when offered), encrypt (TLS or defer), verify (TLS with the certificate checked, or defer)",
     set_smtp_tls, show_smtp_tls},
    {"smtp-tls-policy", 0, K::list, G::delivery, k_delivering, "HOST=LEVEL", "the TLS level for one next-hop host",
     set_smtp_tls_policy, show_smtp_tls_policy},
    {"smtp-tls-ca", 0, K::text, G::delivery, k_delivering, "FILE",
     "PEM certificates of the authorities that verify trusts (default: the system's)",
     set_text<&C::smtp_tls_ca>, show<&C::smtp_tls_ca>},
    {"smtp-tls-cert", 0, K::text, G::delivery, k_delivering, "FILE", "PEM client certificate chain shown to SMTP servers",
     set_text<&C::smtp_tls_cert>, show<&C::smtp_tls_cert>},
    {"smtp-tls-key", 0, K::text, G::delivery, k_delivering, "FILE", "PEM private key of --smtp-tls-cert",
     set_text<&C::smtp_tls_key>, show<&C::smtp_tls_key>},
    {"smtp-auth-file", 0, K::text, G::delivery, k_delivering, "FILE",
     "'HOST[:PORT] USER:PASSWORD' lines: AUTH PLAIN or LOGIN toward those hosts (owner-only file)",
     set_text<&C::smtp_auth_file>, show<&C::smtp_auth_file>},
    {"http-secret-file", 0, K::text, G::delivery, k_delivering, "FILE",
     "the secret that signs each request of the http and https transports (owner-only file; needed by those routes)",
     set_text<&C::http_secret_file>, show<&C::http_secret_file>},
    {"http-tls-ca", 0, K::text, G::delivery, k_delivering, "FILE",
     "PEM certificates of the authorities https routes trust (default: the system's)",
     set_text<&C::http_tls_ca>, show<&C::http_tls_ca>},
    {"http-timeout", 0, K::text, G::delivery, k_delivering, "TIME",
     "how long one request of the http and https transports may take, connection included",
     set_duration<&C::http_timeout>, show<&C::http_timeout>, nullptr, nullptr, 1, 3600},
    {"amqp-credentials-file", 0, K::text, G::delivery, k_delivering, "FILE",
     "'HOST[:PORT] USER:PASSWORD' lines: the login of amqp routes to those brokers (owner-only file)",
     set_text<&C::amqp_credentials_file>, show<&C::amqp_credentials_file>},
    {"amqp-timeout", 0, K::text, G::delivery, k_delivering, "TIME",
     "how long an amqp route waits to connect and log in, and then for the broker's confirm of each message",
     set_duration<&C::amqp_timeout>, show<&C::amqp_timeout>, nullptr, nullptr, 1, 3600},
    {"concurrency", 0, K::text, G::delivery, k_delivering, "N",
     "worker processes (so SMTP connections) a runq pass uses at most; 1: none, one message after the other",
     set_number<&C::concurrency>, show<&C::concurrency>, nullptr, nullptr, 1, 1000},
    {"concurrency-per-host", 0, K::text, G::delivery, k_delivering, "M",
     "of them, at most this many deliver to one next hop (a route's transport; for mx, a recipient domain)",
     set_number<&C::concurrency_per_host>, show<&C::concurrency_per_host>, nullptr, nullptr, 1, 1000},
    {"delay-warning", 0, K::text, G::delivery, k_delivering, "TIME",
     "send one delay notice (RFC 3464) about a message still pending after TIME, where NOTIFY allows it",
     set_duration<&C::delay_warning>, show<&C::delay_warning>, nullptr, "none"},
    {"deliver-now", 0, K::yes_no, G::delivery, k_delivering, "yes|no", "serve: start one detached runq for the messages of each session, at its end",
     set_flag<&C::deliver_now>, show<&C::deliver_now>},

    {"json", 0, K::flag, G::command, bit(Subcommand::mailq) | bit(Subcommand::stats), nullptr,
     "JSON: mailq one object per message and line (one object with --summary or --shape); stats one object",
     set_json, nullptr},
    {"summary", 0, K::flag, G::command, bit(Subcommand::mailq), nullptr,
     "per destination domain: messages, recipients, volume, oldest and newest", set_true<&C::summary>, nullptr},
    {"shape", 0, K::flag, G::command, bit(Subcommand::mailq), nullptr,
     "pending recipients per destination domain and age", set_true<&C::shape>, nullptr},
    {"all", 0, K::flag, G::command, k_changing, nullptr, "every message in the queue (that the filters select)",
     set_true<&C::all>, nullptr},
    {"held", 0, K::flag, G::command, k_selecting, nullptr, "only messages on hold", set_true<&C::held>, nullptr},
    {"transcript", 0, K::flag, G::command, bit(Subcommand::cat), nullptr,
     "the transcript of the session that queued the message (from --transcript-dir)", set_true<&C::transcript>, nullptr},
    {"sender", 0, K::text, G::command, k_selecting, "TEXT",
     "only messages whose sender contains TEXT, ignoring case (<> for the null sender)", set_text<&C::sender>, nullptr},
    {"recipient", 0, K::text, G::command, k_selecting, "TEXT",
     "only messages with a pending recipient that contains TEXT, ignoring case (bounce: only those recipients)",
     set_text<&C::recipient>, nullptr},
    {"domain", 0, K::text, G::command, k_selecting, "DOMAIN",
     "only messages with a pending recipient in DOMAIN or a subdomain of it (bounce: only those recipients)",
     set_text<&C::domain>, nullptr},
    {"older-than", 0, K::text, G::command, k_selecting, "TIME", "only messages that arrived more than TIME ago",
     set_duration<&C::older_than>, nullptr},
    {"younger-than", 0, K::text, G::command, k_selecting, "TIME", "only messages that arrived less than TIME ago",
     set_duration<&C::younger_than>, nullptr},
    {"reason", 0, K::text, G::command, bit(Subcommand::bounce), "TEXT", "why, in the notice to the sender",
     set_text<&C::reason>, nullptr},
    {"once", 0, K::flag, G::command, bit(Subcommand::runq), nullptr,
     "one pass over the queue, then exit (the default without --interval)", nullptr, nullptr},
    {"interval", 0, K::text, G::command, bit(Subcommand::runq), "TIME", "keep running: a pass, then wait TIME, and again",
     set_duration<&C::interval>, nullptr},
    {"dry-run", 0, K::flag, G::command, bit(Subcommand::runq), nullptr,
     "print each due message's recipients, routes and what would be done; deliver and change nothing",
     set_true<&C::dry_run>, nullptr},
};
// clang-format on

constexpr std::size_t k_count = std::size(k_options);

// The option of the table with this name (the table's own spelling).
std::size_t index_of(std::string_view name)
{
    for (std::size_t i = 0; i < k_count; ++i) {
        if (name == k_options[i].name) {
            return i;
        }
    }
    return k_count;
}

// The words that may name options: describing to the library only the
// options they can name (on its own, or as an abbreviation that
// Boost.ProgramOptions completes) gives the same result as describing all of
// them, at a fraction of the cost (set-up of each option description is a few
// thousand instructions, and each word is matched against every option); the
// binary starts once per connection.
class Named {
public:
    // A command-line word: "--key", "--key=value" or "-k...".
    void add_word(std::string_view word)
    {
        if (word.starts_with("--")) {
            add_key(word.substr(2, word.find('=') == std::string_view::npos ? word.npos : word.find('=') - 2));
        } else if (word.size() > 1 && word.front() == '-') {
            m_short += word[1];
        }
    }
    // A config-file key, or a long option's name or abbreviation.
    void add_key(std::string_view key)
    {
        while (!key.empty() && std::isspace(static_cast<unsigned char>(key.front()))) {
            key.remove_prefix(1);
        }
        while (!key.empty() && std::isspace(static_cast<unsigned char>(key.back()))) {
            key.remove_suffix(1);
        }
        if (!key.empty()) {
            m_keys.push_back(key);
        }
    }
    bool operator()(const Option& o) const
    {
        if (o.short_name != 0 && m_short.find(o.short_name) != std::string::npos) {
            return true;
        }
        std::string_view name = o.name;
        return std::any_of(m_keys.begin(), m_keys.end(), [&](std::string_view k) { return name.starts_with(k); });
    }

private:
    std::vector<std::string_view> m_keys;
    std::string m_short;
};

// The option as --help shows it: its help, then "repeatable", limits and the
// default of a default-constructed Config.
std::string help_of(const Option& o)
{
    std::vector<std::string> notes;
    if (o.kind == OptionKind::list) {
        notes.push_back("repeatable");
    }
    if (o.min > 1) {
        notes.push_back("at least " + std::to_string(o.min));
    }
    if (o.default_text != nullptr) {
        notes.push_back(std::string("default: ") + o.default_text);
    } else if (o.show != nullptr) {
        Lines values;
        o.show(Config{}, values);
        if (!values.empty()) {
            std::string text = "default ";
            for (std::size_t i = 0; i < values.size(); ++i) {
                text += (i == 0 ? "" : i + 1 == values.size() ? " and " : ", ") + values[i];
            }
            notes.push_back(text);
        }
    }
    std::string text = o.help;
    for (std::size_t i = 0; i < notes.size(); ++i) {
        text += (i == 0 ? " (" : "; ") + notes[i];
    }
    return notes.empty() ? text : text + ")";
}

// The options for which keep(option) holds, for Boost.ProgramOptions; with
// their help and value names only for --help.
template <typename Keep>
void add_options(po::options_description& d, Keep keep, bool for_help)
{
    for (const Option& o : k_options) {
        if (!keep(o)) {
            continue;
        }
        std::string name = o.name;
        if (o.short_name != 0) {
            name += ',';
            name += o.short_name;
        }
        std::string help = for_help ? help_of(o) : std::string();
        if (o.kind == OptionKind::flag) {
            d.add_options()(name.c_str(), help.c_str());
            continue;
        }
        po::typed_value<std::string>* text = nullptr;
        po::value_semantic* semantic = nullptr;
        if (o.kind == OptionKind::list) {
            auto* list = po::value<std::vector<std::string>>();
            if (for_help) {
                list->value_name(o.value_name);
            }
            semantic = list;
        } else {
            text = po::value<std::string>();
            if (o.kind == OptionKind::yes_no) {
                text->implicit_value("yes");
            }
            if (for_help) {
                text->value_name(o.value_name);
            }
            semantic = text;
        }
        d.add_options()(name.c_str(), semantic, help.c_str());
    }
}

std::string help_text(Subcommand c)
{
    std::ostringstream out;
    switch (c) {
    case Subcommand::serve:
        out << "Usage: smtpspool [serve] [OPTIONS]\n"
               "Serve one SMTP session on standard input and output and spool each accepted\n"
               "message. Started by inetd, xinetd, systemd (Accept=yes) or tcpserver.\n\n"
               "Commands: serve (default), mailq, runq, cat, remove, hold, release, requeue, bounce, stats, check-config, sendmail;\n"
               "'smtpspool COMMAND --help' describes each. See smtpspool(8); every option\n"
               "is in smtpspool.conf(5).\n\n";
        break;
    case Subcommand::mailq:
        out << "Usage: smtpspool mailq [--json] [--summary | --shape] [FILTERS] [OPTIONS] [ID...]\n"
               "List the queue (all messages, or the IDs given, that the filters select), sendmail\n"
               "style or as JSON lines; or sum it up per destination domain (--summary), or per\n"
               "domain and age (--shape).\n\n";
        break;
    case Subcommand::runq:
        out << "Usage: smtpspool runq [--once | --interval TIME | --dry-run] [OPTIONS] [ID...]\n"
               "Deliver the queued messages that are due (or the IDs given, due or not) through\n"
               "their routes; retry, expire and bounce per recipient. See smtpspool-runq(8).\n\n";
        break;
    case Subcommand::cat:
        out << "Usage: smtpspool cat [OPTIONS] ID\nPrint the stored message (message.eml) of one queued message.\n\n";
        break;
    case Subcommand::remove:
        out << "Usage: smtpspool remove [OPTIONS] ID\nDelete one queued message.\n\n";
        break;
    case Subcommand::check_config:
        out << "Usage: smtpspool check-config [OPTIONS]\n"
               "Validate the configuration (and read the policy files) and print the effective\n"
               "settings as config-file lines.\n\n";
        break;
    case Subcommand::hold:
        out << "Usage: smtpspool hold [OPTIONS] {ID... | --all} [FILTERS]\n"
               "Put messages on hold: runq leaves them alone until they are released. Waits\n"
               "while a runq delivers one. See smtpspool(8), QUEUE ADMINISTRATION.\n\n";
        break;
    case Subcommand::release:
        out << "Usage: smtpspool release [OPTIONS] {ID... | --all} [FILTERS]\n"
               "Take messages off hold; they are delivered when due.\n\n";
        break;
    case Subcommand::requeue:
        out << "Usage: smtpspool requeue [OPTIONS] {ID... | --all} [FILTERS]\n"
               "Make messages due now, with the retry schedule started again.\n\n";
        break;
    case Subcommand::bounce:
        out << "Usage: smtpspool bounce [--reason TEXT] [OPTIONS] {ID... | --all} [FILTERS]\n"
               "Give up on the pending recipients of messages now (with --recipient or --domain,\n"
               "on those only): the sender gets a failure notice for them (as NOTIFY asks), and\n"
               "a message with no recipient left pending leaves the queue.\n\n";
        break;
    case Subcommand::stats:
        out << "Usage: smtpspool stats [--json] [OPTIONS]\n"
               "Print the queue's gauges in the Prometheus text format (or as JSON).\n\n";
        break;
    }
    bool first = true;
    for (Group g : k_groups) {
        po::options_description d(group_title(g, c));
        add_options(
            d, [&](const Option& o) { return o.group == g && (o.commands & bit(c)) != 0; }, true);
        if (!d.options().empty()) {
            out << (first ? "" : "\n") << d;
            first = false;
        }
    }
    return out.str();
}

// Boost.ProgramOptions writes its error text by replacing placeholders such
// as %canonical_option% until none is left, so an option name or value that
// holds one is never done (found by fuzz_config: a config file, or
// check-config --x%canonical_option%, hung). The text is made after every
// '%' in the names and values it quotes has become '?'.
std::string option_error_text(const po::error& e)
{
    if (const auto* named = dynamic_cast<const po::error_with_option_name*>(&e)) {
        struct Quoted : po::error_with_option_name {
            static auto substitutions() { return &Quoted::m_substitutions; }
        };
        auto& quoted = const_cast<po::error_with_option_name&>(*named).*Quoted::substitutions();
        for (auto& entry : quoted) {
            std::replace(entry.second.begin(), entry.second.end(), '%', '?');
        }
    }
    return e.what();
}

po::variables_map read_file(const std::string& path)
{
    std::ifstream file(path);
    if (!file) {
        throw BadConfig{"cannot read config file " + path};
    }
    std::ostringstream text;
    text << file.rdbuf();
    // No option name has a '%': such a key is refused here with its line
    // number (and could not make option_error_text hang either).
    std::string content = text.str();
    Named named;
    std::size_t number = 0;
    for (std::size_t at = 0; at < content.size();) {
        std::size_t end = std::min(content.find('\n', at), content.size());
        std::string_view line(content.data() + at, end - at);
        ++number;
        std::string_view key = line.substr(0, std::min(line.find('='), line.find('#')));
        if (key.find('%') != std::string::npos) {
            throw BadConfig{path + " line " + std::to_string(number) + ": unrecognised option (no option has a '%')"};
        }
        named.add_key(key);
        at = end + 1;
    }
    po::options_description all;
    add_options(
        all, [&](const Option& o) { return o.group != Group::command && named(o); }, false);
    std::istringstream in(content);
    po::variables_map vm;
    try {
        po::store(po::parse_config_file(in, all, false), vm);
    } catch (const po::error& e) {
        throw BadConfig{path + ": " + option_error_text(e)};
    }
    if (vm.count("config")) {
        throw BadConfig{path + ": 'config' cannot be set in a config file"};
    }
    return vm;
}

// What an option was given: a text's value or a list's values.
Values values_of(const po::variable_value& v)
{
    if (const auto* list = boost::any_cast<std::vector<std::string>>(&v.value())) {
        return *list;
    }
    if (const auto* text = boost::any_cast<std::string>(&v.value())) {
        return Values(text, 1);
    }
    return {};
}

// The checks that involve more than one option, in the order of the table.
void check_together(Config& c, const po::variables_map& cmd)
{
    if (c.auth_passwd && c.auth_command) {
        throw BadConfig{"auth-command: --auth-passwd and --auth-command exclude each other"};
    }
    if (c.smtp_tls_cert.has_value() != c.smtp_tls_key.has_value()) {
        throw BadConfig{c.smtp_tls_cert ? "smtp-tls-cert: needs --smtp-tls-key" : "smtp-tls-key: needs --smtp-tls-cert"};
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
    if (c.proxy_protocol && c.proxy_from.empty()) {
        throw BadConfig{"proxy-protocol: needs --proxy-from (the load balancers' addresses)"};
    }
    if (c.reject_unknown_recipients && !c.aliases && !c.local_users) {
        throw BadConfig{"reject-unknown-recipients: needs --local-users or --aliases (or both)"};
    }
    for (std::size_t n : {c.max_connections_per_minute, c.max_connections_per_client_per_minute}) {
        if (n > 1000000) {
            throw BadConfig{"max-connections-per-minute: at most 1000000"};
        }
    }
    if (c.interval && cmd.count("once")) {
        throw BadConfig{"interval: --once and --interval exclude each other"};
    }
    if (c.interval && c.dry_run) {
        throw BadConfig{"dry-run: --dry-run and --interval exclude each other"};
    }
    if (c.summary && c.shape) {
        throw BadConfig{"shape: --summary and --shape exclude each other"};
    }
}

// Each option given, on the command line or else in the file, set in the
// order of the table.
Config resolve(Subcommand command, const po::variables_map& cmd, const po::variables_map& file)
{
    const po::variable_value* given[k_count] = {};
    for (const po::variables_map* source : {&file, &cmd}) {
        for (const auto& [name, value] : *source) {
            if (std::size_t i = index_of(name); i < k_count) {
                given[i] = &value;
            }
        }
    }
    Config c;
    c.command = command;
    for (std::size_t i = 0; i < k_count; ++i) {
        if (given[i] != nullptr && k_options[i].set != nullptr) {
            k_options[i].set(c, k_options[i], values_of(*given[i]));
        }
    }
    check_together(c, cmd);
    return c;
}

} // namespace

std::variant<Config, ConfigExit> parse_config(int argc, const char* const* argv)
{
    int first = argc > 0 ? 1 : 0;
    Subcommand command = Subcommand::serve;
    if (first < argc) {
        std::string_view word = argv[first];
        if (auto c = command_from(word)) {
            command = *c;
            ++first;
        } else if (word.empty() || word.front() != '-') {
            return ConfigExit{k_exit_usage,
                              "smtpspool: unknown command '" + std::string(word) + "' (try 'smtpspool --help')\n"};
        }
    }
    std::string name = command_name(command);
    po::options_description cmdline;
    Named named;
    for (int i = first; i < argc; ++i) {
        named.add_word(argv[i]);
    }
    add_options(
        cmdline, [&](const Option& o) { return (o.commands & bit(command)) != 0 && named(o); }, false);
    cmdline.add_options()("id", po::value<std::vector<std::string>>());
    po::positional_options_description positional;
    const bool changing = (bit(command) & k_changing) != 0;
    bool takes_ids = command == Subcommand::mailq || command == Subcommand::runq || command == Subcommand::cat ||
                     command == Subcommand::remove || changing;
    if (takes_ids) {
        positional.add("id", -1);
    }
    try {
        po::variables_map cmd;
        std::vector<std::string> args(argv + first, argv + argc);
        po::store(po::command_line_parser(args).options(cmdline).positional(positional).run(), cmd);
        if (cmd.count("help")) {
            return ConfigExit{k_exit_ok, help_text(command)};
        }
        if (cmd.count("version")) {
            return ConfigExit{k_exit_ok, version_text() + "\n"};
        }
        std::vector<std::string> ids;
        if (auto it = cmd.find("id"); it != cmd.end()) {
            ids = it->second.as<std::vector<std::string>>();
        }
        if ((command == Subcommand::cat || command == Subcommand::remove) && ids.size() != 1) {
            return ConfigExit{k_exit_usage, "smtpspool " + name + ": exactly one ID expected\n"};
        }
        if (changing && ids.empty() == (cmd.count("all") == 0)) {
            return ConfigExit{k_exit_usage, "smtpspool " + name + ": " +
                                                (ids.empty() ? "IDs or --all expected" : "IDs and --all exclude each other") +
                                                "\n"};
        }
        po::variables_map file;
        if (auto it = cmd.find("config"); it != cmd.end()) {
            file = read_file(it->second.as<std::string>());
        }
        Config c = resolve(command, cmd, file);
        c.ids = std::move(ids);
        return c;
    } catch (const po::error& e) {
        return ConfigExit{k_exit_usage,
                          "smtpspool " + name + ": " + option_error_text(e) + " (try 'smtpspool " + name + " --help')\n"};
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
    if (config.authserv_id.empty()) {
        config.authserv_id = config.hostname;
    }
}

std::string describe(const Config& c)
{
    std::string out;
    Lines values;
    for (const Option& o : k_options) {
        if (o.show == nullptr) {
            continue;
        }
        values.clear();
        o.show(c, values);
        for (const std::string& v : values) {
            out.append(o.name).append(" = ").append(v).append("\n");
        }
    }
    return out;
}

SessionConfig session_config(const Config& config)
{
    SessionConfig s;
    for (const Option& o : k_options) {
        if (o.session != nullptr) {
            o.session(config, s);
        }
    }
    return s;
}

std::vector<OptionInfo> option_table()
{
    std::vector<OptionInfo> table;
    for (const Option& o : k_options) {
        OptionInfo info{o.name, o.short_name, o.kind, o.group != Group::command, {}};
        for (auto [c, name] : k_commands) {
            if ((o.commands & bit(c)) != 0) {
                info.commands.push_back(c);
            }
        }
        table.push_back(std::move(info));
    }
    return table;
}

std::vector<std::string> runq_arguments(const Config& c)
{
    // Every setting is on the command line: no configuration file is read,
    // not even the default one.
    std::vector<std::string> args{"runq", "--config", "/dev/null"};
    Lines values;
    for (const Option& o : k_options) {
        // Not --user (the privileges are dropped already) nor --deliver-now
        // (runq ignores it).
        std::string_view name = o.name;
        if ((o.commands & bit(Subcommand::runq)) == 0 || o.show == nullptr || name == "user" || name == "deliver-now") {
            continue;
        }
        values.clear();
        o.show(c, values);
        for (std::string& v : values) {
            args.push_back("--" + std::string(name));
            args.push_back(std::move(v));
        }
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

const char* subcommand_name(Subcommand c) { return command_name(c); }

} // namespace smtpspool
