// Tests of AUTH: base64, the PLAIN message, the password file (with real
// crypt(3) hashes), and the session's AUTH exchanges (RFC 4954).
#include "smtp/auth.hpp"
#include "policy/password_file.hpp"
#include "session_fixture.hpp"

#include <doctest/doctest.h>

#include <crypt.h>

using namespace smtpspool;
using namespace testutil;

namespace {

// An AuthPort that knows one user, and remembers what it was asked.
class ScriptedAuth final : public AuthPort {
public:
    AuthVerdict check(std::string_view user, std::string_view password) override
    {
        asked.emplace_back(std::string(user) + "/" + std::string(password));
        if (user == "down") {
            return AuthVerdict::temporary;
        }
        return user == "alice" && password == "s3cret" ? AuthVerdict::ok : AuthVerdict::refused;
    }
    std::vector<std::string> asked;
};

SessionConfig encrypted()
{
    SessionConfig c = test_config();
    c.tls = TlsInfo{"TLSv1.3", "TLS_AES_128_GCM_SHA256"};
    return c;
}

// "\0alice\0s3cret"
const std::string k_plain = "AGFsaWNlAHMzY3JldA==";

std::string sha512_crypt(const char* password, const char* salt)
{
    crypt_data data{};
    return ::crypt_r(password, salt, &data);
}

} // namespace

