// Policy delegation: the pure codec (service addresses, the request, the
// answer reader, actions, how several answers add up), the request's
// attributes, PolicyDelegation against scripted ports, and what the session
// does with the verdicts (PREPEND on top, HOLD, DISCARD).
#include "policy/delegation.hpp"
#include "session_fixture.hpp"
#include "smtp/policy_delegation.hpp"

#include <doctest/doctest.h>

#include <deque>

using namespace smtpspool;
using namespace smtpspool::delegation;
using namespace testutil;
using namespace std::string_literals;

namespace {

std::vector<int> codes(std::string_view out) { return SessionFixture::codes(out); }

Action action(std::string_view value)
{
    auto a = parse_action(value);
    REQUIRE_MESSAGE(a.has_value(), std::string(value));
    return a.value();
}

std::string error_of(std::string_view value)
{
    auto a = parse_action(value);
    REQUIRE_MESSAGE(!a.has_value(), std::string(value));
    return a.error();
}

Decision::Outcome decide(std::initializer_list<std::string_view> values)
{
    Decision d;
    for (std::string_view v : values) {
        if (!d.add(action(v))) {
            break;
        }
    }
    return d.outcome();
}

std::string reply_of(const Decision::Outcome& o)
{
    return o.refusal ? std::to_string(o.refusal->code) + " " + o.refusal->status + " " + o.refusal->text : "accept";
}

// Answers as scripted, records the requests.
class ScriptedService final : public PolicyServicePort {
public:
    explicit ScriptedService(std::string n) : m_name(std::move(n)) {}
    const std::string& name() const override { return m_name; }
    Result<std::string> query(std::string_view request) override
    {
        requests.emplace_back(request);
        if (answers.empty()) {
            return Error{0, "nothing scripted"};
        }
        auto a = answers.front();
        answers.pop_front();
        if (a.rfind("error:", 0) == 0) {
            return Error{0, a.substr(6)};
        }
        return a;
    }
    std::deque<std::string> answers; // "error:why" fails the question
    std::vector<std::string> requests;

private:
    std::string m_name;
};

std::string attribute(const Attributes& a, std::string_view name)
{
    for (const auto& [n, v] : a) {
        if (n == name) {
            return v;
        }
    }
    FAIL("no attribute " << name);
    return {};
}

} // namespace

