// idempotency: the key by which a consumer recognises a delivery it has seen
// before. A transport that hands a message to a system which may be handed
// it twice (runq delivered it, then died before it recorded so) labels each
// hand-over with this key: the same message to the same recipients gives the
// same key on every attempt, by every runq. Shared by the transports that
// need one (amqp); pure.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace smtpspool {

// "QUEUEID.FINGERPRINT": the queue id, a dot, and 32 lower-case hex digits,
// a 128-bit fingerprint of the recipient set (the addresses as the envelope
// stores them, sorted and without repeats, each followed by LF, under two
// SipHash-2-4 passes with fixed, published keys). The order in which the
// recipients are given does not matter; at most 128 + 1 + 32 octets, so it
// fits an AMQP message-id (a short string, at most 255 octets).
std::string idempotency_key(std::string_view queue_id, std::vector<std::string> recipients);

} // namespace smtpspool
