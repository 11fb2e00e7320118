// serve: the SMTP service command. The session reads fd 0 and writes fd 1 through StdioTransport;
// only the PROXY header and the refusals before the session use them directly.
#include "cli/serve.hpp"

#include "base/child_process.hpp"
#include "base/fd.hpp"
#include "base/limits.hpp"

#include "policy/checkpassword.hpp"
#include "base/fs.hpp"
#include "server/peer.hpp"
#include "server/policy_client.hpp"
#include "policy/policy.hpp"
#include "policy/rate_limit.hpp"
#include "smtp/session.hpp"
#include "spool/runner_slots.hpp"
#include "spool/spool.hpp"
#include "server/milter.hpp"
#include "server/stdio_transport.hpp"
#include "server/tls.hpp"
#include "server/transcript.hpp"
#include "base/cidr.hpp"
#include "cli/terminal.hpp"

#include <algorithm>
#include <cstdio>
#include <memory>
#include <tuple>
#include <cerrno>
#include <csignal>
#include <fcntl.h>
#include <cstdlib>
#include <sys/socket.h>
#include <sys/stat.h>
#include <syslog.h>
#include <unistd.h>

namespace smtpspool {
namespace {

// --transcript-client: none given, every session; else only network clients
// whose address is in one of the networks.
bool transcript_wanted(const std::vector<std::string>& networks, const Peer& peer)
{
    if (networks.empty()) {
        return true;
    }
    auto ip = parse_ip(peer.address);
    if (peer.local || !ip) {
        return false;
    }
    return std::any_of(networks.begin(), networks.end(), [&ip](const std::string& text) {
        auto net = parse_network(text);
        return net && contains(*net, *ip);
    });
}

// What say_local_error() needs: our name once known, and whether fd 1 may
// still carry TLS records (then a plain 421 would corrupt them).
struct LastWords {
    std::string hostname;
    bool plain = true;
};
LastWords g_last_words;

// Remembers the ids of committed messages for --deliver-now.
class CommitRecorder final : public SpoolPort {
public:
    explicit CommitRecorder(SpoolPort& inner) : m_inner(inner) {}
    Result<std::string> begin() override { return m_inner.begin(); }
    Result<void> append(std::string_view bytes) override { return m_inner.append(bytes); }
    Result<void> prepend(std::string_view bytes) override { return m_inner.prepend(bytes); }
    Result<void> rewrite(const MessageEdits& edits) override { return m_inner.rewrite(edits); }
    Result<void> read_message(const MessagePiece& piece) override { return m_inner.read_message(piece); }
    Result<void> commit(Envelope& envelope) override
    {
        auto r = m_inner.commit(envelope);
        if (r) {
            committed.push_back(envelope.id);
        }
        return r;
    }
    void abort() override { m_inner.abort(); }
    std::vector<std::string> committed;

private:
    SpoolPort& m_inner;
};

// --deliver-now: one runq for the messages this session accepted, started
// when the session has ended, in a session of its own (not ours: nothing sent
// to ours reaches it), with a clean environment and /dev/null for its
// standard descriptors: it outlives us, and its log goes where --log says.
// It gets one of the spool's runner slots as its descriptor 3 and holds it
// until it exits; when every slot is taken none is started, and the messages
// wait in the queue for the next scheduled runq. So a client cannot make us
// start more than one runq per session, nor the sessions more than
// limits::k_deliver_now_runners at once per spool, whatever their number.
void start_runq(const Config& config, const std::vector<std::string>& ids, LogSink& log)
{
    auto slot = take_runner_slot(config.spool, limits::k_deliver_now_runners);
    if (!slot || !slot.value()) {
        LogLine line("deliver-now");
        line.add("result", "not-started").add("messages", static_cast<std::uint64_t>(ids.size()));
        line.add("reason", slot ? std::string("every runner slot is taken") : slot.error().message);
        log.log(line);
        return; // the messages stay queued for the next runq
    }
    std::vector<std::string> argv = runq_arguments(config);
    argv.insert(argv.begin(), "smtpspool");
    // Past this many ids the runq makes a whole pass instead (the ids would
    // make a command line too long to start).
    if (ids.size() <= limits::k_deliver_now_max_ids) {
        argv.insert(argv.end(), ids.begin(), ids.end());
    }
    auto env = child_environment({});
    Fd null(::open("/dev/null", O_RDWR | O_CLOEXEC));
    if (!env || !null) {
        return; // the messages stay queued for the next runq
    }
    auto child = ChildProcess::spawn_program("/proc/self/exe", argv, env.value(), {null.get(), null.get(), null.get()},
                                              true, slot.value()->get());
    if (!child) {
        log.log(LogLine("deliver-now").add("result", "not-started").add("reason", child.error().message));
        return;
    }
    // Not reaped: we exit now, and it goes on under init.
    auto pid = child.value().release();
    log.log(LogLine("deliver-now")
                .add("result", "started")
                .add("runq_pid", static_cast<std::uint64_t>(pid))
                .add("messages", static_cast<std::uint64_t>(ids.size())));
}

// Loads the certificate and key when first asked, and hands them to the
// transport for the handshake.
class LazyTls final : public TlsPort {
public:
    LazyTls(const Config& config, StdioTransport& transport) : m_config(config), m_transport(transport) {}
    Result<void> prepare() override
    {
        if (!m_loaded) {
            auto context = TlsContext::load(*m_config.tls_cert, *m_config.tls_key);
            if (!context) {
                return context.error();
            }
            m_transport.use_tls(context.value(), m_config.tls_on_connect);
            m_loaded = true;
            g_last_words.plain = false; // the handshake comes next
        }
        return {};
    }

private:
    const Config& m_config;
    StdioTransport& m_transport;
    bool m_loaded = false;
};

void say(const Reply& reply)
{
    std::string wire = render(reply);
    std::ignore = ::write(1, wire.data(), wire.size());
}

void say_421(std::string_view host) { say(replies::shutting_down(host)); }

// --max-connections-per-minute and per client: true when this connection is
// over a limit (the caller says 421 and ends). A state file that cannot be
// used lets the connection in: the limit is a brake, not an access control.
// The milters of --milter, in order, as the option table checked them.
MilterOptions milter_options(const Config& config)
{
    MilterOptions o;
    std::string why;
    for (const std::string& text : config.milters) {
        if (auto spec = parse_milter_spec(text, why)) {
            o.milters.push_back(std::move(*spec));
        }
    }
    o.default_action = parse_milter_default(config.milter_default_action).value_or(MilterDefault::tempfail);
    o.timeout = std::chrono::duration_cast<std::chrono::milliseconds>(config.milter_timeout);
    o.max_body = config.max_message_size;
    return o;
}

bool over_rate_limit(const Config& config, const Peer& peer, LogSink& log, TimePoint now)
{
    RateLimits limits{static_cast<unsigned>(config.max_connections_per_minute),
                      static_cast<unsigned>(config.max_connections_per_client_per_minute)};
    if (limits.per_minute == 0 && limits.per_client_per_minute == 0) {
        return false;
    }
    // Local clients share one counter, and so do clients whose address is unknown.
    auto check = check_connection_rate(config.spool, client_name(peer), limits, now);
    if (!check) {
        log.log(LogLine("rate-error").add("reason", check.error().message));
        return false;
    }
    if (check.value().verdict == RateVerdict::allowed) {
        return false;
    }
    log.log(LogLine("rate-limited")
                .add("client", client_name(peer))
                .add("limit", to_string(check.value().verdict))
                .add("server_rate", static_cast<std::uint64_t>(check.value().server_rate))
                .add("client_rate", static_cast<std::uint64_t>(check.value().client_rate)));
    return true;
}

// --proxy-protocol: the client the load balancer names, or (the error) the
// exit status when the connection ends here, without a greeting (what sends
// no valid header is no SMTP client, and an untrusted sender may not name one).
Result<Peer, int> proxied_client(const Config& config, const Peer& connection, LogSink& log)
{
    std::string balancer = client_name(connection);
    auto refuse = [&](std::string_view reason, std::string_view detail, int status) {
        LogLine line("proxy-refused");
        line.add("balancer", balancer).add("reason", reason);
        if (!detail.empty()) {
            line.add("detail", detail);
        }
        log.log(line);
        return fail(status);
    };
    if (!in_networks(connection, config.proxy_from)) {
        return refuse("untrusted", "", k_exit_ok);
    }
    ProxyRead r = read_proxy_header(0, config.timeout);
    switch (r.end) {
    case ProxyRead::End::header:
        break;
    case ProxyRead::End::malformed:
        return refuse("malformed", r.reason, k_exit_ok);
    case ProxyRead::End::timeout:
        return refuse("timeout", "", k_exit_ok);
    case ProxyRead::End::eof:
        return refuse("eof", "", k_exit_ok);
    case ProxyRead::End::error:
        return refuse("read-error", r.reason, k_exit_ioerr);
    }
    LogLine line("proxy");
    line.add("balancer", balancer).add("version", static_cast<std::uint64_t>(r.header.version));
    Peer client = proxied_peer(r.header);
    line.add("client", client_name(client));
    if (client.port) {
        line.add("port", *client.port);
    }
    log.log(line);
    return client;
}

// Standard error is open and is not the client's connection (fd 0 or 1, as
// under inetd, which hands the socket over as fds 0, 1 and 2): what is
// written there reaches the operator (tcpserver's log, the journal), never
// the client.
bool stderr_apart_from_client()
{
    struct stat err {};
    if (::fstat(2, &err) != 0) {
        return false;
    }
    for (int fd : {0, 1}) {
        struct stat st {};
        if (::fstat(fd, &st) == 0 && st.st_dev == err.st_dev && st.st_ino == err.st_ino) {
            return false;
        }
    }
    return true;
}

} // namespace

int refuse_service(const std::string& message, int status)
{
    ::openlog("smtpspool", LOG_PID, LOG_MAIL);
    ::syslog(LOG_ERR, "event=config-error reason=%s", message.c_str());
    if (is_socket(0)) {
        say_421(machine_fqdn());
        if (!stderr_apart_from_client()) {
            return status;
        }
    }
    std::ignore = ::write(2, message.data(), message.size());
    return status;
}

void say_local_error()
{
    if (g_last_words.plain) {
        say_421(g_last_words.hostname.empty() ? machine_fqdn() : g_last_words.hostname);
    }
}

int run_serve(Config config)
{
    std::signal(SIGPIPE, SIG_IGN);
    apply_machine_defaults(config, config.hostname.empty() ? machine_fqdn() : config.hostname);
    g_last_words.hostname = config.hostname;
    auto log = open_log(config.log, config.log_format);
    EnvLookup env = [](const char* name) -> const char* { return std::getenv(name); };
    Peer peer = peer_from_environment(env).value_or(peer_from_socket(0, config.trust_unix_socket));
    if (config.proxy_protocol) {
        auto client = proxied_client(config, peer, *log);
        if (!client) {
            return client.error();
        }
        peer = client.value();
        // RELAYCLIENT and SMTPSPOOL_DENY, set by the superserver's rules,
        // judged the balancer, not this client.
        env = [](const char* name) -> const char* {
            std::string_view n = name;
            return n == "RELAYCLIENT" || n == k_deny_variable ? nullptr : std::getenv(name);
        };
    }

    SessionConfig sc = session_config(config);
    sc.peer = peer;
    sc.may_relay = may_relay(sc.peer, config.relay_clients, env);
    sc.client_denied = client_denied(sc.peer, config.deny_clients, config.allow_clients, env);

    auto files = load_policy_files(policy_config(config));
    if (!files) {
        return refuse_service("smtpspool: configuration error: " + files.error().message + "\n", k_exit_config);
    }
    // The certificate is read by each connection that uses it, so a renewed
    // one needs no restart. When every session needs TLS it is loaded first,
    // and one that cannot be loaded means no service; otherwise only at
    // STARTTLS (loading an RSA key and setting up the library is costly, and
    // sessions without STARTTLS do not pay for it), and then a failure
    // is a 454 and the session goes on in the clear.
    StdioTransport transport(0, 1, config.timeout, config.max_session_time);
    LazyTls lazy(config, transport);
    if (config.tls_cert) {
        if (config.require_tls || config.tls_on_connect) {
            if (auto ready = lazy.prepare(); !ready) {
                return refuse_service("smtpspool: configuration error: " + ready.error().message + "\n", k_exit_config);
            }
        }
        sc.tls_offered = !config.tls_on_connect;
    }
    SystemClock clock;
    if (auto r = ensure_spool_layout(config.spool); !r) {
        log->log(LogLine("spool-error").add("reason", r.error().message));
        say_421(config.hostname);
        return k_exit_tempfail;
    }
    if (!sc.client_denied && over_rate_limit(config, sc.peer, *log, clock.now())) {
        say(replies::rate_limited(config.hostname));
        return k_exit_ok;
    }
    sweep_stale_tmp(config.spool, clock.now());
    PosixFs fs;
    SpoolWriter writer(config.spool, fs, clock, static_cast<long>(::getpid()));
    CommitRecorder spool(writer);
    std::optional<PasswordFile> passwords = std::move(files.value().passwords);
    // A transcript of this session when --transcript-dir asks for one; the
    // session's and the policy's log lines then go into it too.
    std::optional<SessionTranscript> transcript;
    std::optional<TranscriptLog> transcript_log;
    if (config.transcript_dir && transcript_wanted(config.transcript_clients, sc.peer)) {
        if (auto t = SessionTranscript::open(*config.transcript_dir, config.transcript_max_size, ::getpid())) {
            transcript.emplace(std::move(t.value()));
            transcript_log.emplace(*log, *transcript);
            transport.use_transcript(*transcript);
        } else {
            log->log(LogLine("transcript-error").add("reason", t.error().message));
        }
    }
    LogSink& session_log = transcript_log ? static_cast<LogSink&>(*transcript_log) : *log;
    Policy policy(
        policy_config(config), std::move(files.value()), [&writer] { return writer.readable_message(); },
        session_log);
    // Policy services: one client each, its connection kept for the session.
    std::vector<std::unique_ptr<PolicyClient>> policy_clients;
    std::vector<PolicyServicePort*> services;
    for (const std::string& spec : config.policy_services) {
        std::string why;
        auto address = parse_policy_service(spec, why); // checked when the options were read
        policy_clients.push_back(std::make_unique<PolicyClient>(
            spec, address.value_or(PolicyServiceAddress{}),
            std::chrono::duration_cast<std::chrono::milliseconds>(config.policy_timeout)));
        services.push_back(policy_clients.back().get());
    }
    char instance[64];
    std::snprintf(instance, sizeof instance, "%lx.%llx", static_cast<unsigned long>(::getpid()),
                  static_cast<unsigned long long>(std::chrono::duration_cast<std::chrono::microseconds>(
                                                      clock.now().time_since_epoch())
                                                      .count()));
    PolicyDelegation delegation(std::move(services),
                                DelegationConfig{config.policy_at_data, config.policy_default_action == "dunno",
                                                 instance},
                                session_log);
    if (!config.policy_services.empty()) {
        policy.use_delegation(delegation);
    }
    Session session(std::move(sc), spool, policy, session_log, clock);
    std::optional<MilterChain> milters;
    if (!config.milters.empty()) {
        session.use_filter(milters.emplace(milter_options(config), session_log));
    }
    if (transcript) {
        session.use_transcript(*transcript);
    }
    std::optional<CheckPassword> checkpassword;
    if (passwords) {
        session.use_auth(*passwords);
    } else if (config.auth_command) {
        session.use_auth(checkpassword.emplace(*config.auth_command, config.hook_timeout, *log));
    }
    if (config.tls_cert) {
        session.use_tls(lazy);
    }
    const SessionEnd end = transport.run(session);
    if (transcript) {
        transcript->finish(spool.committed);
    }
    if (config.deliver_now && !spool.committed.empty()) {
        start_runq(config, spool.committed, *log);
    }
    switch (end) {
    case SessionEnd::quit:
    case SessionEnd::eof:
    case SessionEnd::timeout:
    case SessionEnd::tls_failed: // the client's failure, logged by the session
        return k_exit_ok;
    case SessionEnd::write_failed:
    case SessionEnd::read_failed:
        break;
    }
    return k_exit_ioerr;
}

} // namespace smtpspool
