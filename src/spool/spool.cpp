// spool: the commit protocol (tmp/ID -> fsync files and directory -> one rename
// into queue/ -> fsync queue/); the queue is read through spool_entry.
#include "spool/spool.hpp"
#include "spool/envelope_json.hpp"
#include "spool/spool_entry.hpp"

#include "base/fd.hpp"

#include "base/limits.hpp"
#include "smtp/message_edit.hpp"

#include <tuple>
#include <cerrno>
#include <cstring>
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <algorithm>

namespace smtpspool {
namespace {

// What runq may add to an envelope of this many recipients.
std::size_t envelope_room(std::size_t recipients)
{
    return recipients * limits::k_envelope_growth_per_recipient + limits::k_envelope_growth_fixed;
}

// Deletes SPOOL/tmp/NAME or SPOOL/queue/NAME and the files in it, never
// following a link (remove_spool_dir).
void remove_tree(const std::string& parent, const std::string& name)
{
    PosixFs fs;
    Fd dir(fs.open(parent, O_RDONLY | O_DIRECTORY, 0));
    if (dir) {
        remove_spool_dir(fs, dir.get(), name);
    }
}

Result<void> make_dir(const std::string& path)
{
    if (::mkdir(path.c_str(), 0750) == 0 || errno == EEXIST) {
        // lstat: a link in place of tmp/ or queue/ is refused, not followed.
        struct stat st {};
        if (::lstat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) {
            return {};
        }
        errno = ENOTDIR;
    }
    return sys_error("cannot create " + path);
}

} // namespace

bool is_storage_full(const Error& e) { return e.errnum == ENOSPC || e.errnum == EDQUOT; }
bool is_file_too_big(const Error& e) { return e.errnum == EFBIG; }
bool is_envelope_too_large(const Error& e) { return e.errnum == E2BIG; }

Result<void> ensure_spool_layout(const std::string& spool)
{
    // Like mkdir -p for the spool itself; tmp/ and queue/ inside it.
    for (std::size_t slash = spool.find('/', 1); slash != std::string::npos; slash = spool.find('/', slash + 1)) {
        std::string parent = spool.substr(0, slash);
        if (::mkdir(parent.c_str(), 0755) != 0 && errno != EEXIST) {
            break; // make_dir below reports the failure
        }
    }
    for (const std::string& dir : {spool, spool + "/tmp", spool + "/queue"}) {
        if (auto r = make_dir(dir); !r) {
            return r;
        }
    }
    return {};
}

std::size_t sweep_stale_tmp(const std::string& spool, TimePoint now)
{
    PosixFs fs;
    Fd root(fs.open(spool, O_RDONLY | O_DIRECTORY, 0));
    Fd tmp(root ? fs.openat(root.get(), "tmp", O_RDONLY | O_DIRECTORY | O_NOFOLLOW, 0) : -1);
    if (!tmp) {
        return 0;
    }
    auto names = directory_names(tmp.get(), spool + "/tmp");
    if (!names) {
        return 0;
    }
    auto cutoff = std::chrono::system_clock::to_time_t(now) - limits::k_stale_tmp_seconds;
    std::vector<std::string> stale;
    for (const std::string& name : names.value()) {
        struct stat st {};
        if (::fstatat(tmp.get(), name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 && st.st_mtime < cutoff) {
            stale.push_back(name);
        }
    }
    for (const std::string& name : stale) {
        if (fs.unlinkat(tmp.get(), name, 0) != 0) {
            remove_spool_dir(fs, tmp.get(), name);
        }
    }
    return stale.size();
}

SpoolWriter::SpoolWriter(std::string spool, Fs& fs, const Clock& clock, long pid)
    : m_spool(std::move(spool)), m_fs(fs), m_clock(clock), m_pid(pid)
{
}

SpoolWriter::~SpoolWriter() { abort(); }

std::string SpoolWriter::tmp_dir() const { return m_spool + "/tmp/" + m_id; }

Error SpoolWriter::failure(const char* what)
{
    Error e = sys_error(std::string(what) + " " + tmp_dir());
    abort();
    return e;
}

Result<std::string> SpoolWriter::begin()
{
    abort();
    std::string stamp = id_timestamp(m_clock.now());
    // The id is unique across processes: time to the microsecond, our pid, and
    // a per-process sequence; mkdir(2) is exclusive, so a clash moves on.
    for (int attempt = 0; attempt < 100; ++attempt) {
        std::string id = stamp + "-" + std::to_string(m_pid) + "-" + std::to_string(m_sequence++);
        std::string dir = m_spool + "/tmp/" + id;
        struct stat st {};
        if (::lstat((m_spool + "/queue/" + id).c_str(), &st) == 0) {
            continue; // taken by a process that had our pid before, with the clock set back
        }
        if (m_fs.mkdir(dir, 0700) == 0) {
            m_id = id;
            break;
        }
        if (errno != EEXIST) {
            return sys_error("cannot create " + dir);
        }
    }
    if (m_id.empty()) {
        return Error{EEXIST, "cannot find a free queue id"};
    }
    m_fd = m_fs.open(tmp_dir() + "/message.eml", O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, 0600);
    if (m_fd < 0) {
        return failure("cannot create message.eml in");
    }
    m_buffer.clear();
    m_written = 0;
    m_content = ContentScanner();
    m_prepended = Content::seven_bit;
    return m_id;
}

Result<void> SpoolWriter::write_all(int fd, std::string_view bytes, const char* what)
{
    while (!bytes.empty()) {
        ssize_t n = m_fs.write(fd, bytes.data(), bytes.size());
        if (n <= 0) {
            if (n == 0) {
                errno = EIO;
            }
            return failure(what);
        }
        bytes.remove_prefix(static_cast<std::size_t>(n));
    }
    return {};
}

Result<void> SpoolWriter::flush()
{
    auto r = write_all(m_fd, m_buffer, "cannot write message.eml in");
    m_written += m_buffer.size();
    m_buffer.clear();
    return r;
}

Result<void> SpoolWriter::append(std::string_view bytes)
{
    if (m_id.empty()) {
        return Error{EBADF, "no message is open"};
    }
    m_content.feed(bytes);
    if (m_buffer.size() + bytes.size() > limits::k_write_buffer) {
        if (auto r = flush(); !r) {
            return r;
        }
        if (bytes.size() >= limits::k_write_buffer) {
            auto r = write_all(m_fd, bytes, "cannot write message.eml in");
            m_written += bytes.size();
            return r;
        }
    }
    m_buffer.append(bytes);
    return {};
}

Result<void> SpoolWriter::fsync_dir(const std::string& path)
{
    int fd = m_fs.open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW, 0);
    if (fd < 0) {
        return sys_error("cannot open " + path);
    }
    int r = m_fs.fsync(fd);
    int saved = errno;
    m_fs.close(fd);
    if (r != 0) {
        errno = saved;
        return sys_error("cannot fsync " + path);
    }
    return {};
}

Result<std::string> SpoolWriter::readable_message()
{
    if (m_id.empty()) {
        return Error{EBADF, "no message is open"};
    }
    if (auto r = flush(); !r) {
        return r.error();
    }
    return tmp_dir() + "/message.eml";
}

Result<void> SpoolWriter::prepend(std::string_view bytes)
{
    if (m_id.empty()) {
        return Error{EBADF, "no message is open"};
    }
    if (auto r = flush(); !r) {
        return r;
    }
    // A new file with the bytes, then the message so far; it replaces the old
    // one inside tmp/ID, which nobody else reads, so a crash leaves only tmp/.
    std::string old_path = tmp_dir() + "/message.eml";
    std::string new_path = tmp_dir() + "/message.new";
    int in = ::open(old_path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (in < 0) {
        return failure("cannot read message.eml in");
    }
    int out = m_fs.open(new_path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, 0600);
    if (out < 0) {
        ::close(in);
        return failure("cannot create message.new in");
    }
    m_fs.close(m_fd);
    m_fd = out; // so that failure() closes it
    auto r = write_all(out, bytes, "cannot write message.new in");
    std::string buffer(limits::k_write_buffer, '\0');
    while (r) {
        ssize_t n = ::read(in, buffer.data(), buffer.size());
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            r = failure("cannot read message.eml in");
        }
        if (n <= 0) {
            break;
        }
        r = write_all(out, std::string_view(buffer.data(), static_cast<std::size_t>(n)), "cannot write message.new in");
    }
    ::close(in);
    if (!r) {
        return r;
    }
    if (::rename(new_path.c_str(), old_path.c_str()) != 0) {
        return failure("cannot rename message.new in");
    }
    m_written += bytes.size();
    ContentScanner scanner;
    scanner.feed(bytes);
    m_prepended = worse(m_prepended, scanner.result());
    return {};
}

// The open message read back from tmp/ID/message.eml (after a flush of
// what is still buffered), one buffer at a time.
Result<void> SpoolWriter::read_message(const MessagePiece& piece)
{
    if (m_id.empty()) {
        return Error{EBADF, "no message is open"};
    }
    if (auto r = flush(); !r) {
        return r;
    }
    Fd in(m_fs.open(tmp_dir() + "/message.eml", O_RDONLY | O_NOFOLLOW, 0));
    if (!in) {
        return failure("cannot read message.eml in");
    }
    std::string buffer(limits::k_write_buffer, '\0');
    while (true) {
        ssize_t n = m_fs.read(in.get(), buffer.data(), buffer.size());
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            return failure("cannot read message.eml in");
        }
        if (n == 0) {
            return {};
        }
        piece(std::string_view(buffer.data(), static_cast<std::size_t>(n)));
    }
}

