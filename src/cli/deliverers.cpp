// deliverers: smtp -> SmtpDeliverer, mx -> MxDeliverer (over DnsResolver and
// SmtpDeliverer), maildir -> MaildirDeliverer, pipe -> PipeDeliverer, http
// -> WebhookDeliverer, amqp -> AmqpDeliverer.
#include "cli/deliverers.hpp"

#include "delivery/amqp_deliverer.hpp"
#include "delivery/dns_resolver.hpp"
#include "delivery/local_deliverers.hpp"
#include "delivery/mx_deliverer.hpp"
#include "delivery/smtp_deliverer.hpp"
#include "delivery/webhook_deliverer.hpp"

namespace smtpspool {

namespace {

// The login of an amqp route: the credentials file's entry for its host and
// port (else for its host), whose user must be the one the route names, if any.
std::unique_ptr<Deliverer> make_amqp_deliverer(const TransportSpec& spec, const Config& config,
                                               const std::vector<AuthEntry>& entries)
{
    AmqpTarget target{spec.host, spec.port, spec.vhost, spec.exchange, spec.routing_key, spec.text};
    std::optional<AmqpCredentials> credentials;
    std::string problem;
    std::string where = "amqp route " + spec.text + ": ";
    if (!config.amqp_credentials_file) {
        problem = where + "no login: --amqp-credentials-file is not set";
    } else if (const AuthEntry* e = find_credentials(entries, spec.host, spec.port); e == nullptr) {
        problem = where + "no entry for its host in --amqp-credentials-file";
    } else if (!spec.user.empty() && e->user != spec.user) {
        problem = where + "the --amqp-credentials-file entry for its host (line " + std::to_string(e->line) +
                  ") is for another user than the route names";
    } else {
        credentials = AmqpCredentials{e->user, e->password};
    }
    // serve may add its trace fields to a message of --max-message-size octets.
    std::uint64_t max_size = static_cast<std::uint64_t>(config.max_message_size) + 65536;
    return std::make_unique<AmqpDeliverer>(std::move(target), std::move(credentials), std::move(problem),
                                           config.amqp_timeout, max_size);
}

} // namespace

std::unique_ptr<Deliverer> make_deliverer(const TransportSpec& spec, const Config& config, const SmtpClientSetup& smtp)
{
    switch (spec.kind) {
    case TransportKind::maildir:
        return std::make_unique<MaildirDeliverer>(spec.path, config.hostname);
    case TransportKind::pipe:
        return std::make_unique<PipeDeliverer>(spec.command, config.spool, config.hostname, config.pipe_timeout);
    case TransportKind::http:
        return std::make_unique<WebhookDeliverer>(
            WebhookOptions{spec.url, smtp.http_secret, config.http_timeout, config.http_tls_ca});
    case TransportKind::amqp:
        return make_amqp_deliverer(spec, config, smtp.amqp_credentials);
    case TransportKind::smtp:
    case TransportKind::mx:
        break;
    }
    SmtpTimeouts timeouts = config.smtp_timeout ? SmtpTimeouts::uniform(*config.smtp_timeout) : SmtpTimeouts{};
    if (spec.kind == TransportKind::mx) {
        std::vector<DnsServer> servers;
        std::string why;
        for (const std::string& text : config.dns_servers) {
            if (auto s = parse_dns_server(text, why)) {
                servers.push_back(*s);
            }
        }
        MxOptions options{static_cast<std::uint16_t>(config.mx_port), SelfIdentity{config.hostname, local_addresses()}};
        // TLS toward each address for the MX host name that gave it (the level
        // --smtp-tls and --smtp-tls-policy give that name, SNI, the name
        // verify checks), for the address itself when it is an address
        // literal; no AUTH toward mail exchangers.
        auto connect = [helo = config.hostname, timeouts, level = config.smtp_tls, policy = config.smtp_tls_policy,
                        tls = smtp.tls](const std::string& name, const std::string& address, std::uint16_t port) {
            SmtpSecurity security;
            security.level = tls_level_for(name.empty() ? address : name, level, policy);
            security.tls = tls;
            return std::make_unique<SmtpDeliverer>(SmtpTarget{address, port, false, name}, helo, timeouts,
                                                   std::move(security));
        };
        return std::make_unique<MxDeliverer>(std::move(options), std::make_unique<DnsResolver>(servers), connect,
                                             random_shuffle());
    }
    SmtpSecurity security;
    security.level = tls_level_for(spec.host, config.smtp_tls, config.smtp_tls_policy);
    security.tls = smtp.tls;
    if (const AuthEntry* cred = find_credentials(smtp.credentials, spec.host, spec.port)) {
        security.credentials = *cred;
    }
    return std::make_unique<SmtpDeliverer>(SmtpTarget{spec.host, spec.port, spec.tls_on_connect}, config.hostname,
                                           timeouts, std::move(security));
}

} // namespace smtpspool
