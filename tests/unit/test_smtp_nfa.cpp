// Tests of the NFA table: the golden matrix through the dispatcher, each
// refusal the table gives as the session sends it, and the man page's copy of
// the table. NFA_REGENERATE=1 writes the matrix and the man page block instead
// of comparing them (then review the diff).
#include "nfa_doc.hpp"
#include "session_fixture.hpp"
#include "smtp/smtp_nfa.hpp"

#include <doctest/doctest.h>

#include <cstdlib>
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

const TlsInfo k_tls{"TLSv1.3", "TLS_AES_128_GCM_SHA256"};

// A session brought into one of the matrix's setups.
struct Setup {
    explicit Setup(const std::string& name)
        : f([&] {
              SessionConfig c = test_config();
              c.tls_offered = true; // STARTTLS as a server with a certificate has it
              c.client_denied = name == "denied";
              return c;
          }())
    {
        const std::string ehlo = "EHLO client.test\r\n";
        const std::string mail = "MAIL FROM:<a@b.test>\r\n";
        const std::string rcpt = "RCPT TO:<u@mx.test>\r\n";
        if (name == "greeted") {
            f.send(ehlo);
        } else if (name == "greeted/helo") {
            f.send("HELO client.test\r\n");
        } else if (name == "greeted/tls") {
            f.send(ehlo + "STARTTLS\r\n");
            REQUIRE(f.start_tls);
            f.session.tls_started(k_tls, 0);
            f.send(ehlo);
        } else if (name == "in_mail") {
            f.send(ehlo + mail);
        } else if (name == "in_rcpt") {
            f.send(ehlo + mail + rcpt);
        } else if (name == "in_bdat") {
            f.send(ehlo + mail + rcpt + "BDAT 1\r\nx");
        }
        std::string state = name.substr(0, name.find('/'));
        REQUIRE(state_name(f.session.state()) == state);
        guards_before = name;
    }
    SessionFixture f;
    std::string guards_before;
};

std::string observe(const std::string& verb, const std::string& setup)
{
    Setup s(setup);
    std::string out = s.f.send(k_commands.at(verb));
    auto codes = SessionFixture::codes(out);
    REQUIRE(codes.size() == 1);
    return std::to_string(codes[0]) + ":" + std::string(state_name(s.f.session.state()));
}

std::string read_file(const std::string& path)
{
    std::ifstream in(path);
    std::ostringstream s;
    s << in.rdbuf();
    return s.str();
}

bool regenerate()
{
    const char* v = std::getenv("NFA_REGENERATE");
    return v != nullptr && std::string_view(v) == "1";
}

const std::string k_man = "../../man/smtpspool.8";
const std::string k_begin = ".\\\" BEGIN NFA TABLE";
const std::string k_end = ".\\\" END NFA TABLE";

} // namespace

