// delegation: the request, the services asked in order, each answer logged.
#include "policy/delegation.hpp"

namespace smtpspool {
namespace {

const char* stage_name(delegation::Stage stage)
{
    return stage == delegation::Stage::rcpt ? "rcpt" : "data";
}

} // namespace

delegation::Attributes request_attributes(delegation::Stage stage, const PolicyFacts& facts,
                                          std::string_view recipient, std::string_view instance_prefix)
{
    const bool rcpt = stage == delegation::Stage::rcpt;
    const Peer& peer = facts.peer;
    const std::string name = peer.hostname.value_or("unknown");
    // At the end of the message the recipient is named only when there is one.
    std::string to = rcpt ? std::string(recipient) : facts.recipients.size() == 1 ? facts.recipients.front() : "";
    delegation::Attributes a{
        {"request", "smtpd_access_policy"},
        {"protocol_state", rcpt ? "RCPT" : "END-OF-MESSAGE"},
        {"protocol_name", facts.esmtp ? "ESMTP" : "SMTP"},
        {"helo_name", std::string(facts.helo)},
        {"queue_id", rcpt ? "" : std::string(facts.id)},
        {"sender", std::string(facts.sender)},
        {"recipient", std::move(to)},
        {"recipient_count", rcpt ? "0" : std::to_string(facts.recipients.size())},
        {"client_address", peer.local ? "" : peer.address},
        {"client_name", name},
        {"reverse_client_name", name},
        {"instance", std::string(instance_prefix) + "." + std::to_string(facts.transaction)},
        {"sasl_username", std::string(facts.auth_user)},
        {"sasl_sender", ""},
        {"size", std::to_string(rcpt ? facts.declared_size : facts.size)},
        {"ccert_subject", ""},
        {"ccert_issuer", ""},
        {"ccert_fingerprint", ""},
        {"ccert_pubkey_fingerprint", ""},
        {"encryption_protocol", facts.tls_info ? facts.tls_info->version : ""},
        {"encryption_cipher", facts.tls_info ? facts.tls_info->cipher : ""},
        {"etrn_domain", ""},
        {"stress", ""},
        {"client_port", peer.port && !peer.local ? std::to_string(*peer.port) : ""},
        {"server_address", peer.local_address.value_or("")},
        {"server_port", peer.local_port ? std::to_string(*peer.local_port) : ""},
    };
    return a;
}

PolicyDelegation::PolicyDelegation(std::vector<PolicyServicePort*> services, DelegationConfig config, LogSink& log)
    : m_services(std::move(services)), m_config(std::move(config)), m_log(log)
{
}

delegation::Decision::Outcome PolicyDelegation::ask(delegation::Stage stage, const PolicyFacts& facts,
                                                    std::string_view recipient)
{
    const std::string request =
        delegation::encode_request(request_attributes(stage, facts, recipient, m_config.instance_prefix));
    delegation::Decision decision;
    for (PolicyServicePort* service : m_services) {
        LogLine line("policy-service");
        line.add("service", service->name()).add("stage", stage_name(stage));
        if (stage == delegation::Stage::rcpt) {
            line.add("to", recipient);
        }
        Result<delegation::Action, std::string> parsed = fail(std::string());
        if (auto answer = service->query(request); !answer) {
            parsed = fail(answer.error().message);
        } else if (auto action = delegation::answer_action(answer.value()); !action) {
            parsed = fail(action.error());
        } else {
            parsed = delegation::parse_action(action.value());
        }
        if (!parsed) {
            const bool go_on = m_config.failure_is_dunno;
            line.add("result", "failed").add("reason", parsed.error()).add("default", go_on ? "dunno" : "tempfail");
            m_log.log(line);
            if (!decision.add_failure(go_on ? std::nullopt : std::optional<Reply>(delegation::service_unavailable()))) {
                break;
            }
            continue;
        }
        const delegation::Action& a = parsed.value();
        line.add("action", delegation::kind_name(a.kind));
        if (a.reply) {
            line.add("code", static_cast<std::uint64_t>(a.reply->code)).add("text", a.reply->text);
        } else if (a.kind == delegation::Action::Kind::prepend) {
            line.add("header", a.header);
        } else if (!a.text.empty()) {
            line.add("text", a.text);
        }
        m_log.log(line);
        if (!decision.add(a)) {
            break;
        }
    }
    auto outcome = decision.outcome();
    if (outcome.headers_dropped > 0) {
        m_log.log(LogLine("policy-service-headers-dropped").add("count", static_cast<std::uint64_t>(outcome.headers_dropped)));
    }
    return outcome;
}

} // namespace smtpspool
