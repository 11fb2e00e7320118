// mx_deliverer: the mx transport. The recipients of a message are grouped by
// domain; each domain's hosts come from plan_mx (delivery/mx, through the
// Resolver port), and its recipients go in one transaction to the first
// address that answers for them, by the SMTP client (one SmtpDeliverer per
// address, made by a ConnectionFactory so that tests can stand in for it).
#pragma once

#include "delivery/deliverer.hpp"
#include "delivery/mx.hpp"

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace smtpspool {

// A connection to one address and port (an SmtpDeliverer in runq). name: the
// mail exchanger's host name that gave the address ("" for an address
// literal); TLS toward the address is for that name (its policy entry, SNI,
// the name the certificate must bear).
using ConnectionFactory = std::function<std::unique_ptr<Deliverer>(const std::string& name,
                                                                   const std::string& address, std::uint16_t port)>;

struct MxOptions {
    std::uint16_t port = 25; // --mx-port
    SelfIdentity self;
};

// Open connections kept for later messages of the run (the least recently
// used one is closed past this).
inline constexpr std::size_t k_mx_connections_kept = 8;

// Outcomes, per recipient:
// - the domain's plan bounces (null MX, NXDOMAIN, a mail loop, no host):
//   permanent, the plan's reply; it defers (a DNS failure): temporary.
// - otherwise the addresses are tried in plan order (every address of a host
//   before the next host) while the connection's outcome says try_next
//   (no connection, a greeting or EHLO refused, a lost connection before the
//   end of the data); the first other outcome is the recipient's (a 5xx to
//   RCPT: permanent; 4xx: temporary, no other host tried). When every
//   address was tried: temporary, with the last address's detail.
// - hop: the host and address of the last connection tried for it.
// One connection per host name and address (two names of one address are two
// connections: each has its own TLS name).
// An address that failed so for every recipient is not tried again in the
// run (its detail is reused). Plans are kept for the run, one per domain.
class MxDeliverer final : public Deliverer {
public:
    MxDeliverer(MxOptions options, std::unique_ptr<Resolver> resolver, ConnectionFactory connect, Shuffle shuffle);
    ~MxDeliverer() override;

    std::vector<RecipientOutcome> deliver(const Delivery& delivery) override;
    void finish() override;

private:
    const MxPlan& plan(const std::string& domain);
    Deliverer& connection(const std::string& name, const std::string& address);
    void deliver_domain(const Delivery& delivery, const std::vector<std::size_t>& positions,
                        const std::string& domain, std::vector<RecipientOutcome>& out);

    MxOptions m_options;
    std::unique_ptr<Resolver> m_resolver;
    ConnectionFactory m_connect;
    Shuffle m_shuffle;
    std::map<std::string, MxPlan> m_plans;
    struct Kept {
        std::unique_ptr<Deliverer> deliverer;
        std::uint64_t used = 0;
    };
    std::map<std::pair<std::string, std::string>, Kept> m_connections; // (name, address)
    std::uint64_t m_clock = 0;
    std::map<std::string, std::string> m_down; // address -> detail of its failure in this run
};

// The shuffle of runq: equal preferences in a random order.
Shuffle random_shuffle();

} // namespace smtpspool
