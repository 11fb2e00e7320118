// route: parsing of transports, routes and schedules; longest-domain matching.
#include "delivery/route.hpp"

#include "base/cidr.hpp"
#include "base/clock.hpp"
#include "delivery/webhook.hpp"
#include "smtp/smtp_address.hpp"

#include <algorithm>
#include <charconv>

namespace smtpspool {

bool parse_host_port(std::string_view text, std::string& host, std::uint16_t& port, std::string& why)
{
    std::string_view rest;
    if (!text.empty() && text.front() == '[') {
        auto close = text.find(']');
        if (close == std::string_view::npos) {
            why = "missing ] after an IPv6 address";
            return false;
        }
        host = std::string(text.substr(1, close - 1));
        rest = text.substr(close + 1);
        if (!host.empty() && !parse_ip(host)) {
            why = "not an IP address in brackets";
            return false;
        }
    } else {
        if (std::count(text.begin(), text.end(), ':') > 1) {
            why = "an IPv6 address needs brackets ([ADDRESS] or [ADDRESS]:PORT, as in [::1]:25)";
            return false;
        }
        auto colon = text.find(':');
        host = std::string(text.substr(0, colon));
        rest = colon == std::string_view::npos ? std::string_view{} : text.substr(colon);
        if (!host.empty() && !is_domain(host) && !parse_ip(host)) {
            why = "not a host name or address";
            return false;
        }
    }
    if (host.empty()) {
        why = "missing host";
        return false;
    }
    if (!rest.empty()) {
        if (rest.front() != ':') {
            why = "junk after the host";
            return false;
        }
        rest.remove_prefix(1);
        unsigned p = 0;
        auto [ptr, ec] = std::from_chars(rest.data(), rest.data() + rest.size(), p);
        if (rest.empty() || ec != std::errc() || ptr != rest.data() + rest.size() || p == 0 || p > 65535) {
            why = "bad port '" + std::string(rest) + "'";
            return false;
        }
        port = static_cast<std::uint16_t>(p);
    }
    return true;
}

namespace {

// %XX decoded; false for a bad escape or a decoded control character.
bool percent_decode(std::string_view text, std::string& out)
{
    out.clear();
    for (std::size_t i = 0; i < text.size(); ++i) {
        char c = text[i];
        if (c == '%') {
            unsigned v = 0;
            if (i + 2 >= text.size()) {
                return false;
            }
            auto [ptr, ec] = std::from_chars(text.data() + i + 1, text.data() + i + 3, v, 16);
            if (ec != std::errc() || ptr != text.data() + i + 3) {
                return false;
            }
            c = static_cast<char>(v);
            i += 2;
        }
        if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
            return false;
        }
        out += c;
    }
    return true;
}

// "//[USER@]HOST[:PORT][/VHOST][?exchange=E&routing_key=K]" after "amqp:".
bool parse_amqp(std::string_view arg, TransportSpec& t, std::string& why)
{
    if (arg.substr(0, 2) != "//") {
        why = "amqp needs //[USER@]HOST[:PORT][/VHOST][?exchange=E&routing_key=K]";
        return false;
    }
    arg.remove_prefix(2);
    std::string_view query;
    if (auto q = arg.find('?'); q != std::string_view::npos) {
        query = arg.substr(q + 1);
        arg = arg.substr(0, q);
    }
    std::string_view path;
    if (auto slash = arg.find('/'); slash != std::string_view::npos) {
        path = arg.substr(slash + 1);
        arg = arg.substr(0, slash);
    }
    if (auto at = arg.rfind('@'); at != std::string_view::npos) {
        std::string_view user = arg.substr(0, at);
        if (user.find(':') != std::string_view::npos) {
            why = "amqp: no password in a route (it would be in logs); put it in --amqp-credentials-file";
            return false;
        }
        if (!percent_decode(user, t.user) || t.user.empty() || t.user.size() > 255) {
            why = "amqp: bad user";
            return false;
        }
        arg = arg.substr(at + 1);
    }
    t.port = 5672;
    if (!parse_host_port(arg, t.host, t.port, why)) {
        why = "amqp: " + why;
        return false;
    }
    if (!path.empty()) {
        if (!percent_decode(path, t.vhost) || t.vhost.size() > 255) {
            why = "amqp: bad virtual host";
            return false;
        }
    }
    bool seen_exchange = false;
    bool seen_key = false;
    while (!query.empty()) {
        auto amp = query.find('&');
        std::string_view item = query.substr(0, amp);
        query = amp == std::string_view::npos ? std::string_view{} : query.substr(amp + 1);
        auto eq = item.find('=');
        std::string_view name = item.substr(0, eq);
        std::string value;
        if (eq == std::string_view::npos || !percent_decode(item.substr(eq + 1), value) || value.size() > 255) {
            why = "amqp: bad parameter '" + std::string(item) + "'";
            return false;
        }
        if (name == "exchange" && !seen_exchange) {
            t.exchange = std::move(value);
            seen_exchange = true;
        } else if (name == "routing_key" && !seen_key) {
            t.routing_key = std::move(value);
            seen_key = true;
        } else {
            why = "amqp: unknown or repeated parameter '" + std::string(name) + "' (exchange, routing_key)";
            return false;
        }
    }
    return true;
}

} // namespace

