// Tests of command splitting and MAIL/RCPT arguments and parameters.
#include "smtp_command.hpp"

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
        CHECK(parse_command("AUTH PLAIN").verb == Verb::unimplemented);
        CHECK(parse_command("").verb == Verb::unknown);
        CHECK(parse_command("EHELO x").verb == Verb::unknown);
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
        CHECK(code_of(parse_mail("FROM:<a@b.example> BODY=BINARYMIME", k_esmtp)) == 501);
        CHECK(code_of(parse_mail("FROM:<a@b.example> SMTPUTF8=yes", k_esmtp)) == 501);
        auto unknown = parse_mail("FROM:<a@b.example> RET=HDRS", k_esmtp);
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
        CHECK(code_of(parse_rcpt("TO:<u@x.example> NOTIFY=NEVER", true, false)) == 555);
        CHECK(code_of(parse_rcpt("TO:<u@x.example> NOTIFY=NEVER", false, false)) == 555);
        CHECK(code_of(parse_rcpt("FROM:<u@x.example>", true, false)) == 501);
    }
}
