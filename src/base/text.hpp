// text: the named sanitizers of untrusted text. Each says what it guarantees
// of its result; code that prints or stores text from a client, a server, a
// child program or a file picks the one whose contract fits, never a loop of
// its own.
//
//   function              for                         bad octets      bound
//   header_word           a word of a trace header    '?' (1 for 1)   255
//   header_value          a header field body         ' ' (1 for 1)   900, UTF-8 cut
//   detail_line           a one-line error detail     '?' (1 for 1)   max, UTF-8 cut + "..."
//   printable_line        one line of a program/file  '?' (1 for 1)   max, first line only
//   printable_tail        the end of a program's out  ' ' (1 for 1)   last max, no trailing ' '
//   log_value             a key=value log value       \xNN, quoted    none
//   json_string           a JSON string (a log line)  \uNNNN, \xNN    none
//   terminal_text         a listing on a terminal     \xNN            none
//   json_text             a JSON text for a terminal  \uNNNN          none
//   terminal_text_utf8    the same, UTF-8 locale      \xNN            none
//   log_line_ascii        a log line, other locales   \xNN            none
//   file_name_component   one path component          '_' (1 for 1)   none
//   metric_label_value    a Prometheus label value    '?' (1 for 1)   none
//
// None of them returns CR, LF or NUL. "Invisible controls" (invisible_control)
// are the UTF-8 forms of the C1 controls and of the characters that reorder
// or break a line: none of these sanitizers returns one either.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace smtpspool::text {

inline constexpr std::size_t k_max_header_word = 255;
inline constexpr std::size_t k_max_header_value = 900;

// The length of the invisible control that starts at text[i], 0 if none: the
// UTF-8 form (2 or 3 octets) of a C1 control (U+0080-U+009F), a bidirectional
// formatting character (U+061C, U+200E, U+200F, U+202A-U+202E, U+2066-U+2069)
// or a line or paragraph separator (U+2028, U+2029). A terminal acts on the
// first kind (U+009B is CSI, the start of an escape sequence); the others
// make text display in an order, or on lines, other than the one it has.
std::size_t invisible_control(std::string_view text, std::size_t i);

// True when `text` holds an invisible control.
bool has_invisible_control(std::string_view text);

// A word of a header we compose from what a client said (the HELO name, the
// peer's host name in Received:; the name echoed in the EHLO reply): the first
// 255 octets of `text`, each octet that is not printable US-ASCII (0x21-0x7e)
// or is one of the comment, literal and quoting delimiters ( ) [ ] \ ; "
// replaced by '?'. The result cannot end the line, open a comment or a domain
// literal, or add a clause, and keeps its line under RFC 5322's 998 octets.
std::string header_word(std::string_view text);

// The body of a header field (or a delivery-status field, or a line of a
// bounce's text part) that holds an address or a server's reply: at most 900
// octets (cut before an incomplete UTF-8 character), each control octet
// (< 0x20, 0x7f) replaced by a space. Octets >= 0x80 are kept (SMTPUTF8
// addresses, UTF-8 replies).
std::string header_value(std::string_view text);

// A one-line detail for a log, a reply or an envelope (what a server or a
// system call said): each control octet (< 0x20, 0x7f) replaced by '?',
// octets >= 0x80 kept. Longer than `max`: cut to max - 3 octets, before an
// incomplete UTF-8 character, and "..." appended (at most `max` octets in all).
std::string detail_line(std::string_view text, std::size_t max = std::string_view::npos);

// The first line of `text` (up to the first LF), at most `max` octets, with
// every octet outside printable US-ASCII (0x20-0x7e) replaced by '?'. For
// one-line messages naming what a program or a file said.
std::string printable_line(std::string_view text, std::size_t max);

// The last `max` octets of `text`, each control octet (< 0x20, 0x7f) replaced
// by a space, trailing spaces removed. For the end of a program's output
// (where its error usually is), on one line.
std::string printable_tail(std::string_view text, std::size_t max);

