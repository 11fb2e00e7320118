// mx_deliverer: group by domain, plan, try each address in order.
#include "delivery/mx_deliverer.hpp"

#include "delivery/route.hpp"

#include <algorithm>
#include <random>

namespace smtpspool {

MxDeliverer::MxDeliverer(MxOptions options, std::unique_ptr<Resolver> resolver, ConnectionFactory connect,
                         Shuffle shuffle)
    : m_options(std::move(options)), m_resolver(std::move(resolver)), m_connect(std::move(connect)),
      m_shuffle(std::move(shuffle))
{
}

MxDeliverer::~MxDeliverer() { finish(); }

void MxDeliverer::finish()
{
    for (auto& [key, kept] : m_connections) {
        kept.deliverer->finish();
    }
    m_connections.clear();
    m_plans.clear();
    m_down.clear();
}

const MxPlan& MxDeliverer::plan(const std::string& domain)
{
    auto it = m_plans.find(domain);
    if (it == m_plans.end()) {
        it = m_plans.emplace(domain, plan_mx(domain, *m_resolver, m_options.self, m_shuffle)).first;
    }
    return it->second;
}

Deliverer& MxDeliverer::connection(const std::string& name, const std::string& address)
{
    auto key = std::make_pair(name, address);
    auto it = m_connections.find(key);
    if (it == m_connections.end()) {
        if (m_connections.size() >= k_mx_connections_kept) {
            auto oldest = std::min_element(m_connections.begin(), m_connections.end(),
                                           [](const auto& a, const auto& b) { return a.second.used < b.second.used; });
            oldest->second.deliverer->finish();
            m_connections.erase(oldest);
        }
        it = m_connections.emplace(key, Kept{m_connect(name, address, m_options.port), 0}).first;
    }
    it->second.used = ++m_clock;
    return *it->second.deliverer;
}

void MxDeliverer::deliver_domain(const Delivery& delivery, const std::vector<std::size_t>& positions,
                                 const std::string& domain, std::vector<RecipientOutcome>& out)
{
    const MxPlan& p = plan(domain);
    if (p.kind != MxPlan::Kind::deliver) {
        for (std::size_t pos : positions) {
            out[pos] = {p.kind == MxPlan::Kind::bounce ? Outcome::permanent : Outcome::temporary, p.detail};
        }
        return;
    }
    std::vector<std::size_t> open = positions;
    RecipientOutcome last{Outcome::temporary, "no address tried"};
    for (const MxHost& host : p.hosts) {
        for (const std::string& address : host.addresses) {
            if (open.empty()) {
                return;
            }
            last.hop = hop_text(host.name, address, m_options.port);
            if (auto down = m_down.find(address); down != m_down.end()) {
                last.detail = down->second;
                last.tls.reset();
                continue;
            }
            std::vector<std::size_t> indices;
            for (std::size_t pos : open) {
                indices.push_back(delivery.recipients[pos]);
            }
            auto outcomes = connection(host.name, address).deliver(Delivery{delivery.envelope, delivery.open_message, indices});
            std::vector<std::size_t> still;
            for (std::size_t k = 0; k < open.size(); ++k) {
                RecipientOutcome o =
                    k < outcomes.size() ? outcomes[k] : RecipientOutcome{Outcome::temporary, "no outcome"};
                o.hop = last.hop;
                if (o.outcome == Outcome::temporary && o.try_next) {
                    last.detail = o.detail;
                    last.tls = o.tls;
                    still.push_back(open[k]);
                    continue;
                }
                o.try_next = false;
                out[open[k]] = std::move(o);
            }
            if (still.size() == open.size()) {
                m_down[address] = last.detail;
            }
            open = std::move(still);
        }
    }
    for (std::size_t pos : open) {
        out[pos] = RecipientOutcome{Outcome::temporary, last.detail};
        out[pos].hop = last.hop;
        out[pos].tls = last.tls; // what the last server tried showed of its TLS
    }
}

std::vector<RecipientOutcome> MxDeliverer::deliver(const Delivery& delivery)
{
    std::vector<RecipientOutcome> out(delivery.recipients.size());
    std::map<std::string, std::vector<std::size_t>> by_domain;
    for (std::size_t pos = 0; pos < delivery.recipients.size(); ++pos) {
        std::size_t index = delivery.recipients[pos];
        if (index >= delivery.envelope.recipients.size()) {
            out[pos] = {Outcome::temporary, "no recipient " + std::to_string(index) + " in the envelope"};
            continue;
        }
        const std::string& address = delivery.envelope.recipients[index].address;
        by_domain[recipient_domain(address, delivery.envelope.hostname)].push_back(pos);
    }
    for (const auto& [domain, positions] : by_domain) {
        deliver_domain(delivery, positions, domain, out);
    }
    return out;
}

Shuffle random_shuffle()
{
    return [engine = std::make_shared<std::minstd_rand>(std::random_device{}())](
               std::vector<MxRecord>& records, std::size_t first, std::size_t last) {
        std::shuffle(records.begin() + static_cast<std::ptrdiff_t>(first),
                     records.begin() + static_cast<std::ptrdiff_t>(last), *engine);
    };
}

} // namespace smtpspool
