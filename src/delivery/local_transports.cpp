// local_transports: Maildir (tmp -> fsync -> new, per the maildir(5) convention)
// and pipe (/bin/sh -c as a ChildProcess, hook.hpp, with a clean environment; exit 75 = try later).
#include "delivery/local_transports.hpp"

#include "policy/hook.hpp"
#include "delivery/route.hpp"

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <poll.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <tuple>
#include <unistd.h>

namespace smtpspool {
namespace {

std::string safe_component(std::string_view text)
{
    std::string out;
    for (char c : text) {
        auto u = static_cast<unsigned char>(c);
        if (c == '"') {
            continue;
        }
        out.push_back(u < 0x20 || u == 0x7f || c == '/' || c == '\\' ? '_' : c);
    }
    for (std::size_t i = 0; i < out.size() && out[i] == '.'; ++i) {
        out[i] = '_'; // no ".", "..", or hidden names
    }
    return out.empty() ? "_" : out;
}

std::string errno_text(const std::string& what)
{
    return what + ": " + std::strerror(errno);
}

RecipientOutcome temporary(std::string detail) { return {Outcome::temporary, std::move(detail)}; }

// mkdir -p, mode 0700 for what it creates.
bool make_dirs(const std::string& path)
{
    for (std::size_t slash = path.find('/', 1);; slash = path.find('/', slash + 1)) {
        std::string part = path.substr(0, slash);
        if (::mkdir(part.c_str(), 0700) != 0 && errno != EEXIST) {
            return false;
        }
        if (slash == std::string::npos) {
            return true;
        }
    }
}

bool write_all(int fd, std::string_view bytes)
{
    while (!bytes.empty()) {
        ssize_t n = ::write(fd, bytes.data(), bytes.size());
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            return false;
        }
        bytes.remove_prefix(static_cast<std::size_t>(n));
    }
    return true;
}

std::string trace_headers(const Envelope& e, const std::string& address)
{
    // RFC 5321 §4.4: Return-Path is added at final delivery.
    return "Return-Path: <" + e.mail_from + ">\nDelivered-To: " + address + "\n";
}

std::string printable_tail(const std::string& text, std::size_t max)
{
    std::string tail = text.size() > max ? text.substr(text.size() - max) : text;
    for (char& c : tail) {
        auto u = static_cast<unsigned char>(c);
        if (u < 0x20 || u == 0x7f) {
            c = ' ';
        }
    }
    while (!tail.empty() && tail.back() == ' ') {
        tail.pop_back();
    }
    return tail;
}

} // namespace

std::string LfConverter::convert(std::string_view chunk)
{
    std::string out;
    out.reserve(chunk.size() + 1);
    for (char c : chunk) {
        if (m_cr) {
            m_cr = false;
            if (c != '\n') {
                out.push_back('\r');
            }
        }
        if (c == '\r') {
            m_cr = true;
        } else {
            out.push_back(c);
        }
    }
    return out;
}

std::string LfConverter::finish()
{
    bool cr = std::exchange(m_cr, false);
    return cr ? "\r" : "";
}

std::string expand_maildir_path(std::string_view pattern, std::string_view address, std::string_view fallback_domain)
{
    auto at = address.rfind('@');
    std::string_view local = at == std::string_view::npos ? address : address.substr(0, at);
    std::string domain = recipient_domain(address, fallback_domain);
    std::string out;
    for (std::size_t i = 0; i < pattern.size(); ++i) {
        if (pattern[i] == '%' && i + 1 < pattern.size() && (pattern[i + 1] == 'u' || pattern[i + 1] == 'd')) {
            out += safe_component(pattern[i + 1] == 'u' ? local : std::string_view(domain));
            ++i;
        } else {
            out.push_back(pattern[i]);
        }
    }
    return out;
}

std::vector<RecipientOutcome> PerRecipientTransport::deliver(const Delivery& delivery)
{
    std::vector<RecipientOutcome> out;
    for (std::size_t i : delivery.recipients) {
        out.push_back(deliver_one(delivery, delivery.envelope.recipients[i].address));
    }
    return out;
}

