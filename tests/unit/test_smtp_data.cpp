// Tests of the DATA reader: a table of inputs, each fed whole, at every split
// point, and one octet at a time; the outcome must not depend on the chunking.
#include "smtp/smtp_data.hpp"

#include <doctest/doctest.h>

#include <string>
#include <vector>

using namespace smtpspool;

namespace {

struct Case {
    const char* name;
    std::string input;
    LineEnds mode;
    std::size_t max;
    std::string body;     // stored octets (when not refused)
    std::size_t consumed; // octets up to and including the end mark
    bool done;
    bool bare;
    bool too_big;
};

using namespace std::string_literals;
const std::string k_rest = "QUIT\r\n"; // pipelined after the data; must not be consumed

std::vector<Case> cases()
{
    auto crlf = LineEnds::crlf_only;
    auto lf = LineEnds::lf_accepted;
    return {
        {"empty message", ".\r\n" + k_rest, crlf, 100, "", 3, true, false, false},
        {"one line", "hello\r\n.\r\n" + k_rest, crlf, 100, "hello\r\n", 10, true, false, false},
        {"dot-stuffed lines are unstuffed", "..x\r\n..\r\n.\r\n", crlf, 100, ".x\r\n.\r\n", 12, true, false, false},
        {"a dot inside a line stays", "a.b\r\n.\r\n", crlf, 100, "a.b\r\n", 8, true, false, false},
        {"no end mark yet", "abc\r\n", crlf, 100, "abc\r\n", 5, false, false, false},
        {"last line without CRLF before the mark is joined", "abc\r\n.\r\n", crlf, 100, "abc\r\n", 8, true, false,
         false},
        {"bare LF refused from the network", "a\nb\r\n.\r\n", crlf, 100, "", 8, true, true, false},
        {"bare CR refused from the network", "a\rb\r\n.\r\n", crlf, 100, "", 8, true, true, false},
        {"LF.LF is not the end from the network", "a\r\n.\n.\r\n.\r\n", crlf, 100, "", 11, true, true, false},
        {"smuggling: LF.CRLF does not end the data", "a\n.\r\nMAIL FROM:<x@y>\r\n.\r\n", crlf, 100, "", 25, true, true,
         false},
        {"smuggling: CR.CR", "a\r.\rb\r\n.\r\n", crlf, 100, "", 10, true, true, false},
        {"smuggling: CRLF.CR CRLF", "a\r\n.\r\r\n.\r\n", crlf, 100, "", 10, true, true, false},
        {"local LF lines are stored as CRLF", "a\nb\n.\n" + k_rest, lf, 100, "a\r\nb\r\n", 6, true, false, false},
        {"local CRLF lines too", "a\r\nb\r\n.\r\n", lf, 100, "a\r\nb\r\n", 9, true, false, false},
        {"local dot-stuffing with LF", "..a\n.\n", lf, 100, ".a\r\n", 6, true, false, false},
        {"local bare CR still refused", "a\rb\n.\n", lf, 100, "", 6, true, true, false},
        {"size limit: read to the end, then refuse", "0123456789\r\n.\r\n" + k_rest, crlf, 5, "", 15, true, false,
         true},
        {"size limit exactly met", "abc\r\n.\r\n", crlf, 5, "abc\r\n", 8, true, false, false},
    };
}

struct Outcome {
    std::string body;
    std::size_t consumed = 0;
    bool done = false, bare = false, too_big = false;
};

Outcome run(const Case& c, const std::vector<std::size_t>& cuts)
{
    DataReader r(c.mode, c.max);
    Outcome o;
    std::size_t start = 0;
    std::vector<std::size_t> bounds = cuts;
    bounds.push_back(c.input.size());
    for (std::size_t b : bounds) {
        if (r.done() || b < start) {
            break;
        }
        std::string_view chunk(c.input.data() + start, b - start);
        std::size_t used = r.feed(chunk, o.body);
        o.consumed += used;
        if (used < chunk.size()) {
            CHECK(r.done());
            break;
        }
        start = b;
    }
    o.done = r.done();
    o.bare = r.bare_line_end();
    o.too_big = r.too_big();
    if (r.refused()) {
        o.body.clear();
    }
    return o;
}

} // namespace

