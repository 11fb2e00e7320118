// progress: one status line on a terminal, kept up to date while a long run
// goes on (runq; hold, release, requeue and bounce with --all): messages done
// of total, three counts (delivered/deferred/failed for runq), the
// rate and the time left. Written to standard error with a carriage return
// and an erase-line before each update, at most ten times a second; nothing
// at all when standard error is not a terminal.
#pragma once

#include <array>
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

// What the three counts of ProgressCounts are called on the line.
using ProgressLabels = std::array<const char*, 3>;
inline constexpr ProgressLabels k_delivery_labels{"delivered", "deferred", "failed"};

// The text of the line (no control characters): "runq: 120/1000 messages,
// 110 delivered, 8 deferred, 2 failed, 40.0/s, 22s left". `elapsed` is the
// time since the start; the rate and the time left appear once some message
// is done.
std::string progress_text(const char* what, const ProgressCounts& c, std::chrono::duration<double> elapsed,
                          const ProgressLabels& labels = k_delivery_labels);

class ProgressLine {
public:
    // Shown only when fd is a terminal.
    ProgressLine(const char* what, int fd, const ProgressLabels& labels = k_delivery_labels);
    ~ProgressLine();
    void update(const ProgressCounts& c);
    // Erases the line (the summary that follows takes its place, or a line
    // written to the same terminal; the next update draws it again).
    void finish();

private:
    void show(const ProgressCounts& c);

    const char* m_what;
    ProgressLabels m_labels;
    int m_fd;
    bool m_tty;
    bool m_shown = false;
    std::chrono::steady_clock::time_point m_start;
    std::chrono::steady_clock::time_point m_last{};
};

} // namespace smtpspool
