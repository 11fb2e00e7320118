// idempotency: the key of a hand-over, from the queue id and the recipient set.
#include "delivery/idempotency.hpp"

#include "base/siphash.hpp"

#include <algorithm>
#include <array>
#include <cstdint>

namespace smtpspool {

namespace {

// Fixed keys: the fingerprint is a name, not a secret; consumers may compute it.
// ("smtpspool idempotency key v1", ASCII, padded with NULs to 32 octets, in
// little-endian 64-bit words.)
constexpr std::array<std::uint64_t, 2> k_first{0x6f6f707370746d73ULL, 0x6f706d656469206cULL};
constexpr std::array<std::uint64_t, 2> k_second{0x656b2079636e6574ULL, 0x0000000031762079ULL};

void append_hex(std::string& out, std::uint64_t v)
{
    static constexpr char digits[] = "0123456789abcdef";
    for (int shift = 60; shift >= 0; shift -= 4) {
        out += digits[(v >> shift) & 0xf];
    }
}

} // namespace

std::string idempotency_key(std::string_view queue_id, std::vector<std::string> recipients)
{
    std::sort(recipients.begin(), recipients.end());
    recipients.erase(std::unique(recipients.begin(), recipients.end()), recipients.end());
    std::string set;
    for (const std::string& r : recipients) {
        set += r;
        set += '\n';
    }
    std::string key(queue_id);
    key += '.';
    append_hex(key, siphash24(k_first, set));
    append_hex(key, siphash24(k_second, set));
    return key;
}

} // namespace smtpspool
