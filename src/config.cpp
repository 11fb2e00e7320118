// config: option tables per command, config-file parsing, validation.
#include "config.hpp"

#include "cidr.hpp"
#include "limits.hpp"
#include "smtp_address.hpp"

#include <boost/program_options.hpp>

#include <charconv>
#include <fstream>
#include <netdb.h>
#include <sstream>
#include <unistd.h>

namespace po = boost::program_options;

namespace smtpspool {
namespace {

constexpr const char* k_version = "smtpspool 0.1.0";

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
        ("log", po::value<std::string>()->value_name("WHERE"), "syslog (default), stderr or none");
    // clang-format on
    return d;
}

// Options of the SMTP session (serve, check-config, and the config file).
po::options_description session_options()
{
    po::options_description d("Session options");
    // clang-format off
    d.add_options()
        ("hostname", po::value<std::string>()->value_name("NAME"), "our name in the greeting and Received: (default: the machine's FQDN)")
        ("local-domain", po::value<std::vector<std::string>>()->value_name("D"), "a domain we accept mail for from anyone (repeatable; default: the hostname and localhost)")
        ("relay-client", po::value<std::vector<std::string>>()->value_name("CIDR"), "clients that may send to any domain (repeatable; default 127.0.0.0/8 and ::1)")
        ("max-message-size", po::value<std::string>()->value_name("N"), "octets per message, advertised in SIZE (default 20000000)")
        ("max-recipients", po::value<std::string>()->value_name("N"), "recipients per message (default 10000)")
        ("max-line-length", po::value<std::string>()->value_name("N"), "octets in a command line, CRLF included (default 2048, at least 512)")
        ("timeout", po::value<std::string>()->value_name("S"), "seconds to wait for the client (default 300)")
        ("max-errors", po::value<std::string>()->value_name("N"), "client errors before 421 and exit (default 20)")
        ("rfc821", po::value<std::string>()->implicit_value("yes")->value_name("yes|no"), "no ESMTP: EHLO gets 502");
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
        d.add_options()("once", "one pass over the queue");
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
               "Commands: serve (default), mailq, runq, cat, remove, check-config;\n"
               "'smtpspool COMMAND --help' describes each. See smtpspool(8).\n\n";
        out << common_options() << "\n" << session_options();
        break;
    case Subcommand::mailq:
        out << "Usage: smtpspool mailq [--json] [OPTIONS] [ID...]\n"
               "List the queue (all messages, or the IDs given), sendmail style or as JSON lines.\n\n";
        out << common_options() << "\n" << command_options(c);
        break;
    case Subcommand::runq:
        out << "Usage: smtpspool runq [--once] [OPTIONS] [ID...]\n"
               "Deliver queued messages. Not available in this version: the queue is kept\n"
               "and listed, but delivery is not implemented yet (exit status 69).\n\n";
        out << common_options() << "\n" << command_options(c);
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
               "Validate the configuration and print the effective settings as config-file lines.\n\n";
        out << common_options() << "\n" << session_options();
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
    if (auto v = s.get<std::vector<std::string>>("relay-client")) {
        for (const std::string& n : *v) {
            if (!parse_network(n)) {
                throw BadConfig{"relay-client: not an address or CIDR network: '" + n + "'"};
            }
        }
        c.relay_clients = *v;
    }
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
    if (auto v = s.get<std::string>("rfc821")) {
        c.rfc821 = to_bool("rfc821", *v);
    }
    return c;
}

po::variables_map read_file(const std::string& path, const po::options_description& all)
{
    std::ifstream in(path);
    if (!in) {
        throw BadConfig{"cannot read config file " + path};
    }
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
            return ConfigExit{k_exit_ok, std::string(k_version) + "\n"};
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
            all.add(common_options()).add(session_options());
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
    out << "rfc821 = " << (c.rfc821 ? "yes" : "no") << "\n";
    out << "log = "
        << (c.log == LogTarget::syslog    ? "syslog"
            : c.log == LogTarget::stderr_ ? "stderr"
                                          : "none")
        << "\n";
    return out.str();
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

} // namespace smtpspool