TEST_SUITE("policy delegation")
{
    TEST_CASE("service addresses: unix:/path and inet:host:port, nothing else")
    {
        std::string why;
        auto u = parse_policy_service("unix:/run/postgrey/socket", why);
        REQUIRE(u);
        CHECK(u->kind == PolicyServiceAddress::Kind::unix_socket);
        CHECK(u->path == "/run/postgrey/socket");
        auto i = parse_policy_service("inet:127.0.0.1:10023", why);
        REQUIRE(i);
        CHECK((i->kind == PolicyServiceAddress::Kind::inet && i->host == "127.0.0.1" && i->port == "10023"));
        auto v6 = parse_policy_service("inet:[::1]:10023", why);
        REQUIRE(v6);
        CHECK(v6->host == "::1");
        CHECK(parse_policy_service("inet:policy.example:9998", why)->host == "policy.example");
        for (const char* bad : {"", "/run/socket", "unix:", "inet:", "inet:host", "inet::10023", "inet:host:0",
                                "inet:host:65536", "inet:host:port", "inet:::1:10023", "inet:[::1:10023",
                                "inet:ho st:25", "tcp:host:25"}) {
            why.clear();
            CHECK_MESSAGE(!parse_policy_service(bad, why), bad);
            CHECK(!why.empty());
        }
        CHECK(!parse_policy_service("unix:/" + std::string(107, 'a'), why));
    }

    TEST_CASE("the request: name=value lines and an empty line; no value leaves its line")
    {
        CHECK(encode_request({{"request", "smtpd_access_policy"}, {"sender", "a=b@c.test"}}) ==
              "request=smtpd_access_policy\nsender=a=b@c.test\n\n");
        std::string out = encode_request({{"client_name", "host\nrecipient=x@y"}, {"helo_name", "a\r\0b"s}});
        CHECK(out == "client_name=host?recipient=x@y\nhelo_name=a??b\n\n");
        CHECK(encode_request({}) == "\n");
    }

    TEST_CASE("the answer reader: up to the empty line, in pieces of any size, bounded")
    {
        const std::string answer = "action=DUNNO\nreason=x\n\n";
        for (std::size_t step = 1; step <= answer.size(); ++step) {
            AnswerReader r;
            std::size_t at = 0, used = 0;
            while (r.status() == AnswerReader::Status::more && at < answer.size()) {
                r.feed(std::string_view(answer).substr(at, step), used);
                at += used;
            }
            CHECK(r.status() == AnswerReader::Status::done);
            CHECK(r.lines() == "action=DUNNO\nreason=x\n");
            CHECK(at == answer.size());
        }
        AnswerReader crlf;
        std::size_t used = 0;
        CHECK(crlf.feed("action=OK\r\n\r\nmore", used) == AnswerReader::Status::done);
        CHECK(crlf.lines() == "action=OK\n");
        CHECK(used == 13); // the octets after the answer are not taken

        AnswerReader big;
        CHECK(big.feed("action=" + std::string(k_max_answer, 'x'), used) == AnswerReader::Status::malformed);
        AnswerReader exact; // k_max_answer octets, the empty line included, is the most
        std::string fits = "action=" + std::string(k_max_answer - 9, 'x') + "\n\n";
        REQUIRE(fits.size() == k_max_answer);
        CHECK(exact.feed(fits, used) == AnswerReader::Status::done);
        AnswerReader nul;
        CHECK(nul.feed("action=OK\0\n\n"s, used) == AnswerReader::Status::malformed);
        nul.reset();
        CHECK(nul.feed("\n", used) == AnswerReader::Status::done);
        CHECK(nul.lines().empty());
    }

    TEST_CASE("the action attribute: exactly one; other attributes ignored; every line name=value")
    {
        CHECK(answer_action("action=OK\n").value() == "OK");
        CHECK(answer_action("reason=x\naction=DEFER_IF_PERMIT a=b\nother=\n").value() == "DEFER_IF_PERMIT a=b");
        CHECK(answer_action("").error() == "no action");
        CHECK(answer_action("reason=x\n").error() == "no action");
        CHECK(answer_action("action=OK\naction=REJECT\n").error() == "two actions");
        CHECK(answer_action("action=OK\nnonsense\n").error().find("not name=value") != std::string::npos);
        CHECK(answer_action("=OK\n").error().find("not name=value") != std::string::npos);
        CHECK(!answer_action("action=OK\rREJECT\n"));
    }

    TEST_CASE("every action, any case, and its reply")
    {
        CHECK(action("OK").kind == Action::Kind::ok);
        CHECK(action("ok whatever").kind == Action::Kind::ok);
        CHECK(action("DUNNO").kind == Action::Kind::dunno);
        CHECK(action("  dunno  ").kind == Action::Kind::dunno);
        Action r = action("REJECT no thanks");
        CHECK(r.kind == Action::Kind::reject);
        CHECK((r.reply->code == 550 && r.reply->status == "5.7.1" && r.reply->text == "no thanks"));
        CHECK(action("REJECT").reply->text == "refused by policy service");
        Action d = action("DEFER later");
        CHECK((d.kind == Action::Kind::defer && d.reply->code == 450 && d.reply->status == "4.7.1"));
        Action dip = action("DEFER_IF_PERMIT 4.2.0 Greylisted, see http://example/");
        CHECK(dip.kind == Action::Kind::defer_if_permit);
        CHECK((dip.reply->code == 450 && dip.reply->status == "4.2.0" && dip.reply->text == "Greylisted, see http://example/"));
        // An enhanced code of the other class stays text.
        CHECK(action("DEFER_IF_PERMIT 5.2.0 x").reply->status == "4.7.1");
        CHECK(action("DEFER_IF_PERMIT 5.2.0 x").reply->text == "5.2.0 x");
        CHECK(action("REJECT 5.7.26 spf").reply->status == "5.7.26");
        CHECK(action("defer_if_reject maybe").kind == Action::Kind::defer_if_reject);
        Action p = action("PREPEND X-Greylist: delayed 3 seconds\tby postgrey");
        CHECK((p.kind == Action::Kind::prepend && p.header == "X-Greylist: delayed 3 seconds\tby postgrey"));
        CHECK(action("HOLD look").kind == Action::Kind::hold);
        CHECK(action("DISCARD").kind == Action::Kind::discard);
        Action w = action("WARN odd \x1b[31mclient");
        CHECK((w.kind == Action::Kind::warn && w.text == "odd ?[31mclient"));
        CHECK(action("INFO noted").kind == Action::Kind::info);
        CHECK(action("REJECT " + std::string(1000, 'x')).reply->text.size() == k_max_text);
        CHECK(action("REJECT caf\xc3\xa9").reply->text == "caf??");
    }

    TEST_CASE("explicit replies: 4yz and 5yz, the enhanced code of their class, not 421 or 521")
    {
        Action a = action("554 5.7.2 go away");
        CHECK(a.kind == Action::Kind::reject);
        CHECK((a.reply->code == 554 && a.reply->status == "5.7.2" && a.reply->text == "go away"));
        Action b = action("452 mailbox full");
        CHECK(b.kind == Action::Kind::defer);
        CHECK((b.reply->code == 452 && b.reply->status == "4.7.1" && b.reply->text == "mailbox full"));
        CHECK(action("550").reply->text == "refused by policy service");
        CHECK(!error_of("250 fine").empty());
        CHECK(!error_of("421 4.7.0 bye").empty());
        CHECK(!error_of("521 bye").empty());
        CHECK(!error_of("554 4.7.1 mixed").empty());
        CHECK(!error_of("460 x").empty());
        CHECK(!error_of("5500 x").empty());
        CHECK(!error_of("55").empty());
    }

    TEST_CASE("malformed actions: unknown, empty, a PREPEND that is no header field")
    {
        CHECK(error_of("").find("empty") != std::string::npos);
        CHECK(error_of("FILTER smtp:[127.0.0.1]:10025").find("do not take") != std::string::npos);
        CHECK(!error_of("REDIRECT a@b").empty());
        CHECK(!error_of("PREPEND").empty());
        CHECK(!error_of("PREPEND no colon here").empty());
        CHECK(!error_of("PREPEND : empty name").empty());
        CHECK(!error_of("PREPEND Bad Name: x").empty());
        CHECK(!error_of("PREPEND X-A: caf\xc3\xa9").empty());
        CHECK(!error_of("PREPEND X-A: a\x01").empty());
        CHECK(action("PREPEND X-A: " + std::string(993, 'x')).header.size() == 998);
        CHECK(!error_of("PREPEND X-A: " + std::string(994, 'x')).empty());
        CHECK(!error_of("PREPEND " + std::string(77, 'N') + ": x").empty());
    }

    TEST_CASE("how answers add up: the first decisive one, DEFER_IF_* relative to later ones")
    {
        CHECK(reply_of(decide({})) == "accept");
        CHECK(reply_of(decide({"DUNNO", "DUNNO"})) == "accept");
        CHECK(reply_of(decide({"OK", "REJECT"})) == "accept");
        CHECK(reply_of(decide({"DUNNO", "REJECT no"})) == "550 5.7.1 no");
        CHECK(reply_of(decide({"DEFER_IF_PERMIT wait"})) == "450 4.7.1 wait");
        CHECK(reply_of(decide({"DEFER_IF_PERMIT wait", "OK"})) == "450 4.7.1 wait");
        CHECK(reply_of(decide({"DEFER_IF_PERMIT wait", "DISCARD"})) == "450 4.7.1 wait");
        CHECK(reply_of(decide({"DEFER_IF_PERMIT wait", "REJECT no"})) == "550 5.7.1 no");
        CHECK(reply_of(decide({"DEFER_IF_PERMIT first", "DEFER_IF_PERMIT second"})) == "450 4.7.1 first");
        CHECK(reply_of(decide({"DEFER_IF_REJECT maybe"})) == "accept");
        CHECK(reply_of(decide({"DEFER_IF_REJECT maybe", "OK"})) == "accept");
        CHECK(reply_of(decide({"DEFER_IF_REJECT maybe", "REJECT no"})) == "450 4.7.1 maybe");
        CHECK(reply_of(decide({"DEFER_IF_REJECT maybe", "554 5.7.0 no"})) == "450 4.7.1 maybe");
        CHECK(reply_of(decide({"DEFER_IF_REJECT maybe", "DEFER later"})) == "450 4.7.1 later");
        CHECK(reply_of(decide({"WARN a", "INFO b", "451 4.3.0 busy"})) == "451 4.3.0 busy");

        auto o = decide({"PREPEND X-A: 1", "HOLD", "PREPEND X-B: 2", "DUNNO"});
        CHECK(reply_of(o) == "accept");
        CHECK(o.headers == "X-A: 1\r\nX-B: 2\r\n");
        CHECK(o.hold);
        CHECK(!o.discard);
        o = decide({"PREPEND X-A: 1", "HOLD", "REJECT"});
        CHECK(reply_of(o) == "550 5.7.1 refused by policy service");
        CHECK((o.headers.empty() && !o.hold)); // a refusal carries no effects
        o = decide({"DISCARD", "REJECT"});
        CHECK((reply_of(o) == "accept" && o.discard));

        Decision many;
        for (int i = 0; i < 25; ++i) {
            many.add(action("PREPEND X-N: " + std::to_string(i)));
        }
        o = many.outcome();
        CHECK(o.headers_dropped == 5);
        CHECK(std::count(o.headers.begin(), o.headers.end(), '\n') == 20);
    }

    TEST_CASE("a service that cannot be asked: 451 4.3.5, or as DUNNO")
    {
        Decision d;
        CHECK(!d.add_failure(service_unavailable()));
        CHECK(reply_of(d.outcome()) == "451 4.3.5 policy service unavailable, try again later");
        Decision go_on;
        CHECK(go_on.add_failure(std::nullopt));
        CHECK(go_on.add(action("DEFER_IF_REJECT x")));
        go_on.add_failure(service_unavailable());
        CHECK(reply_of(go_on.outcome()) == "451 4.3.5 policy service unavailable, try again later");
    }

    TEST_CASE("the attributes at RCPT and at END-OF-MESSAGE")
    {
        Peer peer;
        peer.local = false;
        peer.address = "192.0.2.7";
        peer.port = 40000;
        peer.local_address = "192.0.2.1";
        peer.local_port = 25;
        std::vector<std::string> rcpts{"a@mx.test"};
        TlsInfo tls{"TLSv1.3", "TLS_AES_256_GCM_SHA384"};
        PolicyFacts f{peer, false, "client.test", "s@b.test", rcpts, "", 0, true, true, "alice", &tls, 4321, 3};
        Attributes a = request_attributes(Stage::rcpt, f, "b@mx.test", "abc.def");
        CHECK(attribute(a, "request") == "smtpd_access_policy");
        CHECK(attribute(a, "protocol_state") == "RCPT");
        CHECK(attribute(a, "protocol_name") == "ESMTP");
        CHECK(attribute(a, "helo_name") == "client.test");
        CHECK(attribute(a, "queue_id").empty());
        CHECK(attribute(a, "sender") == "s@b.test");
        CHECK(attribute(a, "recipient") == "b@mx.test");
        CHECK(attribute(a, "recipient_count") == "0");
        CHECK(attribute(a, "client_address") == "192.0.2.7");
        CHECK(attribute(a, "client_name") == "unknown");
        CHECK(attribute(a, "reverse_client_name") == "unknown");
        CHECK(attribute(a, "client_port") == "40000");
        CHECK(attribute(a, "server_address") == "192.0.2.1");
        CHECK(attribute(a, "server_port") == "25");
        CHECK(attribute(a, "instance") == "abc.def.3");
        CHECK(attribute(a, "sasl_username") == "alice");
        CHECK(attribute(a, "size") == "4321");
        CHECK(attribute(a, "encryption_protocol") == "TLSv1.3");
        CHECK(attribute(a, "encryption_cipher") == "TLS_AES_256_GCM_SHA384");

        PolicyFacts g{peer, false, "client.test", "", rcpts, "ID9", 777, false, false, "", nullptr, 4321, 3};
        a = request_attributes(Stage::end_of_message, g, "", "abc.def");
        CHECK(attribute(a, "protocol_state") == "END-OF-MESSAGE");
        CHECK(attribute(a, "protocol_name") == "SMTP");
        CHECK(attribute(a, "queue_id") == "ID9");
        CHECK(attribute(a, "recipient") == "a@mx.test"); // the one recipient
        CHECK(attribute(a, "recipient_count") == "1");
        CHECK(attribute(a, "size") == "777");
        CHECK(attribute(a, "instance") == "abc.def.3");
        CHECK(attribute(a, "encryption_protocol").empty());
        rcpts.push_back("c@mx.test");
        a = request_attributes(Stage::end_of_message, g, "", "abc.def");
        CHECK(attribute(a, "recipient").empty()); // more than one
        CHECK(attribute(a, "recipient_count") == "2");

        Peer local; // a local client: no address
        PolicyFacts l{local, true, "h", "", rcpts, "", 0, false};
        a = request_attributes(Stage::rcpt, l, "x@mx.test", "p");
        CHECK(attribute(a, "client_address").empty());
        CHECK(attribute(a, "client_port").empty());
    }

    TEST_CASE("PolicyDelegation: services in order, each answer logged, failures under the default action")
    {
        RecordingLog log;
        ScriptedService one("unix:/one"), two("inet:127.0.0.1:9");
        PolicyDelegation d({&one, &two}, DelegationConfig{false, false, "p"}, log);
        Peer peer;
        std::vector<std::string> none;
        PolicyFacts f{peer, false, "h", "s@b.test", none, "", 0, false};

        one.answers = {"action=DUNNO\n", "action=WARN look\n", "action=OK\n"};
        two.answers = {"action=REJECT no\n", "action=PREPEND X-A: 1\n"};
        auto o = d.ask(Stage::rcpt, f, "a@mx.test");
        CHECK(reply_of(o) == "550 5.7.1 no");
        CHECK(one.requests.size() == 1);
        CHECK(one.requests[0].find("\nrecipient=a@mx.test\n") != std::string::npos);
        CHECK(one.requests[0] == two.requests[0]);
        CHECK(log.has("event=policy-service service=unix:/one stage=rcpt to=a@mx.test action=dunno"));
        CHECK(log.has("event=policy-service service=inet:127.0.0.1:9 stage=rcpt to=a@mx.test action=reject code=550 text=no"));
        o = d.ask(Stage::rcpt, f, "b@mx.test");
        CHECK((reply_of(o) == "accept" && o.headers == "X-A: 1\r\n"));
        CHECK(log.has("action=warn text=look"));
        CHECK(log.has("action=prepend header=\"X-A: 1\""));
        o = d.ask(Stage::rcpt, f, "c@mx.test");
        CHECK(reply_of(o) == "accept");
        CHECK(two.requests.size() == 2); // not asked after OK

        one.answers = {"error:timeout waiting for the answer", "action=FILTER x\n", "action=\n"};
        two.answers = {"action=DUNNO\n"};
        o = d.ask(Stage::rcpt, f, "d@mx.test");
        CHECK(reply_of(o) == "451 4.3.5 policy service unavailable, try again later");
        CHECK(two.requests.size() == 2); // not asked after the failure
        CHECK(log.has("to=d@mx.test result=failed reason=\"timeout waiting for the answer\" default=tempfail"));
        o = d.ask(Stage::rcpt, f, "e@mx.test");
        CHECK(log.has("to=e@mx.test result=failed reason=\"an action we do not take: FILTER\" default=tempfail"));

        PolicyDelegation lenient({&one, &two}, DelegationConfig{true, true, "p"}, log);
        o = lenient.ask(Stage::end_of_message, f, "");
        CHECK(reply_of(o) == "accept");
        CHECK(two.requests.size() == 3); // asked after the failure counted as DUNNO
        CHECK(log.has("stage=data result=failed reason=\"an empty action\" default=dunno"));
        CHECK(two.requests.back().find("protocol_state=END-OF-MESSAGE\n") != std::string::npos);
    }
}

