// log: LogLine formatting and the syslog/stderr/none sinks. Never writes stdout.
#include "base/log.hpp"

#include "base/text.hpp"

#include <charconv>
#include <tuple>
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
    explicit StderrSink(bool utf8) : m_utf8(utf8) {}
    void log(const LogLine& line) override
    {
        std::string out = "smtpspool[" + std::to_string(::getpid()) + "]: " +
                          (m_utf8 ? line.str() : text::log_line_ascii(line.str())) + "\n";
        std::ignore = ::write(2, out.data(), out.size());
    }

private:
    bool m_utf8;
};

class NullSink final : public LogSink {
public:
    void log(const LogLine&) override {}
    bool enabled() const override { return false; }
};

} // namespace

LogLine::LogLine(std::string_view event)
{
    m_text.reserve(128);
    m_text += "event=";
    m_text += event;
}

LogLine& LogLine::add(std::string_view key, std::string_view value)
{
    m_text += ' ';
    m_text += key;
    m_text += '=';
    text::append_log_value(m_text, value);
    return *this;
}

LogLine& LogLine::add(std::string_view key, std::uint64_t value)
{
    char buf[24];
    auto [end, ec] = std::to_chars(buf, buf + sizeof buf, value);
    m_text += ' ';
    m_text += key;
    m_text += '=';
    m_text.append(buf, end);
    return *this;
}

std::unique_ptr<LogSink> make_log_sink(LogTarget target, bool utf8_stderr)
{
    switch (target) {
    case LogTarget::syslog:
        return std::make_unique<SyslogSink>();
    case LogTarget::stderr_:
        return std::make_unique<StderrSink>(utf8_stderr);
    case LogTarget::none:
        break;
    }
    return std::make_unique<NullSink>();
}

} // namespace smtpspool
