// envelope: what the session learns of a message besides its octets, and what
// runq records of its delivery; its JSON form is spool/envelope_json.
#pragma once

#include "base/result.hpp"
#include "model/content.hpp"

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace smtpspool {

inline constexpr int k_envelope_version = 1;

// MAIL's BODY parameter (RFC 6152, RFC 3030 §3).
enum class Body { seven_bit, eight_bit_mime, binary_mime };

// "7BIT", "8BITMIME", "BINARYMIME": the BODY= value, as the envelope keeps it.
std::string_view body_name(Body body);
std::optional<Body> body_from_name(std::string_view name);

// Where a recipient stands: runq tries the pending ones.
enum class RecipientStatus { pending, delivered, failed };

// "pending", "delivered", "failed", as the envelope keeps it.
std::string_view status_name(RecipientStatus status);
std::optional<RecipientStatus> status_from_name(std::string_view name);

// The TLS of a recipient's last delivery attempt over SMTP: the protocol
// version, the cipher, and whether the server's certificate chain led to a
// trusted certificate and named the host (each text at most
// k_max_delivery_tls_text octets of printable ASCII).
struct DeliveryTls {
    std::string version; // "TLSv1.3"
    std::string cipher;  // "TLS_AES_256_GCM_SHA384"
    bool verified = false;
    bool operator==(const DeliveryTls&) const = default;
};
inline constexpr std::size_t k_max_delivery_tls_text = 64;

struct Recipient {
    std::string address;
    RecipientStatus status = RecipientStatus::pending;
    std::uint64_t attempts = 0;
    std::optional<std::string> last_error;
    // The TLS of the last attempt, when it went over TLS (runq writes it).
    std::optional<DeliveryTls> last_tls = std::nullopt;
    // The next hop tried last ("mx.example[192.0.2.1]:25"), by the smtp and
    // mx transports (written only when set; older envelopes have none).
    std::optional<std::string> last_hop = std::nullopt;
    // The recipient the client named, when an alias replaced it by this one
    // (written only then).
    std::optional<std::string> original;
    // RFC 3461 §4.1-4.2, as the client gave them (written only then): NOTIFY's
    // keywords, upper case; ORCPT as "addr-type;address", decoded from xtext.
    std::optional<std::vector<std::string>> notify;
    std::optional<std::string> orcpt;
};

// The TLS session a message came over (STARTTLS or --tls-on-connect).
struct TlsInfo {
    std::string version; // "TLSv1.3"
    std::string cipher;  // "TLS_AES_256_GCM_SHA384"
    bool operator==(const TlsInfo&) const = default;
};

struct ClientInfo {
    std::optional<std::string> address; // null for a local client
    std::optional<std::uint64_t> port;
    std::optional<std::string> hostname;
    std::optional<std::string> ident;
    std::string helo;
    std::string protocol = "ESMTP"; // SMTP | ESMTP
    std::optional<TlsInfo> tls;     // "tls" only when the session was encrypted
    std::optional<std::string> auth; // "auth": the user who authenticated (AUTH), when one did
};

struct Envelope {
    std::string id;
    std::string received_at; // RFC 3339, UTC
    std::string hostname;
    ClientInfo client;
    std::string mail_from;     // "" for <>
    Body body = Body::seven_bit;
    bool smtputf8 = false;
    // RFC 3461 §4.3-4.4 (written only when given): RET ("FULL" | "HDRS") and
    // ENVID, decoded from xtext (printable ASCII).
    std::optional<std::string> dsn_ret;
    std::optional<std::string> dsn_envid;
    // The client could not relay, so the sender address is anyone's: notices
    // return at most limits::k_limited_header_section of the header section
    // (never the whole message), and NOTIFY and RET were cut down to what is
    // honoured when the message was accepted (written only when true).
    bool dsn_limited = false;
    std::uint64_t size = 0; // octets of message.eml
    // What message.eml's octets are (the spool writer looks at every octet it
    // stores); absent in envelopes written before it was recorded: unknown,
    // and runq reads the message to find out when it matters.
    std::optional<Content> content;
    std::vector<Recipient> recipients;
    // Delivery state, kept by runq (optional when reading: absent = never tried).
    std::uint64_t attempts = 0;
    std::optional<std::string> last_attempt; // RFC 3339, UTC
    std::optional<std::string> next_attempt; // RFC 3339, UTC; null = due now
    // On hold: runq leaves the message alone, due or not, until it is
    // released (smtpspool hold, release). Written only when true.
    bool held = false;
    // When runq queued the one "delayed" notice about this message (runq
    // --delay-warning), RFC 3339, UTC (written only when set).
    std::optional<std::string> delay_notified;
};

// A queue id: [A-Za-z0-9_-], 1 to 128 octets, so a single safe path component.
bool is_valid_queue_id(std::string_view id);

// A recipient's last_hop: 1 to limits::k_max_last_hop octets of ASCII
// letters, digits, '.', '-', '_', ':', '[' and ']' (a host name, an address,
// a port), which JSON writes as they are.
bool is_valid_last_hop(std::string_view hop);


// The recipients that `addresses` (what the recipient `named` stands for,
// after aliases) add to `have`: those not in it yet, each with `original`
// set when it is not `named` itself.
std::vector<Recipient> new_recipients(const std::vector<Recipient>& have, std::vector<std::string> addresses,
                                      std::string_view named);




} // namespace smtpspool
