// policy: client access, the policy files and the hooks, each refusal logged.
#include "policy/policy.hpp"

#include "base/cidr.hpp"
#include "policy/hook.hpp"
#include "smtp/smtp_address.hpp"

#include <algorithm>
#include <fcntl.h>
#include <fstream>
#include <sstream>
#include <unistd.h>

namespace smtpspool {
namespace {

// The networks of `list` that hold ip: the longest prefix, or -1.
int longest_match(const std::vector<std::string>& list, const std::array<std::uint8_t, 16>& ip)
{
    int best = -1;
    for (const std::string& text : list) {
        if (auto net = parse_network(text); net && contains(*net, ip)) {
            best = std::max(best, static_cast<int>(net->prefix));
        }
    }
    return best;
}

template <typename T>
Result<T> load_list(const std::string& option, const std::string& path)
{
    std::ifstream in(path, std::ios::binary);
    if (!in) {
        return Error{errno, option + ": cannot read " + path};
    }
    std::ostringstream text;
    text << in.rdbuf();
    auto parsed = T::parse(text.str());
    if (auto* e = std::get_if<ListError>(&parsed)) {
        return Error{0, option + ": " + path + " line " + std::to_string(e->line) + ": " + e->message};
    }
    return std::move(std::get<T>(parsed));
}

const char* stage_name(HookStage stage)
{
    switch (stage) {
    case HookStage::mail:
        return "mail";
    case HookStage::rcpt:
        return "rcpt";
    case HookStage::data:
        break;
    }
    return "data";
}

std::string joined(const std::vector<std::string>& list)
{
    std::string out;
    for (const std::string& s : list) {
        out += out.empty() ? "" : "\n";
        out += s;
    }
    return out;
}

// The session facts a hook sees (smtpspool(8), HOOKS). Client text reaches a
// hook only here, never in its command line.
EnvironmentVariables hook_environment(const PolicyConfig& config, const PolicyFacts& facts, HookStage stage)
{
    EnvironmentVariables env{
        {"SMTPSPOOL_STAGE", stage_name(stage)},
        {"SMTPSPOOL_HOSTNAME", config.hostname},
        {"SMTPSPOOL_CLIENT_LOCAL", facts.peer.local ? "yes" : "no"},
        {"SMTPSPOOL_CLIENT_ADDRESS", facts.peer.address},
        {"SMTPSPOOL_CLIENT_PORT", facts.peer.port ? std::to_string(*facts.peer.port) : ""},
        {"SMTPSPOOL_CLIENT_HOSTNAME", facts.peer.hostname.value_or("")},
        {"SMTPSPOOL_RELAY", facts.may_relay ? "yes" : "no"},
        {"SMTPSPOOL_HELO", std::string(facts.helo)},
        {"SMTPSPOOL_SENDER", std::string(facts.sender)},
        {"SMTPSPOOL_RECIPIENTS", joined(facts.recipients)},
        {"SMTPSPOOL_TLS", facts.tls ? "yes" : "no"},
    };
    if (stage == HookStage::data) {
        env.emplace_back("SMTPSPOOL_QUEUE_ID", std::string(facts.id));
        env.emplace_back("SMTPSPOOL_SIZE", std::to_string(facts.size));
    }
    return env;
}

// Runs a hook and logs what it did; the verdict decides.
HookVerdict run_and_judge(const PolicyConfig& config, const std::string& command, EnvironmentVariables env, HookStage stage,
                          int stdin_fd, LogSink& log)
{
    HookRequest request{command, std::move(env), stdin_fd,
                        std::chrono::duration_cast<std::chrono::milliseconds>(config.hook_timeout)};
    HookRun run = run_hook(request);
    HookVerdict verdict = judge_hook(run, stage);
    LogLine line("hook");
    line.add("stage", stage_name(stage)).add("result", verdict.accept ? "accept" : "refuse");
    line.add("reason", verdict.log_reason);
    if (verdict.reply) {
        line.add("code", static_cast<std::uint64_t>(verdict.reply->code));
    }
    if (!run.error.empty()) {
        line.add("error", run.error);
    }
    log.log(line);
    // The hook's standard error goes to the log, a line at a time, bounded.
    std::istringstream err(run.err);
    std::string text;
    for (int n = 0; n < 20 && std::getline(err, text);) {
        if (!text.empty()) {
            log.log(LogLine("hook-stderr").add("stage", stage_name(stage)).add("line", text));
            ++n;
        }
    }
    for (const std::string& ignored : verdict.ignored_lines) {
        log.log(LogLine("hook-ignored").add("stage", stage_name(stage)).add("line", ignored));
    }
    return verdict;
}

} // namespace

bool client_denied(const Peer& peer, const std::vector<std::string>& deny, const std::vector<std::string>& allow,
                   const EnvLookup& env)
{
    if (env(k_deny_variable) != nullptr) {
        return true;
    }
    if (peer.local) {
        return false;
    }
    auto ip = parse_ip(peer.address);
    if (!ip) {
        // No address: in no network but one that holds every address of a
        // family (0.0.0.0/0, ::/0), which no --allow-client network can except.
        const auto first4 = *parse_ip("0.0.0.0");
        const auto last4 = *parse_ip("255.255.255.255");
        return std::ranges::any_of(deny, [&](const std::string& text) {
            auto net = parse_network(text);
            return net && (net->prefix == 0 || (contains(*net, first4) && contains(*net, last4)));
        });
    }
    int denied = longest_match(deny, *ip);
    return denied >= 0 && denied > longest_match(allow, *ip);
}

Result<PolicyFiles> load_policy_files(const PolicyConfig& config)
{
    PolicyFiles files;
    if (config.sender_deny) {
        auto r = load_list<SenderList>("sender-deny", *config.sender_deny);
        if (!r) {
            return r.error();
        }
        files.sender_deny = std::move(r.value());
    }
    if (config.aliases) {
        auto r = load_list<Aliases>("aliases", *config.aliases);
        if (!r) {
            return r.error();
        }
        files.aliases = std::move(r.value());
    }
    if (config.local_users) {
        auto r = load_list<LocalUsers>("local-users", *config.local_users);
        if (!r) {
            return r.error();
        }
        files.local_users = std::move(r.value());
    }
    if (config.auth_passwd) {
        auto r = load_list<PasswordFile>("auth-passwd", *config.auth_passwd);
        if (!r) {
            return r.error();
        }
        files.passwords = std::move(r.value());
    }
    return files;
}

Policy::Policy(const PolicyConfig& config, PolicyFiles files, MessageFile message_file, LogSink& log)
    : m_config(config), m_files(std::move(files)), m_message_file(std::move(message_file)), m_log(log)
{
}

bool Policy::is_local_domain(std::string_view domain) const
{
    return smtpspool::is_local_domain(domain, m_config.local_domains);
}

std::optional<Reply> Policy::check_sender(const PolicyFacts& facts)
{
    if (m_files.sender_deny && m_files.sender_deny->matches(facts.sender)) {
        m_log.log(LogLine("sender-denied").add("from", facts.sender));
        return replies::sender_denied();
    }
    if (m_config.mail_hook) {
        HookVerdict v = run_and_judge(m_config, *m_config.mail_hook, hook_environment(m_config, facts, HookStage::mail),
                                      HookStage::mail, -1, m_log);
        if (!v.accept) {
            return v.reply.value_or(replies::policy_tempfail());
        }
    }
    return std::nullopt;
}

PolicyPort::RecipientVerdict Policy::check_recipient(const PolicyFacts& facts, std::string_view recipient,
                                                     bool local_domain)
{
    auto is_local = [this](std::string_view d) { return is_local_domain(d); };
    std::vector<std::string> addresses{std::string(recipient)};
    bool aliased = m_files.aliases && m_files.aliases->has(recipient, is_local);
    if (aliased) {
        auto expanded = m_files.aliases->expand(recipient, is_local, m_config.max_recipients, m_config.hostname);
        if (auto* refused = std::get_if<Aliases::Refused>(&expanded)) {
            m_log.log(LogLine("alias-error").add("to", recipient).add("reason", refused->why));
            return {replies::alias_loop(), {}};
        }
        addresses = std::move(std::get<std::vector<std::string>>(expanded));
    } else if (m_config.reject_unknown_recipients && local_domain) {
        std::string local = canonical_local_part(recipient.substr(0, recipient.rfind('@')));
        // RFC 5321 §4.5.1: postmaster always exists.
        bool known = local == "postmaster" || (m_files.local_users && m_files.local_users->contains(local));
        if (!known) {
            return {replies::user_unknown(), {}};
        }
    }
    if (m_config.rcpt_hook) {
        EnvironmentVariables env = hook_environment(m_config, facts, HookStage::rcpt);
        env.emplace_back("SMTPSPOOL_RECIPIENT", std::string(recipient));
        HookVerdict v = run_and_judge(m_config, *m_config.rcpt_hook, std::move(env), HookStage::rcpt, -1, m_log);
        if (!v.accept) {
            return {v.reply.value_or(replies::policy_tempfail()), {}};
        }
    }
    if (m_delegation) {
        auto o = m_delegation->ask(delegation::Stage::rcpt, facts, recipient);
        if (o.refusal) {
            return {std::move(o.refusal), {}};
        }
        return {std::nullopt, std::move(addresses), std::move(o.headers), o.hold, o.discard};
    }
    return {std::nullopt, std::move(addresses)};
}

PolicyPort::MessageVerdict Policy::ask_services(const PolicyFacts& facts, std::string headers)
{
    if (!m_delegation || !m_delegation->at_data()) {
        return {std::nullopt, std::move(headers)};
    }
    auto o = m_delegation->ask(delegation::Stage::end_of_message, facts, {});
    if (o.refusal) {
        return {std::move(o.refusal), {}};
    }
    return {std::nullopt, std::move(headers) + o.headers, o.hold, o.discard};
}

PolicyPort::MessageVerdict Policy::check_message(const PolicyFacts& facts)
{
    if (!m_config.data_hook) {
        return ask_services(facts, {});
    }
    auto path = m_message_file();
    int fd = path ? ::open(path.value().c_str(), O_RDONLY | O_CLOEXEC) : -1;
    if (fd < 0) {
        m_log.log(LogLine("hook").add("stage", "data").add("result", "refuse").add("reason", "no-message-file"));
        return {replies::policy_tempfail(), {}};
    }
    HookVerdict v = run_and_judge(m_config, *m_config.data_hook, hook_environment(m_config, facts, HookStage::data),
                                  HookStage::data, fd, m_log);
    ::close(fd);
    if (!v.accept) {
        return {v.reply.value_or(replies::policy_tempfail()), {}};
    }
    std::string headers;
    for (const std::string& line : v.header_lines) {
        headers += line;
    }
    return ask_services(facts, std::move(headers));
}

} // namespace smtpspool
