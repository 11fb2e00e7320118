// Tests of the outbound client's pure pieces: the reply parser and the
// dot-stuffer fed at every split point, EHLO keywords, address refusal, details.
#include "delivery/smtp_client.hpp"

#include <doctest/doctest.h>

#include <string>
#include <vector>

using namespace smtpspool;
using namespace std::string_literals;

namespace {

struct Parsed {
    std::vector<ServerReply> replies;
    bool failed = false;
    std::string error;
};

// Feeds `input` cut at `cuts`, taking every reply as soon as it is ready.
Parsed parse(const std::string& input, const std::vector<std::size_t>& cuts)
{
    ReplyParser p;
    Parsed out;
    std::vector<std::size_t> bounds = cuts;
    bounds.push_back(input.size());
    std::size_t start = 0;
    for (std::size_t b : bounds) {
        std::string_view chunk = std::string_view(input).substr(start, b - start);
        start = b;
        while (!chunk.empty()) {
            std::size_t used = p.feed(chunk);
            REQUIRE(used <= chunk.size());
            chunk.remove_prefix(used);
            if (p.ready()) {
                out.replies.push_back(p.take());
                continue;
            }
            if (p.failed()) {
                out.failed = true;
                out.error = p.error();
                return out;
            }
            REQUIRE(chunk.empty()); // fewer octets consumed only when ready or failed
        }
    }
    return out;
}

// Whole, split once at every point, and one octet at a time.
std::vector<std::vector<std::size_t>> every_split(std::size_t size)
{
    std::vector<std::vector<std::size_t>> splits{{}};
    std::vector<std::size_t> all;
    for (std::size_t i = 1; i < size; ++i) {
        splits.push_back({i});
        all.push_back(i);
    }
    splits.push_back(all);
    return splits;
}

struct ReplyCase {
    const char* name;
    std::string input;
    std::vector<ServerReply> replies; // complete replies before any error
    std::string error;                // "" when the input is valid
};

std::vector<ReplyCase> reply_cases()
{
    return {
        {"greeting", "220 mx.test ESMTP\r\n", {{220, {"mx.test ESMTP"}}}, ""},
        {"multi-line EHLO reply",
         "250-mx.test hello\r\n250-PIPELINING\r\n250 SIZE 100\r\n",
         {{250, {"mx.test hello", "PIPELINING", "SIZE 100"}}},
         ""},
        {"pipelined replies back to back",
         "250 2.1.0 ok\r\n550 5.1.1 no\r\n354 go\r\n",
         {{250, {"2.1.0 ok"}}, {550, {"5.1.1 no"}}, {354, {"go"}}},
         ""},
        {"a code alone", "250\r\n", {{250, {""}}}, ""},
        {"empty continuation text", "250-\r\n250 x\r\n", {{250, {"", "x"}}}, ""},
        {"bare LF tolerated", "250-a\n250 b\n421 c\r\n", {{250, {"a", "b"}}, {421, {"c"}}}, ""},
        {"tab and UTF-8 kept", "550 caf\xc3\xa9\tx\r\n", {{550, {"caf\xc3\xa9\tx"}}}, ""},
        {"a NUL is text", "550 a\0b\r\n"s, {{550, {"a\0b"s}}}, ""},
        {"four digits", "2500 x\r\n", {}, "malformed reply line \"2500 x\""},
        {"first digit 6", "600 x\r\n", {}, "malformed reply line \"600 x\""},
        {"first digit 1", "199 x\r\n", {}, "malformed reply line \"199 x\""},
        {"second digit 6", "260 x\r\n", {}, "malformed reply line \"260 x\""},
        {"two digits", "25 x\r\n", {}, "malformed reply line \"25 x\""},
        {"empty line", "\r\n", {}, "malformed reply line \"\""},
        {"an HTTP server", "HTTP/1.1 400 Bad Request\r\n", {}, "malformed reply line \"HTTP/1.1 400 Bad Request\""},
        {"code changes", "250-a\r\n251 b\r\n", {}, "reply code changes from 250 to 251 within one reply"},
        {"bare CR inside a line", "250 a\rb\r\n", {}, "CR not followed by LF in a reply"},
        {"CR CR LF", "250 a\r\r\n", {}, "CR not followed by LF in a reply"},
        {"good reply, then junk", "250 ok\r\nxyz\r\n", {{250, {"ok"}}}, "malformed reply line \"xyz\""},
        {"control characters in the error are replaced", "\x1b[1m\r\n", {}, "malformed reply line \"?[1m\""},
    };
}

bool same(const ServerReply& a, const ServerReply& b) { return a.code == b.code && a.lines == b.lines; }

} // namespace

