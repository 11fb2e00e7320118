// auth_dialogue: the exchange that one AUTH command opens (RFC 4954 §4), with
// the PLAIN (RFC 4616) and LOGIN mechanisms: the mechanism and initial
// response, the 334 challenges, "*" to cancel, the check of the credentials
// through the AuthPort. Pure. Whether AUTH may be given at all (EHLO, once,
// TLS) is the NFA table's business, not this type's.
#pragma once

#include "base/log.hpp"
#include "smtp/auth.hpp"
#include "smtp/smtp_reply.hpp"

#include <optional>
#include <string>
#include <string_view>

namespace smtpspool {

class AuthDialogue {
public:
    struct Result {
        Reply reply;
        std::optional<std::string> user; // authenticated as (the reply is 235)
        std::string mechanism = {};      // with user: "PLAIN" or "LOGIN"
    };

    // AUTH's argument: mechanism [initial-response].
    Result begin(std::string_view argument, AuthPort& auth, LogSink& log);
    // A line that answers a 334.
    Result respond(std::string_view line, AuthPort& auth, LogSink& log);
    // A 334 was sent: the next line is a response, not a command.
    bool waiting() const { return m_step != Step::none; }
    // Forget an exchange in progress.
    void reset();

private:
    enum class Step { none, plain, login_user, login_password };
    Result authenticate(std::string_view mechanism, const std::string& user, const std::string& password,
                        AuthPort& auth, LogSink& log);

    Step m_step = Step::none;
    std::string m_login_user; // LOGIN: the user name given so far
};

} // namespace smtpspool
