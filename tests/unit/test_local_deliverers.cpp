// Tests of the maildir and pipe transports with real files and processes.
#include "delivery/local_deliverers.hpp"
#include "testutil.hpp"

#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

using namespace smtpspool;
using namespace testutil;
using namespace std::chrono_literals;

namespace {

std::string slurp(const std::string& path)
{
    std::ifstream in(path, std::ios::binary);
    std::ostringstream s;
    s << in.rdbuf();
    return s.str();
}

struct Message {
    Message()
    {
        path = dir.path() + "/message.eml";
        std::ofstream(path, std::ios::binary) << "Received: x\r\nSubject: s\r\n\r\nline\r\n.dot\r\n";
        e.id = "ID-1";
        e.hostname = "mx.test";
        e.mail_from = "alice@b.test";
        for (auto a : {"bob@x.test", "carol@x.test"}) {
            Recipient r;
            r.address = a;
            e.recipients.push_back(r);
        }
    }
    TempDir dir;
    std::string path;
    Envelope e;
};

} // namespace

TEST_SUITE("local_deliverers")
{
    TEST_CASE("maildir: one file per recipient in new/, LF line ends, trace headers first")
    {
        Message m;
        MaildirDeliverer t(m.dir.path() + "/mail/%d/%u", "mx.test");
        auto out = t.deliver(Delivery{m.e, open_file(m.path), {0, 1}});
        REQUIRE(out.size() == 2);
        CHECK(out[0].outcome == Outcome::delivered);
        CHECK(out[1].outcome == Outcome::delivered);
        std::string bob = m.dir.path() + "/mail/x.test/bob";
        REQUIRE(count_entries(bob + "/new") == 1);
        CHECK(count_entries(bob + "/tmp") == 0);
        CHECK(std::filesystem::is_directory(bob + "/cur"));
        auto file = std::filesystem::directory_iterator(bob + "/new")->path().string();
        CHECK(slurp(file) ==
              "Return-Path: <alice@b.test>\nDelivered-To: bob@x.test\nReceived: x\nSubject: s\n\nline\n.dot\n");
        CHECK(count_entries(m.dir.path() + "/mail/x.test/carol/new") == 1);
    }

    TEST_CASE("maildir: an unwritable place is a temporary failure")
    {
        Message m;
        std::ofstream(m.dir.path() + "/file") << "x";
        MaildirDeliverer t(m.dir.path() + "/file/%u", "mx.test");
        auto out = t.deliver(Delivery{m.e, open_file(m.path), {0}});
        CHECK(out[0].outcome == Outcome::temporary);
        CHECK(out[0].detail.find("cannot create maildir") != std::string::npos);
    }

    TEST_CASE("pipe: environment, input, and exit statuses")
    {
        Message m;
        std::string log = m.dir.path() + "/log";
        PipeDeliverer ok("{ echo \"$SENDER|$RECIPIENT|$LOCAL|$DOMAIN|$MESSAGE_ID|$SMTPSPOOL_SPOOL\"; cat; } >> " + log,
                         "/spool", "mx.test", 10s);
        auto out = ok.deliver(Delivery{m.e, open_file(m.path), {0}});
        REQUIRE(out.size() == 1);
        CHECK(out[0].outcome == Outcome::delivered);
        CHECK(slurp(log) == "alice@b.test|bob@x.test|bob|x.test|ID-1|/spool\nReturn-Path: <alice@b.test>\n"
                            "Delivered-To: bob@x.test\nReceived: x\nSubject: s\n\nline\n.dot\n");
        PipeDeliverer later("cat >/dev/null; exit 75", "/spool", "mx.test", 10s);
        CHECK(later.deliver(Delivery{m.e, open_file(m.path), {0}})[0].outcome == Outcome::temporary);
        PipeDeliverer refuse("echo 'no such list' >&2; exit 67", "/spool", "mx.test", 10s);
        auto r = refuse.deliver(Delivery{m.e, open_file(m.path), {1}});
        CHECK(r[0].outcome == Outcome::permanent);
        CHECK(r[0].detail == "pipe command exited 67: no such list");
        PipeDeliverer slow("sleep 5", "/spool", "mx.test", 1s);
        auto s = slow.deliver(Delivery{m.e, open_file(m.path), {0}});
        CHECK(s[0].outcome == Outcome::temporary);
        CHECK(s[0].detail == "pipe command timed out after 1 s");
    }

    TEST_CASE("pipe: addresses never reach the shell as code")
    {
        Message m;
        std::string marker = m.dir.path() + "/pwned";
        m.e.recipients[0].address = "\"$(touch " + marker + ")\"@x.test";
        PipeDeliverer t("cat >/dev/null; test -n \"$RECIPIENT\"", "/spool", "mx.test", 10s);
        CHECK(t.deliver(Delivery{m.e, open_file(m.path), {0}})[0].outcome == Outcome::delivered);
        CHECK_FALSE(std::filesystem::exists(marker));
    }

    TEST_CASE("one Maildir and one $LOCAL per canonical local part")
    {
        for (std::string_view a : {"alice@mx.test", "Alice@mx.test", "ALICE@MX.TEST", "\"alice\"@mx.test",
                                   "\"A\\lice\"@mx.test"}) {
            INFO(a);
            CHECK(expand_maildir_path("/m/%d/%u", a, "me.test") == "/m/mx.test/alice");
        }
        CHECK(expand_maildir_path("/m/%u", "\"John Smith\"@mx.test", "me.test") == "/m/john smith");
        Message m;
        std::string log = m.dir.path() + "/log";
        m.e.recipients[0].address = "\"Alice\"@X.test";
        PipeDeliverer p("cat >/dev/null; printf '%s|%s\\n' \"$LOCAL\" \"$RECIPIENT\" >> " + log, "/spool", "mx.test",
                        10s);
        CHECK(p.deliver(Delivery{m.e, open_file(m.path), {0}})[0].outcome == Outcome::delivered);
        CHECK(slurp(log) == "alice|\"Alice\"@X.test\n");
    }

    TEST_CASE("pipe: a local part like an option or a glob arrives literally when quoted after --")
    {
        Message m;
        std::string log = m.dir.path() + "/log";
        // The command as smtpspool-runq(8) shows it, "$LOCAL" after --, in a
        // directory with files (an unquoted * would list them); printf shows
        // each argument the program got in <>.
        PipeDeliverer p("cat >/dev/null; cd " + m.dir.path() + " && printf '<%s>' -- \"$LOCAL\" >> " + log +
                            " && echo >> " + log,
                        "/spool", "mx.test", 10s);
        for (std::string_view a : {"-rf@x.test", "*@x.test", "\"a b\"@x.test", "-n@x.test"}) {
            m.e.recipients[0].address = std::string(a);
            CHECK(p.deliver(Delivery{m.e, open_file(m.path), {0}})[0].outcome == Outcome::delivered);
        }
        CHECK(slurp(log) == "<--><-rf>\n<--><*>\n<--><a b>\n<--><-n>\n");
    }
}
