// Tests of command splitting and MAIL/RCPT arguments and parameters.
#include "smtp/dsn.hpp"
#include "smtp/smtp_command.hpp"

#include <doctest/doctest.h>

using namespace smtpspool;

namespace {

int code_of(const std::variant<MailCommand, Reply>& v) { return v.index() == 0 ? 250 : std::get<Reply>(v).code; }
int code_of(const std::variant<RcptCommand, Reply>& v) { return v.index() == 0 ? 250 : std::get<Reply>(v).code; }
const MailOptions k_esmtp{true, 1000};

} // namespace

TEST_SUITE("smtp_command")
{
    TEST_CASE("verbs are case-insensitive and need an exact word")
    {
        CHECK(parse_command("quit").verb == Verb::quit);
        CHECK(parse_command("QuIt").verb == Verb::quit);
        CHECK(parse_command("QUITX").verb == Verb::unknown);
        CHECK(parse_command("QUIT now").has_argument);
        CHECK(parse_command("MAIL FROM:<a@b>").argument == "FROM:<a@b>");
        CHECK(parse_command("STARTTLS").verb == Verb::starttls);
        CHECK(parse_command("AUTH PLAIN").verb == Verb::auth);
        CHECK(parse_command("BURL x").verb == Verb::unimplemented);
        CHECK(parse_command("").verb == Verb::unknown);
        CHECK(parse_command("EHELO x").verb == Verb::unknown);
        CHECK(parse_command("bdat 0 last").verb == Verb::bdat);
    }

    TEST_CASE("BDAT: 1 to 20 digits and an optional LAST; the size alone when the rest is bad")
    {
        auto ok = [](std::string_view arg, std::uint64_t size, bool last) {
            auto p = parse_bdat(arg);
            REQUIRE(p.index() == 0);
            CHECK(std::get<BdatCommand>(p).size == size);
            CHECK(std::get<BdatCommand>(p).last == last);
        };
        ok("0", 0, false);
        ok("0 LAST", 0, true);
        ok("1000 last", 1000, true);
        ok("007 LaSt", 7, true);
        ok("18446744073709551615", 18446744073709551615u, false);
        for (std::string_view bad : {"", " 5", "5 ", "5  LAST", "5 LAST ", "5 LASTX", "5 FIRST", "-1", "+1", "1x",
                                     "0x10", "18446744073709551616", "123456789012345678901", "LAST"}) {
            auto p = parse_bdat(bad);
            INFO("argument '" << bad << "'");
            REQUIRE(p.index() == 1);
            CHECK(render(std::get<Reply>(p)) == "501 5.5.4 syntax: BDAT <size> [LAST]\r\n");
        }
        CHECK(bdat_chunk_size("12 FIRST") == std::optional<std::uint64_t>(12));
        CHECK(bdat_chunk_size("12 LAST") == std::optional<std::uint64_t>(12));
        CHECK(bdat_chunk_size("12") == std::optional<std::uint64_t>(12));
        CHECK_FALSE(bdat_chunk_size("12x LAST"));
        CHECK_FALSE(bdat_chunk_size(" 12"));
        CHECK_FALSE(bdat_chunk_size("18446744073709551616"));
        CHECK_FALSE(bdat_chunk_size(""));
    }

    TEST_CASE("HTTP request lines are recognised")
    {
        CHECK(is_http_request("GET / HTTP/1.1"));
        CHECK(is_http_request("POST /x HTTP/1.0"));
        CHECK(is_http_request("CONNECT host:25 HTTP/1.1"));
        CHECK_FALSE(is_http_request("GETTY"));
        CHECK_FALSE(is_http_request("get / HTTP/1.1")); // methods are case-sensitive
    }

    TEST_CASE("MAIL FROM syntax")
    {
        CHECK(code_of(parse_mail("FROM:<a@b.example>", k_esmtp)) == 250);
        CHECK(code_of(parse_mail("from:<a@b.example>", k_esmtp)) == 250);
        CHECK(code_of(parse_mail("FROM: <a@b.example>", k_esmtp)) == 250); // a space after the colon
        CHECK(code_of(parse_mail("FROM:<>", k_esmtp)) == 250);
        CHECK(code_of(parse_mail("FROM:a@b.example", k_esmtp)) == 501);
        CHECK(code_of(parse_mail("FROM <a@b.example>", k_esmtp)) == 501);
        CHECK(code_of(parse_mail("", k_esmtp)) == 501);
        CHECK(code_of(parse_mail("FROM:<a@b.example>junk", k_esmtp)) == 501);
        auto bad = parse_mail("FROM:<a@b..example>", k_esmtp);
        REQUIRE(bad.index() == 1);
        CHECK(std::get<Reply>(bad).status == "5.1.3");
        auto long_local = parse_mail("FROM:<" + std::string(65, 'x') + "@b.example>", k_esmtp);
        CHECK(code_of(long_local) == 553);
    }

    TEST_CASE("MAIL parameters: SIZE, BODY, SMTPUTF8, unknown")
    {
        auto m = parse_mail("FROM:<a@b.example> SIZE=999 BODY=8BITMIME SMTPUTF8", k_esmtp);
        REQUIRE(m.index() == 0);
        CHECK(std::get<MailCommand>(m).declared_size == 999);
        CHECK(std::get<MailCommand>(m).body == Body::eight_bit_mime);
        CHECK(std::get<MailCommand>(m).smtputf8);
        CHECK(code_of(parse_mail("FROM:<a@b.example> body=7bit", k_esmtp)) == 250);
        CHECK(code_of(parse_mail("FROM:<a@b.example> SIZE=1001", k_esmtp)) == 552);
        CHECK(code_of(parse_mail("FROM:<a@b.example> SIZE=99999999999999999999", k_esmtp)) == 552);
        CHECK(code_of(parse_mail("FROM:<a@b.example> SIZE=123456789012345678901", k_esmtp)) == 501);
        CHECK(code_of(parse_mail("FROM:<a@b.example> SIZE=-1", k_esmtp)) == 501);
        CHECK(code_of(parse_mail("FROM:<a@b.example> SIZE=", k_esmtp)) == 501);
        CHECK(code_of(parse_mail("FROM:<a@b.example> SIZE=1 SIZE=2", k_esmtp)) == 501);
        CHECK(code_of(parse_mail("FROM:<a@b.example> BODY=BINARY", k_esmtp)) == 501);
        auto binary = parse_mail("FROM:<a@b.example> body=BinaryMIME", k_esmtp);
        REQUIRE(binary.index() == 0);
        CHECK(std::get<MailCommand>(binary).body == Body::binary_mime);
        CHECK(body_name(Body::binary_mime) == "BINARYMIME");
        CHECK(code_of(parse_mail("FROM:<a@b.example> BODY=BINARYMIME", MailOptions{false, 1000})) == 555);
        CHECK(code_of(parse_mail("FROM:<a@b.example> SMTPUTF8=yes", k_esmtp)) == 501);
        auto unknown = parse_mail("FROM:<a@b.example> MT-PRIORITY=3", k_esmtp);
        REQUIRE(unknown.index() == 1);
        CHECK(std::get<Reply>(unknown).code == 555);
        CHECK(std::get<Reply>(unknown).status == "5.5.4");
        CHECK(code_of(parse_mail("FROM:<a@b.example> SIZE=10", MailOptions{false, 1000})) == 555);
    }

    TEST_CASE("non-ASCII addresses need SMTPUTF8")
    {
        auto m = parse_mail("FROM:<j\xc3\xb6rg@b.example>", k_esmtp);
        REQUIRE(m.index() == 1);
        CHECK(std::get<Reply>(m).code == 553);
        CHECK(std::get<Reply>(m).status == "5.6.7");
        CHECK(code_of(parse_mail("FROM:<j\xc3\xb6rg@b.example> SMTPUTF8", k_esmtp)) == 250);
        CHECK(code_of(parse_rcpt("TO:<\xc3\xbc@x.example>", true, false)) == 553);
        CHECK(code_of(parse_rcpt("TO:<\xc3\xbc@x.example>", true, true)) == 250);
    }

    TEST_CASE("RCPT TO syntax and parameters")
    {
        CHECK(code_of(parse_rcpt("TO:<u@x.example>", true, false)) == 250);
        CHECK(code_of(parse_rcpt("to: <u@x.example>", true, false)) == 250);
        CHECK(code_of(parse_rcpt("TO:<postmaster>", true, false)) == 250);
        CHECK(code_of(parse_rcpt("TO:<>", true, false)) == 501);
        CHECK(code_of(parse_rcpt("TO:<u@x.example> NOTIFY=NEVER", true, false)) == 250);
        CHECK(code_of(parse_rcpt("TO:<u@x.example> NOTIFY=NEVER", false, false)) == 555);
        CHECK(code_of(parse_rcpt("TO:<u@x.example> ORCPT=rfc822;u@x.example", false, false)) == 555);
        CHECK(code_of(parse_rcpt("TO:<u@x.example> XYZ=1", true, false)) == 555);
        CHECK(code_of(parse_rcpt("FROM:<u@x.example>", true, false)) == 501);
    }

    TEST_CASE("DSN on MAIL: RET and ENVID, decoded from xtext")
    {
        auto m = parse_mail("FROM:<a@b.example> RET=hdrs ENVID=QQ+2B1+3Dx", k_esmtp);
        REQUIRE(m.index() == 0);
        CHECK(std::get<MailCommand>(m).ret == "HDRS");
        REQUIRE(std::get<MailCommand>(m).envid);
        CHECK(*std::get<MailCommand>(m).envid == "QQ+1=x");
        auto full = parse_mail("FROM:<> RET=FULL", k_esmtp);
        REQUIRE(full.index() == 0);
        CHECK(std::get<MailCommand>(full).ret == "FULL");
        CHECK_FALSE(std::get<MailCommand>(full).envid);
        auto none = parse_mail("FROM:<a@b.example>", k_esmtp);
        CHECK(std::get<MailCommand>(none).ret.empty());
        CHECK_FALSE(std::get<MailCommand>(none).envid);
        auto text = [](std::string_view arg) {
            auto r = parse_mail(arg, k_esmtp);
            return r.index() == 1 ? std::to_string(std::get<Reply>(r).code) + " " + std::get<Reply>(r).status + " " +
                                        std::get<Reply>(r).text
                                  : std::string("accepted");
        };
        CHECK(text("FROM:<a@b.example> RET=BODY") == "501 5.5.4 RET must be FULL or HDRS");
        CHECK(text("FROM:<a@b.example> RET") == "501 5.5.4 RET must be FULL or HDRS");
        CHECK(text("FROM:<a@b.example> RET=FULL RET=HDRS") == "501 5.5.4 RET given twice");
        CHECK(text("FROM:<a@b.example> ENVID=a ENVID=b") == "501 5.5.4 ENVID given twice");
        CHECK(text("FROM:<a@b.example> ENVID=") == "501 5.5.4 ENVID must be xtext of printable ASCII");
        CHECK(text("FROM:<a@b.example> ENVID=a+2b") == "501 5.5.4 ENVID must be xtext of printable ASCII");
        CHECK(text("FROM:<a@b.example> ENVID=a+2") == "501 5.5.4 ENVID must be xtext of printable ASCII");
        CHECK(text("FROM:<a@b.example> ENVID=a=b") == "501 5.5.4 ENVID must be xtext of printable ASCII");
        CHECK(text("FROM:<a@b.example> ENVID=a+0Ab") == "501 5.5.4 ENVID must be xtext of printable ASCII");
        CHECK(text("FROM:<a@b.example> ENVID=" + std::string(100, 'x')) == "accepted");
        CHECK(text("FROM:<a@b.example> ENVID=" + std::string(101, 'x')) ==
              "501 5.5.4 ENVID is longer than 100 characters");
        CHECK(text("FROM:<a@b.example> RET=FULL") == "accepted");
        CHECK(code_of(parse_mail("FROM:<a@b.example> RET=FULL", MailOptions{false, 1000})) == 555);
    }

    TEST_CASE("DSN on RCPT: NOTIFY and ORCPT")
    {
        auto rcpt = [](std::string_view arg) { return parse_rcpt(arg, true, false); };
        auto text = [&](std::string_view arg) {
            auto r = rcpt(arg);
            return r.index() == 1 ? std::to_string(std::get<Reply>(r).code) + " " + std::get<Reply>(r).status + " " +
                                        std::get<Reply>(r).text
                                  : std::string("accepted");
        };
        auto r = rcpt("TO:<u@x.example> notify=success,Delay ORCPT=rfc822;U+2BX@x.example");
        REQUIRE(r.index() == 0);
        const RcptCommand& c = std::get<RcptCommand>(r);
        REQUIRE(c.notify);
        CHECK(*c.notify == std::vector<std::string>{"SUCCESS", "DELAY"});
        REQUIRE(c.orcpt);
        CHECK(*c.orcpt == "rfc822;U+X@x.example");
        auto plain = rcpt("TO:<u@x.example>");
        CHECK_FALSE(std::get<RcptCommand>(plain).notify);
        CHECK_FALSE(std::get<RcptCommand>(plain).orcpt);
        CHECK(*std::get<RcptCommand>(rcpt("TO:<u@x.example> NOTIFY=NEVER")).notify ==
              std::vector<std::string>{"NEVER"});
        CHECK(text("TO:<u@x.example> NOTIFY=FAILURE,SUCCESS,DELAY") == "accepted");
        CHECK(text("TO:<u@x.example> NOTIFY=NEVER,SUCCESS") ==
              "501 5.5.4 NOTIFY=NEVER cannot be combined with other values");
        CHECK(text("TO:<u@x.example> NOTIFY=FAILURE,NEVER") ==
              "501 5.5.4 NOTIFY=NEVER cannot be combined with other values");
        CHECK(text("TO:<u@x.example> NOTIFY=SUCCESS,SUCCESS") == "501 5.5.4 NOTIFY names SUCCESS twice");
        CHECK(text("TO:<u@x.example> NOTIFY=SOMETIMES") ==
              "501 5.5.4 NOTIFY must be NEVER or a list of SUCCESS, FAILURE, DELAY");
        CHECK(text("TO:<u@x.example> NOTIFY=") ==
              "501 5.5.4 NOTIFY must be NEVER or a list of SUCCESS, FAILURE, DELAY");
        CHECK(text("TO:<u@x.example> NOTIFY=SUCCESS,") ==
              "501 5.5.4 NOTIFY must be NEVER or a list of SUCCESS, FAILURE, DELAY");
        CHECK(text("TO:<u@x.example> NOTIFY") == "501 5.5.4 NOTIFY must be NEVER or a list of SUCCESS, FAILURE, DELAY");
        CHECK(text("TO:<u@x.example> NOTIFY=NEVER NOTIFY=NEVER") == "501 5.5.4 NOTIFY given twice");
        CHECK(text("TO:<u@x.example> ORCPT=rfc822;a ORCPT=rfc822;b") == "501 5.5.4 ORCPT given twice");
        CHECK(text("TO:<u@x.example> ORCPT=u@x.example") == "501 5.5.4 ORCPT must be addr-type;xtext");
        CHECK(text("TO:<u@x.example> ORCPT=;u@x.example") == "501 5.5.4 ORCPT must be addr-type;xtext");
        CHECK(text("TO:<u@x.example> ORCPT=rfc822;") == "501 5.5.4 ORCPT must be addr-type;xtext");
        CHECK(text("TO:<u@x.example> ORCPT=rf(c;u@x.example") == "501 5.5.4 ORCPT must be addr-type;xtext");
        CHECK(text("TO:<u@x.example> ORCPT=rfc822;u+zz@x.example") == "501 5.5.4 ORCPT must be addr-type;xtext");
        CHECK(text("TO:<u@x.example> ORCPT=rfc822;u+0D+0A@x.example") == "501 5.5.4 ORCPT must be addr-type;xtext");
        CHECK(text("TO:<u@x.example> ORCPT=rfc822;" + std::string(493, 'a')) == "accepted"); // 500 in all
        CHECK(text("TO:<u@x.example> ORCPT=rfc822;" + std::string(494, 'a')) ==
              "501 5.5.4 ORCPT is longer than 500 characters");
    }

    TEST_CASE("xtext decodes what it encodes; malformed xtext is refused")
    {
        CHECK(xtext_decode("abc") == std::optional<std::string>("abc"));
        CHECK(xtext_decode("a+2B+3D+20") == std::optional<std::string>("a+= "));
        CHECK(xtext_decode("") == std::optional<std::string>(""));
        CHECK_FALSE(xtext_decode("+"));
        CHECK_FALSE(xtext_decode("+4"));
        CHECK_FALSE(xtext_decode("+4g"));
        CHECK_FALSE(xtext_decode("+4a")); // RFC 3461 §4: upper-case hex only
        CHECK_FALSE(xtext_decode("a b"));
        CHECK_FALSE(xtext_decode("a=b"));
        CHECK_FALSE(xtext_decode("\xc3\xa9"));
        CHECK(xtext_encode("a+= \r\n\xff~!") == "a+2B+3D+20+0D+0A+FF~!");
        std::string all;
        for (int c = 0; c < 256; ++c) {
            all.push_back(static_cast<char>(c));
        }
        CHECK(xtext_decode(xtext_encode(all)) == std::optional<std::string>(all));
        CHECK(orcpt_parameter("rfc822;a+b c@x") == "rfc822;a+2Bb+20c@x");
    }

    TEST_CASE("NOTIFY decides which notices are wanted")
    {
        using V = std::optional<std::vector<std::string>>;
        CHECK(notify_failure(V{}));
        CHECK_FALSE(notify_success(V{}));
        CHECK_FALSE(notify_failure(V{{"NEVER"}}));
        CHECK_FALSE(notify_success(V{{"NEVER"}}));
        CHECK(notify_success(V{{"SUCCESS"}}));
        CHECK_FALSE(notify_failure(V{{"SUCCESS", "DELAY"}}));
        CHECK(notify_failure(V{{"DELAY", "FAILURE"}}));
    }
}
