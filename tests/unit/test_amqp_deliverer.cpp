// Tests of the amqp transport's parts that need no broker: the envelope
// header, and the outcomes without a login, without a broker and for a
// message too large. Publishing against a real RabbitMQ is e2e t-78.
#include "delivery/amqp_deliverer.hpp"
#include "delivery/idempotency.hpp"
#include "testutil.hpp"

#include <doctest/doctest.h>

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <fstream>

using namespace smtpspool;
using namespace testutil;
using namespace std::chrono_literals;

namespace {

struct Message {
    Message()
    {
        path = dir.path() + "/message.eml";
        std::ofstream(path, std::ios::binary) << "Subject: s\r\n\r\nline\r\n";
        e.id = "ID-1";
        e.hostname = "mx.test";
        e.received_at = "2026-01-02T03:04:05Z";
        e.mail_from = "alice@b.test";
        e.size = 21;
        e.client.helo = "client\"name";
        for (auto a : {"bob@x.test", "carol@x.test", "dave@y.test"}) {
            Recipient r;
            r.address = a;
            e.recipients.push_back(r);
        }
    }
    TempDir dir;
    std::string path;
    Envelope e;
};

// A loopback port nobody listens on: bound, never listening, closed at the end.
struct DeadPort {
    DeadPort()
    {
        fd = ::socket(AF_INET, SOCK_STREAM, 0);
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
        socklen_t n = sizeof a;
        ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &n);
        port = ntohs(a.sin_port);
    }
    ~DeadPort() { ::close(fd); }
    int fd = -1;
    std::uint16_t port = 0;
};

} // namespace

TEST_SUITE("amqp_deliverer")
{
    TEST_CASE("the envelope header names this publication's recipients only, as JSON")
    {
        Message m;
        std::string key = idempotency_key("mx.test", "ID-1", {"bob@x.test", "dave@y.test"});
        CHECK(amqp_envelope_json(m.e, {0, 2}, key) ==
              "{\"queue_id\":\"ID-1\",\"idempotency_key\":\"" + key +
                  "\",\"mail_from\":\"alice@b.test\",\"recipients\":[\"bob@x.test\",\"dave@y.test\"],"
                  "\"received_at\":\"2026-01-02T03:04:05Z\",\"hostname\":\"mx.test\",\"client_address\":null,"
                  "\"helo\":\"client\\\"name\",\"body\":\"7BIT\",\"smtputf8\":false,\"size\":21}");
        m.e.client.address = "192.0.2.1";
        CHECK(amqp_envelope_json(m.e, {1}, key).find("\"client_address\":\"192.0.2.1\"") != std::string::npos);
    }

    TEST_CASE("without a login every recipient is deferred, and the reason is noticed once")
    {
        Message m;
        AmqpDeliverer d(AmqpTarget{"127.0.0.1", 5672, "/", "x", "k", "amqp://127.0.0.1"}, std::nullopt,
                        "amqp route amqp://127.0.0.1: no entry for its host in --amqp-credentials-file", 5s, 1000);
        auto out = d.deliver(Delivery{m.e, open_file(m.path), {0, 1}});
        REQUIRE(out.size() == 2);
        CHECK(out[0].outcome == Outcome::temporary);
        CHECK(out[1].outcome == Outcome::temporary);
        CHECK(out[0].detail.find("no entry") != std::string::npos);
        CHECK(d.take_notices().size() == 1);
        d.deliver(Delivery{m.e, open_file(m.path), {2}});
        CHECK(d.take_notices().empty());
    }

    TEST_CASE("no broker: deferred, with the next hop")
    {
        Message m;
        DeadPort dead;
        AmqpDeliverer d(AmqpTarget{"127.0.0.1", dead.port, "/", "x", "k", "amqp://127.0.0.1"},
                        AmqpCredentials{"u", "secret-password"}, "", 5s, 1000);
        auto out = d.deliver(Delivery{m.e, open_file(m.path), {0}});
        REQUIRE(out.size() == 1);
        CHECK(out[0].outcome == Outcome::temporary);
        CHECK(out[0].hop == "127.0.0.1:" + std::to_string(dead.port));
        CHECK(out[0].detail.find("connect") != std::string::npos);
        CHECK(out[0].detail.find("secret-password") == std::string::npos);
    }

    TEST_CASE("a message larger than the limit fails for good, before any connection")
    {
        Message m;
        DeadPort dead;
        AmqpDeliverer d(AmqpTarget{"127.0.0.1", dead.port, "/", "x", "k", "amqp://127.0.0.1"},
                        AmqpCredentials{"u", "p"}, "", 5s, 10);
        auto out = d.deliver(Delivery{m.e, open_file(m.path), {0, 1}});
        REQUIRE(out.size() == 2);
        CHECK(out[0].outcome == Outcome::permanent);
        CHECK(out[0].detail.find("larger") != std::string::npos);
    }
}

TEST_SUITE("amqp_deliverer")
{
    TEST_CASE("a server that accepts and never answers: deferred once --amqp-timeout has passed")
    {
        Message m;
        DeadPort silent;
        REQUIRE(::listen(silent.fd, 4) == 0); // the kernel accepts; nobody speaks
        AmqpDeliverer d(AmqpTarget{"127.0.0.1", silent.port, "/", "x", "k", "amqp://127.0.0.1"},
                        AmqpCredentials{"u", "p"}, "", 1s, 1000);
        auto out = d.deliver(Delivery{m.e, open_file(m.path), {0}});
        REQUIRE(out.size() == 1);
        CHECK(out[0].outcome == Outcome::temporary);
        CHECK(out[0].detail.find("login") != std::string::npos);
        CHECK(out[0].detail.find("timed out") != std::string::npos);
    }
}
