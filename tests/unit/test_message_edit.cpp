// Tests of the message rewriter: content filters' header and body edits.
#include "smtp/message_edit.hpp"

#include "base/limits.hpp"

#include <doctest/doctest.h>

#include <string>

using namespace smtpspool;

namespace {

const std::string k_message = "Received: from a by mx.test; Sun, 6 Dec 2026 09:00:00 +0000\r\n"
                              "From: a@example.org\r\n"
                              "Subject: one\r\n"
                              "X-Tag: first\r\n"
                              "Received: from b\r\n"
                              "\tby a\r\n"
                              "x-tag: second\r\n"
                              "\r\n"
                              "Body line\r\n"
                              "\r\n"
                              "X-Tag: not a field\r\n";

HeaderEdit edit(HeaderEdit::Kind kind, std::string name, std::string value, std::uint32_t index = 0)
{
    return HeaderEdit{kind, std::move(name), std::move(value), index};
}

// The rewrite with the message fed in pieces of `step` octets (0: whole).
std::string rewrite(const MessageEdits& edits, std::string_view message = k_message, std::size_t step = 0,
                    std::size_t max = 0)
{
    std::string out;
    MessageRewriter rw(
        edits,
        [&out](std::string_view s) -> Result<void> {
            out.append(s);
            return {};
        },
        max);
    if (step == 0) {
        step = message.size() + 1;
    }
    for (std::size_t i = 0; i < message.size(); i += step) {
        auto r = rw.feed(message.substr(i, step));
        REQUIRE(r);
    }
    REQUIRE(rw.finish());
    return out;
}

// Every chunking gives the same result.
std::string rewrite_all_ways(const MessageEdits& edits, std::string_view message = k_message)
{
    std::string whole = rewrite(edits, message);
    for (std::size_t step : {1, 2, 3, 7, 64}) {
        CHECK(rewrite(edits, message, step) == whole);
    }
    return whole;
}

std::string header_of(const std::string& m) { return m.substr(0, m.find("\r\n\r\n") + 2); }
std::string body_of(const std::string& m) { return m.substr(m.find("\r\n\r\n") + 4); }

} // namespace

TEST_CASE("message edit: no header edit copies the message as it is")
{
    MessageEdits none;
    CHECK(rewrite_all_ways(none) == k_message);
    const std::string odd = "A: b\r\n\r\r\n \r\nC:\n\nbody\r";
    CHECK(rewrite_all_ways(none, odd) == odd);
}

TEST_CASE("message edit: add appends at the end of the header section, the body unchanged")
{
    MessageEdits e;
    e.headers.push_back(edit(HeaderEdit::Kind::add, "X-Spam-Score", "1.5"));
    e.headers.push_back(edit(HeaderEdit::Kind::add, "X-Empty", ""));
    e.headers.push_back(edit(HeaderEdit::Kind::add, "X-Folded", "a\n\tb\r\n c"));
    e.headers.push_back(edit(HeaderEdit::Kind::add, "X-Spaced", " leading"));
    std::string out = rewrite_all_ways(e);
    CHECK(header_of(out) == header_of(k_message) +
                                "X-Spam-Score: 1.5\r\nX-Empty:\r\nX-Folded: a\r\n\tb\r\n c\r\nX-Spaced: leading\r\n");
    CHECK(body_of(out) == body_of(k_message));
}

TEST_CASE("message edit: insert counts our Received: field as the first (index 0 goes before it)")
{
    MessageEdits e;
    e.headers.push_back(edit(HeaderEdit::Kind::insert, "X-Zero", "0", 0));
    e.headers.push_back(edit(HeaderEdit::Kind::insert, "X-Two", "2", 2)); // after X-Zero and Received:
    e.headers.push_back(edit(HeaderEdit::Kind::insert, "X-End", "e", 1000));
    std::string out = rewrite_all_ways(e);
    CHECK(out.rfind("X-Zero: 0\r\nReceived: from a by mx.test;", 0) == 0);
    CHECK(out.find("+0000\r\nX-Two: 2\r\nFrom: a@example.org\r\n") != std::string::npos);
    CHECK(out.find("x-tag: second\r\nX-End: e\r\n\r\nBody line") != std::string::npos);
}

