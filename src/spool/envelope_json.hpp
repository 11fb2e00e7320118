// envelope_json: envelope.json (schema version 1, smtpspool-spool(5)) read
// and written; the only code that knows JSON. Readers validate every field.
#pragma once

#include "base/result.hpp"
#include "model/envelope.hpp"

#include <initializer_list>
#include <string>
#include <utility>
#include <string_view>

namespace smtpspool {

// Keys in a stable order, "version" first; ends with a newline.
std::string envelope_to_json(const Envelope& envelope);

// Rejects unknown versions, missing keys and values of the wrong type or range.
Result<Envelope> envelope_from_json(std::string_view text);

// One envelope as a single JSON line (for mailq --json).
std::string envelope_to_json_line(const Envelope& envelope);

// A one-line JSON object of string members, in the order given.
std::string json_object_line(std::initializer_list<std::pair<const char*, std::string_view>> members);

// A JSON string literal of `text`, quotes included (broken UTF-8 as U+FFFD):
// for the reports that other layers write as JSON (mailq --summary, stats).
std::string json_string(std::string_view text);

} // namespace smtpspool
