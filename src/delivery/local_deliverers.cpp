// local_deliverers: Maildir (tmp -> fsync -> new, per the maildir(5) convention)
// and pipe (/bin/sh -c through run_child, base/child_process, with a clean
// environment; exit 75 = try later).
#include "delivery/local_deliverers.hpp"

#include "base/atomic_file.hpp"
#include "base/child_process.hpp"
#include "base/fd.hpp"
#include "base/fs.hpp"
#include "base/limits.hpp"
#include "base/text.hpp"
#include "delivery/route.hpp"
#include "smtp/smtp_address.hpp"

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <sys/stat.h>
#include <optional>
#include <tuple>
#include <utility>
#include <unistd.h>

namespace smtpspool {
namespace {

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


std::string trace_headers(const Envelope& e, const std::string& address)
{
    // RFC 5321 §4.4: Return-Path is added at final delivery.
    return "Return-Path: <" + e.mail_from + ">\nDelivered-To: " + address + "\n";
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
    std::string local = canonical_local_part(at == std::string_view::npos ? address : address.substr(0, at));
    std::string domain = recipient_domain(address, fallback_domain);
    std::string out;
    for (std::size_t i = 0; i < pattern.size(); ++i) {
        if (pattern[i] == '%' && i + 1 < pattern.size() && (pattern[i + 1] == 'u' || pattern[i + 1] == 'd')) {
            out += text::file_name_component(pattern[i + 1] == 'u' ? local : std::string_view(domain));
            ++i;
        } else {
            out.push_back(pattern[i]);
        }
    }
    return out;
}

std::vector<RecipientOutcome> PerRecipientDeliverer::deliver(const Delivery& delivery)
{
    std::vector<RecipientOutcome> out;
    for (std::size_t i : delivery.recipients) {
        out.push_back(deliver_one(delivery, delivery.envelope.recipients[i].address));
    }
    return out;
}

MaildirDeliverer::MaildirDeliverer(std::string pattern, std::string hostname)
    : m_pattern(std::move(pattern)), m_hostname(std::move(hostname))
{
}

RecipientOutcome MaildirDeliverer::deliver_one(const Delivery& delivery, const std::string& address)
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
                       "Q" + std::to_string(++m_sequence) + "." + text::file_name_component(m_hostname);
    auto opened = delivery.open_message();
    if (!opened) {
        return temporary("cannot read the message: " + std::string(std::strerror(opened.error().errnum)));
    }
    Fd in = std::move(opened.value());
    PosixFs fs;
    Fd tmp_dir(fs.open(dir + "/tmp", O_RDONLY | O_DIRECTORY, 0));
    Fd new_dir(tmp_dir ? fs.open(dir + "/new", O_RDONLY | O_DIRECTORY, 0) : -1);
    if (!tmp_dir || !new_dir) {
        return temporary(errno_text("cannot open maildir " + dir));
    }
    AtomicTarget target;
    target.temp_dir = tmp_dir.get();
    target.temp_name = name;
    target.final_dir = new_dir.get();
    target.final_name = name;
    target.shown = dir + "/new/" + name;
    auto fill = [&](int fd) -> Result<void> {
        LfConverter lf;
        if (auto r = write_all(fs, fd, trace_headers(delivery.envelope, address), target.shown); !r) {
            return r;
        }
        char buf[65536];
        for (;;) {
            ssize_t n = fs.read(in.get(), buf, sizeof buf);
            if (n < 0) {
                return Error{errno, errno_text("cannot read the message")};
            }
            std::string_view chunk(buf, static_cast<std::size_t>(n));
            auto r = write_all(fs, fd, n == 0 ? lf.finish() : lf.convert(chunk), target.shown);
            if (!r || n == 0) {
                return r;
            }
        }
    };
    // tmp/NAME, fsync, rename into new/, fsync new/ (maildir(5)).
    if (auto r = write_file_atomically(fs, target, fill); !r) {
        return temporary(r.error().message);
    }
    return {Outcome::delivered, "delivered to maildir " + dir};
}

PipeDeliverer::PipeDeliverer(std::string command, std::string spool, std::string hostname,
                             std::chrono::seconds timeout)
    : m_command(std::move(command)), m_spool(std::move(spool)), m_hostname(std::move(hostname)), m_timeout(timeout)
{
}

RecipientOutcome PipeDeliverer::deliver_one(const Delivery& delivery, const std::string& address)
{
    auto opened = delivery.open_message();
    if (!opened) {
        return temporary("cannot read the message: " + std::string(std::strerror(opened.error().errnum)));
    }
    Fd in = std::move(opened.value());
    // The command reads the trace fields, then the message with LF line ends.
    std::string first = trace_headers(delivery.envelope, address);
    LfConverter lf;
    bool input_done = false;
    auto produce = [&]() -> std::optional<std::string> {
        if (!first.empty()) {
            return std::exchange(first, {});
        }
        if (input_done) {
            return std::nullopt;
        }
        char buf[65536];
        ssize_t n = ::read(in.get(), buf, sizeof buf);
        if (n > 0) {
            return lf.convert(std::string_view(buf, static_cast<std::size_t>(n)));
        }
        input_done = true;
        return lf.finish();
    };
    // Addresses reach the command only through its environment, never its command line.
    auto at = address.rfind('@');
    ChildRequest request;
    request.command = m_command;
    request.environment = {
        {"SENDER", delivery.envelope.mail_from},
        {"RECIPIENT", address},
        {"LOCAL", canonical_local_part(at == std::string::npos ? address : address.substr(0, at))},
        {"DOMAIN", recipient_domain(address, delivery.envelope.hostname)},
        {"MESSAGE_ID", delivery.envelope.id},
        {"SMTPSPOOL_SPOOL", m_spool},
        {"SMTPSPOOL_HOSTNAME", m_hostname},
    };
    request.input.produce = produce;
    request.merge_err = true;
    request.keep_out = {limits::k_pipe_output_kept, true};
    request.timeout = std::chrono::duration_cast<std::chrono::milliseconds>(m_timeout);
    request.kill_group_on_exit = false;
    ChildRun run = run_child(request);
    std::string tail = text::printable_tail(run.out, limits::k_pipe_output_shown);
    switch (run.end) {
    case ChildRun::End::timed_out:
        return temporary("pipe command timed out after " + std::to_string(m_timeout.count()) + " s");
    case ChildRun::End::signaled:
        return temporary("pipe command killed by signal " + std::to_string(run.status));
    case ChildRun::End::failed_to_start:
        if (run.status != 126 && run.status != 127) {
            return temporary(run.error);
        }
        break; // the shell's own exit status, reported as any other
    case ChildRun::End::exited:
        break;
    }
    if (run.status == 0) {
        return {Outcome::delivered, "delivered to pipe"};
    }
    std::string detail = "pipe command exited " + std::to_string(run.status) + (tail.empty() ? "" : ": " + tail);
    // sysexits(3): EX_TEMPFAIL asks for another try.
    return {run.status == 75 ? Outcome::temporary : Outcome::permanent, detail};
}

} // namespace smtpspool