TEST_SUITE("smtp_client")
{
    TEST_CASE("replies parse the same at every split point")
    {
        for (const ReplyCase& c : reply_cases()) {
            INFO("case: " << c.name);
            for (const auto& cuts : every_split(c.input.size())) {
                INFO("first cut " << (cuts.empty() ? 0 : cuts.front()) << " of " << cuts.size());
                Parsed p = parse(c.input, cuts);
                REQUIRE(p.replies.size() == c.replies.size());
                for (std::size_t i = 0; i < c.replies.size(); ++i) {
                    CHECK(same(p.replies[i], c.replies[i]));
                }
                CHECK(p.failed == !c.error.empty());
                CHECK(p.error == c.error);
            }
        }
    }

    TEST_CASE("feed stops after one complete reply and says how much it used")
    {
        ReplyParser p;
        std::string in = "250-a\r\n250 b\r\n354 go\r\n";
        CHECK(p.feed(in) == 14);
        CHECK(p.ready());
        CHECK(p.feed("354 go\r\n") == 0); // nothing more until take()
        ServerReply r = p.take();
        CHECK(r.code == 250);
        CHECK(r.lines == std::vector<std::string>{"a", "b"});
        CHECK_FALSE(p.ready());
        CHECK(p.feed(std::string_view(in).substr(14)) == 8);
        CHECK(p.take().code == 354);
        CHECK(p.take().code == 0); // nothing ready
    }

    TEST_CASE("a reply line may be 2048 octets with its CRLF, not one more")
    {
        std::string ok = "250 " + std::string(2042, 'x') + "\r\n";
        REQUIRE(ok.size() == 2048);
        Parsed p = parse(ok, {});
        REQUIRE(p.replies.size() == 1);
        CHECK(p.replies[0].lines[0].size() == 2042);
        CHECK_FALSE(p.failed);

        std::string over = "250 " + std::string(2043, 'x') + "\r\n";
        for (const auto& cuts : std::vector<std::vector<std::size_t>>{{}, {1000}, {2046}, {2047}}) {
            p = parse(over, cuts);
            CHECK(p.failed);
            CHECK(p.error == "reply line longer than 2048 octets");
        }
    }

    TEST_CASE("memory stays bounded: an endless line fails within the limit")
    {
        ReplyParser p;
        std::string junk(1000000, 'x');
        std::size_t used = p.feed("250 " + junk);
        CHECK(p.failed());
        CHECK(used == 2047);
        CHECK(p.feed(junk) == 0);
        CHECK(p.failed());
    }

    TEST_CASE("a reply may have 100 lines, not 101")
    {
        std::string hundred;
        for (int i = 0; i < 99; ++i) {
            hundred += "250-line\r\n";
        }
        hundred += "250 last\r\n";
        Parsed p = parse(hundred, {});
        REQUIRE(p.replies.size() == 1);
        CHECK(p.replies[0].lines.size() == 100);
        CHECK(p.replies[0].lines.back() == "last");

        std::string more = "250-line\r\n" + hundred;
        p = parse(more, {});
        CHECK(p.replies.empty());
        CHECK(p.failed);
        CHECK(p.error == "reply of more than 100 lines");
    }

    TEST_CASE("EHLO keywords")
    {
        ServerReply r{250,
                      {"mx.test says PIPELINING SIZE", "pipelining", "SIZE 10240000", "8BITMIME", "SmtpUtf8",
                       "AUTH=LOGIN PLAIN", "ENHANCEDSTATUSCODES"}};
        EhloFeatures f = parse_ehlo(r);
        CHECK(f.pipelining);
        CHECK(f.size);
        CHECK(f.max_size == 10240000);
        CHECK(f.eight_bit_mime);
        CHECK(f.smtputf8);
        CHECK_FALSE(f.chunking);
        CHECK_FALSE(f.binary_mime);
        f = parse_ehlo({250, {"mx", "chunking", "BinaryMIME"}});
        CHECK(f.chunking);
        CHECK(f.binary_mime);

        // The greeting line is not a keyword.
        f = parse_ehlo({250, {"PIPELINING 8BITMIME SMTPUTF8 SIZE"}});
        CHECK_FALSE(f.pipelining);
        CHECK_FALSE(f.size);
        CHECK_FALSE(f.eight_bit_mime);
        CHECK_FALSE(f.smtputf8);

        f = parse_ehlo({250, {"mx", "SIZE"}});
        CHECK(f.size);
        CHECK(f.max_size == 0);
        f = parse_ehlo({250, {"mx", "SIZE 0"}});
        CHECK(f.size);
        CHECK(f.max_size == 0);
        f = parse_ehlo({250, {"mx", "SIZE 12x"}});
        CHECK(f.size);
        CHECK(f.max_size == 0);
        f = parse_ehlo({250, {"mx", "SIZE 99999999999999999999999"}});
        CHECK(f.max_size == 0);
        f = parse_ehlo({250, {"mx", "SIZE=5000"}});
        CHECK(f.max_size == 5000);
        // Keywords are whole words.
        f = parse_ehlo({250, {"mx", "PIPELININGX", "8BITMIMEX", "SIZES 5", "XSMTPUTF8"}});
        CHECK_FALSE(f.pipelining);
        CHECK_FALSE(f.eight_bit_mime);
        CHECK_FALSE(f.size);
        CHECK_FALSE(f.smtputf8);
    }

    TEST_CASE("dot-stuffing at every split point")
    {
        struct Case {
            const char* name;
            std::string in;
            std::string wire;
        };
        const std::vector<Case> cases{
            {"empty message", "", ".\r\n"},
            {"one line", "a\r\n", "a\r\n.\r\n"},
            {"no final CRLF", "a", "a\r\n.\r\n"},
            {"a line that is a dot", ".\r\n", "..\r\n.\r\n"},
            {"leading dots doubled", ".a\r\n..b\r\n", "..a\r\n...b\r\n.\r\n"},
            {"dot inside a line kept", "a.b\r\n", "a.b\r\n.\r\n"},
            {"end mark inside the message", "a\r\n.\r\nb\r\n", "a\r\n..\r\nb\r\n.\r\n"},
            {"only dots, no CRLF", "..", "...\r\n.\r\n"},
            {"empty lines", "\r\n\r\n", "\r\n\r\n.\r\n"},
            {"bare LF becomes CRLF", "a\nb\n", "a\r\nb\r\n.\r\n"},
            {"LF.LF", "a\n.\nb", "a\r\n..\r\nb\r\n.\r\n"},
            {"bare CR becomes CRLF", "a\rb", "a\r\nb\r\n.\r\n"},
            {"CR.CR", "a\r.\rb", "a\r\n..\r\nb\r\n.\r\n"},
            {"CR CR LF is two line ends", "a\r\r\n", "a\r\n\r\n.\r\n"},
            {"trailing bare CR", "a\r", "a\r\n.\r\n"},
            {"only a CR", "\r", "\r\n.\r\n"},
            {"only an LF", "\n", "\r\n.\r\n"},
            {"LF CR is two line ends", "a\n\rb", "a\r\n\r\nb\r\n.\r\n"},
            {"smuggling LF.CRLF", "a\n.\r\nMAIL FROM:<x@y>\r\n", "a\r\n..\r\nMAIL FROM:<x@y>\r\n.\r\n"},
            {"smuggling CRLF.CR", "a\r\n.\rb\r\n", "a\r\n..\r\nb\r\n.\r\n"},
            {"NUL before a dot", "a\r\n\0.\r\n"s, "a\r\n\0.\r\n.\r\n"s},
            {"leading dot after a bare CR", "x\r.y", "x\r\n..y\r\n.\r\n"},
        };
        for (const Case& c : cases) {
            INFO("case: " << c.name);
            for (const auto& cuts : every_split(c.in.size())) {
                INFO("first cut " << (cuts.empty() ? 0 : cuts.front()) << " of " << cuts.size());
                DotStuffer s;
                std::string out;
                std::size_t start = 0;
                std::vector<std::size_t> bounds = cuts;
                bounds.push_back(c.in.size());
                for (std::size_t b : bounds) {
                    s.feed(std::string_view(c.in).substr(start, b - start), out);
                    start = b;
                }
                s.finish(out);
                CHECK(out == c.wire);
            }
        }
    }

    TEST_CASE("the wire form has only CRLF line ends and one end mark, for any octets")
    {
        // Every string of up to 6 octets over {a, '.', CR, LF}.
        const char alphabet[] = {'a', '.', '\r', '\n'};
        std::vector<std::string> inputs{""};
        std::size_t from = 0;
        for (int len = 1; len <= 6; ++len) {
            std::size_t to = inputs.size();
            for (std::size_t i = from; i < to; ++i) {
                for (char c : alphabet) {
                    inputs.push_back(inputs[i] + c);
                }
            }
            from = to;
        }
        REQUIRE(inputs.size() == 5461);
        for (const std::string& in : inputs) {
            DotStuffer s;
            std::string out;
            s.feed(in, out);
            s.finish(out);
            bool clean = true;
            for (std::size_t i = 0; i < out.size(); ++i) {
                if (out[i] == '\r' && (i + 1 == out.size() || out[i + 1] != '\n')) {
                    clean = false;
                }
                if (out[i] == '\n' && (i == 0 || out[i - 1] != '\r')) {
                    clean = false;
                }
            }
            std::string framed = "\r\n" + out;
            INFO("input of " << in.size() << " octets");
            CHECK(clean);
            CHECK(framed.find("\r\n.\r\n") == framed.size() - 5);
        }
    }

    TEST_CASE("a dot-stuffer can be used again after finish()")
    {
        DotStuffer s;
        std::string out;
        s.feed("a\r", out);
        s.finish(out);
        s.feed(".b", out);
        s.finish(out);
        CHECK(out == "a\r\n.\r\n..b\r\n.\r\n");
    }

    TEST_CASE("addresses that could change the command are refused")
    {
        CHECK(address_refusal("", false) == "");
        CHECK(address_refusal("a@b.test", false) == "");
        CHECK(address_refusal("postmaster", false) == "");
        CHECK(address_refusal("PostMaster", false) == "");
        CHECK(address_refusal("\"a b\"@b.test", false) == "");
        CHECK(address_refusal("u\xc3\xa9@b.test", true) == "");

        CHECK(address_refusal("a@b.test>\r\nRCPT TO:<x@y", false) == "address contains a control character");
        CHECK(address_refusal("a\n@b.test", false) == "address contains a control character");
        CHECK(address_refusal("a\r@b.test", false) == "address contains a control character");
        CHECK(address_refusal("a\0@b.test"s, false) == "address contains a control character");
        CHECK(address_refusal("a\t@b.test", false) == "address contains a control character");
        CHECK(address_refusal("a\x7f@b.test", false) == "address contains a control character");
        CHECK(address_refusal("a\xc2\x9b" "2J@b.test", true) == "address contains a control character");
        CHECK(address_refusal("a\xe2\x80\xae@b.test", true) == "address contains a control character");
        CHECK(address_refusal("a<b@b.test", false) == "address contains '<' or '>'");
        CHECK(address_refusal("a>@b.test", false) == "address contains '<' or '>'");
        CHECK(address_refusal("u\xc3\xa9@b.test", false) == "non-ASCII address in a message without SMTPUTF8");
        CHECK(address_refusal("bob", false) == "address without a domain");

        std::string longest = std::string(64, 'l') + "@" + std::string(189, 'd');
        REQUIRE(longest.size() == 254);
        CHECK(address_refusal(longest, false) == "");
        CHECK(address_refusal(longest + "d", false) == "address longer than 254 octets");

        CHECK(is_bare_postmaster("POSTMASTER"));
        CHECK_FALSE(is_bare_postmaster("postmaster@x.test"));
    }

    TEST_CASE("a reply as one detail line")
    {
        CHECK(reply_detail({550, {"5.1.1 <u@x>: no such user"}}) == "550 5.1.1 <u@x>: no such user");
        CHECK(reply_detail({451, {"4.3.0 first", "", "second"}}) == "451 4.3.0 first; second");
        CHECK(reply_detail({250, {""}}) == "250");
        CHECK(reply_detail({550,
                            {"a\tb\x1b"
                             "c"}}) == "550 a?b?c");

        std::string long_text(1000, 'x');
        std::string d = reply_detail({550, {long_text, long_text}});
        CHECK(d.size() == k_max_detail);
        CHECK(d.substr(0, 5) == "550 x");
        CHECK(d.substr(d.size() - 3) == "...");

        // A cut never splits a UTF-8 character: 396 octets of "550 éé...é", then "...".
        std::string accents;
        for (int i = 0; i < 300; ++i) {
            accents += "\xc3\xa9";
        }
        d = reply_detail({550, {accents}});
        CHECK(d.size() == 399);
        CHECK(d.substr(0, 6) == "550 \xc3\xa9");
        CHECK(d.substr(d.size() - 5) == "\xc3\xa9...");
        CHECK(d.find('\r') == std::string::npos);
    }

    TEST_CASE("MAIL and RCPT carry the parameters the server offers, DSN's only to a DSN server")
    {
        Envelope e;
        e.mail_from = "a@b.test";
        e.body = Body::eight_bit_mime;
        e.smtputf8 = true;
        e.dsn_ret = "HDRS";
        e.dsn_envid = "id+1 x";
        Recipient r;
        r.address = "u@c.test";
        r.notify = std::vector<std::string>{"SUCCESS", "FAILURE"};
        r.orcpt = "rfc822;u@c.test";
        EhloFeatures plain;
        CHECK(mail_command(e, plain, 1234) == "MAIL FROM:<a@b.test> BODY=8BITMIME SMTPUTF8\r\n");
        CHECK(rcpt_command(r, plain) == "RCPT TO:<u@c.test>\r\n");
        EhloFeatures rich;
        rich.size = true;
        rich.dsn = true;
        CHECK(mail_command(e, rich, 1234) ==
              "MAIL FROM:<a@b.test> SIZE=1234 BODY=8BITMIME SMTPUTF8 RET=HDRS ENVID=id+2B1+20x\r\n");
        CHECK(rcpt_command(r, rich) == "RCPT TO:<u@c.test> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;u@c.test\r\n");
        Envelope bare;
        bare.mail_from = "";
        bare.body = Body::seven_bit;
        CHECK(mail_command(bare, rich, 0) == "MAIL FROM:<> SIZE=0\r\n");
        // The BODY= decided for this server replaces the envelope's.
        CHECK(mail_command(e, plain, 1, Body::seven_bit) == "MAIL FROM:<a@b.test> SMTPUTF8\r\n");
        CHECK(mail_command(bare, plain, 1, Body::binary_mime) == "MAIL FROM:<> BODY=BINARYMIME\r\n");
    }
}
