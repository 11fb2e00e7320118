// milter: the chain of milters behind the FilterPort: sockets, timeouts,
// the events with their macros, the replies, the default action.
#include "server/milter.hpp"

#include "base/text.hpp"
#include "smtp/message_edit.hpp"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

namespace smtpspool {

using namespace milter;

namespace {

using SteadyClock = std::chrono::steady_clock;

// The macros each stage gets unless the milter named its own (SETSYMLIST).
const std::array<std::vector<std::string>, k_stages>& default_macros()
{
    static const std::array<std::vector<std::string>, k_stages> lists{{
        {"j", "_", "{daemon_name}", "{client_addr}", "{client_port}", "{client_name}"}, // connect
        {"{tls_version}", "{cipher}"},                                                  // helo
        {"i", "{auth_type}", "{auth_authen}", "{mail_addr}", "{tls_version}", "{cipher}"}, // mail
        {"{rcpt_addr}"},                                                                // rcpt
        {"i"},                                                                          // data
        {"i"},                                                                          // end of message
        {},                                                                             // end of headers
    }};
    return lists;
}

// A macro name as sent: one letter bare, longer ones in braces.
std::string macro_name(std::string_view name)
{
    if (name.size() <= 1 || name.front() == '{') {
        return std::string(name);
    }
    return "{" + std::string(name) + "}";
}

std::string errno_text(std::string_view what, int e) { return std::string(what) + ": " + std::strerror(e); }

// Waits for `events` on fd until the deadline: 1 ready, 0 timed out, -1 error (errno).
int wait_for(int fd, short events, SteadyClock::time_point deadline)
{
    for (;;) {
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - SteadyClock::now());
        if (left.count() <= 0) {
            return 0;
        }
        pollfd p{fd, events, 0};
        int n = ::poll(&p, 1, static_cast<int>(std::min<long long>(left.count() + 1, 1 << 30)));
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            return n;
        }
        return 1;
    }
}

// Connects a non-blocking socket to addr within the deadline: "" or why not.
std::string connect_socket(Fd& fd, int family, const sockaddr* addr, socklen_t len, SteadyClock::time_point deadline)
{
    fd.reset(::socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    if (!fd) {
        return errno_text("socket", errno);
    }
    if (::connect(fd.get(), addr, len) == 0) {
        return {};
    }
    if (errno != EINPROGRESS && errno != EAGAIN && errno != EINTR) {
        int e = errno;
        fd.reset();
        return errno_text("connect", e);
    }
    int w = wait_for(fd.get(), POLLOUT, deadline);
    if (w <= 0) {
        int e = errno;
        fd.reset();
        return w == 0 ? std::string("connect: timed out") : errno_text("connect", e);
    }
    int err = 0;
    socklen_t err_len = sizeof err;
    if (::getsockopt(fd.get(), SOL_SOCKET, SO_ERROR, &err, &err_len) != 0 || err != 0) {
        fd.reset();
        return errno_text("connect", err != 0 ? err : errno);
    }
    return {};
}

std::string open_milter(const MilterSpec& spec, Fd& fd, std::chrono::milliseconds timeout)
{
    const auto deadline = SteadyClock::now() + timeout;
    if (spec.kind == MilterSpec::Kind::unix_socket) {
        sockaddr_un sun{};
        sun.sun_family = AF_UNIX;
        if (spec.address.size() >= sizeof sun.sun_path) {
            return "socket path too long";
        }
        std::memcpy(sun.sun_path, spec.address.data(), spec.address.size());
        return connect_socket(fd, AF_UNIX, reinterpret_cast<const sockaddr*>(&sun), sizeof sun, deadline);
    }
    addrinfo hints{};
    hints.ai_family = spec.kind == MilterSpec::Kind::inet6 ? AF_INET6 : AF_INET;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV;
    addrinfo* found = nullptr;
    const std::string port = std::to_string(spec.port);
    if (int rc = ::getaddrinfo(spec.address.c_str(), port.c_str(), &hints, &found); rc != 0) {
        return std::string("address: ") + ::gai_strerror(rc);
    }
    std::string why = "address: none found";
    for (addrinfo* a = found; a != nullptr; a = a->ai_next) {
        why = connect_socket(fd, a->ai_family, a->ai_addr, a->ai_addrlen, deadline);
        if (why.empty()) {
            break;
        }
    }
    ::freeaddrinfo(found);
    return why;
}

// Writes all of `data` within the timeout: "" or why not.
std::string write_all(int fd, std::string_view data, std::chrono::milliseconds timeout)
{
    const auto deadline = SteadyClock::now() + timeout;
    while (!data.empty()) {
        ssize_t n = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
        if (n > 0) {
            data.remove_prefix(static_cast<std::size_t>(n));
            continue;
        }
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            int w = wait_for(fd, POLLOUT, deadline);
            if (w == 0) {
                return "write: timed out";
            }
            if (w < 0) {
                return errno_text("write", errno);
            }
            continue;
        }
        return errno_text("write", errno);
    }
    return {};
}

} // namespace

