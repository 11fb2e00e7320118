// milter_protocol: the Sendmail milter protocol, version 6, as the MTA side
// speaks it (smtpspool(8), MILTERS). Pure: packets are built as strings and
// read from the octets received so far; the sockets, timeouts and the chain
// of milters are server/milter. Every length is checked before use, a packet
// is at most k_max_packet octets, and a reply this side does not know is a
// protocol error.
#pragma once

#include "smtp/smtp_reply.hpp"

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

namespace smtpspool::milter {

inline constexpr std::uint32_t k_version = 6;
// A packet's length word counts the command octet and the data. libmilter
// sends at most 64 KiB of data (a body chunk); 1 MiB is far above what any
// milter sends, and well below what would hurt.
inline constexpr std::size_t k_max_packet = 1 << 20;
// A body chunk we send (SMFIC_BODY) is at most this long.
inline constexpr std::size_t k_body_chunk = 65535;
// The text of a milter's own reply is cut to this many octets (it goes on
// one reply line after the code and enhanced status).
inline constexpr std::size_t k_max_reply_text = 400;
// At the end of a message one milter asks for at most this many changes;
// its header fields, addresses and quarantine reason together are at most
// the bound of a replaced body (--max-message-size).
inline constexpr std::size_t k_max_changes = 10000;

// Commands (MTA to milter).
namespace command {
inline constexpr char abort = 'A';
inline constexpr char body = 'B';
inline constexpr char connect = 'C';
inline constexpr char macro = 'D';
inline constexpr char body_eob = 'E';
inline constexpr char helo = 'H';
inline constexpr char header = 'L';
inline constexpr char mail = 'M';
inline constexpr char eoh = 'N';
inline constexpr char optneg = 'O';
inline constexpr char quit = 'Q';
inline constexpr char rcpt = 'R';
inline constexpr char data = 'T';
} // namespace command

// Protocol flags (SMFIP_*): steps the milter does not want, steps it does not
// answer, and what the MTA can do.
namespace step {
inline constexpr std::uint32_t no_connect = 1u << 0;
inline constexpr std::uint32_t no_helo = 1u << 1;
inline constexpr std::uint32_t no_mail = 1u << 2;
inline constexpr std::uint32_t no_rcpt = 1u << 3;
inline constexpr std::uint32_t no_body = 1u << 4;
inline constexpr std::uint32_t no_headers = 1u << 5;
inline constexpr std::uint32_t no_eoh = 1u << 6;
inline constexpr std::uint32_t nr_header = 1u << 7;
inline constexpr std::uint32_t no_unknown = 1u << 8;
inline constexpr std::uint32_t no_data = 1u << 9;
inline constexpr std::uint32_t skip = 1u << 10;
inline constexpr std::uint32_t rcpt_rejected = 1u << 11;
inline constexpr std::uint32_t nr_connect = 1u << 12;
inline constexpr std::uint32_t nr_helo = 1u << 13;
inline constexpr std::uint32_t nr_mail = 1u << 14;
inline constexpr std::uint32_t nr_rcpt = 1u << 15;
inline constexpr std::uint32_t nr_data = 1u << 16;
inline constexpr std::uint32_t nr_unknown = 1u << 17;
inline constexpr std::uint32_t nr_eoh = 1u << 18;
inline constexpr std::uint32_t nr_body = 1u << 19;
inline constexpr std::uint32_t header_leading_space = 1u << 20;
// What we offer: every step may be left out or unanswered, SMFIR_SKIP is
// understood. Rejected recipients are never sent (rcpt_rejected not offered).
inline constexpr std::uint32_t k_offered = (1u << 21) - 1 - rcpt_rejected;
} // namespace step

// Action flags (SMFIF_*): what the milter may change.
namespace action {
inline constexpr std::uint32_t add_headers = 1u << 0;
inline constexpr std::uint32_t change_body = 1u << 1;
inline constexpr std::uint32_t add_rcpt = 1u << 2;
inline constexpr std::uint32_t delete_rcpt = 1u << 3;
inline constexpr std::uint32_t change_headers = 1u << 4;
inline constexpr std::uint32_t quarantine = 1u << 5;
inline constexpr std::uint32_t change_from = 1u << 6;
inline constexpr std::uint32_t add_rcpt_params = 1u << 7;
inline constexpr std::uint32_t set_macro_list = 1u << 8;
inline constexpr std::uint32_t k_offered = (1u << 9) - 1;
} // namespace action

// The stages macros are sent before (SMFIM_*), as SMFIR_SETSYMLIST names them.
enum class Stage : std::uint8_t { connect = 0, helo = 1, mail = 2, rcpt = 3, data = 4, eom = 5, eoh = 6 };
inline constexpr std::size_t k_stages = 7;

using Macros = std::vector<std::pair<std::string, std::string>>;

// --- Packets we send -------------------------------------------------------

// One packet: the length (4 octets, network order), the command, the data.
// The caller keeps data under k_max_packet.
std::string packet(char command, std::string_view data);
std::string optneg(std::uint32_t version, std::uint32_t actions, std::uint32_t steps);
// SMFIC_MACRO for the command `for_command`: each name and value NUL-ended.
// Names as Postfix sends them: one letter bare ("j"), longer ones in braces.
std::string macros(char for_command, const Macros& macros);
// SMFIC_CONNECT: host name, family ('4', '6', 'L' local, 'U' unknown), port,
// address. The port and address are left out for 'U'.
std::string connect(std::string_view hostname, char family, std::uint16_t port, std::string_view address);
// A command whose data is NUL-ended strings (HELO, MAIL, RCPT, HEADER).
std::string strings(char command, const std::vector<std::string_view>& items);

// --- Reading packets -------------------------------------------------------

struct Frame {
    char command = 0;
    std::string_view data; // inside the buffer given to read_frame
    std::size_t length = 0; // octets of the buffer the packet took
};
struct NeedMore {
    std::size_t at_least = 1;
};
struct Malformed {
    std::string reason;
};
using FrameRead = std::variant<Frame, NeedMore, Malformed>;

// The first packet of `buffer`: whole, or how many more octets it needs at
// least, or malformed (a length of 0 or over k_max_packet).
FrameRead read_frame(std::string_view buffer);

// The milter's answer to SMFIC_OPTNEG.
struct Negotiation {
    std::uint32_t version = 0;
    std::uint32_t actions = 0;
    std::uint32_t steps = 0;
    // SMFIR_SETSYMLIST: the macros the milter wants at a stage (by Stage),
    // names as given (braces or not); none: what we send by default.
    std::array<std::optional<std::vector<std::string>>, k_stages> macro_lists;
};
// Checked against what we offered: version 2..6, actions and steps within
// the offer (steps a version before 6 does not know are taken as not wanted).
std::variant<Negotiation, Malformed> parse_negotiation(const Frame& frame, std::uint32_t offered_actions,
                                                       std::uint32_t offered_steps);

// One reply of the milter, checked.
struct Response {
    enum class Kind {
        continue_,   // 'c'
        accept,      // 'a'
        reject,      // 'r', or 'y' with a 5xx
        tempfail,    // 't', or 'y' with a 4xx; 'f' (connection failure), '4' (shutdown)
        discard,     // 'd'
        progress,    // 'p': the milter is still working
        skip,        // 's': no more body chunks
        quarantine,  // 'q': text is the reason
        add_header,  // 'h': name, value
        insert_header, // 'i': index, name, value
        change_header, // 'm': index, name, value
        add_rcpt,    // '+' or '2': address
        delete_rcpt, // '-': address
        replace_body, // 'b': value is the chunk
        change_from, // 'e': address
    };
    Kind kind = Kind::continue_;
    std::optional<Reply> reply; // with 'y': the milter's own reply
    std::uint32_t index = 0;
    std::string name;
    std::string value; // a header value, a body chunk, an address (without <>), a reason
};

bool is_modification(Response::Kind kind);
bool ends_stage(Response::Kind kind); // continue, accept, reject, tempfail, discard, skip

// Reads and checks one reply packet: its data's shape for its kind, a reply
// code (SMFIR_REPLYCODE: "4yz" or "5yz", an enhanced status of the same
// class if any, one line, text made printable), header names (printable
// US-ASCII without ':'), header values (no control but HT, C1 or bidi, no CR outside CRLF, each
// line end followed by a space or tab, not ending in a line end), and
// addresses (the RFC 5321 path grammar, with or without <>). Anything else,
// an SMFIR_OPTNEG or an unknown command included, is Malformed.
std::variant<Response, Malformed> parse_response(const Frame& frame);

// Checks behind parse_response, for the adapter and the tests.
bool valid_header_name(std::string_view name);
bool valid_header_value(std::string_view value);
std::optional<Reply> parse_reply_code(std::string_view text);
// "<a@b>" or "a@b" as a path (reverse: "<>" allowed): the mailbox, or none.
std::optional<std::string> parse_milter_address(std::string_view text, bool reverse);

// --- The message as milter events -------------------------------------------

// What the message's octets become: each header field (name; value with
// its leading white space and its folds, each line end written "\n", as
// Sendmail and Postfix send them), the end of the header section, and the
// body (everything after the empty line, as it is) in chunks of at most
// k_body_chunk octets. A line that is neither a field nor a fold ends the
// header section and starts the body. A field is cut at k_max_field octets.
struct ContentEvent {
    enum class Kind { header, eoh, body };
    Kind kind = Kind::header;
    std::string name;
    std::string value; // a header's value, or a body chunk
};

inline constexpr std::size_t k_max_field = 65000;

class ContentSplitter {
public:
    // The events these octets complete, appended to `out`.
    void feed(std::string_view octets, std::vector<ContentEvent>& out);
    // The end of the message: what is left (the pending field, the end of
    // the header section if it had none, the last body chunk).
    void finish(std::vector<ContentEvent>& out);
    void reset();

private:
    void header_line(std::string_view line, std::string_view line_end, std::vector<ContentEvent>& out);
    void flush_field(std::vector<ContentEvent>& out);
    void end_headers(std::vector<ContentEvent>& out);
    void body(std::string_view octets, std::vector<ContentEvent>& out);

    bool m_in_body = false;
    std::string m_line;  // a partial header line (at most k_max_field)
    bool m_line_cut = false;
    std::optional<ContentEvent> m_field; // the field being read (folds may follow)
    std::string m_body;  // body octets not yet a whole chunk
};

// The header value as one milter wants it: without the one space after the
// colon unless it asked for it (SMFIP_HDR_LEADSPC).
std::string_view header_value_for(std::string_view value, bool leading_space);

} // namespace smtpspool::milter
