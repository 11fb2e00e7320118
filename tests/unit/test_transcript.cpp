// Tests of the in-process transcript runner (transcript.hpp) and of the
// shared feed driver (feed.hpp): the runner must fail on a divergence.
#include "feed.hpp"
#include "session_fixture.hpp"
#include "testutil.hpp"
#include "transcript.hpp"

#include <doctest/doctest.h>

#include <fstream>
#include <sstream>

using namespace smtpspool;
using namespace testutil;

namespace {

std::string file(const std::string& path)
{
    std::ifstream in(path, std::ios::binary);
    std::ostringstream s;
    s << in.rdbuf();
    return s.str();
}

// tests/sessions/basic-delivery.txt with `from` replaced by `to` (once).
Transcript mutated(const std::string& from, const std::string& to)
{
    std::string text = file("../sessions/basic-delivery.txt");
    std::size_t at = text.find(from);
    REQUIRE(at != std::string::npos);
    text.replace(at, from.size(), to);
    return parse_transcript_text(text, "basic-delivery.txt", "../sessions");
}

} // namespace

TEST_SUITE("transcript")
{
    TEST_CASE("the unchanged transcript passes in both modes")
    {
        Transcript t = parse_transcript("../sessions/basic-delivery.txt");
        CHECK_FALSE(in_process_skip(t));
        for (const char* mode : {"local", "network"}) {
            TranscriptRun r = run_in_process(t, mode);
            CHECK_MESSAGE(!r.error, r.error.value_or(""));
            CHECK(r.replies.rfind("220 mx.test ESMTP", 0) == 0);
        }
    }

    TEST_CASE("a mutated expectation fails, naming its line")
    {
        TranscriptRun r = run_in_process(mutated("<- 250 2.1.5", "<- 251 2.1.5"), "local");
        REQUIRE(r.error);
        CHECK(r.error->find("basic-delivery.txt:17: expected '251 2.1.5', got '250 2.1.5") == 0);
    }

    TEST_CASE("a mutated regex, spool check or envelope value fails")
    {
        CHECK(run_in_process(mutated("[0-9]{8}T", "[0-9]{9}T"), "local").error);
        CHECK(run_in_process(mutated("= spool-count 1", "= spool-count 2"), "local").error);
        CHECK(run_in_process(mutated("/mail_from \"alice", "/mail_from \"alicia"), "local").error);
        CHECK(run_in_process(mutated("/smtputf8 false", "/smtputf8 true"), "local").error);
        CHECK(run_in_process(mutated("\\r\\nHi Bob.", "\\r\\nHi Rob."), "local").error);
        CHECK(run_in_process(mutated("= contains 0 \\tfor", "= lacks 0 \\tfor"), "local").error);
        CHECK(run_in_process(mutated("= envelope 0 /body", "= absent 0 /body"), "local").error);
    }

    TEST_CASE("a reply nobody expected fails, and so does one that never came")
    {
        TranscriptRun extra = run_in_process(mutated("<- 221 2.0.0 mx.test closing connection\n", ""), "local");
        REQUIRE(extra.error);
        CHECK(extra.error->find("unexpected further replies") == 0);
        TranscriptRun missing = run_in_process(mutated("<- 221", "<- 221\n<- 250"), "local");
        REQUIRE(missing.error);
        CHECK(missing.error->find("but the replies ended") != std::string::npos);
    }

    TEST_CASE("options reach the session as on the command line")
    {
        Transcript t = parse_transcript_text("! option --max-recipients=1\n-> HELO c\n-> MAIL FROM:<a@b>\n"
                                             "-> RCPT TO:<u@mx.test>\n-> RCPT TO:<v@mx.test>\n-> QUIT\n"
                                             "<- 220\n<- 250\n<- 250\n<- 250\n<- 452\n<- 221\n",
                                             "inline", ".");
        TranscriptRun r = run_in_process(t, "network");
        CHECK_MESSAGE(!r.error, r.error.value_or(""));
        t.options.clear(); // without the limit the second recipient is taken
        CHECK(run_in_process(t, "network").error);
        t.options = {"--no-such-option"};
        TranscriptRun bad = run_in_process(t, "network");
        REQUIRE(bad.error);
        CHECK(bad.error->find("the options do not parse") == 0);
    }

    TEST_CASE("the operators: *> repeats with {n}, <= counts, ~> unescapes")
    {
        Transcript t = parse_transcript_text("*> 3 RCPT TO:<u{n}@x>\\r\\n\n<= 2 250\n~> a\\x00\\tb\\\\\n<* 250\n",
                                             "ops", ".");
        CHECK(t.input == std::string("RCPT TO:<u0@x>\r\nRCPT TO:<u1@x>\r\nRCPT TO:<u2@x>\r\na\0\tb\\", 53));
        REQUIRE(t.expect.size() == 3);
        CHECK(t.expect[0].op == "<-");
        CHECK(t.expect[1].arg == "250");
        CHECK(t.expect[1].where == "ops:2");
        CHECK(t.expect[2].op == "<*");
        CHECK_THROWS_AS(parse_transcript_text("<> what\n", "bad", "."), TranscriptError);
        CHECK_THROWS_AS(parse_transcript_text("! colour blue\n", "bad", "."), TranscriptError);
    }

    TEST_CASE("unescape follows Python's unicode_escape")
    {
        CHECK(unescape("a\\r\\n") == "a\r\n");
        CHECK(unescape("\\x41\\101\\q") == "AA\\q");
        CHECK(unescape("\\u00e9") == "\xe9");
        CHECK_THROWS_AS(unescape("\\u20ac"), TranscriptError);
        CHECK_THROWS_AS(unescape("\\x4"), TranscriptError);
    }

    TEST_CASE("what only the binary has is skipped, with the reason")
    {
        Transcript t;
        CHECK_FALSE(in_process_skip(t));
        t.hold = 2;
        CHECK(in_process_skip(t) == "holds the input open for the transport's timers");
        t.hold = 0;
        t.options = {"--proxy-protocol=yes"};
        CHECK(in_process_skip(t));
        t.options = {"--tls-cert=x"};
        CHECK(in_process_skip(t) == "TLS needs the transport");
        t.options = {"--max-recipients=3"};
        CHECK_FALSE(in_process_skip(t));
    }
}

TEST_SUITE("feed")
{
    TEST_CASE("feed_until_consumed goes on past the end of each message's data")
    {
        SessionFixture f(test_config(true));
        Session& s = f.session;
        MemorySpool& spool = f.spool;
        std::string one = "MAIL FROM:<a@b.test>\r\nRCPT TO:<u@mx.test>\r\nDATA\r\nx\r\n.\r\n";
        std::string input = "EHLO c\r\n" + one + one + "QUIT\r\n";
        int outputs = 0;
        Fed fed = feed_until_consumed(s, input, [&](const Output& o, std::string_view in) {
            ++outputs;
            CHECK(o.consumed <= in.size());
        });
        CHECK(fed.feeds == 3); // stops after each message's data
        CHECK(outputs == 3);
        CHECK(fed.close);
        CHECK_FALSE(fed.stalled);
        CHECK(fed.consumed == input.size());
        CHECK(spool.messages.size() == 2);
        CHECK(fed.wire.find("221 2.0.0 mx.test closing") != std::string::npos);
    }
}
