// Tests of plan_lanes: which message goes to which worker, and the caps on
// workers in all and per next hop.
#include "delivery/runner.hpp"
#include "delivery/schedule.hpp"

#include <doctest/doctest.h>

#include <map>
#include <random>
#include <set>

using namespace smtpspool;

namespace {

PlannedMessage msg(std::string id, std::vector<std::string> hops) { return {std::move(id), std::move(hops)}; }

// Every message in exactly one lane, each lane in the given order, each lane's
// hops covering its messages', at most `concurrency` lanes and `per_host` per hop.
void check_plan(const std::vector<PlannedMessage>& messages, const std::vector<Lane>& lanes, std::size_t concurrency,
                std::size_t per_host)
{
    CHECK(lanes.size() <= std::max<std::size_t>(concurrency, 1));
    std::map<std::string, std::size_t> position;
    std::map<std::string, const PlannedMessage*> by_id;
    for (std::size_t i = 0; i < messages.size(); ++i) {
        position[messages[i].id] = i;
        by_id[messages[i].id] = &messages[i];
    }
    std::map<std::string, int> seen;
    std::map<std::string, std::size_t> lanes_per_hop;
    for (const Lane& l : lanes) {
        CHECK_FALSE(l.ids.empty());
        std::set<std::string> hops(l.hops.begin(), l.hops.end());
        CHECK(hops.size() == l.hops.size());
        for (const std::string& h : hops) {
            ++lanes_per_hop[h];
        }
        for (std::size_t k = 0; k < l.ids.size(); ++k) {
            ++seen[l.ids[k]];
            if (k > 0) {
                CHECK(position[l.ids[k - 1]] < position[l.ids[k]]);
            }
            for (const std::string& h : by_id[l.ids[k]]->hops) {
                CHECK(hops.count(h) == 1);
            }
        }
    }
    CHECK(seen.size() == messages.size());
    for (const auto& entry : seen) {
        CHECK_MESSAGE(entry.second == 1, entry.first);
    }
    for (const auto& entry : lanes_per_hop) {
        CHECK_MESSAGE(entry.second <= std::max<std::size_t>(per_host, 1), entry.first);
    }
}

} // namespace

TEST_CASE("plan_lanes: no messages, no lanes; one message, one lane")
{
    CHECK(plan_lanes({}, 10, 2).empty());
    auto lanes = plan_lanes({msg("a", {"smtp:x:25"})}, 10, 2);
    REQUIRE(lanes.size() == 1);
    CHECK(lanes[0].ids == std::vector<std::string>{"a"});
    CHECK(lanes[0].hops == std::vector<std::string>{"smtp:x:25"});
}

TEST_CASE("plan_lanes: one smarthost gets per_host lanes, its messages round-robin in order")
{
    std::vector<PlannedMessage> m;
    for (int i = 0; i < 7; ++i) {
        m.push_back(msg("m" + std::to_string(i), {"smtp:smarthost:25"}));
    }
    auto lanes = plan_lanes(m, 10, 2);
    REQUIRE(lanes.size() == 2);
    CHECK(lanes[0].ids == std::vector<std::string>{"m0", "m2", "m4", "m6"});
    CHECK(lanes[1].ids == std::vector<std::string>{"m1", "m3", "m5"});
    check_plan(m, lanes, 10, 2);
    // per_host 1: one lane, whatever the concurrency.
    CHECK(plan_lanes(m, 10, 1).size() == 1);
    // concurrency 1: one lane, whatever per_host allows.
    CHECK(plan_lanes(m, 1, 5).size() == 1);
    // Never more lanes than messages.
    CHECK(plan_lanes({m[0], m[1]}, 10, 5).size() == 2);
}

