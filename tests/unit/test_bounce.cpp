// Tests of the pure pieces of bounces and local delivery.
#include "delivery/bounce.hpp"
#include "delivery/local_deliverers.hpp"

#include <doctest/doctest.h>

using namespace smtpspool;

TEST_SUITE("bounce")
{
    TEST_CASE("enhanced status codes are taken from replies")
    {
        CHECK(status_code_of("550 5.1.1 no such user", "5.0.0") == "5.1.1");
        CHECK(status_code_of("452 4.2.2 mailbox full", "5.0.0") == "4.2.2");
        CHECK(status_code_of("550 no such user", "5.0.0") == "5.0.0");
        CHECK(status_code_of("pipe command exited 1", "5.0.0") == "5.0.0");
        CHECK(status_code_of("550 7.1.1 x", "5.0.0") == "5.0.0");
    }

    TEST_CASE("the header section stops at the empty line and at the limit")
    {
        CHECK(header_section("A: 1\r\nB: 2\r\n\r\nbody\r\n", 1000) == "A: 1\r\nB: 2\r\n");
        CHECK(header_section("A: 1\r\nB: 2\r\n\r\nbody\r\n", 8) == "A: 1\r\n");
    }

    TEST_CASE("the header section is whole header fields: never a message without an empty line")
    {
        // No empty line: the leading fields, not the lines after them.
        CHECK(header_section("Received: x\r\nSubject: hi\r\nSPAM line one\r\nSPAM line two\r\n", 1000) ==
              "Received: x\r\nSubject: hi\r\n");
        CHECK(header_section("just text, no fields\r\nmore text\r\n", 1000).empty());
        CHECK(header_section("no end", 1000).empty());
        // A last field the text ends inside is not known whole.
        CHECK(header_section("A: 1\r\nB: 2", 1000) == "A: 1\r\n");
        CHECK(header_section("A: 1\r\nB: 2\r\n", 1000) == "A: 1\r\n");
        CHECK(header_section("A: 1\r\nB: 2\r\nC", 1000) == "A: 1\r\nB: 2\r\n");
        // Folded fields stay whole; the cut is between fields, within the limit.
        CHECK(header_section("A: 1\r\n\tmore\r\nB: 2\r\n\r\n", 1000) == "A: 1\r\n\tmore\r\nB: 2\r\n");
        CHECK(header_section("A: 1\r\n\tmore\r\nB: 2\r\n\r\n", 13) == "A: 1\r\n\tmore\r\n");
        CHECK(header_section("A: 1\r\n\tmore\r\nB: 2\r\n\r\n", 12).empty());
        CHECK(header_section("A: 1\r\n\tmore", 1000).empty());
        // A continuation line needs a field before it; "Name :" is a field (obsolete syntax).
        CHECK(header_section(" A: 1\r\n\r\n", 1000).empty());
        CHECK(header_section("A : 1\r\n\r\n", 1000) == "A : 1\r\n");
        // A bare CR or LF inside a line ends the header section (BINARYMIME).
        CHECK(header_section("A: 1\r\nB: 2\nC: 3\r\n\r\n", 1000) == "A: 1\r\n");
    }

    TEST_CASE("a megabyte of header fields without an empty line: at most the limit, cut between fields")
    {
        std::string m;
        while (m.size() < (1u << 20)) {
            m += "X-Spam: visit http://spam.example/ now\r\n";
        }
        const std::string h = header_section(m, 4096);
        CHECK(h.size() <= 4096);
        CHECK(h.size() > 4096 - 40);
        CHECK(h.ends_with("now\r\n"));
        CHECK(m.starts_with(h));
    }

    TEST_CASE("CRLF becomes LF over any chunking")
    {
        std::string in = "a\r\nb\r\rc\r\n\r\n";
        for (std::size_t cut = 0; cut <= in.size(); ++cut) {
            LfConverter lf;
            std::string out = lf.convert(in.substr(0, cut));
            out += lf.convert(in.substr(cut));
            out += lf.finish();
            CHECK(out == "a\nb\r\rc\n\n");
        }
    }

    TEST_CASE("maildir paths are made safe")
    {
        CHECK(expand_maildir_path("/m/%d/%u", "Bob@Example.ORG", "me.test") == "/m/example.org/bob");
        CHECK(expand_maildir_path("/m/%u", "../../etc@x.test", "me.test") == "/m/___.._etc");
        CHECK(expand_maildir_path("/m/%u", "\"a/b c\"@x.test", "me.test") == "/m/a_b c");
        CHECK(expand_maildir_path("/m/%d/%u", "postmaster", "Me.Test") == "/m/me.test/postmaster");
        CHECK(expand_maildir_path("/m/%u%%", ".hidden@x.test", "me.test") == "/m/_hidden%%");
    }

    TEST_CASE("a report: ENVID, ORCPT, each action, and what of the message it returns")
    {
        Envelope e;
        e.id = "ORIG";
        e.received_at = "2026-11-22T02:35:25Z";
        e.mail_from = "alice@b.test";
        e.dsn_envid = "QQ 1";
        TimePoint now{std::chrono::seconds(1795000000)};
        std::vector<ReportedRecipient> failed{{"u@x.test", "550 5.1.1 no", false, Action::failed, "rfc822;U@X.test"},
                                              {"v@x.test", "disk on fire", false, Action::failed, std::nullopt}};
        BounceInput in{e, failed, "Subject: s\r\n", "mx.test", "BID", now};
        std::string m = compose_bounce(in);
        CHECK(m.find("Subject: Undelivered Mail Returned to Sender\r\n") != std::string::npos);
        CHECK(m.find("\r\n\r\nOriginal-Envelope-Id: QQ 1\r\nReporting-MTA: dns; mx.test\r\n") != std::string::npos);
        CHECK(m.find("\r\n\r\nOriginal-Recipient: rfc822; U@X.test\r\nFinal-Recipient: rfc822; u@x.test\r\nAction: "
                     "failed\r\nStatus: 5.1.1\r\nDiagnostic-Code: smtp; 550 5.1.1 no\r\n") != std::string::npos);
        CHECK(m.find("\r\n\r\nFinal-Recipient: rfc822; v@x.test\r\nAction: failed\r\nStatus: 5.0.0\r\n"
                     "Diagnostic-Code: x-local; disk on fire\r\n") != std::string::npos);
        CHECK(m.find("Content-Type: text/rfc822-headers\r\n\r\nSubject: s\r\n\r\n--BID/mx.test--\r\n") !=
              std::string::npos);

        in.original_message = "Subject: s\r\n\r\nbody";
        m = compose_bounce(in);
        CHECK(m.find("Content-Type: message/rfc822\r\n\r\nSubject: s\r\n\r\nbody\r\n\r\n--BID/mx.test--\r\n") !=
              std::string::npos);
        e.smtputf8 = true;
        CHECK(compose_bounce(in).find("Content-Type: message/global\r\n") != std::string::npos);
        in.original_message.reset();
        CHECK(compose_bounce(in).find("Content-Type: text/rfc822-headers\r\n") != std::string::npos);
        in.too_big_to_return = true;
        CHECK(compose_bounce(in).find("too big to be returned whole") != std::string::npos);

        std::vector<ReportedRecipient> good{{"u@x.test", "delivered to maildir /m/u", false, Action::delivered, {}},
                                            {"w@x.test", "250 2.0.0 ok", false, Action::relayed, {}}};
        BounceInput ok{e, good, "Subject: s\r\n", "mx.test", "BID2", now};
        m = compose_bounce(ok);
        CHECK(m.find("Subject: Successful Mail Delivery Report\r\n") != std::string::npos);
        CHECK(m.find("Final-Recipient: rfc822; u@x.test\r\nAction: delivered\r\nStatus: 2.0.0\r\nLast-Attempt-Date") !=
              std::string::npos);
        CHECK(m.find("Final-Recipient: rfc822; w@x.test\r\nAction: relayed\r\nStatus: 2.0.0\r\nDiagnostic-Code: smtp; "
                     "250 2.0.0 ok\r\n") != std::string::npos);
        CHECK(m.find("/m/u") == std::string::npos);
        CHECK(m.find("Action: failed") == std::string::npos);
    }

    TEST_CASE("a report for a UTF-8 address: message/global-delivery-status and the utf-8 address type (RFC 6533)")
    {
        Envelope e;
        e.id = "ORIG";
        e.received_at = "2026-11-22T02:35:25Z";
        e.mail_from = "j\xc3\xb6rg@client.test";
        e.smtputf8 = true;
        TimePoint now{std::chrono::seconds(1795000000)};
        std::vector<ReportedRecipient> failed{
            {"b\xc3\xb8" "b@x.test", "550 5.1.1 no", false, Action::failed, std::nullopt},
            {"\"a+b=c\\d\xc3\xa9\"@x.test", "550 5.1.1 no", false, Action::failed, std::nullopt},
            {"plain@x.test", "550 5.1.1 no", false, Action::failed, std::nullopt}};
        const std::string headers = "Subject: gr\xc3\xbc\xc3\x9f\r\n";
        BounceInput in{e, failed, headers, "mx.test", "BID", now};
        std::string m = compose_bounce(in);
        CHECK(m.find("Content-Type: multipart/report; report-type=delivery-status;") != std::string::npos);
        CHECK(m.find("Content-Type: message/global-delivery-status\r\n") != std::string::npos);
        CHECK(m.find("Content-Type: message/delivery-status\r\n") == std::string::npos);
        CHECK(m.find("\r\nFinal-Recipient: utf-8; b\xc3\xb8" "b@x.test\r\n") != std::string::npos);
        CHECK(m.find("\r\nFinal-Recipient: utf-8; \"a\\x{2B}b\\x{3D}c\\x{5C}d\xc3\xa9\"@x.test\r\n") !=
              std::string::npos);
        CHECK(m.find("\r\nFinal-Recipient: rfc822; plain@x.test\r\n") != std::string::npos);
        CHECK(m.find("rfc822; b\xc3\xb8") == std::string::npos);
        CHECK(m.find("Content-Type: message/global-headers\r\n\r\n" + headers) != std::string::npos);

        // ASCII addresses only: the RFC 3464 types, even for an SMTPUTF8 message.
        std::vector<ReportedRecipient> ascii{{"u@x.test", "550 5.1.1 no", false, Action::failed, std::nullopt}};
        BounceInput in2{e, ascii, "Subject: s\r\n", "mx.test", "BID2", now};
        m = compose_bounce(in2);
        CHECK(m.find("Content-Type: message/delivery-status\r\n") != std::string::npos);
        CHECK(m.find("global-delivery-status") == std::string::npos);
        CHECK(m.find("\r\nFinal-Recipient: rfc822; u@x.test\r\n") != std::string::npos);
        CHECK(m.find("Content-Type: text/rfc822-headers\r\n") != std::string::npos);
    }
}
