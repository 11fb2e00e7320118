// clock: time formatting with the C library's calendar functions; no locale is used.
#include "base/clock.hpp"

#include <array>
#include <charconv>
#include <cstdio>
#include <ctime>

namespace smtpspool {
namespace {

// Writes v as exactly `width` decimal digits (v is never negative here).
void put_digits(std::string& out, long long v, int width)
{
    char buf[20];
    for (int k = width - 1; k >= 0; --k) {
        buf[k] = static_cast<char>('0' + v % 10);
        v /= 10;
    }
    out.append(buf, static_cast<std::size_t>(width));
}

// localtime_r and gmtime_r for one second at a time: a session asks for the
// same second several times per message (Received:, the id, received_at).
struct CachedTm {
    std::time_t sec = -1;
    std::tm tm{};
};

const std::tm& cached_local(std::time_t sec)
{
    thread_local CachedTm c;
    if (c.sec != sec) {
        localtime_r(&sec, &c.tm);
        c.sec = sec;
    }
    return c.tm;
}

const std::tm& cached_utc(std::time_t sec)
{
    thread_local CachedTm c;
    if (c.sec != sec) {
        gmtime_r(&sec, &c.tm);
        c.sec = sec;
    }
    return c.tm;
}

constexpr std::array<const char*, 7> k_days{"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
constexpr std::array<const char*, 12> k_months{"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                               "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

} // namespace

std::string rfc5322_date(TimePoint t)
{
    const std::tm& tm = cached_local(std::chrono::system_clock::to_time_t(t));
    long off = tm.tm_gmtoff / 60;
    char sign = off < 0 ? '-' : '+';
    if (off < 0) {
        off = -off;
    }
    std::string out;
    out.reserve(32);
    out += k_days[static_cast<std::size_t>(tm.tm_wday) % 7];
    out += ", ";
    put_digits(out, tm.tm_mday, 2);
    out += ' ';
    out += k_months[static_cast<std::size_t>(tm.tm_mon) % 12];
    out += ' ';
    put_digits(out, tm.tm_year + 1900LL, 4);
    out += ' ';
    put_digits(out, tm.tm_hour, 2);
    out += ':';
    put_digits(out, tm.tm_min, 2);
    out += ':';
    put_digits(out, tm.tm_sec, 2);
    out += ' ';
    out += sign;
    put_digits(out, off / 60 % 100, 2);
    put_digits(out, off % 60, 2);
    return out;
}

std::string rfc3339_utc(TimePoint t)
{
    const std::tm& tm = cached_utc(std::chrono::system_clock::to_time_t(t));
    std::string out;
    out.reserve(20);
    put_digits(out, tm.tm_year + 1900LL, 4);
    out += '-';
    put_digits(out, tm.tm_mon + 1, 2);
    out += '-';
    put_digits(out, tm.tm_mday, 2);
    out += 'T';
    put_digits(out, tm.tm_hour, 2);
    out += ':';
    put_digits(out, tm.tm_min, 2);
    out += ':';
    put_digits(out, tm.tm_sec, 2);
    out += 'Z';
    return out;
}

std::string id_timestamp(TimePoint t)
{
    auto since = t.time_since_epoch();
    auto sec = std::chrono::duration_cast<std::chrono::seconds>(since);
    auto usec = std::chrono::duration_cast<std::chrono::microseconds>(since - sec).count();
    const std::tm& tm = cached_utc(static_cast<std::time_t>(sec.count()));
    std::string out;
    out.reserve(22);
    put_digits(out, tm.tm_year + 1900LL, 4);
    put_digits(out, tm.tm_mon + 1, 2);
    put_digits(out, tm.tm_mday, 2);
    out += 'T';
    put_digits(out, tm.tm_hour, 2);
    put_digits(out, tm.tm_min, 2);
    put_digits(out, tm.tm_sec, 2);
    out += '-';
    put_digits(out, usec, 6);
    return out;
}

std::optional<TimePoint> parse_rfc3339_utc(std::string_view text)
{
    if (text.size() != 20 || text[4] != '-' || text[7] != '-' || text[10] != 'T' || text[13] != ':' ||
        text[16] != ':' || text[19] != 'Z') {
        return std::nullopt;
    }
    auto num = [&](std::size_t at, std::size_t len, int& out) {
        out = 0;
        for (std::size_t i = at; i < at + len; ++i) {
            if (text[i] < '0' || text[i] > '9') {
                return false;
            }
            out = out * 10 + (text[i] - '0');
        }
        return true;
    };
    std::tm tm{};
    int year = 0, month = 0;
    if (!num(0, 4, year) || !num(5, 2, month) || !num(8, 2, tm.tm_mday) || !num(11, 2, tm.tm_hour) ||
        !num(14, 2, tm.tm_min) || !num(17, 2, tm.tm_sec)) {
        return std::nullopt;
    }
    // The years a system_clock time point holds on every platform we build
    // on (nanoseconds since 1970 in 64 bits end in 2262): a time outside them
    // is refused here rather than overflowing later arithmetic.
    if (year < k_first_year || year > k_last_year || month < 1 || month > 12 || tm.tm_mday < 1 || tm.tm_mday > 31 || tm.tm_hour > 23 || tm.tm_min > 59 ||
        tm.tm_sec > 60) {
        return std::nullopt;
    }
    tm.tm_year = year - 1900;
    tm.tm_mon = month - 1;
    return std::chrono::system_clock::from_time_t(timegm(&tm));
}

std::optional<std::chrono::seconds> parse_duration(std::string_view text)
{
    if (text.empty()) {
        return std::nullopt;
    }
    long long unit = 1;
    switch (text.back()) {
    case 's':
        text.remove_suffix(1);
        break;
    case 'm':
        unit = 60;
        text.remove_suffix(1);
        break;
    case 'h':
        unit = 3600;
        text.remove_suffix(1);
        break;
    case 'd':
        unit = 86400;
        text.remove_suffix(1);
        break;
    default:
        break;
    }
    long long n = 0;
    auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), n);
    if (text.empty() || ec != std::errc() || ptr != text.data() + text.size() || n <= 0 ||
        n > 3650LL * 86400 / unit) {
        return std::nullopt;
    }
    return std::chrono::seconds(n * unit);
}

std::string format_duration(std::chrono::seconds d)
{
    long long s = d.count();
    if (s % 86400 == 0) {
        return std::to_string(s / 86400) + "d";
    }
    if (s % 3600 == 0) {
        return std::to_string(s / 3600) + "h";
    }
    if (s % 60 == 0) {
        return std::to_string(s / 60) + "m";
    }
    return std::to_string(s) + "s";
}

std::string format_age(std::chrono::seconds d)
{
    long long s = d.count() < 0 ? 0 : d.count();
    struct Unit {
        long long size;
        const char* name;
    };
    static constexpr Unit units[] = {{86400, "d"}, {3600, "h"}, {60, "m"}, {1, "s"}};
    for (std::size_t i = 0; i + 1 < std::size(units); ++i) {
        if (s >= units[i].size) {
            long long big = s / units[i].size;
            long long small = s % units[i].size / units[i + 1].size;
            std::string out = std::to_string(big) + units[i].name;
            if (small != 0) {
                out += " " + std::to_string(small) + units[i + 1].name;
            }
            return out;
        }
    }
    return std::to_string(s) + "s";
}

} // namespace smtpspool
