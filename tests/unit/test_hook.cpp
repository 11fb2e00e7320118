// Tests of policy hooks: run_hook with real /bin/sh children (timeouts,
// process groups, output bounds, environment, descriptors, zombies) and
// judge_hook, the pure verdict.
#include "policy/hook.hpp"
#include "testutil.hpp"

#include <doctest/doctest.h>

#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <fcntl.h>
#include <filesystem>
#include <fstream>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

using namespace smtpspool;
using namespace testutil;
using namespace std::chrono_literals;

namespace {

using Clock = std::chrono::steady_clock;

HookRun run(const std::string& command, std::chrono::milliseconds timeout = 10s, EnvironmentVariables env = {},
            int stdin_fd = -1)
{
    HookRequest request;
    request.command = command;
    request.environment = std::move(env);
    request.stdin_fd = stdin_fd;
    request.timeout = timeout;
    return run_hook(request);
}

HookRun exited(int status, std::string out = "")
{
    HookRun r;
    r.end = HookRun::End::exited;
    r.status = status;
    r.out = std::move(out);
    return r;
}

std::size_t open_fds() { return count_entries("/proc/self/fd"); }

// No child of ours is left unreaped.
bool no_zombies()
{
    int status = 0;
    pid_t r = ::waitpid(-1, &status, WNOHANG);
    return r == 0 || (r < 0 && errno == ECHILD);
}

// Gone, or dead and waiting for init to reap it.
bool process_gone(pid_t pid)
{
    for (auto until = Clock::now() + 3s; Clock::now() < until; std::this_thread::sleep_for(10ms)) {
        if (::kill(pid, 0) != 0 && errno == ESRCH) {
            return true;
        }
        std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
        std::string line;
        std::getline(stat, line);
        auto paren = line.rfind(')');
        if (paren != std::string::npos && paren + 2 < line.size() && line[paren + 2] == 'Z') {
            return true;
        }
    }
    return false;
}

bool same_reply(const std::optional<Reply>& a, const Reply& b)
{
    return a && a->code == b.code && a->status == b.status && a->text == b.text;
}

} // namespace

