// smtp_command: verbs, MAIL/RCPT argument syntax (RFC 5321 §4.1.1.2-3) and
// parameters (RFC 1870 SIZE, RFC 6152 BODY, RFC 6531 SMTPUTF8, RFC 3461 DSN).
#include "smtp/smtp_command.hpp"

#include "smtp/dsn.hpp"
#include "base/limits.hpp"

#include <array>
#include <charconv>
#include <utility>

namespace smtpspool {
namespace {

constexpr std::array<std::string_view, 7> k_unimplemented{"TURN", "ETRN", "ATRN", "SEND", "SOML", "SAML", "BURL"};

bool iequals(std::string_view a, std::string_view b)
{
    return a.size() == b.size() && ascii_lower(a) == ascii_lower(b);
}

bool is_keyword_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-';
}

// "FROM:" / "TO:" (any case), then optional spaces, then the path.
std::variant<PathParse, Reply> take_path(std::string_view argument, std::string_view prefix, PathKind kind,
                                         std::string_view usage)
{
    if (argument.size() < prefix.size() || !iequals(argument.substr(0, prefix.size()), prefix)) {
        return replies::syntax(usage);
    }
    std::string_view rest = argument.substr(prefix.size());
    std::size_t offset = prefix.size();
    while (!rest.empty() && rest.front() == ' ') {
        rest.remove_prefix(1);
        ++offset;
    }
    PathParse p = parse_path(rest, kind);
    switch (p.error) {
    case PathError::none:
        p.end += offset;
        return p;
    case PathError::too_long:
        return replies::address_too_long(p.why);
    case PathError::invisible_control:
        return replies::address_not_allowed(p.why);
    case PathError::syntax:
        break;
    }
    return replies::bad_address(p.why);
}

struct Param {
    std::string_view keyword;
    std::string_view value;
    bool has_value = false;
};

// RFC 5321 §4.1.2: Mail-parameters = esmtp-param *(SP esmtp-param).
std::variant<std::vector<Param>, Reply> split_params(std::string_view rest)
{
    std::vector<Param> params;
    if (rest.empty()) {
        return params;
    }
    if (rest.front() != ' ') {
        return replies::bad_address("junk after the closing >");
    }
    while (!rest.empty()) {
        while (!rest.empty() && rest.front() == ' ') {
            rest.remove_prefix(1);
        }
        if (rest.empty()) {
            break;
        }
        std::size_t sp = rest.find(' ');
        std::string_view word = rest.substr(0, sp);
        rest.remove_prefix(sp == std::string_view::npos ? rest.size() : sp);
        Param p;
        std::size_t eq = word.find('=');
        p.keyword = word.substr(0, eq);
        if (eq != std::string_view::npos) {
            p.value = word.substr(eq + 1);
            p.has_value = true;
        }
        if (p.keyword.empty() || !is_keyword_char(p.keyword.front()) || p.keyword.front() == '-') {
            return replies::bad_parameter("malformed parameter");
        }
        for (char c : p.keyword) {
            if (!is_keyword_char(c)) {
                return replies::bad_parameter("malformed parameter");
            }
        }
        params.push_back(p);
    }
    return params;
}

} // namespace

Command parse_command(std::string_view line)
{
    Command cmd;
    std::size_t sp = line.find(' ');
    std::string_view word = line.substr(0, sp);
    if (sp != std::string_view::npos) {
        cmd.argument = line.substr(sp + 1);
        cmd.has_argument = true;
    }
    for (const Rule& r : k_rules) {
        if (!r.name.empty() && iequals(word, r.name)) {
            cmd.verb = r.verb;
            return cmd;
        }
    }
    for (std::string_view name : k_unimplemented) {
        if (iequals(word, name)) {
            cmd.verb = Verb::unimplemented;
            return cmd;
        }
    }
    cmd.verb = Verb::unknown;
    return cmd;
}

bool is_http_request(std::string_view line)
{
    constexpr std::array<std::string_view, 9> methods{"GET ",     "POST ",  "HEAD ",    "PUT ",  "DELETE ",
                                                      "OPTIONS ", "PATCH ", "CONNECT ", "TRACE "};
    for (std::string_view m : methods) {
        if (line.substr(0, m.size()) == m) {
            return true;
        }
    }
    return false;
}

