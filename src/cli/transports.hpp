// transports: builds the Transport for a route's TransportSpec from the configuration.
#pragma once

#include "cli/config.hpp"
#include "delivery/transport.hpp"

#include <memory>

namespace smtpspool {

std::unique_ptr<Transport> make_transport(const TransportSpec& spec, const Config& config);

} // namespace smtpspool
