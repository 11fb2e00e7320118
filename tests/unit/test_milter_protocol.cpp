// Tests of the milter protocol codec: the packets we send, byte for byte;
// framing (lengths of 0, over the bound, short reads); the negotiation; every
// reply kind, and each malformed shape of each.
#include "server/milter_protocol.hpp"

#include <doctest/doctest.h>

#include <string>

using namespace smtpspool;
using namespace smtpspool::milter;
using namespace std::string_literals;

namespace {

std::string be32(std::uint32_t v)
{
    return std::string{static_cast<char>(v >> 24), static_cast<char>(v >> 16 & 0xff), static_cast<char>(v >> 8 & 0xff),
                       static_cast<char>(v & 0xff)};
}

Frame frame_of(const std::string& wire)
{
    FrameRead f = read_frame(wire);
    REQUIRE(std::holds_alternative<Frame>(f));
    return std::get<Frame>(f);
}

std::variant<Response, Malformed> reply(char cmd, const std::string& data)
{
    static std::string keep;
    keep = packet(cmd, data);
    return parse_response(frame_of(keep));
}

Response ok(char cmd, const std::string& data)
{
    auto r = reply(cmd, data);
    if (auto* m = std::get_if<Malformed>(&r)) {
        FAIL("malformed: " << m->reason);
    }
    return std::get<Response>(r);
}

bool malformed(char cmd, const std::string& data) { return std::holds_alternative<Malformed>(reply(cmd, data)); }

} // namespace

TEST_CASE("milter packets: length, command, data")
{
    CHECK(packet('Q', "") == "\0\0\0\1Q"s);
    CHECK(optneg(6, 0x1ff, 0x1fffff) == be32(13) + "O" + be32(6) + be32(0x1ff) + be32(0x1fffff));
    CHECK(macros('C', {{"j", "mx.test"}, {"{client_addr}", "192.0.2.1"}}) ==
          be32(1 + 1 + 10 + 24) + "DCj\0mx.test\0{client_addr}\0" "192.0.2.1\0"s);
    CHECK(connect("client.test", '4', 2525, "192.0.2.1") ==
          be32(1 + 12 + 1 + 2 + 10) + "Cclient.test\0" "4\x09\xdd" "192.0.2.1\0"s);
    CHECK(connect("unknown", 'U', 0, "") == be32(1 + 8 + 1) + "Cunknown\0U"s);
    CHECK(strings('M', {"<a@b.test>", "SIZE=10"}) == be32(1 + 11 + 8) + "M<a@b.test>\0SIZE=10\0"s);
    CHECK(strings('L', {"Subject", "hi"}) == be32(1 + 8 + 3) + "LSubject\0hi\0"s);
    // A NUL inside a string cannot end it early: no string of the sender's making.
    CHECK(strings('L', {"Subject", "a\0X-Spam\0no"s}) == be32(1 + 8 + 12) + "LSubject\0a X-Spam no\0"s);
    CHECK(macros('M', {{"{mail_addr}", "a\0{auth_authen}\0root"s}}) ==
          be32(1 + 1 + 12 + 21) + "DM{mail_addr}\0a {auth_authen} root\0"s);
}

TEST_CASE("milter framing: whole, short, zero, oversize")
{
    std::string p = packet('c', "");
    auto f = read_frame(p + "extra");
    REQUIRE(std::holds_alternative<Frame>(f));
    CHECK(std::get<Frame>(f).command == 'c');
    CHECK(std::get<Frame>(f).length == 5);
    for (std::size_t k = 0; k < p.size(); ++k) {
        auto m = read_frame(p.substr(0, k));
        REQUIRE(std::holds_alternative<NeedMore>(m));
        CHECK(std::get<NeedMore>(m).at_least >= 1);
        CHECK(k + std::get<NeedMore>(m).at_least <= p.size());
    }
    CHECK(std::holds_alternative<Malformed>(read_frame(be32(0) + "c")));
    CHECK(std::holds_alternative<Malformed>(read_frame(be32(k_max_packet + 1))));
    CHECK(std::holds_alternative<NeedMore>(read_frame(be32(k_max_packet))));
    CHECK(std::holds_alternative<Malformed>(read_frame("\xff\xff\xff\xff"s)));
}

