// fs: the file system calls the spool makes, behind an interface so tests can
// inject a failure at any step of the commit protocol and of runq's rewrite of
// an envelope. PosixFs is the real one; it opens everything close-on-exec.
#pragma once

#include "base/fd.hpp"
#include "base/result.hpp"

#include <cstddef>
#include <string>
#include <sys/stat.h>
#include <sys/types.h>

namespace smtpspool {

// Each call returns what the system call returns and leaves errno set.
class Fs {
public:
    virtual ~Fs() = default;
    virtual int mkdir(const std::string& path, mode_t mode) = 0;
    virtual int open(const std::string& path, int flags, mode_t mode) = 0;
    virtual ssize_t write(int fd, const char* data, std::size_t size) = 0;
    virtual int fsync(int fd) = 0;
    virtual int close(int fd) = 0;
    // rename that fails with EEXIST instead of replacing the target.
    virtual int rename_noreplace(const std::string& from, const std::string& to) = 0;
    virtual int unlink(const std::string& path) = 0;
    virtual int rmdir(const std::string& path) = 0;
    // Relative to a directory descriptor: openat(2), renameat(2) (replacing
    // the target), unlinkat(2), read(2), fstat(2), flock(2).
    virtual int openat(int dir, const std::string& name, int flags, mode_t mode) = 0;
    virtual int renameat(int from_dir, const std::string& from, int to_dir, const std::string& to) = 0;
    virtual int unlinkat(int dir, const std::string& name, int flags) = 0;
    virtual ssize_t read(int fd, char* data, std::size_t size) = 0;
    virtual int fstat(int fd, struct stat* st) = 0;
    virtual int flock(int fd, int operation) = 0;
};

class PosixFs final : public Fs {
public:
    int mkdir(const std::string& path, mode_t mode) override;
    int open(const std::string& path, int flags, mode_t mode) override;
    ssize_t write(int fd, const char* data, std::size_t size) override;
    int fsync(int fd) override;
    int close(int fd) override;
    int rename_noreplace(const std::string& from, const std::string& to) override;
    int unlink(const std::string& path) override;
    int rmdir(const std::string& path) override;
    int openat(int dir, const std::string& name, int flags, mode_t mode) override;
    int renameat(int from_dir, const std::string& from, int to_dir, const std::string& to) override;
    int unlinkat(int dir, const std::string& name, int flags) override;
    ssize_t read(int fd, char* data, std::size_t size) override;
    int fstat(int fd, struct stat* st) override;
    int flock(int fd, int operation) override;
};

// openat(2) that never follows a link in NAME (O_NOFOLLOW, close-on-exec,
// EINTR retried).
Fd openat_nofollow(int dir, const std::string& name, int flags, mode_t mode);

// SPOOL/state, the directory of the rate-limit file and the runner slots:
// created 0700 when missing and opened without following a link (the spool
// itself may be a link the administrator made).
Result<Fd> open_state_directory(const std::string& spool);

} // namespace smtpspool
