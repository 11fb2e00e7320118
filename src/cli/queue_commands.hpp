// queue_commands: glue for mailq, cat, remove, runq and check-config.
#pragma once

#include "cli/config.hpp"

namespace smtpspool {

int run_mailq(const Config& config);
int run_cat(const Config& config);
int run_remove(const Config& config);
int run_runq(Config config);
int run_check_config(Config config);

} // namespace smtpspool
