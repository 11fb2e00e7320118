// fd: the one owner of a file descriptor. Closed when it goes out of scope,
// moved but never copied; release() hands the number on without closing it.
#pragma once

#include <utility>

#include <unistd.h>

namespace smtpspool {

class Fd {
public:
    Fd() = default;
    explicit Fd(int fd) : m_fd(fd) {}
    Fd(Fd&& other) noexcept : m_fd(std::exchange(other.m_fd, -1)) {}
    Fd& operator=(Fd&& other) noexcept
    {
        if (this != &other) {
            reset();
            m_fd = std::exchange(other.m_fd, -1);
        }
        return *this;
    }
    Fd(const Fd&) = delete;
    Fd& operator=(const Fd&) = delete;
    ~Fd() { reset(); }

    int get() const { return m_fd; }
    bool valid() const { return m_fd >= 0; }
    explicit operator bool() const { return valid(); }
    int release() { return std::exchange(m_fd, -1); }
    void reset(int fd = -1)
    {
        if (m_fd >= 0) {
            ::close(m_fd);
        }
        m_fd = fd;
    }
    // close(2) with its result, for a descriptor whose data matters (a
    // written file: its last error may come only now).
    int close()
    {
        return m_fd >= 0 ? ::close(std::exchange(m_fd, -1)) : 0;
    }

private:
    int m_fd = -1;
};

// fcntl(F_SETFL) with O_NONBLOCK added to the descriptor's flags, which are
// kept; false (errno set) when either call fails.
bool set_nonblocking(int fd);

} // namespace smtpspool