TEST_CASE("milter negotiation: version, actions, steps, macro lists")
{
    auto neg = [](const std::string& data) {
        static std::string keep;
        keep = packet('O', data);
        return parse_negotiation(frame_of(keep), action::k_offered, step::k_offered);
    };
    auto n = neg(be32(6) + be32(action::add_headers | action::quarantine) +
                 be32(step::no_connect | step::nr_header | step::rcpt_rejected) + be32(2) + "{mail_addr} i\0"s +
                 be32(9) + "x\0"s);
    REQUIRE(std::holds_alternative<Negotiation>(n));
    const Negotiation& g = std::get<Negotiation>(n);
    CHECK(g.version == 6);
    CHECK(g.actions == (action::add_headers | action::quarantine));
    CHECK(g.steps == (step::no_connect | step::nr_header)); // rcpt_rejected was not offered
    REQUIRE(g.macro_lists[2]);
    CHECK(*g.macro_lists[2] == std::vector<std::string>{"{mail_addr}", "i"});
    CHECK(!g.macro_lists[0]);
    // Version 2: no "no reply" steps.
    auto v2 = neg(be32(2) + be32(0) + be32(step::nr_connect | step::no_helo));
    REQUIRE(std::holds_alternative<Negotiation>(v2));
    CHECK(std::get<Negotiation>(v2).steps == step::no_helo);
    CHECK(std::holds_alternative<Malformed>(neg(be32(7) + be32(0) + be32(0))));
    CHECK(std::holds_alternative<Malformed>(neg(be32(1) + be32(0) + be32(0))));
    CHECK(std::holds_alternative<Malformed>(neg(be32(6) + be32(1u << 12) + be32(0))));
    CHECK(std::holds_alternative<Malformed>(neg(be32(6) + be32(0))));
    CHECK(std::holds_alternative<Malformed>(neg(be32(6) + be32(0) + be32(0) + be32(1) + "no nul"s)));
    CHECK(std::holds_alternative<Malformed>(neg(be32(6) + be32(0) + be32(0) + "ab"s)));
    static std::string not_optneg = packet('c', "");
    CHECK(std::holds_alternative<Malformed>(
        parse_negotiation(frame_of(not_optneg), action::k_offered, step::k_offered)));
}

TEST_CASE("milter replies: the verdicts")
{
    CHECK(ok('c', "").kind == Response::Kind::continue_);
    CHECK(ok('a', "").kind == Response::Kind::accept);
    CHECK(ok('r', "").kind == Response::Kind::reject);
    CHECK(ok('t', "").kind == Response::Kind::tempfail);
    CHECK(ok('d', "").kind == Response::Kind::discard);
    CHECK(ok('p', "").kind == Response::Kind::progress);
    CHECK(ok('s', "").kind == Response::Kind::skip);
    CHECK(ok('f', "").kind == Response::Kind::tempfail);
    CHECK(ok('4', "").kind == Response::Kind::tempfail);
    CHECK(malformed('c', "x"));
    CHECK(malformed('a', "\0"s));
    for (char unknown : {'O', 'l', 'x', '\0', '\xff', 'C'}) {
        CHECK(malformed(unknown, ""));
    }
}

TEST_CASE("milter replies: custom reply codes, checked")
{
    Response r = ok('y', "554 5.7.1 Go away\0"s);
    CHECK(r.kind == Response::Kind::reject);
    REQUIRE(r.reply);
    CHECK(r.reply->code == 554);
    CHECK(r.reply->status == "5.7.1");
    CHECK(r.reply->text == "Go away");
    Response t = ok('y', "451 4.7.0 Later please\0"s);
    CHECK(t.kind == Response::Kind::tempfail);
    CHECK(t.reply->status == "4.7.0");
    Response bare = ok('y', "550 No status here\0"s);
    CHECK(bare.reply->status.empty());
    CHECK(bare.reply->text == "No status here");
    Response code_only = ok('y', "421\0"s);
    CHECK(code_only.kind == Response::Kind::tempfail);
    CHECK(!code_only.reply->text.empty());
    Response controls = ok('y', "550 5.7.1 a\tb\x1b[2Jc\0"s);
    CHECK(controls.reply->text == "a?b?[2Jc");
    // C1 controls and bidirectional overrides neither (the client's terminal).
    Response invisible = ok('y', "550 5.7.1 a\xc2\x9b" "2J\xe2\x80\xae" "b\0"s);
    CHECK(invisible.reply->text == "a??2J???b");
    CHECK(malformed('y', "250 2.0.0 fine\0"s));
    CHECK(malformed('y', "354 go on\0"s));
    CHECK(malformed('y', "600 x\0"s));
    CHECK(malformed('y', "55 x\0"s));
    CHECK(malformed('y', "550-5.7.1 a\r\n550 5.7.1 b\0"s));
    CHECK(malformed('y', "550 5.7.1 a\nb\0"s));
    CHECK(malformed('y', "550 4.7.1 classes differ\0"s));
    CHECK(malformed('y', "450 5.7.1 classes differ\0"s));
    CHECK(malformed('y', "550x\0"s));
    CHECK(malformed('y', "550 no nul"));
    CHECK(malformed('y', "550 a\0extra"s));
}

