// main: parse the command line, run the command, map the outcome to an exit status.
// Under the names sendmail and mailq the binary behaves as those commands.
#include "cli/config.hpp"
#include "cli/privileges.hpp"
#include "cli/queue_commands.hpp"
#include "cli/sendmail.hpp"
#include "cli/serve.hpp"

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <exception>
#include <optional>
#include <iostream>
#include <string>
#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>
#include <vector>

namespace {

using namespace smtpspool;

// What the catch-all in main knows: where --log sends lines, once the
// configuration is read, and whether a client is served on fds 0 and 1.
struct Crash {
    LogTarget log = LogTarget::syslog;
    LogFormat format = LogFormat::logfmt;
    bool serving = false;
};
Crash g_crash;

// An exception that escaped a command: logged, and in serve mode the client
// gets 421 4.3.0 when it can be told.
int uncaught(const char* what)
{
    make_log_sink(g_crash.log, false, g_crash.format)->log(LogLine("fatal").add("reason", what));
    if (g_crash.serving) {
        say_local_error();
    }
    return k_exit_software;
}

constexpr const char* k_system_config = "/etc/smtpspool.conf";

// The spool of the system's configuration: /etc/smtpspool.conf when it
// exists, else the default; nullopt when that file cannot be read.
std::optional<std::string> system_spool()
{
    std::vector<const char*> argv{"smtpspool", "serve"};
    if (::access(k_system_config, F_OK) == 0) {
        argv.insert(argv.end(), {"--config", k_system_config});
    }
    auto config = parse_config(static_cast<int>(argv.size()), argv.data());
    if (auto* c = std::get_if<Config>(&config)) {
        return c->spool;
    }
    return std::nullopt;
}

// The configuration file of a command that names none: $SMTPSPOOL_CONFIG,
// else /etc/smtpspool.conf when it exists.
std::optional<std::string> default_config()
{
    const char* env = std::getenv("SMTPSPOOL_CONFIG");
    if (env != nullptr && *env != '\0') {
        return std::string(env);
    }
    if (::access(k_system_config, F_OK) == 0) {
        return std::string(k_system_config);
    }
    return std::nullopt;
}

// The configuration file sendmail's caller names (-C, --config, else
// SMTPSPOOL_CONFIG), when it is not the system's.
std::optional<std::string> other_config(const std::vector<std::string>& ours)
{
    std::optional<std::string> named;
    for (std::size_t i = 0; i < ours.size(); ++i) {
        if (ours[i] == "--config" && i + 1 < ours.size()) {
            named = ours[++i];
        } else if (ours[i].rfind("--config=", 0) == 0) {
            named = ours[i].substr(9);
        }
    }
    if (!named) {
        const char* env = std::getenv("SMTPSPOOL_CONFIG");
        if (env != nullptr && *env != '\0') {
            named = env;
        }
    }
    if (named && *named == k_system_config) {
        return std::nullopt;
    }
    return named;
}

// `smtpspool sendmail ...` or sendmail(8) by name: parse its flags, read the
// configuration (--config, -C, SMTPSPOOL_CONFIG, else /etc/smtpspool.conf when
// it exists), and run the mode the flags ask for. Another configuration than
// the system's names the programs that -q and -bs would run (pipe routes,
// hooks): only root and the system spool's owner may name one, so that a
// caller who controls sendmail's arguments (a web application's mail()) and
// can write a file cannot run a program by it.
int sendmail_main(const std::vector<std::string>& args)
{
    if (std::find(args.begin(), args.end(), "--help") != args.end()) {
        std::cout << "Usage: smtpspool sendmail [-t] [-i] [-f SENDER] [-F NAME] [OPTIONS] [RECIPIENT...]\n"
                     "       sendmail -bp | -q[TIME] | -qf | -bs | -bi | -bv RECIPIENT...\n"
                     "Queue the message on standard input for the recipients, with the same durable\n"
                     "commit as serve; Date:, Message-ID: and From: are added when missing. The exit\n"
                     "status follows sysexits(3). See smtpspool-sendmail(8).\n\n"
                     "Flags:\n"
                     "  -t                    recipients also from To:, Cc: and Bcc: (or the newest Resent-\n"
                     "                        block's); Bcc: and Resent-Bcc: are removed\n"
                     "  -i, -oi               only the end of input ends the message, not a line \".\"\n"
                     "  -f SENDER, -r SENDER  the envelope sender (default: login name @ hostname)\n"
                     "  -F NAME               the full name of an added From:\n"
                     "  -bp | -q[TIME] | -bs  list the queue | run it (every TIME) | SMTP on stdin\n"
                     "  -qf                   run the queue once (in the foreground, as always)\n"
                     "  -bi, -I               check the aliases file (newaliases)\n"
                     "  -bv                   print each recipient's route; queue nothing\n"
                     "  -N DSN, -R RET, -V ID the DSN requests NOTIFY (never | success,failure,delay),\n"
                     "                        RET (full | hdrs) and ENVID (xtext)\n"
                     "  -O IgnoreDots=true    the same as -oi; other -O option=value ignored\n"
                     "  -eq, -oeq             errors by the exit status only (-ep, -em, -ee, -ew: printed)\n"
                     "  -C FILE               the same as --config FILE (root and the spool's owner only)\n"
                     "  Ignored: -oX, -v, -U, -Am, -Ac, -G, and -B, -h, -L with a value.\n\n"
                     "Options:\n"
                     "  --config FILE         default: $SMTPSPOOL_CONFIG, else /etc/smtpspool.conf if present;\n"
                     "                        another file than that only for root and the spool's owner\n"
                     "  --spool DIR           the spool directory (default /var/spool/smtpspool)\n"
                     "  --hostname NAME       for bare recipients, the sender, Received: and Message-ID:\n"
                     "  --log WHERE           syslog (default), stderr or none\n"
                     "  --log-format FORMAT   logfmt (default) or json\n"
                     "  --user NAME           as root, become NAME (default: the spool directory's owner)\n"
                     "  --help                print this help and exit\n";
        return k_exit_ok;
    }
    auto parsed = parse_sendmail_args(args);
    if (auto* usage = std::get_if<std::string>(&parsed)) {
        std::cerr << "sendmail: " << *usage << "\n";
        return k_exit_usage;
    }
    SendmailOptions& o = std::get<SendmailOptions>(parsed);
    if (auto other = other_config(o.ours)) {
        std::optional<std::string> spool = system_spool();
        if (!spool || !may_choose_config(*spool)) {
            std::cerr << "sendmail: " << *other
                      << ": another configuration (-C, --config, SMTPSPOOL_CONFIG) is honoured only for root and "
                         "the owner of the spool "
                      << spool.value_or(std::string("of ") + k_system_config) << "\n";
            return k_exit_noperm;
        }
    }
    std::vector<std::string> argv{"smtpspool"};
    switch (o.mode) {
    case SendmailOptions::Mode::list_queue:
        argv.push_back("mailq");
        break;
    case SendmailOptions::Mode::run_queue:
        argv.push_back("runq");
        if (o.interval) {
            argv.insert(argv.end(), {"--interval", *o.interval});
        }
        break;
    case SendmailOptions::Mode::submit:
    case SendmailOptions::Mode::smtp:
    case SendmailOptions::Mode::check_aliases:
    case SendmailOptions::Mode::verify:
        argv.push_back("serve");
        break;
    }
    argv.insert(argv.end(), o.ours.begin(), o.ours.end());
    bool has_config = std::find_if(o.ours.begin(), o.ours.end(), [](const std::string& a) {
                          return a == "--config" || a.rfind("--config=", 0) == 0;
                      }) != o.ours.end();
    if (!has_config) {
        const char* env = std::getenv("SMTPSPOOL_CONFIG");
        if (env != nullptr && *env != '\0') {
            argv.insert(argv.end(), {"--config", env});
        } else if (::access(k_system_config, R_OK) == 0) {
            argv.insert(argv.end(), {"--config", k_system_config});
        }
    }
    std::vector<const char*> cargv;
    for (const std::string& a : argv) {
        cargv.push_back(a.c_str());
    }
    auto config = parse_config(static_cast<int>(cargv.size()), cargv.data());
    if (auto* exit = std::get_if<ConfigExit>(&config)) {
        std::cerr << exit->text;
        return exit->status == k_exit_ok ? k_exit_usage : exit->status;
    }
    Config& c = std::get<Config>(config);
    g_crash.log = c.log;
    g_crash.format = c.log_format;
    set_log_program(o.mode == SendmailOptions::Mode::list_queue  ? "mailq"
                    : o.mode == SendmailOptions::Mode::run_queue ? "runq"
                                                                 : "sendmail");
    g_crash.serving = o.mode == SendmailOptions::Mode::smtp;
    // Run by root (cron, say): write as the spool's owner, or as --user, so
    // that the queue stays readable by the runq that delivers it.
    if (auto user = user_to_become(c.user, c.spool)) {
        if (auto r = drop_privileges(*user); !r) {
            std::cerr << "sendmail: " << r.error().message << "\n";
            return r.error().errnum == ENOENT ? k_exit_nouser : k_exit_noperm;
        }
    }
    switch (o.mode) {
    case SendmailOptions::Mode::list_queue:
        return run_mailq(c);
    case SendmailOptions::Mode::run_queue:
        return run_runq(std::move(c));
    case SendmailOptions::Mode::smtp:
        return run_serve(std::move(c));
    case SendmailOptions::Mode::check_aliases:
        return run_check_aliases(o, std::move(c));
    case SendmailOptions::Mode::verify:
        return run_verify(o, std::move(c));
    case SendmailOptions::Mode::submit:
        break;
    }
    return run_sendmail(o, std::move(c), 0);
}

std::string base_name(const char* path)
{
    std::string p = path == nullptr ? "" : path;
    return p.substr(p.rfind('/') == std::string::npos ? 0 : p.rfind('/') + 1);
}

} // namespace

