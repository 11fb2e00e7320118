// limits: the shared protocol and resource limits, each with its source. Hooks, the SMTP client,
// sendmail and delivery keep theirs next to their code.
// Configurable limits keep their defaults here; the option parser reads them.
#pragma once

#include <cstddef>

namespace smtpspool::limits {

// RFC 5321 §4.5.3.1.4: a command line is at most 512 octets including CRLF.
// We accept longer lines up to --max-line-length (extensions lengthen MAIL).
inline constexpr std::size_t k_rfc_command_line = 512;
inline constexpr std::size_t k_default_max_line_length = 2048;

// RFC 5321 §4.5.3.1.1: local part at most 64 octets.
inline constexpr std::size_t k_max_local_part = 64;
// RFC 5321 §4.5.3.1.2: domain at most 255 octets.
inline constexpr std::size_t k_max_domain = 255;
// RFC 5321 §4.5.3.1.3: path at most 256 octets including the angle brackets.
inline constexpr std::size_t k_max_path = 256;
// RFC 1035 §2.3.4: a label is at most 63 octets.
inline constexpr std::size_t k_max_label = 63;

// RFC 5321 §4.5.3.1.5: a reply line is at most 512 octets including CRLF.
inline constexpr std::size_t k_max_reply_line = 512;

// RFC 5321 §4.5.3.1.8 requires at least 100; the contract's default is larger.
inline constexpr std::size_t k_default_max_recipients = 10000;

// RFC 5321 §4.5.3.1.7 requires at least 64K of content; RFC 1870 advertises it.
inline constexpr std::size_t k_default_max_message_size = 20000000;

// RFC 5321 §4.5.3.2.7: wait at least five minutes for the next command.
inline constexpr unsigned k_default_timeout_seconds = 300;

// A whole session, however busy, ends after this long (slow senders that
// stay just inside the idle timeout cannot hold a process forever).
inline constexpr unsigned k_default_max_session_time = 3600;

// Client errors (5xx replies) before 421 and close (RFC 5321 §7.8 permits it).
inline constexpr std::size_t k_default_max_errors = 20;

// Bytes read from the client at a time; the only input buffer of a session.
inline constexpr std::size_t k_read_buffer = 65536;

// Octets of a session transcript (--transcript-max-size), then a marker.
inline constexpr std::size_t k_default_transcript_max_size = 1 << 20;

// Bytes the spool writer gathers before one write(2).
inline constexpr std::size_t k_write_buffer = 65536;

// RFC 3030 §2 sets no bound on chunk-size = 1*DIGIT; like SIZE= (RFC 1870)
// we take at most 20 digits, and a value that fits in 64 bits.
inline constexpr std::size_t k_max_chunk_size_digits = 20;

// RFC 5322 §2.1.1: a header line is at most 998 octets before its CRLF.
inline constexpr std::size_t k_max_header_line = 998;

// RFC 5322 §2.1.1 and RFC 5321 §4.5.3.1.6: any line of a message is at most
// 998 octets before its CRLF; --max-data-line-length, for network clients.
inline constexpr std::size_t k_default_max_data_line_length = 998;

// The header section of a message whose header fields content filters edit
// at its end is read into memory, fields and all: at most this many octets,
// before and after the edits (a larger one is refused, 552 5.3.4). A field
// name a filter gives is at most k_max_field_name octets.
inline constexpr std::size_t k_max_edited_header_section = 1 << 20;
inline constexpr std::size_t k_max_field_name = 256;

// The Authentication-Results: filter (smtpspool(8), Authentication-Results hygiene)
// holds back one such field until it knows whose it is: at most this many
// octets of it. Past that, it decides on what it holds.
inline constexpr std::size_t k_max_held_header_field = 64 << 10;

// RFC 5321 §6.3 asks for a hop limit; its suggested minimum is 100.
inline constexpr std::size_t k_default_max_hops = 100;

// Header lines policy services may add to one message (PREPEND), in octets;
// past it more are dropped (and logged).
inline constexpr std::size_t k_max_policy_header_bytes = 16 * 1024;

// One question to a policy service (connect, request, answer) takes at most
// this long by default (--policy-timeout), then the default action.
inline constexpr unsigned k_default_policy_timeout_seconds = 10;

// A hook runs at most this long (then 451 4.3.0).
inline constexpr unsigned k_default_hook_timeout_seconds = 30;

// A milter has this long to accept the connection and to answer each event
// (--milter-timeout; its progress replies restart the wait).
inline constexpr unsigned k_default_milter_timeout_seconds = 30;

// Entries in SPOOL/tmp older than this are leftovers of dead processes.
inline constexpr long k_stale_tmp_seconds = 86400;

// The PROXY protocol spec, §2.1: a version 1 header is at most 107 octets,
// CRLF included. §2.2: after its 16 fixed octets a version 2 header says its
// own length (up to 65535); we take at most the largest address block (UNIX,
// 216 octets) and 1024 octets of TLVs, and refuse a longer one unread.
inline constexpr std::size_t k_proxy_v1_max = 107;
inline constexpr std::size_t k_proxy_v2_fixed = 16;
inline constexpr std::size_t k_proxy_v2_max_length = 216 + 1024;

// RFC 3461 §4.4: the ENVID parameter's value is at most 100 characters.
inline constexpr std::size_t k_max_envid = 100;
// RFC 3461 §4.2: the ORCPT parameter's value is at most 500 characters.
inline constexpr std::size_t k_max_orcpt = 500;

// Steps of one recipient's alias expansion (an address looked up: the
// recipient, then each target reached); each entry is expanded once, so this
// is about the number of targets reached, and a longer expansion is refused
// (550 5.4.6: the file, not the client, would have to change). A file of
// diamonds, or an alias file past this size, costs a stranger's RCPT at most
// this much.
inline constexpr std::size_t k_max_alias_steps = 100000;

// serve --deliver-now starts one runq per session, at its end, and at most
// this many of them run at once per spool (SPOOL/state/runq-slot.N); past
// that the messages wait for the next scheduled runq. A runq is given at
// most this many ids; for more it makes a whole pass.
inline constexpr std::size_t k_deliver_now_runners = 4;
inline constexpr std::size_t k_deliver_now_max_ids = 1000;

// A bounce with RET=FULL returns messages up to this size whole; of a larger
// one it returns the header section only (and says so).
inline constexpr std::size_t k_max_returned_message = 10 << 20;

// envelope.json is read up to this size; a larger one is refused as damaged.
inline constexpr std::size_t k_max_envelope_size = 16 << 20;

// The envelope never outgrows its reader. runq stores at most this many
// octets of a recipient's last error (text::detail_line: control octets
// replaced, so JSON writes each octet as at most 3: '"' and '\' as 2, an
// octet of broken UTF-8 as U+FFFD, 3), and changes nothing else but small
// fields. Per recipient, a rewrite adds at most
//   last_error: 3 * 300 octets of value + 22 of key, indent and punctuation
//   last_hop: k_max_last_hop octets of letters, digits and . - _ : [ ]
//   (is_valid_last_hop), each written as one, + 20 of key, indent and
//   punctuation: 220;
//   attempts: 19 more digits (20 at most, 1 at least); status: 2 ("delivered"
//   against "pending");
//   last_tls: two texts of at most 64 octets of printable ASCII (2 * 64 * 2
//   with '"' and '\' escaped) and "verified": false, 256 + 100 of keys,
//   indent and punctuation;
//   total 1519, rounded up to the growth below;
// per envelope, attempts, last_attempt, next_attempt, held (smtpspool
// hold) and delay_notified: under 256.
// A rewrite replaces the last error rather than adding to it, so whatever the
// number of runs, envelope.json stays at most its committed size plus
//   recipients * k_envelope_growth_per_recipient + k_envelope_growth_fixed.
// serve refuses (552 5.3.4) a message whose committed envelope plus that
// growth would pass k_max_envelope_size, and a rewrite that would pass it
// anyway (an envelope written by something else) is not written.
// 10000 recipients of 30-octet addresses take about 1.2 MB plus 15.4 MB of
// growth; 10000 with 64-octet quoted local parts and 500-character ORCPTs
// of quotes (13 MB) are refused.
inline constexpr std::size_t k_max_last_error = 300;
// A next hop (host[address]:port); runq keeps only "[address]:port" when
// the host name would make it longer.
inline constexpr std::size_t k_max_last_hop = 200;
inline constexpr std::size_t k_envelope_growth_per_recipient = 1536;
inline constexpr std::size_t k_envelope_growth_fixed = 256;

// A notice that returns only the header section reads this much of the
// message, and returns at most this much of its header section.
inline constexpr std::size_t k_notice_read = 256 << 10;
inline constexpr std::size_t k_notice_header_section = 64 << 10;
// A notice to the sender of a message from a client that could not relay
// returns whole header fields only, at most this many octets of them: the
// sender address is anyone's, so a notice must carry little that the client
// chose.
inline constexpr std::size_t k_limited_header_section = 4 << 10;

// Of a pipe command's output (stdout and stderr together), the last octets
// kept, and how many of those a failure's detail names.
inline constexpr std::size_t k_pipe_output_kept = 4096;
inline constexpr std::size_t k_pipe_output_shown = 300;

} // namespace smtpspool::limits
