// clock: the time source the session and spool are given, and the time formats
// they write (RFC 5322 for Received:, RFC 3339 for envelopes, queue ids).
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

namespace smtpspool {

using TimePoint = std::chrono::system_clock::time_point;

class Clock {
public:
    virtual ~Clock() = default;
    virtual TimePoint now() const = 0;
};

class SystemClock final : public Clock {
public:
    TimePoint now() const override { return std::chrono::system_clock::now(); }
};

class FixedClock final : public Clock {
public:
    explicit FixedClock(TimePoint t) : m_t(t) {}
    TimePoint now() const override { return m_t; }
    void advance(std::chrono::microseconds d) { m_t += d; }

private:
    TimePoint m_t;
};

// "Sun, 22 Nov 2026 02:35:25 +0000" in the local zone with a numeric offset.
std::string rfc5322_date(TimePoint t);
// "2026-11-22T02:35:25Z".
std::string rfc3339_utc(TimePoint t);
// "20261122T023525-123456": sortable, [0-9T-] only.
std::string id_timestamp(TimePoint t);
// The inverse of rfc3339_utc (exactly that form, years k_first_year to
// k_last_year); nullopt for anything else.
std::optional<TimePoint> parse_rfc3339_utc(std::string_view text);
inline constexpr int k_first_year = 1970;
inline constexpr int k_last_year = 2199;
// "90s", "30m", "4h", "5d" or plain seconds; nullopt when malformed or zero.
std::optional<std::chrono::seconds> parse_duration(std::string_view text);
// The shortest of those forms that is exact: 1800 s -> "30m".
std::string format_duration(std::chrono::seconds d);
// An elapsed time in its two largest units, the smaller left out when zero:
// "13m 11s", "5d 2h", "3h", "45s".
std::string format_age(std::chrono::seconds d);

} // namespace smtpspool
