// Tests of the named sanitizers (base/text): each contract, on hostile input
// (CR, LF, NUL, DEL, 8-bit octets, overlong text).
#include "base/text.hpp"

#include <doctest/doctest.h>

#include <string>

using namespace smtpspool;
using namespace std::string_literals;

namespace {

// Every octet, 0 to 255, twice over.
std::string all_octets()
{
    std::string s;
    for (int round = 0; round < 2; ++round) {
        for (int i = 0; i < 256; ++i) {
            s += static_cast<char>(i);
        }
    }
    return s;
}

bool has_line_end_or_nul(std::string_view s) { return s.find_first_of("\r\n\0"s) != std::string_view::npos; }

bool only_printable_ascii(std::string_view s)
{
    for (char c : s) {
        auto u = static_cast<unsigned char>(c);
        if (u < 0x20 || u >= 0x7f) {
            return false;
        }
    }
    return true;
}

// True when every multi-octet UTF-8 character in s is complete.
bool complete_utf8(std::string_view s)
{
    for (std::size_t i = 0; i < s.size();) {
        auto u = static_cast<unsigned char>(s[i]);
        std::size_t n = u < 0x80 ? 1 : u >= 0xf0 ? 4 : u >= 0xe0 ? 3 : 2;
        if (i + n > s.size()) {
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

} // namespace

TEST_SUITE("text")
{
    TEST_CASE("no sanitizer lets CR, LF or NUL through")
    {
        const std::string hostile = all_octets();
        CHECK_FALSE(has_line_end_or_nul(text::header_word(hostile)));
        CHECK_FALSE(has_line_end_or_nul(text::header_value(hostile)));
        CHECK_FALSE(has_line_end_or_nul(text::detail_line(hostile)));
        CHECK_FALSE(has_line_end_or_nul(text::detail_line(hostile, 100)));
        CHECK_FALSE(has_line_end_or_nul(text::printable_line(hostile.substr(11), 1000)));
        CHECK_FALSE(has_line_end_or_nul(text::printable_tail(hostile, 1000)));
        CHECK_FALSE(has_line_end_or_nul(text::log_value(hostile)));
        CHECK_FALSE(has_line_end_or_nul(text::terminal_text(hostile)));
        CHECK_FALSE(has_line_end_or_nul(text::file_name_component(hostile)));
    }

    TEST_CASE("header_word: one word of printable ASCII for a trace header, 255 octets at most")
    {
        CHECK(text::header_word("mx.example.com") == "mx.example.com");
        CHECK(text::header_word("[192.0.2.1]") == "?192.0.2.1?");
        CHECK(text::header_word("a b\tc") == "a?b?c");
        CHECK(text::header_word("evil\r\nX-Injected: yes") == "evil??X-Injected:?yes");
        CHECK(text::header_word("a\0b\x7f"s) == "a?b?");
        CHECK(text::header_word("(comment) \"q\" \\ ;") == "?comment???q?????");
        CHECK(text::header_word("h\xc3\xa9llo") == "h??llo"); // one '?' per octet
        CHECK(text::header_word(std::string(1000, 'a')) == std::string(255, 'a'));
        CHECK(text::header_word("") == "");
        std::string all = text::header_word(all_octets());
        CHECK(all.size() == 255);
        CHECK(all.find_first_of(" ()[]\\;\"") == std::string::npos);
        CHECK(only_printable_ascii(all));
    }

    TEST_CASE("header_value: controls become spaces, 8-bit kept, 900 octets cut on a character")
    {
        CHECK(text::header_value("550 5.1.1 <bob@example.com>: no such user") ==
              "550 5.1.1 <bob@example.com>: no such user");
        CHECK(text::header_value("a\r\nb\tc\0d\x7f"s) == "a  b c d ");
        CHECK(text::header_value("j\xc3\xb6rg@example.com") == "j\xc3\xb6rg@example.com");
        CHECK(text::header_value(std::string(1000, 'x')) == std::string(900, 'x'));
        CHECK(text::header_value(std::string(900, 'x')) == std::string(900, 'x'));
        // A character across the 900th octet is left out whole (cutting
        // inside it left a stray lead octet in a charset=utf-8 part).
        std::string two = std::string(899, 'x') + "\xc3\xa9" + "tail";
        CHECK(text::header_value(two) == std::string(899, 'x'));
        std::string three = std::string(898, 'x') + "\xe2\x82\xac" + "tail";
        CHECK(text::header_value(three) == std::string(898, 'x'));
        std::string fits = std::string(898, 'x') + "\xc3\xa9" + "tail";
        CHECK(text::header_value(fits) == std::string(898, 'x') + "\xc3\xa9");
        for (std::size_t pad = 0; pad < 8; ++pad) {
            std::string accents(pad, 'x');
            while (accents.size() < 1000) {
                accents += "\xe2\x82\xac";
            }
            std::string v = text::header_value(accents);
            CHECK(v.size() <= 900);
            CHECK(v.size() >= 898);
            CHECK(complete_utf8(v));
        }
    }

    TEST_CASE("detail_line: controls become '?', 8-bit kept, cut with '...' on a character")
    {
        CHECK(text::detail_line("a\r\nb") == "a??b");
        CHECK(text::detail_line("a\0b\x7f\x1b[2J"s) == "a?b??[2J");
        CHECK(text::detail_line("550 Benutzer unbekannt: M\xc3\xbcller") == "550 Benutzer unbekannt: M\xc3\xbcller");
        CHECK(text::detail_line("abcdef", 5) == "ab...");
        CHECK(text::detail_line("abcde", 5) == "abcde");
        CHECK(text::detail_line("abcdef", 2) == "..");
        CHECK(text::detail_line("abcdef", 0) == "");
        CHECK(text::detail_line("ab\xc3\xa9"
                                "def",
                                6) == "ab...");
        CHECK(text::detail_line("ab\xc3\xa9"
                                "defg",
                                7) == "ab\xc3\xa9...");
        std::string big(100000, 'z');
        CHECK(text::detail_line(big) == big); // no bound unless given
        CHECK(text::detail_line(big, 400).size() == 400);
    }

    TEST_CASE("printable_line: the first line, printable ASCII, at most max octets")
    {
        CHECK(text::printable_line("first\nsecond", 100) == "first");
        CHECK(text::printable_line("a\rb\0c\xc3\xa9\x7f"s, 100) == "a?b?c???");
        CHECK(text::printable_line("abcdef", 3) == "abc");
        CHECK(text::printable_line("\nsecond", 100) == "");
        CHECK(only_printable_ascii(text::printable_line(all_octets().substr(11), 1000)));
    }

    TEST_CASE("printable_tail: the last max octets on one line, no trailing spaces")
    {
        CHECK(text::printable_tail("0123456789", 4) == "6789");
        CHECK(text::printable_tail("warning\nerror: disk full\n", 100) == "warning error: disk full");
        CHECK(text::printable_tail("a\0b\x7f\xc3\xa9\r\n"s, 100) == "a b \xc3\xa9");
        CHECK(text::printable_tail("\r\n\t ", 100) == "");
    }

    TEST_CASE("log_value: bare when safe, else quoted with \\\" \\\\ and \\xNN")
    {
        CHECK(text::log_value("alice@example.com") == "alice@example.com");
        CHECK(text::log_value("") == "\"\"");
        CHECK(text::log_value("a b") == "\"a b\"");
        CHECK(text::log_value("k=v") == "\"k=v\"");
        CHECK(text::log_value("say \"hi\" \\o/") == "\"say \\\"hi\\\" \\\\o/\"");
        CHECK(text::log_value("x\r\n\0\x7f\xff"s) == "\"x\\x0d\\x0a\\x00\\x7f\\xff\"");
        CHECK(text::log_value("x event=forged") == "\"x event=forged\"");
        std::string appended = "k=";
        text::append_log_value(appended, "v w");
        CHECK(appended == "k=\"v w\"");
        CHECK(only_printable_ascii(text::log_value(all_octets())));
    }

    TEST_CASE("terminal_text: printable ASCII as is, '\\' and the rest as \\xNN")
    {
        CHECK(text::terminal_text("<a@b.example>") == "<a@b.example>");
        CHECK(text::terminal_text("\x1b]0;owned\x07") == "\\x1b]0;owned\\x07");
        CHECK(text::terminal_text("a\\x41") == "a\\x5cx41"); // a literal "\x41" stays distinguishable
        CHECK(text::terminal_text("\r\n\0 \xc3\xa9"s) == "\\x0d\\x0a\\x00 \\xc3\\xa9");
        std::string all = text::terminal_text(all_octets());
        CHECK(only_printable_ascii(all));
        CHECK(all.size() == 2 * (95 - 1 + 161 * 4 + 4)); // 94 kept, '\' and 161 others escaped
    }

    TEST_CASE("terminal_text_utf8: well-formed UTF-8 as is, controls and invalid octets as \\xNN")
    {
        CHECK(text::terminal_text_utf8("<j\xc3\xb6rg@cl\xc3\xaf" "ent.example>") == "<j\xc3\xb6rg@cl\xc3\xaf" "ent.example>");
        CHECK(text::terminal_text_utf8("\xe7\x94\xa8\xe6\x88\xb7@\xf0\x9f\x93\xa7.example") ==
              "\xe7\x94\xa8\xe6\x88\xb7@\xf0\x9f\x93\xa7.example");
        // C0, DEL and '\' as terminal_text does.
        CHECK(text::terminal_text_utf8("\x1b]0;owned\x07 a\\x41\x7f\r\n\0"s) == "\\x1b]0;owned\\x07 a\\x5cx41\\x7f\\x0d\\x0a\\x00");
        // C1 controls (U+0085, U+009B CSI), written octet by octet.
        CHECK(text::terminal_text_utf8("a\xc2\x85" "b\xc2\x9b" "31m") == "a\\xc2\\x85b\\xc2\\x9b31m");
        CHECK(text::terminal_text_utf8("\xc2\xa0\xc2\x9f") == "\xc2\xa0\\xc2\\x9f"); // U+00A0 kept, U+009F not
        // Bidirectional controls and the line and paragraph separators.
        for (std::string bidi : {"\xd8\x9c"s, "\xe2\x80\x8e"s, "\xe2\x80\x8f"s, "\xe2\x80\xaa"s, "\xe2\x80\xae"s,
                                 "\xe2\x81\xa6"s, "\xe2\x81\xa9"s, "\xe2\x80\xa8"s, "\xe2\x80\xa9"s}) {
            std::string shown = text::terminal_text_utf8("x" + bidi + "y");
            CHECK(only_printable_ascii(shown));
            CHECK(shown.size() == 2 + 4 * bidi.size());
        }
        CHECK(text::terminal_text_utf8("\xe2\x80\x8d\xe2\x81\xa5") == "\xe2\x80\x8d\xe2\x81\xa5"); // U+200D, U+2065 kept
        // Not well-formed: a lone continuation, a cut character, overlong forms,
        // surrogates, beyond U+10FFFF, 0xff.
        CHECK(text::terminal_text_utf8("\x80") == "\\x80");
        CHECK(text::terminal_text_utf8("a\xc3") == "a\\xc3");
        CHECK(text::terminal_text_utf8("\xe2\x82x") == "\\xe2\\x82x");
        CHECK(text::terminal_text_utf8("\xc0\xaf\xc1\xbf") == "\\xc0\\xaf\\xc1\\xbf");
        CHECK(text::terminal_text_utf8("\xe0\x80\xaf") == "\\xe0\\x80\\xaf");
        CHECK(text::terminal_text_utf8("\xf0\x80\x80\xaf") == "\\xf0\\x80\\x80\\xaf");
        CHECK(text::terminal_text_utf8("\xed\xa0\x80") == "\\xed\\xa0\\x80");
        CHECK(text::terminal_text_utf8("\xf4\x90\x80\x80") == "\\xf4\\x90\\x80\\x80");
        CHECK(text::terminal_text_utf8("\xf4\x8f\xbf\xbf") == "\xf4\x8f\xbf\xbf"); // U+10FFFF
        CHECK(text::terminal_text_utf8("\xff\xfe") == "\\xff\\xfe");
        // Every octet once: nothing above 0x7f forms a character, so all is ASCII.
        std::string all = text::terminal_text_utf8(all_octets());
        CHECK(all == text::terminal_text(all_octets()));
        CHECK(!has_line_end_or_nul(all));
    }

    TEST_CASE("log_value keeps well-formed UTF-8 in quotes; log_line_ascii escapes it again")
    {
        CHECK(text::log_value("j\xc3\xb6rg@x.example") == "\"j\xc3\xb6rg@x.example\"");
        CHECK(text::log_value("\xe2\x80\xae\xc2\x85\xc3") == "\"\\xe2\\x80\\xae\\xc2\\x85\\xc3\"");
        std::string line = "event=mail from=" + text::log_value("j\xc3\xb6rg@x.example");
        CHECK(text::log_line_ascii(line) == "event=mail from=\"j\\xc3\\xb6rg@x.example\"");
        CHECK(only_printable_ascii(text::log_line_ascii(text::log_value(all_octets() + "\xc3\xb6"))));
    }

    TEST_CASE("file_name_component: never empty, '.', '..', hidden or a path")
    {
        CHECK(text::file_name_component("alice") == "alice");
        CHECK(text::file_name_component("") == "_");
        CHECK(text::file_name_component(".") == "_");
        CHECK(text::file_name_component("..") == "__");
        CHECK(text::file_name_component("../../etc/passwd") == "___.._etc_passwd");
        CHECK(text::file_name_component(".hidden") == "_hidden");
        CHECK(text::file_name_component("a.b") == "a.b");
        CHECK(text::file_name_component("a/b\\c") == "a_b_c");
        CHECK(text::file_name_component("\"john smith\"") == "john smith");
        CHECK(text::file_name_component("\"\"") == "_");
        CHECK(text::file_name_component("a\0b\r\nc\x7f"s) == "a_b__c_");
        CHECK(text::file_name_component("j\xc3\xb6rg") == "j\xc3\xb6rg");
        std::string all = text::file_name_component(all_octets());
        CHECK(all.find('/') == std::string::npos);
        CHECK(all.front() != '.');
    }

    TEST_CASE("trim: spaces and tabs; trim_space: also CR and LF")
    {
        CHECK(text::trim(" \t a b \t ") == "a b");
        CHECK(text::trim("\r\na\r\n") == "\r\na\r\n");
        CHECK(text::trim("   ") == "");
        CHECK(text::trim_space(" \r\n\ta b\r\n") == "a b");
        CHECK(text::trim_space("\r\n") == "");
        CHECK(text::trim_space("a\0"s) == "a\0"s);
    }

    TEST_CASE("invisible_control: C1, bidirectional formatting and line separators, and nothing else")
    {
        for (unsigned b = 0x80; b <= 0x9f; ++b) {
            std::string s = "a\xc2" + std::string(1, static_cast<char>(b));
            CHECK(text::invisible_control(s, 1) == 2);
            CHECK(text::has_invisible_control(s));
        }
        for (std::string_view s : {"\xd8\x9c", "\xe2\x80\x8e", "\xe2\x80\x8f", "\xe2\x80\xaa", "\xe2\x80\xae",
                                   "\xe2\x81\xa6", "\xe2\x81\xa9", "\xe2\x80\xa8", "\xe2\x80\xa9"}) {
            CHECK(text::invisible_control(s, 0) == s.size());
        }
        for (std::string_view s : {"a", "\xc2\xa0", "\xc3\xa9", "\xe2\x80\x90", "\xe2\x81\xa5", "\xe2\x80\xaf",
                                   "\xd8\x9b", "\xc2", "\xe2\x80"}) {
            CHECK(text::invisible_control(s, 0) == 0);
            CHECK_FALSE(text::has_invisible_control(s));
        }
        CHECK(text::invisible_control("ab", 5) == 0);
    }

    TEST_CASE("header_value, detail_line and json_text: no C1 control or bidirectional override gets through")
    {
        // U+009B CSI "2J" (clear the screen), U+202E (right-to-left override).
        const std::string hostile = "x\xc2\x9b" "2J\xe2\x80\xae" "txt.exe@b.example";
        CHECK(text::header_value(hostile) == "x  2J   txt.exe@b.example");
        CHECK(text::header_value("j\xc3\xb6rg\xc2\xa0@b.example") == "j\xc3\xb6rg\xc2\xa0@b.example");
        CHECK_FALSE(text::has_invisible_control(text::header_value(all_octets() + hostile)));
        // A milter's reply text, an HTTP answer's reason: the same for detail_line.
        CHECK(text::detail_line(hostile) == "x??2J???txt.exe@b.example");
        CHECK(text::detail_line("j\xc3\xb6rg\xc2\xa0") == "j\xc3\xb6rg\xc2\xa0");
        CHECK_FALSE(text::has_invisible_control(text::detail_line(all_octets() + hostile)));

        const std::string json = "{\"a\":\"" + hostile + "\",\"b\":\"\x7f\xd8\x9c\xc3\xa9\xe2\x81\xa6\"}";
        CHECK(text::json_text(json) == "{\"a\":\"x\\u009b2J\\u202etxt.exe@b.example\",\"b\":\"\\u007f\\u061c\xc3\xa9\\u2066\"}");
        CHECK(text::json_text("{\"x\":\"plain \\\"q\\\" \xe2\x82\xac\"}") == "{\"x\":\"plain \\\"q\\\" \xe2\x82\xac\"}");
        std::string all = text::json_text(all_octets());
        CHECK_FALSE(text::has_invisible_control(all));
        CHECK(all.find('\x7f') == std::string::npos);
        for (unsigned b = 0x80; b <= 0x9f; ++b) {
            std::string c1 = "\xc2" + std::string(1, static_cast<char>(b));
            CHECK(text::json_text(c1).size() == 6);
            CHECK(text::json_text(c1).substr(0, 4) == "\\u00");
        }
    }
}
