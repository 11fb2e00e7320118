// transports: smtp -> SmtpTransport, maildir -> MaildirTransport, pipe -> PipeTransport.
#include "cli/transports.hpp"

#include "delivery/local_transports.hpp"
#include "delivery/smtp_transport.hpp"

namespace smtpspool {

std::unique_ptr<Transport> make_transport(const TransportSpec& spec, const Config& config)
{
    switch (spec.kind) {
    case TransportKind::maildir:
        return std::make_unique<MaildirTransport>(spec.path, config.hostname);
    case TransportKind::pipe:
        return std::make_unique<PipeTransport>(spec.command, config.spool, config.hostname, config.pipe_timeout);
    case TransportKind::smtp:
        break;
    }
    SmtpTimeouts timeouts = config.smtp_timeout ? SmtpTimeouts::uniform(*config.smtp_timeout) : SmtpTimeouts{};
    return std::make_unique<SmtpTransport>(SmtpTarget{spec.host, spec.port}, config.hostname, timeouts);
}

} // namespace smtpspool
