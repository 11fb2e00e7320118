// log: one line per event, an event name and its key/value fields. LogLine
// holds them (pure) and writes them as logfmt (key=value, escaped with
// text::log_value) or as a JSON object (text::json_string); LogSink is where
// lines go: syslog (facility mail), stderr, or nowhere. The events and their
// keys are listed in smtpspool(8), LOGGING.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace smtpspool {

enum class LogFormat { logfmt, json };

class LogLine {
public:
    explicit LogLine(std::string_view event);
    LogLine& add(std::string_view key, std::string_view value);
    LogLine& add(std::string_view key, std::uint64_t value);

    const std::string& event() const { return m_event; }
    // "event=NAME key=value ...": values as text::log_value writes them.
    std::string str() const;
    // {"time":"...","program":"...","pid":N,"event":"NAME","key":value,...}:
    // `time` as given (RFC 3339), numbers as JSON numbers, text as
    // text::json_string writes it (`ascii`: only printable US-ASCII).
    std::string json(std::string_view time, std::string_view program, long pid, bool ascii = false) const;

private:
    struct Field {
        std::string key;
        std::string value;
        bool number;
    };
    std::string m_event;
    std::vector<Field> m_fields;
};

class LogSink {
public:
    virtual ~LogSink() = default;
    virtual void log(const LogLine& line) = 0;
    // False when lines go nowhere: callers on hot paths skip building them.
    virtual bool enabled() const { return true; }
};

enum class LogTarget { syslog, stderr_, none };

// The program part of JSON lines ("serve", "runq", "sendmail", ...), set
// once by main before the first line; "smtpspool" until then.
void set_log_program(std::string_view program);

// "2026-12-06T06:50:07.123456Z": the time of a JSON line, UTC, microseconds.
std::string log_time_now();

// The sinks that main builds. Syslog gets each line as LogLine made it
// (UTF-8 inside quoted values kept); standard error too when `utf8_stderr`
// (its reader's locale is UTF-8, which the caller found out), else each
// octet >= 0x80 written \xNN (text::log_line_ascii) in logfmt and as \u
// escapes in JSON.
std::unique_ptr<LogSink> make_log_sink(LogTarget target, bool utf8_stderr = false,
                                       LogFormat format = LogFormat::logfmt);

} // namespace smtpspool
