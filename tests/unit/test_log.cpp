// LogLine in both formats (logfmt and JSON), text::json_string, and the
// events against smtpspool(8), LOGGING: every event name and key the sources
// log is documented there.
#include "base/log.hpp"
#include "base/text.hpp"

#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <regex>
#include <set>
#include <sstream>
#include <string>

using namespace smtpspool;
using namespace std::string_literals;

namespace {

std::string read_text(const std::filesystem::path& path)
{
    std::ifstream in(path);
    std::ostringstream out;
    out << in.rdbuf();
    return out.str();
}

bool raw_control(std::string_view s)
{
    for (char c : s) {
        auto u = static_cast<unsigned char>(c);
        if (u < 0x20 || u == 0x7f) {
            return true;
        }
    }
    return false;
}

std::string all_octets()
{
    std::string s;
    for (int i = 0; i < 256; ++i) {
        s += static_cast<char>(i);
    }
    return s;
}

// A JSON string checker, enough for what json_string writes: starts and ends
// with '"', inside only escapes \" \\ \uXXXX (with \u escapes of surrogates in
// pairs) and no raw control or '"'; the octets are valid UTF-8.
bool valid_json_string(std::string_view s)
{
    if (s.size() < 2 || s.front() != '"' || s.back() != '"' || raw_control(s)) {
        return false;
    }
    for (std::size_t i = 1; i + 1 < s.size(); ++i) {
        if (s[i] == '"') {
            return false;
        }
        if (s[i] == '\\') {
            if (s[i + 1] == '"' || s[i + 1] == '\\') {
                ++i;
            } else if (s[i + 1] == 'u' && i + 6 < s.size()) {
                i += 5;
            } else {
                return false;
            }
        }
    }
    // Valid UTF-8: json_string on its own output changes nothing but the
    // escapes of '"' and '\', so a check by the round trip of its octets:
    // every octet >= 0x80 is inside a well-formed character.
    for (std::size_t i = 0; i < s.size();) {
        auto u = static_cast<unsigned char>(s[i]);
        if (u < 0x80) {
            ++i;
            continue;
        }
        std::size_t n = u >= 0xf0 ? 4 : u >= 0xe0 ? 3 : u >= 0xc2 ? 2 : 0;
        if (n == 0 || i + n > s.size()) {
            return false;
        }
        for (std::size_t k = 1; k < n; ++k) {
            if ((static_cast<unsigned char>(s[i + k]) & 0xc0) != 0x80) {
                return false;
            }
        }
        i += n;
    }
    return true;
}

// The LOGGING section of smtpspool(8), roff escapes of '-' removed.
std::string logging_section()
{
    std::string page = read_text("../../man/smtpspool.8");
    auto a = page.find("\n.SH LOGGING\n");
    auto b = page.find("\n.SH ", a + 1);
    REQUIRE(a != std::string::npos);
    std::string s = page.substr(a, b - a);
    for (std::size_t i; (i = s.find("\\-")) != std::string::npos;) {
        s.replace(i, 2, "-");
    }
    return s;
}

// The events the tags of the LOGGING section name: each word of the line
// after .TP written in bold (".B name", ".BR a \", \" b").
std::set<std::string> documented_events(const std::string& section)
{
    std::set<std::string> names;
    std::istringstream in(section);
    bool tag = false;
    static const std::regex word(R"([a-z][a-z0-9-]*)");
    for (std::string line; std::getline(in, line);) {
        if (tag && (line.rfind(".B ", 0) == 0 || line.rfind(".BR ", 0) == 0 || line.rfind(".BI ", 0) == 0)) {
            std::string rest = line.substr(line.find(' ') + 1);
            // .BR alternates bold and roman: the bold words are outside quotes here.
            for (auto it = std::sregex_iterator(rest.begin(), rest.end(), word); it != std::sregex_iterator(); ++it) {
                names.insert(it->str());
            }
        }
        tag = line == ".TP";
    }
    return names;
}

struct Logged {
    std::set<std::string> events;
    std::set<std::string> keys;
};

// What the sources log: the string literals in LogLine(...) and
// LogLine name(...), those assigned to a variable named event (for
// LogLine(event)), "event=NAME" in a format string, and the keys of
// .add("key", ...).
Logged logged_by_sources()
{
    Logged out;
    static const std::regex call(R"(LogLine\s*(?:[A-Za-z_]\w*\s*)?\(([^;)]*)\))");
    static const std::regex assigned(R"(\bevent = ([^;]*);)");
    static const std::regex format(R"("event=([a-z-]+))");
    static const std::regex literal(R"x("([a-z][a-z0-9-]*)")x");
    static const std::regex key(R"x(\.add\("([^"]+)")x");
    for (const auto& f : std::filesystem::recursive_directory_iterator("../../src")) {
        if (f.path().extension() != ".cpp" && f.path().extension() != ".hpp") {
            continue;
        }
        const std::string code = read_text(f.path());
        auto each = [&](const std::regex& re, auto&& fn) {
            for (auto it = std::sregex_iterator(code.begin(), code.end(), re); it != std::sregex_iterator(); ++it) {
                fn((*it)[1].str());
            }
        };
        auto literals = [&](const std::string& text) {
            for (auto it = std::sregex_iterator(text.begin(), text.end(), literal); it != std::sregex_iterator();
                 ++it) {
                out.events.insert((*it)[1].str());
            }
        };
        each(call, literals);
        each(assigned, literals);
        each(format, [&](const std::string& e) { out.events.insert(e); });
        each(key, [&](const std::string& k) { out.keys.insert(k); });
    }
    return out;
}

} // namespace

TEST_SUITE("log")
{
    TEST_CASE("LogLine: the same event and keys as logfmt and as JSON")
    {
        LogLine line("rcpt");
        line.add("to", "a b@x").add("code", std::uint64_t{550}).add("reason", "say \"no\"");
        CHECK(line.event() == "rcpt");
        CHECK(line.str() == R"(event=rcpt to="a b@x" code=550 reason="say \"no\"")");
        CHECK(line.json("2026-12-06T06:50:07.000001Z", "serve", 42) ==
              R"({"time":"2026-12-06T06:50:07.000001Z","program":"serve","pid":42,"event":"rcpt",)"
              R"("to":"a b@x","code":550,"reason":"say \"no\""})");
        LogLine bare("locked");
        CHECK(bare.str() == "event=locked");
        CHECK(bare.json("t", "runq", 1) == R"({"time":"t","program":"runq","pid":1,"event":"locked"})");
    }

    TEST_CASE("LogLine::json: hostile values stay valid JSON on one line")
    {
        LogLine line("ehlo");
        line.add("name", all_octets() + "\xe2\x80\xae\xf0\x9f\x98\x80");
        for (bool ascii : {false, true}) {
            std::string json = line.json("t", "serve", 7, ascii);
            CHECK_FALSE(raw_control(json));
            CHECK(json.find('\n') == std::string::npos);
            if (ascii) {
                CHECK(std::all_of(json.begin(), json.end(), [](char c) { return c >= 0x20 && c < 0x7f; }));
            }
        }
    }

    TEST_CASE("log_time_now: RFC 3339, UTC, microseconds")
    {
        CHECK(std::regex_match(log_time_now(), std::regex(R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z)")));
    }

    TEST_CASE("json_string: escapes, controls as \\u, broken UTF-8 as \\xNN")
    {
        CHECK(text::json_string("alice@example.com") == R"("alice@example.com")");
        CHECK(text::json_string("") == R"("")");
        CHECK(text::json_string("say \"hi\"") == R"("say \"hi\"")");
        CHECK(text::json_string("a\\b") == R"("a\\x5cb")");
        CHECK(text::json_string("x\r\n\0\x1b\x7f"s) == R"("x\u000d\u000a\u0000\u001b\u007f")");
        CHECK(text::json_string("j\xc3\xb6rg") == "\"j\xc3\xb6rg\"");
        CHECK(text::json_string("j\xc3\xb6rg", true) == R"("j\u00f6rg")");
        CHECK(text::json_string("\xc2\x9b\xe2\x80\xae") == R"("\u009b\u202e")");
        CHECK(text::json_string("\xf0\x9f\x98\x80", true) == R"("\ud83d\ude00")");
        CHECK(text::json_string("\xf0\x9f\x98\x80") == "\"\xf0\x9f\x98\x80\"");
        CHECK(text::json_string("a\xff\xc3") == R"("a\\xff\\xc3")");
        CHECK(text::json_string("\xed\xa0\x80") == R"("\\xed\\xa0\\x80")"); // a surrogate is not UTF-8
        CHECK(text::json_string("\xc0\xaf") == R"("\\xc0\\xaf")");         // nor an overlong form
        for (bool ascii : {false, true}) {
            CHECK(valid_json_string(text::json_string(all_octets(), ascii)));
            CHECK(valid_json_string(text::json_string("\xe2\x80\xa8\xf4\x8f\xbf\xbf\xf4\x90\x80\x80", ascii)));
        }
    }

    TEST_CASE("every event and key the sources log is in smtpspool(8), LOGGING")
    {
        const std::string section = logging_section();
        const std::set<std::string> documented = documented_events(section);
        const Logged logged = logged_by_sources();
        // The scan finds what it should: a session's, runq's and the queue tools' events.
        for (const char* e : {"connect", "ehlo", "helo", "delivery", "runq-done", "held", "requeued", "fatal"}) {
            CHECK_MESSAGE(logged.events.count(e) == 1, "the scan of src/ misses ", e);
        }
        CHECK(logged.keys.count("bounce_id") == 1);
        for (const std::string& e : logged.events) {
            CHECK_MESSAGE(documented.count(e) == 1, "event ", e, " is not a tag of smtpspool(8), LOGGING");
        }
        for (const std::string& k : logged.keys) {
            CHECK_MESSAGE(section.find(k + "=") != std::string::npos, "key ", k,
                          "= is not in smtpspool(8), LOGGING");
            // The JSON line's own keys come first; an event's key never repeats one.
            for (const char* head : {"time", "program", "pid", "event"}) {
                CHECK_MESSAGE(k != head, "key ", k, " would repeat a key of the JSON line");
            }
        }
    }
}
