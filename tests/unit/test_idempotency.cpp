// Tests of the idempotency key (delivery/idempotency): its form, its
// independence of the recipients' order, and values computed by Python's
// hashlib, so that a consumer can compute it.
#include "delivery/idempotency.hpp"

#include <doctest/doctest.h>

using namespace smtpspool;

TEST_CASE("idempotency key: queue id, dot, 32 hex digits of SHA-256 of the hostname and the recipients")
{
    CHECK(idempotency_key("mx.test", "Q1", {}) == "Q1.c95cecfdfea4ce8c85725d3b2ff086be");
    CHECK(idempotency_key("mx.test", "Q1", {"b@example.org", "a@example.org"}) ==
          "Q1.6135337a9442a9c71e2522c4e84791a5");
}

TEST_CASE("idempotency key: the order of the recipients does not matter; the set, the host and the id do")
{
    auto ab = idempotency_key("mx.test", "Q1", {"a@example.org", "b@example.org"});
    CHECK(idempotency_key("mx.test", "Q1", {"b@example.org", "a@example.org"}) == ab);
    CHECK(idempotency_key("mx.test", "Q1", {"a@example.org"}) != ab);
    CHECK(idempotency_key("mx.test", "Q2", {"a@example.org", "b@example.org"}) != ab);
    CHECK(idempotency_key("other.test", "Q1", {"a@example.org", "b@example.org"}) ==
          "Q1.d2a4911f69a2bb6f877a405d10c05771");
    // The LF after each address keeps "a" + "b" apart from "ab".
    CHECK(idempotency_key("mx.test", "Q1", {"a", "b"}) != idempotency_key("mx.test", "Q1", {"ab"}));
    CHECK(idempotency_key("mx.test", std::string(128, 'x'), {"a@example.org"}).size() == 128 + 1 + 32);
}
