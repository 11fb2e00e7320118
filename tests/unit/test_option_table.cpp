// The table of options (cli/config.cpp) against what is written elsewhere:
// the man page documents exactly its options, the bash completion offers
// exactly each command's options and completes their values, --help shows the
// defaults of Config, and session_config() carries the session's settings.
#include "cli/config.hpp"
#include "smtp/session.hpp"
#include "testutil.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <fstream>
#include <set>
#include <sstream>

using namespace smtpspool;

namespace {

std::string read_text(const std::string& path)
{
    std::ifstream in(path);
    std::ostringstream out;
    out << in.rdbuf();
    return out.str();
}

// The options a man page documents: in its OPTIONS section, the first
// "\-\-name" of each tag (the line after .TP or .TQ), whether written
// ".BI \-\-name ..." (smtpspool.8) or "\fB\-\-name\fR ..." (smtpspool.conf.5).
std::set<std::string> documented_options(const std::string& page)
{
    std::set<std::string> names;
    std::istringstream in(page);
    bool in_options = false;
    bool tag_next = false;
    for (std::string line; std::getline(in, line);) {
        if (line.rfind(".SH", 0) == 0) {
            in_options = line == ".SH OPTIONS";
            continue;
        }
        if (!in_options) {
            continue;
        }
        if (line == ".TP" || line == ".TQ") {
            tag_next = true;
            continue;
        }
        if (!tag_next) {
            continue;
        }
        tag_next = false;
        std::size_t at = line.find("\\-\\-");
        if (at == std::string::npos) {
            continue; // a tag that is no option (smtp:host, ...)
        }
        std::string name;
        for (std::size_t i = at + 4; i < line.size();) {
            if (line.compare(i, 2, "\\-") == 0) {
                name += '-';
                i += 2;
            } else if (std::isalnum(static_cast<unsigned char>(line[i]))) {
                name += line[i++];
            } else {
                break;
            }
        }
        names.insert(name);
    }
    return names;
}

// The man page that lists the options: smtpspool.conf(5) once it exists,
// until then smtpspool(8).
std::string options_page_path()
{
    const std::string conf = "../../man/smtpspool.conf.5";
    return std::ifstream(conf).good() ? conf : "../../man/smtpspool.8";
}

std::set<std::string> table_names()
{
    std::set<std::string> names;
    for (const OptionInfo& o : option_table()) {
        names.insert(o.name);
    }
    return names;
}

std::string joined(const std::set<std::string>& s)
{
    std::string out;
    for (const std::string& x : s) {
        out += (out.empty() ? "" : " ") + x;
    }
    return out;
}

std::set<std::string> minus(const std::set<std::string>& a, const std::set<std::string>& b)
{
    std::set<std::string> out;
    for (const std::string& x : a) {
        if (b.count(x) == 0) {
            out.insert(x);
        }
    }
    return out;
}

// What completion/smtpspool offers for the last of words, run by bash as
// bash-completion would (COMP_WORDS, COMP_CWORD, then _smtpspool).
std::set<std::string> completions(const std::vector<std::string>& words)
{
    std::string command = "bash -c 'source \"$1\"; shift; COMP_WORDS=(\"$@\"); COMP_CWORD=$(($# - 1)); "
                          "COMPREPLY=(); _smtpspool; printf \"%s\\n\" \"${COMPREPLY[@]}\"' _ "
                          "../../completion/smtpspool";
    for (const std::string& w : words) {
        command += " '" + w + "'";
    }
    std::set<std::string> out;
    FILE* p = ::popen(command.c_str(), "r");
    REQUIRE(p != nullptr);
    char buffer[4096];
    std::string text;
    while (std::size_t n = std::fread(buffer, 1, sizeof buffer, p)) {
        text.append(buffer, n);
    }
    REQUIRE(::pclose(p) == 0);
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);) {
        if (!line.empty()) {
            out.insert(line);
        }
    }
    return out;
}

