// deliverers: smtp -> SmtpDeliverer, maildir -> MaildirDeliverer, pipe -> PipeDeliverer.
#include "cli/deliverers.hpp"

#include "delivery/local_deliverers.hpp"
#include "delivery/smtp_deliverer.hpp"

namespace smtpspool {

std::unique_ptr<Deliverer> make_deliverer(const TransportSpec& spec, const Config& config, const SmtpClientSetup& smtp)
{
    switch (spec.kind) {
    case TransportKind::maildir:
        return std::make_unique<MaildirDeliverer>(spec.path, config.hostname);
    case TransportKind::pipe:
        return std::make_unique<PipeDeliverer>(spec.command, config.spool, config.hostname, config.pipe_timeout);
    case TransportKind::smtp:
        break;
    }
    SmtpTimeouts timeouts = config.smtp_timeout ? SmtpTimeouts::uniform(*config.smtp_timeout) : SmtpTimeouts{};
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
