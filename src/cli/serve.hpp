// serve: glue for `smtpspool serve`: environment -> SessionConfig, spool,
// session and transport; the session's end -> exit status.
#pragma once

#include "cli/config.hpp"

namespace smtpspool {

int run_serve(Config config);

// A configuration error seen by `serve`: syslog, plus a 421 for a network
// client or a message on stderr for a person.
int refuse_service(const std::string& message, int status);

// For main's catch-all, in serve mode: 421 4.3.0 to the client when fd 1
// still carries its plain stream between replies (nothing written yet, or the
// session between two batches of replies without TLS); nothing otherwise.
void say_local_error();

} // namespace smtpspool
