// lister: column layout of the table, escaping, JSON lines.
#include "cli/lister.hpp"

#include "base/text.hpp"
#include "spool/envelope_json.hpp"

#include <cstdio>

namespace smtpspool {
namespace {

std::string pad_right(std::string s, std::size_t width)
{
    if (s.size() < width) {
        s.append(width - s.size(), ' ');
    }
    return s;
}

std::string pad_left(std::string s, std::size_t width)
{
    if (s.size() < width) {
        s.insert(0, width - s.size(), ' ');
    }
    return s;
}

} // namespace

std::string format_table(const std::vector<QueueEntry>& entries, bool utf8)
{
    auto shown = utf8 ? text::terminal_text_utf8 : text::terminal_text;
    if (entries.empty()) {
        return "Mail queue is empty\n";
    }
    std::size_t id_width = 10;
    for (const QueueEntry& e : entries) {
        id_width = std::max(id_width, e.id.size());
    }
    const std::size_t indent = id_width + 1 + 10 + 1 + 20 + 1;
    std::string out = pad_right("-Queue ID-", id_width) + " " + pad_left("--Size--", 10) + " " +
                      pad_right("----Arrival Time----", 20) + " " + "-Sender/Recipient-\n";
    std::uint64_t total = 0;
    std::size_t readable = 0;
    for (const QueueEntry& e : entries) {
        if (!e.envelope) {
            out += pad_right(e.id, id_width) + " (unreadable: " + shown(e.error) + ")\n";
            continue;
        }
        const Envelope& env = *e.envelope;
        total += env.size;
        ++readable;
        out += pad_right(e.id, id_width) + " " + pad_left(std::to_string(env.size), 10) + " " +
               pad_right(shown(env.received_at), 20) + " <" + shown(env.mail_from) + ">\n";
        if (env.held) {
            out += std::string(indent, ' ') + "(held: not delivered until released)\n";
        }
        if (env.attempts > 0) {
            out += std::string(indent, ' ') + "(" + std::to_string(env.attempts) +
                   (env.attempts == 1 ? " delivery run" : " delivery runs");
            if (env.last_attempt) {
                out += ", last " + shown(*env.last_attempt);
            }
            if (env.next_attempt) {
                out += ", next " + shown(*env.next_attempt);
            }
            out += ")\n";
        }
        for (const Recipient& r : env.recipients) {
            out += std::string(indent, ' ') + "<" + shown(r.address) + "> " + std::string(status_name(r.status));
            if (r.attempts > 0) {
                out += ", " + std::to_string(r.attempts) + (r.attempts == 1 ? " attempt" : " attempts");
            }
            if (r.last_error) {
                out += ": " + shown(*r.last_error);
            }
            if (r.last_hop && r.status != RecipientStatus::delivered) {
                out += " (last tried " + shown(*r.last_hop) + ")";
            }
            out += "\n";
        }
    }
    out += "-- " + std::to_string((total + 1023) / 1024) + " Kbytes in " + std::to_string(readable) +
           (readable == 1 ? " message" : " messages");
    if (readable != entries.size()) {
        out += ", " + std::to_string(entries.size() - readable) + " unreadable";
    }
    out += "\n";
    return out;
}

std::string format_json_lines(const std::vector<QueueEntry>& entries)
{
    std::string out;
    for (const QueueEntry& e : entries) {
        if (e.envelope) {
            out += text::json_text(envelope_to_json_line(*e.envelope)) + "\n";
        } else {
            out += text::json_text(json_object_line({{"id", e.id}, {"error", e.error}})) + "\n";
        }
    }
    return out;
}

} // namespace smtpspool