std::optional<MilterSpec> parse_milter_spec(std::string_view text, std::string& why)
{
    MilterSpec s;
    s.text = std::string(text);
    std::size_t colon = text.find(':');
    if (colon == std::string_view::npos) {
        why = "expected unix:PATH, inet:HOST:PORT or inet6:HOST:PORT";
        return std::nullopt;
    }
    std::string_view kind = text.substr(0, colon);
    std::string_view rest = text.substr(colon + 1);
    if (kind == "unix" || kind == "local") {
        if (rest.empty() || rest.front() != '/') {
            why = "a UNIX-domain socket is an absolute path";
            return std::nullopt;
        }
        if (rest.size() >= sizeof(sockaddr_un::sun_path)) {
            why = "socket path too long";
            return std::nullopt;
        }
        s.kind = MilterSpec::Kind::unix_socket;
        s.address = std::string(rest);
        return s;
    }
    if (kind != "inet" && kind != "inet6") {
        why = "expected unix:, inet: or inet6:";
        return std::nullopt;
    }
    s.kind = kind == "inet" ? MilterSpec::Kind::inet : MilterSpec::Kind::inet6;
    std::size_t last = rest.rfind(':');
    if (last == std::string_view::npos || last == 0) {
        why = "expected HOST:PORT";
        return std::nullopt;
    }
    std::string_view host = rest.substr(0, last);
    std::string_view port = rest.substr(last + 1);
    if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
        host = host.substr(1, host.size() - 2);
    }
    unsigned long n = 0;
    if (port.empty() || port.size() > 5 || !std::all_of(port.begin(), port.end(), [](char c) { return c >= '0' && c <= '9'; }) ||
        (n = std::stoul(std::string(port))) == 0 || n > 65535) {
        why = "a port is 1 to 65535";
        return std::nullopt;
    }
    if (host.empty() || !std::all_of(host.begin(), host.end(), [](char c) {
            return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-' || c == ':' || c == '_';
        })) {
        why = "not a host name or address";
        return std::nullopt;
    }
    s.address = std::string(host);
    s.port = static_cast<std::uint16_t>(n);
    return s;
}

std::optional<MilterDefault> parse_milter_default(std::string_view text)
{
    for (MilterDefault d : {MilterDefault::tempfail, MilterDefault::accept, MilterDefault::reject}) {
        if (text == milter_default_name(d)) {
            return d;
        }
    }
    return std::nullopt;
}

std::string_view milter_default_name(MilterDefault d)
{
    return d == MilterDefault::tempfail ? "tempfail" : d == MilterDefault::accept ? "accept" : "reject";
}

struct MilterChain::Milter {
    MilterSpec spec;
    Fd fd;
    Negotiation neg;
    enum class State { healthy, failed, gone } state = State::healthy;
    bool session_accepted = false; // accepted at connect or helo: no more events
    bool tx_done = false;          // accepted (or answered for good) in this transaction
    bool in_tx = false;            // MAIL was sent: ABORT is owed unless the message ends
    bool skip_body = false;        // SMFIR_SKIP: no more body chunks
    std::string in;                // octets read, not yet a whole packet

    bool takes_part(bool transaction) const
    {
        return state == State::healthy && !session_accepted && !(transaction && tx_done);
    }
};

