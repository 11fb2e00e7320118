// idempotency: the key by which a consumer recognises a hand-over it has seen
// before. A transport that hands a message to a system which may be handed
// it twice (runq delivered it, then died before it recorded so; the answer
// was lost) labels each hand-over with this key: the same message to the
// same recipients gives the same key on every attempt, by every runq. The
// amqp transport's message id and the http transports' Idempotency-Key are
// this key.
// Pure.
#pragma once

#include "model/envelope.hpp"

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace smtpspool {

// "QUEUEID.HEX": the queue id, a dot, and the first 32 hex digits (lower
// case) of the SHA-256 of the envelope's hostname and the recipients'
// addresses as the envelope stores them, sorted (octet by octet), each
// followed by LF. Queue ids are unique on one host; the hostname keeps two
// hosts' equal ids apart. The order in which the recipients are given does
// not matter. At most 128 + 1 + 32 octets, so it fits an AMQP message-id (a
// short string, at most 255 octets).
std::string idempotency_key(std::string_view hostname, std::string_view queue_id, std::vector<std::string> addresses);

// The key of a hand-over of `envelope` to the recipients at these indices.
std::string idempotency_key(const Envelope& envelope, const std::vector<std::size_t>& recipients);

} // namespace smtpspool
