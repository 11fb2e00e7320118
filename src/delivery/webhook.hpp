// webhook: the pure parts of the http and https transports (smtpspool-runq(8),
// "The http and https transports"): the URL, the request's body framing, its
// idempotency key and signature, and what the answer means. The requests
// themselves are webhook_deliverer (libcurl).
#pragma once

#include "delivery/deliverer.hpp"
#include "delivery/idempotency.hpp"
#include "model/envelope.hpp"

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <ctime>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace smtpspool {

// An http: or https: route's URL, "http://HOST[:PORT][/PATH][?QUERY]".
struct WebhookUrl {
    bool https = false;
    std::string host;        // without brackets for IPv6
    std::uint16_t port = 80; // 443 for https
    std::string target;      // "/PATH?QUERY", "/" when none was given
};

// Parses the whole URL. Refused: other schemes, credentials (user@ or
// user:password@: the requests are authenticated by their signature, and the
// URL is printed in logs, mailq and check-config), a fragment, octets outside
// printable ASCII or space, and a host that is neither a name nor an address.
std::optional<WebhookUrl> parse_webhook_url(std::string_view text, std::string& why);

// The envelope part: the envelope of smtpspool-spool(5) with only the
// recipients the request is for (indices into envelope.recipients).
Envelope envelope_for(const Envelope& envelope, const std::vector<std::size_t>& recipients);

// The Idempotency-Key of a request: idempotency_key (delivery/idempotency),
// the same key as the amqp transport's message id.

// The multipart/form-data body (RFC 7578) around the message's octets: head,
// then the octets of message.eml, then tail.
struct MultipartFrame {
    std::string boundary;
    std::string head; // the envelope part whole, and the message part's header
    std::string tail; // the end of the message part and the closing delimiter
    std::string content_type() const; // the request's Content-Type value
};
// boundary: 1 to 70 characters of RFC 2046's bchars without space.
MultipartFrame multipart_frame(std::string_view envelope_json, std::string_view boundary);

// What the signature covers: "TIMESTAMP." and then the body, octet for octet.
std::string signature_prefix(std::time_t timestamp);
// The Smtpspool-Signature value: "sha256=" and the hex HMAC-SHA256 of
// signature_prefix(timestamp) + body under the secret.
std::string signature_value(std::string_view hmac_hex);

// The answer's status code: 2xx delivered; 408, 429 and 5xx temporary;
// every other 4xx permanent; anything else (1xx, 3xx: redirects are not
// followed) temporary.
Outcome classify_status(long status);

// Retry-After (RFC 9110 section 10.2.3): delta-seconds, or an HTTP-date in the
// preferred IMF-fixdate form ("Sun, 06 Nov 1994 08:49:37 GMT"), as a wait from
// now (0 for a date in the past). nullopt when malformed.
std::optional<std::chrono::seconds> parse_retry_after(std::string_view value, std::time_t now);

// The detail of an answer: "HTTP 400 Bad Request: " and the first octets of
// the response body, on one line (controls as spaces, runs of space as one),
// for the envelope's last_error, the log and the bounce.
std::string http_detail(long status, std::string_view reason, std::string_view body);
// The most of a response body kept for the detail.
inline constexpr std::size_t k_webhook_body_kept = 200;

} // namespace smtpspool