namespace {

struct Packet {
    char command = 0;
    std::string data;
};

// The next packet from the milter within the timeout: the packet, or why not.
std::variant<Packet, std::string> read_packet(int fd, std::string& in, std::chrono::milliseconds timeout)
{
    const auto deadline = SteadyClock::now() + timeout;
    for (;;) {
        FrameRead fr = read_frame(in);
        if (auto* f = std::get_if<Frame>(&fr)) {
            Packet p{f->command, std::string(f->data)};
            in.erase(0, f->length);
            return p;
        }
        if (auto* bad = std::get_if<Malformed>(&fr)) {
            return "protocol: " + bad->reason;
        }
        int w = wait_for(fd, POLLIN, deadline);
        if (w == 0) {
            return std::string("timed out");
        }
        if (w < 0) {
            return errno_text("read", errno);
        }
        char buf[1 << 16];
        ssize_t n = ::recv(fd, buf, sizeof buf, 0);
        if (n == 0) {
            return std::string("connection closed by the milter");
        }
        if (n < 0) {
            if (errno == EINTR || errno == EAGAIN) {
                continue;
            }
            return errno_text("read", errno);
        }
        in.append(buf, static_cast<std::size_t>(n));
    }
}

std::uint32_t action_needed(Response::Kind k)
{
    using K = Response::Kind;
    switch (k) {
    case K::add_header:
    case K::insert_header:
        return action::add_headers;
    case K::change_header:
        return action::change_headers;
    case K::add_rcpt:
        return action::add_rcpt | action::add_rcpt_params;
    case K::delete_rcpt:
        return action::delete_rcpt;
    case K::replace_body:
        return action::change_body;
    case K::change_from:
        return action::change_from;
    case K::quarantine:
        return action::quarantine;
    default:
        return 0;
    }
}

std::string_view kind_name(Response::Kind k)
{
    using K = Response::Kind;
    switch (k) {
    case K::continue_:
        return "continue";
    case K::accept:
        return "accept";
    case K::reject:
        return "reject";
    case K::tempfail:
        return "tempfail";
    case K::discard:
        return "discard";
    case K::skip:
        return "skip";
    default:
        return "other";
    }
}

// What one milter made of the end of a message.
struct EomCollect {
    MessageEdits edits;
    std::optional<std::string> quarantine;
    std::size_t count = 0;
    std::size_t bytes = 0; // header fields, addresses, reason: bounded by max_body
    std::size_t max_body = 0;
};

// Sends `packets` and, when a reply is due, reads replies up to one that
// ends the stage: that reply, or why the milter failed. Progress restarts
// the timeout; changes are taken only at the end of a message (into `eom`)
// and only those negotiated; skip only after a body chunk.
std::variant<Response, std::string> exchange(MilterChain::Milter& m, std::string_view packets, bool reply_due,
                                             bool body_chunk, EomCollect* eom, std::chrono::milliseconds timeout)
{
    if (std::string why = write_all(m.fd.get(), packets, timeout); !why.empty()) {
        return why;
    }
    if (!reply_due) {
        return Response{};
    }
    for (;;) {
        auto p = read_packet(m.fd.get(), m.in, timeout);
        if (auto* why = std::get_if<std::string>(&p)) {
            return std::move(*why);
        }
        const Packet& packet = std::get<Packet>(p);
        Frame frame{packet.command, packet.data, packet.data.size() + 5};
        auto parsed = parse_response(frame);
        if (auto* bad = std::get_if<Malformed>(&parsed)) {
            return "protocol: " + bad->reason;
        }
        Response r = std::move(std::get<Response>(parsed));
        if (r.kind == Response::Kind::progress) {
            continue;
        }
        if (r.kind == Response::Kind::skip && !(body_chunk && (m.neg.steps & step::skip) != 0)) {
            return std::string("protocol: skip not after a body chunk");
        }
        if (is_modification(r.kind)) {
            if (eom == nullptr) {
                return std::string("protocol: a change before the end of the message");
            }
            if ((m.neg.actions & action_needed(r.kind)) == 0) {
                return std::string("protocol: a change not negotiated");
            }
            // Bounded before they are kept: a milter could send changes forever.
            if (++eom->count > k_max_changes) {
                return "protocol: more than " + std::to_string(k_max_changes) + " changes";
            }
            if (r.kind != Response::Kind::replace_body) {
                eom->bytes += r.name.size() + r.value.size();
                if (eom->bytes > eom->max_body) {
                    return std::string("protocol: changes over the size limit");
                }
            }
            using K = Response::Kind;
            switch (r.kind) {
            case K::add_header:
                eom->edits.headers.push_back(HeaderEdit{HeaderEdit::Kind::add, r.name, r.value, 0});
                break;
            case K::insert_header:
                eom->edits.headers.push_back(HeaderEdit{HeaderEdit::Kind::insert, r.name, r.value, r.index});
                break;
            case K::change_header:
                eom->edits.headers.push_back(HeaderEdit{HeaderEdit::Kind::change, r.name, r.value, r.index});
                break;
            case K::add_rcpt:
                eom->edits.add_recipients.push_back(r.value);
                break;
            case K::delete_rcpt:
                eom->edits.delete_recipients.push_back(r.value);
                break;
            case K::change_from:
                eom->edits.sender = r.value;
                break;
            case K::quarantine:
                eom->quarantine = r.value;
                break;
            case K::replace_body:
                if (!eom->edits.body) {
                    eom->edits.body.emplace();
                }
                if (eom->edits.body->size() + r.value.size() > eom->max_body) {
                    return std::string("protocol: a replaced body over the size limit");
                }
                eom->edits.body->append(r.value);
                break;
            default:
                break;
            }
            continue;
        }
        return r;
    }
}

} // namespace

