// transcript: the session transcript file (contract in transcript.hpp).
#include "server/transcript.hpp"

#include "base/clock.hpp"
#include "base/fs.hpp"
#include "base/text.hpp"

#include <algorithm>
#include <cerrno>
#include <dirent.h>
#include <chrono>
#include <ctime>
#include <fcntl.h>
#include <tuple>
#include <unistd.h>

namespace smtpspool {
namespace {

// Of each transcript, open_transcript_of reads at most this much.
constexpr std::size_t k_max_searched = 64 << 20;

} // namespace

Result<SessionTranscript> SessionTranscript::open(const std::string& dir, std::size_t max_size, long pid)
{
    Fd d(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (!d) {
        return sys_error("transcript directory " + dir);
    }
    std::string base = id_timestamp(std::chrono::system_clock::now()) + "-" + std::to_string(pid);
    std::string name = base + ".open";
    Fd f = openat_nofollow(d.get(), name, O_WRONLY | O_CREAT | O_EXCL | O_APPEND, 0640);
    if (!f) {
        return sys_error("transcript " + dir + "/" + name);
    }
    SessionTranscript t(std::move(d), std::move(f), std::move(base), max_size);
    t.m_name = std::move(name);
    return t;
}

SessionTranscript::SessionTranscript(Fd dir, Fd file, std::string base, std::size_t max_size)
    : m_dir(std::move(dir)), m_file(std::move(file)), m_base(std::move(base)), m_max_size(max_size)
{
}

void SessionTranscript::write_line(char direction, std::string_view text)
{
    if (m_truncated || !m_file) {
        return;
    }
    std::string line = log_time_now();
    line += ' ';
    line += direction;
    line += ' ';
    line += text::terminal_text(text);
    line += '\n';
    if (m_written + line.size() > m_max_size) {
        line = log_time_now() + " * [transcript truncated: at most " + std::to_string(m_max_size) + " octets]\n";
        m_truncated = true;
    }
    std::string_view rest = line;
    while (!rest.empty()) {
        ssize_t n = ::write(m_file.get(), rest.data(), rest.size());
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            m_file.reset(); // a full disk ends the transcript, never the session
            return;
        }
        rest.remove_prefix(static_cast<std::size_t>(n));
    }
    m_written += line.size();
}

void SessionTranscript::client_line(std::string_view line) { write_line('>', line); }

void SessionTranscript::server(std::string_view wire)
{
    while (!wire.empty()) {
        std::size_t end = wire.find("\r\n");
        std::string_view line = wire.substr(0, end);
        write_line('<', line);
        wire.remove_prefix(end == std::string_view::npos ? wire.size() : end + 2);
    }
}

void SessionTranscript::event(const LogLine& line) { write_line('*', line.str()); }

void SessionTranscript::finish(const std::vector<std::string>& ids)
{
    std::string name = m_base;
    for (const std::string& id : ids) {
        if (name.size() + 1 + id.size() + 4 > 240) {
            break;
        }
        name += '+';
        name += id;
    }
    name += ".txt";
    if (m_dir && ::renameat(m_dir.get(), m_name.c_str(), m_dir.get(), name.c_str()) == 0) {
        m_name = std::move(name);
    }
    m_file.reset();
}

Result<Fd> open_transcript_of(const std::string& dir, const std::string& id)
{
    Fd d(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (!d) {
        return sys_error("transcript directory " + dir);
    }
    std::vector<std::string> names;
    {
        DIR* listing = ::fdopendir(::dup(d.get()));
        if (listing == nullptr) {
            return sys_error("transcript directory " + dir);
        }
        while (dirent* e = ::readdir(listing)) {
            std::string name = e->d_name;
            auto ends = [&name](std::string_view tail) {
                return name.size() > tail.size() && name.compare(name.size() - tail.size(), tail.size(), tail) == 0;
            };
            if (name[0] != '.' && (ends(".txt") || ends(".open"))) {
                names.push_back(std::move(name));
            }
        }
        ::closedir(listing);
    }
    std::sort(names.begin(), names.end());
    for (const std::string& name : names) {
        if (name.find("+" + id + "+") != std::string::npos || name.find("+" + id + ".txt") != std::string::npos) {
            Fd f = openat_nofollow(d.get(), name, O_RDONLY, 0);
            return f ? Result<Fd>(std::move(f)) : Result<Fd>(sys_error("transcript " + dir + "/" + name));
        }
    }
    const std::string mark = " * event=queued id=" + id + " ";
    for (const std::string& name : names) {
        Fd f = openat_nofollow(d.get(), name, O_RDONLY, 0);
        if (!f) {
            continue;
        }
        std::string text;
        char buf[65536];
        ssize_t n;
        while (text.size() < k_max_searched && (n = ::read(f.get(), buf, sizeof buf)) > 0) {
            text.append(buf, static_cast<std::size_t>(n));
        }
        if (text.find(mark) != std::string::npos && ::lseek(f.get(), 0, SEEK_SET) == 0) {
            return f;
        }
    }
    return Error{ENOENT, "no transcript of " + id + " in " + dir};
}

void TranscriptLog::log(const LogLine& line)
{
    m_next.log(line);
    m_transcript.event(line);
}

} // namespace smtpspool
