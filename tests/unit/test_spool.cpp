// Tests of the spool on a real temporary directory: the commit protocol, a
// failure injected at every step, ids, the stale-tmp sweep, the reader.
#include "base/limits.hpp"
#include "base/text.hpp"
#include "spool/envelope_json.hpp"
#include "spool/spool.hpp"
#include "testutil.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <limits>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <sys/stat.h>
#include <utime.h>

using namespace smtpspool;
using namespace testutil;

namespace {

Envelope small_envelope()
{
    Envelope e;
    e.received_at = "2026-11-22T02:35:25Z";
    e.hostname = "mx.test";
    e.client.helo = "c.test";
    e.mail_from = "a@b.test";
    Recipient r;
    r.address = "u@mx.test";
    e.recipients = {r};
    return e;
}

std::string slurp(const std::string& path)
{
    std::ifstream in(path, std::ios::binary);
    std::ostringstream s;
    s << in.rdbuf();
    return s.str();
}

// Runs begin/append/commit; returns the commit's result (or the first failure).
Result<void> store(SpoolWriter& w, const std::string& body, Envelope& e)
{
    auto id = w.begin();
    if (!id) {
        return id.error();
    }
    for (std::size_t i = 0; i < body.size(); i += 50000) {
        if (auto r = w.append(std::string_view(body).substr(i, 50000)); !r) {
            return r;
        }
    }
    return w.commit(e);
}

} // namespace