MilterChain::MilterChain(MilterOptions options, LogSink& log) : m_options(std::move(options)), m_log(log)
{
    if (m_options.max_body == 0) {
        m_options.max_body = k_max_packet * 64;
    }
    for (const MilterSpec& s : m_options.milters) {
        auto m = std::make_unique<Milter>();
        m->spec = s;
        m_milters.push_back(std::move(m));
    }
}

MilterChain::~MilterChain() = default;

void MilterChain::log(const Milter& m, std::string_view stage, std::string_view action, std::string_view reason,
                      int code, std::size_t edits)
{
    LogLine line("milter");
    line.add("milter", m.spec.text).add("stage", stage).add("action", action);
    if (code != 0) {
        line.add("code", static_cast<std::uint64_t>(code));
    }
    if (edits != 0) {
        line.add("edits", edits);
    }
    if (!reason.empty()) {
        line.add("reason", reason);
    }
    m_log.log(line);
}

FilterVerdict MilterChain::failed(Milter& m, std::string_view stage, std::string_view reason)
{
    m.fd.reset();
    m.in.clear();
    const std::string why = text::detail_line(reason, 200);
    log(m, stage, milter_default_name(m_options.default_action), why);
    switch (m_options.default_action) {
    case MilterDefault::accept:
        m.state = Milter::State::gone;
        return {};
    case MilterDefault::tempfail:
        m.state = Milter::State::failed;
        return {FilterVerdict::Action::tempfail, std::nullopt, "milter " + m.spec.text + ": " + why};
    case MilterDefault::reject:
        m.state = Milter::State::failed;
        return {FilterVerdict::Action::reject, std::nullopt, "milter " + m.spec.text + ": " + why};
    }
    return {};
}

// A milter that failed earlier in the session: its default action (never
// accept: an accepting default takes it out of the chain instead).
FilterVerdict MilterChain::unavailable(const Milter& m) const
{
    return {m_options.default_action == MilterDefault::reject ? FilterVerdict::Action::reject
                                                              : FilterVerdict::Action::tempfail,
            std::nullopt, "milter " + m.spec.text + ": unavailable"};
}

namespace {

std::string macro_packet(const std::map<std::string, std::string>& known, const Negotiation& neg, Stage stage,
                         char command)
{
    const auto& wanted = neg.macro_lists[static_cast<std::size_t>(stage)];
    const std::vector<std::string>& names = wanted ? *wanted : default_macros()[static_cast<std::size_t>(stage)];
    Macros list;
    for (const std::string& n : names) {
        std::string name = macro_name(n);
        auto it = known.find(name);
        if (it != known.end() && !it->second.empty()) {
            list.emplace_back(name, it->second);
        }
    }
    return list.empty() ? std::string() : macros(command, list);
}

bool connection_stage(Stage s) { return s == Stage::connect || s == Stage::helo; }

} // namespace

