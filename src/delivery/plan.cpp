// plan: the due and expiry tests, and the routes a run would take.
#include "delivery/plan.hpp"

#include "delivery/local_deliverers.hpp"

namespace smtpspool {

bool message_due(const Envelope& e, TimePoint now)
{
    if (!e.next_attempt) {
        return true;
    }
    auto due = parse_rfc3339_utc(*e.next_attempt);
    return !due || *due <= now;
}

std::optional<std::chrono::seconds> message_expired_age(const Envelope& e, TimePoint now,
                                                        std::chrono::seconds max_queue_time)
{
    auto arrived = parse_rfc3339_utc(e.received_at);
    if (!arrived || now - *arrived < max_queue_time) {
        return std::nullopt;
    }
    return std::chrono::duration_cast<std::chrono::seconds>(now - *arrived);
}

namespace {

std::string host_port(const TransportSpec& t)
{
    bool v6 = t.host.find(':') != std::string::npos;
    return (v6 ? "[" + t.host + "]" : t.host) + ":" + std::to_string(t.port);
}

} // namespace

MessagePlan plan_message(const Envelope& e, const std::vector<Route>& routes, TimePoint now,
                         std::chrono::seconds max_queue_time, bool named)
{
    MessagePlan plan;
    plan.expired_age = message_expired_age(e, now, max_queue_time);
    if (e.held) {
        plan.take = MessagePlan::Take::held;
        return plan;
    }
    if (!named && !message_due(e, now) && !plan.expired_age) {
        plan.take = MessagePlan::Take::not_due;
        return plan;
    }
    const std::string then = plan.expired_age ? "; a temporary failure fails it for good (expired)" : "";
    for (const Recipient& r : e.recipients) {
        if (r.status != RecipientStatus::pending) {
            continue;
        }
        RecipientPlan p;
        p.address = r.address;
        p.domain = recipient_domain(r.address, e.hostname);
        p.route = find_route(routes, p.domain);
        if (p.route == nullptr) {
            p.action = plan.expired_age ? "no route for the domain: fail (expired)" : "no route for the domain: defer";
        } else {
            const TransportSpec& t = p.route->transport;
            switch (t.kind) {
            case TransportKind::smtp:
                p.next_hop = host_port(t);
                p.action = "send by SMTP to " + p.next_hop + then;
                break;
            case TransportKind::mx:
                // A dry run looks nothing up: the hosts are found when sending.
                p.next_hop = "the mail exchangers of " + p.domain;
                p.action = "send by SMTP to " + p.next_hop + " (looked up in DNS when sent)" + then;
                break;
            case TransportKind::maildir:
                p.next_hop = expand_maildir_path(t.path, r.address, e.hostname);
                p.action = "write into the maildir " + p.next_hop + then;
                break;
            case TransportKind::pipe:
                p.next_hop = t.command;
                p.action = "pipe to the command " + p.next_hop + then;
                break;
            case TransportKind::http:
                p.next_hop = t.url;
                p.action = "post to " + p.next_hop + then;
                break;
            case TransportKind::amqp:
                p.next_hop = host_port(t);
                p.action = "publish by AMQP to " + p.next_hop + " (virtual host " + t.vhost + ", exchange '" +
                           t.exchange + "', routing key '" + t.routing_key + "')" + then;
                break;
            }
        }
        plan.recipients.push_back(std::move(p));
    }
    return plan;
}

} // namespace smtpspool
