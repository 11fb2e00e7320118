// log: LogLine formatting and the syslog/stderr/none sinks. Never writes stdout.
#include "log.hpp"

#include <tuple>
#include <cstdio>
#include <syslog.h>
#include <unistd.h>

namespace smtpspool {
namespace {

class SyslogSink final : public LogSink {
public:
    SyslogSink() { ::openlog("smtpspool", LOG_PID | LOG_NDELAY, LOG_MAIL); }
    ~SyslogSink() override { ::closelog(); }
    void log(const LogLine& line) override { ::syslog(LOG_INFO, "%s", line.str().c_str()); }
};

class StderrSink final : public LogSink {
public:
    void log(const LogLine& line) override
    {
        std::string out = "smtpspool[" + std::to_string(::getpid()) + "]: " + line.str() + "\n";
        std::ignore = ::write(2, out.data(), out.size());
    }
};

class NullSink final : public LogSink {
public:
    void log(const LogLine&) override {}
};

} // namespace

std::string log_escape(std::string_view value)
{
    bool quote = value.empty();
    for (char c : value) {
        auto u = static_cast<unsigned char>(c);
        if (u <= 0x20 || u >= 0x7f || c == '"' || c == '=' || c == '\\') {
            quote = true;
            break;
        }
    }
    if (!quote) {
        return std::string(value);
    }
    std::string out = "\"";
    for (char c : value) {
        auto u = static_cast<unsigned char>(c);
        if (c == '"' || c == '\\') {
            out += '\\';
            out += c;
        } else if (u < 0x20 || u >= 0x7f) {
            char buf[5];
            std::snprintf(buf, sizeof buf, "\\x%02x", u);
            out += buf;
        } else {
            out += c;
        }
    }
    out += '"';
    return out;
}

LogLine::LogLine(std::string_view event) : m_text("event=" + std::string(event)) {}

LogLine& LogLine::add(std::string_view key, std::string_view value)
{
    m_text += ' ';
    m_text += key;
    m_text += '=';
    m_text += log_escape(value);
    return *this;
}

LogLine& LogLine::add(std::string_view key, std::uint64_t value) { return add(key, std::to_string(value)); }

std::unique_ptr<LogSink> make_log_sink(LogTarget target)
{
    switch (target) {
    case LogTarget::syslog:
        return std::make_unique<SyslogSink>();
    case LogTarget::stderr_:
        return std::make_unique<StderrSink>();
    case LogTarget::none:
        break;
    }
    return std::make_unique<NullSink>();
}

} // namespace smtpspool
