// Tests of the pure parts the session is built from: the AUTH dialogue, the
// BDAT bookkeeping, and the Received: header and envelope of MessageFacts.
#include "smtp/auth_dialogue.hpp"
#include "smtp/bdat_transfer.hpp"
#include "smtp/message_facts.hpp"
#include "testutil.hpp"

#include <doctest/doctest.h>

using namespace smtpspool;
using namespace testutil;

namespace {

class OneUser final : public AuthPort {
public:
    AuthVerdict check(std::string_view user, std::string_view password) override
    {
        ++asked;
        return user == "alice" && password == "s3cret" ? AuthVerdict::ok : AuthVerdict::refused;
    }
    int asked = 0;
};

} // namespace

TEST_SUITE("session_parts")
{
    TEST_CASE("AuthDialogue: PLAIN with an initial response, LOGIN in two steps, '*' cancels")
    {
        OneUser users;
        RecordingLog log;
        AuthDialogue d;
        auto r = d.begin("PLAIN AGFsaWNlAHMzY3JldA==", users, log);
        CHECK(r.reply.code == 235);
        REQUIRE(r.user);
        CHECK(*r.user == "alice");
        CHECK_FALSE(d.waiting());

        r = d.begin("login", users, log);
        CHECK(render(r.reply) == "334 VXNlcm5hbWU6\r\n");
        CHECK(d.waiting());
        r = d.respond(base64_encode("alice"), users, log);
        CHECK(render(r.reply) == "334 UGFzc3dvcmQ6\r\n");
        CHECK(d.waiting());
        r = d.respond(base64_encode("wrong"), users, log);
        CHECK(r.reply.code == 535);
        CHECK_FALSE(r.user);
        CHECK_FALSE(d.waiting());
        CHECK(log.has("event=auth mechanism=LOGIN user=alice result=refused"));

        r = d.begin("PLAIN", users, log);
        CHECK(render(r.reply) == "334 \r\n");
        r = d.respond("*", users, log);
        CHECK(r.reply.code == 501);
        CHECK_FALSE(d.waiting());
        CHECK(users.asked == 2);
    }

    TEST_CASE("AuthDialogue: unknown mechanism, bad base64, empty credentials never asked")
    {
        OneUser users;
        RecordingLog log;
        AuthDialogue d;
        CHECK(d.begin("CRAM-MD5", users, log).reply.code == 504);
        CHECK(d.begin("", users, log).reply.code == 501);
        CHECK(d.begin("PLAIN %%%", users, log).reply.text == replies::auth_bad_base64().text);
        CHECK(d.begin("PLAIN =", users, log).reply.code == 535); // empty: malformed
        CHECK(users.asked == 0);
        d.begin("LOGIN", users, log);
        REQUIRE(d.waiting());
        d.reset();
        CHECK_FALSE(d.waiting());
    }

    TEST_CASE("BdatTransfer: octets counted out across reads; refused chunks are discarded")
    {
        BdatTransfer b;
        b.open_message(false, 100);
        b.announce(5, false, std::nullopt);
        CHECK(b.reading());
        CHECK(b.accepted());
        std::string out;
        CHECK(b.take("abc", out) == 3);
        CHECK_FALSE(b.complete());
        CHECK(b.take("deNEXT", out) == 2);
        CHECK(b.complete());
        CHECK(out == "abcde");
        auto c = b.end_chunk();
        CHECK(c.size == 5);
        CHECK_FALSE(c.last);
        CHECK_FALSE(c.refusal);
        CHECK_FALSE(b.reading());
        CHECK(b.accepted_chunks() == 1);

        b.announce(2, true, replies::not_implemented());
        CHECK_FALSE(b.accepted());
        out.clear();
        CHECK(b.take("xy", out) == 2);
        CHECK(out.empty());
        c = b.end_chunk();
        REQUIRE(c.refusal);
        CHECK(c.refusal->code == 502);
        CHECK(b.accepted_chunks() == 1); // a refused chunk does not count
        CHECK(b.reader().size() == 5);

        b.announce(0, true, std::nullopt);
        CHECK(b.complete());
        b.end_chunk();
        CHECK(b.accepted_chunks() == 2);
        b.close_message();
        CHECK_FALSE(b.message_open());
        CHECK(b.accepted_chunks() == 0);
    }

    TEST_CASE("MessageFacts: Received: names TLS and AUTH (RFC 3848), the envelope the client")
    {
        Peer peer;
        peer.local = false;
        peer.address = "2001:db8::1";
        peer.hostname = "c(x).test";
        std::optional<TlsInfo> tls = TlsInfo{"TLSv1.3", "TLS_AES_128_GCM_SHA256"};
        std::optional<std::string> user = "alice";
        MailCommand mail;
        mail.path.mailbox = "a@b.test";
        std::vector<std::string> named{"u@mx.test"};
        std::vector<Recipient> targets(1);
        targets[0].address = "u@mx.test";
        MessageFacts f{"mx.test", peer,    tls,   "helo[1]", true, user, mail, named, targets,
                       TimePoint(std::chrono::seconds(1795000000)), true, true};
        std::string h = received_header(f, "ID1");
        CHECK(h.rfind("Received: from helo?1? (c?x?.test [IPv6:2001:db8::1])\r\n"
                      "\tby mx.test (smtpspool, TLSv1.3 TLS_AES_128_GCM_SHA256) with ESMTPSA id ID1\r\n"
                      "\tfor <u@mx.test>; ",
                      0) == 0);
        CHECK(h.find("\r\nX-Envelope-To: <u@mx.test>\r\n") != std::string::npos);
        Envelope e = make_envelope(f);
        CHECK(e.client.address == "2001:db8::1");
        CHECK(e.client.protocol == "ESMTP");
        CHECK(e.client.auth == user);
        CHECK(e.mail_from == "a@b.test");
        CHECK(e.recipients.size() == 1);

        const std::optional<TlsInfo> no_tls;
        const std::optional<std::string> no_user;
        MessageFacts helo{"mx.test", peer, no_tls, "h", false, no_user, mail, named, targets, TimePoint{}, false, true};
        CHECK(received_header(helo, "ID2").find(" with SMTP id ID2") != std::string::npos);
    }

    TEST_CASE("MessageFacts: a client whose address is unknown has none in Received: or the envelope")
    {
        Peer unknown;
        unknown.local = false;
        const std::optional<TlsInfo> no_tls;
        const std::optional<std::string> no_user;
        MailCommand mail;
        mail.path.mailbox = "a@b.test";
        std::vector<std::string> named{"u@mx.test"};
        std::vector<Recipient> targets(1);
        targets[0].address = "u@mx.test";
        MessageFacts f{"mx.test", unknown, no_tls, "c.test", true, no_user, mail, named, targets, TimePoint{}, false, false};
        std::string h = received_header(f, "ID3");
        CHECK(h.rfind("Received: from c.test\r\n\tby mx.test (smtpspool, client address unknown) with ESMTP id ID3\r\n",
                      0) == 0);
        Envelope e = make_envelope(f);
        CHECK(e.client.address == std::nullopt);
        CHECK(e.client.port == std::nullopt);
    }

    TEST_CASE("MessageFacts: a client that may not relay gets its DSN requests cut down in the envelope")
    {
        Peer peer;
        peer.local = false;
        peer.address = "203.0.113.66";
        const std::optional<TlsInfo> no_tls;
        const std::optional<std::string> no_user;
        MailCommand mail;
        mail.path.mailbox = "victim@third.test";
        mail.ret = "FULL";
        mail.envid = "E1";
        std::vector<std::string> named{"a@mx.test", "b@mx.test", "c@mx.test", "d@mx.test", "e@mx.test", "f@mx.test"};
        std::vector<Recipient> targets(6);
        const std::vector<std::optional<std::vector<std::string>>> asked{
            std::vector<std::string>{"SUCCESS"},
            std::vector<std::string>{"SUCCESS", "FAILURE", "DELAY"},
            std::vector<std::string>{"DELAY"},
            std::vector<std::string>{"NEVER"},
            std::vector<std::string>{"FAILURE"},
            std::nullopt};
        for (std::size_t i = 0; i < targets.size(); ++i) {
            targets[i].address = named[i];
            targets[i].notify = asked[i];
            targets[i].orcpt = "rfc822;" + named[i];
        }
        MessageFacts stranger{"mx.test", peer, no_tls, "h", true, no_user, mail, named, targets, TimePoint{}, false, false};
        Envelope e = make_envelope(stranger);
        CHECK(e.dsn_limited);
        CHECK(e.dsn_ret == "HDRS");
        CHECK(e.dsn_envid == "E1");
        using Notify = std::vector<std::string>;
        CHECK(e.recipients[0].notify == Notify{"NEVER"});
        CHECK(e.recipients[1].notify == Notify{"FAILURE"});
        CHECK(e.recipients[2].notify == Notify{"NEVER"});
        CHECK(e.recipients[3].notify == Notify{"NEVER"});
        CHECK(e.recipients[4].notify == Notify{"FAILURE"});
        CHECK_FALSE(e.recipients[5].notify);
        CHECK(e.recipients[0].orcpt == "rfc822;a@mx.test");

        MessageFacts relay{"mx.test", peer, no_tls, "h", true, no_user, mail, named, targets, TimePoint{}, false, true};
        Envelope r = make_envelope(relay);
        CHECK_FALSE(r.dsn_limited);
        CHECK(r.dsn_ret == "FULL");
        for (std::size_t i = 0; i < targets.size(); ++i) {
            CHECK(r.recipients[i].notify == asked[i]);
        }

        mail.ret.clear(); // no RET stays none
        MessageFacts no_ret{"mx.test", peer, no_tls, "h", true, no_user, mail, named, targets, TimePoint{}, false, false};
        CHECK_FALSE(make_envelope(no_ret).dsn_ret);
    }
}
