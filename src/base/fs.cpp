// fs: PosixFs, thin wrappers over the system calls (EINTR retried).
#include "base/fs.hpp"

#include <cerrno>
#include <cstdio>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

namespace smtpspool {

int PosixFs::mkdir(const std::string& path, mode_t mode) { return ::mkdir(path.c_str(), mode); }

int PosixFs::open(const std::string& path, int flags, mode_t mode)
{
    int fd;
    do {
        fd = ::open(path.c_str(), flags | O_CLOEXEC, mode);
    } while (fd < 0 && errno == EINTR);
    return fd;
}

ssize_t PosixFs::write(int fd, const char* data, std::size_t size)
{
    ssize_t n;
    do {
        n = ::write(fd, data, size);
    } while (n < 0 && errno == EINTR);
    return n;
}

int PosixFs::fsync(int fd) { return ::fsync(fd); }

int PosixFs::close(int fd) { return ::close(fd); }

int PosixFs::rename_noreplace(const std::string& from, const std::string& to)
{
#ifdef SYS_renameat2
    long r = ::syscall(SYS_renameat2, AT_FDCWD, from.c_str(), AT_FDCWD, to.c_str(), 1 /* RENAME_NOREPLACE */);
    if (r == 0 || (errno != ENOSYS && errno != EINVAL)) {
        return static_cast<int>(r);
    }
#endif
    // Without renameat2, link-free directories cannot be renamed exclusively;
    // a non-empty target makes rename(2) fail, which is what we need here.
    return ::rename(from.c_str(), to.c_str());
}

int PosixFs::unlink(const std::string& path) { return ::unlink(path.c_str()); }

int PosixFs::rmdir(const std::string& path) { return ::rmdir(path.c_str()); }

int PosixFs::openat(int dir, const std::string& name, int flags, mode_t mode)
{
    int fd;
    do {
        fd = ::openat(dir, name.c_str(), flags | O_CLOEXEC, mode);
    } while (fd < 0 && errno == EINTR);
    return fd;
}

int PosixFs::renameat(int from_dir, const std::string& from, int to_dir, const std::string& to)
{
    return ::renameat(from_dir, from.c_str(), to_dir, to.c_str());
}

int PosixFs::unlinkat(int dir, const std::string& name, int flags) { return ::unlinkat(dir, name.c_str(), flags); }

ssize_t PosixFs::read(int fd, char* data, std::size_t size)
{
    ssize_t n;
    do {
        n = ::read(fd, data, size);
    } while (n < 0 && errno == EINTR);
    return n;
}

int PosixFs::fstat(int fd, struct stat* st) { return ::fstat(fd, st); }

int PosixFs::flock(int fd, int operation)
{
    int r;
    do {
        r = ::flock(fd, operation);
    } while (r < 0 && errno == EINTR);
    return r;
}

Fd openat_nofollow(int dir, const std::string& name, int flags, mode_t mode)
{
    return Fd(PosixFs().openat(dir, name, flags | O_NOFOLLOW, mode));
}

Result<Fd> open_state_directory(const std::string& spool)
{
    Fd root(::open(spool.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!root) {
        return sys_error("cannot open " + spool);
    }
    Fd state = openat_nofollow(root.get(), "state", O_RDONLY | O_DIRECTORY, 0);
    if (!state && errno == ENOENT) {
        if (::mkdirat(root.get(), "state", 0700) != 0 && errno != EEXIST) {
            return sys_error("cannot create " + spool + "/state");
        }
        state = openat_nofollow(root.get(), "state", O_RDONLY | O_DIRECTORY, 0);
    }
    if (!state) {
        return sys_error("cannot open " + spool + "/state");
    }
    return state;
}

} // namespace smtpspool
