// progress: one status line on a terminal, kept up to date while a long run
// goes on (runq): messages done of total, delivered/deferred/failed, the
// rate and the time left. Written to standard error with a carriage return
// and an erase-line before each update, at most ten times a second; nothing
// at all when standard error is not a terminal.
#pragma once

#include <chrono>
#include <cstddef>
#include <string>

namespace smtpspool {

struct ProgressCounts {
    std::size_t done = 0;
    std::size_t total = 0;
    std::size_t delivered = 0;
    std::size_t deferred = 0;
    std::size_t failed = 0;
};

// The text of the line (no control characters): "runq: 120/1000 messages,
// 110 delivered, 8 deferred, 2 failed, 40.0/s, 22s left". `elapsed` is the
// time since the start; the rate and the time left appear once some message
// is done.
std::string progress_text(const char* what, const ProgressCounts& c, std::chrono::duration<double> elapsed);

class ProgressLine {
public:
    // Shown only when fd is a terminal.
    ProgressLine(const char* what, int fd);
    ~ProgressLine();
    void update(const ProgressCounts& c);
    // Erases the line (the summary that follows takes its place).
    void finish();

private:
    void show(const ProgressCounts& c);

    const char* m_what;
    int m_fd;
    bool m_tty;
    bool m_shown = false;
    std::chrono::steady_clock::time_point m_start;
    std::chrono::steady_clock::time_point m_last{};
};

} // namespace smtpspool