FilterVerdict MilterChain::send_event(const Event& ev)
{
    const bool transaction = !connection_stage(ev.stage);
    bool all_accepted = true;
    for (auto& mp : m_milters) {
        Milter& m = *mp;
        if (m.state == Milter::State::failed) {
            // It failed before: its default action holds for the session.
            return unavailable(m);
        }
        if (!m.takes_part(transaction)) {
            continue;
        }
        all_accepted = false;
        if ((m.neg.steps & ev.not_wanted) != 0) {
            continue;
        }
        const bool reply_due = (m.neg.steps & ev.no_reply) == 0;
        std::string out = macro_packet(m_macros, m.neg, ev.stage, ev.command) + ev.packet;
        auto result = exchange(m, out, reply_due, false, nullptr, m_options.timeout);
        if (auto* why = std::get_if<std::string>(&result)) {
            FilterVerdict v = failed(m, ev.name, *why);
            if (v.action != FilterVerdict::Action::proceed) {
                return v;
            }
            continue;
        }
        const Response& r = std::get<Response>(result);
        using K = Response::Kind;
        switch (r.kind) {
        case K::continue_:
            break;
        case K::accept:
            log(m, ev.name, "accept");
            (transaction ? m.tx_done : m.session_accepted) = true;
            break;
        case K::reject:
        case K::tempfail: {
            log(m, ev.name, kind_name(r.kind), r.reply ? r.reply->text : std::string(), r.reply ? r.reply->code : 0);
            FilterVerdict v{r.kind == K::reject ? FilterVerdict::Action::reject : FilterVerdict::Action::tempfail,
                            r.reply, "milter " + m.spec.text};
            return v;
        }
        case K::discard:
            if (!transaction) {
                log(m, ev.name, "continue", "discard is not for connect or helo");
                break;
            }
            log(m, ev.name, "discard");
            return {FilterVerdict::Action::discard, std::nullopt, "milter " + m.spec.text};
        default: {
            FilterVerdict v = failed(m, ev.name, std::string("protocol: unexpected ") + std::string(kind_name(r.kind)));
            if (v.action != FilterVerdict::Action::proceed) {
                return v;
            }
            break;
        }
        }
    }
    // Every milter has accepted (or is gone): no more filtering.
    for (auto& mp : m_milters) {
        if (mp->takes_part(transaction)) {
            all_accepted = false;
        }
    }
    return all_accepted ? FilterVerdict{FilterVerdict::Action::accept, std::nullopt, "milters accepted"}
                        : FilterVerdict{};
}

FilterVerdict MilterChain::connect(const FilterConnect& facts)
{
    const Peer& peer = facts.peer;
    m_macros["j"] = std::string(facts.hostname);
    m_macros["{daemon_name}"] = std::string(facts.hostname);
    std::string client_name = peer.hostname ? *peer.hostname : std::string("unknown");
    char family = 'U';
    std::string host = "unknown";
    if (peer.local) {
        family = 'L';
        host = "localhost";
        client_name = "localhost";
        m_macros["_"] = "localhost";
    } else if (!peer.address.empty()) {
        family = peer.address.find(':') != std::string::npos ? '6' : '4';
        host = peer.hostname ? *peer.hostname : "[" + peer.address + "]";
        m_macros["{client_addr}"] = peer.address;
        if (peer.port) {
            m_macros["{client_port}"] = std::to_string(*peer.port);
        }
        m_macros["_"] = client_name + " [" + peer.address + "]";
    }
    m_macros["{client_name}"] = client_name;
    for (auto& mp : m_milters) {
        Milter& m = *mp;
        std::string why = open_milter(m.spec, m.fd, m_options.timeout);
        if (why.empty()) {
            why = write_all(m.fd.get(), optneg(k_version, action::k_offered, step::k_offered), m_options.timeout);
        }
        if (why.empty()) {
            auto p = read_packet(m.fd.get(), m.in, m_options.timeout);
            if (auto* w = std::get_if<std::string>(&p)) {
                why = *w;
            } else {
                const Packet& packet = std::get<Packet>(p);
                auto n = parse_negotiation(Frame{packet.command, packet.data, packet.data.size() + 5},
                                           action::k_offered, step::k_offered);
                if (auto* bad = std::get_if<Malformed>(&n)) {
                    why = "protocol: " + bad->reason;
                } else {
                    m.neg = std::get<Negotiation>(n);
                }
            }
        }
        if (!why.empty()) {
            FilterVerdict v = failed(m, "connect", why);
            if (v.action != FilterVerdict::Action::proceed) {
                return v;
            }
        }
    }
    const std::uint16_t port = peer.port ? static_cast<std::uint16_t>(*peer.port) : 0;
    return send_event(Event{Stage::connect, command::connect,
                            milter::connect(host, family, port, peer.local ? std::string_view{} : peer.address),
                            step::no_connect, step::nr_connect, "connect"});
}