TEST_CASE("message edit: change names the n-th field of that name, any case; empty deletes")
{
    MessageEdits e;
    e.headers.push_back(edit(HeaderEdit::Kind::change, "x-TAG", "new second", 2));
    e.headers.push_back(edit(HeaderEdit::Kind::change, "Subject", "two", 1));
    e.headers.push_back(edit(HeaderEdit::Kind::change, "received", "", 2)); // the client's, folded: both lines go
    std::string out = rewrite_all_ways(e);
    CHECK(header_of(out) == "Received: from a by mx.test; Sun, 6 Dec 2026 09:00:00 +0000\r\n"
                            "From: a@example.org\r\n"
                            "Subject: two\r\n"
                            "X-Tag: first\r\n"
                            "x-TAG: new second\r\n");
    // The body's "X-Tag:" line is not a field.
    CHECK(body_of(out) == body_of(k_message));
}

TEST_CASE("message edit: change of a field that is not there adds it with a value, does nothing without")
{
    MessageEdits e;
    e.headers.push_back(edit(HeaderEdit::Kind::change, "X-Tag", "third", 3));
    e.headers.push_back(edit(HeaderEdit::Kind::change, "X-None", "", 1));
    std::string out = rewrite(e);
    CHECK(header_of(out) == header_of(k_message) + "X-Tag: third\r\n");
    // Index 0 is taken as 1.
    MessageEdits zero;
    zero.headers.push_back(edit(HeaderEdit::Kind::change, "Subject", "z", 0));
    CHECK(rewrite(zero).find("Subject: z\r\nX-Tag: first") != std::string::npos);
}

TEST_CASE("message edit: edits apply in order, each on the result of the last")
{
    MessageEdits e;
    e.headers.push_back(edit(HeaderEdit::Kind::add, "X-A", "1"));
    e.headers.push_back(edit(HeaderEdit::Kind::change, "X-A", "2", 1));
    e.headers.push_back(edit(HeaderEdit::Kind::insert, "X-A", "0", 0));
    e.headers.push_back(edit(HeaderEdit::Kind::change, "X-A", "", 2)); // the added one, now second
    std::string out = rewrite(e);
    CHECK(out.rfind("X-A: 0\r\nReceived:", 0) == 0);
    CHECK(out.find("X-A: 2") == std::string::npos);
    CHECK(out.find("X-A: 1") == std::string::npos);
}

TEST_CASE("message edit: the body is replaced, its line ends made CRLF")
{
    MessageEdits e;
    e.body = "new\nbody\rwith\r\nends";
    std::string out = rewrite_all_ways(e);
    CHECK(out == header_of(k_message) + "\r\nnew\r\nbody\r\nwith\r\nends\r\n");
    e.body = "";
    CHECK(rewrite(e) == header_of(k_message) + "\r\n");
}

TEST_CASE("message edit: a message with no blank line gets one before a new body, and keeps its fields whole")
{
    MessageEdits e;
    e.body = "b\r\n";
    CHECK(rewrite_all_ways(e, "A: 1\r\nB: 2") == "A: 1\r\nB: 2\r\n\r\nb\r\n");
    e.headers.push_back(edit(HeaderEdit::Kind::add, "C", "3"));
    CHECK(rewrite_all_ways(e, "A: 1\r\nB: 2") == "A: 1\r\nB: 2\r\nC: 3\r\n\r\nb\r\n");
    MessageEdits only_header;
    only_header.headers.push_back(edit(HeaderEdit::Kind::add, "C", "3"));
    CHECK(rewrite_all_ways(only_header, "A: 1\r\nB: 2\r\n") == "A: 1\r\nB: 2\r\nC: 3\r\n");
}

