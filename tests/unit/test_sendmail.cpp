// Tests of the sendmail(8) interface's pure parts: its flags and the address
// lists of To:, Cc: and Bcc:.
#include "cli/sendmail.hpp"

#include <doctest/doctest.h>

using namespace smtpspool;

namespace {

SendmailOptions ok(std::vector<std::string> args)
{
    auto r = parse_sendmail_args(args);
    if (auto* e = std::get_if<std::string>(&r)) {
        FAIL(*e);
    }
    return std::get<SendmailOptions>(r);
}

std::string error(std::vector<std::string> args)
{
    auto r = parse_sendmail_args(args);
    REQUIRE(std::holds_alternative<std::string>(r));
    return std::get<std::string>(r);
}

using Strings = std::vector<std::string>;

} // namespace

TEST_SUITE("sendmail")
{
    TEST_CASE("the flags cron, mail(1) and scripts use")
    {
        auto o = ok({"-oi", "-t", "-f", "root@example.org", "-Fthe admin", "a@b.test", "c"});
        CHECK(o.mode == SendmailOptions::Mode::submit);
        CHECK(o.extract);
        CHECK_FALSE(o.dot_ends);
        CHECK(o.sender == "root@example.org");
        CHECK(o.full_name == "the admin");
        CHECK(o.recipients == Strings{"a@b.test", "c"});
        CHECK(ok({"-fme@x.test"}).sender == "me@x.test");
        CHECK(ok({"-r", "me@x.test"}).sender == "me@x.test");
        CHECK(ok({"-i"}).dot_ends == false);
        CHECK(ok({}).dot_ends == true);
        CHECK(ok({"-oem", "-odb", "-v", "-B", "8BITMIME", "-N", "never", "x"}).recipients == Strings{"x"});
        CHECK(ok({"--", "-not-a-flag"}).recipients == Strings{"-not-a-flag"});
    }

    TEST_CASE("modes: -bp, -q, -qTIME, -bs, -bm")
    {
        CHECK(ok({"-bp"}).mode == SendmailOptions::Mode::list_queue);
        CHECK(ok({"-q"}).mode == SendmailOptions::Mode::run_queue);
        CHECK_FALSE(ok({"-q"}).interval);
        CHECK(ok({"-q30m"}).interval == "30m");
        CHECK(ok({"-bs"}).mode == SendmailOptions::Mode::smtp);
        CHECK(ok({"-bp", "-bm"}).mode == SendmailOptions::Mode::submit);
    }

    TEST_CASE("-bi, -I, -bv, -qf; -q followed by anything but f or a time is refused")
    {
        CHECK(ok({"-bi"}).mode == SendmailOptions::Mode::check_aliases);
        CHECK(ok({"-I"}).mode == SendmailOptions::Mode::check_aliases);
        CHECK(ok({"-bv", "a@x.test"}).mode == SendmailOptions::Mode::verify);
        CHECK(ok({"-qf"}).mode == SendmailOptions::Mode::run_queue);
        CHECK_FALSE(ok({"-qf"}).interval);
        CHECK_FALSE(ok({"-q1h", "-qf"}).interval);
        CHECK(error({"-qR"}).find("unsupported flag -qR") != std::string::npos);
        CHECK(error({"-qff"}).find("unsupported flag -qff") != std::string::npos);
    }

    TEST_CASE("-N, -R and -V are the DSN requests NOTIFY, RET and ENVID")
    {
        auto o = ok({"-N", "success,Delay", "-Rhdrs", "-V", "id+2B1", "a"});
        CHECK(o.notify == Strings{"SUCCESS", "DELAY"});
        CHECK(o.ret == "HDRS");
        CHECK(o.envid == "id+1");
        CHECK(ok({"-Nnever"}).notify == Strings{"NEVER"});
        CHECK(ok({"-R", "FULL"}).ret == "FULL");
        CHECK_FALSE(ok({"a"}).notify);
        CHECK_FALSE(ok({"a"}).ret);
        CHECK_FALSE(ok({"a"}).envid);
        CHECK(error({"-N", "never,success"}).find("-N needs") != std::string::npos);
        CHECK(error({"-N", "sometimes"}).find("-N needs") != std::string::npos);
        CHECK(error({"-N"}).find("-N needs") != std::string::npos);
        CHECK(error({"-R", "body"}).find("-R needs full or hdrs") != std::string::npos);
        CHECK(error({"-V", "a b"}).find("-V needs an envelope id") != std::string::npos);
        CHECK(error({"-V", "+zz"}).find("-V needs an envelope id") != std::string::npos);
    }

    TEST_CASE("-O option=value (IgnoreDots is -oi), -G, and the error modes -e/-oe p, m, e, w, q")
    {
        CHECK(ok({"-O", "DeliveryMode=b", "-ODeliveryMode=i", "a"}).recipients == Strings{"a"});
        CHECK_FALSE(ok({"-O", "IgnoreDots=true"}).dot_ends);
        CHECK_FALSE(ok({"-OIgnoreDots=yes"}).dot_ends);
        CHECK(ok({"-oi", "-O", "ignoredots=false"}).dot_ends);
        CHECK(error({"-O", "IgnoreDots=maybe"}).find("IgnoreDots") != std::string::npos);
        CHECK(error({"-O", "DeliveryMode"}).find("-O needs option=value") != std::string::npos);
        CHECK(error({"-O"}).find("-O needs option=value") != std::string::npos);
        CHECK(ok({"-G", "a"}).recipients == Strings{"a"});
        for (std::string m : {"-ep", "-em", "-ee", "-ew", "-oep", "-oem", "-oee", "-oew"}) {
            CHECK_FALSE(ok({m}).quiet);
        }
        CHECK(ok({"-eq"}).quiet);
        CHECK(ok({"-oeq"}).quiet);
        CHECK(error({"-ex"}).find("unknown flag -ex") != std::string::npos);
    }

    TEST_CASE("our own long options pass through; -C is --config")
    {
        auto o = ok({"--spool", "/tmp/s", "--config=/etc/x.conf", "-C", "/etc/y.conf", "--log", "none", "a"});
        CHECK(o.ours ==
              Strings{"--spool", "/tmp/s", "--config=/etc/x.conf", "--config", "/etc/y.conf", "--log", "none"});
        CHECK(o.recipients == Strings{"a"});
    }

    TEST_CASE("usage errors are named")
    {
        CHECK(error({"-f"}).find("-f needs") != std::string::npos);
        CHECK(error({"-bx"}).find("unknown flag -bx") != std::string::npos);
        CHECK(error({"-X"}).find("unknown flag") != std::string::npos);
        CHECK(error({"--route", "x"}).find("unknown option --route") != std::string::npos);
        CHECK(error({"--spool"}).find("needs a value") != std::string::npos);
        CHECK(error({"-F"}).find("-F needs") != std::string::npos);
    }

    TEST_CASE("address lists: names, quotes, comments, groups, routes")
    {
        CHECK(header_addresses(" Bob <bob@example.org>, carol@example.net") ==
              Strings{"bob@example.org", "carol@example.net"});
        CHECK(header_addresses("\"Smith, John\" <js@x.test>, \"a<b>\" <q@x.test>") == Strings{"js@x.test", "q@x.test"});
        CHECK(header_addresses("dave@x.test (Dave, at home), (comment (nested)) e@x.test") ==
              Strings{"dave@x.test", "e@x.test"});
        CHECK(header_addresses("team: a@x.test, b@x.test;, c@x.test") == Strings{"a@x.test", "b@x.test", "c@x.test"});
        CHECK(header_addresses("undisclosed-recipients:;") == Strings{});
        CHECK(header_addresses(" <@relay.test:f@x.test>") == Strings{"@relay.test:f@x.test"});
        CHECK(header_addresses("\"quoted local\"@x.test") == Strings{"\"quoted local\"@x.test"});
        CHECK(header_addresses("a@x.test,\r\n b@x.test") == Strings{"a@x.test", "b@x.test"});
        CHECK(header_addresses("") == Strings{});
        // The null address is kept, for the caller to refuse.
        CHECK(header_addresses("<>, a@x.test") == Strings{"<>", "a@x.test"});
        CHECK(header_addresses("Nobody <>") == Strings{"<>"});
        CHECK(header_addresses(" , ,") == Strings{});
        // Folded inside a quoted string or after a backslash: unfolded, no line end kept (found by fuzz_sendmail).
        CHECK(header_addresses("\"a\r\n b\"@x.test, \"c\\\r\n d\"@x.test") == Strings{"\"a b\"@x.test", "\"c\\ d\"@x.test"});
    }

    TEST_CASE("lines end in CRLF whatever ended them, at any chunking; the header section stops at the body")
    {
        std::string_view text = "To: a@x.test\r\n b@x.test\nSubject: s\r\rbody\r\nlast";
        Strings whole, bytewise;
        for (std::size_t chunk : {text.size(), std::size_t{1}}) {
            LineSplitter split;
            Strings& out = chunk == 1 ? bytewise : whole;
            std::string line;
            for (std::size_t i = 0; i < text.size(); i += chunk) {
                std::string_view piece = text.substr(i, chunk);
                while (split.take(piece, line)) {
                    out.push_back(line);
                }
            }
            CHECK(split.finish(line));
            out.push_back(line);
            CHECK_FALSE(split.finish(line));
        }
        CHECK(whole == Strings{"To: a@x.test\r\n", " b@x.test\r\n", "Subject: s\r\n", "\r\n", "body\r\n", "last\r\n"});
        CHECK(bytewise == whole);
        HeaderSection h;
        CHECK(h.add(whole[0]) == HeaderSection::Step::more);
        CHECK(h.add(whole[1]) == HeaderSection::Step::more);
        CHECK(h.add(whole[2]) == HeaderSection::Step::more);
        CHECK(h.add(whole[3]) == HeaderSection::Step::body);
        REQUIRE(h.fields.size() == 2);
        CHECK(h.fields[0].name == "to");
        CHECK(h.fields[0].text == "To: a@x.test\r\n b@x.test\r\n");
        CHECK(h.first_body_line == "\r\n");
        CHECK(h.size == whole[0].size() + whole[1].size() + whole[2].size());
        HeaderSection no_blank;
        CHECK(no_blank.add("not a field\r\n") == HeaderSection::Step::body);
        CHECK(no_blank.fields.empty());
    }

    TEST_CASE("a first line \"From \" or \">From \" (an mbox separator) is skipped; later ones are not")
    {
        for (std::string sep : {"From 915c9b6 Mon Sep 17 00:00:00 2001\r\n", ">From alice@x.test Mon Jan  1 00:00:00 2024\r\n"}) {
            HeaderSection h;
            CHECK(h.add(sep) == HeaderSection::Step::more);
            CHECK(h.add("From: Dev <dev@x.test>\r\n") == HeaderSection::Step::more);
            CHECK(h.add("To: maint@x.test\r\n") == HeaderSection::Step::more);
            CHECK(h.add("\r\n") == HeaderSection::Step::body);
            CHECK(h.skipped_from_line);
            REQUIRE(h.fields.size() == 2);
            CHECK(h.fields[0].name == "from");
            CHECK(h.size == std::string("From: Dev <dev@x.test>\r\nTo: maint@x.test\r\n").size());
        }
        HeaderSection later;
        CHECK(later.add("Subject: s\r\n") == HeaderSection::Step::more);
        CHECK(later.add("From x Mon Jan  1 00:00:00 2024\r\n") == HeaderSection::Step::body);
        CHECK_FALSE(later.skipped_from_line);
        HeaderSection field;
        CHECK(field.add("From: a@x.test\r\n") == HeaderSection::Step::more);
        CHECK_FALSE(field.skipped_from_line);
        REQUIRE(field.fields.size() == 1);
        HeaderSection huge;
        CHECK(huge.add("From " + std::string(2 << 20, 'x')) == HeaderSection::Step::too_long);
    }

    TEST_CASE("a line longer than the piece size comes in pieces, at any chunking; the pieces say where lines begin")
    {
        std::string_view text = "abcdefg\n.\r\nxyz\rabcd";
        for (std::size_t chunk : {text.size(), std::size_t{1}, std::size_t{3}}) {
            LineSplitter split(4);
            std::vector<std::pair<std::string, bool>> pieces; // piece, starts a line
            std::vector<bool> ends;
            std::string line;
            for (std::size_t i = 0; i < text.size(); i += chunk) {
                std::string_view piece = text.substr(i, chunk);
                while (split.take(piece, line)) {
                    CHECK(line.size() <= 4 + 2);
                    pieces.emplace_back(line, split.starts_line());
                    ends.push_back(split.ends_line());
                }
            }
            if (split.finish(line)) {
                pieces.emplace_back(line, split.starts_line());
                ends.push_back(split.ends_line());
            }
            CHECK_FALSE(split.finish(line));
            INFO("chunk " << chunk);
            CHECK(pieces == std::vector<std::pair<std::string, bool>>{{"abcd", true},
                                                                       {"efg\r\n", false},
                                                                       {".\r\n", true},
                                                                       {"xyz\r\n", true},
                                                                       {"abcd", true},
                                                                       {"\r\n", false}});
            CHECK(ends == std::vector<bool>{false, true, true, true, false, true});
        }
    }

    TEST_CASE("local_header_section: our Received: first, Bcc: and Resent-Bcc: dropped, Date/Message-ID/From added when missing")
    {
        HeaderSection h;
        for (const char* line : {"Resent-Bcc: hidden@x.test,\r\n", " other@x.test\r\n", "To: a@x.test\r\n",
                                 "Bcc: secret@x.test\r\n", "Subject: hi\r\n", "RESENT-BCC:\r\n", "\r\n"}) {
            h.add(line);
        }
        LocalSubmission s;
        s.hostname = "host.test";
        s.id = "ID1";
        s.date = "Sun, 06 Dec 2026 01:00:00 +0000";
        s.user = "alice";
        s.uid = 1000;
        s.sender = "alice@host.test";
        s.full_name = "Alice \"A\" Liddell";
        CHECK(local_header_section(h, s) ==
              "Received: by host.test (smtpspool sendmail, from userid 1000)\r\n\tid ID1; Sun, 06 Dec 2026 01:00:00 +0000\r\n"
              "To: a@x.test\r\nSubject: hi\r\n"
              "Date: Sun, 06 Dec 2026 01:00:00 +0000\r\n"
              "Message-ID: <ID1@host.test>\r\n"
              "From: \"Alice \\\"A\\\" Liddell\" <alice@host.test>\r\n");
        HeaderSection complete;
        for (const char* line : {"From: b@y.test\r\n", "Date: x\r\n", "Message-ID: <m@y>\r\n", "\r\n"}) {
            complete.add(line);
        }
        s.sender = "";
        s.full_name.reset();
        std::string out = local_header_section(complete, s);
        CHECK(out.find("\r\nFrom: b@y.test\r\nDate: x\r\nMessage-ID: <m@y>\r\n") != std::string::npos);
        CHECK(out.rfind("Message-ID:") == out.find("Message-ID:")); // not added twice
    }
}