MaildirTransport::MaildirTransport(std::string pattern, std::string hostname)
    : m_pattern(std::move(pattern)), m_hostname(std::move(hostname))
{
}

RecipientOutcome MaildirTransport::deliver_one(const Delivery& delivery, const std::string& address)
{
    std::string dir = expand_maildir_path(m_pattern, address, delivery.envelope.hostname);
    for (const char* sub : {"/tmp", "/new", "/cur"}) {
        if (!make_dirs(dir + sub)) {
            return temporary(errno_text("cannot create maildir " + dir + sub));
        }
    }
    // maildir(5): a unique name from time, pid, a sequence and the host.
    auto now = std::chrono::system_clock::now().time_since_epoch();
    auto sec = std::chrono::duration_cast<std::chrono::seconds>(now);
    auto usec = std::chrono::duration_cast<std::chrono::microseconds>(now - sec).count();
    std::string name = std::to_string(sec.count()) + ".M" + std::to_string(usec) + "P" + std::to_string(::getpid()) +
                       "Q" + std::to_string(++m_sequence) + "." + safe_component(m_hostname);
    std::string tmp = dir + "/tmp/" + name;
    int in = ::open(delivery.message_path.c_str(), O_RDONLY | O_CLOEXEC);
    if (in < 0) {
        return temporary(errno_text("cannot read " + delivery.message_path));
    }
    int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) {
        ::close(in);
        return temporary(errno_text("cannot create " + tmp));
    }
    LfConverter lf;
    bool ok = write_all(fd, trace_headers(delivery.envelope, address));
    char buf[65536];
    ssize_t n = 0;
    while (ok && (n = ::read(in, buf, sizeof buf)) > 0) {
        ok = write_all(fd, lf.convert(std::string_view(buf, static_cast<std::size_t>(n))));
    }
    ok = ok && n == 0 && write_all(fd, lf.finish()) && ::fsync(fd) == 0;
    std::string detail = ok ? "" : errno_text("cannot write " + tmp);
    ok = ::close(fd) == 0 && ok;
    ::close(in);
    if (ok && ::rename(tmp.c_str(), (dir + "/new/" + name).c_str()) != 0) {
        ok = false;
        detail = errno_text("cannot move " + tmp + " into new/");
    }
    if (ok) {
        int d = ::open((dir + "/new").c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        ok = d >= 0 && ::fsync(d) == 0;
        if (d >= 0) {
            ::close(d);
        }
        if (!ok) {
            // The file is in new/ already; without the fsync it may not survive a crash.
            return temporary(errno_text("cannot fsync " + dir + "/new"));
        }
        return {Outcome::delivered, "delivered to maildir " + dir};
    }
    std::ignore = ::unlink(tmp.c_str());
    return temporary(detail.empty() ? errno_text("cannot deliver to " + dir) : detail);
}

PipeTransport::PipeTransport(std::string command, std::string spool, std::string hostname,
                             std::chrono::seconds timeout)
    : m_command(std::move(command)), m_spool(std::move(spool)), m_hostname(std::move(hostname)), m_timeout(timeout)
{
}