TEST_SUITE("smtp_nfa")
{
    TEST_CASE("every verb in every state matches the golden matrix")
    {
        const std::string golden = read_file("data/nfa-matrix.txt");
        const std::string actual = nfa_matrix_text(observe);
        if (regenerate()) {
            std::ofstream("data/nfa-matrix.txt") << actual;
            MESSAGE("wrote tests/unit/data/nfa-matrix.txt");
            return;
        }
        REQUIRE(golden.size() > 0);
        // Line by line, so that a difference names its verb.
        std::istringstream g(golden), a(actual);
        std::string gl, al;
        while (std::getline(g, gl) && std::getline(a, al)) {
            CHECK(al == gl);
        }
        CHECK(golden == actual);
        CHECK(nfa_matrix_verbs().size() == k_verb_count);
    }

    TEST_CASE("each refusal of the table is the session's reply, and changes nothing")
    {
        // Every (verb, setup) that the table refuses, with the guards the
        // setup has: the reply is exactly replies::refusal, the state stays.
        int refused = 0;
        for (const std::string& setup : nfa_matrix_setups()) {
            for (std::size_t v = 0; v < k_verb_count; ++v) {
                const Verb verb = static_cast<Verb>(v);
                const std::string label = nfa_matrix_verbs()[v];
                Setup s(setup);
                GuardSet g = bit(Guard::starttls_offered) | bit(Guard::cleartext);
                if (setup == "greeted/tls") {
                    g = bit(Guard::starttls_offered) | bit(Guard::tls_active) | bit(Guard::ehlo);
                } else if (setup != "greeted/helo" && setup != "connected" && setup != "denied") {
                    g |= bit(Guard::ehlo);
                }
                const State before = s.f.session.state();
                const Refusal why = refusal_for(verb, before, g);
                if (why == Refusal::none) {
                    continue;
                }
                ++refused;
                INFO("verb " << label << " in " << setup << ": " << refusal_name(why));
                std::string out = s.f.send(k_commands.at(label));
                CHECK(out == render(replies::refusal(why, verb_label(verb))));
                CHECK(s.f.session.state() == before);
            }
        }
        CHECK(refused > 40);
    }

    TEST_CASE("guards: HELO is not EHLO, TLS once, AUTH once and only where offered")
    {
        constexpr GuardSet ehlo = bit(Guard::ehlo);
        constexpr GuardSet tls = bit(Guard::starttls_offered) | ehlo;
        CHECK(refusal_for(Verb::starttls, State::greeted, tls) == Refusal::none);
        CHECK(refusal_for(Verb::starttls, State::greeted, bit(Guard::starttls_offered)) == Refusal::needs_ehlo);
        CHECK(refusal_for(Verb::starttls, State::greeted, tls | bit(Guard::tls_active)) == Refusal::tls_active);
        CHECK(refusal_for(Verb::starttls, State::greeted, ehlo) == Refusal::not_offered);
        // The state comes first: not offered, yet "send HELO or EHLO first".
        CHECK(refusal_for(Verb::starttls, State::connected, 0) == Refusal::greeting);
        constexpr GuardSet auth = bit(Guard::auth_configured) | ehlo;
        CHECK(refusal_for(Verb::auth, State::greeted, auth) == Refusal::none);
        CHECK(refusal_for(Verb::auth, State::greeted, auth | bit(Guard::cleartext)) == Refusal::needs_tls);
        CHECK(refusal_for(Verb::auth, State::greeted, auth | bit(Guard::authenticated)) == Refusal::authenticated);
        CHECK(refusal_for(Verb::auth, State::greeted, bit(Guard::auth_configured)) == Refusal::needs_ehlo);
        CHECK(refusal_for(Verb::auth, State::in_mail, auth) == Refusal::transaction);
        CHECK(refusal_for(Verb::mail, State::greeted, bit(Guard::tls_required)) == Refusal::tls_required);
        CHECK(refusal_for(Verb::mail, State::greeted, bit(Guard::tls_active)) == Refusal::none);
        // --rfc821 takes BDAT away in every state but denied.
        CHECK(refusal_for(Verb::bdat, State::connected, bit(Guard::rfc821)) == Refusal::not_offered);
        CHECK(refusal_for(Verb::bdat, State::in_rcpt, bit(Guard::rfc821)) == Refusal::not_offered);
        CHECK(refusal_for(Verb::bdat, State::denied, bit(Guard::rfc821)) == Refusal::denied);
        CHECK(refusal_for(Verb::bdat, State::in_rcpt, 0) == Refusal::needs_ehlo);
        CHECK(refusal_for(Verb::bdat, State::in_rcpt, ehlo) == Refusal::none);
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

    TEST_CASE("NOOP, RSET, HELP and QUIT are allowed before HELO; only QUIT after a 554 greeting")
    {
        for (Verb v : {Verb::noop, Verb::rset, Verb::help, Verb::quit, Verb::vrfy}) {
            CHECK(allowed(v, State::connected));
        }
        CHECK_FALSE(allowed(Verb::mail, State::connected));
        for (std::size_t v = 0; v < k_verb_count; ++v) {
            CHECK(allowed(static_cast<Verb>(v), State::denied) == (static_cast<Verb>(v) == Verb::quit));
        }
        CHECK(successor(Verb::rset, State::connected) == State::connected);
        CHECK(successor(Verb::rset, State::in_rcpt) == State::greeted);
        CHECK(successor(Verb::noop, State::in_mail) == State::in_mail);
        // DATA and BDAT move on when their octets are in, not at their reply.
        CHECK(successor(Verb::data, State::in_rcpt) == State::in_rcpt);
        CHECK(successor(Verb::bdat, State::in_rcpt) == State::in_rcpt);
        CHECK(after_chunk(false) == State::in_bdat);
        CHECK(after_chunk(true) == k_after_message);
    }

    TEST_CASE("the man page prints the table as the code has it")
    {
        std::string page = read_file(k_man);
        REQUIRE_MESSAGE(!page.empty(), "man/smtpspool.8 is missing");
        auto b = page.find(k_begin);
        auto e = page.find(k_end);
        REQUIRE(b != std::string::npos);
        REQUIRE(e != std::string::npos);
        b = page.find('\n', b) + 1;
        if (regenerate()) {
            std::ofstream(k_man) << page.substr(0, b) + nfa_table_roff() + page.substr(e);
            MESSAGE("wrote the NFA TABLE block of man/smtpspool.8");
            return;
        }
        CHECK(page.substr(b, e - b) == nfa_table_roff());
    }
}
