// transcript: tests/sessions/*.txt in-process (see transcript.hpp). The
// parser and the checks follow tests/sessions/run.py line by line; the set-up
// follows run_serve (src/cli/serve.cpp) for what a transcript can reach.
#include "transcript.hpp"

#include "feed.hpp"

#include "base/clock.hpp"
#include "base/fs.hpp"
#include "cli/config.hpp"
#include "policy/checkpassword.hpp"
#include "policy/policy.hpp"
#include "server/peer.hpp"
#include "smtp/session.hpp"
#include "spool/spool.hpp"
#include "testutil.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>
#include <unistd.h>

namespace testutil {
namespace {

namespace fs = std::filesystem;

const std::map<std::string, std::string> k_network_env = {{"TCPREMOTEIP", "192.0.2.7"},
                                                          {"TCPREMOTEPORT", "41000"},
                                                          {"TCPLOCALIP", "192.0.2.1"},
                                                          {"TCPLOCALPORT", "25"},
                                                          {"PROTO", "TCP"}};

std::pair<std::string, std::string> partition(std::string_view s, char sep = ' ')
{
    std::size_t at = s.find(sep);
    if (at == std::string_view::npos) {
        return {std::string(s), ""};
    }
    return {std::string(s.substr(0, at)), std::string(s.substr(at + 1))};
}

// str.split(" ", maxsplit) of Python.
std::vector<std::string> split(std::string_view s, std::size_t maxsplit)
{
    std::vector<std::string> out;
    while (out.size() < maxsplit) {
        std::size_t at = s.find(' ');
        if (at == std::string_view::npos) {
            break;
        }
        out.emplace_back(s.substr(0, at));
        s.remove_prefix(at + 1);
    }
    out.emplace_back(s);
    return out;
}

bool starts_with(std::string_view s, std::string_view prefix) { return s.substr(0, prefix.size()) == prefix; }

std::string slurp(const fs::path& path)
{
    std::ifstream in(path, std::ios::binary);
    if (!in) {
        throw std::runtime_error("cannot read " + path.string());
    }
    std::ostringstream s;
    s << in.rdbuf();
    return s.str();
}

std::string printable(std::string_view s)
{
    std::string out;
    for (unsigned char c : s) {
        if (c >= 0x20 && c < 0x7f && c != '\\') {
            out += static_cast<char>(c);
        } else {
            char hex[8];
            std::snprintf(hex, sizeof hex, "\\x%02x", c);
            out += c == '\\' ? std::string("\\\\") : std::string(hex);
        }
    }
    return out;
}

struct Failure {
    std::string message;
};

struct Stored {
    nlohmann::json envelope;
    std::string body;
};

std::vector<Stored> messages(const std::string& spool)
{
    fs::path q = fs::path(spool) / "queue";
    std::vector<std::string> ids;
    if (fs::is_directory(q)) {
        for (const auto& e : fs::directory_iterator(q)) {
            ids.push_back(e.path().filename().string());
        }
    }
    std::sort(ids.begin(), ids.end());
    std::vector<Stored> out;
    for (const std::string& id : ids) {
        out.push_back({nlohmann::json::parse(slurp(q / id / "envelope.json")), slurp(q / id / "message.eml")});
    }
    return out;
}

const nlohmann::json& pointer(const nlohmann::json& doc, const std::string& path)
{
    const nlohmann::json* at = &doc;
    std::string_view rest = path;
    while (!rest.empty()) {
        if (rest.front() == '/') {
            rest.remove_prefix(1);
            continue;
        }
        std::size_t end = rest.find('/');
        std::string part(rest.substr(0, end));
        rest.remove_prefix(end == std::string_view::npos ? rest.size() : end);
        at = at->is_array() ? &at->at(std::stoul(part)) : &at->at(part);
    }
    return *at;
}

void check(const Transcript& t, int status, const std::string& out, const std::string& spool)
{
    std::vector<std::string> lines;
    std::size_t pos = 0;
    for (;;) {
        std::size_t end = out.find("\r\n", pos);
        if (end == std::string::npos) {
            if (pos != out.size()) {
                throw Failure{"output does not end with CRLF: " + printable(out.substr(pos))};
            }
            break;
        }
        lines.push_back(out.substr(pos, end - pos));
        pos = end + 2;
    }
    static const std::regex well_formed("[2-5][0-9][0-9][ -][^]*");
    for (const std::string& line : lines) {
        if (line.size() + 2 > 512 || !std::regex_match(line, well_formed)) {
            throw Failure{"malformed reply line " + printable(line)};
        }
    }
    std::size_t at = 0;
    for (const Transcript::Line& e : t.expect) {
        if (e.op == "<*") {
            while (at < lines.size() && lines[at].size() > 3 && lines[at][3] == '-') {
                ++at;
            }
        }
        if (at >= lines.size()) {
            throw Failure{e.where + ": expected '" + e.arg + "', but the replies ended"};
        }
        const std::string& got = lines[at];
        bool ok = e.op == "<~" ? std::regex_match(got, std::regex(e.arg)) : starts_with(got, e.arg);
        if (!ok) {
            throw Failure{e.where + ": expected '" + e.arg + "', got '" + printable(got) + "'"};
        }
        ++at;
    }
    if (at != lines.size()) {
        std::string rest;
        for (; at < lines.size(); ++at) {
            rest += " '" + printable(lines[at]) + "'";
        }
        throw Failure{"unexpected further replies:" + rest};
    }
    if (status != t.status) {
        throw Failure{"exit status " + std::to_string(status) + ", expected " + std::to_string(t.status)};
    }
    std::vector<Stored> stored = messages(spool);
    for (const Transcript::Line& c : t.checks) {
        std::vector<std::string> words = split(c.arg, 3);
        const std::string& kind = words[0];
        auto message = [&](std::size_t n) -> const Stored& {
            if (n >= stored.size()) {
                throw Failure{c.where + ": no message " + std::to_string(n)};
            }
            return stored[n];
        };
        if (kind == "spool-count") {
            if (stored.size() != std::stoul(words.at(1))) {
                throw Failure{c.where + ": " + std::to_string(stored.size()) + " messages in the queue, expected " +
                              words[1]};
            }
        } else if (kind == "tmp-empty") {
            if (count_entries(spool + "/tmp") != 0) {
                throw Failure{c.where + ": tmp/ is not empty"};
            }
        } else if (kind == "envelope") {
            const Stored& m = message(std::stoul(words.at(1)));
            nlohmann::json want = nlohmann::json::parse(words.at(3));
            const nlohmann::json* got = nullptr;
            try {
                got = &pointer(m.envelope, words.at(2));
            } catch (const nlohmann::json::exception&) {
                throw Failure{c.where + ": envelope has no " + words[2]};
            }
            if (*got != want) {
                throw Failure{c.where + ": envelope " + words[2] + " is " + got->dump() + ", expected " + want.dump()};
            }
        } else if (kind == "absent") {
            const Stored& m = message(std::stoul(words.at(1)));
            try {
                const nlohmann::json& got = pointer(m.envelope, words.at(2));
                throw Failure{c.where + ": envelope " + words[2] + " is " + got.dump() + ", expected no such key"};
            } catch (const nlohmann::json::exception&) {
            }
        } else if (kind == "contains" || kind == "lacks" || kind == "body-is") {
            std::vector<std::string> three = split(c.arg, 2);
            std::string text = unescape(three.at(2));
            const Stored& m = message(std::stoul(three.at(1)));
            const std::string& body = m.body;
            if (kind == "contains" && body.find(text) == std::string::npos) {
                throw Failure{c.where + ": message lacks '" + printable(text) + "': " + printable(body.substr(0, 300))};
            }
            if (kind == "lacks" && body.find(text) != std::string::npos) {
                throw Failure{c.where + ": message contains '" + printable(text) + "'"};
            }
            if (kind == "body-is") {
                if (!starts_with(body, "Received: ")) {
                    throw Failure{c.where + ": message does not start with Received:"};
                }
                // The Received: header is the first header; its continuation lines start with a tab.
                std::size_t after = body.find("\r\n");
                while (after != std::string::npos && body.compare(after + 2, 1, "\t") == 0) {
                    after = body.find("\r\n", after + 2);
                }
                std::string rest = after == std::string::npos ? "" : body.substr(after + 2);
                if (rest != text) {
                    throw Failure{c.where + ": message after Received: is '" + printable(rest) + "', expected '" +
                                  printable(text) + "'"};
                }
            }
            if (m.envelope.at("size") != body.size()) {
                throw Failure{c.where + ": envelope size " + m.envelope.at("size").dump() +
                              " != " + std::to_string(body.size())};
            }
        } else {
            throw Failure{c.where + ": unknown check " + kind};
        }
    }
}

} // namespace

std::string unescape(std::string_view text)
{
    auto hex = [&](std::size_t i, std::size_t digits) -> unsigned long {
        if (i + digits > text.size()) {
            throw TranscriptError("truncated escape in " + std::string(text));
        }
        std::string h(text.substr(i, digits));
        if (h.find_first_not_of("0123456789abcdefABCDEF") != std::string::npos) {
            throw TranscriptError("bad escape in " + std::string(text));
        }
        return std::stoul(h, nullptr, 16);
    };
    std::string out;
    for (std::size_t i = 0; i < text.size(); ++i) {
        char c = text[i];
        if (c != '\\' || i + 1 == text.size()) {
            out += c;
            continue;
        }
        char e = text[++i];
        switch (e) {
        case '\\': out += '\\'; break;
        case '\'': out += '\''; break;
        case '"': out += '"'; break;
        case 'a': out += '\a'; break;
        case 'b': out += '\b'; break;
        case 'f': out += '\f'; break;
        case 'n': out += '\n'; break;
        case 'r': out += '\r'; break;
        case 't': out += '\t'; break;
        case 'v': out += '\v'; break;
        case '\n': break;
        case 'x':
        case 'u':
        case 'U': {
            std::size_t digits = e == 'x' ? 2 : e == 'u' ? 4 : 8;
            unsigned long v = hex(i + 1, digits);
            if (v > 0xff) {
                throw TranscriptError("escape beyond latin-1 in " + std::string(text));
            }
            out += static_cast<char>(v);
            i += digits;
            break;
        }
        default:
            if (e >= '0' && e <= '7') {
                unsigned v = 0;
                std::size_t n = 0;
                for (; n < 3 && i < text.size() && text[i] >= '0' && text[i] <= '7'; ++n, ++i) {
                    v = v * 8 + static_cast<unsigned>(text[i] - '0');
                }
                --i;
                out += static_cast<char>(v & 0xff);
            } else {
                out += '\\'; // Python keeps an unknown escape as it is
                out += e;
            }
        }
    }
    return out;
}

Transcript parse_transcript_text(const std::string& text, const std::string& name, const std::string& here)
{
    Transcript t;
    t.name = name;
    std::istringstream in(text);
    std::string line;
    for (int lineno = 1; std::getline(in, line); ++lineno) {
        std::string where = name + ":" + std::to_string(lineno);
        if (line.find_first_not_of(" \t\r\f\v") == std::string::npos || starts_with(line, "#")) {
            continue;
        }
        auto [op, arg] = partition(line);
        if (op == "!") {
            auto [key, value] = partition(arg);
            if (key == "mode") {
                t.modes = value == "both" ? std::vector<std::string>{"local", "network"} : std::vector{value};
            } else if (key == "option") {
                std::string option = value;
                for (std::size_t at; (at = option.find("{here}")) != std::string::npos;) {
                    option.replace(at, 6, here);
                }
                t.options.push_back(option);
            } else if (key == "env") {
                auto [n, v] = partition(value, '=');
                t.env[n] = v;
            } else if (key == "hold") {
                t.hold = std::stod(value);
            } else if (key == "status") {
                t.status = std::stoi(value);
            } else {
                throw TranscriptError(where + ": unknown directive " + key);
            }
        } else if (op == "->") {
            t.input += arg + "\r\n";
        } else if (op == "~>") {
            t.input += unescape(arg);
        } else if (op == "*>") {
            auto [count, body] = partition(arg);
            std::string raw = unescape(body);
            for (int i = 0; i < std::stoi(count); ++i) {
                std::string one = raw;
                for (std::size_t at = 0; (at = one.find("{n}", at)) != std::string::npos;) {
                    one.replace(at, 3, std::to_string(i));
                    at += std::to_string(i).size();
                }
                t.input += one;
            }
        } else if (op == "<=") {
            auto [count, body] = partition(arg);
            for (int i = 0; i < std::stoi(count); ++i) {
                t.expect.push_back({"<-", body, where});
            }
        } else if (op == "<-" || op == "<~" || op == "<*") {
            t.expect.push_back({op, arg, where});
        } else if (op == "=") {
            t.checks.push_back({op, arg, where});
        } else {
            throw TranscriptError(where + ": unknown line " + line);
        }
    }
    return t;
}

Transcript parse_transcript(const std::string& path)
{
    fs::path p(path);
    return parse_transcript_text(slurp(p), p.filename().string(), fs::absolute(p).parent_path().string());
}

std::optional<std::string> in_process_skip(const Transcript& t)
{
    if (t.hold > 0) {
        return "holds the input open for the transport's timers";
    }
    if (t.status != 0) {
        return "expects an exit status, which only the process has";
    }
    for (const std::string& o : t.options) {
        if (starts_with(o, "--proxy-protocol")) {
            return "the PROXY header is read from the connection before the session";
        }
        if (starts_with(o, "--tls-") || starts_with(o, "--require-tls")) {
            return "TLS needs the transport";
        }
        if (starts_with(o, "--timeout") || starts_with(o, "--max-session-time")) {
            return "the transport's timers";
        }
        if (starts_with(o, "--deliver-now")) {
            return "starts runq processes";
        }
        if (starts_with(o, "--max-connections")) {
            return "the rate limit is checked by serve before the session";
        }
    }
    return std::nullopt;
}

TranscriptRun run_in_process(const Transcript& t, const std::string& mode)
{
    TranscriptRun run;
    TempDir tmp;
    std::string spool = tmp.path() + "/spool";
    try {
        std::vector<std::string> args = {"smtpspool", "--spool", spool, "--hostname", "mx.test", "--log", "none"};
        args.insert(args.end(), t.options.begin(), t.options.end());
        std::vector<const char*> argv;
        for (const std::string& a : args) {
            argv.push_back(a.c_str());
        }
        auto parsed = parse_config(static_cast<int>(argv.size()), argv.data());
        if (auto* exit = std::get_if<ConfigExit>(&parsed)) {
            throw Failure{"the options do not parse (" + std::to_string(exit->status) + "): " + exit->text};
        }
        Config config = std::get<Config>(std::move(parsed));
        apply_machine_defaults(config, config.hostname);

        std::map<std::string, std::string> env = t.env;
        if (mode == "network") {
            for (const auto& [k, v] : k_network_env) {
                env.emplace(k, v); // the transcript's own values win
            }
        }
        EnvLookup lookup = [&env](const char* name) -> const char* {
            auto it = env.find(name);
            return it == env.end() ? nullptr : it->second.c_str();
        };
        // As run_serve: a pipe is a local client unless the superserver's variables say otherwise.
        SessionConfig sc = session_config(config);
        sc.peer = peer_from_environment(lookup).value_or(Peer{});
        sc.may_relay = may_relay(sc.peer, config.relay_clients, lookup);
        sc.client_denied = client_denied(sc.peer, config.deny_clients, config.allow_clients, lookup);

        auto files = load_policy_files(policy_config(config));
        if (!files) {
            throw Failure{"policy files: " + files.error().message};
        }
        auto log = make_log_sink(config.log);
        if (auto r = ensure_spool_layout(config.spool); !r) {
            throw Failure{"spool: " + r.error().message};
        }
        {
        // The session, policy and spool writer end here, as with the process,
        // before the spool is checked (the writer removes an unfinished message).
        SystemClock clock;
        PosixFs posix;
        SpoolWriter writer(config.spool, posix, clock, static_cast<long>(::getpid()));
        std::optional<PasswordFile> passwords = std::move(files.value().passwords);
        Policy policy(
            policy_config(config), std::move(files.value()), [&writer] { return writer.readable_message(); }, *log);
        Session session(std::move(sc), writer, policy, *log, clock);
        std::optional<CheckPassword> checkpassword;
        if (passwords) {
            session.use_auth(*passwords);
        } else if (config.auth_command) {
            session.use_auth(checkpassword.emplace(*config.auth_command, config.hook_timeout, *log));
        }

        Output greeting = session.start();
        run.replies = greeting.wire;
        if (!greeting.close) {
            Fed fed = feed_until_consumed(session, t.input);
            run.replies += fed.wire;
            if (fed.start_tls) {
                throw Failure{"STARTTLS accepted with no TLS configured"};
            }
            if (fed.stalled) {
                throw Failure{"Session::feed used none of the input and did not close"};
            }
            if (!fed.close) {
                // As the stdio transport at end of input: nothing more is written.
                session.end_of_input();
            }
        }
        }
        check(t, 0, run.replies, config.spool);
    } catch (const Failure& f) {
        run.error = f.message;
    } catch (const std::exception& e) {
        run.error = std::string("error: ") + e.what();
    }
    return run;
}

} // namespace testutil
