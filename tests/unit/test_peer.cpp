// Tests of peer identity precedence, relay permission and CIDR matching.
#include "base/cidr.hpp"
#include "server/peer.hpp"

#include <doctest/doctest.h>

#include <memory>

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
        Peer p = proxied_peer(balancer, h);
        CHECK_FALSE(p.local);
        CHECK(p.address == "192.0.2.7");
        CHECK(p.port == 40001u);
        CHECK(p.hostname == std::nullopt);
        CHECK(p.ident == std::nullopt);
        CHECK(p.local_address == "198.51.100.1");
        CHECK(p.local_port == 25u);
        Peer same = proxied_peer(balancer, ProxyHeader{1, 15, std::nullopt});
        CHECK(same.address == "10.0.0.5");
        CHECK(same.hostname == "lb.test");
        CHECK(same.local_port == 2525u);
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
}
