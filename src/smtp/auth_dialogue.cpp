// auth_dialogue: AUTH PLAIN and LOGIN, step by step.
#include "smtp/auth_dialogue.hpp"

#include "smtp/smtp_address.hpp"

#include <utility>

namespace smtpspool {

AuthDialogue::Result AuthDialogue::begin(std::string_view argument, AuthPort& auth, LogSink& log)
{
    m_step = Step::none;
    std::size_t sp = argument.find(' ');
    std::string mechanism = ascii_lower(argument.substr(0, sp));
    std::optional<std::string_view> initial;
    if (sp != std::string_view::npos) {
        initial = argument.substr(sp + 1);
    }
    if (mechanism.empty()) {
        return {replies::syntax("AUTH mechanism [initial-response]"), {}};
    }
    if (mechanism != "plain" && mechanism != "login") {
        return {replies::auth_unknown_mechanism(), {}};
    }
    m_step = mechanism == "plain" ? Step::plain : Step::login_user;
    if (!initial) {
        // RFC 4616 §2: an empty challenge; LOGIN asks "Username:".
        return {replies::auth_challenge(m_step == Step::plain ? "" : base64_encode("Username:")), {}};
    }
    // RFC 4954 §4: "=" is an empty initial response.
    return respond(*initial == "=" ? std::string_view{} : *initial, auth, log);
}

// "*" cancels; anything else is base64.
AuthDialogue::Result AuthDialogue::respond(std::string_view line, AuthPort& auth, LogSink& log)
{
    Step step = std::exchange(m_step, Step::none);
    if (line == "*") {
        log.log(LogLine("auth").add("result", "cancelled"));
        return {replies::auth_cancelled(), {}};
    }
    auto decoded = base64_decode(line);
    if (!decoded) {
        log.log(LogLine("auth").add("result", "bad-base64"));
        return {replies::auth_bad_base64(), {}};
    }
    switch (step) {
    case Step::plain: {
        auto c = parse_plain(*decoded);
        // An authorization identity other than the user is not ours to grant.
        if (!c || (!c->authzid.empty() && c->authzid != c->user)) {
            log.log(LogLine("auth").add("mechanism", "PLAIN").add("result", "refused").add("reason", "malformed"));
            return {replies::auth_refused(), {}};
        }
        return authenticate("PLAIN", c->user, c->password, auth, log);
    }
    case Step::login_user:
        m_login_user = std::move(*decoded);
        m_step = Step::login_password;
        return {replies::auth_challenge(base64_encode("Password:")), {}};
    case Step::login_password:
        return authenticate("LOGIN", std::exchange(m_login_user, {}), *decoded, auth, log);
    case Step::none:
        break;
    }
    return {replies::auth_cancelled(), {}}; // not reached: a response comes only after a 334
}

void AuthDialogue::reset()
{
    m_step = Step::none;
    m_login_user.clear();
}

AuthDialogue::Result AuthDialogue::authenticate(std::string_view mechanism, const std::string& user,
                                                const std::string& password, AuthPort& auth, LogSink& log)
{
    AuthVerdict v = user.empty() || password.empty() ? AuthVerdict::refused : auth.check(user, password);
    LogLine line("auth");
    line.add("mechanism", mechanism).add("user", user); // never the password
    switch (v) {
    case AuthVerdict::ok:
        log.log(line.add("result", "ok"));
        return {replies::auth_ok(), user, std::string(mechanism)};
    case AuthVerdict::temporary:
        log.log(line.add("result", "temporary"));
        return {replies::auth_temporary(), {}};
    case AuthVerdict::refused:
        break;
    }
    log.log(line.add("result", "refused"));
    return {replies::auth_refused(), {}};
}

} // namespace smtpspool
