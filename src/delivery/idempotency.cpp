// idempotency: the key of a hand-over, from the host, the queue id and the recipients.
#include "delivery/idempotency.hpp"

#include "base/sha256.hpp"

#include <algorithm>
#include <utility>

namespace smtpspool {

std::string idempotency_key(std::string_view hostname, std::string_view queue_id, std::vector<std::string> addresses)
{
    std::sort(addresses.begin(), addresses.end());
    Sha256 digest;
    digest.update(hostname);
    digest.update("\n");
    for (const std::string& a : addresses) {
        digest.update(a);
        digest.update("\n");
    }
    return std::string(queue_id) + "." + hex(digest.finish()).substr(0, 32);
}

std::string idempotency_key(const Envelope& envelope, const std::vector<std::size_t>& recipients)
{
    std::vector<std::string> addresses;
    for (std::size_t i : recipients) {
        addresses.push_back(envelope.recipients.at(i).address);
    }
    return idempotency_key(envelope.hostname, envelope.id, std::move(addresses));
}

} // namespace smtpspool