TEST_CASE("plan_lanes: ten hops and ten workers, one worker per hop")
{
    std::vector<PlannedMessage> m;
    for (int i = 0; i < 1000; ++i) {
        m.push_back(msg(std::to_string(i), {"smtp:h" + std::to_string(i % 10) + ":25"}));
    }
    auto lanes = plan_lanes(m, 10, 2);
    REQUIRE(lanes.size() == 10);
    for (const Lane& l : lanes) {
        CHECK(l.hops.size() == 1);
        CHECK(l.ids.size() == 100);
    }
    check_plan(m, lanes, 10, 2);
    // Twenty workers: two per hop.
    lanes = plan_lanes(m, 20, 2);
    CHECK(lanes.size() == 20);
    check_plan(m, lanes, 20, 2);
    // Four workers for ten hops: hops share workers, each hop in one of them.
    lanes = plan_lanes(m, 4, 2);
    CHECK(lanes.size() == 4);
    check_plan(m, lanes, 4, 1);
}

TEST_CASE("plan_lanes: spare workers go to the busiest hops")
{
    std::vector<PlannedMessage> m;
    for (int i = 0; i < 30; ++i) {
        m.push_back(msg("big" + std::to_string(i), {"smtp:big:25"}));
    }
    m.push_back(msg("small", {"smtp:small:25"}));
    auto lanes = plan_lanes(m, 4, 3);
    REQUIRE(lanes.size() == 4);
    std::size_t big = 0;
    for (const Lane& l : lanes) {
        big += l.hops == std::vector<std::string>{"smtp:big:25"} ? 1 : 0;
    }
    CHECK(big == 3);
    check_plan(m, lanes, 4, 3);
}

TEST_CASE("plan_lanes: a message with recipients at two hops joins them in one group")
{
    // a-only, b-only, and one at both: with per_host 1 they must share one
    // worker, or two workers would connect to a (or b).
    std::vector<PlannedMessage> m{msg("1", {"smtp:a:25"}), msg("2", {"smtp:b:25"}),
                                  msg("3", {"smtp:a:25", "smtp:b:25"}), msg("4", {"smtp:c:25"})};
    auto lanes = plan_lanes(m, 10, 1);
    REQUIRE(lanes.size() == 2);
    CHECK(lanes[0].hops == std::vector<std::string>{"smtp:a:25", "smtp:b:25"});
    CHECK(lanes[0].ids == std::vector<std::string>{"1", "2", "3"});
    CHECK(lanes[1].ids == std::vector<std::string>{"4"});
    check_plan(m, lanes, 10, 1);
    // per_host 2: the group gets two workers, each may talk to a and b.
    lanes = plan_lanes(m, 10, 2);
    CHECK(lanes.size() == 3);
    check_plan(m, lanes, 10, 2);
}

TEST_CASE("plan_phases: messages with several hops come second and do not join the others' groups")
{
    std::vector<PlannedMessage> m;
    for (int i = 0; i < 40; ++i) {
        m.push_back(msg(std::to_string(i), {"smtp:h" + std::to_string(i % 4) + ":25"}));
    }
    // A chain a-b, b-c, c-d: in one phase every hop would be one group of two workers.
    m.push_back(msg("ab", {"smtp:h0:25", "smtp:h1:25"}));
    m.push_back(msg("bc", {"smtp:h1:25", "smtp:h2:25"}));
    m.push_back(msg("cd", {"smtp:h2:25", "smtp:h3:25"}));
    m.push_back(msg("none", {}));
    CHECK(plan_lanes(m, 10, 2).size() == 2);
    auto phases = plan_phases(m, 10, 2);
    REQUIRE(phases.size() == 2);
    CHECK(phases[0].size() == 8); // two per hop
    CHECK(phases[1].size() == 2); // the chain is one group
    std::size_t total = 0;
    for (const auto& lanes : phases) {
        for (const Lane& l : lanes) {
            total += l.ids.size();
        }
    }
    CHECK(total == m.size());
    CHECK(phases[1][0].ids == std::vector<std::string>{"ab", "cd"});
    CHECK(phases[1][1].ids == std::vector<std::string>{"bc"});
    // Only messages with one hop: one phase.
    m.resize(40);
    CHECK(plan_phases(m, 10, 2).size() == 1);
    CHECK(plan_phases({}, 10, 2).empty());
}

