// amqp_deliverer: the amqp transport. Each message goes to a RabbitMQ (AMQP
// 0-9-1) exchange as one persistent publication per route, with publisher
// confirms: its recipients are delivered only once the broker has confirmed
// it (basic.ack); a nack, a return (no queue bound for the routing key), a
// closed channel or connection, or the timeout leaves them pending. The
// body is the message as stored (CRLF line ends), read whole into memory (an
// AMQP content body is sent with its size first); the envelope goes in the
// message's headers. Only amqp_deliverer.cpp includes librabbitmq's headers.
#pragma once

#include "delivery/deliverer.hpp"

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace smtpspool {

struct AmqpTarget {
    std::string host;
    std::uint16_t port = 5672;
    std::string vhost = "/";
    std::string exchange;
    std::string routing_key;
    std::string text; // the route's transport as written (no password)
};

struct AmqpCredentials {
    std::string user;
    std::string password;
};

// The envelope header of a publication: a JSON object with the queue id,
// the idempotency key, the sender, the recipients of this publication only,
// and the facts of the arrival (see smtpspool-runq(8), "The amqp transport").
std::string amqp_envelope_json(const Envelope& envelope, const std::vector<std::size_t>& recipients,
                               const std::string& key);

class AmqpDeliverer final : public Deliverer {
public:
    // credentials: nullopt when the credentials file has none for this
    // route (every delivery is deferred, with a notice). max_size: the
    // largest message.eml sent; larger ones fail for good.
    AmqpDeliverer(AmqpTarget target, std::optional<AmqpCredentials> credentials, std::string credentials_problem,
                  std::chrono::seconds timeout, std::uint64_t max_size);
    ~AmqpDeliverer() override;
    std::vector<RecipientOutcome> deliver(const Delivery& delivery) override;
    void finish() override;
    std::vector<std::string> take_notices() override;

    struct Connection;

private:
    std::vector<RecipientOutcome> all(const Delivery& delivery, Outcome outcome, const std::string& detail) const;
    Result<void> connect(std::chrono::steady_clock::time_point deadline);
    void drop();

    AmqpTarget m_target;
    std::optional<AmqpCredentials> m_credentials;
    std::string m_credentials_problem;
    std::chrono::seconds m_timeout;
    std::uint64_t m_max_size;
    std::unique_ptr<Connection> m_connection;
    std::vector<std::string> m_notices;
    bool m_noticed = false;
};

} // namespace smtpspool
