// log: LogLine formatting (logfmt, JSON) and the syslog/stderr/none sinks. Never writes stdout.
#include "base/log.hpp"

#include "base/text.hpp"

#include <charconv>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <tuple>
#include <syslog.h>
#include <unistd.h>

namespace smtpspool {
namespace {

std::string& program_name()
{
    static std::string name = "smtpspool";
    return name;
}

std::string format_line(const LogLine& line, LogFormat format, bool ascii)
{
    if (format == LogFormat::json) {
        return line.json(log_time_now(), program_name(), static_cast<long>(::getpid()), ascii);
    }
    return ascii ? text::log_line_ascii(line.str()) : line.str();
}

class SyslogSink final : public LogSink {
public:
    explicit SyslogSink(LogFormat format) : m_format(format)
    {
        ::openlog("smtpspool", LOG_PID | LOG_NDELAY, LOG_MAIL);
    }
    ~SyslogSink() override { ::closelog(); }
    void log(const LogLine& line) override
    {
        ::syslog(LOG_INFO, "%s", format_line(line, m_format, false).c_str());
    }

private:
    LogFormat m_format;
};

class StderrSink final : public LogSink {
public:
    StderrSink(bool utf8, LogFormat format) : m_utf8(utf8), m_format(format) {}
    void log(const LogLine& line) override
    {
        std::string out = format_line(line, m_format, !m_utf8);
        if (m_format == LogFormat::logfmt) {
            out = "smtpspool[" + std::to_string(::getpid()) + "]: " + out;
        }
        out += '\n';
        std::ignore = ::write(2, out.data(), out.size());
    }

private:
    bool m_utf8;
    LogFormat m_format;
};

class NullSink final : public LogSink {
public:
    void log(const LogLine&) override {}
    bool enabled() const override { return false; }
};

void append_number(std::string& out, std::uint64_t value)
{
    char buf[24];
    auto [end, ec] = std::to_chars(buf, buf + sizeof buf, value);
    out.append(buf, end);
}

} // namespace

LogLine::LogLine(std::string_view event) : m_event(event) {}

LogLine& LogLine::add(std::string_view key, std::string_view value)
{
    m_fields.push_back({std::string(key), std::string(value), false});
    return *this;
}

LogLine& LogLine::add(std::string_view key, std::uint64_t value)
{
    std::string text;
    append_number(text, value);
    m_fields.push_back({std::string(key), std::move(text), true});
    return *this;
}

std::string LogLine::str() const
{
    std::string out;
    out.reserve(128);
    out += "event=";
    out += m_event;
    for (const Field& f : m_fields) {
        out += ' ';
        out += f.key;
        out += '=';
        if (f.number) {
            out += f.value;
        } else {
            text::append_log_value(out, f.value);
        }
    }
    return out;
}

std::string LogLine::json(std::string_view time, std::string_view program, long pid, bool ascii) const
{
    std::string out;
    out.reserve(192);
    out += "{\"time\":";
    text::append_json_string(out, time, ascii);
    out += ",\"program\":";
    text::append_json_string(out, program, ascii);
    out += ",\"pid\":";
    out += std::to_string(pid);
    out += ",\"event\":";
    text::append_json_string(out, m_event, ascii);
    for (const Field& f : m_fields) {
        out += ',';
        text::append_json_string(out, f.key, ascii);
        out += ':';
        if (f.number) {
            out += f.value;
        } else {
            text::append_json_string(out, f.value, ascii);
        }
    }
    out += '}';
    return out;
}

void set_log_program(std::string_view program) { program_name() = std::string(program); }

std::string log_time_now()
{
    using namespace std::chrono;
    const auto now = system_clock::now();
    const auto us = duration_cast<microseconds>(now.time_since_epoch()).count() % 1000000;
    const std::time_t t = system_clock::to_time_t(now);
    std::tm tm{};
    ::gmtime_r(&t, &tm);
    char buf[40];
    const std::size_t n = std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
    char frac[16];
    std::snprintf(frac, sizeof frac, ".%06lldZ", static_cast<long long>(us < 0 ? 0 : us));
    return std::string(buf, n) + frac;
}

std::unique_ptr<LogSink> make_log_sink(LogTarget target, bool utf8_stderr, LogFormat format)
{
    switch (target) {
    case LogTarget::syslog:
        return std::make_unique<SyslogSink>(format);
    case LogTarget::stderr_:
        return std::make_unique<StderrSink>(utf8_stderr, format);
    case LogTarget::none:
        break;
    }
    return std::make_unique<NullSink>();
}

} // namespace smtpspool
