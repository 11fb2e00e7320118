// schedule: groups of next hops (union-find over the messages' hops), workers
// per group, messages per worker.
#include "delivery/schedule.hpp"

#include <algorithm>
#include <map>
#include <numeric>
#include <set>

namespace smtpspool {
namespace {

class Groups {
public:
    std::size_t add(const std::string& hop)
    {
        auto [it, fresh] = m_index.emplace(hop, m_parent.size());
        if (fresh) {
            m_parent.push_back(m_parent.size());
        }
        return it->second;
    }
    std::size_t find(std::size_t i)
    {
        while (m_parent[i] != i) {
            m_parent[i] = m_parent[m_parent[i]];
            i = m_parent[i];
        }
        return i;
    }
    void join(std::size_t a, std::size_t b) { m_parent[find(a)] = find(b); }

private:
    std::map<std::string, std::size_t> m_index;
    std::vector<std::size_t> m_parent;
};

struct Group {
    std::set<std::string> hops;
    std::vector<std::size_t> messages; // indices, in order
    std::size_t lanes = 1;
};

} // namespace

std::vector<Lane> plan_lanes(const std::vector<PlannedMessage>& messages, std::size_t concurrency,
                             std::size_t per_host)
{
    concurrency = std::max<std::size_t>(concurrency, 1);
    per_host = std::max<std::size_t>(per_host, 1);

    Groups sets;
    for (const PlannedMessage& m : messages) {
        for (const std::string& h : m.hops) {
            sets.join(sets.add(h), sets.add(m.hops.front()));
        }
    }
    // The groups in the order of their first message.
    std::map<std::size_t, std::size_t> group_of_root;
    std::vector<Group> groups;
    std::vector<std::size_t> hopless;
    for (std::size_t i = 0; i < messages.size(); ++i) {
        const PlannedMessage& m = messages[i];
        if (m.hops.empty()) {
            hopless.push_back(i);
            continue;
        }
        auto [it, fresh] = group_of_root.emplace(sets.find(sets.add(m.hops.front())), groups.size());
        if (fresh) {
            groups.emplace_back();
        }
        Group& g = groups[it->second];
        g.hops.insert(m.hops.begin(), m.hops.end());
        g.messages.push_back(i);
    }

    // The largest groups first (stable: equal groups keep their order).
    std::vector<std::size_t> order(groups.size());
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(),
                     [&](std::size_t a, std::size_t b) { return groups[a].messages.size() > groups[b].messages.size(); });

    std::vector<Lane> lanes;
    std::vector<std::vector<std::size_t>> lane_messages;
    if (groups.size() >= concurrency) {
        // One lane per group is too many: groups share lanes, each group in
        // one lane, the next largest group to the lane with the fewest messages.
        lanes.resize(std::min(concurrency, groups.size()));
        lane_messages.resize(lanes.size());
        for (std::size_t g : order) {
            auto lightest = std::min_element(lane_messages.begin(), lane_messages.end(),
                                             [](const auto& a, const auto& b) { return a.size() < b.size(); });
            std::size_t l = static_cast<std::size_t>(lightest - lane_messages.begin());
            lanes[l].hops.insert(lanes[l].hops.end(), groups[g].hops.begin(), groups[g].hops.end());
            lightest->insert(lightest->end(), groups[g].messages.begin(), groups[g].messages.end());
        }
    } else {
        // Spare lanes, one at a time, to the group with the most messages per
        // lane that may still have another.
        for (std::size_t spare = concurrency - groups.size(); spare > 0; --spare) {
            Group* best = nullptr;
            for (std::size_t g : order) {
                Group& c = groups[g];
                if (c.lanes >= per_host || c.lanes >= c.messages.size()) {
                    continue;
                }
                // c.messages / c.lanes > best->messages / best->lanes, without division
                if (best == nullptr || c.messages.size() * best->lanes > best->messages.size() * c.lanes) {
                    best = &c;
                }
            }
            if (best == nullptr) {
                break;
            }
            ++best->lanes;
        }
        for (std::size_t g : order) {
            const Group& c = groups[g];
            const std::size_t first = lanes.size();
            for (std::size_t k = 0; k < c.lanes; ++k) {
                lanes.push_back(Lane{{c.hops.begin(), c.hops.end()}, {}});
                lane_messages.emplace_back();
            }
            for (std::size_t k = 0; k < c.messages.size(); ++k) {
                lane_messages[first + k % c.lanes].push_back(c.messages[k]);
            }
        }
    }
    if (lanes.empty() && !hopless.empty()) {
        lanes.emplace_back();
        lane_messages.emplace_back();
    }
    for (std::size_t i : hopless) {
        auto lightest = std::min_element(lane_messages.begin(), lane_messages.end(),
                                         [](const auto& a, const auto& b) { return a.size() < b.size(); });
        lightest->push_back(i);
    }
    for (std::size_t l = 0; l < lanes.size(); ++l) {
        std::sort(lanes[l].hops.begin(), lanes[l].hops.end());
        std::sort(lane_messages[l].begin(), lane_messages[l].end());
        for (std::size_t i : lane_messages[l]) {
            lanes[l].ids.push_back(messages[i].id);
        }
    }
    return lanes;
}

std::vector<std::vector<Lane>> plan_phases(const std::vector<PlannedMessage>& messages, std::size_t concurrency,
                                           std::size_t per_host)
{
    std::vector<PlannedMessage> single;
    std::vector<PlannedMessage> several;
    for (const PlannedMessage& m : messages) {
        (m.hops.size() > 1 ? several : single).push_back(m);
    }
    std::vector<std::vector<Lane>> phases;
    for (const auto* part : {&single, &several}) {
        if (auto lanes = plan_lanes(*part, concurrency, per_host); !lanes.empty()) {
            phases.push_back(std::move(lanes));
        }
    }
    return phases;
}

} // namespace smtpspool
