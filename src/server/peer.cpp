// peer: the precedence of peer identity sources (smtpspool(8), PEER IDENTITY).
#include "server/peer.hpp"

#include "base/cidr.hpp"

#include <charconv>
#include <cstring>

namespace smtpspool {
namespace {

std::optional<std::string> value(const EnvLookup& env, const char* name)
{
    const char* v = env(name);
    if (v == nullptr || *v == '\0') {
        return std::nullopt;
    }
    return std::string(v);
}

std::optional<std::uint64_t> port(const EnvLookup& env, const char* name)
{
    auto v = value(env, name);
    std::uint64_t n = 0;
    if (!v) {
        return std::nullopt;
    }
    auto [ptr, ec] = std::from_chars(v->data(), v->data() + v->size(), n);
    if (ec != std::errc() || ptr != v->data() + v->size() || n > 65535) {
        return std::nullopt;
    }
    return n;
}

} // namespace

std::optional<Peer> peer_from_environment(const EnvLookup& env)
{
    // tcpserver (UCSPI-TCP), and inetd implementations that set the same names.
    if (auto ip = value(env, "TCPREMOTEIP"); ip && parse_ip(*ip)) {
        Peer p;
        p.local = false;
        p.address = unmap_ipv4(*ip);
        p.port = port(env, "TCPREMOTEPORT");
        p.hostname = value(env, "TCPREMOTEHOST");
        p.ident = value(env, "TCPREMOTEINFO");
        p.local_address = value(env, "TCPLOCALIP");
        p.local_port = port(env, "TCPLOCALPORT");
        return p;
    }
    // systemd.socket(5) with Accept=yes.
    if (auto ip = value(env, "REMOTE_ADDR"); ip && parse_ip(*ip)) {
        Peer p;
        p.local = false;
        p.address = unmap_ipv4(*ip);
        p.port = port(env, "REMOTE_PORT");
        return p;
    }
    return std::nullopt;
}

Peer proxied_peer(const ProxyHeader& header)
{
    Peer p;
    p.local = false;
    if (!header.addresses) {
        return p; // a client without an address, whoever the balancer is
    }
    p.address = unmap_ipv4(header.addresses->source);
    p.port = header.addresses->source_port;
    p.local_address = unmap_ipv4(header.addresses->destination);
    p.local_port = header.addresses->destination_port;
    return p;
}

bool in_networks(const Peer& peer, const std::vector<std::string>& networks)
{
    auto ip = parse_ip(peer.address);
    if (peer.local || !ip) {
        return false;
    }
    for (const std::string& n : networks) {
        if (auto net = parse_network(n); net && contains(*net, *ip)) {
            return true;
        }
    }
    return false;
}

bool may_relay(const Peer& peer, const std::vector<std::string>& relay_clients, const EnvLookup& env)
{
    return peer.local || env("RELAYCLIENT") != nullptr || in_networks(peer, relay_clients);
}

} // namespace smtpspool
