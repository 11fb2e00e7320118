// Tests of the sender deny list, the local users list and the aliases file.
#include "policy/aliases.hpp"

#include <doctest/doctest.h>

using namespace smtpspool;

namespace {

template <typename T>
T parsed(std::string_view text)
{
    auto r = T::parse(text);
    if (auto* e = std::get_if<ListError>(&r)) {
        FAIL("line " << e->line << ": " << e->message);
    }
    return std::get<T>(r);
}

template <typename T>
ListError error_of(std::string_view text)
{
    auto r = T::parse(text);
    REQUIRE(std::holds_alternative<ListError>(r));
    return std::get<ListError>(r);
}

bool local(std::string_view d) { return d == "example.com" || d == "mx.test"; }

std::vector<std::string> expand(const Aliases& a, std::string_view rcpt, std::size_t max = 100)
{
    auto r = a.expand(rcpt, local, max);
    if (auto* refused = std::get_if<Aliases::Refused>(&r)) {
        return {"refused: " + refused->why};
    }
    return std::get<std::vector<std::string>>(r);
}

} // namespace

TEST_SUITE("address_list")
{
    TEST_CASE("sender deny list: addresses, domains, subdomains, comments, case")
    {
        auto list = parsed<SenderList>("# spammers\n"
                                       "spam@Example.ORG\n"
                                       "  @bad.test   # the whole domain\n"
                                       "@.evil.test\n"
                                       "\n");
        CHECK(list.size() == 3);
        CHECK(list.matches("spam@example.org"));
        CHECK(list.matches("SPAM@EXAMPLE.org"));
        CHECK_FALSE(list.matches("ham@example.org"));
        CHECK(list.matches("anyone@bad.test"));
        CHECK(list.matches("x@BAD.TEST"));
        CHECK_FALSE(list.matches("x@sub.bad.test")); // @domain is that domain only
        CHECK(list.matches("x@a.evil.test"));
        CHECK(list.matches("x@a.b.evil.test"));
        CHECK_FALSE(list.matches("x@evil.test")); // @.domain is its subdomains only
        CHECK_FALSE(list.matches("x@notevil.test"));
        CHECK_FALSE(list.matches(""));           // the null sender, never
        CHECK_FALSE(list.matches("postmaster")); // no domain
    }

    TEST_CASE("sender deny list: bad lines are reported with their number")
    {
        CHECK(error_of<SenderList>("ok@example.com\nno-at-sign\n").line == 2);
        CHECK(error_of<SenderList>("@-bad-.test\n").message.find("not a domain") != std::string::npos);
        CHECK(error_of<SenderList>("user@.sub.test\n").line == 1);
        CHECK(error_of<SenderList>("\n\nx y@example.com\n").line == 3);
        auto empty = parsed<SenderList>("# nothing\n\n");
        CHECK(empty.size() == 0);
        CHECK_FALSE(empty.matches("a@b.test"));
    }

    TEST_CASE("local users: one local part per line, any case")
    {
        auto users = parsed<LocalUsers>("alice\nBob # comment\n");
        CHECK(users.contains("alice"));
        CHECK(users.contains("ALICE"));
        CHECK(users.contains("bob"));
        CHECK_FALSE(users.contains("carol"));
        CHECK(error_of<LocalUsers>("alice\nbob@example.com\n").line == 2);
    }
}