// The edited message goes to tmp/ID/message.new as the old one is read back,
// then replaces it (a rename inside tmp/ID, which nobody else reads; commit
// fsyncs the new file and the directory as it would the old). The content
// class and the size are those of the new octets.
Result<void> SpoolWriter::rewrite(const MessageEdits& edits)
{
    if (m_id.empty()) {
        return Error{EBADF, "no message is open"};
    }
    if (auto r = flush(); !r) {
        return r;
    }
    const std::string old_path = tmp_dir() + "/message.eml";
    const std::string new_path = tmp_dir() + "/message.new";
    Fd in(m_fs.open(old_path, O_RDONLY | O_NOFOLLOW, 0));
    if (!in) {
        return failure("cannot read message.eml in");
    }
    int out = m_fs.open(new_path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, 0600);
    if (out < 0) {
        return failure("cannot create message.new in");
    }
    const int old_fd = std::exchange(m_fd, out); // so that failure() closes the new one
    if (m_fs.close(old_fd) != 0) {
        return failure("cannot close message.eml in");
    }
    ContentScanner content;
    std::uint64_t written = 0;
    std::string pending; // gathered to one write(2) per k_write_buffer octets
    auto write_pending = [&]() -> Result<void> {
        auto r = write_all(out, pending, "cannot write message.new in");
        pending.clear();
        return r;
    };
    MessageRewriter rewriter(edits, [&](std::string_view octets) -> Result<void> {
        content.feed(octets);
        written += octets.size();
        pending.append(octets);
        return pending.size() >= limits::k_write_buffer ? write_pending() : Result<void>();
    });
    std::string buffer(limits::k_write_buffer, '\0');
    while (true) {
        ssize_t n = m_fs.read(in.get(), buffer.data(), buffer.size());
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            return failure("cannot read message.eml in");
        }
        if (n == 0) {
            break;
        }
        if (auto r = rewriter.feed(std::string_view(buffer.data(), static_cast<std::size_t>(n))); !r) {
            abort(); // an error of the sink has aborted already
            return r;
        }
    }
    if (auto r = rewriter.finish(); !r) {
        abort();
        return r;
    }
    if (auto r = write_pending(); !r) {
        return r;
    }
    if (m_fs.renameat(AT_FDCWD, new_path, AT_FDCWD, old_path) != 0) {
        return failure("cannot rename message.new in");
    }
    m_written = written;
    m_content = std::move(content);
    m_prepended = Content::seven_bit;
    return {};
}

