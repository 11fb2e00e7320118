// smtp_client: the pure protocol pieces of the outbound SMTP client: the reply
// parser, EHLO keywords, the DATA dot-stuffer, the envelope address check and
// the one-line "detail" of a reply. No descriptors; fed any chunking.
#pragma once

#include "model/envelope.hpp"

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace smtpspool {

// RFC 5321 §4.5.3.1.5 allows 512 octets; we accept servers up to this many
// octets per reply line, its CRLF included, and this many lines per reply.
inline constexpr std::size_t k_max_server_reply_line = 2048;
inline constexpr std::size_t k_max_server_reply_lines = 100;

// Details for RecipientOutcome are cut to about this many octets.
inline constexpr std::size_t k_max_detail = 400;

// One complete reply of the server (RFC 5321 §4.2): the code and the text of
// each line after "NNN-" / "NNN " ("" when a line has none). Never holds CR or LF.
struct ServerReply {
    int code = 0;
    std::vector<std::string> lines;
};

// Splits the server's octets into replies (RFC 5321 §4.2.1 grammar):
// Reply-code = %x32-35 %x30-35 %x30-39, then '-' (more lines follow) or ' ' or
// the line end (last line); every line of a reply carries the same code. Lines
// end with CRLF; a bare LF is tolerated, a CR anywhere else is an error. A line
// over k_max_server_reply_line octets or a reply over k_max_server_reply_lines
// lines is an error, so memory stays bounded whatever the server sends.
class ReplyParser {
public:
    // Consumes octets up to and including the end of one reply (then ready())
    // or the octet that makes the input malformed (then failed()). Returns the
    // count consumed; fewer than in.size() only when ready() or failed(). After
    // ready(), take() the reply before feeding the rest.
    std::size_t feed(std::string_view in);

    bool ready() const { return m_ready; }
    bool failed() const { return !m_error.empty(); }
    // Why the input is malformed (no CR or LF); "" unless failed().
    const std::string& error() const { return m_error; }

    // The complete reply; the parser then waits for the next one.
    ServerReply take();

private:
    void end_line();
    void fail(std::string why);

    std::string m_line; // the current line, without its line end
    bool m_cr = false;  // the previous octet was a CR
    ServerReply m_reply;
    bool m_ready = false;
    std::string m_error;
};

// What the server offers in its EHLO reply (RFC 5321 §4.1.1.1, keywords are
// case-insensitive; the first line is the greeting, not a keyword).
struct EhloFeatures {
    bool pipelining = false;     // RFC 2920
    bool size = false;           // RFC 1870
    std::uint64_t max_size = 0;  // RFC 1870 §4: 0 = no fixed limit (or none given)
    bool eight_bit_mime = false; // RFC 6152
    bool smtputf8 = false;       // RFC 6531
    bool dsn = false;            // RFC 3461
    bool starttls = false;       // RFC 3207
    std::vector<std::string> auth; // RFC 4954: the AUTH mechanisms, upper case
    bool chunking = false;       // RFC 3030 BDAT
    bool binary_mime = false;    // RFC 3030 BODY=BINARYMIME
};

EhloFeatures parse_ehlo(const ServerReply& reply);

// The MAIL command for `envelope` to a server with `features`, CRLF included:
// SIZE=size when the server offers SIZE (RFC 1870), BODY=8BITMIME (RFC 6152
// §3) or BODY=BINARYMIME (RFC 3030 §3), SMTPUTF8 (RFC 6531 §3.4), and, to a
// server that offers DSN, RET and ENVID as received (RFC 3461 §6.2.1). The
// BODY= is `body` when given (what choose_transfer decided), else the
// envelope's. The caller has checked the address.
std::string mail_command(const Envelope& envelope, const EhloFeatures& features, std::uint64_t size,
                         std::optional<Body> body = std::nullopt);

// The RCPT command for one recipient, CRLF included: with NOTIFY and ORCPT as
// received when the server offers DSN.
std::string rcpt_command(const Recipient& recipient, const EhloFeatures& features);

// Turns stored message octets into the DATA wire form (RFC 5321 §4.5.2): a '.'
// at the start of a line is doubled, and a bare CR or bare LF becomes CRLF
// (so "\r\r\n" is two line ends), so that we never send a line end other than
// CRLF (§2.3.8; the outbound side of the SMTP smuggling defence). Any chunking
// of the input gives the same output.
class DotStuffer {
public:
    // Appends the wire form of `in` to `out`; a trailing CR is held back until
    // the next octet (or finish()) shows whether an LF follows it.
    void feed(std::string_view in, std::string& out);
    // Ends the last line with CRLF if the message did not, then appends the
    // end-of-data mark ".\r\n" (§4.1.1.4).
    void finish(std::string& out);

private:
    bool m_line_start = true;
    bool m_cr = false;
};

// "" when `address` (a mailbox as stored in the envelope, without angle
// brackets; "" is the null reverse path) may be put between <> on the wire,
// otherwise why not: control characters (CR, LF, NUL, ...; C1 and bidirectional
// ones too, text::invisible_control, which serve refuses), '<' or '>' would
// let an envelope change the command we send (RFC 5321 §4.1.2); paths are at
// most 256 octets with the brackets (§4.5.3.1.3); non-ASCII needs SMTPUTF8
// (RFC 6531 §3.3); an address without '@' may only be postmaster (§4.1.1.3).
std::string address_refusal(std::string_view address, bool smtputf8);

// True for "postmaster" in any case (RFC 5321 §4.5.1).
bool is_bare_postmaster(std::string_view address);

// The reply as one line for logs and envelopes: "550 5.1.1 first; second",
// control characters replaced by '?', cut to k_max_detail octets (on a UTF-8
// character boundary). Never has CR or LF.
std::string reply_detail(const ServerReply& reply);

} // namespace smtpspool
