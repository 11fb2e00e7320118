// log: one key=value line per event. LogLine formats (pure, escapes untrusted
// text with text::log_value); LogSink is where lines go: syslog (facility mail), stderr, or nowhere.
#pragma once

#include <memory>
#include <string>
#include <string_view>

namespace smtpspool {

class LogLine {
public:
    explicit LogLine(std::string_view event);
    LogLine& add(std::string_view key, std::string_view value);
    LogLine& add(std::string_view key, std::uint64_t value);
    const std::string& str() const { return m_text; }

private:
    std::string m_text;
};

class LogSink {
public:
    virtual ~LogSink() = default;
    virtual void log(const LogLine& line) = 0;
    // False when lines go nowhere: callers on hot paths skip building them.
    virtual bool enabled() const { return true; }
};

enum class LogTarget { syslog, stderr_, none };

// The sinks that main builds; "program" names the syslog ident. Syslog gets
// each line as LogLine made it (UTF-8 inside quoted values kept); standard
// error too when `utf8_stderr` (its reader's locale is UTF-8, which the
// caller found out), else each octet >= 0x80 written \xNN
// (text::log_line_ascii).
std::unique_ptr<LogSink> make_log_sink(LogTarget target, bool utf8_stderr = false);

} // namespace smtpspool
