// deliverers: builds the Deliverer for a route's TransportSpec from the configuration.
#pragma once

#include "cli/config.hpp"
#include "delivery/client_tls.hpp"
#include "delivery/deliverer.hpp"
#include "delivery/smtp_security.hpp"

#include <memory>
#include <vector>

namespace smtpspool {

// What deliverers share in a run: the SMTP client's TLS connector and
// credentials, the http transports' secret (--http-secret-file), the amqp
// routes' credentials (--amqp-credentials-file).
struct SmtpClientSetup {
    std::shared_ptr<ClientTlsConnector> tls;
    std::vector<AuthEntry> credentials;
    std::string http_secret{};
    std::vector<AuthEntry> amqp_credentials{};
};

std::unique_ptr<Deliverer> make_deliverer(const TransportSpec& spec, const Config& config,
                                          const SmtpClientSetup& smtp = {});

} // namespace smtpspool
