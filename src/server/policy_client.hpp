// policy_client: the conversation with one policy service (smtpspool(8),
// POLICY DELEGATION): a stream socket (unix:/path or inet:host:port) opened
// at the first question and kept for the rest of the session, each question
// bounded by one deadline. A connection the service closed between two
// questions is opened again once.
#pragma once

#include "base/fd.hpp"
#include "smtp/policy_delegation.hpp"

#include <chrono>
#include <string>

namespace smtpspool {

class PolicyClient final : public PolicyServicePort {
public:
    PolicyClient(std::string spec, PolicyServiceAddress address, std::chrono::milliseconds timeout);

    const std::string& name() const override { return m_spec; }
    // Connect (when not connected), write, read the answer, all before the
    // deadline; on any failure the connection is closed (the next question
    // opens a new one).
    Result<std::string> query(std::string_view request) override;

    // Connections opened so far (for the tests).
    unsigned connections() const { return m_connections; }

private:
    using Deadline = std::chrono::steady_clock::time_point;
    Result<void> connect(Deadline deadline);
    // One attempt on the connection there is; `fresh` when it was just
    // opened. Sets `stale` when a kept connection turned out to be closed
    // before any answer came (worth one more attempt).
    Result<std::string> exchange(std::string_view request, Deadline deadline, bool& stale);

    std::string m_spec;
    PolicyServiceAddress m_address;
    std::chrono::milliseconds m_timeout;
    Fd m_fd;
    unsigned m_connections = 0;
};

} // namespace smtpspool