// A value of a key=value log line: as it is when it is non-empty printable
// US-ASCII without space, '"', '=' or '\'; otherwise in double quotes, with
// '"' and '\' escaped by '\', each well-formed UTF-8 character that is not a
// control (see terminal_text_utf8) as it is, and every other octet outside
// 0x20-0x7e written \xNN (lower-case hex). A reader splits the line on spaces
// outside quotes; octets >= 0x80 appear only inside quotes.
std::string log_value(std::string_view text);
void append_log_value(std::string& out, std::string_view text);

// `text` as a JSON string, double quotes included (a value of a JSON log
// line): '"' and '\' escaped by '\'; each C0 control, DEL and invisible
// control (invisible_control) written as a \u escape of its code point;
// every other well-formed UTF-8 character as it is, or as \u escapes
// (UTF-16, a surrogate pair above U+FFFF) when `ascii`; and each octet that
// is not part of a well-formed character as the four characters \xNN
// (lower-case hex) of the decoded string, a backslash of the text as \x5c
// (so the decoded value can be read back to the octets, and a reader's JSON
// parser never sees invalid UTF-8). The result is valid JSON (RFC 8259) and
// valid UTF-8, printable US-ASCII when `ascii`, and holds no raw control.
std::string json_string(std::string_view text, bool ascii = false);
void append_json_string(std::string& out, std::string_view text, bool ascii = false);

// Text for a terminal (the queue listing): printable US-ASCII as it is; '\'
// and every octet outside 0x20-0x7e written \xNN (lower-case hex), so the
// result cannot drive the terminal and can be decoded back.
std::string terminal_text(std::string_view text);

// A JSON text (an object on one line, as a JSON writer made it) for a
// terminal: DEL and each invisible control written as a \u escape (\u007f,
// \u009b, \u202e), everything else as it is. A JSON writer escapes the C0
// controls itself; these others are valid raw in a JSON string, so the result
// decodes to the same value. JSON's own syntax is ASCII: the octets replaced
// can only be inside strings.
std::string json_text(std::string_view json);

// Text for a terminal whose locale's character set is UTF-8 (the queue
// listing, a log on standard error): printable US-ASCII and each well-formed
// UTF-8 character (RFC 3629: no overlong form, no surrogate, at most
// U+10FFFF) as it is, except the invisible controls (invisible_control: C1,
// bidirectional formatting, line and paragraph separators). Those, '\', the
// C0 controls, DEL
// and every octet that is not part of a well-formed character are written
// \xNN (lower-case hex, each octet), so the result cannot drive the terminal
// or reorder what follows it, and can be decoded back.
std::string terminal_text_utf8(std::string_view text);

// A log line (of LogLine, whose values are log_value's) for a reader whose
// locale is not UTF-8: every octet >= 0x80 written \xNN, as log_value wrote
// them before UTF-8 was kept. The result is printable US-ASCII when the line
// is a LogLine's.
std::string log_line_ascii(std::string_view line);

// One component of a file path made from an address or a host name (a
// maildir folder, a unique file name): '"' dropped; '/', '\' and control
// octets (< 0x20, 0x7f) replaced by '_'; leading dots replaced by '_'; "_"
// for an empty result. Never empty, never ".", ".." or a hidden name, never a
// path separator. Octets >= 0x80 are kept; the length is the caller's to bound.
std::string file_name_component(std::string_view text);

// A label value of the Prometheus text exposition format, between its
// double quotes: '\', '"' and LF escaped as the format says (\\, \", \n); each
// other control octet (< 0x20, 0x7f), each octet that is not part of
// well-formed UTF-8 and each invisible control's octets replaced by '?';
// well-formed UTF-8 kept. The result is valid UTF-8 on one line.
std::string metric_label_value(std::string_view text);

// `text` without leading and trailing spaces and tabs (RFC 5234 WSP).
std::string_view trim(std::string_view text);

// `text` without leading and trailing spaces, tabs, CRs and LFs: a value that
// may carry a line end (a command-line argument, an unfolded header field).
std::string_view trim_space(std::string_view text);

} // namespace smtpspool::text