std::variant<MailCommand, Reply> parse_mail(std::string_view argument, const MailOptions& options)
{
    constexpr std::string_view usage = "MAIL FROM:<address> [parameters]";
    auto taken = take_path(argument, "FROM:", PathKind::reverse, usage);
    if (auto* r = std::get_if<Reply>(&taken)) {
        return std::move(*r);
    }
    auto& parsed = std::get<PathParse>(taken);
    MailCommand mail;
    mail.path = std::move(parsed.path);
    auto split = split_params(argument.substr(parsed.end));
    if (auto* r = std::get_if<Reply>(&split)) {
        return std::move(*r);
    }
    auto& params = std::get<std::vector<Param>>(split);
    if (!params.empty() && !options.esmtp) {
        return replies::parameters_need_ehlo();
    }
    bool seen_size = false, seen_body = false, seen_auth = false;
    for (const Param& p : params) {
        std::string key = ascii_lower(p.keyword);
        if (key == "size") {
            // RFC 1870: SIZE=1*20DIGIT.
            std::size_t n = 0;
            auto [ptr, ec] = std::from_chars(p.value.data(), p.value.data() + p.value.size(), n);
            if (seen_size || !p.has_value || p.value.empty() || p.value.size() > 20 ||
                ptr != p.value.data() + p.value.size() || (ec != std::errc() && ec != std::errc::result_out_of_range)) {
                return replies::bad_parameter("SIZE needs one decimal number");
            }
            if (ec == std::errc::result_out_of_range || n > options.max_size) {
                return replies::message_too_big(options.max_size);
            }
            mail.declared_size = n;
            seen_size = true;
        } else if (key == "body") {
            std::string v = ascii_lower(p.value);
            if (seen_body || !p.has_value || (v != "7bit" && v != "8bitmime" && v != "binarymime")) {
                return replies::bad_parameter("BODY must be 7BIT, 8BITMIME or BINARYMIME");
            }
            // RFC 3030 §3: BINARYMIME; only with EHLO, as every parameter.
            mail.body = v == "7bit" ? Body::seven_bit : v == "8bitmime" ? Body::eight_bit_mime : Body::binary_mime;
            seen_body = true;
        } else if (key == "smtputf8") {
            if (mail.smtputf8 || p.has_value) {
                return replies::bad_parameter("SMTPUTF8 takes no value");
            }
            mail.smtputf8 = true;
        } else if (key == "ret") {
            // RFC 3461 §4.3: RET=FULL / HDRS, at most once.
            std::string v = ascii_lower(p.value);
            if (!mail.ret.empty()) {
                return replies::bad_parameter("RET given twice");
            }
            if (!p.has_value || (v != "full" && v != "hdrs")) {
                return replies::bad_parameter("RET must be FULL or HDRS");
            }
            mail.ret = v == "full" ? "FULL" : "HDRS";
        } else if (key == "auth" && options.auth) {
            // RFC 4954 §5: AUTH=<> or an xtext mailbox. Accepted, not trusted:
            // nothing of it is kept.
            if (seen_auth || !p.has_value || (p.value != "<>" && !xtext_decode(p.value))) {
                return replies::bad_parameter("AUTH needs <> or an xtext mailbox");
            }
            seen_auth = true;
        } else if (key == "envid") {
            if (mail.envid) {
                return replies::bad_parameter("ENVID given twice");
            }
            std::string why;
            mail.envid = parse_envid(p.value, why);
            if (!mail.envid) {
                return replies::bad_parameter(why);
            }
        } else {
            return replies::unknown_parameter(p.keyword);
        }
    }
    if (mail.path.non_ascii && !mail.smtputf8) {
        return replies::non_ascii_address();
    }
    return mail;
}

std::optional<std::uint64_t> bdat_chunk_size(std::string_view argument)
{
    std::string_view digits = argument.substr(0, argument.find(' '));
    if (digits.empty() || digits.size() > limits::k_max_chunk_size_digits) {
        return std::nullopt;
    }
    std::uint64_t n = 0;
    auto [ptr, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), n);
    if (ec != std::errc() || ptr != digits.data() + digits.size()) {
        return std::nullopt; // not all digits, or above 2^64 - 1
    }
    return n;
}

std::variant<BdatCommand, Reply> parse_bdat(std::string_view argument)
{
    constexpr std::string_view usage = "BDAT <size> [LAST]";
    auto size = bdat_chunk_size(argument);
    if (!size) {
        return replies::syntax(usage);
    }
    BdatCommand bdat{*size, false};
    std::size_t sp = argument.find(' ');
    if (sp != std::string_view::npos) {
        if (!iequals(argument.substr(sp + 1), "LAST")) {
            return replies::syntax(usage);
        }
        bdat.last = true;
    }
    return bdat;
}

std::variant<RcptCommand, Reply> parse_rcpt(std::string_view argument, bool esmtp, bool smtputf8)
{
    constexpr std::string_view usage = "RCPT TO:<address>";
    auto taken = take_path(argument, "TO:", PathKind::forward, usage);
    if (auto* r = std::get_if<Reply>(&taken)) {
        return std::move(*r);
    }
    auto& parsed = std::get<PathParse>(taken);
    auto split = split_params(argument.substr(parsed.end));
    if (auto* r = std::get_if<Reply>(&split)) {
        return std::move(*r);
    }
    auto& params = std::get<std::vector<Param>>(split);
    if (!params.empty() && !esmtp) {
        return replies::parameters_need_ehlo();
    }
    RcptCommand rcpt;
    for (const Param& p : params) {
        std::string key = ascii_lower(p.keyword);
        std::string why;
        if (key == "notify") {
            if (rcpt.notify) {
                return replies::bad_parameter("NOTIFY given twice");
            }
            rcpt.notify = parse_notify(p.value, why);
            if (!rcpt.notify) {
                return replies::bad_parameter(why);
            }
        } else if (key == "orcpt") {
            if (rcpt.orcpt) {
                return replies::bad_parameter("ORCPT given twice");
            }
            rcpt.orcpt = parse_orcpt(p.value, why);
            if (!rcpt.orcpt) {
                return replies::bad_parameter(why);
            }
        } else {
            return replies::unknown_parameter(p.keyword);
        }
    }
    if (parsed.path.non_ascii && !smtputf8) {
        return replies::non_ascii_address();
    }
    rcpt.path = std::move(parsed.path);
    return rcpt;
}

} // namespace smtpspool
