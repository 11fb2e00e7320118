// lister: the queue listing of `smtpspool mailq`, as a sendmail-style table or
// JSON lines. Pure formatting; untrusted text is escaped for the terminal.
#pragma once

#include "model/envelope.hpp"

#include <optional>
#include <string>
#include <vector>

namespace smtpspool {

struct QueueEntry {
    std::string id;
    std::optional<Envelope> envelope; // nullopt when it could not be read
    std::string error;                // why not
};

// The table; `utf8` when the terminal's locale is UTF-8: addresses and
// errors keep their UTF-8 (text::terminal_text_utf8), else every octet outside
// printable ASCII is escaped (text::terminal_text).
std::string format_table(const std::vector<QueueEntry>& entries, bool utf8 = false);
std::string format_json_lines(const std::vector<QueueEntry>& entries);

} // namespace smtpspool
