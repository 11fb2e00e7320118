// queue_commands: glue for mailq, cat, remove, runq, check-config and the queue
// administration (hold, release, requeue, bounce, stats).
#pragma once

#include "cli/config.hpp"

#include <string>
#include <vector>

namespace smtpspool {

int run_mailq(const Config& config);
int run_cat(const Config& config);
int run_remove(const Config& config);
int run_runq(Config config);
int run_check_config(Config config);
// stats: the queue's gauges.
int run_stats(const Config& config);
// hold, release, requeue and bounce: change the messages selected.
int run_change(const Config& config);

// What check-config warns about (on standard error, exit status 0): a host
// name without a dot, and mail that no route would deliver (no routes at
// all, a local domain without one, no default route).
std::vector<std::string> config_warnings(const Config& config);

} // namespace smtpspool
