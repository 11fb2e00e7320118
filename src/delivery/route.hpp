// route: delivery routes (--route DOMAIN=TRANSPORT, --smarthost) and the
// retry schedule, parsed and matched. Pure.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace smtpspool {

enum class TransportKind { smtp, mx, maildir, pipe, http, amqp };

struct TransportSpec {
    TransportKind kind = TransportKind::smtp;
    std::string host;        // smtp
    std::uint16_t port = 25; // smtp (465 for smtps)
    bool tls_on_connect = false; // smtps: TLS from the first octet (RFC 8314)
    std::string path;        // maildir, with %u and %d
    std::string command;     // pipe, run by /bin/sh -c
    std::string url;         // http: "http://..." or "https://..." (delivery/webhook)
    std::string user;        // amqp: the user the route names ("" = the credentials file's)
    std::string vhost = "/"; // amqp: the virtual host, percent-decoded
    std::string exchange;    // amqp: "" is the default exchange
    std::string routing_key; // amqp
    std::string text;        // as written: "smtp:mx.example:2525"
};

struct Route {
    std::string domain; // "*", or a domain that also covers its subdomains
    TransportSpec transport;
};

// "smtp:HOST[:PORT]" ("[::1]:25" for IPv6), "smtps:HOST[:PORT]" (implicit
// TLS, port 465 by default), "mx" (each domain's MX hosts,
// delivery/mx_deliverer), "maildir:PATH", "pipe:COMMAND", "http://..." and
// "https://..." (a webhook, delivery/webhook: the URL is the transport),
// "amqp://[USER@]HOST[:PORT][/VHOST][?exchange=E&routing_key=K]" (port 5672;
// the virtual host and the values percent-decoded, as in RabbitMQ's URIs;
// no password: it comes from --amqp-credentials-file).
std::optional<TransportSpec> parse_transport(std::string_view text, std::string& why);
// "HOST[:PORT]": a domain or an IP address (IPv6 in brackets, kept without
// them); port is left alone when none is given.
bool parse_host_port(std::string_view text, std::string& host, std::uint16_t& port, std::string& why);
// "DOMAIN=TRANSPORT".
std::optional<Route> parse_route(std::string_view text, std::string& why);
// "HOST[:PORT]" as --smarthost takes it: the route "*=smtp:HOST:PORT".
std::optional<Route> smarthost_route(std::string_view text, std::string& why);

// The most specific route for a domain: the longest matching domain, then "*".
const Route* find_route(const std::vector<Route>& routes, std::string_view domain);

// The domain a recipient is routed by: after the last '@', lower case;
// `fallback` (our hostname) for <postmaster> without a domain.
std::string recipient_domain(std::string_view address, std::string_view fallback);

// "30m,1h,2h": the waits after the 1st, 2nd, 3rd... failed attempt; the last repeats.
std::optional<std::vector<std::chrono::seconds>> parse_schedule(std::string_view text, std::string& why);
std::string format_schedule(const std::vector<std::chrono::seconds>& schedule);
std::chrono::seconds retry_delay(const std::vector<std::chrono::seconds>& schedule, std::uint64_t attempts);
// The wait before a message's next attempt: the schedule's, or longer when a
// next hop asked for more (HTTP Retry-After), but never past the message's
// expiry (until_expiry: the time it has left; none: already expired).
std::chrono::seconds next_wait(std::chrono::seconds scheduled, std::chrono::seconds asked,
                               std::optional<std::chrono::seconds> until_expiry);

} // namespace smtpspool
