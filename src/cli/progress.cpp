// progress: the status line of a long run on a terminal (contract in progress.hpp).
#include "cli/progress.hpp"

#include <cstdio>
#include <tuple>
#include <unistd.h>

namespace smtpspool {

std::string progress_text(const char* what, const ProgressCounts& c, std::chrono::duration<double> elapsed,
                          const ProgressLabels& labels)
{
    std::string out = std::string(what) + ": " + std::to_string(c.done) + "/" + std::to_string(c.total) +
                      " messages, " + std::to_string(c.delivered) + " " + labels[0] + ", " +
                      std::to_string(c.deferred) + " " + labels[1] + ", " + std::to_string(c.failed) + " " + labels[2];
    const double seconds = elapsed.count();
    if (c.done > 0 && seconds > 0) {
        const double rate = static_cast<double>(c.done) / seconds;
        char buf[64];
        std::snprintf(buf, sizeof buf, ", %.1f/s", rate);
        out += buf;
        if (c.total > c.done) {
            const auto left = static_cast<long long>(static_cast<double>(c.total - c.done) / rate + 0.5);
            out += ", " + (left >= 3600 ? std::to_string(left / 3600) + "h" + std::to_string(left % 3600 / 60) + "m"
                           : left >= 60 ? std::to_string(left / 60) + "m" + std::to_string(left % 60) + "s"
                                        : std::to_string(left) + "s") +
                   " left";
        }
    }
    return out;
}

ProgressLine::ProgressLine(const char* what, int fd, const ProgressLabels& labels)
    : m_what(what), m_labels(labels), m_fd(fd), m_tty(::isatty(fd) == 1), m_start(std::chrono::steady_clock::now())
{
}

ProgressLine::~ProgressLine() { finish(); }

void ProgressLine::update(const ProgressCounts& c)
{
    if (!m_tty) {
        return;
    }
    const auto now = std::chrono::steady_clock::now();
    if (m_shown && c.done < c.total && now - m_last < std::chrono::milliseconds(100)) {
        return;
    }
    m_last = now;
    show(c);
}

void ProgressLine::show(const ProgressCounts& c)
{
    std::string line = "\r\x1b[K" + progress_text(m_what, c, std::chrono::steady_clock::now() - m_start, m_labels);
    std::ignore = ::write(m_fd, line.data(), line.size());
    m_shown = true;
}

void ProgressLine::finish()
{
    if (m_shown) {
        std::ignore = ::write(m_fd, "\r\x1b[K", 4);
        m_shown = false;
    }
}

} // namespace smtpspool
