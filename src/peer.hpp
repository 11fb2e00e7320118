// peer: who the client is, from the superserver's environment (UCSPI
// TCPREMOTE*, then systemd's REMOTE_ADDR), and whether it may relay. Pure.
#pragma once

#include "session.hpp"

#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace smtpspool {

using EnvLookup = std::function<const char*(const char*)>;

// The peer the environment names, or nullopt when it names none.
std::optional<Peer> peer_from_environment(const EnvLookup& env);

// Local clients, RELAYCLIENT set (tcprules), or an address in relay_clients.
bool may_relay(const Peer& peer, const std::vector<std::string>& relay_clients, const EnvLookup& env);

} // namespace smtpspool
