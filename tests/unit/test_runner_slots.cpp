// Tests of the runner slots of serve --deliver-now on a real directory.
#include "base/limits.hpp"
#include "spool/runner_slots.hpp"
#include "testutil.hpp"

#include <doctest/doctest.h>

#include <filesystem>
#include <optional>
#include <sys/stat.h>
#include <unistd.h>
#include <vector>

using namespace smtpspool;
using namespace testutil;

TEST_SUITE("runner_slots")
{
    TEST_CASE("N slots per spool: the next is refused until one is closed")
    {
        TempDir dir;
        std::string spool = dir.path();
        std::vector<Fd> held;
        for (std::size_t i = 0; i < limits::k_deliver_now_runners; ++i) {
            auto slot = take_runner_slot(spool, limits::k_deliver_now_runners);
            REQUIRE(slot);
            REQUIRE(slot.value());
            held.push_back(std::move(*slot.value()));
        }
        auto full = take_runner_slot(spool, limits::k_deliver_now_runners);
        REQUIRE(full);
        CHECK_FALSE(full.value());
        // state/ is private to the spool's owner.
        struct stat st {};
        REQUIRE(::stat((spool + "/state").c_str(), &st) == 0);
        CHECK((st.st_mode & 0777) == 0700);
        // Closing a holder frees its slot, and only that one.
        held.erase(held.begin() + 1);
        auto again = take_runner_slot(spool, limits::k_deliver_now_runners);
        REQUIRE(again);
        REQUIRE(again.value());
        auto none = take_runner_slot(spool, limits::k_deliver_now_runners);
        REQUIRE(none);
        CHECK_FALSE(none.value());
    }

    TEST_CASE("a link planted as state/ or as a slot is not followed")
    {
        TempDir dir;
        std::string spool = dir.path() + "/spool";
        std::filesystem::create_directory(spool);
        std::filesystem::create_directory(dir.path() + "/elsewhere");
        REQUIRE(::symlink((dir.path() + "/elsewhere").c_str(), (spool + "/state").c_str()) == 0);
        CHECK_FALSE(take_runner_slot(spool, 2));
        CHECK(std::filesystem::is_empty(dir.path() + "/elsewhere"));
        std::filesystem::remove(spool + "/state");
        std::filesystem::create_directory(spool + "/state");
        REQUIRE(::symlink((dir.path() + "/elsewhere/target").c_str(), (spool + "/state/runq-slot.0").c_str()) == 0);
        CHECK_FALSE(take_runner_slot(spool, 2));
        CHECK_FALSE(std::filesystem::exists(dir.path() + "/elsewhere/target"));
    }
}
