// Tests of the mailq table and JSON lines.
#include "model/envelope.hpp"
#include "spool/envelope_json.hpp"
#include "cli/lister.hpp"

#include <doctest/doctest.h>

using namespace smtpspool;

namespace {

Envelope env(const std::string& id, std::uint64_t size)
{
    Envelope e;
    e.id = id;
    e.received_at = "2026-11-22T02:35:25Z";
    e.hostname = "mx.test";
    e.client.helo = "c";
    e.mail_from = "a@b.test";
    e.size = size;
    Recipient r;
    r.address = "u@mx.test";
    Recipient f;
    f.address = "v\x1b[31m@mx.test";
    f.status = RecipientStatus::failed;
    f.attempts = 2;
    f.last_error = "550 no";
    e.recipients = {r, f};
    return e;
}

} // namespace

TEST_SUITE("lister")
{
    TEST_CASE("an empty queue says so")
    {
        CHECK(format_table({}) == "Mail queue is empty\n");
        CHECK(format_json_lines({}).empty());
    }

    TEST_CASE("the table lists sender, recipients with status, and a total")
    {
        std::vector<QueueEntry> entries{{"A1", env("A1", 2048), ""}, {"B2", std::nullopt, "missing key \"id\""}};
        std::string t = format_table(entries);
        CHECK(t.find("-Queue ID-") == 0);
        CHECK(t.find("A1         ") != std::string::npos);
        CHECK(t.find("      2048 2026-11-22T02:35:25Z <a@b.test>\n") != std::string::npos);
        CHECK(t.find("<u@mx.test> pending\n") != std::string::npos);
        CHECK(t.find("<v\\x1b[31m@mx.test> failed, 2 attempts: 550 no\n") != std::string::npos);
        CHECK(t.find("B2         (unreadable: missing key \"id\")") != std::string::npos);
        CHECK(t.find("-- 2 Kbytes in 1 message, 1 unreadable\n") != std::string::npos);
        CHECK(t.find('\x1b') == std::string::npos);
        CHECK(t.find("delivery run") == std::string::npos);
        Envelope tried = env("C3", 10);
        tried.attempts = 1;
        tried.last_attempt = "2026-11-22T03:00:00Z";
        tried.next_attempt = "2026-11-22T03:30:00Z";
        std::string t2 = format_table({{"C3", tried, ""}});
        CHECK(t2.find("(1 delivery run, last 2026-11-22T03:00:00Z, next 2026-11-22T03:30:00Z)\n") != std::string::npos);
    }

    TEST_CASE("the table names the next hop tried last for a recipient not yet delivered")
    {
        Envelope e = env("A1", 10);
        e.recipients[0].attempts = 1;
        e.recipients[0].last_hop = "mx.test[192.0.2.1]:25";
        e.recipients[0].last_error = "connection to 192.0.2.1:25 refused";
        e.recipients[1].last_hop = "mx.test[192.0.2.1]:25\x1b";
        std::string t = format_table({{"A1", e, ""}});
        CHECK(t.find("<u@mx.test> pending, 1 attempt: connection to 192.0.2.1:25 refused (last tried "
                     "mx.test[192.0.2.1]:25)\n") != std::string::npos);
        CHECK(t.find(": 550 no (last tried mx.test[192.0.2.1]:25\\x1b)\n") != std::string::npos);
        e.recipients[0].status = RecipientStatus::delivered;
        e.recipients[0].last_error.reset();
        CHECK(format_table({{"A1", e, ""}}).find("<u@mx.test> delivered, 1 attempt\n") != std::string::npos);
    }

    TEST_CASE("the table keeps UTF-8 for a UTF-8 terminal, and escapes it for any other")
    {
        Envelope e = env("U1", 10);
        e.mail_from = "j\xc3\xb6rg@cl\xc3\xaf" "ent.example";
        e.recipients.front().address = "\xe7\x94\xa8@\xe2\x80\xaemx.test";
        std::string utf8 = format_table({{"U1", e, ""}}, true);
        CHECK(utf8.find("<j\xc3\xb6rg@cl\xc3\xaf" "ent.example>\n") != std::string::npos);
        CHECK(utf8.find("<\xe7\x94\xa8@\\xe2\\x80\\xaemx.test>") != std::string::npos);
        CHECK(utf8.find("<v\\x1b[31m@mx.test> failed") != std::string::npos);
        std::string ascii = format_table({{"U1", e, ""}}, false);
        CHECK(ascii.find("<j\\xc3\\xb6rg@cl\\xc3\\xafent.example>\n") != std::string::npos);
        CHECK(ascii.find("<\\xe7\\x94\\xa8@\\xe2\\x80\\xaemx.test>") != std::string::npos);
    }

    TEST_CASE("JSON lines: one object per message, errors as objects too")
    {
        std::vector<QueueEntry> entries{{"A1", env("A1", 10), ""}, {"B2", std::nullopt, "bad"}};
        std::string j = format_json_lines(entries);
        auto nl = j.find('\n');
        REQUIRE(nl != std::string::npos);
        auto first = envelope_from_json(j.substr(0, nl));
        REQUIRE(first.ok());
        CHECK(first.value().id == "A1");
        CHECK(j.substr(nl + 1) == "{\"id\":\"B2\",\"error\":\"bad\"}\n");
    }

    TEST_CASE("JSON lines: C1 controls and bidirectional overrides are \\u escapes, the values unchanged")
    {
        Envelope e = env("C3", 10);
        e.mail_from = "a\xc2\x9b" "2J@b.example";
        e.recipients[0].address = "x\xe2\x80\xae" "gpj.exe@mx.example";
        std::string j = format_json_lines({{"C3", e, ""}, {"D4", std::nullopt, "bad \xc2\x9b" "31m"}});
        CHECK(j.find("\xc2\x9b") == std::string::npos);
        CHECK(j.find("\xe2\x80\xae") == std::string::npos);
        CHECK(j.find("\\u009b2J@b.example") != std::string::npos);
        CHECK(j.find("\\u202egpj.exe") != std::string::npos);
        CHECK(j.find("\"error\":\"bad \\u009b31m\"") != std::string::npos);
        auto first = envelope_from_json(j.substr(0, j.find('\n')));
        REQUIRE(first.ok());
        CHECK(first.value().mail_from == e.mail_from);
        CHECK(first.value().recipients[0].address == e.recipients[0].address);
    }
}
