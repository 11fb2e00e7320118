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

    TEST_CASE("each entry is expanded once: a file of diamonds costs its targets, not its paths")
    {
        // Ten levels of five entries, each listing all five of the next
        // level: 5^9 paths from l0x0 to the last level, 5 addresses at the end.
        std::string text;
        for (int level = 0; level < 10; ++level) {
            for (int j = 0; j < 5; ++j) {
                text += "l" + std::to_string(level) + "x" + std::to_string(j) + ":";
                for (int k = 0; k < 5; ++k) {
                    text += level < 9 ? " l" + std::to_string(level + 1) + "x" + std::to_string(k) + ","
                                      : " end" + std::to_string(k) + "@store.test,";
                }
                text += "\n";
            }
        }
        auto diamond = parsed<Aliases>(text);
        std::size_t steps = 0;
        auto r = diamond.expand("l0x0@example.com", local, 100, {}, limits::k_max_alias_steps, &steps);
        REQUIRE(std::holds_alternative<std::vector<std::string>>(r));
        CHECK(std::get<std::vector<std::string>>(r) ==
              std::vector<std::string>{"end0@store.test", "end1@store.test", "end2@store.test", "end3@store.test",
                                       "end4@store.test"});
        // The recipient, then the five targets of each of the 46 entries
        // expanded (l0x0 and the 45 of levels 1 to 9).
        CHECK(steps == 1 + 46 * 5);
        // The bound on the steps refuses what it does not cover.
        r = diamond.expand("l0x0@example.com", local, 100, {}, 100, &steps);
        REQUIRE(std::holds_alternative<Aliases::Refused>(r));
        CHECK(std::get<Aliases::Refused>(r).why == "alias expansion takes more than 100 steps");
        CHECK(steps == 101);
    }

    TEST_CASE("an expansion past limits::k_max_alias_steps is refused, whatever its number of addresses")
    {
        // 300 lists of the same 400 members: 400 addresses, 120,301 steps.
        std::string members;
        for (int m = 0; m < 400; ++m) {
            members += " m" + std::to_string(m) + "@store.test,";
        }
        std::string text = "all:";
        for (int g = 0; g < 300; ++g) {
            text += " g" + std::to_string(g) + ",";
        }
        text += "\n";
        for (int g = 0; g < 300; ++g) {
            text += "g" + std::to_string(g) + ":" + members + "\n";
        }
        auto lists = parsed<Aliases>(text);
        std::size_t steps = 0;
        auto r = lists.expand("all@example.com", local, 10000, {}, limits::k_max_alias_steps, &steps);
        REQUIRE(std::holds_alternative<Aliases::Refused>(r));
        CHECK(std::get<Aliases::Refused>(r).why.find("more than 100000 steps") != std::string::npos);
        CHECK(steps == limits::k_max_alias_steps + 1);
        // One list alone is well inside.
        CHECK(expand(lists, "g7@example.com", 10000).size() == 400);
    }

    TEST_CASE("an entry expanded before is still refused when reached too deep")
    {
        // b (two levels: b, d) is expanded first at depth 1, then reached
        // again through the c chain: at depth 8 it fits (8 + 2 levels), at
        // depth 9 it does not, as when it is expanded anew.
        std::string fits = "root: b, c1\nb: d\nd: z@store.test\n";
        std::string deeper = fits;
        for (int i = 1; i < 7; ++i) {
            fits += "c" + std::to_string(i) + ": c" + std::to_string(i + 1) + "\n";
        }
        for (int i = 1; i < 8; ++i) {
            deeper += "c" + std::to_string(i) + ": c" + std::to_string(i + 1) + "\n";
        }
        fits += "c7: b\n";
        deeper += "c8: b\n";
        CHECK(expand(parsed<Aliases>(fits), "root@example.com") == std::vector<std::string>{"z@store.test"});
        CHECK(expand(parsed<Aliases>(deeper), "root@example.com") ==
              std::vector<std::string>{"refused: alias expansion deeper than 10 levels"});
        // From c1, one level less deep, b fits again.
        CHECK(expand(parsed<Aliases>(deeper), "c1@example.com") == std::vector<std::string>{"z@store.test"});
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
