// smtp_reply: SMTP replies as values, and the one function that renders them.
// Nothing else in the program writes a reply code or a CRLF to the client.
#pragma once

#include "smtp/smtp_nfa.hpp"

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace smtpspool {

struct Reply {
    int code = 0;
    std::string status; // RFC 3463 enhanced code, "" where none is sent
    std::string text;   // '\n' separates the lines of a multi-line reply
};

// "250-a\r\n250 b\r\n"; each line cut to 512 octets, control characters replaced.
std::string render(const Reply& reply);

// True when the reply reports a client error, which counts toward
// --max-errors: a 5yz (RFC 5321 §4.2.1), and 452 4.5.3, too many recipients
// (a client that goes on past --max-recipients is told so every time, and
// each of those costs us a reply).
inline bool is_client_error(const Reply& r) { return r.code >= 500 || (r.code == 452 && r.status == "4.5.3"); }

namespace replies {

Reply greeting(std::string_view host, bool esmtp);
Reply closing(std::string_view host);
Reply helo_ok(std::string_view host, std::string_view helo);
// The EHLO reply; STARTTLS among the keywords when offered.
Reply ehlo_ok(std::string_view host, std::string_view helo, std::size_t max_size, bool starttls = false,
              bool auth = false);
// STARTTLS (RFC 3207).
Reply tls_ready();
Reply tls_active();
Reply needs_ehlo(std::string_view verb); // STARTTLS, AUTH, BDAT after HELO
Reply tls_required();
Reply tls_unavailable();
// AUTH (RFC 4954).
Reply auth_challenge(std::string_view base64); // 334
Reply auth_ok();
Reply auth_refused();
Reply auth_temporary();
Reply auth_cancelled();
Reply auth_bad_base64();
Reply auth_unknown_mechanism();
Reply auth_needs_tls();
Reply auth_again();
Reply ok();
Reply reset_ok();
Reply sender_ok();
Reply recipient_ok();
Reply start_data();
Reply chunk_received(std::uint64_t octets);
Reply queued(std::string_view id);
Reply help();
Reply cannot_verify();
Reply expn_refused();

// A command refused by the NFA table: by state (what is missing) ...
Reply out_of_sequence(Refusal missing);
// ... or by any reason of the table; verb names the command (send EHLO before it).
Reply refusal(Refusal why, std::string_view verb);
Reply binarymime_needs_bdat();
Reply binarymime_undeliverable();
Reply unknown_command();
Reply not_implemented();
Reply ehlo_disabled();
Reply line_too_long();
Reply bare_line_end_in_command();
Reply syntax(std::string_view usage);
Reply no_arguments(std::string_view verb);
Reply bad_helo();
Reply bad_address(std::string_view why);
Reply address_too_long(std::string_view why);
// 553 5.1.3: a well-formed address we do not take (an invisible control in it).
Reply address_not_allowed(std::string_view why);
Reply non_ascii_address();
Reply unknown_parameter(std::string_view name);
Reply bad_parameter(std::string_view why);
Reply parameters_need_ehlo();
Reply message_too_big(std::size_t max_size);
Reply too_many_recipients();
Reply relaying_denied();
// 550 5.7.1: a local recipient whose local part routes elsewhere (%, !, @),
// from a client that may not relay.
Reply untrusted_routing();
Reply bare_line_end_in_data();
Reply nul_in_data();
Reply local_error();
Reply storage_full();
Reply file_too_big();
// The envelope of the message would be too large to keep (so many recipients
// with long addresses and DSN parameters): permanent, since a retry is the same.
Reply envelope_too_large();
Reply timeout(std::string_view host);
Reply too_many_errors(std::string_view host);
Reply shutting_down(std::string_view host);

// Policy (smtpspool(8), POLICY).
enum class Stage { mail, rcpt, data };
Reply client_denied(std::string_view host);
Reply session_refused();
Reply sender_denied();
Reply user_unknown();
Reply alias_loop();
Reply policy_refused(Stage stage);
Reply policy_tempfail();
Reply leading_white_space();
Reply line_too_long_in_data(std::size_t max);
Reply bad_headers(std::string_view why);
Reply mail_loop(std::size_t hops);
Reply rate_limited(std::string_view host);
Reply too_many_messages(std::string_view host);
// A content filter (milter) refused, or failed, without a reply of its own.
Reply filter_rejected();
Reply filter_tempfail();
// A content filter said tempfail at the connection: 421, and the session ends.
Reply filter_unavailable(std::string_view host);

// A reply line from a hook program: "NNN X.Y.Z text" with a 4yz or 5yz code
// whose class matches the enhanced code's; nothing else is taken.
std::optional<Reply> parse_hook_reply(std::string_view line);

} // namespace replies
} // namespace smtpspool
