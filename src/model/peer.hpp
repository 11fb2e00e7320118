// peer: who is on the other end of the session, and how the program reads
// the environment that names it (the superserver's variables).
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>

namespace smtpspool {

// Who is on the other end, as the server found out (smtpspool(8), PEER IDENTITY).
struct Peer {
    bool local = true;   // a pipe, file or terminal: no network peer
    std::string address; // "192.0.2.7" or "2001:db8::1"; "" when local
    std::optional<std::uint64_t> port;
    std::optional<std::string> hostname;
    std::optional<std::string> ident;
    std::optional<std::string> local_address; // our end, when the superserver says (TCPLOCALIP)
    std::optional<std::uint64_t> local_port;
};

// getenv(3), or a map in tests.
using EnvLookup = std::function<const char*(const char*)>;

} // namespace smtpspool