const char* command_word(Subcommand c)
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
    case Subcommand::hold:
        return "hold";
    case Subcommand::release:
        return "release";
    case Subcommand::requeue:
        return "requeue";
    case Subcommand::bounce:
        return "bounce";
    case Subcommand::stats:
        return "stats";
    }
    return "";
}

std::string help_of(const std::string& command)
{
    const char* argv[] = {"smtpspool", command.c_str(), "--help"};
    auto r = parse_config(3, argv);
    REQUIRE(std::holds_alternative<ConfigExit>(r));
    // One line per option: the wrapping of the columns undone.
    std::string text;
    for (char ch : std::get<ConfigExit>(r).text) {
        if (ch == ' ' || ch == '\n') {
            if (!text.empty() && text.back() != ' ') {
                text += ' ';
            }
        } else {
            text += ch;
        }
    }
    return text;
}

} // namespace

TEST_SUITE("option table")
{
    TEST_CASE("the man page documents exactly the table's options")
    {
        std::string path = options_page_path();
        std::string page = read_text(path);
        REQUIRE_MESSAGE(!page.empty(), path << " is missing");
        std::set<std::string> documented = documented_options(page);
        std::set<std::string> table = table_names();
        INFO("page: " << path);
        CHECK_MESSAGE(minus(table, documented).empty(), "not documented: " << joined(minus(table, documented)));
        CHECK_MESSAGE(minus(documented, table).empty(),
                      "documented, not in the table: " << joined(minus(documented, table)));
    }

    TEST_CASE("the man page reader finds both ways of writing an option, and only in OPTIONS")
    {
        std::string page = ".SH COMMANDS\n.TP\n.BR runq \" [\" \\-\\-once \"]\"\n"
                           ".SH OPTIONS\n.SS Common options\n.TP\n.BR \\-h \", \" \\-\\-help\n"
                           ".TP\n.BI \\-\\-max\\-hops \" n\"\nText with \\-\\-not\\-a\\-tag.\n"
                           ".TQ\n\\fB\\-\\-tls\\-on\\-connect\\fR[\\fB=yes\\fR|\\fB=no\\fR]\n"
                           ".TP\n.BI smtp: host\n"
                           ".SH FILES\n.TP\n\\fB\\-\\-elsewhere\\fR\n";
        CHECK(documented_options(page) == std::set<std::string>{"help", "max-hops", "tls-on-connect"});
    }

    TEST_CASE("the bash completion offers each command exactly its options")
    {
        std::vector<OptionInfo> table = option_table();
        for (Subcommand c : {Subcommand::serve, Subcommand::mailq, Subcommand::runq, Subcommand::cat,
                             Subcommand::remove, Subcommand::check_config, Subcommand::hold, Subcommand::release,
                             Subcommand::requeue, Subcommand::bounce, Subcommand::stats}) {
            std::set<std::string> expected;
            for (const OptionInfo& o : table) {
                if (std::find(o.commands.begin(), o.commands.end(), c) != o.commands.end()) {
                    expected.insert("--" + o.name);
                    if (o.short_name != 0) {
                        expected.insert(std::string("-") + o.short_name);
                    }
                }
            }
            INFO("smtpspool " << std::string(command_word(c)));
            std::set<std::string> offered = completions({"smtpspool", command_word(c), "-"});
            CHECK_MESSAGE(minus(expected, offered).empty(), "not completed: " << joined(minus(expected, offered)));
            CHECK_MESSAGE(minus(offered, expected).empty(),
                          "completed, not an option: " << joined(minus(offered, expected)));
            if (c == Subcommand::serve) {
                CHECK(completions({"smtpspool", "-"}) == offered);
            }
        }
    }

    TEST_CASE("the bash completion completes values: yes|no, and never options after one that takes a value")
    {
        for (const OptionInfo& o : option_table()) {
            REQUIRE(!o.commands.empty());
            std::string command = command_word(o.commands.front());
            INFO("smtpspool " << command << " --" << o.name);
            if (o.kind == OptionKind::yes_no) {
                CHECK(completions({"smtpspool", command, "--" + o.name + "="}) == std::set<std::string>{"no", "yes"});
            }
            if (o.kind == OptionKind::text || o.kind == OptionKind::list) {
                // Its value, not another option, comes next.
                CHECK(completions({"smtpspool", command, "--" + o.name, "--"}).empty());
            }
        }
    }

    TEST_CASE("--help shows the defaults of Config")
    {
        std::string help = help_of("serve");
        Config c;
        CHECK(help.find("(default " + std::to_string(c.max_message_size) + ")") != std::string::npos);
        CHECK(help.find("(default " + c.spool + ")") != std::string::npos);
        CHECK(help.find("(repeatable; default 127.0.0.0/8 and ::1)") != std::string::npos);
        CHECK(help.find("(at least 512; default 2048)") != std::string::npos);
        CHECK(help.find("(default 30m,1h,2h,4h,8h)") != std::string::npos);
        CHECK(help.find("(default: the machine's FQDN)") != std::string::npos);
        std::string runq = help_of("runq");
        CHECK(runq.find("--once") != std::string::npos);
        CHECK(runq.find("--max-errors") == std::string::npos);
    }

    TEST_CASE("session_config carries the session's settings")
    {
        const char* argv[] = {
            "smtpspool",        "--hostname", "mx.example", "--max-message-size",         "1000",
            "--max-recipients", "7",          "--rfc821",   "--max-messages-per-session", "3",
            "--check-headers",  "--max-hops", "9",          "--add-envelope-to",          "--local-domain",
            "a.example"};
        auto r = parse_config(static_cast<int>(std::size(argv)), argv);
        REQUIRE(std::holds_alternative<Config>(r));
        SessionConfig s = session_config(std::get<Config>(r));
        CHECK(s.hostname == "mx.example");
        CHECK(s.max_message_size == 1000);
        CHECK(s.max_recipients == 7);
        CHECK(s.max_line_length == 2048);
        CHECK(s.max_errors == 20);
        CHECK(s.rfc821);
        CHECK(s.max_messages == 3);
        CHECK(s.check_headers);
        CHECK(s.max_hops == 9);
        CHECK(s.add_envelope_to);
        CHECK_FALSE(s.require_tls);
        CHECK(s.local_domains == std::vector<std::string>{"a.example"});
    }

    TEST_CASE("runq_arguments gives a runq the delivery settings, which it reads back")
    {
        const char* argv[] = {"smtpspool",
                              "--spool",
                              "/srv/q",
                              "--hostname",
                              "mx.example",
                              "--log",
                              "stderr",
                              "--route",
                              "a.example=maildir:/m",
                              "--smarthost",
                              "relay.example:2525",
                              "--retry-schedule",
                              "1m,5m",
                              "--smtp-timeout",
                              "40s",
                              "--deliver-now",
                              "--user",
                              "mail"};
        auto r = parse_config(static_cast<int>(std::size(argv)), argv);
        REQUIRE(std::holds_alternative<Config>(r));
        Config c = std::get<Config>(r);
        std::vector<std::string> args = runq_arguments(c);
        REQUIRE(args.front() == "runq");
        // Only these settings: not those of a default configuration file.
        REQUIRE(args.size() >= 3);
        CHECK(args[1] == "--config");
        CHECK(args[2] == "/dev/null");
        CHECK(std::find(args.begin(), args.end(), "--user") == args.end());
        CHECK(std::find(args.begin(), args.end(), "--deliver-now") == args.end());
        std::vector<const char*> back{"smtpspool"};
        for (const std::string& a : args) {
            back.push_back(a.c_str());
        }
        auto again = parse_config(static_cast<int>(back.size()), back.data());
        REQUIRE(std::holds_alternative<Config>(again));
        Config q = std::get<Config>(again);
        CHECK(q.command == Subcommand::runq);
        c.command = Subcommand::runq;
        c.user.reset();
        c.deliver_now = false;
        CHECK(describe(q) == describe(c));
    }
}
