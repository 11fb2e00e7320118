// filter_port: what the session tells content filters (milters) and what
// they answer (smtpspool(8), MILTERS). The session stays pure: the milter
// conversations (sockets, the wire protocol, timeouts, a chain of several
// milters, the default action for one that fails) live behind this interface
// (server/milter*), wired by cli/serve.cpp; the tests' fakes implement it too.
//
// The session calls the port at the matching points of the session, in this
// order: connect once, helo for each HELO/EHLO, then per transaction
// mail, rcpt (each recipient the session itself would take), data, the
// message's octets as they are stored (message), end_of_message with a way to
// read the stored message back (a chain of milters sends each milter the
// message's content there, as the milters before it changed it); abort when a
// transaction ends without end_of_message (RSET, a new HELO, a refusal);
// quit once at the end. A verdict other than proceed ends the port's
// interest as the verdict says (accept: no more calls for this transaction,
// or for the session when given at connect or helo).
#pragma once

#include "base/result.hpp"
#include "model/peer.hpp"
#include "smtp/smtp_reply.hpp"

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace smtpspool {

struct FilterVerdict {
    enum class Action {
        proceed,    // go on; ask again at the next stage
        accept,     // take it; no more filtering (of this transaction, or of the session at connect/helo)
        reject,     // 5xx: `reply` if the milter named one, else the session's own
        tempfail,   // 4xx: likewise
        discard,    // say 250 but store nothing (at rcpt: this recipient only is dropped silently)
        quarantine, // end of message only: store it held (Envelope::held)
    };
    Action action = Action::proceed;
    // For reject and tempfail: the milter's own reply, already checked (code
    // 4xx or 5xx matching the action, no CR/LF, escaped); else nullopt.
    std::optional<Reply> reply;
    std::string reason; // why, for the log (quarantine's reason too); sanitized
};

// The changes milters asked for at the end of a message, in the order they
// asked. Applied to the stored message and envelope before the commit.
struct HeaderEdit {
    enum class Kind {
        add,    // append `name: value` at the end of the header section
        insert, // put it before the `index`-th field (0: first), or at the end
        change, // replace the value of the `index`-th field named `name` (1: first); empty value: delete it
    };
    Kind kind = Kind::add;
    std::string name;
    std::string value; // as the milter sent it: may be folded with "\n" or "\r\n" + white space
    std::uint32_t index = 0;
};

struct MessageEdits {
    std::vector<HeaderEdit> headers;
    std::optional<std::string> body;             // a new body (CRLF line ends), if replaced
    std::vector<std::string> add_recipients;     // addresses without <>
    std::vector<std::string> delete_recipients;  // addresses without <>
    std::optional<std::string> sender;           // a new sender, without <> ("" for the null sender)
    bool empty() const
    {
        return headers.empty() && !body && add_recipients.empty() && delete_recipients.empty() && !sender;
    }
};

struct EndOfMessageVerdict {
    FilterVerdict verdict;
    MessageEdits edits; // only with proceed, accept or quarantine
};

// The session's facts the milters are told (Postfix's macros among them).
struct FilterConnect {
    const Peer& peer;
    std::string_view hostname; // ours: macro j and {daemon_name}
};

struct FilterMessageFacts {
    std::string_view id;          // the queue id, known from DATA on (macro i)
    std::string_view auth_user;   // {auth_authen}; "" when none
    std::string_view auth_type;   // {auth_type}; "" when none
    std::string_view tls_version; // {tls_version}; "" when not encrypted
    std::string_view cipher;      // {cipher}
};

// Reads the stored message (as `message` was given it) from its start, in
// pieces of any size, to `piece`; an error when it cannot be read. Pure: the
// session passes one that asks its SpoolPort (read_message).
using MessagePiece = std::function<void(std::string_view)>;
using MessageSource = std::function<Result<void>(const MessagePiece& piece)>;

class FilterPort {
public:
    virtual ~FilterPort() = default;

    virtual FilterVerdict connect(const FilterConnect& facts) = 0;
    virtual FilterVerdict helo(std::string_view name) = 0;
    // sender without <> ("" for <>); the ESMTP parameters as the client gave them.
    virtual FilterVerdict mail(std::string_view sender, const std::vector<std::string>& parameters,
                               const FilterMessageFacts& facts) = 0;
    virtual FilterVerdict rcpt(std::string_view recipient, const std::vector<std::string>& parameters) = 0;
    virtual FilterVerdict data(const FilterMessageFacts& facts) = 0;
    // The message's octets exactly as they are stored (our Received: field
    // first; Authentication-Results: fields that claim our authserv-id
    // already taken out), in pieces of any size, CRLF line ends. A verdict a
    // milter gives while they stream is kept and returned by end_of_message.
    // (MilterChain ignores them: it reads the message from `source` at the
    // end, milter by milter.)
    virtual void message(std::string_view octets) = 0;
    // `source` reads the stored message, those same octets, as often as asked.
    virtual EndOfMessageVerdict end_of_message(const MessageSource& source) = 0;
    virtual void abort() = 0;
    virtual void quit() = 0;
};

} // namespace smtpspool