RecipientOutcome PipeTransport::deliver_one(const Delivery& delivery, const std::string& address)
{
    int in = ::open(delivery.message_path.c_str(), O_RDONLY | O_CLOEXEC);
    if (in < 0) {
        return temporary(errno_text("cannot read " + delivery.message_path));
    }
    int to_child[2], from_child[2];
    if (::pipe2(to_child, O_CLOEXEC) != 0) {
        ::close(in);
        return temporary(errno_text("pipe"));
    }
    if (::pipe2(from_child, O_CLOEXEC) != 0) {
        ::close(in);
        ::close(to_child[0]);
        ::close(to_child[1]);
        return temporary(errno_text("pipe"));
    }
    // Addresses reach the command only through its environment, never its command line.
    auto at = address.rfind('@');
    auto env = child_environment({
        {"SENDER", delivery.envelope.mail_from},
        {"RECIPIENT", address},
        {"LOCAL", at == std::string::npos ? address : address.substr(0, at)},
        {"DOMAIN", recipient_domain(address, delivery.envelope.hostname)},
        {"MESSAGE_ID", delivery.envelope.id},
        {"SMTPSPOOL_SPOOL", m_spool},
        {"SMTPSPOOL_HOSTNAME", m_hostname},
    });
    auto child = env ? ChildProcess::spawn(m_command, env.value(), {to_child[0], from_child[1], from_child[1]})
                     : Result<ChildProcess>(env.error());
    if (!child) {
        ::close(in);
        for (int fd : {to_child[0], to_child[1], from_child[0], from_child[1]}) {
            ::close(fd);
        }
        return temporary(child.error().message);
    }
    ::close(to_child[0]);
    ::close(from_child[1]);
    int out = to_child[1];
    int err = from_child[0];
    ::fcntl(out, F_SETFL, O_NONBLOCK);
    std::string pending = trace_headers(delivery.envelope, address);
    std::string output;
    LfConverter lf;
    bool input_done = false;
    bool timed_out = false;
    auto deadline = std::chrono::steady_clock::now() + m_timeout;
    while (err >= 0) {
        if (!input_done && pending.empty()) {
            char buf[65536];
            ssize_t n = ::read(in, buf, sizeof buf);
            if (n > 0) {
                pending = lf.convert(std::string_view(buf, static_cast<std::size_t>(n)));
            } else {
                pending = lf.finish();
                input_done = true;
            }
        }
        if (input_done && pending.empty() && out >= 0) {
            ::close(out);
            out = -1;
        }
        pollfd fds[2] = {{err, POLLIN, 0}, {out, POLLOUT, 0}};
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
        if (left.count() <= 0) {
            timed_out = true;
            break;
        }
        if (::poll(fds, out >= 0 ? 2 : 1, static_cast<int>(left.count())) < 0 && errno != EINTR) {
            break;
        }
        if (out >= 0 && (fds[1].revents & (POLLOUT | POLLERR | POLLHUP))) {
            ssize_t n = ::write(out, pending.data(), pending.size());
            if (n > 0) {
                pending.erase(0, static_cast<std::size_t>(n));
            } else if (n < 0 && errno != EAGAIN && errno != EINTR) {
                // The command stopped reading (EPIPE): its exit status decides.
                ::close(out);
                out = -1;
                input_done = true;
                pending.clear();
            }
        }
        if (fds[0].revents & (POLLIN | POLLHUP | POLLERR)) {
            char buf[4096];
            ssize_t n = ::read(err, buf, sizeof buf);
            if (n > 0) {
                output.append(buf, static_cast<std::size_t>(n));
                if (output.size() > 8192) {
                    output.erase(0, output.size() - 4096);
                }
            } else if (n == 0 || (errno != EINTR && errno != EAGAIN)) {
                ::close(err);
                err = -1;
            }
        }
    }
    if (out >= 0) {
        ::close(out);
    }
    if (err >= 0) {
        ::close(err);
    }
    ::close(in);
    // The command may have closed its output and still be running: wait for
    // it until the same deadline.
    timed_out = timed_out || !child.value().wait_until(deadline);
    int status = timed_out ? child.value().stop() : child.value().reap();
    std::string tail = printable_tail(output, 300);
    if (timed_out) {
        return temporary("pipe command timed out after " + std::to_string(m_timeout.count()) + " s");
    }
    if (WIFSIGNALED(status)) {
        return temporary("pipe command killed by signal " + std::to_string(WTERMSIG(status)));
    }
    int code = WEXITSTATUS(status);
    if (code == 0) {
        return {Outcome::delivered, "delivered to pipe"};
    }
    std::string detail = "pipe command exited " + std::to_string(code) + (tail.empty() ? "" : ": " + tail);
    // sysexits(3): EX_TEMPFAIL asks for another try.
    return {code == 75 ? Outcome::temporary : Outcome::permanent, detail};
}

} // namespace smtpspool
