// dsn: the values of the RFC 3461 DSN parameters (ENVID, RET, NOTIFY, ORCPT)
// and their xtext encoding. Pure. Replies to bad parameters are chosen by
// smtp_command; delivery decisions by the runner.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace smtpspool {

// RFC 3461 §4: xtext = *( xchar / hexchar ); xchar is "!".."~" except "+"
// and "="; hexchar is "+" and two upper-case hex digits. The decoded octets,
// or nullopt when `text` is not xtext.
std::optional<std::string> xtext_decode(std::string_view text);

// Octets as xtext: "+", "=", and anything outside "!".."~" as "+XX".
std::string xtext_encode(std::string_view octets);

// RFC 3461 §4.1: NOTIFY="NEVER" / 1#( "SUCCESS" / "FAILURE" / "DELAY" ),
// any case. The keywords in upper case and in the order given, or nullopt
// (with why) when malformed, repeated, or NEVER with another keyword.
std::optional<std::vector<std::string>> parse_notify(std::string_view value, std::string& why);

// RFC 3461 §4.2: ORCPT=addr-type ";" xtext. The parameter as we store it,
// "addr-type;decoded" (addr-type as given), or nullopt (with why). The
// decoded address must be printable ASCII (what an rfc822 address is; it goes
// into the DSN's Original-Recipient field as it is).
std::optional<std::string> parse_orcpt(std::string_view value, std::string& why);

// RFC 3461 §4.4: ENVID=xtext whose decoded value is printable ASCII. The
// decoded value, or nullopt (with why).
std::optional<std::string> parse_envid(std::string_view value, std::string& why);

// The ORCPT parameter's wire form from the stored "addr-type;decoded".
std::string orcpt_parameter(std::string_view stored);

// RFC 3461 §4.1 and §6.1: without a NOTIFY parameter, FAILURE (and DELAY) is
// assumed, SUCCESS not.
bool notify_failure(const std::optional<std::vector<std::string>>& notify);
bool notify_success(const std::optional<std::vector<std::string>>& notify);
// DELAY: named, or no NOTIFY at all (we take the default as FAILURE,DELAY).
bool notify_delay(const std::optional<std::vector<std::string>>& notify);

// What is honoured of NOTIFY from a client that could not relay (the sender
// address is anyone's): FAILURE alone. No NOTIFY stays none (failures are
// reported); SUCCESS and DELAY are dropped, and a list left empty is NEVER.
std::optional<std::vector<std::string>> limited_notify(const std::optional<std::vector<std::string>>& notify);

} // namespace smtpspool
