// sendmail: flag parsing, the header section of a submitted message (address
// extraction, Bcc: removal, the fields added when missing), and the commit.
#include "cli/sendmail.hpp"
#include "cli/terminal.hpp"

#include "base/clock.hpp"
#include "base/fs.hpp"
#include "base/limits.hpp"
#include "base/log.hpp"
#include "base/text.hpp"
#include "policy/policy.hpp"
#include "delivery/route.hpp"
#include "smtp/dsn.hpp"
#include "smtp/header_check.hpp"
#include "smtp/smtp_address.hpp"
#include "spool/spool.hpp"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <iostream>
#include <iterator>
#include <pwd.h>
#include <unistd.h>

namespace smtpspool {
namespace {

// The header section is held in memory to find recipients and missing fields.
constexpr std::size_t k_max_header_section = 1 << 20;
// The body is read in pieces of at most this many octets, however long its
// lines: memory stays bounded whatever comes on standard input.
constexpr std::size_t k_body_piece = 1 << 16;

// RFC 5322 §2.1 allows no NUL in a message, and a next hop that drops NULs
// could find an end of data in CRLF NUL . CRLF: refused, like serve does.
constexpr const char* k_nul_refused = "the message contains a NUL octet (not allowed in mail)";

// "Name: value" -> "name"; "" when the line is not a field.
std::string field_name(std::string_view line)
{
    std::size_t colon = line.find(':');
    if (colon == 0 || colon == std::string_view::npos) {
        return "";
    }
    std::string_view name = line.substr(0, colon);
    while (!name.empty() && (name.back() == ' ' || name.back() == '\t')) {
        name.remove_suffix(1);
    }
    if (!is_field_name(name)) {
        return "";
    }
    return ascii_lower(name);
}

// Reads fd a line (or a piece of a long one) at a time through a LineSplitter.
class LineReader {
public:
    explicit LineReader(int fd) : m_fd(fd) {}
    // false at the end of input; `error` set when read(2) failed.
    bool next(std::string& line)
    {
        for (;;) {
            std::string_view rest(m_buf + m_pos, m_len - m_pos);
            bool done = m_split.take(rest, line);
            m_pos = m_len - rest.size();
            if (done) {
                return true;
            }
            ssize_t n = ::read(m_fd, m_buf, sizeof m_buf);
            if (n < 0 && errno == EINTR) {
                continue;
            }
            if (n <= 0) {
                error = n < 0 ? errno : 0;
                return m_split.finish(line);
            }
            m_pos = 0;
            m_len = static_cast<std::size_t>(n);
        }
    }
    // Lines longer than this come in pieces (LineSplitter).
    void set_max_piece(std::size_t n) { m_split.set_max_piece(n); }
    bool starts_line() const { return m_split.starts_line(); }
    int error = 0;

private:
    int m_fd;
    LineSplitter m_split;
    char m_buf[65536];
    std::size_t m_pos = 0, m_len = 0;
};

std::string login_name()
{
    if (const passwd* pw = ::getpwuid(::getuid())) {
        return pw->pw_name;
    }
    return "uid" + std::to_string(::getuid());
}

} // namespace

bool LineSplitter::take(std::string_view& input, std::string& line)
{
    if (m_complete) {
        line.clear();
        m_complete = false;
        m_starts = !m_open;
    }
    while (!input.empty()) {
        char c = input.front();
        input.remove_prefix(1);
        if (m_after_cr) {
            m_after_cr = false;
            if (c == '\n') {
                continue; // the LF of a CRLF: the CR already ended the line
            }
        }
        if (c == '\n' || c == '\r') {
            m_after_cr = c == '\r';
            line += "\r\n";
            m_complete = true;
            m_open = false;
            return true;
        }
        line.push_back(c);
        if (line.size() >= m_max) {
            m_complete = true;
            m_open = true; // the rest of the line follows in the next piece
            return true;
        }
    }
    return false;
}

bool LineSplitter::finish(std::string& line)
{
    if (m_complete) {
        line.clear();
        m_complete = false;
        m_starts = !m_open;
    }
    if (line.empty() && !m_open) {
        return false;
    }
    line += "\r\n"; // a last line without its line end
    m_complete = true;
    m_open = false;
    return true;
}

HeaderSection::Step HeaderSection::add(const std::string& line)
{
    bool first = m_first;
    m_first = false;
    if (first && (line.rfind("From ", 0) == 0 || line.rfind(">From ", 0) == 0)) {
        if (line.size() > k_max_header_section) {
            return Step::too_long; // a piece of a line without end, not a separator
        }
        skipped_from_line = true;
        return Step::more;
    }
    size += line.size();
    if (size > k_max_header_section) {
        return Step::too_long;
    }
    if ((line[0] == ' ' || line[0] == '\t') && !fields.empty() && line != "\r\n") {
        fields.back().text += line;
        return Step::more;
    }
    std::string name = field_name(line);
    if (name.empty()) {
        size -= line.size();
        first_body_line = line;
        return Step::body;
    }
    fields.push_back({std::move(name), line});
    return Step::more;
}

std::string submission_mailbox(std::string_view text, const std::string& hostname, bool& non_ascii)
{
    std::string a(text::trim_space(text));
    if (a.size() >= 2 && a.front() == '<' && a.back() == '>') {
        a = a.substr(1, a.size() - 2);
    }
    if (a.find('@') == std::string::npos) {
        a += "@" + hostname;
    }
    PathParse p = parse_path("<" + a + ">", PathKind::forward);
    if (p.error != PathError::none || p.end != a.size() + 2 || p.path.domain.empty()) {
        return "";
    }
    non_ascii = non_ascii || p.path.non_ascii;
    return p.path.local + "@" + ascii_lower(p.path.domain);
}

std::variant<SendmailOptions, std::string> parse_sendmail_args(const std::vector<std::string>& args)
{
    SendmailOptions o;
    // Our own long options (with a value unless listed as flags).
    static const std::vector<std::string> with_value{"--config", "--spool", "--log", "--log-format", "--hostname", "--user"};
    for (std::size_t i = 0; i < args.size(); ++i) {
        const std::string& a = args[i];
        auto value = [&](std::size_t skip) -> std::optional<std::string> {
            if (a.size() > skip) {
                return a.substr(skip);
            }
            if (i + 1 < args.size()) {
                return args[++i];
            }
            return std::nullopt;
        };
        if (a == "--") {
            o.recipients.insert(o.recipients.end(), args.begin() + static_cast<std::ptrdiff_t>(i) + 1, args.end());
            break;
        }
        if (a.rfind("--", 0) == 0) {
            std::string name = a.substr(0, a.find('='));
            if (std::find(with_value.begin(), with_value.end(), name) == with_value.end()) {
                return "unknown option " + a + " (smtpspool's own here: --config, --spool, --log, --log-format, --hostname, --user)";
            }
            o.ours.push_back(a);
            if (a.find('=') == std::string::npos) {
                if (i + 1 >= args.size()) {
                    return a + " needs a value";
                }
                o.ours.push_back(args[++i]);
            }
            continue;
        }
        if (a.size() < 2 || a[0] != '-') {
            o.recipients.push_back(a);
            continue;
        }
        if (a == "-t") {
            o.extract = true;
        } else if (a == "-i" || a == "-oi") {
            o.dot_ends = false;
        } else if (a == "-bm") {
            o.mode = SendmailOptions::Mode::submit;
        } else if (a == "-bp") {
            o.mode = SendmailOptions::Mode::list_queue;
        } else if (a == "-bs") {
            o.mode = SendmailOptions::Mode::smtp;
        } else if (a == "-bi" || a == "-I") {
            o.mode = SendmailOptions::Mode::check_aliases;
        } else if (a == "-bv") {
            o.mode = SendmailOptions::Mode::verify;
        } else if (a.rfind("-q", 0) == 0) {
            // -q once, -qf once (runq always runs in the foreground), -qTIME
            // every TIME.
            o.mode = SendmailOptions::Mode::run_queue;
            o.interval.reset();
            if (a.size() > 2 && a != "-qf") {
                if (a[2] < '0' || a[2] > '9') {
                    return "unsupported flag " + a + " (-q, -qf or -qTIME)";
                }
                o.interval = a.substr(2);
            }
        } else if (a.size() == 3 && (a[1] == 'e') && std::string_view("pmewq").find(a[2]) != std::string_view::npos) {
            o.quiet = a[2] == 'q'; // -ep, -em, -ee, -ew: errors on standard error; -eq: none
        } else if (a.size() == 4 && a.rfind("-oe", 0) == 0 && std::string_view("pmewq").find(a[3]) != std::string_view::npos) {
            o.quiet = a[3] == 'q';
        } else if (a == "-G") {
            // A relayed (gateway) submission: the same checks apply.
        } else if (a.rfind("-O", 0) == 0) {
            auto v = value(2);
            if (!v || v->find('=') == std::string::npos || v->front() == '=') {
                return "-O needs option=value";
            }
            // IgnoreDots is -oi; other long sendmail options are ignored.
            if (ascii_lower(v->substr(0, v->find('='))) == "ignoredots") {
                std::string b = ascii_lower(v->substr(v->find('=') + 1));
                if (b == "true" || b == "t" || b == "yes" || b == "y" || b == "on" || b.empty()) {
                    o.dot_ends = false;
                } else if (b == "false" || b == "f" || b == "no" || b == "n" || b == "off") {
                    o.dot_ends = true;
                } else {
                    return "-O IgnoreDots needs true or false";
                }
            }
        } else if (a.rfind("-N", 0) == 0) {
            auto v = value(2);
            std::string why;
            if (!v || !(o.notify = parse_notify(*v, why))) {
                return "-N needs never or a list of success, failure, delay" + (why.empty() ? "" : " (" + why + ")");
            }
        } else if (a.rfind("-R", 0) == 0) {
            auto v = value(2);
            std::string r = v ? ascii_lower(*v) : "";
            if (r != "full" && r != "hdrs") {
                return "-R needs full or hdrs";
            }
            o.ret = r == "full" ? "FULL" : "HDRS";
        } else if (a.rfind("-V", 0) == 0) {
            auto v = value(2);
            std::string why = "an envelope id";
            if (!v || !(o.envid = parse_envid(*v, why))) {
                return "-V needs an envelope id: " + why;
            }
        } else if (a.rfind("-f", 0) == 0 || a.rfind("-r", 0) == 0) {
            auto v = value(2);
            if (!v) {
                return a + " needs a sender address";
            }
            o.sender = *v;
        } else if (a.rfind("-F", 0) == 0) {
            auto v = value(2);
            if (!v) {
                return "-F needs a name";
            }
            o.full_name = *v;
        } else if (a.rfind("-C", 0) == 0) {
            auto v = value(2);
            if (!v) {
                return "-C needs a configuration file";
            }
            o.ours.insert(o.ours.end(), {"--config", *v});
        } else if (a.rfind("-o", 0) == 0 || a == "-v" || a == "-U" || a == "-Am" || a == "-Ac") {
            // Other sendmail options (-oem, -odb, ...) and verbosity: ignored.
        } else if (a.rfind("-B", 0) == 0 || a.rfind("-h", 0) == 0 || a.rfind("-L", 0) == 0) {
            if (!value(2)) {
                return a + " needs a value";
            }
            // Body type (detected from the content), hop count, log tag: ignored.
        } else {
            return "unknown flag " + a;
        }
    }
    return o;
}

std::vector<std::string> header_addresses(std::string_view folded)
{
    // Unfolded first (RFC 5322 2.2.3): no line end survives, not even inside
    // a quoted string or after a backslash.
    std::string body;
    body.reserve(folded.size());
    std::copy_if(folded.begin(), folded.end(), std::back_inserter(body), [](char c) { return c != '\r' && c != '\n'; });
    // Split at top-level commas and semicolons (group ends), skipping quoted
    // strings, comments and the part of a group before its colon.
    std::vector<std::string> out;
    std::string item;
    std::string angle;
    bool in_angle = false, has_angle = false;
    int comment = 0;
    bool quoted = false;
    auto finish = [&] {
        std::string a(text::trim_space(has_angle ? std::string_view(angle) : std::string_view(item)));
        if (!a.empty()) {
            out.push_back(a);
        } else if (has_angle) {
            out.push_back("<>"); // the null address: never a recipient, and said so
        }
        item.clear();
        angle.clear();
        has_angle = in_angle = false;
    };
    for (std::size_t i = 0; i < body.size(); ++i) {
        char c = body[i];
        if (quoted) {
            if (c == '\\' && i + 1 < body.size()) {
                (in_angle ? angle : item) += c;
                c = body[++i];
            } else if (c == '"') {
                quoted = false;
            }
            (in_angle ? angle : item) += c;
            continue;
        }
        if (comment > 0) {
            if (c == '\\') {
                ++i;
            } else if (c == '(') {
                ++comment;
            } else if (c == ')') {
                --comment;
            }
            continue;
        }
        switch (c) {
        case '"':
            quoted = true;
            (in_angle ? angle : item) += c;
            break;
        case '(':
            comment = 1;
            break;
        case '<':
            in_angle = has_angle = true;
            angle.clear();
            break;
        case '>':
            in_angle = false;
            break;
        case ':':
            if (in_angle) {
                angle += c; // a source route; the path parser drops it
            } else {
                item.clear(); // "group name:" -- the members follow
            }
            break;
        case ',':
        case ';':
            if (in_angle) {
                angle += c;
            } else {
                finish();
            }
            break;
        default:
            (in_angle ? angle : item) += c;
        }
    }
    finish();
    return out;
}

namespace {

// Why a submission was not queued: the sysexits(3) status, chosen where the
// failure is known, and the message for standard error.
struct Refused {
    int status;
    std::string message;
};

template <typename T>
using Step = Result<T, Refused>;

Refused refused(int status, std::string message) { return Refused{status, std::move(message)}; }

// -f, or the user at our host name; "" for the null sender.
Step<std::string> submission_sender(const SendmailOptions& options, const Config& config, const std::string& user,
                                    bool& non_ascii)
{
    if (!options.sender) {
        std::string sender = submission_mailbox(user, config.hostname, non_ascii);
        return sender.empty() ? "postmaster@" + config.hostname : sender;
    }
    std::string s(text::trim_space(*options.sender));
    if (s == "<>" || s.empty()) {
        return std::string();
    }
    std::string sender = submission_mailbox(s, config.hostname, non_ascii);
    if (sender.empty()) {
        return fail(refused(k_exit_dataerr, "not a sender address: '" + text::terminal_text(*options.sender) + "'"));
    }
    return sender;
}

// The header section: whole fields, up to the empty line (or the first line
// that is not a field: the body starts there). `ended` when the message
// ended ("." or end of input) inside it.
Step<HeaderSection> read_header_section(LineReader& in, const SendmailOptions& options, bool& ended)
{
    HeaderSection header;
    std::string line;
    ended = false;
    // A header line is held whole up to the header section's limit; a longer
    // one comes as a piece just over it, refused as too long before the
    // rest of it is read. Every line taken here (the first body line too)
    // is checked for NUL.
    in.set_max_piece(k_max_header_section + 1);
    for (;;) {
        if (!in.next(line) || (options.dot_ends && line == ".\r\n")) {
            ended = true;
            break;
        }
        if (line.find('\0') != std::string::npos) {
            return fail(refused(k_exit_dataerr, k_nul_refused));
        }
        HeaderSection::Step step = header.add(line);
        if (step == HeaderSection::Step::too_long) {
            return fail(refused(k_exit_dataerr, "the header section is longer than 1 MiB"));
        }
        if (step == HeaderSection::Step::body) {
            break;
        }
    }
    if (in.error != 0) {
        return fail(refused(k_exit_ioerr, std::string("cannot read the message: ") + std::strerror(in.error)));
    }
    return header;
}

// The fields -t takes recipients from: To:, Cc: and Bcc:; or, when the message
// is being resent (RFC 5322 §3.6.6), the Resent-To:, Resent-Cc: and
// Resent-Bcc: of the most recent resent block (the first run of Resent-
// fields from the top: each resender puts its block above the others).
std::vector<const HeaderSection::Field*> recipient_fields(const HeaderSection& header)
{
    auto resent = [](const HeaderSection::Field& f) { return f.name.rfind("resent-", 0) == 0; };
    auto first = std::find_if(header.fields.begin(), header.fields.end(), resent);
    std::vector<const HeaderSection::Field*> out;
    if (first == header.fields.end()) {
        for (const HeaderSection::Field& f : header.fields) {
            if (f.name == "to" || f.name == "cc" || f.name == "bcc") {
                out.push_back(&f);
            }
        }
        return out;
    }
    for (auto f = first; f != header.fields.end() && resent(*f); ++f) {
        if (f->name == "resent-to" || f->name == "resent-cc" || f->name == "resent-bcc") {
            out.push_back(&*f);
        }
    }
    return out;
}

// The recipients of the command line, and with -t those of the fields named
// by recipient_fields(), each once, in order.
Step<std::vector<std::string>> collect_recipients(const SendmailOptions& options, const HeaderSection& header,
                                                  const Config& config, bool& non_ascii)
{
    std::vector<std::string> recipients;
    auto add = [&](std::string_view text) -> bool {
        std::string m = submission_mailbox(text, config.hostname, non_ascii);
        if (m.empty()) {
            return false;
        }
        if (std::find(recipients.begin(), recipients.end(), m) == recipients.end()) {
            recipients.push_back(m);
        }
        return true;
    };
    for (const std::string& arg : options.recipients) {
        for (const std::string& a : header_addresses(arg)) {
            if (!add(a)) {
                return fail(refused(k_exit_dataerr, "not a recipient address: '" + text::terminal_text(a) + "'"));
            }
        }
    }
    bool resent = false;
    if (options.extract) {
        resent = std::any_of(header.fields.begin(), header.fields.end(),
                             [](const HeaderSection::Field& f) { return f.name.rfind("resent-", 0) == 0; });
        for (const HeaderSection::Field* field : recipient_fields(header)) {
            const HeaderSection::Field& f = *field;
            for (const std::string& a : header_addresses(std::string_view(f.text).substr(f.text.find(':') + 1))) {
                if (!add(a)) {
                    return fail(refused(k_exit_dataerr, "not a recipient address in " +
                                                            f.text.substr(0, f.text.find(':')) + ": '" +
                                                            text::terminal_text(a) + "'"));
                }
            }
        }
    }
    if (recipients.empty()) {
        if (!options.extract) {
            return fail(refused(k_exit_usage, "no recipients given (or use -t)"));
        }
        return fail(refused(k_exit_dataerr, resent ? "no recipients in Resent-To:, Resent-Cc: or Resent-Bcc:"
                                                   : "no recipients in To:, Cc: or Bcc:"));
    }
    return recipients;
}

// --aliases applies to local submissions too (root: admin@...); the other
// policy files do not.
Step<std::vector<Recipient>> expand_aliases(const std::vector<std::string>& recipients, const Config& config)
{
    auto files = load_policy_files(policy_config(config));
    if (!files) {
        return fail(refused(k_exit_config, files.error().message));
    }
    auto is_local = [&](std::string_view d) { return is_local_domain(d, config.local_domains); };
    std::vector<Recipient> targets;
    for (const std::string& r : recipients) {
        std::vector<std::string> expanded{r};
        if (files.value().aliases && files.value().aliases->has(r, is_local)) {
            auto e = files.value().aliases->expand(r, is_local, config.max_recipients, config.hostname);
            if (auto* refusal = std::get_if<Aliases::Refused>(&e)) {
                return fail(refused(k_exit_dataerr, r + ": " + refusal->why));
            }
            expanded = std::get<std::vector<std::string>>(e);
        }
        for (Recipient& t : new_recipients(targets, std::move(expanded), r)) {
            targets.push_back(std::move(t));
        }
    }
    if (targets.size() > config.max_recipients) {
        return fail(refused(k_exit_dataerr, "more than " + std::to_string(config.max_recipients) + " recipients"));
    }
    return targets;
}

// Writes the message into the spool and commits it with its envelope.
Step<Envelope> queue_submission(LineReader& in, const HeaderSection& header, bool ended,
                                const SendmailOptions& options, const Config& config, LocalSubmission facts,
                                std::vector<Recipient> targets, bool non_ascii, LogSink& log)
{
    // Not allowed to write the spool is for the administrator to fix, not a
    // reason to try again: 77; a file-size limit (EFBIG: ulimit -f,
    // LimitFSIZE=) stops this message again whenever it is tried: 73; any
    // other failure is temporary: 75.
    auto spool_failure = [](const Error& e) {
        if (e.errnum == EFBIG) {
            return k_exit_cantcreat;
        }
        return e.errnum == EACCES || e.errnum == EPERM ? k_exit_noperm : k_exit_tempfail;
    };
    if (auto r = ensure_spool_layout(config.spool); !r) {
        return fail(refused(spool_failure(r.error()), r.error().message));
    }
    SystemClock clock;
    PosixFs fs;
    SpoolWriter writer(config.spool, fs, clock, static_cast<long>(::getpid()));
    auto id = writer.begin();
    if (!id) {
        log.log(LogLine("spool-error").add("reason", id.error().message));
        return fail(refused(spool_failure(id.error()), "message not queued: " + id.error().message));
    }
    TimePoint now = clock.now();
    facts.id = id.value();
    facts.date = rfc5322_date(now);
    std::size_t size = 0;
    bool eight_bit = false;
    Result<void> written;
    auto put = [&](std::string_view bytes) {
        if (!written) {
            return;
        }
        size += bytes.size();
        eight_bit = eight_bit || std::any_of(bytes.begin(), bytes.end(), [](char c) { return c & 0x80; });
        written = writer.append(bytes);
    };
    put(local_header_section(header, facts));
    if (!ended) {
        if (header.first_body_line != "\r\n") {
            put("\r\n"); // the body began without the empty line
        }
        put(header.first_body_line);
        std::string line;
        in.set_max_piece(k_body_piece);
        while (written && in.next(line)) {
            if (options.dot_ends && in.starts_line() && line == ".\r\n") {
                break;
            }
            if (line.find('\0') != std::string::npos) {
                return fail(refused(k_exit_dataerr, k_nul_refused));
            }
            put(line);
            if (size > config.max_message_size) {
                return fail(refused(k_exit_dataerr, "the message is larger than max-message-size (" +
                                                        std::to_string(config.max_message_size) + ")"));
            }
        }
        if (in.error != 0) {
            return fail(refused(k_exit_ioerr, std::string("cannot read the message: ") + std::strerror(in.error)));
        }
    }
    if (!written) {
        return fail(refused(spool_failure(written.error()), "message not queued: " + written.error().message));
    }
    if (size > config.max_message_size) {
        return fail(refused(k_exit_dataerr, "the message is larger than max-message-size"));
    }
    Envelope e;
    e.received_at = rfc3339_utc(now);
    e.hostname = config.hostname;
    e.client.ident = facts.user;
    e.client.helo = "";
    e.client.protocol = "local";
    e.mail_from = facts.sender;
    e.body = eight_bit ? Body::eight_bit_mime : Body::seven_bit;
    e.smtputf8 = non_ascii;
    e.dsn_ret = options.ret;
    e.dsn_envid = options.envid;
    e.recipients = std::move(targets);
    for (Recipient& r : e.recipients) {
        r.notify = options.notify; // -N: for every recipient, as NOTIFY on each RCPT
    }
    if (auto r = writer.commit(e); !r) {
        log.log(LogLine("spool-error").add("reason", r.error().message));
        return fail(refused(spool_failure(r.error()), "message not queued: " + r.error().message));
    }
    return e;
}

// The steps of a submission, each of which may refuse it.
Step<Envelope> submit(const SendmailOptions& options, const Config& config, int fd, LogSink& log)
{
    LocalSubmission facts;
    facts.user = login_name();
    facts.uid = static_cast<long>(::getuid());
    facts.hostname = config.hostname;
    facts.full_name = options.full_name;
    bool non_ascii = false;
    auto sender = submission_sender(options, config, facts.user, non_ascii);
    if (!sender) {
        return fail(sender.error());
    }
    facts.sender = sender.value();
    LineReader in(fd);
    bool ended = false;
    auto header = read_header_section(in, options, ended);
    if (!header) {
        return fail(header.error());
    }
    auto recipients = collect_recipients(options, header.value(), config, non_ascii);
    if (!recipients) {
        return fail(recipients.error());
    }
    auto targets = expand_aliases(recipients.value(), config);
    if (!targets) {
        return fail(targets.error());
    }
    return queue_submission(in, header.value(), ended, options, config, std::move(facts),
                            std::move(targets.value()), non_ascii, log);
}

} // namespace

// The header section as stored: our Received: field first (RFC 5321 §4.4
// for a local submission: by us, with the user's id), the fields given but
// Bcc: and Resent-Bcc:, then Date:, Message-ID: and From: when they were
// missing. Pure.
std::string local_header_section(const HeaderSection& header, const LocalSubmission& s)
{
    std::string out = "Received: by " + s.hostname + " (smtpspool sendmail, from userid " + std::to_string(s.uid) +
                      ")\r\n\tid " + s.id + "; " + s.date + "\r\n";
    auto has = [&](std::string_view name) {
        return std::any_of(header.fields.begin(), header.fields.end(),
                           [&](const HeaderSection::Field& f) { return f.name == name; });
    };
    for (const HeaderSection::Field& f : header.fields) {
        if (f.name != "bcc" && f.name != "resent-bcc") { // never passed on: it would tell every recipient
            out += f.text;
        }
    }
    if (!has("date")) {
        out += "Date: " + s.date + "\r\n";
    }
    if (!has("message-id")) {
        out += "Message-ID: <" + s.id + "@" + s.hostname + ">\r\n";
    }
    if (!has("from")) {
        std::string from = "From: ";
        if (s.full_name && !s.full_name->empty()) {
            std::string name;
            for (char c : *s.full_name) {
                if (c == '"' || c == '\\') {
                    name += '\\';
                }
                name += static_cast<unsigned char>(c) < 0x20 ? ' ' : c;
            }
            from += "\"" + name + "\" ";
        }
        from += "<" + (s.sender.empty() ? s.user + "@" + s.hostname : s.sender) + ">\r\n";
        out += from;
    }
    return out;
}

int run_sendmail(const SendmailOptions& options, Config config, int fd)
{
    apply_machine_defaults(config, config.hostname.empty() ? machine_fqdn() : config.hostname);
    auto log = open_log(config.log, config.log_format);
    auto queued = submit(options, config, fd, *log);
    if (!queued) {
        // The exit status of sendmail(8): sysexits(3), chosen by the step that refused.
        if (!options.quiet) {
            std::cerr << "sendmail: " << queued.error().message << "\n";
        }
        return queued.error().status;
    }
    const Envelope& e = queued.value();
    log->log(LogLine("queued")
                 .add("id", e.id)
                 .add("size", e.size)
                 .add("recipients", e.recipients.size())
                 .add("from", e.mail_from)
                 .add("user", e.client.ident.value_or(""))
                 .add("via", "sendmail"));
    return k_exit_ok;
}

int run_check_aliases(const SendmailOptions& options, Config config)
{
    apply_machine_defaults(config, config.hostname.empty() ? machine_fqdn() : config.hostname);
    PolicyConfig only;
    only.aliases = config.aliases;
    if (auto files = load_policy_files(only); !files) {
        if (!options.quiet) {
            std::cerr << "sendmail: " << files.error().message << "\n";
        }
        return k_exit_config;
    }
    return k_exit_ok;
}

int run_verify(const SendmailOptions& options, Config config)
{
    apply_machine_defaults(config, config.hostname.empty() ? machine_fqdn() : config.hostname);
    if (options.recipients.empty()) {
        std::cerr << "sendmail: no recipients given to verify\n";
        return k_exit_usage;
    }
    PolicyConfig only;
    only.aliases = config.aliases;
    auto files = load_policy_files(only);
    if (!files) {
        std::cerr << "sendmail: " << files.error().message << "\n";
        return k_exit_config;
    }
    auto is_local = [&](std::string_view d) { return is_local_domain(d, config.local_domains); };
    int status = k_exit_ok;
    auto worse = [&](int s) {
        if (status == k_exit_ok || (status == k_exit_nouser && s == k_exit_dataerr)) {
            status = s;
        }
    };
    for (const std::string& arg : options.recipients) {
        for (const std::string& a : header_addresses(arg)) {
            bool non_ascii = false;
            std::string m = submission_mailbox(a, config.hostname, non_ascii);
            if (m.empty()) {
                std::cout << text::terminal_text(a) << ": not a recipient address\n";
                worse(k_exit_dataerr);
                continue;
            }
            std::vector<std::string> targets{m};
            if (files.value().aliases && files.value().aliases->has(m, is_local)) {
                auto e = files.value().aliases->expand(m, is_local, config.max_recipients, config.hostname);
                if (auto* refusal = std::get_if<Aliases::Refused>(&e)) {
                    std::cout << text::terminal_text(m) << ": undeliverable: " << refusal->why << "\n";
                    worse(k_exit_nouser);
                    continue;
                }
                targets = std::get<std::vector<std::string>>(e);
            }
            for (const std::string& t : targets) {
                std::string shown = t == m ? text::terminal_text(m) : text::terminal_text(m) + " -> " + text::terminal_text(t);
                std::string domain = recipient_domain(t, config.hostname);
                if (const Route* route = find_route(config.routes, domain)) {
                    std::cout << shown << ": deliverable, route " << route->domain << "=" << route->transport.text
                              << "\n";
                } else {
                    std::cout << shown << ": undeliverable: no route for domain " << text::terminal_text(domain) << "\n";
                    worse(k_exit_nouser);
                }
            }
        }
    }
    return status;
}

} // namespace smtpspool
