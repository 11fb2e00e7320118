// Tests of peer identity precedence, relay permission and CIDR matching.
#include "base/cidr.hpp"
#include "base/fd.hpp"
#include "policy/policy.hpp"
#include "server/peer.hpp"
#include "server/stdio_transport.hpp"

#include <doctest/doctest.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <memory>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <map>

using namespace smtpspool;

namespace {

EnvLookup env_of(std::map<std::string, std::string> vars)
{
    auto shared = std::make_shared<std::map<std::string, std::string>>(std::move(vars));
    return [shared](const char* name) -> const char* {
        auto it = shared->find(name);
        return it == shared->end() ? nullptr : it->second.c_str();
    };
}

} // namespace

TEST_SUITE("peer")
{
    TEST_CASE("UCSPI variables come first, then systemd's, else none")
    {
        auto p = peer_from_environment(env_of({{"TCPREMOTEIP", "192.0.2.7"},
                                               {"TCPREMOTEPORT", "40001"},
                                               {"TCPREMOTEHOST", "c.test"},
                                               {"TCPREMOTEINFO", "alice"},
                                               {"TCPLOCALIP", "192.0.2.1"},
                                               {"TCPLOCALPORT", "25"},
                                               {"REMOTE_ADDR", "198.51.100.1"}}));
        REQUIRE(p);
        CHECK_FALSE(p->local);
        CHECK(p->address == "192.0.2.7");
        CHECK(p->port == 40001u);
        CHECK(p->hostname == "c.test");
        CHECK(p->ident == "alice");
        CHECK(p->local_address == "192.0.2.1");
        CHECK(p->local_port == 25u);
        auto s = peer_from_environment(env_of({{"REMOTE_ADDR", "::ffff:198.51.100.1"}, {"REMOTE_PORT", "25"}}));
        REQUIRE(s);
        CHECK(s->address == "198.51.100.1");
        CHECK(s->port == 25u);
        CHECK(s->hostname == std::nullopt);
        CHECK_FALSE(peer_from_environment(env_of({})));
        CHECK_FALSE(peer_from_environment(env_of({{"TCPREMOTEIP", "not-an-ip"}})));
        auto bad_port = peer_from_environment(env_of({{"TCPREMOTEIP", "2001:db8::1"}, {"TCPREMOTEPORT", "99999"}}));
        REQUIRE(bad_port);
        CHECK(bad_port->port == std::nullopt);
    }

    TEST_CASE("who may relay")
    {
        std::vector<std::string> nets{"127.0.0.0/8", "::1", "10.1.0.0/16", "2001:db8::/32"};
        Peer local;
        CHECK(may_relay(local, nets, env_of({})));
        Peer p;
        p.local = false;
        p.address = "10.1.200.3";
        CHECK(may_relay(p, nets, env_of({})));
        p.address = "10.2.0.1";
        CHECK_FALSE(may_relay(p, nets, env_of({})));
        CHECK(may_relay(p, nets, env_of({{"RELAYCLIENT", ""}})));
        p.address = "2001:db8:ffff::1";
        CHECK(may_relay(p, nets, env_of({})));
        p.address = "2001:db9::1";
        CHECK_FALSE(may_relay(p, nets, env_of({})));
        p.address = "::1";
        CHECK(may_relay(p, nets, env_of({})));
    }

    TEST_CASE("a PROXY protocol header names the client in place of the balancer")
    {
        Peer balancer;
        balancer.local = false;
        balancer.address = "10.0.0.5";
        balancer.port = 51000;
        balancer.hostname = "lb.test";
        balancer.ident = "haproxy";
        balancer.local_address = "10.0.0.1";
        balancer.local_port = 2525;
        ProxyHeader h{2, 28, ProxyAddresses{"::ffff:192.0.2.7", 40001, "198.51.100.1", 25}};
        Peer p = proxied_peer(h);
        CHECK_FALSE(p.local);
        CHECK(p.address == "192.0.2.7");
        CHECK(p.port == 40001u);
        CHECK(p.hostname == std::nullopt);
        CHECK(p.ident == std::nullopt);
        CHECK(p.local_address == "198.51.100.1");
        CHECK(p.local_port == 25u);
        CHECK(client_name(p) == "192.0.2.7");
    }

    TEST_CASE("a PROXY header without addresses names an unknown client, never the balancer")
    {
        // PROXY UNKNOWN, LOCAL, and the unspecified and UNIX families parse
        // to a header without addresses.
        std::vector<std::string> nets{"127.0.0.0/8", "::1", "0.0.0.0/0", "::/0"};
        for (const ProxyHeader& h : {ProxyHeader{1, 15, std::nullopt}, ProxyHeader{2, 16, std::nullopt}}) {
            Peer p = proxied_peer(h);
            CHECK_FALSE(p.local);
            CHECK(p.address.empty());
            CHECK(p.port == std::nullopt);
            CHECK(p.hostname == std::nullopt);
            CHECK(p.local_address == std::nullopt);
            CHECK(client_name(p) == "unknown");
            CHECK_FALSE(in_networks(p, nets));
            CHECK_FALSE(may_relay(p, nets, env_of({})));
        }
    }

    TEST_CASE("in_networks: the balancers of --proxy-from")
    {
        std::vector<std::string> nets{"10.0.0.0/24", "2001:db8::5"};
        Peer p;
        CHECK_FALSE(in_networks(p, nets)); // local
        p.local = false;
        p.address = "10.0.0.200";
        CHECK(in_networks(p, nets));
        p.address = "::ffff:10.0.0.9";
        CHECK(in_networks(p, nets));
        p.address = "10.0.1.1";
        CHECK_FALSE(in_networks(p, nets));
        p.address = "2001:db8::5";
        CHECK(in_networks(p, nets));
        p.address = "2001:db8::6";
        CHECK_FALSE(in_networks(p, nets));
        CHECK_FALSE(in_networks(p, {}));
    }

    TEST_CASE("networks")
    {
        CHECK(parse_network("0.0.0.0/0"));
        CHECK_FALSE(parse_network("1.2.3.4/"));
        CHECK_FALSE(parse_network("1.2.3.4/x"));
        CHECK_FALSE(parse_network("::1/129"));
        auto any4 = parse_network("0.0.0.0/0");
        CHECK(contains(*any4, *parse_ip("203.0.113.9")));
        CHECK_FALSE(contains(*any4, *parse_ip("2001:db8::1")));
        CHECK(contains(*parse_network("192.0.2.128/25"), *parse_ip("192.0.2.200")));
        CHECK_FALSE(contains(*parse_network("192.0.2.128/25"), *parse_ip("192.0.2.100")));
        CHECK(unmap_ipv4("::ffff:10.0.0.1") == "10.0.0.1");
        CHECK(unmap_ipv4("::1") == "::1");
    }

    TEST_CASE("peer_from_socket: only what is no socket is local")
    {
        int fds[2];
        REQUIRE(::pipe(fds) == 0);
        Fd pipe_in(fds[0]);
        Fd pipe_out(fds[1]);
        CHECK(peer_from_socket(pipe_in.get(), false).local);
        Fd file(::open("/proc/self/exe", O_RDONLY | O_CLOEXEC));
        REQUIRE(file);
        CHECK(peer_from_socket(file.get(), false).local);

        // A UNIX-domain socket: an unknown network client unless trusted.
        REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM, 0, fds) == 0);
        Fd unix_a(fds[0]);
        Fd unix_b(fds[1]);
        Peer untrusted = peer_from_socket(unix_a.get(), false);
        CHECK_FALSE(untrusted.local);
        CHECK(untrusted.address.empty());
        CHECK(client_name(untrusted) == "unknown");
        CHECK_FALSE(may_relay(untrusted, {"127.0.0.0/8", "::1"}, [](const char*) -> const char* { return nullptr; }));
        CHECK(peer_from_socket(unix_a.get(), true).local);

        // A socket whose peer cannot be read (not connected): never local,
        // not even with UNIX-domain sockets trusted.
        Fd unconnected(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
        REQUIRE(unconnected);
        Peer no_peer = peer_from_socket(unconnected.get(), true);
        CHECK_FALSE(no_peer.local);
        CHECK(no_peer.address.empty());
        Fd unix_unconnected(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
        REQUIRE(unix_unconnected);
        CHECK_FALSE(peer_from_socket(unix_unconnected.get(), true).local);
        // A descriptor that is not open says nothing either.
        int closed = ::dup(unix_b.get());
        REQUIRE(closed >= 0);
        ::close(closed);
        CHECK_FALSE(peer_from_socket(closed, true).local);

        // A TCP connection on the loopback: its peer's address and port.
        Fd listener(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
        sockaddr_in sin{};
        sin.sin_family = AF_INET;
        sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        socklen_t len = sizeof sin;
        REQUIRE(::bind(listener.get(), reinterpret_cast<sockaddr*>(&sin), sizeof sin) == 0);
        REQUIRE(::listen(listener.get(), 1) == 0);
        REQUIRE(::getsockname(listener.get(), reinterpret_cast<sockaddr*>(&sin), &len) == 0);
        Fd client(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
        REQUIRE(::connect(client.get(), reinterpret_cast<sockaddr*>(&sin), sizeof sin) == 0);
        Fd server(::accept(listener.get(), nullptr, nullptr));
        REQUIRE(server);
        sockaddr_in mine{};
        len = sizeof mine;
        REQUIRE(::getsockname(client.get(), reinterpret_cast<sockaddr*>(&mine), &len) == 0);
        Peer tcp = peer_from_socket(server.get(), false);
        CHECK_FALSE(tcp.local);
        CHECK(tcp.address == "127.0.0.1");
        CHECK(tcp.port == ntohs(mine.sin_port));
    }

    TEST_CASE("client access: an unknown client is in no network but every address's")
    {
        Peer unknown;
        unknown.local = false;
        auto none = [](const char*) -> const char* { return nullptr; };
        auto denied = [&](std::vector<std::string> deny, std::vector<std::string> allow) {
            return client_denied(unknown, deny, allow, none);
        };
        CHECK_FALSE(denied({}, {}));
        CHECK_FALSE(denied({"127.0.0.0/8", "10.0.0.0/8", "2001:db8::/32"}, {}));
        CHECK(denied({"0.0.0.0/0"}, {"127.0.0.1", "0.0.0.0/1", "128.0.0.0/1"}));
        CHECK(denied({"::/0"}, {"::1"}));
        CHECK(denied({"::ffff:0.0.0.0/96"}, {}));
        CHECK_FALSE(denied({"0.0.0.0/1", "128.0.0.0/1"}, {}));
        CHECK(client_denied(unknown, {}, {}, [](const char* n) -> const char* {
            return std::string_view(n) == k_deny_variable ? "" : nullptr;
        }));
        Peer local;
        CHECK_FALSE(client_denied(local, {"0.0.0.0/0", "::/0"}, {}, none));
    }
}
