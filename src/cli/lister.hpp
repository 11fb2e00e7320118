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

std::string format_table(const std::vector<QueueEntry>& entries);
std::string format_json_lines(const std::vector<QueueEntry>& entries);

} // namespace smtpspool
