// serve: glue for `smtpspool serve`: environment -> SessionConfig, spool,
// session and transport; the session's end -> exit status.
#pragma once

#include "cli/config.hpp"

namespace smtpspool {

int run_serve(Config config);

// A configuration error seen by `serve`: syslog, plus a 421 for a network
// client or a message on stderr for a person.
int refuse_service(const std::string& message, int status);

} // namespace smtpspool
