// smtp_security: the pure parts of the SMTP client's TLS and AUTH: the TLS
// levels (--smtp-tls, --smtp-tls-policy), the file of credentials
// (--smtp-auth-file), the choice of an AUTH mechanism from the EHLO reply, and
// the client's side of the PLAIN and LOGIN dialogues (RFC 4954, RFC 4616).
// No descriptors.
#pragma once

#include "base/result.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace smtpspool {

// How much TLS a next hop gets, in Postfix's words:
// none: never STARTTLS; may: STARTTLS when the server offers it, the
// certificate not checked (a handshake that fails is retried in clear text);
// encrypt: TLS or defer; verify: TLS with the certificate chain and the host
// name checked, or defer.
enum class TlsLevel { none, may, encrypt, verify };

std::string_view tls_level_name(TlsLevel level);
std::optional<TlsLevel> tls_level_from_name(std::string_view name);

// "HOST=LEVEL" as --smtp-tls-policy takes it (HOST a name or an address,
// IPv6 in brackets or not); the host is kept in lower case without brackets.
struct TlsPolicyEntry {
    std::string host;
    TlsLevel level = TlsLevel::may;
};
std::optional<TlsPolicyEntry> parse_tls_policy_entry(std::string_view text, std::string& why);

// The level for a next-hop host: its --smtp-tls-policy entry (host names
// compared without regard to case, addresses with or without brackets),
// else the global level.
TlsLevel tls_level_for(std::string_view host, TlsLevel global, const std::vector<TlsPolicyEntry>& policy);

// One line of the --smtp-auth-file: "HOST[:PORT] USER:PASSWORD". The user
// ends at the first ':'; the password is the rest of the line (colons and
// spaces included).
struct AuthEntry {
    std::string host;        // lower case, no brackets
    std::uint16_t port = 0;  // 0: any port
    std::string user;
    std::string password;
    std::size_t line = 0;    // where it is in the file, for messages
};

// The file's text: blank lines and lines starting with '#' are skipped; any
// other malformed line is an error naming its number (never its content: it
// may hold a password). A host and port given twice is an error.
Result<std::vector<AuthEntry>> parse_auth_file(std::string_view text);

// The credentials for a next hop: the entry for host and port, else the
// entry for host without a port; nullptr when none.
const AuthEntry* find_credentials(const std::vector<AuthEntry>& entries, std::string_view host, std::uint16_t port);

enum class AuthMechanism { none, plain, login };

std::string_view auth_mechanism_name(AuthMechanism m);

// The mechanisms of the EHLO reply's AUTH line(s) (also "AUTH=..."), upper case.
// `lines`: the reply's lines after the first.
std::vector<std::string> offered_auth_mechanisms(const std::vector<std::string>& ehlo_lines);

// PLAIN when offered (one round trip), else LOGIN, else none.
AuthMechanism choose_auth_mechanism(const std::vector<std::string>& offered);

// "AUTH PLAIN <base64 of NUL user NUL password>\r\n" (RFC 4616 with an
// initial response, RFC 4954 §4).
std::string auth_plain_command(std::string_view user, std::string_view password);

// A line of base64 and CRLF, for LOGIN's answers.
std::string auth_login_answer(std::string_view text);

// True for an address (name not looked up) in 127.0.0.0/8 or ::1, or an
// IPv4-mapped loopback address.
bool is_loopback_address(std::string_view address);

} // namespace smtpspool
