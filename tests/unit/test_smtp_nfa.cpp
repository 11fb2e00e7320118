// Tests of the NFA table: the golden matrix through the dispatcher, and the
// man page's copy of the table.
#include "nfa_doc.hpp"
#include "session_fixture.hpp"
#include "smtp/smtp_nfa.hpp"

#include <doctest/doctest.h>

#include <fstream>
#include <map>
#include <sstream>

using namespace smtpspool;
using namespace testutil;

namespace {

const std::map<std::string, std::string> k_commands{
    {"HELO", "HELO client.test\r\n"},
    {"EHLO", "EHLO client.test\r\n"},
    {"MAIL", "MAIL FROM:<a@b.test>\r\n"},
    {"RCPT", "RCPT TO:<u@mx.test>\r\n"},
    {"DATA", "DATA\r\n"},
    {"BDAT", "BDAT 0\r\n"},
    {"RSET", "RSET\r\n"},
    {"NOOP", "NOOP\r\n"},
    {"QUIT", "QUIT\r\n"},
    {"HELP", "HELP\r\n"},
    {"VRFY", "VRFY u\r\n"},
    {"EXPN", "EXPN list\r\n"},
    {"STARTTLS", "STARTTLS\r\n"},
    {"AUTH", "AUTH PLAIN AGFsaWNlAHMzY3JldA==\r\n"},
    {"TURN", "TURN\r\n"},
    {"FOO", "FOO bar\r\n"},
};

const std::map<std::string, std::string> k_setup{
    {"connected", ""},
    {"greeted", "EHLO client.test\r\n"},
    {"in_mail", "EHLO client.test\r\nMAIL FROM:<a@b.test>\r\n"},
    {"in_rcpt", "EHLO client.test\r\nMAIL FROM:<a@b.test>\r\nRCPT TO:<u@mx.test>\r\n"},
    {"in_bdat", "EHLO client.test\r\nMAIL FROM:<a@b.test>\r\nRCPT TO:<u@mx.test>\r\nBDAT 1\r\nx"},
};

std::string read_file(const std::string& path)
{
    std::ifstream in(path);
    std::ostringstream s;
    s << in.rdbuf();
    return s.str();
}

} // namespace

TEST_SUITE("smtp_nfa")
{
    TEST_CASE("every verb in every state matches the golden matrix")
    {
        std::istringstream golden(read_file("data/nfa-matrix.txt"));
        REQUIRE(golden.str().size() > 0);
        std::string line;
        std::vector<std::string> states;
        int cells = 0;
        while (std::getline(golden, line)) {
            if (line.empty() || line[0] == '#') {
                continue;
            }
            std::istringstream row(line);
            std::string verb;
            row >> verb;
            if (verb == "verb") {
                std::string s;
                while (row >> s) {
                    states.push_back(s);
                }
                continue;
            }
            REQUIRE(k_commands.count(verb) == 1);
            for (const std::string& state : states) {
                std::string expected;
                row >> expected;
                SessionConfig config = test_config();
                config.tls_offered = true; // STARTTLS as a server with a certificate has it
                SessionFixture f(config);
                f.send(k_setup.at(state));
                REQUIRE(state_name(f.session.state()) == state);
                std::string out = f.send(k_commands.at(verb));
                auto codes = SessionFixture::codes(out);
                REQUIRE(codes.size() == 1);
                std::string actual = std::to_string(codes[0]) + ":" + std::string(state_name(f.session.state()));
                INFO("verb " << verb << " in state " << state);
                CHECK(actual == expected);
                ++cells;
            }
        }
        CHECK(cells == static_cast<int>(k_verb_count * k_state_count));
    }

    TEST_CASE("a refused command changes nothing")
    {
        SessionFixture f;
        f.send("EHLO c\r\nMAIL FROM:<a@b.test>\r\nRCPT TO:<u@mx.test>\r\n");
        CHECK(f.send("MAIL FROM:<other@b.test>\r\n").substr(0, 3) == "503");
        CHECK(f.session.state() == State::in_rcpt);
        CHECK(f.send("DATA\r\n").substr(0, 3) == "354");
        f.send("x\r\n.\r\n");
        REQUIRE(f.spool.messages.size() == 1);
        CHECK(f.spool.messages[0].envelope.mail_from == "a@b.test");
    }

    TEST_CASE("NOOP, RSET, HELP and QUIT are allowed before HELO")
    {
        for (Verb v : {Verb::noop, Verb::rset, Verb::help, Verb::quit, Verb::vrfy}) {
            CHECK(allowed(v, State::connected));
        }
        CHECK_FALSE(allowed(Verb::mail, State::connected));
        CHECK(successor(Verb::rset, State::connected) == State::connected);
        CHECK(successor(Verb::rset, State::in_rcpt) == State::greeted);
        CHECK(successor(Verb::noop, State::in_mail) == State::in_mail);
    }

    TEST_CASE("the man page prints the table as the code has it")
    {
        std::string page = read_file("../../man/smtpspool.8");
        REQUIRE_MESSAGE(!page.empty(), "man/smtpspool.8 is missing");
        const std::string begin = ".\\\" BEGIN NFA TABLE";
        const std::string end = ".\\\" END NFA TABLE";
        auto b = page.find(begin);
        auto e = page.find(end);
        REQUIRE(b != std::string::npos);
        REQUIRE(e != std::string::npos);
        b = page.find('\n', b) + 1;
        CHECK(page.substr(b, e - b) == nfa_table_roff());
    }
}
