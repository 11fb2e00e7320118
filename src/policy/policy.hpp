// policy: the PolicyPort that serve gives the session (smtpspool(8), POLICY):
// the sender deny list, aliases, local users and the three hook programs; and
// the client access decision made before the greeting. Files are read once per
// process, that is per connection: an edited file applies from the next one.
#pragma once

#include "base/result.hpp"
#include "policy/address_list.hpp"
#include "policy/delegation.hpp"
#include "policy/aliases.hpp"
#include "policy/password_file.hpp"
#include "base/log.hpp"
#include "model/peer.hpp"
#include "smtp/policy_port.hpp"

#include <chrono>
#include <cstddef>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace smtpspool {

// The tcprules variable that denies a client the way --deny-client does.
inline constexpr const char* k_deny_variable = "SMTPSPOOL_DENY";

// True when the client is refused service: SMTPSPOOL_DENY is set, or the most
// specific network among --deny-client and --allow-client that holds its
// address is a deny one (allow wins a tie). Local clients have no address and
// are refused only by the variable; a network client whose address is unknown
// is refused by a deny network that holds every IPv4 or every IPv6 address.
// Pure.
bool client_denied(const Peer& peer, const std::vector<std::string>& deny, const std::vector<std::string>& allow,
                   const EnvLookup& env);

// What the policy reads of the configuration (smtpspool.conf(5)); the
// command-line layer fills it in from its options.
struct PolicyConfig {
    std::string hostname;
    std::vector<std::string> local_domains;
    std::size_t max_recipients = 0;
    std::optional<std::string> sender_deny; // files
    std::optional<std::string> aliases;
    std::optional<std::string> local_users;
    std::optional<std::string> auth_passwd;
    bool reject_unknown_recipients = false;
    std::optional<std::string> mail_hook; // commands, run by /bin/sh -c
    std::optional<std::string> rcpt_hook;
    std::optional<std::string> data_hook;
    std::chrono::seconds hook_timeout{0};
};

struct PolicyFiles {
    std::optional<SenderList> sender_deny;
    std::optional<Aliases> aliases;
    std::optional<LocalUsers> local_users;
    std::optional<PasswordFile> passwords; // --auth-passwd
};

// Reads the files the configuration names; the error names the file and line.
Result<PolicyFiles> load_policy_files(const PolicyConfig& config);

class Policy final : public PolicyPort {
public:
    // readable_message: the open message's file (SpoolWriter::readable_message)
    // for the data hook's standard input.
    using MessageFile = std::function<Result<std::string>()>;
    Policy(const PolicyConfig& config, PolicyFiles files, MessageFile message_file, LogSink& log);

    std::optional<Reply> check_sender(const PolicyFacts& facts) override;
    RecipientVerdict check_recipient(const PolicyFacts& facts, std::string_view recipient, bool local_domain) override;
    MessageVerdict check_message(const PolicyFacts& facts) override;
    // Policy services, asked after every other check of a recipient passed
    // (and of a message, with --policy-at-data).
    void use_delegation(PolicyDelegation& delegation) { m_delegation = &delegation; }

private:
    bool is_local_domain(std::string_view domain) const;
    // After the data hook accepted with `headers`: the services' word.
    MessageVerdict ask_services(const PolicyFacts& facts, std::string headers);

    PolicyConfig m_config;
    PolicyFiles m_files;
    MessageFile m_message_file;
    LogSink& m_log;
    PolicyDelegation* m_delegation = nullptr;
};

} // namespace smtpspool
