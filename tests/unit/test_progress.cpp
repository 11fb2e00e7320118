// The text of the status line of runq and the queue tools on a terminal (cli/progress).
#include "cli/progress.hpp"

#include <doctest/doctest.h>

using namespace smtpspool;
using namespace std::chrono_literals;

TEST_SUITE("progress")
{
    TEST_CASE("progress_text: counts, then the rate and the time left once messages are done")
    {
        CHECK(progress_text("runq", {0, 1000, 0, 0, 0}, 0s) == "runq: 0/1000 messages, 0 delivered, 0 deferred, 0 failed");
        CHECK(progress_text("runq", {120, 1000, 110, 8, 2}, 3s) ==
              "runq: 120/1000 messages, 110 delivered, 8 deferred, 2 failed, 40.0/s, 22s left");
        CHECK(progress_text("runq", {10, 10000, 10, 0, 0}, 10s) ==
              "runq: 10/10000 messages, 10 delivered, 0 deferred, 0 failed, 1.0/s, 2h46m left");
        CHECK(progress_text("runq", {50, 100, 50, 0, 0}, 100s) ==
              "runq: 50/100 messages, 50 delivered, 0 deferred, 0 failed, 0.5/s, 1m40s left");
        CHECK(progress_text("runq", {100, 100, 90, 5, 5}, 4s) ==
              "runq: 100/100 messages, 90 delivered, 5 deferred, 5 failed, 25.0/s");
    }

    TEST_CASE("progress_text: a queue tool names its own counts")
    {
        CHECK(progress_text("requeue", {30, 60, 25, 4, 1}, 2s, {"requeued", "passed over", "failed"}) ==
              "requeue: 30/60 messages, 25 requeued, 4 passed over, 1 failed, 15.0/s, 2s left");
    }
}
