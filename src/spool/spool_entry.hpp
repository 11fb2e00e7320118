// spool_entry: the queue as the tools and runq see it. QueueDir opens
// SPOOL/queue and SPOOL/tmp once; SpoolEntry is one message, SPOOL/queue/ID,
// held by a descriptor of its directory. Together with SpoolWriter (the
// commit protocol) they are the only code that opens, reads, rewrites or
// removes anything under queue/ and tmp/ (smtpspool-spool(5)).
//
// Nothing under the spool is reached through a symbolic link: queue/, tmp/
// and the message directory are opened O_DIRECTORY|O_NOFOLLOW and must be
// real directories owned by the spool's owner (the owner of queue/); files
// inside are opened with openat(2) and O_NOFOLLOW and must be regular files;
// removal is unlinkat(2) on the directory's descriptor. A planted link is an
// error, never followed. Every call goes through Fs, so tests can fail any
// step.
#pragma once

#include "base/fd.hpp"
#include "base/fs.hpp"
#include "base/result.hpp"
#include "model/envelope.hpp"

#include <cstddef>
#include <string>
#include <string_view>
#include <utility>
#include <sys/types.h>
#include <vector>

namespace smtpspool {

class SpoolEntry;

class QueueDir {
public:
    // Opens SPOOL/queue and SPOOL/tmp (the spool directory itself may be a
    // link the administrator made; nothing inside it may). errnum ENOENT when
    // the spool or its queue/ does not exist.
    static Result<QueueDir> open(const std::string& spool, Fs& fs);

    // Queue ids present in queue/, sorted (that is, by arrival).
    Result<std::vector<std::string>> list() const;
    // The message directory queue/ID. errnum ENOENT when it is not there;
    // ELOOP or ENOTDIR when it is a link or not a directory; EPERM when
    // another user owns it.
    Result<SpoolEntry> entry(std::string_view id) const;

    const std::string& spool() const { return m_spool; }
    uid_t owner() const { return m_owner; }

private:
    QueueDir(std::string spool, Fs& fs, Fd queue, Fd tmp, uid_t owner);
    std::string m_spool;
    Fs* m_fs;
    Fd m_queue;
    Fd m_tmp;
    uid_t m_owner;
    friend class SpoolEntry;
};

class SpoolEntry {
public:
    SpoolEntry(SpoolEntry&&) noexcept = default;
    SpoolEntry& operator=(SpoolEntry&&) noexcept = default;

    const std::string& id() const { return m_id; }
    // SPOOL/queue/ID/message.eml, for messages to a person; never opened by name.
    std::string message_path() const;

    // flock(2) LOCK_EX|LOCK_NB on the directory: true when this process now
    // holds it (until the entry is destroyed), false when another one does.
    Result<bool> try_lock();
    // The same lock, waiting while another process holds it (a runq that is
    // delivering the message): the queue tools that change an envelope.
    Result<void> lock();

    // envelope.json, read with the one bound (limits::k_max_envelope_size)
    // and validated, its id the directory's.
    Result<Envelope> load() const;

    // message.eml, open for reading from its start; a fresh descriptor per call.
    Result<Fd> open_message() const;
    // At most `max` octets of message.eml (more means "larger than max").
    Result<std::string> read_message(std::size_t max) const;

    // Replaces envelope.json atomically: envelope.json.new (a stale one is
    // unlinked first) created O_EXCL|O_NOFOLLOW, written, fsynced, renamed
    // over envelope.json, the directory fsynced. On failure envelope.json is
    // the old one, whole.
    Result<void> rewrite(const Envelope& envelope);

    // Takes the message out of the queue with one rename into tmp/, then
    // deletes its files through the directory's descriptor.
    Result<void> remove();

private:
    SpoolEntry(const QueueDir& queue, std::string id, Fd dir);
    Result<std::string> read_file(const char* name, std::size_t max) const;

    Fs* m_fs;
    int m_queue_fd; // QueueDir's, which outlives its entries
    int m_tmp_fd;
    std::string m_spool;
    std::string m_id;
    Fd m_dir;
    friend class QueueDir;
};

// The names in a directory but "." and "..", read through a duplicate of its
// descriptor (closedir(3) leaves the original open).
Result<std::vector<std::string>> directory_names(int dir, const std::string& shown);

// SPOOL/queue/ID through QueueDir and SpoolEntry, with the real file system:
// use(entry) or the error of opening it.
template <typename F>
auto with_entry(const std::string& spool, std::string_view id, F&& use) -> decltype(use(std::declval<SpoolEntry&>()))
{
    PosixFs fs;
    auto queue = QueueDir::open(spool, fs);
    auto entry = queue ? queue.value().entry(id) : Result<SpoolEntry>(queue.error());
    if (!entry) {
        return entry.error();
    }
    return use(entry.value());
}

// Deletes the files in the directory `name` under `parent` (no deeper: the
// spool makes none) and then the directory, never following a link; used for
// removed messages and stale tmp/ entries.
void remove_spool_dir(Fs& fs, int parent, const std::string& name);

} // namespace smtpspool