TEST_CASE("milter replies: header changes")
{
    Response a = ok('h', "X-Spam\0yes\0"s);
    CHECK(a.kind == Response::Kind::add_header);
    CHECK(a.name == "X-Spam");
    CHECK(a.value == "yes");
    Response folded = ok('h', "X-Long\0one\n\ttwo\r\n three\0"s);
    CHECK(folded.value == "one\n\ttwo\r\n three");
    Response i = ok('i', be32(3) + "X-First\0v\0"s);
    CHECK(i.kind == Response::Kind::insert_header);
    CHECK(i.index == 3);
    Response m = ok('m', be32(1) + "Subject\0\0"s);
    CHECK(m.kind == Response::Kind::change_header);
    CHECK(m.index == 1);
    CHECK(m.value.empty());
    CHECK(malformed('h', "X-A\0"s));
    CHECK(malformed('h', "X-A\0v"s));
    CHECK(malformed('h', "X-A\0v\0more\0"s));
    CHECK(malformed('h', "X:A\0v\0"s));
    CHECK(malformed('h', "X A\0v\0"s));
    CHECK(malformed('h', "\0v\0"s));
    CHECK(malformed('h', "X\xc3\xa9\0v\0"s));
    CHECK(malformed('h', "X-A\0a\rb\0"s));
    CHECK(malformed('h', "X-A\0a\r\nBcc: x\0"s));
    CHECK(malformed('h', "X-A\0a\nBcc: x\0"s));
    CHECK(malformed('h', "X-A\0a\r\n\0"s));
    CHECK(malformed('h', "X-A\0a\x1b[2Jb\0"s));
    CHECK(malformed('h', "X-A\0a\x7f\0"s));
    CHECK(malformed('h', "X-A\0a\x0b\0"s));
    CHECK(malformed('h', "X-A\0a\xc2\x9b" "2J\0"s));
    CHECK(malformed('m', be32(1) + "Subject\0invoice\xe2\x80\xae" "fdp.exe\0"s));
    CHECK(!malformed('h', "X-A\0a\tb\r\n\tc \xc3\xa9\0"s));
    CHECK(malformed('i', "\0\0\0"s));
    CHECK(malformed('m', be32(1) + "Subject\0"s));
    CHECK(valid_header_name(std::string(255, 'a')));
    CHECK(!valid_header_name(std::string(256, 'a')));
}

