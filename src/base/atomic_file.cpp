// atomic_file: temporary name, fsync, rename, fsync of the directory.
#include "base/atomic_file.hpp"

#include "base/fd.hpp"

#include <cerrno>
#include <cstring>
#include <fcntl.h>

namespace smtpspool {
Result<void> write_all(Fs& fs, int fd, std::string_view bytes, const std::string& shown)
{
    while (!bytes.empty()) {
        ssize_t n = fs.write(fd, bytes.data(), bytes.size());
        if (n <= 0) {
            if (n == 0) {
                errno = EIO;
            }
            return sys_error("cannot write " + shown);
        }
        bytes.remove_prefix(static_cast<std::size_t>(n));
    }
    return {};
}

Result<void> write_file_atomically(Fs& fs, const AtomicTarget& target, const std::function<Result<void>(int)>& fill)
{
    const std::string temp_shown = target.shown + " (as " + target.temp_name + ")";
    auto fail = [&](Error e) {
        fs.unlinkat(target.temp_dir, target.temp_name, 0);
        return e;
    };
    if (target.replace_stale) {
        // Left by a run that crashed between create and rename: it is no one's.
        fs.unlinkat(target.temp_dir, target.temp_name, 0);
    }
    Fd fd(fs.openat(target.temp_dir, target.temp_name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, target.mode));
    if (!fd) {
        return sys_error("cannot create " + temp_shown); // not ours to remove
    }
    if (auto r = fill(fd.get()); !r) {
        return fail(r.error());
    }
    if (fs.fsync(fd.get()) != 0) {
        return fail(sys_error("cannot fsync " + temp_shown));
    }
    if (fs.close(fd.release()) != 0) {
        return fail(sys_error("cannot close " + temp_shown));
    }
    if (fs.renameat(target.temp_dir, target.temp_name, target.final_dir, target.final_name) != 0) {
        return fail(sys_error("cannot rename " + temp_shown));
    }
    if (fs.fsync(target.final_dir) != 0) {
        return sys_error("cannot fsync the directory of " + target.shown);
    }
    return {};
}

} // namespace smtpspool