TEST_SUITE("spool")
{
    TEST_CASE("a committed message is complete in queue/ and nothing stays in tmp/")
    {
        TempDir dir;
        REQUIRE(ensure_spool_layout(dir.path()).ok());
        PosixFs fs;
        FixedClock clock(TimePoint(std::chrono::seconds(1795000000)));
        SpoolWriter w(dir.path(), fs, clock, 4242);
        Envelope e = small_envelope();
        std::string body = "Subject: x\r\n\r\n" + std::string(200000, 'b') + "\r\n";
        REQUIRE(store(w, body, e).ok());
        CHECK(e.size == body.size());
        CHECK(e.id.find("-4242-") != std::string::npos);
        CHECK(slurp(message_path(dir.path(), e.id)) == body);
        auto back = load_envelope(dir.path(), e.id);
        REQUIRE(back.ok());
        CHECK(back.value().size == body.size());
        CHECK(back.value().content == Content::seven_bit);
        CHECK(count_entries(dir.path() + "/tmp") == 0);
        struct stat st {};
        REQUIRE(::stat(message_path(dir.path(), e.id).c_str(), &st) == 0);
        CHECK((st.st_mode & 0777) == 0600);
    }

    TEST_CASE("the envelope records what the stored octets are, prepended ones included")
    {
        TempDir dir;
        REQUIRE(ensure_spool_layout(dir.path()).ok());
        PosixFs fs;
        FixedClock clock(TimePoint(std::chrono::seconds(1795000000)));
        SpoolWriter w(dir.path(), fs, clock, 4242);
        auto stored = [&](const std::string& prepended, const std::string& body) {
            Envelope e = small_envelope();
            REQUIRE(w.begin().ok());
            REQUIRE(w.append(body).ok());
            if (!prepended.empty()) {
                REQUIRE(w.prepend(prepended).ok());
            }
            REQUIRE(w.commit(e).ok());
            auto back = load_envelope(dir.path(), e.id);
            REQUIRE(back.ok());
            return back.value().content;
        };
        CHECK(stored("", "Subject: x\r\n\r\nplain\r\n") == Content::seven_bit);
        CHECK(stored("", "Subject: x\r\n\r\ncaf\xc3\xa9\r\n") == Content::eight_bit);
        CHECK(stored("X-Hook: \xc3\xa9\r\n", "Subject: x\r\n\r\nplain\r\n") == Content::eight_bit);
        CHECK(stored("", std::string("bin\0ary\r\n", 9)) == Content::binary);
        CHECK(stored("", "bare\nlf") == Content::binary);
        CHECK(stored("X-Hook: y\r\n", "a\xc3\xa9\r") == Content::binary);
    }

    TEST_CASE("a failure at any step leaves nothing in queue/ or tmp/")
    {
        // Count the calls of a successful commit, then fail each one in turn.
        TempDir probe_dir;
        REQUIRE(ensure_spool_layout(probe_dir.path()).ok());
        FaultyFs probe;
        FixedClock clock(TimePoint(std::chrono::seconds(1795000000)));
        {
            SpoolWriter w(probe_dir.path(), probe, clock, 1);
            Envelope e = small_envelope();
            REQUIRE(store(w, std::string(150000, 'x'), e).ok());
        }
        int total = probe.calls;
        REQUIRE(total >= 10); // mkdir, open, writes, fsync, close, envelope, dir fsync, rename, queue fsync
        int reported = 0;
        for (int step = 1; step <= total; ++step) {
            for (int err : {EIO, ENOSPC}) {
                TempDir dir;
                REQUIRE(ensure_spool_layout(dir.path()).ok());
                FaultyFs fs;
                fs.fail_at = step;
                fs.err = err;
                SpoolWriter w(dir.path(), fs, clock, 1);
                Envelope e = small_envelope();
                std::string body(150000, 'x');
                auto r = store(w, body, e);
                INFO("failing call " << step << " of " << total << " with errno " << err);
                CHECK(count_entries(dir.path() + "/tmp") == 0);
                if (r.ok()) {
                    // Only a failed close(2) of a directory opened for fsync is
                    // harmless; then the message must be complete.
                    REQUIRE(count_entries(dir.path() + "/queue") == 1);
                    CHECK(slurp(message_path(dir.path(), e.id)) == body);
                    CHECK(load_envelope(dir.path(), e.id).ok());
                } else {
                    ++reported;
                    CHECK(r.error().errnum == err);
                    CHECK(is_storage_full(r.error()) == (err == ENOSPC));
                    CHECK(count_entries(dir.path() + "/queue") == 0);
                }
                // The writer is usable again after a failure.
                fs.fail_at = 0;
                Envelope again = small_envelope();
                CHECK(store(w, "ok\r\n", again).ok());
            }
        }
        // Two directory closes per commit are the only calls allowed to fail unnoticed.
        CHECK(reported == 2 * (total - 2));
    }

    TEST_CASE("a rewrite stores the edited message; size and content are those of the new octets")
    {
        TempDir dir;
        REQUIRE(ensure_spool_layout(dir.path()).ok());
        PosixFs fs;
        FixedClock clock(TimePoint(std::chrono::seconds(1795000000)));
        SpoolWriter w(dir.path(), fs, clock, 4242);
        auto rewritten = [&](const std::string& original, const MessageEdits& edits, const std::string& hook) {
            Envelope e = small_envelope();
            REQUIRE(w.begin().ok());
            REQUIRE(w.append(original).ok());
            REQUIRE(w.rewrite(edits).ok());
            if (!hook.empty()) {
                REQUIRE(w.prepend(hook).ok());
            }
            REQUIRE(w.commit(e).ok());
            CHECK(count_entries(dir.path() + "/tmp") == 0);
            auto back = load_envelope(dir.path(), e.id);
            REQUIRE(back.ok());
            std::string stored = slurp(message_path(dir.path(), e.id));
            CHECK(back.value().size == stored.size());
            return std::make_pair(stored, back.value().content);
        };
        MessageEdits edits;
        edits.headers.push_back({HeaderEdit::Kind::add, "X-Spam", "no", 0});
        edits.body = "plain\n";
        // 8-bit before, 7-bit after; larger than one read.
        std::string big = "Subject: x\r\n\r\n" + std::string(200000, 'x') + "\xc3\xa9\r\n";
        auto [m1, c1] = rewritten(big, edits, "");
        CHECK(m1 == "Subject: x\r\nX-Spam: no\r\n\r\nplain\r\n");
        CHECK(c1 == Content::seven_bit);
        // 7-bit before, 8-bit after, a data hook's lines on top.
        MessageEdits eight;
        eight.headers.push_back({HeaderEdit::Kind::change, "Subject", "caf\xc3\xa9", 1});
        auto [m2, c2] = rewritten("Subject: x\r\n\r\n" + std::string(100000, 'y') + "\r\n", eight, "X-Hook: 1\r\n");
        CHECK(m2 == "X-Hook: 1\r\nSubject: caf\xc3\xa9\r\n\r\n" + std::string(100000, 'y') + "\r\n");
        CHECK(c2 == Content::eight_bit);
        // A header section too large to edit: EFBIG, nothing left.
        REQUIRE(w.begin().ok());
        REQUIRE(w.append("A: " + std::string(limits::k_max_edited_header_section, 'a') + "\r\n\r\n").ok());
        auto r = w.rewrite(edits);
        REQUIRE(!r);
        CHECK(is_file_too_big(r.error()));
        CHECK(count_entries(dir.path() + "/tmp") == 0);
    }

    TEST_CASE("read_message gives the open message as it stands: appended, prepended, rewritten; a failure aborts it")
    {
        TempDir dir;
        REQUIRE(ensure_spool_layout(dir.path()).ok());
        PosixFs fs;
        FixedClock clock(TimePoint(std::chrono::seconds(1795000000)));
        SpoolWriter w(dir.path(), fs, clock, 4242);
        auto read = [&]() {
            std::string got;
            std::size_t pieces = 0;
            REQUIRE(w.read_message([&](std::string_view piece) {
                got.append(piece);
                ++pieces;
            }).ok());
            CHECK(pieces >= 1);
            return got;
        };
        CHECK(!w.read_message([](std::string_view) {}).ok()); // none open
        REQUIRE(w.begin().ok());
        const std::string body = std::string(200000, 'b') + "\r\n";
        REQUIRE(w.append("Subject: x\r\n\r\n").ok());
        REQUIRE(w.append(body).ok()); // more than one buffer, the last still buffered
        CHECK(read() == "Subject: x\r\n\r\n" + body);
        CHECK(read() == "Subject: x\r\n\r\n" + body); // as often as asked
        REQUIRE(w.prepend("X-Hook: 1\r\n").ok());
        MessageEdits edits;
        edits.headers.push_back({HeaderEdit::Kind::add, "X-Spam", "no", 0});
        REQUIRE(w.rewrite(edits).ok());
        REQUIRE(w.append("tail\r\n").ok());
        CHECK(read() == "X-Hook: 1\r\nSubject: x\r\nX-Spam: no\r\n\r\n" + body + "tail\r\n");
        Envelope e = small_envelope();
        REQUIRE(w.commit(e).ok());
        CHECK(slurp(message_path(dir.path(), e.id)) == "X-Hook: 1\r\nSubject: x\r\nX-Spam: no\r\n\r\n" + body + "tail\r\n");

        // A read failing at any step: an error, and nothing of the message remains.
        for (int step = 1; step <= 6; ++step) {
            TempDir d2;
            REQUIRE(ensure_spool_layout(d2.path()).ok());
            FaultyFs faulty;
            SpoolWriter f(d2.path(), faulty, clock, 1);
            REQUIRE(f.begin().ok());
            REQUIRE(f.append("Subject: x\r\n\r\nbody\r\n").ok());
            const int before = faulty.calls;
            faulty.fail_at = before + step;
            auto r = f.read_message([](std::string_view) {});
            INFO("failing call " << step << " after " << before);
            if (faulty.calls < before + step) {
                CHECK(r.ok()); // the read needed fewer calls
                break;
            }
            CHECK(!r.ok());
            CHECK(count_entries(d2.path() + "/tmp") == 0);
        }
    }

    TEST_CASE("a rewrite failing at any step leaves nothing in queue/ or tmp/")
    {
        MessageEdits edits;
        edits.headers.push_back({HeaderEdit::Kind::insert, "X-First", "1", 0});
        edits.body = std::string(150000, 'n');
        const std::string original = "Subject: x\r\n\r\n" + std::string(150000, 'o') + "\r\n";
        auto run = [&](SpoolWriter& w, Envelope& e) -> Result<void> {
            auto id = w.begin();
            if (!id) {
                return id.error();
            }
            if (auto r = w.append(original); !r) {
                return r;
            }
            if (auto r = w.rewrite(edits); !r) {
                return r;
            }
            return w.commit(e);
        };
        TempDir probe_dir;
        REQUIRE(ensure_spool_layout(probe_dir.path()).ok());
        FaultyFs probe;
        FixedClock clock(TimePoint(std::chrono::seconds(1795000000)));
        {
            SpoolWriter w(probe_dir.path(), probe, clock, 1);
            Envelope e = small_envelope();
            REQUIRE(run(w, e).ok());
            CHECK(slurp(message_path(probe_dir.path(), e.id)) ==
                  "X-First: 1\r\nSubject: x\r\n\r\n" + std::string(150000, 'n') + "\r\n");
        }
        const int total = probe.calls;
        int reported = 0;
        for (int step = 1; step <= total; ++step) {
            TempDir dir;
            REQUIRE(ensure_spool_layout(dir.path()).ok());
            FaultyFs fs;
            fs.fail_at = step;
            SpoolWriter w(dir.path(), fs, clock, 1);
            Envelope e = small_envelope();
            auto r = run(w, e);
            INFO("failing call " << step << " of " << total);
            CHECK(count_entries(dir.path() + "/tmp") == 0);
            if (r.ok()) {
                REQUIRE(count_entries(dir.path() + "/queue") == 1);
            } else {
                ++reported;
                CHECK(r.error().errnum == EIO);
                CHECK(count_entries(dir.path() + "/queue") == 0);
            }
        }
        // As for a commit: only the two directory closes may fail unnoticed.
        CHECK(reported == total - 2);
    }

    TEST_CASE("abort removes the open message")
    {
        TempDir dir;
        REQUIRE(ensure_spool_layout(dir.path()).ok());
        PosixFs fs;
        SystemClock clock;
        SpoolWriter w(dir.path(), fs, clock, 7);
        REQUIRE(w.begin().ok());
        REQUIRE(w.append("partial").ok());
        CHECK(count_entries(dir.path() + "/tmp") == 1);
        w.abort();
        CHECK(count_entries(dir.path() + "/tmp") == 0);
        CHECK(count_entries(dir.path() + "/queue") == 0);
    }

    TEST_CASE("ids are unique, valid and sorted by arrival")
    {
        TempDir dir;
        REQUIRE(ensure_spool_layout(dir.path()).ok());
        PosixFs fs;
        FixedClock clock(TimePoint(std::chrono::seconds(1795000000)));
        std::vector<std::string> ids;
        SpoolWriter a(dir.path(), fs, clock, 100);
        SpoolWriter b(dir.path(), fs, clock, 100); // same pid and time: mkdir decides
        for (int i = 0; i < 20; ++i) {
            for (SpoolWriter* w : {&a, &b}) {
                Envelope e = small_envelope();
                REQUIRE(store(*w, "x\r\n", e).ok());
                CHECK(is_valid_queue_id(e.id));
                ids.push_back(e.id);
            }
            clock.advance(std::chrono::microseconds(1));
        }
        CHECK(std::set<std::string>(ids.begin(), ids.end()).size() == ids.size());
        auto listed = list_queue(dir.path());
        REQUIRE(listed.ok());
        CHECK(listed.value().size() == ids.size());
        CHECK(std::is_sorted(listed.value().begin(), listed.value().end()));
        CHECK(listed.value().front() == ids.front());
        CHECK(listed.value().back().substr(0, 22) == ids.back().substr(0, 22));
    }

    TEST_CASE("queue ids from users are checked")
    {
        CHECK(is_valid_queue_id("20261122T023525-123456-42-0"));
        CHECK(is_valid_queue_id("a_b-C"));
        for (auto bad : {"", "..", "a/b", "../x", "a b", "a.b", "id\n"}) {
            CHECK_FALSE(is_valid_queue_id(bad));
        }
        CHECK_FALSE(is_valid_queue_id(std::string(129, 'a')));
    }

    TEST_CASE("stale tmp entries are swept, fresh ones kept")
    {
        TempDir dir;
        REQUIRE(ensure_spool_layout(dir.path()).ok());
        std::filesystem::create_directory(dir.path() + "/tmp/old");
        std::ofstream(dir.path() + "/tmp/old/message.eml") << "x";
        std::filesystem::create_directory(dir.path() + "/tmp/fresh");
        auto now = std::chrono::system_clock::now();
        utimbuf old{};
        old.actime = old.modtime = std::chrono::system_clock::to_time_t(now) - 2 * 86400;
        REQUIRE(::utime((dir.path() + "/tmp/old").c_str(), &old) == 0);
        CHECK(sweep_stale_tmp(dir.path(), now) == 1);
        CHECK_FALSE(std::filesystem::exists(dir.path() + "/tmp/old"));
        CHECK(std::filesystem::exists(dir.path() + "/tmp/fresh"));
    }

    TEST_CASE("remove takes a message out; missing and malformed entries are reported")
    {
        TempDir dir;
        REQUIRE(ensure_spool_layout(dir.path()).ok());
        PosixFs fs;
        SystemClock clock;
        SpoolWriter w(dir.path(), fs, clock, 9);
        Envelope e = small_envelope();
        REQUIRE(store(w, "x\r\n", e).ok());
        auto missing = load_envelope(dir.path(), "nope");
        CHECK(missing.error().errnum == ENOENT);
        std::filesystem::create_directory(dir.path() + "/queue/broken");
        std::ofstream(dir.path() + "/queue/broken/envelope.json") << "{\"version\": 1}";
        auto broken = load_envelope(dir.path(), "broken");
        REQUIRE_FALSE(broken.ok());
        CHECK(broken.error().message.find("missing key") != std::string::npos);
        REQUIRE(remove_message(dir.path(), e.id).ok());
        CHECK_FALSE(std::filesystem::exists(dir.path() + "/queue/" + e.id));
        CHECK(count_entries(dir.path() + "/tmp") == 0);
        CHECK(remove_message(dir.path(), e.id).error().errnum == ENOENT);
    }

    TEST_CASE("the layout is created, and a file in the way is an error")
    {
        TempDir dir;
        REQUIRE(ensure_spool_layout(dir.path() + "/new/spool").ok());
        CHECK(std::filesystem::is_directory(dir.path() + "/new/spool/tmp"));
        REQUIRE(ensure_spool_layout(dir.path() + "/s").ok());
        CHECK(std::filesystem::is_directory(dir.path() + "/s/queue"));
        std::ofstream(dir.path() + "/f") << "x";
        CHECK(ensure_spool_layout(dir.path() + "/f").error().errnum == ENOTDIR);
        CHECK_FALSE(ensure_spool_layout(dir.path() + "/f/sub").ok());
    }
}

