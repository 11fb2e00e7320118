// spool: the spool directory on disk (smtpspool-spool(5)). SpoolWriter runs the
// commit protocol; spool_entry.hpp reads, rewrites and removes queued messages.
#pragma once

#include "base/clock.hpp"
#include "model/content.hpp"
#include "model/envelope.hpp"
#include "base/fs.hpp"
#include "base/result.hpp"
#include "smtp/spool_port.hpp"

#include <cstdint>
#include <string>
#include <vector>

namespace smtpspool {

// Creates SPOOL, SPOOL/tmp and SPOOL/queue when missing.
Result<void> ensure_spool_layout(const std::string& spool);

// Removes entries of SPOOL/tmp older than limits::k_stale_tmp_seconds.
// Returns the number removed.
std::size_t sweep_stale_tmp(const std::string& spool, TimePoint now);

class SpoolWriter final : public SpoolPort {
public:
    SpoolWriter(std::string spool, Fs& fs, const Clock& clock, long pid);
    ~SpoolWriter() override;
    SpoolWriter(const SpoolWriter&) = delete;
    SpoolWriter& operator=(const SpoolWriter&) = delete;

    Result<std::string> begin() override;
    Result<void> append(std::string_view bytes) override;
    Result<void> prepend(std::string_view bytes) override;
    Result<void> rewrite(const MessageEdits& edits) override;
    Result<void> read_message(const MessagePiece& piece) override;
    Result<void> commit(Envelope& envelope) override;
    // The open message's file with everything appended so far, for a data
    // hook to read.
    Result<std::string> readable_message();
    void abort() override;

private:
    Result<void> flush();
    Result<void> write_all(int fd, std::string_view bytes, const char* what);
    Result<void> fsync_dir(const std::string& path);
    Error failure(const char* what);
    std::string tmp_dir() const;

    std::string m_spool;
    Fs& m_fs;
    const Clock& m_clock;
    long m_pid;
    std::uint64_t m_sequence = 0;
    std::string m_id; // "" when no message is open
    int m_fd = -1;
    std::string m_buffer;
    std::uint64_t m_written = 0;
    ContentScanner m_content;                   // what append() stored
    Content m_prepended = Content::seven_bit;   // what prepend() stored
};

// --- shorthands over QueueDir and SpoolEntry (spool_entry.hpp) ---

// Queue ids present in SPOOL/queue, sorted (that is, by arrival).
Result<std::vector<std::string>> list_queue(const std::string& spool);

// SPOOL/queue/ID/message.eml, to name it; the spool layer opens it by descriptor.
std::string message_path(const std::string& spool, std::string_view id);

// Reads and validates SPOOL/queue/ID/envelope.json. errnum ENOENT when absent.
Result<Envelope> load_envelope(const std::string& spool, std::string_view id);

// Takes the message out of the queue atomically (one rename), then deletes it.
Result<void> remove_message(const std::string& spool, std::string_view id);

} // namespace smtpspool
