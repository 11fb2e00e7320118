// spool_port: what the session needs from a spool. The session never touches
// files; SpoolWriter (disk) and the tests' MemorySpool implement this.
#pragma once

#include "model/envelope.hpp"
#include "smtp/filter_port.hpp"
#include "base/result.hpp"

#include <string>
#include <string_view>

namespace smtpspool {

class SpoolPort {
public:
    virtual ~SpoolPort() = default;
    // Starts a message; returns its queue id. At most one message is open.
    virtual Result<std::string> begin() = 0;
    // Adds message octets (the Received: header first, then the data).
    virtual Result<void> append(std::string_view bytes) = 0;
    // Puts bytes before everything appended so far (a data hook's header
    // lines). Rare: it may copy the message.
    virtual Result<void> prepend(std::string_view bytes) = 0;
    // Applies content filters' header and body edits to the open message
    // (smtp/message_edit): what is committed is the edited message. Each
    // edit has been checked (header_edit_problem, body_problem). On an error
    // the message is aborted: nothing of it remains.
    virtual Result<void> rewrite(const MessageEdits& edits) = 0;
    // Reads the open message as it stands (what was appended, prepended and
    // rewritten) from its start, in pieces of any size, to `piece`.
    virtual Result<void> read_message(const MessagePiece& piece) = 0;
    // Makes the message durable and visible; sets envelope.id and envelope.size.
    // Only after success may the client hear 250.
    virtual Result<void> commit(Envelope& envelope) = 0;
    // Discards the open message, if any; nothing of it remains.
    virtual void abort() = 0;
};

// Disk full and its kin are 452 4.3.1; a file-size limit (EFBIG) is 552
// 5.3.4; every other local failure is 451 4.3.0.
bool is_storage_full(const Error& e);
bool is_file_too_big(const Error& e);
// A commit refused because the envelope, with the room runq needs to record
// its attempts, would pass limits::k_max_envelope_size: 552 5.3.4.
bool is_envelope_too_large(const Error& e);

} // namespace smtpspool