TEST_SUITE("spool")
{
    TEST_CASE("the envelope never outgrows its reader: the worst committed envelope, after the worst runq changes")
    {
        // Recipients as long and as costly to write as a client can make them:
        // a 64-octet quoted local part of backslashes (each written as two)
        // in a 254-octet address, the same as the alias original, a
        // 500-character ORCPT of quotes, every NOTIFY keyword.
        auto worst_recipient = [](std::size_t n) {
            Recipient r;
            std::string local = "\"" + std::string(62, '\\') + "\"";
            std::string domain = std::string(254 - local.size() - 1 - 5, 'd') + ".test";
            std::string tag = std::to_string(n); // written as it is, like the 'd's
            domain.replace(0, tag.size(), tag);
            r.address = local + "@" + domain;
            REQUIRE(r.address.size() == 254);
            r.original = r.address;
            r.orcpt = "rfc822;" + std::string(493, '"');
            r.notify = std::vector<std::string>{"SUCCESS", "FAILURE", "DELAY"};
            return r;
        };
        Envelope e = small_envelope();
        e.mail_from = std::string(64, '\\') + "@" + std::string(180, 's') + ".test";
        e.client.helo = std::string(2000, '"');
        e.dsn_envid = std::string(100, '"');
        e.dsn_ret = "HDRS";
        e.recipients = {worst_recipient(0)};
        const std::size_t one = envelope_to_json(e).size();
        e.recipients.push_back(worst_recipient(1));
        const std::size_t per_recipient = envelope_to_json(e).size() - one;
        const std::size_t base = one - per_recipient;
        // The most such recipients a commit takes.
        const std::size_t room = limits::k_max_envelope_size - base - limits::k_envelope_growth_fixed;
        const std::size_t most = room / (per_recipient + limits::k_envelope_growth_per_recipient);
        CHECK(most < limits::k_default_max_recipients); // these would not all fit
        e.recipients.clear();
        for (std::size_t i = 0; i <= most; ++i) {
            e.recipients.push_back(worst_recipient(i));
        }

        TempDir dir;
        REQUIRE(ensure_spool_layout(dir.path()).ok());
        PosixFs fs;
        FixedClock clock(TimePoint(std::chrono::seconds(1795000000)));
        SpoolWriter w(dir.path(), fs, clock, 7);
        // One recipient too many: refused, as too large (552 5.3.4), nothing kept.
        auto refused = store(w, "x\r\n", e);
        REQUIRE_FALSE(refused.ok());
        CHECK(is_envelope_too_large(refused.error()));
        CHECK(count_entries(dir.path() + "/queue") == 0);
        CHECK(count_entries(dir.path() + "/tmp") == 0);
        e.recipients.pop_back();
        REQUIRE(store(w, "x\r\n", e).ok());
        const std::size_t committed = envelope_to_json(e).size();
        MESSAGE("committed: " << e.recipients.size() << " recipients, " << committed << " octets");

        // Every change runq makes, at its largest: the longest last error,
        // stored as runq stores it, of octets that JSON writes as three
        // (broken UTF-8), the largest counts, the longest status, both times.
        for (Recipient& r : e.recipients) {
            r.last_error = text::detail_line(std::string(1000, '\xff'), limits::k_max_last_error);
            r.last_hop = std::string(limits::k_max_last_hop, '[');
            REQUIRE(is_valid_last_hop(*r.last_hop));
            r.attempts = std::numeric_limits<std::uint64_t>::max();
            r.status = RecipientStatus::delivered;
            r.last_tls = DeliveryTls{std::string(k_max_delivery_tls_text, '"'),
                                     std::string(k_max_delivery_tls_text, '\\'), false};
        }
        CHECK(e.recipients.front().last_error->size() <= limits::k_max_last_error);
        e.attempts = std::numeric_limits<std::uint64_t>::max();
        e.last_attempt = "2199-12-31T23:59:59.999999Z";
        e.next_attempt = "2199-12-31T23:59:59.999999Z";
        e.held = true; // smtpspool hold
        e.delay_notified = "2199-12-31T23:59:59.999999Z";
        const std::size_t rewritten = envelope_to_json(e).size();
        MESSAGE("after runq: " << rewritten << " octets, cap " << limits::k_max_envelope_size);
        CHECK(rewritten > committed);
        CHECK(rewritten - committed <=
              e.recipients.size() * limits::k_envelope_growth_per_recipient + limits::k_envelope_growth_fixed);
        CHECK(rewritten <= limits::k_max_envelope_size);
    }
}
