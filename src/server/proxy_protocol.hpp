// proxy_protocol: the header a load balancer sends before the client's bytes
// (the PROXY protocol spec, versions 1 and 2), from the octets read so far.
// Pure; smtpspool(8), PROXY PROTOCOL, describes what is accepted.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>

namespace smtpspool {

// Both ends of the proxied connection, as inet_ntop(3) writes them.
struct ProxyAddresses {
    std::string source;
    std::uint16_t source_port = 0;
    std::string destination;
    std::uint16_t destination_port = 0;
    bool operator==(const ProxyAddresses&) const = default;
};

// A complete header of `length` octets. No addresses: LOCAL (v2), UNKNOWN
// (v1), or an unspecified or UNIX family: the connection's own peer stays.
struct ProxyHeader {
    int version = 1;
    std::size_t length = 0;
    std::optional<ProxyAddresses> addresses;
    bool operator==(const ProxyHeader&) const = default;
};

// Not complete yet: read at most `at_most` more octets (never past the end of
// a valid header), then ask again with all the octets so far.
struct ProxyNeedMore {
    std::size_t at_most = 0;
};

// Not a header we accept: the reason, for the log.
struct ProxyMalformed {
    std::string reason;
};

using ProxyParse = std::variant<ProxyNeedMore, ProxyMalformed, ProxyHeader>;

// Decides from the first octets of the connection. Octets after the header
// are not looked at. Once a prefix is malformed or complete, every longer
// input gives the same answer.
ProxyParse parse_proxy_header(std::string_view input);

} // namespace smtpspool
