// client_tls: wires the SMTP client's ports to their adapters: the
// ClientTlsConnector to the TLS module (server/tls), and the credentials of
// --smtp-auth-file and the secret of --http-secret-file, read and checked here.
#pragma once

#include "cli/config.hpp"
#include "delivery/client_tls.hpp"
#include "delivery/smtp_security.hpp"

#include <memory>
#include <string>
#include <vector>

namespace smtpspool {

// A connector whose context (--smtp-tls-ca, --smtp-tls-cert, --smtp-tls-key)
// is loaded at the first handshake; a context that cannot be loaded makes
// every handshake fail with the reason.
std::shared_ptr<ClientTlsConnector> make_client_tls(const Config& config);

// Loads the context now: check-config's test of the TLS files.
Result<void> check_client_tls(const Config& config);

// The --smtp-auth-file: a regular file, readable by its owner only (no
// permission for group or others), of at most 1 MiB, parsed by
// parse_auth_file. The error names the file and the line, never a password.
Result<std::vector<AuthEntry>> load_auth_file(const std::string& path);
// The same for another option's file of the same form (--amqp-credentials-file):
// `option` names it in errors.
Result<std::vector<AuthEntry>> load_credentials_file(const std::string& path, const std::string& option);

// The --http-secret-file: checked as the --smtp-auth-file is, at most 4096
// octets, one line (a final LF or CRLF is not part of the secret), not empty.
Result<std::string> load_http_secret(const std::string& path);

// Whether a route goes by the http or https transport (which needs the secret).
bool has_http_route(const std::vector<Route>& routes);

// Entries whose host and port no smtp or smtps route reaches (check-config).
std::vector<std::string> unused_auth_entries(const std::vector<AuthEntry>& entries, const std::vector<Route>& routes);

} // namespace smtpspool