TEST_SUITE("hook")
{
    TEST_CASE("run: exit status, stdout and stderr")
    {
        HookRun r = run("echo out; echo err >&2; exit 3");
        CHECK(r.end == HookRun::End::exited);
        CHECK(r.status == 3);
        CHECK(r.out == "out\n");
        CHECK(r.err == "err\n");
        CHECK_FALSE(r.out_truncated);
        CHECK(r.error.empty());
        CHECK(no_zombies());
    }

    TEST_CASE("run: a missing command fails to start, with the shell's words, and never accepts")
    {
        HookRun r = run("/nonexistent/x");
        CHECK(r.end == HookRun::End::failed_to_start);
        CHECK(r.status == 127);
        CHECK(r.error.find("command not found") != std::string::npos);
        CHECK(r.error.find("/nonexistent/x") != std::string::npos);
        HookVerdict v = judge_hook(r, HookStage::rcpt);
        CHECK_FALSE(v.accept);
        CHECK(same_reply(v.reply, replies::policy_tempfail()));
        CHECK(v.log_reason == "not-found");
    }

    TEST_CASE("run: a timeout kills the hook and what it started in the background")
    {
        auto start = Clock::now();
        HookRun r = run("sleep 100 & echo $!; sleep 100", 300ms);
        auto took = Clock::now() - start;
        CHECK(r.end == HookRun::End::timed_out);
        CHECK(took >= 300ms);
        CHECK(took < 300ms + k_child_stop_grace + 2s);
        REQUIRE(!r.out.empty());
        pid_t grandchild = std::stoi(r.out);
        CHECK(process_gone(grandchild));
        CHECK(no_zombies());
        HookVerdict v = judge_hook(r, HookStage::mail);
        CHECK_FALSE(v.accept);
        CHECK(same_reply(v.reply, replies::policy_tempfail()));
        CHECK(v.log_reason == "timeout");
    }

    TEST_CASE("run: a hook that ignores SIGTERM gets SIGKILL after the grace period")
    {
        auto start = Clock::now();
        HookRun r = run("trap '' TERM; sleep 100", 200ms);
        auto took = Clock::now() - start;
        CHECK(r.end == HookRun::End::timed_out);
        CHECK(r.status == SIGKILL);
        CHECK(took >= 200ms + k_child_stop_grace);
        CHECK(took < 200ms + k_child_stop_grace + 2s);
        CHECK(no_zombies());
    }

    TEST_CASE("run: what a hook leaves running is killed when it exits, and does not hold the verdict up")
    {
        auto start = Clock::now();
        HookRun r = run("sleep 100 & echo $!; exit 0", 5s);
        CHECK(r.end == HookRun::End::exited);
        CHECK(r.status == 0);
        CHECK(Clock::now() - start < 3s);
        REQUIRE(!r.out.empty());
        CHECK(process_gone(std::stoi(r.out)));
        CHECK(no_zombies());
    }

    TEST_CASE("run: a megabyte on stdout and stderr does not hang; the first 64 KiB and 8 KiB are kept")
    {
        HookRun r =
            run("head -c 1048576 /dev/zero | tr '\\0' e >&2 & head -c 1048576 /dev/zero | tr '\\0' o; wait", 20s);
        CHECK(r.end == HookRun::End::exited);
        CHECK(r.status == 0);
        CHECK(r.out == std::string(k_hook_max_out, 'o'));
        CHECK(r.err == std::string(k_hook_max_err, 'e'));
        CHECK(r.out_truncated);
        CHECK(r.err_truncated);
        HookVerdict v = judge_hook(r, HookStage::data);
        CHECK(v.accept);
        CHECK(v.header_lines.empty());
        CHECK(v.ignored_total == 1); // the cut line
    }

    TEST_CASE("run: a signal ends the hook")
    {
        HookRun r = run("kill -9 $$");
        CHECK(r.end == HookRun::End::signaled);
        CHECK(r.status == SIGKILL);
        HookVerdict v = judge_hook(r, HookStage::data);
        CHECK_FALSE(v.accept);
        CHECK(same_reply(v.reply, replies::policy_tempfail()));
        CHECK(v.log_reason == "signal=9");
    }

    TEST_CASE("run: the hook sees PATH and its variables, nothing of ours, and client text stays data")
    {
        TempDir dir;
        std::string marker = dir.path() + "/pwned";
        REQUIRE(::setenv("SMTPSPOOL_TEST_SECRET", "leaked", 1) == 0);
        HookRun r =
            run("echo \"$SMTPSPOOL_SENDER|${SMTPSPOOL_TEST_SECRET-unset}|$PATH\"; env; test -n \"$SMTPSPOOL_HELO\"",
                10s, {{"SMTPSPOOL_SENDER", "alice@b.test"}, {"SMTPSPOOL_HELO", "$(touch " + marker + ")"}});
        ::unsetenv("SMTPSPOOL_TEST_SECRET");
        CHECK(r.end == HookRun::End::exited);
        CHECK(r.status == 0);
        CHECK(r.out.rfind("alice@b.test|unset|/usr/local/bin:/usr/bin:/bin\n", 0) == 0);
        CHECK(r.out.find("SMTPSPOOL_TEST_SECRET") == std::string::npos);
        CHECK(r.out.find("SMTPSPOOL_HELO=$(touch ") != std::string::npos);
        CHECK_FALSE(std::filesystem::exists(marker));
    }

    TEST_CASE("child_environment: a later name replaces an earlier one; unusable names are refused")
    {
        auto env = child_environment({{"A", "1"}, {"PATH", "/bin"}, {"A", "2"}});
        REQUIRE(env);
        CHECK(env.value() == std::vector<std::string>{"PATH=/bin", "A=2"});
        CHECK_FALSE(child_environment({{"", "x"}}));
        CHECK_FALSE(child_environment({{"A=B", "x"}}));
        CHECK_FALSE(child_environment({{"A", std::string("x\0y", 3)}}));
        HookRun r = run("exit 0", 10s, {{"BAD=NAME", "x"}});
        CHECK(r.end == HookRun::End::failed_to_start);
        CHECK(r.error.find("environment") != std::string::npos);
        CHECK(judge_hook(r, HookStage::mail).log_reason == "start-failed");
    }

    TEST_CASE("run: no descriptor of ours reaches the hook, none is left open, no zombie")
    {
        int leaky = ::open("/dev/null", O_RDONLY); // deliberately not close-on-exec
        REQUIRE(leaky >= 3);
        std::size_t before = open_fds();
        HookRun r = run("test -e /proc/self/fd/" + std::to_string(leaky) + " && echo open || echo closed");
        CHECK(r.out == "closed\n");
        run("/nonexistent/x");
        run("sleep 100", 100ms);
        run("exit 0", 10s, {{"BAD=NAME", "x"}});
        CHECK(open_fds() == before);
        CHECK(no_zombies());
        ::close(leaky);
    }

    TEST_CASE("run: a data hook reads the whole message from offset 0, whatever the caller's descriptor")
    {
        TempDir dir;
        std::string path = dir.path() + "/message.eml";
        std::string message = "Subject: s\r\n\r\nbody\r\n";
        // As the spool holds it: write-only, the offset at the end.
        int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        REQUIRE(fd >= 0);
        REQUIRE(::write(fd, message.data(), message.size()) == static_cast<ssize_t>(message.size()));
        HookRun r = run("echo \"X-Size: $(wc -c | tr -d ' ')\"; echo 'not a header'; echo 'X-Folded: a'; "
                        "printf '\\tb\\n'; echo 'Bad Name: x'; printf 'X-Last: no newline'",
                        10s, {}, fd);
        CHECK(::lseek(fd, 0, SEEK_CUR) == static_cast<off_t>(message.size()));
        ::close(fd);
        CHECK(r.end == HookRun::End::exited);
        CHECK(r.status == 0);
        HookVerdict v = judge_hook(r, HookStage::data);
        CHECK(v.accept);
        CHECK(v.log_reason == "exit=0");
        CHECK(v.header_lines == std::vector<std::string>{"X-Size: " + std::to_string(message.size()) + "\r\n",
                                                         "X-Folded: a\r\n", "\tb\r\n", "X-Last: no newline\r\n"});
        CHECK(v.ignored_lines == std::vector<std::string>{"not a header", "Bad Name: x"});
        CHECK(v.ignored_total == 2);
        // Without a message: /dev/null.
        CHECK(run("wc -c | tr -d ' '").out == "0\n");
    }

    TEST_CASE("run and judge: the exit status and the reply line decide")
    {
        HookVerdict refused = judge_hook(run("exit 100"), HookStage::mail);
        CHECK_FALSE(refused.accept);
        CHECK(same_reply(refused.reply, replies::policy_refused(HookStage::mail)));
        CHECK(refused.log_reason == "exit=100");

        HookVerdict later = judge_hook(run("exit 111"), HookStage::rcpt);
        CHECK(same_reply(later.reply, replies::policy_tempfail()));
        CHECK(later.log_reason == "exit=111");

        HookVerdict replied = judge_hook(run("echo '550 5.7.1 go away'; echo more; exit 1"), HookStage::rcpt);
        CHECK(same_reply(replied.reply, Reply{550, "5.7.1", "go away"}));
        CHECK(replied.log_reason == "exit=1");

        HookVerdict garbage = judge_hook(run("echo 'no thanks'; exit 1"), HookStage::rcpt);
        CHECK_FALSE(garbage.accept);
        CHECK(same_reply(garbage.reply, replies::policy_tempfail()));
        CHECK(garbage.log_reason == "exit=1,bad-output");

        HookVerdict ok = judge_hook(run("echo '550 5.7.1 ignored'; echo 'X-A: b'"), HookStage::rcpt);
        CHECK(ok.accept);
        CHECK_FALSE(ok.reply);
        CHECK(ok.header_lines.empty());
    }

    TEST_CASE("judge: exit 100 refuses at each stage; a reply line wins over the exit status")
    {
        CHECK(same_reply(judge_hook(exited(100), HookStage::rcpt).reply, replies::policy_refused(HookStage::rcpt)));
        CHECK(same_reply(judge_hook(exited(100), HookStage::data).reply, replies::policy_refused(HookStage::data)));
        CHECK(same_reply(judge_hook(exited(100, "451 4.7.1 greylisted\r\n"), HookStage::rcpt).reply,
                         Reply{451, "4.7.1", "greylisted"}));
        CHECK(same_reply(judge_hook(exited(111, "554 5.7.1 no\n"), HookStage::data).reply, Reply{554, "5.7.1", "no"}));
        // Only 4yz and 5yz replies: anything else is bad output.
        HookVerdict positive = judge_hook(exited(1, "250 2.0.0 fine\n"), HookStage::mail);
        CHECK(same_reply(positive.reply, replies::policy_tempfail()));
        CHECK(positive.log_reason == "exit=1,bad-output");
        HookVerdict permanent = judge_hook(exited(100, "550 4.7.1 mismatched\n"), HookStage::mail);
        CHECK(same_reply(permanent.reply, replies::policy_refused(HookStage::mail)));
        CHECK(permanent.log_reason == "exit=100,bad-output");
        HookRun timed_out;
        timed_out.end = HookRun::End::timed_out;
        timed_out.out = "X-A: b\n";
        CHECK_FALSE(judge_hook(timed_out, HookStage::data).accept);
    }

    TEST_CASE("judge: header fields from a data hook")
    {
        auto headers = [](std::string out, HookStage stage = HookStage::data) {
            return judge_hook(exited(0, std::move(out)), stage);
        };
        SUBCASE("field names: printable, no space, 1 to 76 octets")
        {
            std::string n76(76, 'N'), n77(77, 'N');
            HookVerdict v = headers(n76 + ": a\n" + n77 + ": b\n: c\nX A: d\nX\x7f: e\nX-Ok:\n");
            CHECK(v.header_lines == std::vector<std::string>{n76 + ": a\r\n", "X-Ok:\r\n"});
            CHECK(v.ignored_total == 4);
        }
        SUBCASE("lines: at most 998 octets, no 8-bit octets, no controls but HT")
        {
            std::string ok = "X-A: " + std::string(993, 'a'), long_ = "X-B: " + std::string(994, 'b');
            HookVerdict v = headers(ok + "\n" + long_ + "\nX-C: caf\xc3\xa9\nX-D: a\x01z\nX-E: a\rz\nX-F:\ttab\n");
            CHECK(v.header_lines == std::vector<std::string>{ok + "\r\n", "X-F:\ttab\r\n"});
            CHECK(v.ignored_total == 4);
        }
        SUBCASE("continuation lines go with their field, in or out")
        {
            HookVerdict v = headers("X-A: 1\n 2\n\t3\nbad\n 4\nX-B: 1\n   \nX-C: 1\n \x80\n\n 5\nX-D: 1\r\n 2\r\n");
            CHECK(v.header_lines ==
                  std::vector<std::string>{"X-A: 1\r\n", " 2\r\n", "\t3\r\n", "X-D: 1\r\n", " 2\r\n"});
            // "bad" and its " 4"; X-B and its blank fold; X-C's 8-bit fold;
            // " 5" after an empty line.
            CHECK(v.ignored_lines == std::vector<std::string>{"bad", " 4", "X-B: 1", "   ", "X-C: 1", " \x80", " 5"});
            CHECK(headers(" leading\nX-A: 1\n").header_lines == std::vector<std::string>{"X-A: 1\r\n"});
        }
        SUBCASE("at most 100 lines and 16 KiB; ignored lines listed up to a bound")
        {
            std::string out;
            for (int i = 0; i < 150; ++i) {
                out += "X-N: " + std::to_string(i) + "\n";
            }
            HookVerdict v = headers(out);
            CHECK(v.header_lines.size() == k_hook_max_header_lines);
            CHECK(v.header_lines.back() == "X-N: 99\r\n");
            CHECK(v.ignored_total == 50);
            CHECK(v.ignored_lines.size() == k_hook_max_ignored_lines);

            std::string big = "X-Big: " + std::string(990, 'x') + "\n"; // 999 octets with CRLF
            std::string many;
            for (int i = 0; i < 20; ++i) {
                many += big;
            }
            HookVerdict b = headers(many);
            CHECK(b.header_lines.size() == k_hook_max_header_bytes / 999);
            CHECK(b.ignored_lines.front().size() == k_hook_max_ignored_line);
        }
        SUBCASE("a cut output's last line is not a field; an uncut one without a newline is")
        {
            HookRun cut = exited(0, "X-A: 1\nX-B: cut her");
            cut.out_truncated = true;
            HookVerdict v = judge_hook(cut, HookStage::data);
            CHECK(v.header_lines == std::vector<std::string>{"X-A: 1\r\n"});
            CHECK(v.ignored_lines == std::vector<std::string>{"X-B: cut her"});
            CHECK(headers("X-A: 1\nX-B: whole").header_lines ==
                  std::vector<std::string>{"X-A: 1\r\n", "X-B: whole\r\n"});
        }
        SUBCASE("mail and rcpt hooks add no headers")
        {
            HookVerdict v = headers("X-A: 1\n", HookStage::rcpt);
            CHECK(v.accept);
            CHECK(v.header_lines.empty());
            CHECK(v.ignored_lines.empty());
        }
    }
}
