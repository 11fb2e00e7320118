// local_deliverers: delivery into a Maildir and to a pipe command. Both hand
// over the message with LF line ends, after Return-Path: and Delivered-To:.
#pragma once

#include "delivery/deliverer.hpp"

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

// %u in the path is the recipient's canonical local part
// (canonical_local_part: unquoted, ASCII lower case) made safe for a file
// name (text::file_name_component: quotes dropped; '/', NUL and control
// characters become '_'; no leading dot); %d is the domain, lower case, made
// safe the same way. The pipe transport's $LOCAL is the canonical local part
// too; $RECIPIENT is the address as stored.
std::string expand_maildir_path(std::string_view pattern, std::string_view address, std::string_view fallback_domain);

// Local transports deliver one recipient at a time.
class PerRecipientDeliverer : public Deliverer {
public:
    std::vector<RecipientOutcome> deliver(const Delivery& delivery) final;

private:
    virtual RecipientOutcome deliver_one(const Delivery& delivery, const std::string& address) = 0;
};

class MaildirDeliverer final : public PerRecipientDeliverer {
public:
    MaildirDeliverer(std::string pattern, std::string hostname);

private:
    RecipientOutcome deliver_one(const Delivery& delivery, const std::string& address) override;
    std::string m_pattern;
    std::string m_hostname;
    unsigned long m_sequence = 0;
};

class PipeDeliverer final : public PerRecipientDeliverer {
public:
    PipeDeliverer(std::string command, std::string spool, std::string hostname, std::chrono::seconds timeout);

private:
    RecipientOutcome deliver_one(const Delivery& delivery, const std::string& address) override;
    std::string m_command;
    std::string m_spool;
    std::string m_hostname;
    std::chrono::seconds m_timeout;
};

} // namespace smtpspool
