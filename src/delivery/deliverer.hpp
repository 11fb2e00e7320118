// deliverer: what the queue runner asks of a delivery method (smtp, maildir,
// pipe): deliver one queued message to some of its recipients, and say for
// each recipient whether it was delivered, failed for now, or failed for good.
#pragma once

#include "base/fd.hpp"
#include "base/result.hpp"
#include "model/envelope.hpp"

#include <chrono>
#include <cstddef>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace smtpspool {

enum class Outcome { delivered, temporary, permanent };

// Where a delivered recipient went (RFC 3461 §6.2.3: who reports success).
enum class Handoff {
    final_delivery, // into a mailbox or to a command: we report success
    relayed_dsn,    // to a server that offers DSN, with the parameters: it reports
    relayed,        // to a server without DSN: we report "relayed"
};

struct RecipientOutcome {
    Outcome outcome = Outcome::temporary;
    // For the envelope's last_error and bounces: the remote reply
    // ("550 5.1.1 <u@x>: no such user") or a local description. Never has CR or LF.
    std::string detail;
    Handoff handoff = Handoff::final_delivery; // for Outcome::delivered
    // The TLS of the connection the outcome came over (SMTP), when it had TLS.
    std::optional<DeliveryTls> tls = std::nullopt;
    // The next hop tried last for this recipient ("mx.example[192.0.2.1]:25"),
    // when one was: the envelope keeps it as last_hop, mailq shows it.
    std::string hop{};
    // Outcome::temporary only: the connection failed before this recipient
    // was answered (no connection, greeting or EHLO refused, connection lost
    // before the end of the data), so another server of the same
    // destination may take it (RFC 5321 §5.1).
    bool try_next = false;
    // Outcome::temporary only: the next hop asked not to be tried again
    // before this long (HTTP Retry-After); 0: it did not ask.
    std::chrono::seconds retry_after{0};
};

// Opens the message (CRLF line ends) for reading from its start, a fresh
// descriptor per call; the spool entry does it without following links.
using MessageOpener = std::function<Result<Fd>()>;

struct Delivery {
    const Envelope& envelope;
    MessageOpener open_message;
    std::vector<std::size_t> recipients; // indices into envelope.recipients, all "pending"
};

class Deliverer {
public:
    virtual ~Deliverer() = default;
    // One outcome per entry of delivery.recipients, in the same order.
    virtual std::vector<RecipientOutcome> deliver(const Delivery& delivery) = 0;
    // End of the run: close connections (SMTP QUIT) and the like.
    virtual void finish() {}
    // Configuration trouble met since the last call (bad credentials...),
    // each reported once per run: the runner logs them. Never secrets.
    virtual std::vector<std::string> take_notices() { return {}; }
};

} // namespace smtpspool
