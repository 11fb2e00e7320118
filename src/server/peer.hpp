// peer: who the client is, from the superserver's environment (UCSPI
// TCPREMOTE*, then systemd's REMOTE_ADDR), and whether it may relay. Pure.
#pragma once

#include "server/proxy_protocol.hpp"
#include "model/peer.hpp"

#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace smtpspool {

// The peer the environment names, or nullopt when it names none.
std::optional<Peer> peer_from_environment(const EnvLookup& env);

// The peer a trusted load balancer names in its PROXY protocol header, in
// place of the connection's own (the balancer's address, host name and ident
// do not describe it). A header without addresses names a network client
// whose address is unknown, never the balancer.
Peer proxied_peer(const ProxyHeader& header);

// True when the peer's address is in one of the networks; never for a local
// peer or one whose address is unknown.
bool in_networks(const Peer& peer, const std::vector<std::string>& networks);

// Local clients, RELAYCLIENT set (tcprules), or an address in relay_clients.
bool may_relay(const Peer& peer, const std::vector<std::string>& relay_clients, const EnvLookup& env);

} // namespace smtpspool
