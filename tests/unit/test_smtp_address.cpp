// Tests of the Path grammar (RFC 5321 §4.1.2, RFC 6531) and its limits.
#include "smtp/smtp_address.hpp"

#include <doctest/doctest.h>

#include <string>

using namespace smtpspool;

TEST_SUITE("smtp_address")
{
    TEST_CASE("valid reverse and forward paths")
    {
        struct Row {
            std::string text;
            PathKind kind;
            std::string mailbox;
        };
        const Row rows[] = {
            {"<a@b.example>", PathKind::reverse, "a@b.example"},
            {"<>", PathKind::reverse, ""},
            {"<first.last+tag@sub.b-c.example>", PathKind::forward, "first.last+tag@sub.b-c.example"},
            {"<\"john doe\"@example.org>", PathKind::forward, "\"john doe\"@example.org"},
            {"<\"a\\\"b\"@example.org>", PathKind::forward, "\"a\\\"b\"@example.org"},
            {"<user@[192.0.2.1]>", PathKind::forward, "user@[192.0.2.1]"},
            {"<user@[IPv6:2001:db8::1]>", PathKind::forward, "user@[IPv6:2001:db8::1]"},
            {"<@relay.example,@other.example:u@final.example>", PathKind::forward, "u@final.example"},
            {"<Postmaster>", PathKind::forward, "Postmaster"},
            {"<postmaster>", PathKind::forward, "postmaster"},
            {"<!#$%&'*+-/=?^_`{|}~@x.example>", PathKind::reverse, "!#$%&'*+-/=?^_`{|}~@x.example"},
        };
        for (const Row& r : rows) {
            INFO(r.text);
            PathParse p = parse_path(r.text, r.kind);
            CHECK(p.error == PathError::none);
            CHECK(p.path.mailbox == r.mailbox);
            CHECK(p.end == r.text.size());
            CHECK_FALSE(p.path.non_ascii);
        }
    }

    TEST_CASE("invalid paths are syntax errors")
    {
        const std::string bad[] = {
            "a@b.example",      // no brackets
            "<a@b.example",     // no closing bracket
            "<a>",              // no domain
            "<a@>",             // empty domain
            "<@b.example>",     // empty local part
            "<a..b@c.example>", // double dot
            "<.a@c.example>",   // leading dot
            "<a.@c.example>",   // trailing dot
            "<a b@c.example>",  // space
            "<a@-c.example>",   // label starts with a hyphen
            "<a@c-.example>",   // label ends with a hyphen
            "<a@c..example>",   // empty label
            "<a@c.example.>",   // trailing dot in the domain
            "<a@[300.1.1.1]>",  // bad IPv4 literal
            "<a@[1.2.3]>",      // short IPv4 literal
            "<a@[IPv6:zz::1]>", // bad IPv6 literal
            "<a@[foo:bar]>",    // general literal: not supported
            "<\"unterminated@x.example>",
            "<a\x01@x.example>", // control character
            "<a@x_y.example>",   // underscore in a domain
            "<a@b.example> ",    // (trailing text is the caller's business: end stops at >)
        };
        for (std::size_t i = 0; i + 1 < std::size(bad); ++i) {
            INFO(bad[i]);
            CHECK(parse_path(bad[i], PathKind::forward).error == PathError::syntax);
        }
        CHECK(parse_path("<>", PathKind::forward).error == PathError::syntax);
        CHECK(parse_path("<postmaster>", PathKind::reverse).error == PathError::syntax);
        CHECK(parse_path("<\"postmaster\">", PathKind::forward).error == PathError::syntax);
    }

    TEST_CASE("length limits of RFC 5321 §4.5.3.1")
    {
        std::string local64(64, 'a');
        CHECK(parse_path("<" + local64 + "@x.example>", PathKind::forward).error == PathError::none);
        CHECK(parse_path("<" + local64 + "a@x.example>", PathKind::forward).error == PathError::too_long);
        std::string label(63, 'b');
        CHECK(parse_path("<a@" + label + ".example>", PathKind::forward).error == PathError::none);
        CHECK(parse_path("<a@" + label + "b.example>", PathKind::forward).error == PathError::syntax);
        // 4 labels of 63 plus dots: 255 octets is fine, but the path exceeds 256.
        std::string domain = label + "." + label + "." + label + "." + label.substr(0, 61);
        REQUIRE(domain.size() == 253);
        CHECK(is_domain(domain));
        auto p = parse_path("<" + std::string(10, 'u') + "@" + domain + ">", PathKind::forward);
        CHECK(p.error == PathError::too_long);
        CHECK(p.why.find("256") != std::string::npos);
        std::string too_long_domain = domain + ".abc";
        CHECK_FALSE(is_domain(too_long_domain));
        CHECK(parse_path("<u@" + too_long_domain + ">", PathKind::forward).error == PathError::too_long);
    }

    TEST_CASE("UTF-8 addresses are recognised and must be well formed")
    {
        auto p = parse_path("<j\xc3\xb6rg@b\xc3\xbc"
                            "cher.example>",
                            PathKind::forward);
        CHECK(p.error == PathError::none);
        CHECK(p.path.non_ascii);
        CHECK(parse_path("<\xff@x.example>", PathKind::forward).error == PathError::syntax);
        CHECK(parse_path("<\xc0\xaf@x.example>", PathKind::forward).error == PathError::syntax);     // overlong
        CHECK(parse_path("<\xed\xa0\x80@x.example>", PathKind::forward).error == PathError::syntax); // surrogate
        CHECK(parse_path("<a@\xc3\x28.example>", PathKind::forward).error == PathError::syntax);
        CHECK(utf8_sequence("\xf0\x9f\x93\xa7", 0) == 4);
        CHECK(utf8_sequence("\xf0\x9f\x93", 0) == 0);
    }

    TEST_CASE("address literals")
    {
        CHECK(is_address_literal("[127.0.0.1]"));
        CHECK(is_address_literal("[IPv6:::1]"));
        CHECK(is_address_literal("[ipv6:fe80::1]"));
        CHECK_FALSE(is_address_literal("[256.0.0.1]"));
        CHECK_FALSE(is_address_literal("[01234.0.0.1]"));
        CHECK_FALSE(is_address_literal("127.0.0.1"));
        // Found by fuzz_address: a NUL inside an IPv6 literal once ended inet_pton's view early.
        CHECK_FALSE(is_address_literal(std::string("[IPv6:2001:db8::1\0\0]", 21)));
        CHECK(parse_path(std::string("<w@[IPv6:2001:db8::1\0]>", 24), PathKind::forward).error == PathError::syntax);
    }

    TEST_CASE("C1 controls, bidirectional formatting characters and line separators are refused")
    {
        const std::string bad[] = {
            "x\xc2\x9b" "31m",   // U+009B CSI
            "x\xc2\x80",          // U+0080
            "x\xc2\x9f",          // U+009F
            "x\xe2\x80\xae" "y",  // U+202E right-to-left override
            "x\xe2\x80\xaa",      // U+202A
            "x\xe2\x81\xa6",      // U+2066 left-to-right isolate
            "x\xe2\x81\xa9",      // U+2069
            "x\xe2\x80\x8e",      // U+200E
            "x\xe2\x80\x8f",      // U+200F
            "x\xd8\x9c",          // U+061C arabic letter mark
            "x\xe2\x80\xa8",      // U+2028 line separator
            "\"x\xc2\x9b\"",      // quoted
        };
        for (const std::string& local : bad) {
            INFO(local);
            PathParse p = parse_path("<" + local + "@mx.example>", PathKind::forward);
            CHECK(p.error == PathError::invisible_control);
            CHECK(parse_path("<" + local + "@mx.example>", PathKind::reverse).error == PathError::invisible_control);
        }
        CHECK(parse_path("<x@b\xc2\x9b.example>", PathKind::forward).error == PathError::invisible_control);
        CHECK(parse_path("<x@b\xe2\x80\xae.example>", PathKind::forward).error == PathError::invisible_control);
        // Neighbours of the refused ranges stay valid.
        CHECK(parse_path("<x\xc2\xa0y@mx.example>", PathKind::forward).error == PathError::none); // U+00A0
        CHECK(parse_path("<x\xe2\x80\x90y@mx.example>", PathKind::forward).error == PathError::none); // U+2010
        CHECK(parse_path("<x\xe2\x81\xa5y@mx.example>", PathKind::forward).error == PathError::none); // U+2065
        CHECK(parse_path("<x\xd8\x9by@mx.example>", PathKind::forward).error == PathError::none);     // U+061B
    }

    TEST_CASE("the canonical local part: unquoted, ASCII lower case; the stored mailbox")
    {
        CHECK(canonical_local_part("Alice") == "alice");
        CHECK(canonical_local_part("ALICE") == "alice");
        CHECK(canonical_local_part("\"alice\"") == "alice");
        CHECK(canonical_local_part("\"Al\\ice\"") == "alice");
        CHECK(canonical_local_part("\"a\\\"b\"") == "a\"b");
        CHECK(canonical_local_part("\"John Smith\"") == "john smith");
        CHECK(canonical_local_part("J\xc3\x96RG") == "j\xc3\x96rg"); // only ASCII is folded
        CHECK(canonical_local_part("PostMaster") == "postmaster");
        for (std::string_view s : {"alice", "john smith", "a\"b", "-rf", "*"}) {
            CHECK(canonical_local_part(s) == s);
        }
        CHECK(canonical_mailbox("Alice", "MX.Example") == "alice@mx.example");
        CHECK(canonical_mailbox("\"alice\"", "mx.example") == "alice@mx.example");
        CHECK(canonical_mailbox("\"A.B\"", "mx.example") == "a.b@mx.example");
        CHECK(canonical_mailbox("\"John Smith\"", "mx.example") == "\"john smith\"@mx.example");
        CHECK(canonical_mailbox("\"a\\\"B\"", "mx.example") == "\"a\\\"b\"@mx.example");
        CHECK(canonical_mailbox("\"a..b\"", "mx.example") == "\"a..b\"@mx.example");
        CHECK(canonical_mailbox("\"\"", "mx.example") == "\"\"@mx.example");
        CHECK(canonical_mailbox("Postmaster", "") == "postmaster");
        // What canonical_mailbox makes parses back to the same canonical form.
        for (std::string_view l : {"\"John Smith\"", "\"a\\\"B\"", "\"a..b\"", "Alice", "\"x@y\""}) {
            INFO(l);
            std::string m = canonical_mailbox(l, "mx.example");
            PathParse p = parse_path("<" + m + ">", PathKind::forward);
            REQUIRE(p.error == PathError::none);
            CHECK(p.path.mailbox == m);
            CHECK(canonical_mailbox(p.path.local, p.path.domain) == m);
        }
    }

    TEST_CASE("routing characters in a local part, quoted or not, and their compatibility forms")
    {
        for (std::string_view l : {"victim%evil.example", "evil.example!victim", "\"victim@evil.example\"",
                                   "\"victim\\@evil.example\"", "\"a%b\"", "victim\xef\xbc\xa0" "evil.example",
                                   "v\xef\xb9\xab" "e", "v\xef\xbc\x85" "e", "v\xef\xb9\xaa" "e", "e\xef\xbc\x81" "v",
                                   "e\xef\xb9\x97" "v", "e\xef\xb8\x95" "v", "e\xe2\x80\xbc" "v", "e\xe2\x81\x88" "v",
                                   "e\xe2\x81\x89" "v"}) {
            INFO(l);
            CHECK(has_routing_character(l));
        }
        for (std::string_view l : {"alice", "\"john smith\"", "a+tag", "j\xc3\xb6rg", "x\xef\xbc\xa1", "-rf", "*"}) {
            INFO(l);
            CHECK_FALSE(has_routing_character(l));
        }
    }
}