TEST_SUITE("session policy")
{
    TEST_CASE("policy verdicts: PREPEND fields on top in order, HOLD stores held, DISCARD stores nothing")
    {
        SessionFixture f;
        PolicyPort::RecipientVerdict prepend{std::nullopt, {"u@mx.test"}, "X-A: 1\r\n", false, false};
        PolicyPort::RecipientVerdict hold{std::nullopt, {"h@mx.test"}, "X-B: 2\r\n", true, false};
        PolicyPort::RecipientVerdict discard{std::nullopt, {"d@mx.test"}, "X-C: 3\r\n", false, true};
        f.policy.recipients = {{"u@mx.test", prepend}, {"h@mx.test", hold}, {"d@mx.test", discard}};
        f.policy.message = {std::nullopt, "X-Data: 4\r\n"};
        const std::string data = "DATA\r\nSubject: x\r\n\r\nbody\r\n.\r\n";
        std::string out = f.send("EHLO client.test\r\nMAIL FROM:<a@b.test>\r\nRCPT TO:<u@mx.test>\r\n" + data);
        CHECK(codes(out) == std::vector<int>{250, 250, 250, 354, 250});
        REQUIRE(f.spool.messages.size() == 1);
        CHECK(f.spool.messages[0].data.rfind("X-A: 1\r\nX-Data: 4\r\nReceived: from client.test", 0) == 0);
        CHECK(!f.spool.messages[0].envelope.held);

        out = f.send("MAIL FROM:<a@b.test>\r\nRCPT TO:<u@mx.test>\r\nRCPT TO:<h@mx.test>\r\n" + data);
        CHECK(codes(out) == std::vector<int>{250, 250, 250, 354, 250});
        REQUIRE(f.spool.messages.size() == 2);
        CHECK(f.spool.messages[1].envelope.held);
        CHECK(f.spool.messages[1].data.rfind("X-A: 1\r\nX-B: 2\r\nX-Data: 4\r\nReceived:", 0) == 0);
        CHECK(f.log.has("event=queued id=ID2 size="));
        CHECK(f.log.has("held=yes"));

        // A refused recipient's effects do not count; RSET forgets them.
        out = f.send("MAIL FROM:<a@b.test>\r\nRCPT TO:<h@mx.test>\r\nRSET\r\nMAIL FROM:<a@b.test>\r\nRCPT TO:<x@mx.test>\r\n" + data);
        REQUIRE(f.spool.messages.size() == 3);
        CHECK(!f.spool.messages[2].envelope.held);
        CHECK(f.spool.messages[2].data.rfind("X-Data: 4\r\nReceived:", 0) == 0);

        out = f.send("MAIL FROM:<a@b.test>\r\nRCPT TO:<u@mx.test>\r\nRCPT TO:<d@mx.test>\r\n" + data);
        CHECK(codes(out) == std::vector<int>{250, 250, 250, 354, 250});
        CHECK(out.find("250 2.0.0 message accepted, queued as ID4\r\n") != std::string::npos);
        CHECK(f.spool.messages.size() == 3); // nothing stored
        CHECK(f.log.has("event=discarded id=ID4 size="));

        // DISCARD at the end of the message, and HOLD.
        f.policy.message = {std::nullopt, "", false, true};
        f.send("MAIL FROM:<a@b.test>\r\nRCPT TO:<x@mx.test>\r\n" + data);
        CHECK(f.spool.messages.size() == 3);
        f.policy.message = {std::nullopt, "", true, false};
        f.send("MAIL FROM:<a@b.test>\r\nRCPT TO:<x@mx.test>\r\n" + data);
        REQUIRE(f.spool.messages.size() == 4);
        CHECK(f.spool.messages[3].envelope.held);
    }

    TEST_CASE("the facts a policy service needs: EHLO, SIZE=, the transaction's number")
    {
        struct Facts final : PolicyPort {
            std::optional<Reply> check_sender(const PolicyFacts&) override { return std::nullopt; }
            RecipientVerdict check_recipient(const PolicyFacts& f, std::string_view r, bool) override
            {
                seen.push_back(std::string(f.esmtp ? "esmtp" : "smtp") + " size=" + std::to_string(f.declared_size) +
                               " tx=" + std::to_string(f.transaction) + " tls=" + (f.tls_info ? "yes" : "no"));
                return {std::nullopt, {std::string(r)}};
            }
            MessageVerdict check_message(const PolicyFacts&) override { return {}; }
            std::vector<std::string> seen;
        } policy;
        MemorySpool spool;
        RecordingLog log;
        FixedClock clock(TimePoint(std::chrono::seconds(1795000000)));
        Session s(test_config(), spool, policy, log, clock);
        s.start();
        feed_until_consumed(s, "EHLO c.test\r\nMAIL FROM:<a@b.test> SIZE=99\r\nRCPT TO:<u@mx.test>\r\nRSET\r\n"
                               "HELO c.test\r\nMAIL FROM:<a@b.test>\r\nRCPT TO:<u@mx.test>\r\n");
        CHECK(policy.seen == std::vector<std::string>{"esmtp size=99 tx=1 tls=no", "smtp size=0 tx=2 tls=no"});
    }
}
