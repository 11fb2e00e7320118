// text: the named sanitizers of untrusted text. Each says what it guarantees
// of its result; code that prints or stores text from a client, a child
// program or a file picks the one whose contract fits, never a loop of its own.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace smtpspool::text {

// The first line of `text` (up to the first LF), at most `max` octets, with
// every octet outside printable US-ASCII (0x20-0x7e) replaced by '?'. For
// one-line messages naming what a program or a file said.
std::string printable_line(std::string_view text, std::size_t max);

// The last `max` octets of `text`, each control octet (< 0x20, 0x7f) replaced
// by a space, trailing spaces removed. For the end of a program's output
// (where its error usually is), on one line.
std::string printable_tail(std::string_view text, std::size_t max);

// `text` without leading and trailing spaces and tabs.
std::string_view trim(std::string_view text);

} // namespace smtpspool::text