FilterVerdict MilterChain::helo(std::string_view name)
{
    return send_event(
        Event{Stage::helo, command::helo, strings(command::helo, {name}), step::no_helo, step::nr_helo, "helo"});
}

FilterVerdict MilterChain::mail(std::string_view sender, const std::vector<std::string>& parameters,
                                const FilterMessageFacts& facts)
{
    if (m_in_transaction) {
        abort(); // the last transaction ended without a word (accepted, or stored)
    }
    m_in_transaction = true;
    for (auto& mp : m_milters) {
        mp->in_tx = mp->state == Milter::State::healthy && !mp->session_accepted;
    }
    m_macros["i"] = std::string(facts.id);
    m_macros["{auth_type}"] = std::string(facts.auth_type);
    m_macros["{auth_authen}"] = std::string(facts.auth_user);
    m_macros["{tls_version}"] = std::string(facts.tls_version);
    m_macros["{cipher}"] = std::string(facts.cipher);
    m_macros["{mail_addr}"] = std::string(sender);
    const std::string path = "<" + std::string(sender) + ">";
    std::vector<std::string_view> items{path};
    items.insert(items.end(), parameters.begin(), parameters.end());
    return send_event(Event{Stage::mail, command::mail, strings(command::mail, items), step::no_mail, step::nr_mail,
                            "mail"});
}

FilterVerdict MilterChain::rcpt(std::string_view recipient, const std::vector<std::string>& parameters)
{
    m_macros["{rcpt_addr}"] = std::string(recipient);
    const std::string path = "<" + std::string(recipient) + ">";
    std::vector<std::string_view> items{path};
    items.insert(items.end(), parameters.begin(), parameters.end());
    return send_event(Event{Stage::rcpt, command::rcpt, strings(command::rcpt, items), step::no_rcpt, step::nr_rcpt,
                            "rcpt"});
}

FilterVerdict MilterChain::data(const FilterMessageFacts& facts)
{
    m_macros["i"] = std::string(facts.id);
    m_splitter.reset();
    m_content_verdict.reset();
    return send_event(
        Event{Stage::data, command::data, packet(command::data, ""), step::no_data, step::nr_data, "data"});
}

