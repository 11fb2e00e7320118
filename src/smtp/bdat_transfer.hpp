// bdat_transfer: the BDAT side of a session (RFC 3030 §2): the chunk whose
// octets are being read (its announced size, the octets still to come, LAST,
// and the refusal to send once they are all in), and the message that the
// accepted chunks build. It counts octets and chunks; the session does the
// spool, the checks and the replies.
#pragma once

#include "smtp/smtp_data.hpp"
#include "smtp/smtp_reply.hpp"

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace smtpspool {

class BdatTransfer {
public:
    // A BDAT command's octets follow its line: read into the message, or,
    // with a refusal, read and thrown away (RFC 3030 §2), then refused.
    void announce(std::uint64_t size, bool last, std::optional<Reply> refusal);
    // Octets of the announced chunk are still to come.
    bool reading() const { return m_announced.has_value(); }
    // The announced chunk's octets go into the message (it was not refused).
    bool accepted() const { return m_announced && !m_announced->refusal; }
    // Takes the announced chunk's octets among `in` and returns how many; an
    // accepted chunk's pass through the message's reader into `out`.
    std::size_t take(std::string_view in, std::string& out);
    // Every octet of the announced chunk is in.
    bool complete() const { return m_announced && m_announced->remaining == 0; }

    struct Chunk {
        std::uint64_t size = 0;
        bool last = false;
        std::optional<Reply> refusal;
    };
    // The announced chunk, once complete(): counted when accepted, and the
    // reader told that the message ends after LAST.
    Chunk end_chunk();

    // The message, open from its first accepted chunk to the reply to the
    // last one (or until it is abandoned).
    void open_message(bool binary, std::size_t max_size, std::size_t max_line = 0);
    bool message_open() const { return m_reader.has_value(); }
    const ChunkReader& reader() const { return *m_reader; }
    std::size_t accepted_chunks() const { return m_accepted_chunks; }
    void close_message();

    // Forget both (the session ends).
    void clear();

private:
    struct Announced {
        std::uint64_t size = 0;
        std::uint64_t remaining = 0;
        bool last = false;
        std::optional<Reply> refusal;
    };
    std::optional<Announced> m_announced;
    std::optional<ChunkReader> m_reader;
    std::size_t m_accepted_chunks = 0;
};

} // namespace smtpspool
