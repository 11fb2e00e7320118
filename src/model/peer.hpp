// peer: who is on the other end of the session, and how the program reads
// the environment that names it (the superserver's variables).
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>

namespace smtpspool {

// Who is on the other end, as the server found out (smtpspool(8), PEER IDENTITY).
// Three kinds: local (a pipe, file or terminal, or a trusted UNIX-domain
// socket); a network client with its address; and a network client whose
// address is unknown (not local, address empty: an untrusted UNIX-domain
// socket, a socket whose peer cannot be read, a PROXY header without
// addresses), which is in no network and is trusted with nothing.
struct Peer {
    bool local = true;   // no network peer
    std::string address; // "192.0.2.7" or "2001:db8::1"; "" when local or unknown
    std::optional<std::uint64_t> port;
    std::optional<std::string> hostname;
    std::optional<std::string> ident;
    std::optional<std::string> local_address; // our end, when the superserver says (TCPLOCALIP)
    std::optional<std::uint64_t> local_port;
};

// How logs name the client: "local", its address, or "unknown".
inline std::string client_name(const Peer& peer)
{
    if (peer.local) {
        return "local";
    }
    return peer.address.empty() ? "unknown" : peer.address;
}

// getenv(3), or a map in tests.
using EnvLookup = std::function<const char*(const char*)>;

} // namespace smtpspool
