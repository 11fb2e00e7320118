// Tests of reply rendering: codes, enhanced codes, multi-line replies, limits.
#include "smtp/smtp_reply.hpp"

#include <doctest/doctest.h>

using namespace smtpspool;

TEST_SUITE("smtp_reply")
{
    TEST_CASE("a single-line reply with an enhanced status code")
    {
        CHECK(render(replies::sender_ok()) == "250 2.1.0 sender OK\r\n");
        CHECK(render(replies::relaying_denied()) == "550 5.7.1 relaying denied\r\n");
    }

    TEST_CASE("multi-line replies use hyphens on all lines but the last")
    {
        std::string ehlo = render(replies::ehlo_ok("mx.test", "c.test", 1234));
        CHECK(ehlo ==
              "250-mx.test hello c.test\r\n250-PIPELINING\r\n250-SIZE 1234\r\n250-8BITMIME\r\n"
              "250-ENHANCEDSTATUSCODES\r\n250-SMTPUTF8\r\n250-DSN\r\n250-CHUNKING\r\n250-BINARYMIME\r\n250 HELP\r\n");
        std::string help = render(replies::help());
        CHECK(help.substr(0, 10) == "214-2.0.0 ");
        CHECK(help.find("\r\n214 2.0.0 ") != std::string::npos);
    }

    TEST_CASE("the greeting and 354 carry no enhanced code")
    {
        CHECK(render(replies::greeting("mx.test", true)) == "220 mx.test ESMTP smtpspool ready\r\n");
        CHECK(render(replies::greeting("mx.test", false)) == "220 mx.test SMTP smtpspool ready\r\n");
        CHECK(render(replies::start_data()).substr(0, 4) == "354 ");
    }

    TEST_CASE("lines are cut at 512 octets and control characters replaced")
    {
        Reply r{550, "5.1.1", std::string(1000, 'x') + "\nshort\r"};
        std::string out = render(r);
        auto first = out.substr(0, out.find("\r\n"));
        CHECK(first.size() == 510);
        CHECK(out.find("550 5.1.1 short?\r\n") != std::string::npos);
        CHECK(render(replies::bad_address("a\tb")) == "501 5.1.3 bad address syntax: a?b\r\n");
    }

    TEST_CASE("5xx replies and 452 too many recipients count as client errors, others do not")
    {
        CHECK(is_client_error(replies::unknown_command()));
        CHECK(is_client_error(replies::out_of_sequence(Refusal::mail)));
        CHECK(is_client_error(replies::too_many_recipients()));
        CHECK_FALSE(is_client_error(replies::local_error()));
        CHECK_FALSE(is_client_error(replies::storage_full())); // 452 too, but ours
        CHECK(replies::out_of_sequence(Refusal::recipient).code == 554);
        CHECK(replies::storage_full().code == 452);
        CHECK(replies::storage_full().status == "4.3.1");
        CHECK(replies::local_error().status == "4.3.0");
    }
}

TEST_CASE("hook reply lines: only well-formed 4yz/5yz with a matching enhanced code")
{
    auto r = replies::parse_hook_reply("550 5.7.1 go away\n");
    REQUIRE(r);
    CHECK(r->code == 550);
    CHECK(r->status == "5.7.1");
    CHECK(r->text == "go away");
    CHECK(render(*r) == "550 5.7.1 go away\r\n");
    auto t = replies::parse_hook_reply("451 4.7.100 greylisted\tnow");
    REQUIRE(t);
    CHECK(t->text == "greylisted?now");
    CHECK(replies::parse_hook_reply("421 4.3.0")->text == "refused by local policy");
    CHECK_FALSE(replies::parse_hook_reply("250 2.0.0 fine"));
    CHECK_FALSE(replies::parse_hook_reply("354 go ahead"));
    CHECK_FALSE(replies::parse_hook_reply("550 4.7.1 class mismatch"));
    CHECK_FALSE(replies::parse_hook_reply("550 5.7 short"));
    CHECK_FALSE(replies::parse_hook_reply("550 5.7777.1 long subject"));
    CHECK_FALSE(replies::parse_hook_reply("550 5.7.1234 long detail"));
    CHECK_FALSE(replies::parse_hook_reply("550-5.7.1 continuation"));
    CHECK_FALSE(replies::parse_hook_reply("55 5.7.1 two digits"));
    CHECK_FALSE(replies::parse_hook_reply("600 6.0.0 out of range"));
    CHECK_FALSE(replies::parse_hook_reply(""));
    CHECK_FALSE(replies::parse_hook_reply("x50 5.7.1"));
}
