// clock: time formatting with the C library's calendar functions; no locale is used.
#include "clock.hpp"

#include <array>
#include <cstdio>
#include <ctime>

namespace smtpspool {
namespace {

std::tm utc(std::time_t t)
{
    std::tm tm{};
    gmtime_r(&t, &tm);
    return tm;
}

constexpr std::array<const char*, 7> k_days{"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
constexpr std::array<const char*, 12> k_months{"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                               "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

} // namespace

std::string rfc5322_date(TimePoint t)
{
    std::time_t sec = std::chrono::system_clock::to_time_t(t);
    std::tm tm{};
    localtime_r(&sec, &tm);
    long off = tm.tm_gmtoff / 60;
    char sign = off < 0 ? '-' : '+';
    if (off < 0) {
        off = -off;
    }
    char buf[128];
    std::snprintf(buf, sizeof buf, "%s, %02d %s %04d %02d:%02d:%02d %c%02ld%02ld",
                  k_days[static_cast<std::size_t>(tm.tm_wday) % 7], tm.tm_mday,
                  k_months[static_cast<std::size_t>(tm.tm_mon) % 12], tm.tm_year + 1900, tm.tm_hour, tm.tm_min,
                  tm.tm_sec, sign, off / 60, off % 60);
    return buf;
}

std::string rfc3339_utc(TimePoint t)
{
    std::tm tm = utc(std::chrono::system_clock::to_time_t(t));
    char buf[96];
    std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02dZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                  tm.tm_hour, tm.tm_min, tm.tm_sec);
    return buf;
}

std::string id_timestamp(TimePoint t)
{
    auto since = t.time_since_epoch();
    auto sec = std::chrono::duration_cast<std::chrono::seconds>(since);
    auto usec = std::chrono::duration_cast<std::chrono::microseconds>(since - sec).count();
    std::tm tm = utc(static_cast<std::time_t>(sec.count()));
    char buf[96];
    std::snprintf(buf, sizeof buf, "%04d%02d%02dT%02d%02d%02d-%06lld", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                  tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<long long>(usec));
    return buf;
}

} // namespace smtpspool
