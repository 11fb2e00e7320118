// webhook: URL, body framing, key, signature and answers of the http transports.
#include "delivery/webhook.hpp"

#include "base/sha256.hpp"
#include "base/text.hpp"
#include "delivery/route.hpp"

#include <algorithm>
#include <charconv>

namespace smtpspool {

std::optional<WebhookUrl> parse_webhook_url(std::string_view text, std::string& why)
{
    WebhookUrl url;
    if (std::any_of(text.begin(), text.end(), [](char c) { return c <= 0x20 || c >= 0x7f; })) {
        why = "a URL of printable ASCII without spaces";
        return std::nullopt;
    }
    std::string_view rest;
    if (text.substr(0, 7) == "http://") {
        rest = text.substr(7);
    } else if (text.substr(0, 8) == "https://") {
        url.https = true;
        url.port = 443;
        rest = text.substr(8);
    } else {
        why = "expected http://HOST[:PORT][/PATH] or https://...";
        return std::nullopt;
    }
    if (rest.find('#') != std::string_view::npos) {
        why = "a fragment (#) is never sent: leave it out";
        return std::nullopt;
    }
    std::size_t end = rest.find_first_of("/?");
    std::string_view authority = rest.substr(0, end);
    if (authority.find('@') != std::string_view::npos) {
        why = "no credentials in the URL (it is logged and shown): requests are signed with --http-secret-file";
        return std::nullopt;
    }
    if (!parse_host_port(authority, url.host, url.port, why)) {
        return std::nullopt;
    }
    url.target = end == std::string_view::npos ? "/" : std::string(rest.substr(end));
    if (url.target.front() == '?') {
        url.target.insert(0, "/");
    }
    return url;
}

Envelope envelope_for(const Envelope& envelope, const std::vector<std::size_t>& recipients)
{
    Envelope out = envelope;
    out.recipients.clear();
    for (std::size_t i : recipients) {
        out.recipients.push_back(envelope.recipients.at(i));
    }
    return out;
}

std::string MultipartFrame::content_type() const { return "multipart/form-data; boundary=" + boundary; }

MultipartFrame multipart_frame(std::string_view envelope_json, std::string_view boundary)
{
    MultipartFrame f;
    f.boundary = std::string(boundary);
    f.head = "--" + f.boundary +
             "\r\n"
             "Content-Disposition: form-data; name=\"envelope\"\r\n"
             "Content-Type: application/json\r\n"
             "\r\n" +
             std::string(envelope_json) + "\r\n--" + f.boundary +
             "\r\n"
             "Content-Disposition: form-data; name=\"message\"; filename=\"message.eml\"\r\n"
             "Content-Type: message/rfc822\r\n"
             "\r\n";
    f.tail = "\r\n--" + f.boundary + "--\r\n";
    return f;
}

std::string signature_prefix(std::time_t timestamp) { return std::to_string(timestamp) + "."; }

std::string signature_value(std::string_view hmac_hex) { return "sha256=" + std::string(hmac_hex); }

Outcome classify_status(long status)
{
    if (status >= 200 && status <= 299) {
        return Outcome::delivered;
    }
    if (status == 408 || status == 429 || (status >= 500 && status <= 599)) {
        return Outcome::temporary;
    }
    if (status >= 400 && status <= 499) {
        return Outcome::permanent;
    }
    return Outcome::temporary;
}

namespace {

std::optional<int> number(std::string_view s, std::size_t digits)
{
    if (s.size() != digits || !std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; })) {
        return std::nullopt;
    }
    int v = 0;
    std::from_chars(s.data(), s.data() + s.size(), v);
    return v;
}

// Days since 1970-01-01 of a proleptic Gregorian date (month 1-12).
std::int64_t days_from_civil(std::int64_t y, unsigned m, unsigned d)
{
    y -= m <= 2;
    std::int64_t era = (y >= 0 ? y : y - 399) / 400;
    auto yoe = static_cast<unsigned>(y - era * 400);
    unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + static_cast<std::int64_t>(doe) - 719468;
}

} // namespace

std::optional<std::chrono::seconds> parse_retry_after(std::string_view value, std::time_t now)
{
    value = text::trim_space(value);
    if (!value.empty() && std::all_of(value.begin(), value.end(), [](char c) { return c >= '0' && c <= '9'; })) {
        std::uint64_t v = 0;
        auto [ptr, ec] = std::from_chars(value.data(), value.data() + value.size(), v);
        if (ec != std::errc() || ptr != value.data() + value.size()) {
            v = UINT32_MAX; // too large to count: as long as anyone waits
        }
        return std::chrono::seconds(std::min<std::uint64_t>(v, UINT32_MAX));
    }
    // IMF-fixdate: "Sun, 06 Nov 1994 08:49:37 GMT" (29 characters).
    static constexpr std::string_view k_days[] = {"Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"};
    static constexpr std::string_view k_months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                                    "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    if (value.size() != 29 || value.substr(3, 2) != ", " || value[7] != ' ' || value[11] != ' ' || value[16] != ' ' ||
        value[19] != ':' || value[22] != ':' || value.substr(25) != " GMT" ||
        std::find(std::begin(k_days), std::end(k_days), value.substr(0, 3)) == std::end(k_days)) {
        return std::nullopt;
    }
    auto month = std::find(std::begin(k_months), std::end(k_months), value.substr(8, 3));
    auto day = number(value.substr(5, 2), 2);
    auto year = number(value.substr(12, 4), 4);
    auto hour = number(value.substr(17, 2), 2);
    auto minute = number(value.substr(20, 2), 2);
    auto second = number(value.substr(23, 2), 2);
    if (month == std::end(k_months) || !day || !year || !hour || !minute || !second || *day < 1 || *day > 31 ||
        *hour > 23 || *minute > 59 || *second > 60) {
        return std::nullopt;
    }
    auto m = static_cast<unsigned>(month - std::begin(k_months) + 1);
    std::int64_t t = days_from_civil(*year, m, static_cast<unsigned>(*day)) * 86400 + *hour * 3600 + *minute * 60 +
                     *second;
    return std::chrono::seconds(t > now ? std::min<std::int64_t>(t - now, UINT32_MAX) : 0);
}

std::string http_detail(long status, std::string_view reason, std::string_view body)
{
    std::string out = "HTTP " + std::to_string(status);
    std::string_view r = text::trim_space(reason);
    if (!r.empty()) {
        out += " " + text::detail_line(r, 80);
    }
    std::string first;
    bool space = false;
    for (char c : body.substr(0, k_webhook_body_kept)) {
        bool blank = static_cast<unsigned char>(c) < 0x20 || c == 0x7f || c == ' ';
        if (blank) {
            space = !first.empty();
            continue;
        }
        if (space) {
            first += ' ';
            space = false;
        }
        first += c;
    }
    if (!first.empty()) {
        out += ": " + text::detail_line(first, k_webhook_body_kept);
    }
    return out;
}

} // namespace smtpspool