TEST_SUITE("aliases")
{
    TEST_CASE("local parts apply in every local domain, addresses only to themselves")
    {
        auto a = parsed<Aliases>("# aliases\n"
                                 "postmaster: root\n"
                                 "root: alice@example.com, bob@elsewhere.test\n"
                                 "sales@example.com: carol,\n"
                                 "    dave@example.com,\n"
                                 "\tErin@Example.COM\n");
        CHECK(a.size() == 3);
        CHECK(expand(a, "postmaster@example.com") ==
              std::vector<std::string>{"alice@example.com", "bob@elsewhere.test"});
        CHECK(expand(a, "ROOT@mx.test") == std::vector<std::string>{"alice@example.com", "bob@elsewhere.test"});
        CHECK(expand(a, "root@elsewhere.test") == std::vector<std::string>{"root@elsewhere.test"});
        CHECK(expand(a, "sales@example.com") ==
              std::vector<std::string>{"carol@example.com", "dave@example.com", "Erin@example.com"});
        CHECK(expand(a, "sales@mx.test") == std::vector<std::string>{"sales@mx.test"});
        CHECK(expand(a, "nobody@example.com") == std::vector<std::string>{"nobody@example.com"});
        CHECK(a.has("Sales@Example.com", local));
        CHECK_FALSE(a.has("nobody@example.com", local));
        // <postmaster> with no domain (RFC 5321 §4.5.1).
        CHECK(expand(a, "postmaster") == std::vector<std::string>{"alice@example.com", "bob@elsewhere.test"});
        auto bare = parsed<Aliases>("postmaster: root\nroot: alice\n");
        CHECK(std::get<std::vector<std::string>>(bare.expand("postmaster", local, 10, "mx.test")) ==
              std::vector<std::string>{"alice@mx.test"});
        CHECK(error_of<Aliases>("a: b,\n c\n d\n").message.find("not an address") != std::string::npos);
    }

    TEST_CASE("comments as in the other lists: '#' at the start of a line or after white space")
    {
        // The same text is one entry with a comment in every policy file.
        CHECK(parsed<SenderList>("@spam.example # comment\n").matches("x@spam.example"));
        auto a = parsed<Aliases>("# the admins\n"
                                 "root: alice # the admin\n"
                                 "staff: bob,\t# first\n"
                                 "  # a comment between continuation lines\n"
                                 "    carol # second\n"
                                 "hash: d#e\r\n");
        CHECK(a.size() == 3);
        CHECK(expand(a, "root@example.com") == std::vector<std::string>{"alice@example.com"});
        CHECK(expand(a, "staff@example.com") == std::vector<std::string>{"bob@example.com", "carol@example.com"});
        // Not after white space: part of the word, in both parsers.
        CHECK(expand(a, "hash@example.com") == std::vector<std::string>{"d#e@example.com"});
        CHECK(parsed<LocalUsers>("d#e\n").contains("d#e"));
        CHECK(error_of<Aliases>("# only a comment\n  indented: x\n").line == 2);
        CHECK(error_of<Aliases>("root: # nobody\n").message == "no targets for 'root'");
        // A CR inside a line is not white space (the CR of a CRLF end is).
        CHECK(error_of<Aliases>("root: alice\r, bob\n").message.find("not an address") != std::string::npos);
    }

    TEST_CASE("an entry naming itself delivers there too; other cycles are loops")
    {
        auto a = parsed<Aliases>("bob: bob, archive\n"
                                 "archive: backup@store.test\n"
                                 "ping: pong\n"
                                 "pong: ping\n"
                                 "a: b\nb: c\nc: a, x@y.test\n");
        CHECK(expand(a, "bob@example.com") == std::vector<std::string>{"bob@example.com", "backup@store.test"});
        CHECK(expand(a, "ping@example.com") ==
              std::vector<std::string>{"refused: alias loop through ping@example.com"});
        CHECK(expand(a, "a@mx.test").front().rfind("refused: alias loop", 0) == 0);
    }

    TEST_CASE("depth and size limits")
    {
        std::string chain;
        for (int i = 0; i < 12; ++i) {
            chain += "l" + std::to_string(i) + ": l" + std::to_string(i + 1) + "\n";
        }
        auto deep = parsed<Aliases>(chain);
        CHECK(expand(deep, "l0@example.com").front().find("deeper than 10") != std::string::npos);
        CHECK(expand(deep, "l3@example.com") == std::vector<std::string>{"l12@example.com"});
        auto wide = parsed<Aliases>("all: a, b, c, d, e\n");
        CHECK(expand(wide, "all@example.com", 5).size() == 5);
        CHECK(expand(wide, "all@example.com", 4).front().find("more than 4") != std::string::npos);
        // Duplicates through two paths count once.
        auto dup = parsed<Aliases>("team: a, b\nb: a\n");
        CHECK(expand(dup, "team@example.com") == std::vector<std::string>{"a@example.com"});
    }

    TEST_CASE("bad aliases files are refused with the line number")
    {
        CHECK(error_of<Aliases>("root alice\n").line == 1);
        CHECK(error_of<Aliases>("  alice\n").message.find("continuation") != std::string::npos);
        CHECK(error_of<Aliases>("a: b\nprog: |/usr/bin/procmail\n").line == 2);
        CHECK(error_of<Aliases>("file: /var/mail/x\n").message.find("only addresses") != std::string::npos);
        CHECK(error_of<Aliases>("inc: :include:/etc/list\n").line == 1);
        CHECK(error_of<Aliases>("a: b\nA: c\n").message.find("second entry") != std::string::npos);
        CHECK(error_of<Aliases>("a:\n").message.find("no targets") != std::string::npos);
        CHECK(error_of<Aliases>("a: x@-bad-\n").message.find("not an address") != std::string::npos);
        CHECK(error_of<Aliases>("a@: b\n").line == 1);
    }

    TEST_CASE("local users and aliases compare local parts in canonical form")
    {
        auto users = parsed<LocalUsers>("Alice\n");
        for (std::string_view l : {"alice", "ALICE", "\"alice\"", "\"AL\\ice\""}) {
            INFO(l);
            CHECK(users.contains(l));
        }
        CHECK_FALSE(users.contains("\"alice \""));
        auto a = parsed<Aliases>("\"Root\": alice\nsales@Example.com: bob\n");
        for (std::string_view r : {"root@example.com", "ROOT@example.com", "\"root\"@example.com"}) {
            INFO(r);
            CHECK(expand(a, r) == std::vector<std::string>{"alice@example.com"});
        }
        CHECK(expand(a, "\"SALES\"@example.com") == std::vector<std::string>{"bob@example.com"});
    }
}
