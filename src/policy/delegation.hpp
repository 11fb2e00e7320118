// delegation: the policy services the Policy asks after its own checks
// (smtpspool(8), POLICY DELEGATION): the request built from the session's
// facts, each service asked in order through its PolicyServicePort, each
// answer logged, the answers added up (smtp/policy_delegation).
#pragma once

#include "base/log.hpp"
#include "smtp/policy_delegation.hpp"
#include "smtp/policy_port.hpp"

#include <string>
#include <string_view>
#include <vector>

namespace smtpspool {

struct DelegationConfig {
    bool at_data = false;          // --policy-at-data: ask at the end of the message too
    bool failure_is_dunno = false; // --policy-default-action dunno
    std::string instance_prefix;   // unique to the session; the transaction's number follows
};

// The attributes of a request, as Postfix's SMTP server sends them (those we
// know; smtpspool(8) lists them). Pure.
delegation::Attributes request_attributes(delegation::Stage stage, const PolicyFacts& facts,
                                          std::string_view recipient, std::string_view instance_prefix);

class PolicyDelegation {
public:
    PolicyDelegation(std::vector<PolicyServicePort*> services, DelegationConfig config, LogSink& log);

    bool at_data() const { return m_config.at_data; }
    // Asks the services in order; `recipient` at the RCPT stage.
    delegation::Decision::Outcome ask(delegation::Stage stage, const PolicyFacts& facts, std::string_view recipient);

private:
    std::vector<PolicyServicePort*> m_services;
    DelegationConfig m_config;
    LogSink& m_log;
};

} // namespace smtpspool
