// local_transports: delivery into a Maildir and to a pipe command. Both hand
// over the message with LF line ends, after Return-Path: and Delivered-To:.
#pragma once

#include "transport.hpp"

#include <chrono>
#include <string>

namespace smtpspool {

// CRLF -> LF over any chunking (a CR at the end of a chunk waits for the next).
class LfConverter {
public:
    std::string convert(std::string_view chunk);
    std::string finish(); // a CR left waiting

private:
    bool m_cr = false;
};

// %u in the path is the recipient's local part made safe for a file name
// (quotes dropped; '/', NUL and control characters become '_'; no leading
// dot); %d is the domain, lower case, made safe the same way.
std::string expand_maildir_path(std::string_view pattern, std::string_view address, std::string_view fallback_domain);

class MaildirTransport final : public Transport {
public:
    MaildirTransport(std::string pattern, std::string hostname);
    std::vector<RecipientOutcome> deliver(const Delivery& delivery) override;

private:
    RecipientOutcome deliver_one(const Delivery& delivery, const std::string& address);
    std::string m_pattern;
    std::string m_hostname;
    unsigned long m_sequence = 0;
};

class PipeTransport final : public Transport {
public:
    PipeTransport(std::string command, std::string spool, std::string hostname, std::chrono::seconds timeout);
    std::vector<RecipientOutcome> deliver(const Delivery& delivery) override;

private:
    RecipientOutcome deliver_one(const Delivery& delivery, const std::string& address);
    std::string m_command;
    std::string m_spool;
    std::string m_hostname;
    std::chrono::seconds m_timeout;
};

} // namespace smtpspool