using namespace std::string_literals;

TEST_SUITE("smtp_data")
{
    TEST_CASE("each input gives the same outcome at every chunk split")
    {
        for (const Case& c : cases()) {
            INFO("case: " << c.name);
            std::vector<std::vector<std::size_t>> splits{{}};
            for (std::size_t i = 1; i < c.input.size(); ++i) {
                splits.push_back({i});
            }
            std::vector<std::size_t> every;
            for (std::size_t i = 1; i < c.input.size(); ++i) {
                every.push_back(i);
            }
            splits.push_back(every);
            for (const auto& cut : splits) {
                Outcome o = run(c, cut);
                INFO("split at " << (cut.empty() ? 0 : cut.front()) << " of " << cut.size() << " cuts");
                CHECK(o.done == c.done);
                CHECK(o.bare == c.bare);
                CHECK(o.too_big == c.too_big);
                CHECK(o.consumed == c.consumed);
                if (!c.bare && !c.too_big) {
                    CHECK(o.body == c.body);
                }
            }
        }
    }

    TEST_CASE("a NUL before a dot is no end mark, and it refuses the message from any client")
    {
        const std::string in = "a\r\n\0.\r\n.\r\nQUIT\r\n"s;
        for (LineEnds mode : {LineEnds::crlf_only, LineEnds::lf_accepted}) {
            for (std::size_t split = 0; split <= in.size(); ++split) {
                INFO("split at " << split);
                DataReader r(mode, 100);
                std::string out;
                std::size_t used = r.feed(std::string_view(in).substr(0, split), out);
                if (!r.done()) {
                    used += r.feed(std::string_view(in).substr(split), out);
                }
                CHECK(used == in.size() - 6); // up to the real end; QUIT is a command
                CHECK(r.done());
                CHECK(r.nul());
                CHECK(r.refused());
                CHECK_FALSE(r.bare_line_end());
                CHECK(out.find('\0') == std::string::npos); // nothing from the NUL on is stored
                CHECK(std::string_view("a\r\n").substr(0, out.size()) == out);
                CHECK(r.size() == 7);
            }
        }
        DataReader clean(LineEnds::crlf_only, 100);
        std::string out;
        clean.feed("a\r\n.\r\n", out);
        CHECK_FALSE(clean.nul());
    }

    TEST_CASE("line length: more than max octets before CRLF refuses, at every split, after unstuffing")
    {
        struct LineCase {
            std::string input;
            LineEnds mode;
            bool too_long;
        };
        const std::string ten(10, 'x');
        const std::vector<LineCase> line_cases{
            {ten + "\r\n.\r\n", LineEnds::crlf_only, false},                    // exactly max
            {ten + "y\r\n.\r\n", LineEnds::crlf_only, true},                    // max + 1
            {"a\r\n" + ten + "y\r\nb\r\n.\r\n", LineEnds::crlf_only, true}, // not the first line
            {"." + ten + "\r\n.\r\n", LineEnds::crlf_only, false},              // the stuffed dot is not counted
            {".." + ten + "\r\n.\r\n", LineEnds::crlf_only, true},
            {ten + "\n.\n", LineEnds::lf_accepted, false}, // stored as CRLF
            {ten + "y\n.\n", LineEnds::lf_accepted, true},
            {"\r\n\r\n" + ten + "\r\n.\r\n", LineEnds::crlf_only, false},
        };
        for (const LineCase& c : line_cases) {
            for (std::size_t split = 0; split <= c.input.size(); ++split) {
                INFO(c.input << " split at " << split);
                DataReader r(c.mode, 1000, 10);
                std::string out;
                std::size_t used = r.feed(std::string_view(c.input).substr(0, split), out);
                if (!r.done()) {
                    used += r.feed(std::string_view(c.input).substr(split), out);
                }
                CHECK(r.done());
                CHECK(used == c.input.size());
                CHECK(r.long_line() == c.too_long);
                CHECK(r.refused() == c.too_long);
            }
        }
        DataReader any(LineEnds::crlf_only, 1000000, 0);
        std::string out;
        any.feed(std::string(100000, 'x') + "\r\n.\r\n", out);
        CHECK(any.done());
        CHECK_FALSE(any.long_line());
        // BDAT: a line over chunks counts whole; BINARYMIME is not measured.
        for (std::size_t split = 0; split <= 13; ++split) {
            const std::string in = "a\r\n" + ten + "y\r\n";
            ChunkReader b(false, 1000, 10);
            std::string sink;
            b.feed(std::string_view(in).substr(0, split), sink);
            b.feed(std::string_view(in).substr(split), sink);
            CHECK(b.long_line());
            const std::string fits = "a\r\n" + ten + "\r\n";
            ChunkReader ok(false, 1000, 10);
            ok.feed(std::string_view(fits).substr(0, split), sink);
            ok.feed(std::string_view(fits).substr(split), sink);
            CHECK_FALSE(ok.long_line());
        }
        ChunkReader binary(true, 1000, 10);
        std::string sink;
        binary.feed(ten + ten + "\r\n", sink);
        CHECK_FALSE(binary.long_line());
        CHECK_FALSE(binary.refused());
    }

    TEST_CASE("memory stays bounded: nothing is stored after the size limit")
    {
        DataReader r(LineEnds::crlf_only, 10);
        std::string out;
        std::string line(1000, 'x');
        for (int i = 0; i < 100; ++i) {
            out.clear();
            r.feed(line, out);
            CHECK(out.size() <= 1000);
        }
        CHECK(r.too_big());
        out.clear();
        r.feed("\r\n.\r\n", out);
        CHECK(out.empty());
        CHECK(r.done());
        CHECK(r.size() == 100002);
    }

    TEST_CASE("BDAT chunks: CRLF only unless BINARYMIME, at any split, the size cap over all chunks")
    {
        struct ChunkCase {
            const char* name;
            std::string input;
            bool binary;
            bool bare; // refused for a bare line end
            bool nul = false; // refused for a NUL octet
        };
        const std::vector<ChunkCase> cases{
            {"CRLF lines", "a\r\nb\r\n", false, false},
            {"no line end at all", "abc", false, false},
            {"bare LF", "a\nb\r\n", false, true},
            {"bare CR", "a\rb\r\n", false, true},
            {"CR at the very end", "a\r\nb\r", false, true},
            {"CR CR LF", "a\r\r\n", false, true},
            {"dots are content", ".\r\n..\r\n", false, false},
            {"a NUL refuses", std::string(".\r\n\0.\r\n", 7), false, false, true},
            {"binary: anything", std::string("\r\n\n\r\0\xff\r", 7), true, false},
        };
        for (const ChunkCase& c : cases) {
            for (std::size_t split = 0; split <= c.input.size(); ++split) {
                ChunkReader r(c.binary, 100);
                std::string out;
                r.feed(std::string_view(c.input).substr(0, split), out);
                r.feed(std::string_view(c.input).substr(split), out);
                r.finish();
                INFO(c.name << " split at " << split);
                CHECK(r.bare_line_end() == c.bare);
                CHECK(r.nul() == c.nul);
                CHECK(r.size() == c.input.size());
                if (c.bare || c.nul) {
                    CHECK(c.input.compare(0, out.size(), out) == 0); // what came before the refusal
                } else {
                    CHECK(out == c.input);
                }
                CHECK_FALSE(r.too_big());
            }
        }
        // A CR at the end of one chunk and LF at the start of the next are CRLF.
        ChunkReader across(false, 100);
        std::string out;
        across.feed("a\r", out);
        CHECK_FALSE(across.bare_line_end());
        across.feed("\nb", out);
        across.finish();
        CHECK_FALSE(across.bare_line_end());
        CHECK(out == "a\r\nb");
        // Over the limit: refused, nothing more stored, still counted.
        ChunkReader big(true, 5);
        std::string kept;
        big.feed("12345", kept);
        CHECK_FALSE(big.too_big());
        big.feed("6", kept);
        big.feed("789", kept);
        CHECK(big.too_big());
        CHECK(big.refused());
        CHECK(kept == "12345");
        CHECK(big.size() == 9);
    }
}