TEST_CASE("plan_lanes: messages without hops go to the lightest lanes")
{
    std::vector<PlannedMessage> m{msg("1", {"smtp:a:25"}), msg("2", {"smtp:a:25"}), msg("3", {"smtp:a:25"}),
                                  msg("4", {"smtp:b:25"}), msg("x", {}), msg("y", {})};
    auto lanes = plan_lanes(m, 10, 1);
    REQUIRE(lanes.size() == 2);
    CHECK(lanes[0].ids == std::vector<std::string>{"1", "2", "3"});
    CHECK(lanes[1].ids == std::vector<std::string>{"4", "x", "y"});
    check_plan(m, lanes, 10, 1);
    // Only such messages: one lane.
    lanes = plan_lanes({msg("x", {}), msg("y", {})}, 10, 2);
    REQUIRE(lanes.size() == 1);
    CHECK(lanes[0].hops.empty());
}

TEST_CASE("plan_lanes: zero counts as one")
{
    std::vector<PlannedMessage> m{msg("1", {"smtp:a:25"}), msg("2", {"smtp:b:25"})};
    auto lanes = plan_lanes(m, 0, 0);
    CHECK(lanes.size() == 1);
    check_plan(m, lanes, 1, 1);
}

TEST_CASE("plan_lanes: random queues keep every cap")
{
    std::mt19937 rng(20261206);
    for (int round = 0; round < 300; ++round) {
        const std::size_t hops = 1 + rng() % 12;
        const std::size_t n = rng() % 60;
        std::vector<PlannedMessage> m;
        for (std::size_t i = 0; i < n; ++i) {
            std::vector<std::string> h;
            std::set<std::size_t> picked;
            const std::size_t k = rng() % 10 == 0 ? 0 : 1 + (rng() % 8 == 0 ? rng() % 3 : 0);
            while (picked.size() < std::min(k, hops)) {
                picked.insert(rng() % hops);
            }
            for (std::size_t p : picked) {
                h.push_back("smtp:h" + std::to_string(p) + ":25");
            }
            m.push_back(msg("m" + std::to_string(i), h));
        }
        const std::size_t concurrency = rng() % 12;
        const std::size_t per_host = rng() % 4;
        CAPTURE(round);
        check_plan(m, plan_lanes(m, concurrency, per_host), concurrency, per_host);
        for (const auto& lanes : plan_phases(m, concurrency, per_host)) {
            CHECK(lanes.size() <= std::max<std::size_t>(concurrency, 1));
        }
    }
}

TEST_CASE("RunStats: a worker's counts travel through their text and add up")
{
    RunStats a;
    a.messages = 5;
    a.delivered = 3;
    a.delayed = 1;
    a.errors = 2;
    a.no_route["x.example"] = 4;
    a.no_route["y example"] = 1; // a space in the name stays in it
    auto back = RunStats::parse(a.serialize());
    REQUIRE(back);
    CHECK(back->messages == 5);
    CHECK(back->delivered == 3);
    CHECK(back->delayed == 1);
    CHECK(back->errors == 2);
    CHECK(back->no_route == a.no_route);
    RunStats sum = a;
    sum.add(*back);
    CHECK(sum.messages == 10);
    CHECK(sum.errors == 4);
    CHECK(sum.no_route["x.example"] == 8);

    CHECK_FALSE(RunStats::parse("messages 1\n")); // counts missing
    CHECK_FALSE(RunStats::parse(a.serialize() + "messages 1\n")); // twice
    CHECK_FALSE(RunStats::parse(a.serialize() + "bogus 1\n"));
    CHECK_FALSE(RunStats::parse("messages x\n"));
    std::string cut = a.serialize();
    cut.pop_back();
    CHECK_FALSE(RunStats::parse(cut)); // a worker that died while writing
    CHECK(RunStats::parse(RunStats{}.serialize()));
}
