// Tests of option parsing: defaults, config file, precedence, errors.
#include "cli/config.hpp"
#include "testutil.hpp"

#include <doctest/doctest.h>

#include <fstream>

using namespace smtpspool;
using namespace testutil;

namespace {

std::variant<Config, ConfigExit> parse(std::vector<std::string> args)
{
    args.insert(args.begin(), "smtpspool");
    std::vector<const char*> argv;
    for (const std::string& a : args) {
        argv.push_back(a.c_str());
    }
    return parse_config(static_cast<int>(argv.size()), argv.data());
}

Config ok(std::vector<std::string> args)
{
    auto r = parse(std::move(args));
    if (auto* e = std::get_if<ConfigExit>(&r)) {
        FAIL("unexpected exit: " << e->text);
    }
    return std::get<Config>(r);
}

ConfigExit exits(std::vector<std::string> args)
{
    auto r = parse(std::move(args));
    REQUIRE(r.index() == 1);
    return std::get<ConfigExit>(r);
}

} // namespace

TEST_SUITE("config")
{
    TEST_CASE("defaults follow the product contract")
    {
        Config c = ok({});
        CHECK(c.command == Subcommand::serve);
        CHECK(c.spool == "/var/spool/smtpspool");
        CHECK(c.max_message_size == 20000000);
        CHECK(c.max_recipients == 10000);
        CHECK(c.max_line_length == 2048);
        CHECK(c.timeout == 300);
        CHECK(c.max_errors == 20);
        CHECK_FALSE(c.rfc821);
        CHECK_FALSE(c.proxy_protocol);
        CHECK(c.proxy_from.empty());
        CHECK(c.log == LogTarget::syslog);
        CHECK(c.relay_clients == std::vector<std::string>{"127.0.0.0/8", "::1"});
        apply_machine_defaults(c, "host.example");
        CHECK(c.hostname == "host.example");
        CHECK(c.local_domains == std::vector<std::string>{"host.example", "localhost"});
    }

    TEST_CASE("subcommands and their arguments")
    {
        CHECK(ok({"serve", "--spool", "/x"}).spool == "/x");
        Config m = ok({"mailq", "--json", "A1", "B2"});
        CHECK(m.command == Subcommand::mailq);
        CHECK(m.json);
        CHECK(m.ids == std::vector<std::string>{"A1", "B2"});
        CHECK(ok({"cat", "ID"}).command == Subcommand::cat);
        CHECK(exits({"cat"}).status == k_exit_usage);
        CHECK(exits({"remove", "a", "b"}).status == k_exit_usage);
        CHECK(exits({"frobnicate"}).status == k_exit_usage);
        CHECK(exits({"mailq", "--max-errors", "3"}).status == k_exit_usage);
        CHECK(exits({"--no-such-option"}).status == k_exit_usage);
    }

    TEST_CASE("--help and --version print and exit 0")
    {
        for (auto cmd : {"serve", "mailq", "runq", "cat", "remove", "check-config"}) {
            ConfigExit e = exits({cmd, "--help"});
            CHECK(e.status == 0);
            CHECK(e.text.find(std::string("smtpspool ") + (std::string(cmd) == "serve" ? "[serve]" : cmd)) !=
                  std::string::npos);
        }
        CHECK(exits({"--version"}).text.substr(0, 10) == "smtpspool ");
        CHECK(exits({"--help"}).text.find("--max-message-size") != std::string::npos);
    }

    TEST_CASE("the config file is read and the command line wins")
    {
        TempDir dir;
        std::string path = dir.path() + "/smtpspool.conf";
        std::ofstream(path) << "# comment\nspool = /from/file\nmax-errors = 7\nlocal-domain = a.example\n"
                               "local-domain = b.example\nrfc821 = yes\ntimeout = 60\n";
        Config c = ok({"--config", path, "--max-errors", "3", "--local-domain", "c.example"});
        CHECK(c.spool == "/from/file");
        CHECK(c.max_errors == 3);
        CHECK(c.timeout == 60);
        CHECK(c.rfc821);
        CHECK(c.local_domains == std::vector<std::string>{"c.example"});
        CHECK(ok({"--config", path, "--rfc821", "no"}).rfc821 == false);
        CHECK(ok({"--config", path}).local_domains == std::vector<std::string>{"a.example", "b.example"});
    }

    TEST_CASE("bad values are configuration errors with the option's name")
    {
        TempDir dir;
        struct Row {
            std::vector<std::string> args;
            std::string mention;
        };
        const Row rows[] = {
            {{"--max-message-size", "-1"}, "max-message-size"},
            {{"--max-message-size", "12abc"}, "max-message-size"},
            {{"--max-line-length", "100"}, "at least 512"},
            {{"--timeout", "0"}, "timeout"},
            {{"--relay-client", "10.0.0.0/33"}, "relay-client"},
            {{"--relay-client", "not-an-ip"}, "relay-client"},
            {{"--local-domain", "bad domain"}, "local-domain"},
            {{"--hostname", "a..b"}, "hostname"},
            {{"--log", "kafka"}, "log"},
            {{"--rfc821", "maybe"}, "rfc821"},
            {{"--proxy-protocol"}, "proxy-protocol: needs --proxy-from"},
            {{"--proxy-protocol", "yes"}, "proxy-protocol: needs --proxy-from"},
            {{"--proxy-protocol", "perhaps", "--proxy-from", "10.0.0.1"}, "proxy-protocol: expected yes or no"},
            {{"--proxy-from", "10.0.0.0/40"}, "proxy-from: not an address or CIDR network"},
            {{"--proxy-protocol", "--proxy-from", "lb.test"}, "proxy-from: not an address or CIDR network"},
            {{"--config", dir.path() + "/missing.conf"}, "cannot read"},
            {{"runq", "--concurrency", "0"}, "concurrency: must be at least 1"},
            {{"runq", "--concurrency", "1001"}, "concurrency: at most 1000"},
            {{"runq", "--concurrency-per-host", "0"}, "concurrency-per-host: must be at least 1"},
            {{"runq", "--delay-warning", "soon"}, "delay-warning"},
        };
        for (const Row& r : rows) {
            ConfigExit e = exits(r.args);
            INFO(e.text);
            CHECK(e.status == k_exit_config);
            CHECK(e.text.find(r.mention) != std::string::npos);
        }
        std::string path = dir.path() + "/bad.conf";
        std::ofstream(path) << "no-such-key = 1\n";
        ConfigExit e = exits({"--config", path});
        CHECK(e.status == k_exit_config);
        CHECK(e.text.find("no-such-key") != std::string::npos);
    }

    TEST_CASE("runq: --concurrency, --concurrency-per-host and --delay-warning, and their defaults")
    {
        Config c = ok({"runq"});
        CHECK(c.concurrency == 10);
        CHECK(c.concurrency_per_host == 2);
        CHECK_FALSE(c.delay_warning);
        c = ok({"runq", "--concurrency", "3", "--concurrency-per-host", "1", "--delay-warning", "4h"});
        CHECK(c.concurrency == 3);
        CHECK(c.concurrency_per_host == 1);
        CHECK(c.delay_warning == std::chrono::seconds(4 * 3600));
        // serve passes them on to the runq of --deliver-now.
        auto args = runq_arguments(c);
        auto at = [&](const std::string& name) {
            auto it = std::find(args.begin(), args.end(), name);
            return it == args.end() || it + 1 == args.end() ? std::string() : *(it + 1);
        };
        CHECK(at("--concurrency") == "3");
        CHECK(at("--concurrency-per-host") == "1");
        CHECK(at("--delay-warning") == "4h");
    }

    TEST_CASE("the mx transport's options: --mx-port, --dns-server (at most 3), --route DOMAIN=mx")
    {
        Config c = ok({"runq", "--route", "*=mx", "--mx-port", "2525", "--dns-server", "127.0.0.1:5353",
                       "--dns-server", "[::1]:5353"});
        CHECK(c.mx_port == 2525);
        CHECK(c.dns_servers == std::vector<std::string>{"127.0.0.1:5353", "[::1]:5353"});
        REQUIRE(c.routes.size() == 1);
        CHECK(c.routes[0].transport.kind == TransportKind::mx);
        Config d = ok({"runq"});
        CHECK(d.mx_port == 25);
        CHECK(d.dns_servers.empty());
        const std::vector<std::pair<std::vector<std::string>, std::string>> bad{
            {{"runq", "--mx-port", "0"}, "mx-port"},
            {{"runq", "--mx-port", "65536"}, "mx-port: a port, 1 to 65535"},
            {{"runq", "--dns-server", "ns.example"}, "dns-server: not an IP address: 'ns.example'"},
            {{"runq", "--dns-server", "127.0.0.1:0"}, "dns-server: bad port"},
            {{"runq", "--dns-server", "127.0.0.1", "--dns-server", "127.0.0.2", "--dns-server", "127.0.0.3",
              "--dns-server", "127.0.0.4"},
             "dns-server: at most 3 name servers"},
            {{"runq", "--route", "*=mx:2525"}, "mx takes no argument"},
        };
        for (const auto& [args, mention] : bad) {
            ConfigExit e = exits(args);
            INFO(e.text);
            CHECK(e.status == k_exit_config);
            CHECK(e.text.find(mention) != std::string::npos);
        }
    }

    TEST_CASE("TLS options: certificate and key together; requiring TLS needs them")
    {
        Config c = ok({"--tls-cert", "/etc/c.pem", "--tls-key", "/etc/k.pem", "--require-tls"});
        CHECK(c.tls_cert == "/etc/c.pem");
        CHECK(c.tls_key == "/etc/k.pem");
        CHECK(c.require_tls);
        CHECK_FALSE(c.tls_on_connect);
        CHECK_FALSE(ok({}).tls_cert);
        auto error = [](std::vector<std::string> args) {
            ConfigExit e = exits(std::move(args));
            CHECK(e.status == k_exit_config);
            return e.text;
        };
        CHECK(error({"--tls-cert", "/etc/c.pem"}).find("tls-cert: needs --tls-key") != std::string::npos);
        CHECK(error({"--tls-key", "/etc/k.pem"}).find("tls-key: needs --tls-cert") != std::string::npos);
        CHECK(error({"--require-tls"}).find("require-tls: needs --tls-cert and --tls-key") != std::string::npos);
        CHECK(error({"--tls-on-connect", "yes"}).find("tls-on-connect: needs") != std::string::npos);
        CHECK(error({"--tls-cert", "", "--tls-key", "k"}).find("tls-cert: must not be empty") != std::string::npos);
        Config implicit = ok({"--tls-cert", "c", "--tls-key", "k", "--tls-on-connect", "--require-tls"});
        CHECK(implicit.tls_on_connect);
        CHECK_FALSE(implicit.require_tls); // every session is encrypted already
        std::string d = describe(c);
        CHECK(d.find("tls-cert = /etc/c.pem\ntls-key = /etc/k.pem\nrequire-tls = yes\ntls-on-connect = no\n") !=
              std::string::npos);
    }

    TEST_CASE("--proxy-protocol with its balancers, on the command line or in the file")
    {
        Config c = ok({"--proxy-protocol", "--proxy-from", "10.0.0.0/24", "--proxy-from", "2001:db8::5"});
        CHECK(c.proxy_protocol);
        CHECK(c.proxy_from == std::vector<std::string>{"10.0.0.0/24", "2001:db8::5"});
        CHECK_FALSE(ok({"--proxy-protocol", "no"}).proxy_protocol);
        CHECK(ok({"--proxy-from", "10.0.0.1"}).proxy_from == std::vector<std::string>{"10.0.0.1"});
        TempDir dir;
        std::string path = dir.path() + "/proxy.conf";
        std::ofstream(path) << "proxy-protocol = yes\nproxy-from = 192.0.2.0/28\n";
        Config f = ok({"--config", path});
        CHECK(f.proxy_protocol);
        CHECK(f.proxy_from == std::vector<std::string>{"192.0.2.0/28"});
        CHECK_FALSE(ok({"--config", path, "--proxy-protocol=no"}).proxy_protocol);
        std::string text = describe(f);
        CHECK(text.find("proxy-protocol = yes\nproxy-from = 192.0.2.0/28\n") != std::string::npos);
        CHECK(describe(ok({})).find("proxy-protocol = no\n") != std::string::npos);
    }

    TEST_CASE("AUTH: a password file or a checkpassword command, not both")
    {
        CHECK(ok({"--auth-passwd", "/etc/p"}).auth_passwd == "/etc/p");
        CHECK(ok({"--auth-command", "/usr/bin/checkpassword"}).auth_command == "/usr/bin/checkpassword");
        ConfigExit e = exits({"--auth-passwd", "/etc/p", "--auth-command", "x"});
        CHECK(e.status == k_exit_config);
        CHECK(e.text.find("--auth-passwd and --auth-command exclude each other") != std::string::npos);
        CHECK(describe(ok({"--auth-command", "cp -x"})).find("auth-command = cp -x\n") != std::string::npos);
    }

    TEST_CASE("a config key with a placeholder of the option library is refused, not looped on")
    {
        // Found by fuzz_config: the library's error message for this unknown
        // key never finished being built.
        TempDir dir;
        std::string path = dir.path() + "/hang.conf";
        std::ofstream(path) << "# x\nmax-errors%canonical_option% = yes\n";
        ConfigExit e = exits({"--config", path});
        CHECK(e.status == k_exit_config);
        CHECK(e.text.find("line 2: unrecognised option") != std::string::npos);
    }

    TEST_CASE("check-config prints settings the config file can read back")
    {
        TempDir dir;
        Config c = ok({"check-config", "--hostname", "mx.example", "--max-errors", "5", "--local-domain", "x.example"});
        apply_machine_defaults(c, "ignored.example");
        std::string text = describe(c);
        CHECK(text.find("hostname = mx.example\n") != std::string::npos);
        std::string path = dir.path() + "/round.conf";
        std::ofstream(path) << text;
        Config back = ok({"--config", path});
        CHECK(back.hostname == "mx.example");
        CHECK(back.max_errors == 5);
        CHECK(back.local_domains == std::vector<std::string>{"x.example"});
        CHECK(describe(back) == text);
    }
}