TEST_SUITE("auth")
{
    TEST_CASE("base64 round trip and strict decoding")
    {
        for (const std::string& s : std::vector<std::string>{"", "a", "ab", "abc", "abcd", std::string("\0alice\0s3cret", 13), std::string(256, '\xff')}) {
            CHECK(base64_decode(base64_encode(s)) == s);
        }
        CHECK(base64_encode("Username:") == "VXNlcm5hbWU6");
        CHECK(base64_decode("QQ==") == "A");
        for (const char* bad : {"QQ=", "Q===", "QQ=A", "Q Q=", "QQ==QQ==", "****", "QUJD\n"}) {
            CHECK_FALSE(base64_decode(bad));
        }
    }

    TEST_CASE("base64: what OpenSSL's decoders take and ours refuses")
    {
        // EVP_DecodeBlock: white space around, '=' inside or in excess.
        for (const char* bad : {" QUJD", "QUJD ", "QUJD\r\n", "\tQUJD", "=QQ=", "Q=Q=", "QQ==QUJD", "QUJD===="}) {
            CAPTURE(bad);
            CHECK_FALSE(base64_decode(bad));
        }
        // EVP_DecodeUpdate: white space and line breaks between groups.
        for (const char* bad : {"QU JD", "QUJD\nQUJD", "QQ==\n\n"}) {
            CAPTURE(bad);
            CHECK_FALSE(base64_decode(bad));
        }
        CHECK(base64_decode("QUJD") == "ABC");
        CHECK(base64_decode("QUI=") == "AB"); // the padding adds no octets
    }

    TEST_CASE("PLAIN: authzid NUL user NUL password")
    {
        auto c = parse_plain(std::string("\0alice\0s3cret", 13));
        REQUIRE(c);
        CHECK(c->authzid.empty());
        CHECK(c->user == "alice");
        CHECK(c->password == "s3cret");
        CHECK(parse_plain(std::string("bob\0alice\0pw", 12))->authzid == "bob");
        CHECK_FALSE(parse_plain("alice"));
        CHECK_FALSE(parse_plain(std::string("\0alice", 6)));
        CHECK_FALSE(parse_plain(std::string("\0\0pw", 4)));
        CHECK_FALSE(parse_plain(std::string("\0alice\0", 7)));
        CHECK_FALSE(parse_plain(std::string("\0a\0b\0c", 6)));
    }

    TEST_CASE("the password file checks real crypt(3) hashes; errors name the line")
    {
        std::string six = sha512_crypt("s3cret", "$6$saltsalt$");
        std::string yes = sha512_crypt("other", "$y$j9T$abcdefghijklmnopqrstu.$");
        REQUIRE(six.rfind("$6$saltsalt$", 0) == 0);
        REQUIRE(yes.rfind("$y$", 0) == 0);
        auto r = PasswordFile::parse("# users\nalice:" + six + "\nbob:" + yes + "  # yescrypt\n");
        REQUIRE(std::holds_alternative<PasswordFile>(r));
        PasswordFile f = std::get<PasswordFile>(r);
        CHECK(f.size() == 2);
        CHECK(f.check("alice", "s3cret") == AuthVerdict::ok);
        CHECK(f.check("alice", "s3cret ") == AuthVerdict::refused);
        CHECK(f.check("Alice", "s3cret") == AuthVerdict::refused);
        CHECK(f.check("bob", "other") == AuthVerdict::ok);
        CHECK(f.check("bob", "s3cret") == AuthVerdict::refused);
        CHECK(f.check("nobody", "s3cret") == AuthVerdict::refused);
        auto bad = [](std::string text) { return std::get<ListError>(PasswordFile::parse(text)); };
        CHECK(bad("alice\n").line == 1);
        CHECK(bad("a:$6$x$y\nb:plaintext\n").line == 2);
        CHECK(bad("a:$6$x$y\nb:plaintext\n").message.find("not in crypt(3) form") != std::string::npos);
        CHECK(bad("a:$6$x$y\na:$6$x$z\n").message == "a is listed twice");
        // A hash crypt(3) cannot use is the administrator's problem: 454, not 535.
        auto odd = std::get<PasswordFile>(PasswordFile::parse("carol:$99$what$ever\n"));
        CHECK(odd.check("carol", "x") == AuthVerdict::temporary);
    }

    TEST_CASE("hash_cost orders the settings of crypt(3) by their work")
    {
        const std::string salt = "abcdefghijklmnopqrstu.$";
        double yes = hash_cost("$y$j9T$" + salt); // N 2^12, r 32: mkpasswd's default
        CHECK(yes > hash_cost("$6$saltsalt$x"));
        CHECK(hash_cost("$6$saltsalt$x") == hash_cost("$6$rounds=5000$saltsalt$x"));
        CHECK(hash_cost("$6$rounds=200000$saltsalt$x") > yes);
        CHECK(hash_cost("$6$rounds=10$s$x") == hash_cost("$6$rounds=1000$s$x")); // crypt(3)'s floor
        CHECK(hash_cost("$y$j75$" + salt) < yes);            // N 2^10, r 8
        CHECK(hash_cost("$y$jFT$" + salt) == 64 * yes);      // N 2^18
        CHECK(hash_cost("$y$j9kn$" + salt) == doctest::Approx(yes * 100 / 32)); // r 100, two characters
        CHECK(hash_cost("$y$j9T.0$" + salt) == 4 * yes);     // p 4
        CHECK(hash_cost("$y$j9T/.$" + salt) == 2 * yes);     // t 1
        CHECK(hash_cost("$gy$j9T$" + salt) == yes);
        CHECK(hash_cost("$7$CU..../....salt$x") > yes);      // scrypt N 2^14, r 32
        CHECK(hash_cost("$2b$11$" + salt) == 2 * hash_cost("$2b$10$" + salt));
        CHECK(hash_cost("$md5,rounds=5000$salt$$x") > hash_cost("$md5$salt$$x"));
        CHECK(hash_cost("$sha1$40000$salt$x") > hash_cost("$sha1$4$salt$x"));
        CHECK(hash_cost("$1$salt$x") > 0);
        for (const char* unknown : {"$99$what$ever", "$y$$", "$y$~$", "$2b$x$", "$7$", "$", ""}) {
            CHECK_MESSAGE(hash_cost(unknown) == 0, std::string(unknown));
        }
    }

    TEST_CASE("an unknown user is checked against the file's most expensive hash")
    {
        std::string six = sha512_crypt("s3cret", "$6$saltsalt$");
        std::string slow = sha512_crypt("x", "$6$rounds=20000$saltsalt$");
        std::string yes = sha512_crypt("other", "$y$j9T$abcdefghijklmnopqrstu.$");
        auto file = [](std::string text) { return std::get<PasswordFile>(PasswordFile::parse(text)); };
        CHECK(file("a:" + six + "\nb:" + yes + "\nc:" + six + "\n").unknown_user_hash() == yes);
        CHECK(file("a:" + slow + "\nb:" + six + "\n").unknown_user_hash() == slow);
        CHECK(file("a:" + six + "\nb:" + sha512_crypt("y", "$6$othersalt$") + "\n").unknown_user_hash() == six);
        PasswordFile empty = file("# nobody\n");
        CHECK(empty.unknown_user_hash().starts_with("$6$"));
        CHECK(empty.check("nobody", "") == AuthVerdict::refused);
        // The right password of the user whose hash it borrows does not let an unknown user in.
        PasswordFile f = file("bob:" + yes + "\n");
        CHECK(f.check("bob", "other") == AuthVerdict::ok);
        CHECK(f.check("nobody", "other") == AuthVerdict::refused);
    }

    TEST_CASE("AUTH is offered only inside TLS or to a local client, and only with a password file")
    {
        ScriptedAuth auth;
        SessionFixture plain;
        plain.session.use_auth(auth);
        CHECK(plain.send("EHLO c.test\r\n").find("AUTH") == std::string::npos);
        CHECK(plain.send("AUTH PLAIN " + k_plain + "\r\n") ==
              "538 5.7.11 encryption required for requested authentication mechanism\r\n");
        CHECK(auth.asked.empty());

        SessionFixture none(encrypted());
        none.send("EHLO c.test\r\n");
        CHECK(none.send("AUTH PLAIN " + k_plain + "\r\n") == "502 5.5.1 command not implemented\r\n");

        SessionFixture tls(encrypted());
        tls.session.use_auth(auth);
        CHECK(tls.send("EHLO c.test\r\n").find("250-AUTH PLAIN LOGIN\r\n") != std::string::npos);
        SessionConfig local = test_config(true);
        SessionFixture l(local);
        l.session.use_auth(auth);
        CHECK(l.send("EHLO c.test\r\n").find("250-AUTH PLAIN LOGIN\r\n") != std::string::npos);
    }

    TEST_CASE("PLAIN with an initial response, and after a 334; a client that authenticated may relay")
    {
        ScriptedAuth auth;
        SessionFixture f(encrypted());
        f.session.use_auth(auth);
        f.send("EHLO c.test\r\n");
        CHECK(f.send("MAIL FROM:<a@b.test>\r\nRCPT TO:<far@away.test>\r\nRSET\r\n").find("550 5.7.1") !=
              std::string::npos);
        CHECK(f.send("AUTH PLAIN " + k_plain + "\r\n") == "235 2.7.0 authentication successful\r\n");
        CHECK(auth.asked == std::vector<std::string>{"alice/s3cret"});
        CHECK(f.log.has("event=auth mechanism=PLAIN user=alice result=ok"));
        CHECK_FALSE(f.log.has("s3cret"));
        CHECK(f.send("AUTH PLAIN " + k_plain + "\r\n") == "503 5.5.1 already authenticated\r\n");
        CHECK(f.send("EHLO c.test\r\n").find("AUTH") == std::string::npos);
        f.send("MAIL FROM:<a@b.test> AUTH=<>\r\nRCPT TO:<far@away.test>\r\nDATA\r\nSubject: s\r\n\r\nx\r\n.\r\n");
        REQUIRE(f.spool.messages.size() == 1);
        CHECK(f.spool.messages[0].envelope.client.auth == "alice");
        CHECK(f.spool.messages[0].data.find(" with ESMTPSA id ") != std::string::npos);

        SessionFixture g(encrypted());
        g.session.use_auth(auth);
        g.send("EHLO c.test\r\n");
        CHECK(g.send("AUTH PLAIN\r\n") == "334 \r\n");
        CHECK(g.send(k_plain + "\r\n") == "235 2.7.0 authentication successful\r\n");
    }

    TEST_CASE("a client that authenticated may name local recipients that route (%, !, @); before, 550 5.7.1")
    {
        ScriptedAuth auth;
        SessionFixture f(encrypted());
        f.session.use_auth(auth);
        f.send("EHLO c.test\r\n");
        const std::string rcpts = "RCPT TO:<victim%evil.test@mx.test>\r\nRCPT TO:<evil.test!victim@mx.test>\r\n"
                                  "RCPT TO:<\"victim@evil.test\"@mx.test>\r\n";
        CHECK(f.send("MAIL FROM:<a@b.test>\r\n" + rcpts + "RSET\r\n") ==
              std::string("250 2.1.0 sender OK\r\n") +
                  "550 5.7.1 relaying denied: routing characters (% ! @) in the local part\r\n"
                  "550 5.7.1 relaying denied: routing characters (% ! @) in the local part\r\n"
                  "550 5.7.1 relaying denied: routing characters (% ! @) in the local part\r\n"
                  "250 2.0.0 reset\r\n");
        CHECK(f.send("AUTH PLAIN " + k_plain + "\r\n") == "235 2.7.0 authentication successful\r\n");
        f.send("MAIL FROM:<a@b.test>\r\n" + rcpts + "DATA\r\nSubject: s\r\n\r\nx\r\n.\r\n");
        REQUIRE(f.spool.messages.size() == 1);
        const auto& r = f.spool.messages[0].envelope.recipients;
        REQUIRE(r.size() == 3);
        CHECK(r[0].address == "victim%evil.test@mx.test");
        CHECK(r[1].address == "evil.test!victim@mx.test");
        CHECK(r[2].address == "\"victim@evil.test\"@mx.test");
    }

    TEST_CASE("LOGIN asks for the user name and the password")
    {
        ScriptedAuth auth;
        SessionFixture f(encrypted());
        f.session.use_auth(auth);
        f.send("EHLO c.test\r\n");
        CHECK(f.send("AUTH LOGIN\r\n") == "334 VXNlcm5hbWU6\r\n");
        CHECK(f.send(base64_encode("alice") + "\r\n") == "334 UGFzc3dvcmQ6\r\n");
        CHECK(f.send(base64_encode("s3cret") + "\r\n") == "235 2.7.0 authentication successful\r\n");
        SessionFixture g(encrypted());
        g.session.use_auth(auth);
        g.send("EHLO c.test\r\n");
        CHECK(g.send("AUTH LOGIN " + base64_encode("alice") + "\r\n") == "334 UGFzc3dvcmQ6\r\n");
        CHECK(g.send(base64_encode("wrong") + "\r\n") == "535 5.7.8 authentication credentials invalid\r\n");
        CHECK(g.log.has("event=auth mechanism=LOGIN user=alice result=refused"));
        CHECK_FALSE(g.log.has("wrong"));
    }

    TEST_CASE("refusals: cancelled, bad base64, unknown mechanism, wrong authzid, temporary, in a transaction")
    {
        ScriptedAuth auth;
        SessionFixture f(encrypted());
        f.session.use_auth(auth);
        f.send("EHLO c.test\r\n");
        f.send("AUTH PLAIN\r\n");
        CHECK(f.send("*\r\n") == "501 5.0.0 authentication cancelled\r\n");
        CHECK(f.send("AUTH PLAIN !!!!\r\n") == "501 5.5.2 cannot decode the response (base64)\r\n");
        CHECK(f.send("AUTH CRAM-MD5\r\n") ==
              "504 5.5.4 unrecognized authentication type (PLAIN and LOGIN are offered)\r\n");
        CHECK(f.send("AUTH\r\n") == "501 5.5.4 syntax: AUTH mechanism [initial-response]\r\n");
        CHECK(f.send("AUTH PLAIN " + base64_encode(std::string("bob\0alice\0s3cret", 16)) + "\r\n") ==
              "535 5.7.8 authentication credentials invalid\r\n");
        CHECK(f.send("AUTH PLAIN " + base64_encode(std::string("\0down\0pw", 8)) + "\r\n") ==
              "454 4.7.0 temporary authentication failure\r\n");
        CHECK(f.send("AUTH PLAIN =\r\n") == "535 5.7.8 authentication credentials invalid\r\n");
        f.send("MAIL FROM:<a@b.test>\r\n");
        CHECK(f.send("AUTH PLAIN " + k_plain + "\r\n") ==
              "503 5.5.1 bad sequence of commands: not inside a transaction (send RSET first)\r\n");
        CHECK(auth.asked == std::vector<std::string>{"down/pw"});
        // The 5xx answers counted as client errors.
        f.send("QUIT\r\n");
        CHECK(f.log.has("errors=7")); // 501 501 504 501 535 535 503 (454 is not the client's fault)
    }

    TEST_CASE("failed attempts reach the error cap")
    {
        ScriptedAuth auth;
        SessionConfig c = encrypted();
        c.max_errors = 3;
        SessionFixture f(c);
        f.session.use_auth(auth);
        f.send("EHLO c.test\r\n");
        std::string bad = "AUTH PLAIN " + base64_encode(std::string("\0alice\0guess", 12)) + "\r\n";
        f.send(bad + bad);
        CHECK(f.send(bad) ==
              "535 5.7.8 authentication credentials invalid\r\n421 4.7.0 mx.test too many errors, closing connection\r\n");
        CHECK(f.closed);
    }

    TEST_CASE("the AUTH= parameter of MAIL is accepted only where AUTH is offered")
    {
        ScriptedAuth auth;
        SessionFixture f(encrypted());
        f.session.use_auth(auth);
        f.send("EHLO c.test\r\n");
        CHECK(f.send("MAIL FROM:<a@b.test> AUTH=a+2Bb@c.test\r\nRSET\r\n").rfind("250 2.1.0", 0) == 0);
        CHECK(f.send("MAIL FROM:<a@b.test> AUTH=<> AUTH=<>\r\n").rfind("501 5.5.4", 0) == 0);
        SessionFixture plain;
        plain.send("EHLO c.test\r\n");
        CHECK(plain.send("MAIL FROM:<a@b.test> AUTH=<>\r\n").rfind("555 5.5.4", 0) == 0);
    }
}

