// queue_report: filters, summary, shape and gauges over envelopes.
#include "cli/queue_report.hpp"

#include "base/text.hpp"
#include "delivery/plan.hpp"
#include "delivery/route.hpp"
#include "spool/envelope_json.hpp"

#include <algorithm>
#include <cctype>

namespace smtpspool {
namespace {

std::string lower(std::string_view s)
{
    std::string out(s);
    for (char& c : out) {
        c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    }
    return out;
}

bool contains(std::string_view haystack, std::string_view needle)
{
    return lower(haystack).find(lower(needle)) != std::string::npos;
}

// The domain itself or one under it, ASCII case ignored.
bool in_domain(std::string_view domain, std::string_view wanted)
{
    std::string d = lower(domain);
    std::string w = lower(wanted);
    return d == w || (d.size() > w.size() && d.compare(d.size() - w.size(), w.size(), w) == 0 &&
                      d[d.size() - w.size() - 1] == '.');
}

bool pending(const Recipient& r) { return r.status == RecipientStatus::pending; }

// The distinct domains of the pending recipients, with their count.
std::map<std::string, std::size_t> pending_domains(const Envelope& e)
{
    std::map<std::string, std::size_t> out;
    for (const Recipient& r : e.recipients) {
        if (pending(r)) {
            ++out[recipient_domain(r.address, e.hostname)];
        }
    }
    return out;
}

std::string pad_left(std::string s, std::size_t width)
{
    if (s.size() < width) {
        s.insert(0, width - s.size(), ' ');
    }
    return s;
}

// An age in its largest unit: "45s", "35m", "4h", "12d".
std::string short_age(std::chrono::seconds d)
{
    long long s = d.count();
    if (s < 60) {
        return std::to_string(s) + "s";
    }
    if (s < 3600) {
        return std::to_string(s / 60) + "m";
    }
    if (s < 86400) {
        return std::to_string(s / 3600) + "h";
    }
    return std::to_string(s / 86400) + "d";
}

// Octets as "900", "12K", "3.4M", "1.2G" (K rounded up, the others to a tenth).
std::string volume(std::uint64_t n)
{
    if (n < 1024) {
        return std::to_string(n);
    }
    if (n < (1u << 20)) {
        return std::to_string((n + 1023) / 1024) + "K";
    }
    const bool giga = n >= (1u << 30);
    std::uint64_t tenths = (n * 10 + (giga ? (1u << 29) : (1u << 19))) >> (giga ? 30 : 20);
    return std::to_string(tenths / 10) + "." + std::to_string(tenths % 10) + (giga ? "G" : "M");
}

std::string num(std::uint64_t n) { return std::to_string(n); }

std::string summary_members(const SummaryRow& r)
{
    return "\"messages\":" + num(r.messages) + ",\"recipients\":" + num(r.recipients) + ",\"octets\":" +
           num(r.octets) + ",\"oldest_seconds\":" + num(static_cast<std::uint64_t>(r.oldest.count())) +
           ",\"newest_seconds\":" + num(static_cast<std::uint64_t>(r.newest.count()));
}

std::string counts_json(const ShapeRow& r)
{
    std::string out = "\"total\":" + num(r.total) + ",\"counts\":[";
    for (std::size_t i = 0; i < r.counts.size(); ++i) {
        out += (i == 0 ? "" : ",") + num(r.counts[i]);
    }
    return out + "]";
}

} // namespace

std::chrono::seconds message_age(const Envelope& e, TimePoint now)
{
    auto arrived = parse_rfc3339_utc(e.received_at);
    if (!arrived || *arrived > now) {
        return std::chrono::seconds(0);
    }
    return std::chrono::duration_cast<std::chrono::seconds>(now - *arrived);
}

bool MessageFilter::names(const Recipient& r, const Envelope& e) const
{
    return pending(r) && (!recipient || contains(r.address, *recipient)) &&
           (!domain || in_domain(recipient_domain(r.address, e.hostname), *domain));
}

bool MessageFilter::matches(const Envelope& e, TimePoint now) const
{
    if (held && !e.held) {
        return false;
    }
    if (sender && !(*sender == "<>" ? e.mail_from.empty() : contains(e.mail_from, *sender))) {
        return false;
    }
    if (recipient && std::none_of(e.recipients.begin(), e.recipients.end(), [&](const Recipient& r) {
            return pending(r) && contains(r.address, *recipient);
        })) {
        return false;
    }
    if (domain && std::none_of(e.recipients.begin(), e.recipients.end(), [&](const Recipient& r) {
            return pending(r) && in_domain(recipient_domain(r.address, e.hostname), *domain);
        })) {
        return false;
    }
    if (older_than || younger_than) {
        std::chrono::seconds age = message_age(e, now);
        if ((older_than && age <= *older_than) || (younger_than && age >= *younger_than)) {
            return false;
        }
    }
    return true;
}

void QueueSummary::add(const Envelope& e, TimePoint now)
{
    const std::chrono::seconds age = message_age(e, now);
    auto count = [&](SummaryRow& row, std::size_t recipients) {
        row.oldest = row.messages == 0 ? age : std::max(row.oldest, age);
        row.newest = row.messages == 0 ? age : std::min(row.newest, age);
        ++row.messages;
        row.recipients += recipients;
        row.octets += e.size;
    };
    std::size_t all = 0;
    for (const auto& [domain, n] : pending_domains(e)) {
        SummaryRow& row = m_domains[domain];
        row.domain = domain;
        count(row, n);
        all += n;
    }
    count(m_total, all);
}

std::vector<SummaryRow> QueueSummary::rows() const
{
    std::vector<SummaryRow> out;
    for (const auto& [domain, row] : m_domains) {
        out.push_back(row);
    }
    return out;
}

std::string format_summary(const QueueSummary& summary, bool utf8)
{
    auto shown = utf8 ? text::terminal_text_utf8 : text::terminal_text;
    auto line = [&](const SummaryRow& r, const std::string& name) {
        return pad_left(num(r.messages), 8) + " " + pad_left(num(r.recipients), 10) + " " + pad_left(volume(r.octets), 7) +
               " " + pad_left(short_age(r.oldest), 6) + " " + pad_left(short_age(r.newest), 6) + "  " + name + "\n";
    };
    std::string out = "Messages Recipients  Volume Oldest Newest  Domain\n";
    for (const SummaryRow& r : summary.rows()) {
        out += line(r, shown(r.domain));
    }
    out += std::string(56, '-') + "\n";
    out += line(summary.total(), "TOTAL");
    return out;
}

std::string summary_json(const QueueSummary& summary)
{
    std::string out = "{\"domains\":[";
    bool first = true;
    for (const SummaryRow& r : summary.rows()) {
        out += std::string(first ? "" : ",") + "{\"domain\":" + json_string(r.domain) + "," + summary_members(r) + "}";
        first = false;
    }
    return out + "],\"total\":{" + summary_members(summary.total()) + "}}\n";
}

void QueueShape::add(const Envelope& e, TimePoint now)
{
    const long minutes = static_cast<long>(message_age(e, now).count() / 60);
    std::size_t bucket = 0;
    while (bucket < k_shape_minutes.size() && minutes >= k_shape_minutes[bucket]) {
        ++bucket;
    }
    for (const auto& [domain, n] : pending_domains(e)) {
        ShapeRow& row = m_domains[domain];
        row.domain = domain;
        row.total += n;
        row.counts[bucket] += n;
        m_total.total += n;
        m_total.counts[bucket] += n;
    }
}

std::vector<ShapeRow> QueueShape::rows() const
{
    std::vector<ShapeRow> out;
    for (const auto& [domain, row] : m_domains) {
        out.push_back(row);
    }
    std::stable_sort(out.begin(), out.end(), [](const ShapeRow& a, const ShapeRow& b) { return a.total > b.total; });
    return out;
}

std::string format_shape(const QueueShape& shape, bool utf8)
{
    auto shown = utf8 ? text::terminal_text_utf8 : text::terminal_text;
    std::vector<std::pair<std::string, const ShapeRow*>> lines{{"TOTAL", &shape.total()}};
    std::vector<ShapeRow> rows = shape.rows();
    for (const ShapeRow& r : rows) {
        lines.emplace_back(shown(r.domain), &r);
    }
    std::size_t width = 5;
    for (const auto& [name, row] : lines) {
        width = std::max(width, name.size());
    }
    std::string out = pad_left("", width) + pad_left("T", 7);
    for (long m : k_shape_minutes) {
        out += pad_left(num(static_cast<std::uint64_t>(m)), 6);
    }
    out += pad_left(num(static_cast<std::uint64_t>(k_shape_minutes.back())) + "+", 6) + "\n";
    for (const auto& [name, row] : lines) {
        out += pad_left(name, width) + pad_left(num(row->total), 7);
        for (std::size_t c : row->counts) {
            out += pad_left(num(c), 6);
        }
        out += "\n";
    }
    return out;
}

std::string shape_json(const QueueShape& shape)
{
    std::string out = "{\"bucket_minutes\":[";
    for (std::size_t i = 0; i < k_shape_minutes.size(); ++i) {
        out += (i == 0 ? "" : ",") + num(static_cast<std::uint64_t>(k_shape_minutes[i]));
    }
    out += "],\"domains\":[";
    bool first = true;
    for (const ShapeRow& r : shape.rows()) {
        out += std::string(first ? "" : ",") + "{\"domain\":" + json_string(r.domain) + "," + counts_json(r) + "}";
        first = false;
    }
    return out + "],\"total\":{" + counts_json(shape.total()) + "}}\n";
}

void QueueStats::add(const Envelope& e, TimePoint now, std::chrono::seconds max_queue_time)
{
    if (e.held) {
        ++held;
    } else if (message_due(e, now) || message_expired_age(e, now, max_queue_time)) {
        ++due;
    } else {
        ++waiting;
    }
    for (const Recipient& r : e.recipients) {
        ++(r.status == RecipientStatus::pending ? pending : r.status == RecipientStatus::delivered ? delivered : failed);
    }
    octets += e.size;
    oldest = std::max(oldest, message_age(e, now));
    notices += e.mail_from.empty() ? 1 : 0;
}

std::string prometheus_text(const QueueStats& s, std::string_view spool)
{
    const std::string label = "spool=\"" + text::metric_label_value(spool) + "\"";
    std::string out;
    auto metric = [&](const char* name, const char* help) {
        out += std::string("# HELP ") + name + " " + help + "\n# TYPE " + name + " gauge\n";
    };
    auto sample = [&](const char* name, std::uint64_t value, const char* key = nullptr, const char* v = nullptr) {
        out += std::string(name) + "{" + label;
        if (key != nullptr) {
            out += std::string(",") + key + "=\"" + v + "\"";
        }
        out += "} " + num(value) + "\n";
    };
    metric("smtpspool_queue_messages",
           "Messages in the queue by state: due (a runq takes them up now), waiting (not due yet), held (on hold), "
           "unreadable (the envelope cannot be read).");
    sample("smtpspool_queue_messages", s.due, "state", "due");
    sample("smtpspool_queue_messages", s.waiting, "state", "waiting");
    sample("smtpspool_queue_messages", s.held, "state", "held");
    sample("smtpspool_queue_messages", s.unreadable, "state", "unreadable");
    metric("smtpspool_queue_recipients", "Recipients of the queued messages by status.");
    sample("smtpspool_queue_recipients", s.pending, "status", "pending");
    sample("smtpspool_queue_recipients", s.delivered, "status", "delivered");
    sample("smtpspool_queue_recipients", s.failed, "status", "failed");
    metric("smtpspool_queue_size_bytes", "Octets of the queued messages (message.eml).");
    sample("smtpspool_queue_size_bytes", s.octets);
    metric("smtpspool_queue_oldest_message_age_seconds",
           "Seconds since the oldest queued message arrived; 0 when the queue is empty.");
    sample("smtpspool_queue_oldest_message_age_seconds", static_cast<std::uint64_t>(s.oldest.count()));
    metric("smtpspool_queue_notice_messages",
           "Queued messages from the null sender: delivery status notifications (bounces).");
    sample("smtpspool_queue_notice_messages", s.notices);
    return out;
}

std::string stats_json(const QueueStats& s, std::string_view spool)
{
    return "{\"spool\":" + json_string(spool) + ",\"messages\":{\"due\":" + num(s.due) + ",\"waiting\":" +
           num(s.waiting) + ",\"held\":" + num(s.held) + ",\"unreadable\":" + num(s.unreadable) +
           "},\"recipients\":{\"pending\":" + num(s.pending) + ",\"delivered\":" + num(s.delivered) +
           ",\"failed\":" + num(s.failed) + "},\"octets\":" + num(s.octets) +
           ",\"oldest_seconds\":" + num(static_cast<std::uint64_t>(s.oldest.count())) +
           ",\"notices\":" + num(s.notices) + "}\n";
}

} // namespace smtpspool
