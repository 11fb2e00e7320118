// Tests of the pure pieces of bounces and local delivery.
#include "bounce.hpp"
#include "local_transports.hpp"

#include <doctest/doctest.h>

using namespace smtpspool;

TEST_SUITE("bounce")
{
    TEST_CASE("enhanced status codes are taken from replies")
    {
        CHECK(status_code_of("550 5.1.1 no such user", "5.0.0") == "5.1.1");
        CHECK(status_code_of("452 4.2.2 mailbox full", "5.0.0") == "4.2.2");
        CHECK(status_code_of("550 no such user", "5.0.0") == "5.0.0");
        CHECK(status_code_of("pipe command exited 1", "5.0.0") == "5.0.0");
        CHECK(status_code_of("550 7.1.1 x", "5.0.0") == "5.0.0");
    }

    TEST_CASE("the header section stops at the empty line and at the limit")
    {
        CHECK(header_section("A: 1\r\nB: 2\r\n\r\nbody\r\n", 1000) == "A: 1\r\nB: 2\r\n");
        CHECK(header_section("A: 1\r\nB: 2\r\n\r\nbody\r\n", 8) == "A: 1\r\n");
        CHECK(header_section("no end", 1000) == "no end");
    }

    TEST_CASE("CRLF becomes LF over any chunking")
    {
        std::string in = "a\r\nb\r\rc\r\n\r\n";
        for (std::size_t cut = 0; cut <= in.size(); ++cut) {
            LfConverter lf;
            std::string out = lf.convert(in.substr(0, cut));
            out += lf.convert(in.substr(cut));
            out += lf.finish();
            CHECK(out == "a\nb\r\rc\n\n");
        }
    }

    TEST_CASE("maildir paths are made safe")
    {
        CHECK(expand_maildir_path("/m/%d/%u", "Bob@Example.ORG", "me.test") == "/m/example.org/Bob");
        CHECK(expand_maildir_path("/m/%u", "../../etc@x.test", "me.test") == "/m/___.._etc");
        CHECK(expand_maildir_path("/m/%u", "\"a/b c\"@x.test", "me.test") == "/m/a_b c");
        CHECK(expand_maildir_path("/m/%d/%u", "postmaster", "Me.Test") == "/m/me.test/postmaster");
        CHECK(expand_maildir_path("/m/%u%%", ".hidden@x.test", "me.test") == "/m/_hidden%%");
    }
}
