// spool_entry: queue/ and its messages, reached only through directory
// descriptors opened without following links.
#include "spool/spool_entry.hpp"

#include "base/atomic_file.hpp"
#include "base/limits.hpp"
#include "spool/envelope_json.hpp"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

namespace smtpspool {
namespace {

constexpr int k_dir_flags = O_RDONLY | O_DIRECTORY | O_NOFOLLOW;

} // namespace

Result<std::vector<std::string>> directory_names(int dir, const std::string& what)
{
    int copy = ::fcntl(dir, F_DUPFD_CLOEXEC, 3);
    if (copy < 0) {
        return sys_error("cannot read " + what);
    }
    DIR* d = ::fdopendir(copy);
    if (d == nullptr) {
        Error e = sys_error("cannot read " + what);
        ::close(copy);
        return e;
    }
    ::rewinddir(d);
    std::vector<std::string> names;
    while (dirent* ent = ::readdir(d)) {
        std::string name = ent->d_name;
        if (name != "." && name != "..") {
            names.push_back(std::move(name));
        }
    }
    ::closedir(d);
    return names;
}

namespace {

// Unlinks every name in the directory (a link itself, never its target).
void unlink_names(Fs& fs, int dir, const std::string& shown)
{
    if (auto names = directory_names(dir, shown)) {
        for (const std::string& n : names.value()) {
            fs.unlinkat(dir, n, 0);
        }
    }
}

// A directory under `parent`, opened without following a link, that must be
// owned by `owner` (any owner when owner is -1).
Result<Fd> open_subdir(Fs& fs, int parent, const std::string& name, const std::string& shown, uid_t owner)
{
    Fd fd(fs.openat(parent, name, k_dir_flags, 0));
    if (!fd) {
        // With O_DIRECTORY, Linux answers ENOTDIR for a link too: tell them apart.
        int e = errno;
        struct stat st {};
        if (e == ENOTDIR && ::fstatat(parent, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(st.st_mode)) {
            e = ELOOP;
        }
        std::string why = e == ELOOP ? "a symbolic link, not followed" : std::strerror(e);
        return Error{e, shown + ": " + why};
    }
    struct stat st {};
    if (fs.fstat(fd.get(), &st) != 0) {
        return sys_error("cannot stat " + shown);
    }
    if (owner != static_cast<uid_t>(-1) && st.st_uid != owner) {
        return Error{EPERM, shown + ": owned by uid " + std::to_string(st.st_uid) + ", not by the spool's owner (uid " +
                                std::to_string(owner) + ")"};
    }
    return fd;
}

} // namespace

void remove_spool_dir(Fs& fs, int parent, const std::string& name)
{
    Fd dir(fs.openat(parent, name, k_dir_flags, 0));
    if (!dir) {
        // A file or a link where a directory was expected: the name goes, what
        // it points to stays.
        if (errno == ELOOP || errno == ENOTDIR) {
            fs.unlinkat(parent, name, 0);
        }
        return;
    }
    unlink_names(fs, dir.get(), name);
    dir.reset();
    fs.unlinkat(parent, name, AT_REMOVEDIR);
}

QueueDir::QueueDir(std::string spool, Fs& fs, Fd queue, Fd tmp, uid_t owner)
    : m_spool(std::move(spool)), m_fs(&fs), m_queue(std::move(queue)), m_tmp(std::move(tmp)), m_owner(owner)
{
}

Result<QueueDir> QueueDir::open(const std::string& spool, Fs& fs)
{
    Fd root(fs.open(spool, O_RDONLY | O_DIRECTORY, 0));
    if (!root) {
        return sys_error("cannot read " + spool);
    }
    auto queue = open_subdir(fs, root.get(), "queue", spool + "/queue", static_cast<uid_t>(-1));
    if (!queue) {
        return queue.error();
    }
    struct stat st {};
    if (fs.fstat(queue.value().get(), &st) != 0) {
        return sys_error("cannot stat " + spool + "/queue");
    }
    // tmp/ may be missing (a spool that has never received): runq makes it.
    auto tmp = open_subdir(fs, root.get(), "tmp", spool + "/tmp", st.st_uid);
    if (!tmp && tmp.error().errnum != ENOENT) {
        return tmp.error();
    }
    return QueueDir(spool, fs, std::move(queue.value()), tmp ? std::move(tmp.value()) : Fd(), st.st_uid);
}

Result<std::vector<std::string>> QueueDir::list() const
{
    auto names = directory_names(m_queue.get(), m_spool + "/queue");
    if (!names) {
        return names.error();
    }
    std::vector<std::string> ids;
    for (std::string& name : names.value()) {
        if (is_valid_queue_id(name)) {
            ids.push_back(std::move(name));
        }
    }
    std::sort(ids.begin(), ids.end());
    return ids;
}

Result<SpoolEntry> QueueDir::entry(std::string_view id) const
{
    if (!is_valid_queue_id(id)) {
        return Error{EINVAL, "invalid queue id"};
    }
    std::string name(id);
    auto dir = open_subdir(*m_fs, m_queue.get(), name, m_spool + "/queue/" + name, m_owner);
    if (!dir) {
        return dir.error();
    }
    return SpoolEntry(*this, std::move(name), std::move(dir.value()));
}

SpoolEntry::SpoolEntry(const QueueDir& queue, std::string id, Fd dir)
    : m_fs(queue.m_fs), m_queue_fd(queue.m_queue.get()), m_tmp_fd(queue.m_tmp.get()), m_spool(queue.m_spool),
      m_id(std::move(id)), m_dir(std::move(dir))
{
}

std::string SpoolEntry::message_path() const { return m_spool + "/queue/" + m_id + "/message.eml"; }

Result<bool> SpoolEntry::try_lock()
{
    if (m_fs->flock(m_dir.get(), LOCK_EX | LOCK_NB) == 0) {
        return true;
    }
    if (errno == EWOULDBLOCK) {
        return false;
    }
    return sys_error("cannot lock " + m_spool + "/queue/" + m_id);
}

Result<void> SpoolEntry::lock()
{
    while (m_fs->flock(m_dir.get(), LOCK_EX) != 0) {
        if (errno != EINTR) {
            return sys_error("cannot lock " + m_spool + "/queue/" + m_id);
        }
    }
    return {};
}

Result<Fd> SpoolEntry::open_message() const
{
    Fd fd(m_fs->openat(m_dir.get(), "message.eml", O_RDONLY | O_NOFOLLOW, 0));
    if (!fd) {
        int e = errno;
        return Error{e, message_path() + ": " + (e == ELOOP ? "a symbolic link, not followed" : std::strerror(e))};
    }
    struct stat st {};
    if (m_fs->fstat(fd.get(), &st) != 0) {
        return sys_error("cannot stat " + message_path());
    }
    if (!S_ISREG(st.st_mode)) {
        return Error{EINVAL, message_path() + ": not a regular file"};
    }
    return fd;
}

Result<std::string> SpoolEntry::read_file(const char* name, std::size_t max) const
{
    std::string shown = m_spool + "/queue/" + m_id + "/" + name;
    // O_NONBLOCK: a FIFO planted in its place must not hang the reader.
    Fd fd(m_fs->openat(m_dir.get(), name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK, 0));
    if (!fd) {
        int e = errno;
        return Error{e, shown + ": " + (e == ELOOP ? "a symbolic link, not followed" : std::strerror(e))};
    }
    struct stat st {};
    if (m_fs->fstat(fd.get(), &st) != 0) {
        return sys_error("cannot stat " + shown);
    }
    if (!S_ISREG(st.st_mode)) {
        return Error{EINVAL, shown + ": not a regular file"};
    }
    std::string text;
    char buf[65536];
    while (text.size() <= max) {
        ssize_t n = m_fs->read(fd.get(), buf, std::min(sizeof buf, max + 1 - text.size()));
        if (n < 0) {
            return sys_error("cannot read " + shown);
        }
        if (n == 0) {
            break;
        }
        text.append(buf, static_cast<std::size_t>(n));
    }
    return text;
}

Result<std::string> SpoolEntry::read_message(std::size_t max) const { return read_file("message.eml", max); }

Result<Envelope> SpoolEntry::load() const
{
    auto text = read_file("envelope.json", limits::k_max_envelope_size);
    if (!text) {
        return text.error();
    }
    std::string path = m_spool + "/queue/" + m_id + "/envelope.json";
    if (text.value().size() > limits::k_max_envelope_size) {
        return Error{EFBIG, path + ": larger than " + std::to_string(limits::k_max_envelope_size) + " octets"};
    }
    auto e = envelope_from_json(text.value());
    if (!e) {
        return Error{0, path + ": " + e.error().message};
    }
    if (e.value().id != m_id) {
        return Error{0, path + ": \"id\" does not match the directory name"};
    }
    return e;
}

Result<void> SpoolEntry::rewrite(const Envelope& envelope)
{
    const std::string json = envelope_to_json(envelope);
    // Never written past what it is read with (the envelope was not made here).
    if (json.size() > limits::k_max_envelope_size) {
        return Error{E2BIG, m_spool + "/queue/" + m_id + "/envelope.json: the rewrite would be " +
                                std::to_string(json.size()) + " octets, over " +
                                std::to_string(limits::k_max_envelope_size)};
    }
    AtomicTarget target;
    target.temp_dir = m_dir.get();
    target.temp_name = "envelope.json.new";
    target.final_dir = m_dir.get();
    target.final_name = "envelope.json";
    target.shown = m_spool + "/queue/" + m_id + "/envelope.json";
    target.replace_stale = true;
    return write_file_atomically(*m_fs, target,
                                 [&](int fd) { return write_all(*m_fs, fd, json, target.shown + ".new"); });
}

Result<void> SpoolEntry::remove()
{
    if (m_tmp_fd < 0) {
        return Error{ENOENT, "cannot remove " + m_spool + "/queue/" + m_id + ": the spool has no tmp/"};
    }
    std::string removed = "removed-" + m_id;
    // A leftover of an interrupted removal would make the rename fail.
    remove_spool_dir(*m_fs, m_tmp_fd, removed);
    if (m_fs->renameat(m_queue_fd, m_id, m_tmp_fd, removed) != 0) {
        return sys_error("cannot remove " + m_spool + "/queue/" + m_id);
    }
    // Out of the queue now; its files go through our descriptor of it.
    unlink_names(*m_fs, m_dir.get(), removed);
    m_fs->unlinkat(m_tmp_fd, removed, AT_REMOVEDIR);
    return {};
}

} // namespace smtpspool