std::optional<TransportSpec> parse_transport(std::string_view text, std::string& why)
{
    TransportSpec t;
    t.text = std::string(text);
    auto colon = text.find(':');
    std::string_view kind = text.substr(0, colon);
    std::string_view arg = colon == std::string_view::npos ? std::string_view{} : text.substr(colon + 1);
    if (kind == "smtp" || kind == "smtps") {
        t.kind = TransportKind::smtp;
        // RFC 8314 §3.3: implicit TLS, submissions on port 465.
        t.tls_on_connect = kind == "smtps";
        t.port = t.tls_on_connect ? 465 : 25;
        if (!parse_host_port(arg, t.host, t.port, why)) {
            return std::nullopt;
        }
    } else if (kind == "mx") {
        t.kind = TransportKind::mx;
        if (colon != std::string_view::npos) {
            why = "mx takes no argument (its port is --mx-port)";
            return std::nullopt;
        }
    } else if (kind == "maildir") {
        t.kind = TransportKind::maildir;
        if (arg.empty() || arg.front() != '/') {
            why = "maildir needs an absolute path";
            return std::nullopt;
        }
        t.path = std::string(arg);
    } else if (kind == "pipe") {
        t.kind = TransportKind::pipe;
        if (arg.empty()) {
            why = "pipe needs a command";
            return std::nullopt;
        }
        t.command = std::string(arg);
    } else if (kind == "http" || kind == "https") {
        t.kind = TransportKind::http;
        if (!parse_webhook_url(text, why)) {
            return std::nullopt;
        }
        t.url = std::string(text);
    } else if (kind == "amqp") {
        t.kind = TransportKind::amqp;
        if (!parse_amqp(arg, t, why)) {
            return std::nullopt;
        }
    } else {
        why = "unknown transport '" + std::string(kind) + "' (smtp, smtps, mx, maildir, pipe, amqp, http or https)";
        return std::nullopt;
    }
    return t;
}

std::optional<Route> parse_route(std::string_view text, std::string& why)
{
    auto eq = text.find('=');
    if (eq == std::string_view::npos) {
        why = "expected DOMAIN=TRANSPORT";
        return std::nullopt;
    }
    Route r;
    r.domain = ascii_lower(text.substr(0, eq));
    if (r.domain != "*" && !is_domain(r.domain) && !is_address_literal(r.domain)) {
        why = "not a domain: '" + std::string(text.substr(0, eq)) + "'";
        return std::nullopt;
    }
    auto t = parse_transport(text.substr(eq + 1), why);
    if (!t) {
        return std::nullopt;
    }
    r.transport = std::move(*t);
    return r;
}

std::optional<Route> smarthost_route(std::string_view text, std::string& why)
{
    Route r;
    r.domain = "*";
    r.transport.kind = TransportKind::smtp;
    if (!parse_host_port(text, r.transport.host, r.transport.port, why)) {
        return std::nullopt;
    }
    std::string host = r.transport.host.find(':') != std::string::npos ? "[" + r.transport.host + "]" : r.transport.host;
    r.transport.text = "smtp:" + host + ":" + std::to_string(r.transport.port);
    return r;
}

const Route* find_route(const std::vector<Route>& routes, std::string_view domain)
{
    std::string d = ascii_lower(domain);
    const Route* best = nullptr;
    const Route* fallback = nullptr;
    for (const Route& r : routes) {
        if (r.domain == "*") {
            fallback = fallback ? fallback : &r;
            continue;
        }
        bool exact = d == r.domain;
        bool sub = d.size() > r.domain.size() && d.compare(d.size() - r.domain.size(), r.domain.size(), r.domain) == 0 &&
                   d[d.size() - r.domain.size() - 1] == '.';
        if ((exact || sub) && (best == nullptr || r.domain.size() > best->domain.size())) {
            best = &r;
        }
    }
    return best ? best : fallback;
}

std::string recipient_domain(std::string_view address, std::string_view fallback)
{
    auto at = address.rfind('@');
    if (at == std::string_view::npos) {
        return ascii_lower(fallback);
    }
    return ascii_lower(address.substr(at + 1));
}

std::optional<std::vector<std::chrono::seconds>> parse_schedule(std::string_view text, std::string& why)
{
    std::vector<std::chrono::seconds> out;
    while (true) {
        auto comma = text.find(',');
        std::string_view item = text.substr(0, comma);
        auto d = parse_duration(item);
        if (!d) {
            why = "bad duration '" + std::string(item) + "' (like 90s, 30m, 4h, 5d)";
            return std::nullopt;
        }
        out.push_back(*d);
        if (comma == std::string_view::npos) {
            break;
        }
        text.remove_prefix(comma + 1);
    }
    return out;
}

std::string format_schedule(const std::vector<std::chrono::seconds>& schedule)
{
    std::string out;
    for (auto d : schedule) {
        out += (out.empty() ? "" : ",") + format_duration(d);
    }
    return out;
}

std::chrono::seconds retry_delay(const std::vector<std::chrono::seconds>& schedule, std::uint64_t attempts)
{
    if (schedule.empty()) {
        return std::chrono::seconds(1800);
    }
    std::size_t i = attempts == 0 ? 0 : static_cast<std::size_t>(attempts - 1);
    return schedule[std::min(i, schedule.size() - 1)];
}

std::chrono::seconds next_wait(std::chrono::seconds scheduled, std::chrono::seconds asked,
                               std::optional<std::chrono::seconds> until_expiry)
{
    if (asked <= scheduled) {
        return scheduled;
    }
    if (until_expiry && asked > *until_expiry) {
        return std::max(scheduled, *until_expiry);
    }
    return until_expiry ? asked : scheduled;
}

} // namespace smtpspool
