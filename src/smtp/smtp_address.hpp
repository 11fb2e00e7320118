// smtp_address: the RFC 5321 §4.1.2 Path grammar (with RFC 6531 UTF-8) for
// MAIL and RCPT. Pure: no lookups, no policy; the session decides what to accept.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace smtpspool {

struct Path {
    std::string mailbox; // local@domain without brackets or source route; "" for <>
    std::string local;
    std::string domain; // "" for <> and <postmaster>
    bool non_ascii = false;
};

enum class PathError {
    none,
    syntax,
    too_long,
    invisible_control, // well-formed, but holds a C1 or bidirectional control (text::invisible_control)
};

struct PathParse {
    PathError error = PathError::none;
    std::string why; // for the reply when error != none
    Path path;
    std::size_t end = 0; // index just past '>'
};

enum class PathKind { reverse, forward };

// Parses "<...>" at the start of text. A reverse path may be "<>"; a forward
// path may be "<postmaster>" (any case). Source routes are accepted and dropped.
// A local part or domain that holds an invisible control (a C1 control, a
// bidirectional formatting character, a line separator; the C0 controls and
// DEL are outside the grammar) is PathError::invisible_control.
PathParse parse_path(std::string_view text, PathKind kind);

// One well-formed UTF-8 sequence of 2-4 octets at text[i]; returns its length or 0.
std::size_t utf8_sequence(std::string_view text, std::size_t i);

// RFC 5321 §4.1.2 Domain (LDH labels; U-labels allowed as well-formed UTF-8).
bool is_domain(std::string_view text);

// "[1.2.3.4]" or "[IPv6:...]".
bool is_address_literal(std::string_view text);

// ASCII lower-casing for case-insensitive comparisons of domains and keywords.
std::string ascii_lower(std::string_view text);

// The canonical form of a local part of our own domains, the one form that
// the recipient checks (--local-users, --reject-unknown-recipients), the
// aliases, the maildir transport's %u and the pipe transport's $LOCAL use:
// a quoted string unquoted (the quotes dropped, each quoted pair \x read as
// x), then ASCII letters lower-cased. Other octets (UTF-8 included) are kept
// as they are. So Alice, ALICE and "alice" are all alice. Idempotent on
// results without a '"' at both ends.
std::string canonical_local_part(std::string_view local);

// The address a recipient in one of our domains is stored as: the canonical
// local part, quoted again when it is not a dot-string ("john smith"), "@",
// the domain in lower case; the canonical local part alone when the domain
// is empty (<Postmaster> is stored as "postmaster").
std::string canonical_mailbox(std::string_view local, std::string_view domain);

// True when the canonical form of `local` holds a character that some mail
// systems read as routing: '%' (the percent hack), '!' (bang paths), '@' (a
// quoted address inside the local part), or a character whose Unicode
// compatibility form (NFKC) holds one of them (U+FF20, U+FE6B, U+FF05,
// U+FE6A, U+FF01, U+FE57, U+FE15, U+203C, U+2048, U+2049).
bool has_routing_character(std::string_view local);

// True when `domain` is one of `local_domains`, compared without case.
bool is_local_domain(std::string_view domain, const std::vector<std::string>& local_domains);

} // namespace smtpspool
