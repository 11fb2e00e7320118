// Tests of the idempotency key (delivery/idempotency): its form, its
// independence of order and repeats, and values computed by an independent
// SipHash-2-4 (a few lines of Python), so that a consumer can compute it.
#include "delivery/idempotency.hpp"

#include <doctest/doctest.h>

using namespace smtpspool;

TEST_CASE("idempotency key: queue id, dot, 128-bit fingerprint of the recipient set")
{
    CHECK(idempotency_key("Q1", {}) == "Q1.279f9a8f64cb58b2e35f5844c6670e50");
    CHECK(idempotency_key("Q1", {"b@example.org", "a@example.org"}) == "Q1.4a33b434a54e3a671d194a836a728a5a");
}

TEST_CASE("idempotency key: order and repeats of the recipients do not matter, the set does")
{
    auto ab = idempotency_key("Q1", {"a@example.org", "b@example.org"});
    CHECK(idempotency_key("Q1", {"b@example.org", "a@example.org", "a@example.org"}) == ab);
    CHECK(idempotency_key("Q1", {"a@example.org"}) != ab);
    CHECK(idempotency_key("Q2", {"a@example.org", "b@example.org"}) != ab);
    // The LF after each address keeps "a" + "b" apart from "ab".
    CHECK(idempotency_key("Q1", {"a", "b"}) != idempotency_key("Q1", {"ab"}));
    CHECK(idempotency_key(std::string(128, 'x'), {"a@example.org"}).size() == 128 + 1 + 32);
}
