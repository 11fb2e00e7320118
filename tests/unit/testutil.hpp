// testutil: fakes for the unit tier: MemorySpool (a SpoolPort in memory),
// RecordingLog, FaultyFs (fails the Nth call), TempDir.
#pragma once

#include "base/fs.hpp"
#include "delivery/deliverer.hpp"
#include "base/log.hpp"
#include "smtp/message_edit.hpp"
#include "smtp/spool_port.hpp"

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

namespace testutil {

using namespace smtpspool;

struct StoredMessage {
    Envelope envelope;
    std::string data;
};

class MemorySpool final : public SpoolPort {
public:
    Result<std::string> begin() override
    {
        if (fail_begin) {
            return Error{fail_errno, "begin failed"};
        }
        open = true;
        current.clear();
        return "ID" + std::to_string(++counter);
    }
    Result<void> append(std::string_view bytes) override
    {
        if (!open) {
            return Error{EBADF, "append without begin"};
        }
        if (fail_append_after != 0 && current.size() + bytes.size() > fail_append_after) {
            return Error{fail_errno, "append failed"};
        }
        current.append(bytes);
        peak = std::max(peak, current.size());
        return {};
    }
    Result<void> prepend(std::string_view bytes) override
    {
        if (!open) {
            return Error{EBADF, "prepend without begin"};
        }
        current.insert(0, bytes);
        return {};
    }
    Result<void> rewrite(const MessageEdits& edits) override
    {
        if (!open) {
            return Error{EBADF, "rewrite without begin"};
        }
        ++rewrites;
        auto r = fail_rewrite ? Result<std::string>(Error{fail_errno, "rewrite failed"})
                              : rewrite_message(current, edits);
        if (!r) {
            abort();
            return r.error();
        }
        current = std::move(r.value());
        return {};
    }
    Result<void> read_message(const MessagePiece& piece) override
    {
        if (!open) {
            return Error{EBADF, "read_message without begin"};
        }
        piece(current);
        return {};
    }
    Result<void> commit(Envelope& e) override
    {
        if (!open) {
            return Error{EBADF, "commit without begin"};
        }
        if (fail_commit) {
            return Error{fail_errno, "commit failed"};
        }
        e.id = "ID" + std::to_string(counter);
        e.size = current.size();
        messages.push_back({e, current});
        open = false;
        current.clear();
        return {};
    }
    void abort() override
    {
        if (open) {
            ++aborts;
        }
        open = false;
        current.clear();
    }

    std::vector<StoredMessage> messages;
    std::string current;
    bool open = false;
    int counter = 0;
    int aborts = 0;
    int rewrites = 0;
    bool fail_rewrite = false;
    std::size_t peak = 0;
    bool fail_begin = false;
    bool fail_commit = false;
    std::size_t fail_append_after = 0;
    int fail_errno = EIO;
};

class RecordingLog final : public LogSink {
public:
    void log(const LogLine& line) override { lines.push_back(line.str()); }
    bool has(std::string_view needle) const
    {
        for (const std::string& l : lines) {
            if (l.find(needle) != std::string::npos) {
                return true;
            }
        }
        return false;
    }
    std::vector<std::string> lines;
};

// Fails the fail_at-th call (1-based) with errno err; counts calls.
class FaultyFs final : public Fs {
public:
    int calls = 0;
    int fail_at = 0;
    int err = EIO;

    int mkdir(const std::string& p, mode_t m) override { return trip() ? -1 : m_real.mkdir(p, m); }
    int open(const std::string& p, int f, mode_t m) override { return trip() ? -1 : m_real.open(p, f, m); }
    ssize_t write(int fd, const char* d, std::size_t n) override { return trip() ? -1 : m_real.write(fd, d, n); }
    int fsync(int fd) override { return trip() ? -1 : m_real.fsync(fd); }
    int close(int fd) override
    {
        if (trip()) {
            m_real.close(fd); // close(2) failing still releases the descriptor
            errno = err;
            return -1;
        }
        return m_real.close(fd);
    }
    int rename_noreplace(const std::string& a, const std::string& b) override
    {
        return trip() ? -1 : m_real.rename_noreplace(a, b);
    }
    int unlink(const std::string& p) override { return m_real.unlink(p); }
    int rmdir(const std::string& p) override { return m_real.rmdir(p); }
    int openat(int d, const std::string& p, int f, mode_t m) override { return trip() ? -1 : m_real.openat(d, p, f, m); }
    int renameat(int fd1, const std::string& a, int fd2, const std::string& b) override
    {
        return trip() ? -1 : m_real.renameat(fd1, a, fd2, b);
    }
    int unlinkat(int d, const std::string& p, int f) override { return m_real.unlinkat(d, p, f); }
    ssize_t read(int fd, char* d, std::size_t n) override { return trip() ? -1 : m_real.read(fd, d, n); }
    int fstat(int fd, struct stat* st) override { return m_real.fstat(fd, st); }
    int flock(int fd, int op) override { return m_real.flock(fd, op); }

private:
    bool trip()
    {
        ++calls;
        if (calls == fail_at) {
            errno = err;
            return true;
        }
        return false;
    }
    PosixFs m_real;
};

class TempDir {
public:
    TempDir()
    {
        std::string tmpl = (std::filesystem::temp_directory_path() / "smtpspool-unit-XXXXXX").string();
        char* p = ::mkdtemp(tmpl.data());
        if (p == nullptr) {
            throw std::runtime_error("mkdtemp failed");
        }
        m_path = p;
    }
    ~TempDir() { std::filesystem::remove_all(m_path); }
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;
    const std::string& path() const { return m_path; }

private:
    std::string m_path;
};

inline std::size_t count_entries(const std::string& dir)
{
    std::size_t n = 0;
    for ([[maybe_unused]] const auto& e : std::filesystem::directory_iterator(dir)) {
        ++n;
    }
    return n;
}

// A MessageOpener over a file named by path (the runner's opens it through
// the spool entry).
inline smtpspool::MessageOpener open_file(const std::string& path)
{
    return [path]() -> smtpspool::Result<smtpspool::Fd> {
        smtpspool::Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
        if (!fd) {
            return smtpspool::Error{errno, path + ": " + std::strerror(errno)};
        }
        return fd;
    };
}

} // namespace testutil
