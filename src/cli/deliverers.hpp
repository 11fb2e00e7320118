// deliverers: builds the Deliverer for a route's TransportSpec from the configuration.
#pragma once

#include "cli/config.hpp"
#include "delivery/deliverer.hpp"

#include <memory>

namespace smtpspool {

std::unique_ptr<Deliverer> make_deliverer(const TransportSpec& spec, const Config& config);

} // namespace smtpspool