// One content event to milter m; a verdict that ends the transaction goes to
// m_content_verdict.
void MilterChain::content(Milter& m, const ContentEvent& e)
{
    std::string out;
    bool reply_due = true;
    std::string_view stage;
    switch (e.kind) {
    case ContentEvent::Kind::header:
        if ((m.neg.steps & step::no_headers) != 0) {
            return;
        }
        out = strings(command::header,
                      {e.name, header_value_for(e.value, (m.neg.steps & step::header_leading_space) != 0)});
        reply_due = (m.neg.steps & step::nr_header) == 0;
        stage = "header";
        break;
    case ContentEvent::Kind::eoh:
        if ((m.neg.steps & step::no_eoh) != 0) {
            return;
        }
        out = macro_packet(m_macros, m.neg, Stage::eoh, command::eoh) + packet(command::eoh, "");
        reply_due = (m.neg.steps & step::nr_eoh) == 0;
        stage = "eoh";
        break;
    case ContentEvent::Kind::body:
        if ((m.neg.steps & step::no_body) != 0 || m.skip_body) {
            return;
        }
        out = packet(command::body, e.value);
        reply_due = (m.neg.steps & step::nr_body) == 0;
        stage = "body";
        break;
    }
    auto result = exchange(m, out, reply_due, e.kind == ContentEvent::Kind::body, nullptr, m_options.timeout);
    if (auto* why = std::get_if<std::string>(&result)) {
        FilterVerdict v = failed(m, stage, *why);
        if (v.action != FilterVerdict::Action::proceed) {
            m_content_verdict = v;
        }
        return;
    }
    const Response& r = std::get<Response>(result);
    using K = Response::Kind;
    switch (r.kind) {
    case K::continue_:
        break;
    case K::skip:
        m.skip_body = true;
        break;
    case K::accept:
        log(m, stage, "accept");
        m.tx_done = true;
        break;
    case K::reject:
    case K::tempfail:
        log(m, stage, kind_name(r.kind), r.reply ? r.reply->text : std::string(), r.reply ? r.reply->code : 0);
        m_content_verdict = FilterVerdict{
            r.kind == K::reject ? FilterVerdict::Action::reject : FilterVerdict::Action::tempfail, r.reply,
            "milter " + m.spec.text};
        break;
    case K::discard:
        log(m, stage, "discard");
        m_content_verdict = FilterVerdict{FilterVerdict::Action::discard, std::nullopt, "milter " + m.spec.text};
        break;
    default: {
        FilterVerdict v = failed(m, stage, "protocol: unexpected reply");
        if (v.action != FilterVerdict::Action::proceed) {
            m_content_verdict = v;
        }
        break;
    }
    }
}

// The stored message as the milters before m changed it (`before`, applied
// by the same rewriter the spool uses), as header, end-of-header and body
// events to m, until m has answered for the transaction. An error: the
// message could not be read (`read` false) or rewritten.
Result<void> MilterChain::send_content(Milter& m, const MessageEdits& before, const MessageSource& source,
                                       bool& read)
{
    auto listening = [&] { return !m_content_verdict && m.takes_part(true); };
    auto events = [&]() {
        for (const ContentEvent& e : m_events) {
            if (!listening()) {
                return;
            }
            content(m, e);
        }
    };
    m_splitter.reset();
    MessageRewriter rewriter(before, [&](std::string_view octets) -> Result<void> {
        m_events.clear();
        m_splitter.feed(octets, m_events);
        events();
        return {};
    });
    Result<void> fed;
    read = true;
    if (auto r = source([&](std::string_view piece) {
            if (fed && listening()) {
                fed = rewriter.feed(piece);
            }
        });
        !r) {
        read = false;
        return r;
    }
    if (!fed) {
        return fed;
    }
    if (!listening()) {
        return {};
    }
    if (auto r = rewriter.finish(); !r) {
        return r;
    }
    m_events.clear();
    m_splitter.finish(m_events);
    events();
    return {};
}

// The chain reads the message at its end (end_of_message), milter by milter.
void MilterChain::message(std::string_view) {}