Result<void> SpoolWriter::commit(Envelope& envelope)
{
    if (m_id.empty()) {
        return Error{EBADF, "no message is open"};
    }
    if (auto r = flush(); !r) {
        return r;
    }
    if (m_fs.fsync(m_fd) != 0) {
        return failure("cannot fsync message.eml in");
    }
    int fd = m_fd;
    m_fd = -1;
    if (m_fs.close(fd) != 0) {
        return failure("cannot close message.eml in");
    }
    envelope.id = m_id;
    envelope.size = m_written;
    envelope.content = worse(m_prepended, m_content.result());
    std::string json = envelope_to_json(envelope);
    // What runq may add to it must still fit in what runq reads
    // (limits::k_envelope_growth_per_recipient says why this is enough).
    if (json.size() > limits::k_max_envelope_size ||
        envelope_room(envelope.recipients.size()) > limits::k_max_envelope_size - json.size()) {
        abort();
        return Error{E2BIG, "envelope.json of " + std::to_string(json.size()) + " octets for " +
                                std::to_string(envelope.recipients.size()) +
                                " recipients leaves runq too little room under " +
                                std::to_string(limits::k_max_envelope_size) + " octets"};
    }
    int efd = m_fs.open(tmp_dir() + "/envelope.json", O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, 0600);
    if (efd < 0) {
        return failure("cannot create envelope.json in");
    }
    m_fd = efd; // so that failure() closes it
    if (auto r = write_all(efd, json, "cannot write envelope.json in"); !r) {
        return r;
    }
    if (m_fs.fsync(efd) != 0) {
        return failure("cannot fsync envelope.json in");
    }
    m_fd = -1;
    if (m_fs.close(efd) != 0) {
        return failure("cannot close envelope.json in");
    }
    if (auto r = fsync_dir(tmp_dir()); !r) {
        abort();
        return r;
    }
    std::string queued = m_spool + "/queue/" + m_id;
    if (m_fs.rename_noreplace(tmp_dir(), queued) != 0) {
        return failure("cannot move into the queue:");
    }
    // The rename is the commit point; it is durable once queue/ is synced.
    if (auto r = fsync_dir(m_spool + "/queue"); !r) {
        // Not known to be durable: take it back out rather than say 250.
        if (m_fs.rename_noreplace(queued, tmp_dir()) != 0) {
            remove_tree(m_spool + "/queue", m_id);
        }
        abort();
        return r;
    }
    m_id.clear();
    return {};
}

void SpoolWriter::abort()
{
    if (m_fd >= 0) {
        m_fs.close(m_fd);
        m_fd = -1;
    }
    if (!m_id.empty()) {
        std::string dir = tmp_dir();
        m_fs.unlink(dir + "/message.eml");
        m_fs.unlink(dir + "/message.new");
        m_fs.unlink(dir + "/envelope.json");
        if (m_fs.rmdir(dir) != 0) {
            remove_tree(m_spool + "/tmp", m_id);
        }
        m_id.clear();
    }
    m_buffer.clear();
}

Result<std::vector<std::string>> list_queue(const std::string& spool)
{
    PosixFs fs;
    auto queue = QueueDir::open(spool, fs);
    if (!queue) {
        return queue.error();
    }
    return queue.value().list();
}

std::string message_path(const std::string& spool, std::string_view id)
{
    return spool + "/queue/" + std::string(id) + "/message.eml";
}

Result<Envelope> load_envelope(const std::string& spool, std::string_view id)
{
    return with_entry(spool, id, [](SpoolEntry& e) { return e.load(); });
}

Result<void> remove_message(const std::string& spool, std::string_view id)
{
    return with_entry(spool, id, [](SpoolEntry& e) { return e.remove(); });
}

} // namespace smtpspool