int main(int argc, char** argv)
{
    using namespace smtpspool;
    // A file-size limit (ulimit -f, systemd's LimitFSIZE=) makes a write fail
    // with EFBIG instead of killing us mid-message: every command then reports
    // it like any other write failure (serve: 552 5.3.4) and removes what it
    // had begun. Programs we start get every signal back at its default.
    std::signal(SIGXFSZ, SIG_IGN);
    try {
        std::string name = argc > 0 ? base_name(argv[0]) : "";
        if (name == "sendmail") {
            return sendmail_main(std::vector<std::string>(argv + 1, argv + argc));
        }
        if (argc > 1 && std::string_view(argv[1]) == "sendmail") {
            return sendmail_main(std::vector<std::string>(argv + 2, argv + argc));
        }
        std::vector<const char*> args(argv, argv + argc);
        if (name == "mailq") {
            args.insert(args.begin() + 1, "mailq"); // mailq [OPTIONS] is smtpspool mailq [OPTIONS]
        }
        bool serving = name != "mailq" && (argc < 2 || std::string_view(argv[1]) == "serve" || argv[1][0] == '-');
        g_crash.serving = serving;
        auto parsed = parse_config(static_cast<int>(args.size()), args.data());
        // Every command but serve reads the default configuration when no
        // --config is given, so that mailq, runq, cat and remove see the
        // spool that sendmail writes. serve reads only the file it is told.
        std::optional<std::string> file;
        if (auto* c = std::get_if<Config>(&parsed); c != nullptr && c->command != Subcommand::serve && !c->config_file) {
            if ((file = default_config())) {
                args.insert(args.begin() + 2, {"--config", file->c_str()});
                parsed = parse_config(static_cast<int>(args.size()), args.data());
            }
        }
        if (auto* exit = std::get_if<ConfigExit>(&parsed)) {
            if (exit->status == k_exit_ok) {
                std::cout << exit->text << std::flush;
            } else if (serving) {
                return refuse_service(exit->text, exit->status);
            } else {
                std::cerr << exit->text;
            }
            return exit->status;
        }
        Config& config = std::get<Config>(parsed);
        g_crash.log = config.log;
        g_crash.format = config.log_format;
        set_log_program(subcommand_name(config.command));
        // The queue tools, run by root, act as the spool's owner: what they
        // write stays the owner's, and nothing under the spool can make root
        // touch a file elsewhere.
        bool queue_tool = config.command != Subcommand::serve && config.command != Subcommand::check_config;
        std::optional<std::string> user = queue_tool ? user_to_become(config.user, config.spool) : config.user;
        if (user) {
            if (auto r = drop_privileges(*user); !r) {
                int status = r.error().errnum == ENOENT ? k_exit_nouser : k_exit_noperm;
                if (config.command == Subcommand::serve) {
                    return refuse_service("smtpspool: " + r.error().message + "\n", status);
                }
                std::cerr << "smtpspool: " << r.error().message << "\n";
                return status;
            }
        }
        switch (config.command) {
        case Subcommand::serve:
            return run_serve(std::move(config));
        case Subcommand::mailq:
            return run_mailq(config);
        case Subcommand::cat:
            return run_cat(config);
        case Subcommand::remove:
            return run_remove(config);
        case Subcommand::runq:
            return run_runq(std::move(config));
        case Subcommand::check_config:
            return run_check_config(std::move(config));
        case Subcommand::hold:
        case Subcommand::release:
        case Subcommand::requeue:
        case Subcommand::bounce:
            return run_change(config);
        case Subcommand::stats:
            return run_stats(config);
        }
    } catch (const std::exception& e) {
        return uncaught(e.what());
    } catch (...) {
        return uncaught("an exception of an unknown type");
    }
    return k_exit_software;
}
