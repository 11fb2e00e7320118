// Tests of the streaming header section check and the Received: count.
#include "smtp/header_check.hpp"

#include <doctest/doctest.h>

#include <string>

using namespace smtpspool;

namespace {

struct Verdict {
    bool loop;
    std::string malformed;
    std::size_t received;
};

Verdict check(std::string_view message, HeaderCheck::Options o = {true, false, 100}, std::size_t chunk = 0)
{
    HeaderCheck h(o);
    if (chunk == 0) {
        h.feed(message);
    } else {
        for (std::size_t i = 0; i < message.size(); i += chunk) {
            h.feed(message.substr(i, chunk));
        }
    }
    h.finish();
    return {h.loop(), h.malformed(), h.received_fields()};
}

std::string received(std::size_t n)
{
    std::string s;
    for (std::size_t i = 0; i < n; ++i) {
        s += "Received: from a\r\n\tby b; Sun, 22 Nov 2026 06:00:00 +0000\r\n";
    }
    return s;
}

} // namespace

TEST_SUITE("header_check")
{
    TEST_CASE("field names: one or more octets of printable US-ASCII but ':' (RFC 5322 3.6.8)")
    {
        CHECK(is_field_name("Subject"));
        CHECK(is_field_name("X-Spam-Score"));
        CHECK(is_field_name("!#$%&'*+-.^_`|~0"));
        CHECK_FALSE(is_field_name(""));
        CHECK_FALSE(is_field_name("X A"));
        CHECK_FALSE(is_field_name("X:A"));
        CHECK_FALSE(is_field_name("X\tA"));
        CHECK_FALSE(is_field_name(std::string("X\0A", 3)));
        CHECK_FALSE(is_field_name("X\x7f"));
        CHECK_FALSE(is_field_name("Caf\xc3\xa9"));
        CHECK_FALSE(is_field_name("X\r\n"));
        int ftext = 0;
        for (int c = 0; c < 256; ++c) {
            ftext += is_ftext(static_cast<char>(c)) ? 1 : 0;
        }
        CHECK(ftext == 93); // 33..126 without ':'
    }

    TEST_CASE("well-formed header sections pass in any chunking")
    {
        std::string m = "From: a@b.test\r\nSubject: hi\r\n  folded\r\nX-Empty:\r\nObs-Name : value\r\n\r\n"
                        "body line without colon\r\n: also body\r\n";
        for (std::size_t chunk : {0, 1, 2, 3, 7}) {
            CAPTURE(chunk);
            auto v = check(m, {true, false, 100}, chunk);
            CHECK(v.malformed.empty());
            CHECK_FALSE(v.loop);
        }
        CHECK(check("Subject: only headers\r\n").malformed.empty()); // no body: no blank line needed
    }

    TEST_CASE("malformed header sections are named")
    {
        CHECK(check("Subject: x\r\nthis is the body\r\n").malformed.find("neither a header field") !=
              std::string::npos);
        CHECK(check(" leading continuation\r\nSubject: x\r\n\r\n").malformed.find("continuation") != std::string::npos);
        CHECK(check("\r\nbody only\r\n").malformed.find("no header fields") != std::string::npos);
        CHECK(check("").malformed == "no header fields");
        CHECK(check(": no name\r\n\r\n").malformed.find("neither") != std::string::npos);
        CHECK(check("Subject\r\n\r\n").malformed.find("neither") != std::string::npos);
        CHECK(check("Sub ject: x\r\n\r\n").malformed.find("neither") != std::string::npos);
        CHECK(check("Subject: a\rb\r\n\r\n").malformed.find("bare CR") != std::string::npos);
        CHECK(check(std::string("Subject: a\0b\r\n\r\n", 17)).malformed.find("NUL") != std::string::npos);
        std::string longline = "Subject: " + std::string(990, 'x') + "\r\n\r\n";
        CHECK(check(longline).malformed.find("longer than 998") != std::string::npos);
        std::string ok998 = "Subject: " + std::string(989, 'x') + "\r\n\r\n";
        CHECK(check(ok998).malformed.empty());
        // The body may have anything.
        CHECK(check("Subject: x\r\n\r\n" + std::string(2000, 'y') + "\r\n\xff\r\n").malformed.empty());
    }

    TEST_CASE("8-bit octets in headers need SMTPUTF8 or 8BITMIME")
    {
        std::string m = "Subject: gr\xc3\xbc\xc3\x9f"
                        "e\r\n\r\n";
        CHECK(check(m, {true, false, 100}).malformed.find("8-bit") != std::string::npos);
        CHECK(check(m, {true, true, 100}).malformed.empty());
    }

    TEST_CASE("without --check-headers nothing is malformed, but loops still count")
    {
        CHECK(check("garbage\r\n", {false, false, 100}).malformed.empty());
        auto v = check(received(3) + "Subject: x\r\n\r\n" + received(5), {false, true, 3});
        CHECK(v.received == 3); // the body's lines are not headers
        CHECK_FALSE(v.loop);
        CHECK(check(received(4) + "\r\n", {false, true, 3}).loop);
    }

    TEST_CASE("Received: fields are counted in any case and chunking, and only by name")
    {
        std::string m = received(50) + "RECEIVED: x\r\nreceived : y\r\nX-Received: no\r\nReceivedx: no\r\n"
                                       "Receive: no\r\n\r\n";
        for (std::size_t chunk : {0, 1, 5}) {
            auto v = check(m, {true, true, 100}, chunk);
            CHECK(v.received == 52);
            CHECK(v.malformed.empty());
        }
        CHECK(check(received(100) + "\r\n").loop == false);
        CHECK(check(received(101) + "\r\n").loop == true);
    }
}
