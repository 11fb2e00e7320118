// Tests of the 8-bit to 7-bit MIME conversion: both passes fed whole and at
// every chunk size; the encoded parts decode to the original; what is refused.
#include "delivery/mime_downgrade.hpp"
#include "model/content.hpp"

#include <doctest/doctest.h>

#include <string>
#include <vector>

using namespace smtpspool;
using namespace std::string_literals;

namespace {

struct Converted {
    std::string refusal;
    std::vector<bool> plan;
    std::string out;
};

Converted run(std::string_view in, std::size_t step = 0, bool utf8_headers = false)
{
    if (step == 0) {
        step = in.size() + 1;
    }
    Converted c;
    MimeDowngrade a = MimeDowngrade::analyze(utf8_headers);
    std::string none;
    for (std::size_t i = 0; i < in.size(); i += step) {
        a.feed(in.substr(i, step), none);
    }
    a.finish(none);
    CHECK(none.empty());
    c.refusal = a.refusal();
    c.plan = a.plan();
    if (!c.refusal.empty()) {
        return c;
    }
    MimeDowngrade b = MimeDowngrade::convert(c.plan, utf8_headers);
    for (std::size_t i = 0; i < in.size(); i += step) {
        b.feed(in.substr(i, step), c.out);
    }
    b.finish(c.out);
    CHECK(b.refusal() == "");
    return c;
}

// Every line ends with CRLF, no octet is 8-bit, no line passes 998 octets.
void check_7bit(const std::string& out)
{
    CHECK(out.size() >= 2);
    CHECK(out.substr(out.size() - 2) == "\r\n");
    ContentScanner s;
    s.feed(out);
    CHECK(s.result() == Content::seven_bit);
    std::size_t start = 0;
    while (start < out.size()) {
        std::size_t end = out.find("\r\n", start);
        REQUIRE(end != std::string::npos);
        CHECK(end - start <= 998);
        start = end + 2;
    }
}

// The text between `after` and the next `until` in `s`.
std::string between(const std::string& s, const std::string& after, const std::string& until)
{
    std::size_t a = s.find(after);
    REQUIRE(a != std::string::npos);
    a += after.size();
    std::size_t b = until.empty() ? s.size() : s.find(until, a);
    REQUIRE(b != std::string::npos);
    return s.substr(a, b - a);
}

// Whole UTF-8 characters only (each encoded word holds whole characters).
bool valid_utf8_for_test(const std::string& s)
{
    std::size_t i = 0;
    while (i < s.size()) {
        auto c = static_cast<unsigned char>(s[i]);
        std::size_t n = c < 0x80 ? 1 : c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : c >= 0xc0 ? 2 : 0;
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

const std::string k_latin = "Gr\xfc\xdf" "e aus K\xf6ln\r\n";
const std::string k_utf8 = "Gr\xc3\xbc\xc3\x9f" "e =  \r\n.dot line\r\ntrailing space \r\ntrailing tab\t\r\n";

} // namespace

TEST_CASE("ContentScanner: 7bit, 8bit and binary, at any chunking")
{
    auto scan = [](std::string_view in, std::size_t step) {
        ContentScanner s;
        for (std::size_t i = 0; i < in.size(); i += step) {
            s.feed(in.substr(i, step));
        }
        return s.result();
    };
    for (std::size_t step : {1, 2, 3, 100}) {
        CHECK(scan("a\r\nb\r\n", step) == Content::seven_bit);
        CHECK(scan("", step) == Content::seven_bit);
        CHECK(scan("a\xe9\r\n", step) == Content::eight_bit);
        CHECK(scan("a\nb", step) == Content::binary);
        CHECK(scan("a\rb", step) == Content::binary);
        CHECK(scan("a\r", step) == Content::binary);
        CHECK(scan("a\0b"s, step) == Content::binary);
        CHECK(scan("\xe9\r\r\n", step) == Content::binary);
    }
    CHECK(content_from_name("8bit") == Content::eight_bit);
    CHECK(content_from_name("binary") == Content::binary);
    CHECK(content_from_name("7bit") == Content::seven_bit);
    CHECK(!content_from_name("8BIT"));
    CHECK(worse(Content::eight_bit, Content::seven_bit) == Content::eight_bit);
}

TEST_CASE("MimeDowngrade: a 7-bit message comes out as it went in")
{
    std::string in = "From: a@example.org\r\nSubject: hi\r\n\r\nhello\r\n.\r\n";
    Converted c = run(in);
    CHECK(c.refusal == "");
    CHECK(c.out == in);
}

TEST_CASE("MimeDowngrade: a plain 8-bit message without MIME headers becomes quoted-printable text")
{
    std::string in = "From: a@example.org\r\nSubject: hi\r\n\r\n" + k_utf8 + k_latin;
    for (std::size_t step : {0, 1, 2, 3, 7, 64}) {
        CAPTURE(step);
        Converted c = run(in, step);
        REQUIRE(c.refusal == "");
        CHECK(c.plan == std::vector<bool>{true});
        check_7bit(c.out);
        CHECK(c.out.starts_with("From: a@example.org\r\nSubject: hi\r\nMIME-Version: 1.0\r\n"
                                "Content-Type: text/plain; charset=unknown-8bit\r\n"
                                "Content-Transfer-Encoding: quoted-printable\r\n\r\n"));
        CHECK(decode_quoted_printable(between(c.out, "quoted-printable\r\n\r\n", "")) == k_utf8 + k_latin);
        CHECK(c.out.find("trailing space=20\r\n") != std::string::npos);
        CHECK(c.out.find("trailing tab=09\r\n") != std::string::npos);
        CHECK(c.out.find("=3D") != std::string::npos);
    }
}

TEST_CASE("MimeDowngrade: a body without a last line end decodes without one")
{
    std::string in = "Subject: x\r\n\r\nend \xe9";
    Converted c = run(in);
    REQUIRE(c.refusal == "");
    check_7bit(c.out);
    CHECK(decode_quoted_printable(between(c.out, "\r\n\r\n", "")) == "end \xe9");
}

TEST_CASE("MimeDowngrade: long 8-bit lines are cut with soft line breaks")
{
    std::string line(5000, 'x');
    line[10] = '\xe9';
    std::string in = "Content-Type: text/plain; charset=iso-8859-1\r\nMIME-Version: 1.0\r\n"
                     "Content-Transfer-Encoding: 8bit\r\n\r\n" + line + "\r\n";
    Converted c = run(in, 1000);
    REQUIRE(c.refusal == "");
    check_7bit(c.out);
    CHECK(c.out.find("Content-Transfer-Encoding: 8bit") == std::string::npos);
    CHECK(c.out.find("MIME-Version: 1.0\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n") != std::string::npos);
    std::string body = between(c.out, "quoted-printable\r\n\r\n", "");
    CHECK(decode_quoted_printable(body) == line + "\r\n");
    std::size_t longest = 0, start = 0;
    while (start < body.size()) {
        std::size_t end = body.find("\r\n", start);
        longest = std::max(longest, end - start);
        start = end + 2;
    }
    CHECK(longest <= 76);
}

TEST_CASE("MimeDowngrade: multipart: 8-bit parts re-encoded, the others and the boundaries as they were")
{
    std::string pdf = "%PDF\x80\x81\xff\r\nbinary\r\n";
    std::string in = "From: a@example.org\r\n"
                     "MIME-Version: 1.0\r\n"
                     "Content-Type: multipart/mixed; boundary=\"=_b1\"\r\n"
                     "Content-Transfer-Encoding: 8bit\r\n"
                     "\r\n"
                     "preamble \xe9t\xe9\r\n"
                     "--=_b1\r\n"
                     "Content-Type: text/plain; charset=utf-8\r\n"
                     "Content-Transfer-Encoding: 8bit\r\n"
                     "\r\n" +
                     k_utf8 +
                     "\r\n--=_b1\r\n"
                     "Content-Type: text/plain\r\n"
                     "\r\n"
                     "plain ascii\r\n"
                     "--=_b1\r\n"
                     "Content-Type: application/pdf\r\n"
                     "\r\n" +
                     pdf +
                     "\r\n--=_b1-- \xe9\r\n"
                     "epilogue \xe9\r\n";
    for (std::size_t step : {0, 1, 5, 13}) {
        CAPTURE(step);
        Converted c = run(in, step);
        REQUIRE(c.refusal == "");
        CHECK(c.plan == std::vector<bool>{true, false, true});
        check_7bit(c.out);
        CHECK(c.out.find("Content-Type: multipart/mixed; boundary=\"=_b1\"\r\nContent-Transfer-Encoding: 7bit\r\n") !=
              std::string::npos);
        CHECK(c.out.find("preamble ?t?\r\n--=_b1\r\n") != std::string::npos);
        CHECK(c.out.find("\r\n--=_b1-- ?\r\nepilogue ?\r\n") != std::string::npos);
        CHECK(c.out.find("--=_b1\r\nContent-Type: text/plain\r\n\r\nplain ascii\r\n--=_b1\r\n") != std::string::npos);
        std::string text = between(c.out, "charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n",
                                   "\r\n--=_b1\r\n");
        CHECK(decode_quoted_printable(text) == k_utf8);
        std::string b64 = between(c.out, "application/pdf\r\nContent-Transfer-Encoding: base64\r\n\r\n",
                                  "\r\n--=_b1-- ?\r\n");
        CHECK(decode_base64(b64) == pdf);
    }
}

TEST_CASE("MimeDowngrade: nested multipart, message/rfc822 and digest parts")
{
    std::string in = "Content-Type: multipart/mixed; boundary=outer\r\n\r\n"
                     "--outer\r\n"
                     "Content-Type: multipart/alternative; boundary=\"inner\"\r\n\r\n"
                     "--inner\r\n\r\n\xe9t\xe9\r\n"
                     "--inner--\r\n"
                     "--outer\r\n"
                     "Content-Type: message/rfc822\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
                     "Subject: inner\r\n\r\nna\xefve\r\n"
                     "--outer\r\n"
                     "Content-Type: multipart/digest; boundary=d\r\n\r\n"
                     "--d\r\n\r\nSubject: digested\r\n\r\n\xfc\r\n"
                     "--d--\r\n"
                     "--outer--\r\n";
    Converted c = run(in, 3);
    REQUIRE(c.refusal == "");
    CHECK(c.plan == std::vector<bool>{true, true, true});
    check_7bit(c.out);
    CHECK(c.out.find("--inner\r\nContent-Type: text/plain; charset=unknown-8bit\r\n"
                     "Content-Transfer-Encoding: quoted-printable\r\n\r\n=E9t=E9\r\n--inner--\r\n") !=
          std::string::npos);
    CHECK(c.out.find("Content-Type: message/rfc822\r\nContent-Transfer-Encoding: 7bit\r\n\r\n"
                     "Subject: inner\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=unknown-8bit\r\n"
                     "Content-Transfer-Encoding: quoted-printable\r\n\r\nna=EFve\r\n--outer\r\n") != std::string::npos);
    CHECK(c.out.find("Subject: digested\r\nMIME-Version: 1.0\r\n") != std::string::npos);
}

TEST_CASE("MimeDowngrade: signed content, 8-bit headers and wrong encodings are refused")
{
    std::string signed_msg = "Content-Type: multipart/signed; protocol=\"application/pgp-signature\"; boundary=s\r\n\r\n"
                             "--s\r\nContent-Type: text/plain\r\n\r\nsign\xe9\r\n"
                             "--s\r\nContent-Type: application/pgp-signature\r\n\r\nsig\r\n--s--\r\n";
    CHECK(run(signed_msg).refusal.find("multipart/signed") != std::string::npos);
    // Signed but 7-bit: nothing to convert, nothing refused.
    std::string seven = signed_msg;
    seven.replace(seven.find('\xe9'), 1, "e");
    CHECK(run(seven).refusal == "");
    CHECK(run(seven).out == seven);
    // Nested inside a signed entity.
    std::string nested = "Content-Type: multipart/signed; boundary=s\r\n\r\n--s\r\n"
                         "Content-Type: multipart/mixed; boundary=m\r\n\r\n--m\r\n\r\n\xe9\r\n--m--\r\n--s--\r\n";
    CHECK(run(nested).refusal.find("signed") != std::string::npos);

    Converted h = run("From: J\xc3\xb6rg <j@example.org>\r\n\r\nbody\r\n");
    CHECK(h.refusal.find("header field from (only an SMTPUTF8 message may have them)") != std::string::npos);
    // An SMTPUTF8 message keeps its UTF-8 header fields.
    Converted u = run("Subject: \xc3\xa9t\xc3\xa9\r\n\r\nbody \xc3\xa9\r\n", 0, true);
    CHECK(u.refusal == "");
    CHECK(u.out.starts_with("Subject: \xc3\xa9t\xc3\xa9\r\nMIME-Version: 1.0\r\n"));

    CHECK(run("Content-Transfer-Encoding: base64\r\n\r\n\xe9\r\n").refusal.find("declared base64") !=
          std::string::npos);
    CHECK(run("Content-Transfer-Encoding: x-uuencode\r\n\r\n\xe9\r\n").refusal.find("unknown") != std::string::npos);
    // application/pkcs7-mime is a leaf like any other.
    Converted p = run("Content-Type: application/pkcs7-mime; smime-type=signed-data\r\n"
                      "Content-Transfer-Encoding: binary\r\n\r\n\x30\x82\xff\r\n");
    CHECK(p.refusal == "");
    CHECK(p.out.find("Content-Transfer-Encoding: base64\r\n\r\nMIL/DQo=\r\n") != std::string::npos);
}

TEST_CASE("MimeDowngrade: bounds: header section size and nesting depth")
{
    std::string big = "X: " + std::string(k_max_mime_header_section, 'a') + "\r\n\r\n\xe9\r\n";
    CHECK(run(big, 10000).refusal.find("header section longer") != std::string::npos);
    std::string deep;
    for (std::size_t i = 0; i <= k_max_mime_depth; ++i) {
        deep += "Content-Type: multipart/mixed; boundary=b" + std::to_string(i) + "\r\n\r\n--b" + std::to_string(i) +
                "\r\n";
    }
    deep += "\r\n\xe9\r\n";
    CHECK(run(deep).refusal.find("nested") != std::string::npos);
}

TEST_CASE("MimeDowngrade: 8-bit unstructured fields become RFC 2047 encoded words")
{
    Converted c = run("Subject: \xc3\xa9t\xc3\xa9 =?x?=_\r\n \xc3\xa0 bient\xc3\xb4t\r\nComments: \xe9\r\n"
                      "X-Plain: ascii\r\n\r\nbody\r\n", 3);
    REQUIRE(c.refusal == "");
    CHECK(c.out == "Subject: =?UTF-8?Q?=C3=A9t=C3=A9_=3D=3Fx=3F=3D=5F_=C3=A0_bient=C3=B4t?=\r\n"
                   "Comments: =?unknown-8bit?Q?=E9?=\r\nX-Plain: ascii\r\n\r\nbody\r\n");
    // A long one: several words, one to a line, none over 75 characters, no
    // character split between two.
    std::string subject;
    for (int i = 0; i < 40; ++i) {
        subject += "\xe2\x98\x83 ";
    }
    c = run("Subject: " + subject + "\r\n\r\n\xe9\r\n");
    REQUIRE(c.refusal == "");
    check_7bit(c.out);
    std::string header = c.out.substr(0, c.out.find("\r\n\r\n"));
    std::string decoded;
    std::size_t words = 0;
    for (std::size_t at = header.find("=?UTF-8?Q?"); at != std::string::npos; at = header.find("=?UTF-8?Q?", at + 1)) {
        std::size_t end = header.find("?=", at + 10);
        REQUIRE(end != std::string::npos);
        CHECK(end + 2 - at <= 75);
        std::string q = header.substr(at + 10, end - at - 10);
        std::string spaced;
        for (char ch : q) {
            spaced += ch == '_' ? std::string("=20") : std::string(1, ch);
        }
        std::string part = decode_quoted_printable(spaced);
        CHECK(valid_utf8_for_test(part));
        decoded += part;
        ++words;
    }
    CHECK(words > 3);
    CHECK(decoded == subject);
    // Inside a signed entity nothing is changed: refused.
    CHECK(run("Content-Type: multipart/signed; boundary=s\r\n\r\n--s\r\nContent-Description: \xe9\r\n\r\nx\r\n--s--\r\n")
              .refusal.find("signed") != std::string::npos);
}

TEST_CASE("MimeDowngrade: decoders")
{
    CHECK(decode_quoted_printable("a=3Db=\r\nc  \r\nd=") == "a=bc\r\nd");
    CHECK(decode_base64("TWFu\r\nTQ==") == "ManM");
}