// Milter by milter, as Postfix does it: the message's content as the
// milters before it changed it, then the end of the message; its changes
// join the list, in order (each milter's header indices count the fields of
// the message it was sent, which is what the list applied in order gives).
EndOfMessageVerdict MilterChain::end_of_message(const MessageSource& source)
{
    EndOfMessageVerdict out;
    if (!m_in_transaction) {
        return out;
    }
    std::optional<std::string> quarantine;
    for (auto& mp : m_milters) {
        Milter& m = *mp;
        if (m.state == Milter::State::failed) {
            out.verdict = unavailable(m);
            out.edits = {};
            abort();
            return out;
        }
        if (!m.takes_part(true)) {
            continue;
        }
        bool read = true;
        if (auto r = send_content(m, out.edits, source, read); !r) {
            if (!read) {
                // The spool failed: the message is not stored either.
                out.verdict = FilterVerdict{FilterVerdict::Action::tempfail, std::nullopt,
                                            "milters: " + text::detail_line(r.error().message, 200)};
                out.edits = {};
                abort();
                return out;
            }
            // The changes so far cannot be applied (a header section over
            // its bound): the session's rewrite refuses the message for it.
            log(m, "header", "stop", text::detail_line(r.error().message, 200));
            abort();
            return out;
        }
        if (m_content_verdict) {
            out.verdict = *m_content_verdict;
            out.edits = {};
            abort();
            return out;
        }
        if (m.state == Milter::State::failed) {
            out.verdict = unavailable(m);
            out.edits = {};
            abort();
            return out;
        }
        if (!m.takes_part(true)) {
            continue;
        }
        EomCollect eom;
        eom.max_body = m_options.max_body;
        std::string packets = macro_packet(m_macros, m.neg, Stage::eom, command::body_eob) +
                              packet(command::body_eob, "");
        auto result = exchange(m, packets, true, false, &eom, m_options.timeout);
        m.in_tx = false;
        if (auto* why = std::get_if<std::string>(&result)) {
            FilterVerdict v = failed(m, "eom", *why);
            if (v.action != FilterVerdict::Action::proceed) {
                out.verdict = v;
                out.edits = {};
                abort();
                return out;
            }
            continue;
        }
        const Response& r = std::get<Response>(result);
        using K = Response::Kind;
        if (r.kind == K::reject || r.kind == K::tempfail || r.kind == K::discard) {
            log(m, "eom", kind_name(r.kind), r.reply ? r.reply->text : std::string(), r.reply ? r.reply->code : 0);
            out.verdict = FilterVerdict{r.kind == K::reject     ? FilterVerdict::Action::reject
                                        : r.kind == K::tempfail ? FilterVerdict::Action::tempfail
                                                                : FilterVerdict::Action::discard,
                                        r.reply, "milter " + m.spec.text};
            out.edits = {};
            abort();
            return out;
        }
        if (r.kind != K::continue_ && r.kind != K::accept) {
            FilterVerdict v = failed(m, "eom", "protocol: unexpected skip");
            if (v.action != FilterVerdict::Action::proceed) {
                out.verdict = v;
                out.edits = {};
                abort();
                return out;
            }
            continue;
        }
        if (eom.quarantine) {
            quarantine = eom.quarantine;
        }
        if (eom.count > 0 || r.kind == K::accept) {
            log(m, "eom", eom.quarantine ? "quarantine" : kind_name(r.kind), eom.quarantine.value_or(""), 0, eom.count);
        }
        MessageEdits& e = out.edits;
        std::move(eom.edits.headers.begin(), eom.edits.headers.end(), std::back_inserter(e.headers));
        std::move(eom.edits.add_recipients.begin(), eom.edits.add_recipients.end(),
                  std::back_inserter(e.add_recipients));
        std::move(eom.edits.delete_recipients.begin(), eom.edits.delete_recipients.end(),
                  std::back_inserter(e.delete_recipients));
        if (eom.edits.body) {
            e.body = std::move(eom.edits.body);
        }
        if (eom.edits.sender) {
            e.sender = std::move(eom.edits.sender);
        }
    }
    if (quarantine) {
        out.verdict = FilterVerdict{FilterVerdict::Action::quarantine, std::nullopt, *quarantine};
    }
    end_transaction();
    return out;
}

void MilterChain::end_transaction()
{
    for (auto& mp : m_milters) {
        mp->in_tx = false;
        mp->tx_done = false;
        mp->skip_body = false;
    }
    m_in_transaction = false;
    m_content_verdict.reset();
    m_splitter.reset();
    m_macros.erase("{rcpt_addr}");
}

void MilterChain::abort()
{
    for (auto& mp : m_milters) {
        Milter& m = *mp;
        if (m.in_tx && m.state == Milter::State::healthy && m.fd) {
            if (std::string why = write_all(m.fd.get(), packet(command::abort, ""), m_options.timeout); !why.empty()) {
                failed(m, "abort", why);
            }
        }
    }
    end_transaction();
}

void MilterChain::quit()
{
    if (m_in_transaction) {
        abort();
    }
    for (auto& mp : m_milters) {
        Milter& m = *mp;
        if (m.state == Milter::State::healthy && m.fd) {
            (void)write_all(m.fd.get(), packet(command::quit, ""), m_options.timeout);
        }
        m.fd.reset();
        m.state = Milter::State::gone;
    }
}

} // namespace smtpspool
