// hook: policy hook programs: run_hook (run_child with the hooks' bounds) and
// judge_hook, the verdict.
#include "policy/hook.hpp"

#include "base/limits.hpp"
#include "smtp/header_check.hpp"

#include <algorithm>
#include <string_view>

namespace smtpspool {
namespace {

// RFC 5322 §2.1.1, §2.2: at most 998 octets of US-ASCII; of the controls only
// HT (in folding white space).
bool header_line_ok(std::string_view line)
{
    if (line.size() > limits::k_max_header_line) {
        return false;
    }
    return std::all_of(line.begin(), line.end(), [](char c) {
        auto u = static_cast<unsigned char>(c);
        return c == '\t' || (u >= 0x20 && u < 0x7f);
    });
}

// RFC 5322 §2.2: "name: body", the name printable US-ASCII without ':'.
bool field_start_ok(std::string_view line)
{
    std::size_t colon = line.find(':');
    return colon != std::string_view::npos && colon <= k_max_field_name && is_field_name(line.substr(0, colon)) &&
           header_line_ok(line);
}

// RFC 5322 §2.2.3: a folded line starts with WSP, and is not WSP only (§3.2.2).
bool continuation_ok(std::string_view line)
{
    return header_line_ok(line) && line.find_first_not_of(" \t") != std::string_view::npos;
}

class HeaderCollector {
public:
    explicit HeaderCollector(HookVerdict& verdict) : m_verdict(verdict) {}

    void line(std::string_view text)
    {
        if (text.empty()) {
            flush(); // an empty line would end a header section: nothing continues across it
            m_open = false;
            return;
        }
        if (text[0] == ' ' || text[0] == '\t') {
            if (m_open) {
                m_field.push_back(text);
            } else {
                ignore(text);
            }
            return;
        }
        flush();
        m_field.push_back(text);
        m_open = true;
    }
    void ignore(std::string_view text)
    {
        ++m_verdict.ignored_total;
        if (m_verdict.ignored_lines.size() < k_hook_max_ignored_lines) {
            m_verdict.ignored_lines.emplace_back(text.substr(0, k_hook_max_ignored_line));
        }
    }
    // A field goes in whole, continuation lines and all, or not at all.
    void flush()
    {
        if (m_field.empty()) {
            return;
        }
        bool ok = field_start_ok(m_field[0]) && std::all_of(m_field.begin() + 1, m_field.end(),
                                                            [](std::string_view l) { return continuation_ok(l); });
        std::size_t bytes = 0;
        for (std::string_view l : m_field) {
            bytes += l.size() + 2;
        }
        ok = ok && m_verdict.header_lines.size() + m_field.size() <= k_hook_max_header_lines &&
             m_bytes + bytes <= k_hook_max_header_bytes;
        for (std::string_view l : m_field) {
            if (ok) {
                m_verdict.header_lines.push_back(std::string(l) + "\r\n");
            } else {
                ignore(l);
            }
        }
        if (ok) {
            m_bytes += bytes;
        }
        m_field.clear();
    }

private:
    HookVerdict& m_verdict;
    std::vector<std::string_view> m_field; // a field line and its continuation lines
    bool m_open = false;                   // a continuation line has a field to belong to
    std::size_t m_bytes = 0;
};

void collect_headers(const HookRun& run, HookVerdict& verdict)
{
    HeaderCollector collector(verdict);
    std::string_view rest = run.out;
    while (!rest.empty()) {
        std::size_t nl = rest.find('\n');
        if (nl == std::string_view::npos) {
            // A last line without its newline is whole, unless the output was cut.
            if (run.out_truncated) {
                collector.flush();
                collector.ignore(rest);
            } else {
                collector.line(rest);
            }
            break;
        }
        std::string_view line = rest.substr(0, nl);
        if (!line.empty() && line.back() == '\r') {
            line.remove_suffix(1);
        }
        collector.line(line);
        rest.remove_prefix(nl + 1);
    }
    collector.flush();
}

} // namespace

HookRun run_hook(const HookRequest& request)
{
    ChildRequest child;
    child.command = request.command;
    child.environment = request.environment;
    child.input.file = request.stdin_fd;
    child.keep_out = {k_hook_max_out, false};
    child.keep_err = {k_hook_max_err, false};
    child.timeout = request.timeout;
    child.kill_group_on_exit = true;
    return run_child(child);
}

HookVerdict judge_hook(const HookRun& run, HookStage stage)
{
    HookVerdict verdict;
    switch (run.end) {
    case HookRun::End::failed_to_start:
        verdict.reply = replies::policy_tempfail();
        verdict.log_reason = run.status == 127 ? "not-found" : run.status == 126 ? "not-executable" : "start-failed";
        return verdict;
    case HookRun::End::timed_out:
        verdict.reply = replies::policy_tempfail();
        verdict.log_reason = "timeout";
        return verdict;
    case HookRun::End::signaled:
        verdict.reply = replies::policy_tempfail();
        verdict.log_reason = "signal=" + std::to_string(run.status);
        return verdict;
    case HookRun::End::exited:
        break;
    }
    verdict.log_reason = "exit=" + std::to_string(run.status);
    if (run.status == 0) {
        verdict.accept = true;
        if (stage == HookStage::data) {
            collect_headers(run, verdict);
        }
        return verdict;
    }
    std::string_view out = run.out;
    if (auto reply = replies::parse_hook_reply(out.substr(0, out.find('\n')))) {
        verdict.reply = std::move(reply);
        return verdict;
    }
    if (!out.empty()) {
        verdict.log_reason += ",bad-output";
    }
    verdict.reply = run.status == 100 ? replies::policy_refused(stage) : replies::policy_tempfail();
    return verdict;
}

} // namespace smtpspool
