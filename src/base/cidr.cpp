// cidr: address parsing with inet_pton, prefix matching on 128-bit forms.
#include "base/cidr.hpp"

#include <arpa/inet.h>
#include <charconv>

namespace smtpspool {

std::optional<std::array<std::uint8_t, 16>> parse_ip(std::string_view text)
{
    std::string s(text);
    if (s.find('\0') != std::string::npos) {
        return std::nullopt; // inet_pton would stop at the NUL
    }
    std::array<std::uint8_t, 16> out{};
    unsigned char v4[4];
    if (inet_pton(AF_INET, s.c_str(), v4) == 1) {
        out[10] = 0xff;
        out[11] = 0xff;
        for (int i = 0; i < 4; ++i) {
            out[static_cast<std::size_t>(12 + i)] = v4[i];
        }
        return out;
    }
    if (inet_pton(AF_INET6, s.c_str(), out.data()) == 1) {
        return out;
    }
    return std::nullopt;
}

std::optional<Network> parse_network(std::string_view text)
{
    std::size_t slash = text.find('/');
    auto ip = parse_ip(text.substr(0, slash));
    if (!ip) {
        return std::nullopt;
    }
    bool v4 = text.substr(0, slash).find(':') == std::string_view::npos;
    unsigned max = v4 ? 32 : 128;
    unsigned prefix = max;
    if (slash != std::string_view::npos) {
        std::string_view p = text.substr(slash + 1);
        auto [ptr, ec] = std::from_chars(p.data(), p.data() + p.size(), prefix);
        if (p.empty() || ec != std::errc() || ptr != p.data() + p.size() || prefix > max) {
            return std::nullopt;
        }
    }
    Network n;
    n.bytes = *ip;
    n.prefix = v4 ? prefix + 96 : prefix;
    return n;
}

bool contains(const Network& net, const std::array<std::uint8_t, 16>& ip)
{
    unsigned bits = net.prefix;
    for (std::size_t i = 0; i < 16 && bits > 0; ++i) {
        unsigned take = bits >= 8 ? 8 : bits;
        auto mask = static_cast<std::uint8_t>(0xff << (8 - take));
        if ((net.bytes[i] & mask) != (ip[i] & mask)) {
            return false;
        }
        bits -= take;
    }
    return true;
}

std::string unmap_ipv4(std::string_view address)
{
    constexpr std::string_view prefix = "::ffff:";
    if (address.size() > prefix.size() && address.substr(0, prefix.size()) == prefix &&
        address.find('.') != std::string_view::npos) {
        return std::string(address.substr(prefix.size()));
    }
    return std::string(address);
}

} // namespace smtpspool
