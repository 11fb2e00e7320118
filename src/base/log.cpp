// log: LogLine formatting and the syslog/stderr/none sinks. Never writes stdout.
#include "base/log.hpp"

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
    void log(const LogLine& line) override
    {
        std::string out = "smtpspool[" + std::to_string(::getpid()) + "]: " + line.str() + "\n";
        std::ignore = ::write(2, out.data(), out.size());
    }
};

class NullSink final : public LogSink {
public:
    void log(const LogLine&) override {}
    bool enabled() const override { return false; }
};

} // namespace

namespace {

bool needs_quotes(std::string_view value)
{
    if (value.empty()) {
        return true;
    }
    for (char c : value) {
        auto u = static_cast<unsigned char>(c);
        if (u <= 0x20 || u >= 0x7f || c == '"' || c == '=' || c == '\\') {
            return true;
        }
    }
    return false;
}

// Appends value to out, quoted and escaped when it needs to be.
void append_escaped(std::string& out, std::string_view value)
{
    if (!needs_quotes(value)) {
        out += value;
        return;
    }
    static constexpr char k_hex[] = "0123456789abcdef";
    out += '"';
    for (char c : value) {
        auto u = static_cast<unsigned char>(c);
        if (c == '"' || c == '\\') {
            out += '\\';
            out += c;
        } else if (u < 0x20 || u >= 0x7f) {
            const char esc[4] = {'\\', 'x', k_hex[u >> 4], k_hex[u & 0xf]};
            out.append(esc, sizeof esc);
        } else {
            out += c;
        }
    }
    out += '"';
}

} // namespace

std::string log_escape(std::string_view value)
{
    std::string out;
    append_escaped(out, value);
    return out;
}

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
    append_escaped(m_text, value);
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