TEST_CASE("milter replies: recipients, sender, body, quarantine")
{
    Response add = ok('+', "<new@example.test>\0"s);
    CHECK(add.kind == Response::Kind::add_rcpt);
    CHECK(add.value == "new@example.test");
    CHECK(ok('+', "bare@example.test\0"s).value == "bare@example.test");
    Response par = ok('2', "<p@example.test>\0NOTIFY=NEVER\0"s);
    CHECK(par.kind == Response::Kind::add_rcpt);
    CHECK(par.value == "p@example.test");
    CHECK(ok('-', "<old@example.test>\0"s).kind == Response::Kind::delete_rcpt);
    Response from = ok('e', "<s@example.test>\0"s);
    CHECK(from.kind == Response::Kind::change_from);
    CHECK(from.value == "s@example.test");
    CHECK(ok('e', "<>\0"s).value.empty());
    CHECK(ok('e', "<s@example.test>\0SIZE=1\0"s).value == "s@example.test");
    CHECK(malformed('+', "<>\0"s));
    CHECK(malformed('+', "not an address\0"s));
    CHECK(malformed('+', "<a@b.test> x\0"s));
    CHECK(malformed('+', "<a@b.test>"s));
    CHECK(malformed('+', "<a@b.test>\0extra\0"s));
    CHECK(malformed('-', "<a@b\r\n.test>\0"s));
    CHECK(malformed('e', "<a@b.test>\0P\0more\0"s));
    Response body = ok('b', "new body\r\n\0with NUL"s);
    CHECK(body.kind == Response::Kind::replace_body);
    CHECK(body.value == "new body\r\n\0with NUL"s);
    Response q = ok('q', "looks bad\0"s);
    CHECK(q.kind == Response::Kind::quarantine);
    CHECK(q.value == "looks bad");
    CHECK(ok('q', "a\nb\0"s).value == "a?b");
    CHECK(malformed('q', "no nul"));
    CHECK(is_modification(Response::Kind::quarantine));
    CHECK(!is_modification(Response::Kind::progress));
    CHECK(ends_stage(Response::Kind::skip));
    CHECK(!ends_stage(Response::Kind::add_header));
}

namespace {

std::vector<ContentEvent> split(const std::string& message, std::size_t piece)
{
    ContentSplitter s;
    std::vector<ContentEvent> out;
    for (std::size_t i = 0; i < message.size(); i += piece) {
        s.feed(std::string_view(message).substr(i, piece), out);
    }
    s.finish(out);
    return out;
}

std::string describe(const std::vector<ContentEvent>& events)
{
    std::string d;
    for (const ContentEvent& e : events) {
        d += e.kind == ContentEvent::Kind::header ? "H[" + e.name + "|" + e.value + "]"
             : e.kind == ContentEvent::Kind::eoh  ? std::string("EOH")
                                                  : "B[" + e.value + "]";
    }
    return d;
}

} // namespace

TEST_CASE("milter content: header fields, folds, the end of the header section, body chunks")
{
    const std::string m = "Received: from x\r\n\tby y\r\nSubject: hi\r\nX-Empty:\r\nName : v\r\n\r\nbody\r\n.line\r\n";
    for (std::size_t piece : {1, 2, 3, 7, 1000}) {
        CAPTURE(piece);
        CHECK(describe(split(m, piece)) ==
              "H[Received| from x\n\tby y]H[Subject| hi]H[X-Empty|]H[Name| v]EOHB[body\r\n.line\r\n]");
    }
    CHECK(describe(split("Subject: a\r\nnot a header\r\nmore\r\n", 5)) ==
          "H[Subject| a]EOHB[not a header\r\nmore\r\n]");
    CHECK(describe(split("Subject: a\r\n", 4)) == "H[Subject| a]EOH");
    CHECK(describe(split("Subject: no line end", 4)) == "H[Subject| no line end]EOH");
    CHECK(describe(split("\r\nbody only\r\n", 3)) == "EOHB[body only\r\n]");
    CHECK(describe(split("", 1)) == "EOH");
    CHECK(header_value_for(" v", false) == "v");
    CHECK(header_value_for(" v", true) == " v");
    CHECK(header_value_for("\tv", false) == "\tv");
    CHECK(header_value_for("  v", false) == " v");
}

TEST_CASE("milter content: body chunks of at most 65535 octets; an overlong field is cut")
{
    std::string body(k_body_chunk * 2 + 10, 'x');
    auto events = split("A: b\r\n\r\n" + body, 4096);
    REQUIRE(events.size() == 5);
    CHECK(events[2].value.size() == k_body_chunk);
    CHECK(events[3].value.size() == k_body_chunk);
    CHECK(events[4].value.size() == 10);
    auto longfield = split("Long: " + std::string(k_max_field * 2, 'v') + "\r\nNext: n\r\n\r\nb", 999);
    REQUIRE(longfield.size() == 4);
    CHECK(longfield[0].name == "Long");
    CHECK(longfield[0].value.size() <= k_max_field);
    CHECK(longfield[1].name == "Next");
    CHECK(longfield[3].value == "b");
}
