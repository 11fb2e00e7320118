// cidr: IPv4/IPv6 networks ("127.0.0.0/8", "::1") and membership. Pure.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace smtpspool {

struct Network {
    std::array<std::uint8_t, 16> bytes{}; // IPv4 as ::ffff:a.b.c.d
    unsigned prefix = 0;                  // over the 128-bit form
};

std::optional<Network> parse_network(std::string_view text);

// Parses an address; IPv4-mapped IPv6 and IPv4 compare equal.
std::optional<std::array<std::uint8_t, 16>> parse_ip(std::string_view text);

bool contains(const Network& net, const std::array<std::uint8_t, 16>& ip);

// "::ffff:192.0.2.7" -> "192.0.2.7"; anything else unchanged.
std::string unmap_ipv4(std::string_view address);

} // namespace smtpspool
