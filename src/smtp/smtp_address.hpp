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
PathParse parse_path(std::string_view text, PathKind kind);

// One well-formed UTF-8 sequence of 2-4 octets at text[i]; returns its length or 0.
std::size_t utf8_sequence(std::string_view text, std::size_t i);

// RFC 5321 §4.1.2 Domain (LDH labels; U-labels allowed as well-formed UTF-8).
bool is_domain(std::string_view text);

// "[1.2.3.4]" or "[IPv6:...]".
bool is_address_literal(std::string_view text);

// ASCII lower-casing for case-insensitive comparisons of domains and keywords.
std::string ascii_lower(std::string_view text);

// True when `domain` is one of `local_domains`, compared without case.
bool is_local_domain(std::string_view domain, const std::vector<std::string>& local_domains);

} // namespace smtpspool