TEST_CASE("message edit: a long value is folded at white space; one that cannot be is refused")
{
    std::string words;
    while (words.size() < 2500) {
        words += "word ";
    }
    words.pop_back();
    std::string field = render_header_field("X-Long", words);
    REQUIRE(!field.empty());
    std::size_t pos = 0;
    int lines = 0;
    while (pos < field.size()) {
        std::size_t end = field.find("\r\n", pos);
        REQUIRE(end != std::string::npos);
        CHECK(end - pos <= limits::k_max_header_line);
        if (lines > 0) {
            CHECK(field[pos] == ' ');
        }
        ++lines;
        pos = end + 2;
    }
    CHECK(lines >= 3);
    // Unfolded, it is the value again.
    std::string unfolded;
    for (char c : field) {
        if (c != '\r' && c != '\n') {
            unfolded += c;
        }
    }
    CHECK(unfolded == "X-Long: " + words);
    HeaderEdit bad = edit(HeaderEdit::Kind::add, "X-Long", std::string(1200, 'x'));
    CHECK(header_edit_problem(bad).find("no white space") != std::string::npos);
}

TEST_CASE("message edit: names and values are checked as our own input is")
{
    auto problem = [](std::string name, std::string value,
                      HeaderEdit::Kind kind = HeaderEdit::Kind::add) {
        return header_edit_problem(edit(kind, std::move(name), std::move(value)));
    };
    CHECK(problem("X-Ok", "fine value").empty());
    CHECK(problem("X-Ok", "folded\r\n\tline").empty());
    CHECK(problem("X-Ok", "8-bit \xc3\xa9").empty());
    CHECK(problem("X-Ok", "", HeaderEdit::Kind::change).empty());
    CHECK(!problem("", "v").empty());
    CHECK(!problem("X Bad", "v").empty());
    CHECK(!problem("X:Bad", "v").empty());
    CHECK(!problem("X-\xc3\xa9", "v").empty());
    CHECK(!problem(std::string(limits::k_max_field_name + 1, 'x'), "v").empty());
    CHECK(problem(std::string(limits::k_max_field_name, 'x'), "v").empty());
    CHECK(!problem("X", std::string("a\0b", 3)).empty());
    CHECK(!problem("X", "a\rb").empty());
    CHECK(!problem("X", "a\nb").empty());            // a new field smuggled in
    CHECK(!problem("X", "a\r\nInjected: yes").empty());
    CHECK(!problem("X", "a\r\n\r\nbody").empty());   // the end of the header section
    CHECK(!problem("X", "a\r\n").empty());           // a line end that folds nothing
    CHECK(!problem("X", "a\r\n \r\n b").empty());    // a line of white space only
    CHECK(!problem("X", "a\x01").empty());
    CHECK(!problem("X", "a\x7f").empty());
    CHECK(body_problem("ok\r\n").empty());
    CHECK(!body_problem(std::string("a\0", 2)).empty());
}

TEST_CASE("message edit: the held header section is bounded, before and after the edits")
{
    MessageEdits e;
    e.headers.push_back(edit(HeaderEdit::Kind::add, "X", "y"));
    std::string out;
    MessageRewriter rw(
        e,
        [&out](std::string_view s) -> Result<void> {
            out.append(s);
            return {};
        },
        100);
    std::string big = "A: " + std::string(120, 'a') + "\r\n\r\nbody\r\n";
    auto r = rw.feed(big);
    REQUIRE(!r);
    CHECK(r.error().errnum == EFBIG);
    // Fits before, not after.
    MessageEdits grow;
    grow.headers.push_back(edit(HeaderEdit::Kind::add, "X", std::string(90, 'x')));
    MessageRewriter rw2(
        grow, [](std::string_view) -> Result<void> { return {}; }, 100);
    auto r2 = rw2.feed("A: b\r\n\r\nbody\r\n");
    REQUIRE(!r2);
    CHECK(r2.error().errnum == EFBIG);
    // Without header edits nothing is held, whatever the size.
    MessageEdits body_only;
    body_only.body = "b";
    CHECK(rewrite(body_only, big, 0, 100) == "A: " + std::string(120, 'a') + "\r\n\r\nb\r\n");
}

TEST_CASE("message edit: a sink's failure stops the rewrite with its error")
{
    MessageEdits e;
    e.body = "x";
    int calls = 0;
    MessageRewriter rw(e, [&calls](std::string_view) -> Result<void> {
        ++calls;
        return Error{EIO, "write failed"};
    });
    auto r = rw.feed(k_message);
    REQUIRE(!r);
    CHECK(r.error().errnum == EIO);
    CHECK(calls == 1);
}