#include "policy/checkpassword.hpp"

#include <fstream>
#include <sys/stat.h>

TEST_SUITE("checkpassword")
{
    TEST_CASE("a checkpassword program reads fd 3 and answers with its exit status")
    {
        TempDir dir;
        std::string script = dir.path() + "/checkpassword";
        std::string seen = dir.path() + "/seen";
        {
            std::ofstream f(script);
            // The checkpassword interface: user NUL password NUL timestamp NUL
            // on fd 3, the program to run on success as the arguments.
            f << "#!/bin/sh\n"
                 "input=$(head -c 512 <&3 | tr '\\0' '\\n')\n"
                 "user=$(printf '%s\\n' \"$input\" | sed -n 1p)\n"
                 "pass=$(printf '%s\\n' \"$input\" | sed -n 2p)\n"
                 "stamp=$(printf '%s\\n' \"$input\" | sed -n 3p)\n"
                 "printf '%s %s %s\\n' \"$user\" \"$*\" \"${stamp:+stamped}\" >> "
              << seen
              << "\n"
                 "case $user in down) exit 111;; hang) sleep 30;; esac\n"
                 "[ \"$user\" = alice ] && [ \"$pass\" = 's3cret word' ] && exec \"$@\"\n"
                 "exit 1\n";
        }
        ::chmod(script.c_str(), 0755);
        RecordingLog log;
        CheckPassword check(script, std::chrono::seconds(2), log);
        CHECK(check.check("alice", "s3cret word") == AuthVerdict::ok);
        CHECK(check.check("alice", "wrong") == AuthVerdict::refused);
        CHECK(check.check("down", "x") == AuthVerdict::temporary);
        CHECK(check.failure() == "exit status 111");
        CHECK(log.has("event=auth-error"));
        auto start = std::chrono::steady_clock::now();
        CHECK(check.check("hang", "x") == AuthVerdict::temporary);
        CHECK(check.failure() == "timed out");
        CHECK(std::chrono::steady_clock::now() - start < std::chrono::seconds(10));
        CHECK(check.check(std::string(300, 'u'), std::string(300, 'p')) == AuthVerdict::refused); // over 512 octets
        std::ifstream in(seen);
        std::string lines((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
        CHECK(lines == "alice true stamped\nalice true stamped\ndown true stamped\nhang true stamped\n");
        CheckPassword missing(dir.path() + "/no-such-program", std::chrono::seconds(2), log);
        CHECK(missing.check("alice", "s3cret word") == AuthVerdict::temporary);
        // The shell says why (its 127, POSIX XCU 2.8.2), as for hooks.
        CHECK(missing.failure().rfind("exit 127, command not found", 0) == 0);
    }
}
