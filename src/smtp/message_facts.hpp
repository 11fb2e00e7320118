// message_facts: what the session knows of a message when it stores it (our
// name, the client, its greeting, TLS, AUTH, the transaction), and the two
// things built from that alone: the Received: header (RFC 5321 §4.4) and the
// envelope. Pure functions.
#pragma once

#include "base/clock.hpp"
#include "model/envelope.hpp"
#include "model/peer.hpp"
#include "smtp/smtp_command.hpp"

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace smtpspool {

struct MessageFacts {
    std::string_view hostname; // ours
    const Peer& peer;
    const std::optional<TlsInfo>& tls;
    std::string_view helo;  // the HELO/EHLO argument
    bool esmtp;             // EHLO, not HELO
    const std::optional<std::string>& auth_user;
    const MailCommand& mail;
    const std::vector<std::string>& recipients; // as the client named them
    const std::vector<Recipient>& targets;      // what they stand for (aliases)
    TimePoint started;                          // when the data began
    bool add_envelope_to;                       // X-Envelope-To: per recipient
    bool may_relay;                             // or authenticated: its DSN requests are honoured
};

// The HELO/EHLO argument as the EHLO reply and Received: show it: an address
// literal (RFC 5321 §4.1.3: [IPv4] or [IPv6:...], checked) as it is, any
// other text through text::header_word.
std::string helo_text(std::string_view helo);

// Received: (and X-Envelope-To:) lines, each ending in CRLF, for queue id `id`.
std::string received_header(const MessageFacts& facts, std::string_view id);

// The envelope, without its id and size (the spool sets those at commit).
// From a client that may not relay, the DSN requests as they will be
// honoured: RET=HDRS for RET=FULL, NOTIFY cut down to FAILURE (limited_notify),
// and dsn_limited set.
Envelope make_envelope(const MessageFacts& facts);

} // namespace smtpspool
