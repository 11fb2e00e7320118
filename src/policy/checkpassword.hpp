// checkpassword: --auth-command, the checkpassword interface: the command
// (run by /bin/sh -c, with "true" appended as the program it runs on success)
// reads "user\0password\0timestamp\0" from descriptor 3, at most 512 octets,
// and exits 0 for a good password, 1 for a bad one, anything else when it
// could not tell.
#pragma once

#include "smtp/auth.hpp"
#include "base/log.hpp"

#include <chrono>
#include <string>

namespace smtpspool {

class CheckPassword final : public AuthPort {
public:
    CheckPassword(std::string command, std::chrono::seconds timeout, LogSink& log);
    // Exit 0: ok; 1: refused; any other exit, a signal, a timeout or a
    // command that cannot start: temporary.
    AuthVerdict check(std::string_view user, std::string_view password) override;
    // Why the last check was temporary (also logged as auth-error).
    const std::string& failure() const { return m_failure; }

private:
    AuthVerdict run(std::string_view user, std::string_view password);
    std::string m_command;
    std::chrono::seconds m_timeout;
    LogSink& m_log;
    std::string m_failure;
};

} // namespace smtpspool
