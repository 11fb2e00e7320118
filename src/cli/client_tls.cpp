// client_tls: the SMTP client's TLS through server/tls, and the credentials file.
#include "cli/client_tls.hpp"

#include "base/fd.hpp"
#include "server/tls.hpp"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace smtpspool {
namespace {

constexpr std::size_t k_max_auth_file = 1 << 20;
constexpr std::size_t k_max_http_secret = 4096;

// Printable ASCII, at most k_max_delivery_tls_text octets: what the envelope keeps.
std::string tls_text(std::string_view s)
{
    std::string out;
    for (char c : s.substr(0, k_max_delivery_tls_text)) {
        out += c >= 0x20 && c < 0x7f ? c : '?';
    }
    return out;
}

class Channel final : public ClientTlsChannel {
public:
    explicit Channel(std::unique_ptr<TlsStream> stream) : m_stream(std::move(stream)) {}
    Io read(char* buffer, std::size_t capacity, std::size_t& n) override
    {
        return convert(m_stream->read(buffer, capacity, n));
    }
    Io write(std::string_view bytes) override { return convert(m_stream->write(bytes)); }
    std::string error() const override { return m_stream->error(); }
    DeliveryTls record() const override
    {
        TlsInfo info = m_stream->info();
        return {tls_text(info.version), tls_text(info.cipher), m_stream->verify_error().empty()};
    }
    std::string verify_error() const override { return m_stream->verify_error(); }

private:
    static Io convert(TlsStream::Io io)
    {
        switch (io) {
        case TlsStream::Io::ok:
            return Io::ok;
        case TlsStream::Io::eof:
            return Io::eof;
        case TlsStream::Io::timeout:
            return Io::timeout;
        case TlsStream::Io::error:
            break;
        }
        return Io::error;
    }
    std::unique_ptr<TlsStream> m_stream;
};

class Connector final : public ClientTlsConnector {
public:
    explicit Connector(const Config& config)
        : m_ca(config.smtp_tls_ca), m_cert(config.smtp_tls_cert), m_key(config.smtp_tls_key)
    {
    }
    Result<std::unique_ptr<ClientTlsChannel>> handshake(int fd, const std::string& host, WaitMs wait_ms) override
    {
        if (!m_context && m_error.empty()) {
            auto loaded = TlsContext::load_client(m_ca, m_cert, m_key);
            if (loaded) {
                m_context = std::move(loaded.value());
            } else {
                m_error = loaded.error().message;
            }
        }
        if (!m_context) {
            return Error{0, m_error};
        }
        auto stream = TlsStream::connect(m_context, fd, host, std::move(wait_ms));
        if (!stream) {
            return stream.error();
        }
        return std::unique_ptr<ClientTlsChannel>(new Channel(std::move(stream.value())));
    }

private:
    std::optional<std::string> m_ca, m_cert, m_key;
    std::shared_ptr<TlsContext> m_context;
    std::string m_error;
};

} // namespace

std::shared_ptr<ClientTlsConnector> make_client_tls(const Config& config) { return std::make_shared<Connector>(config); }

Result<void> check_client_tls(const Config& config)
{
    auto loaded = TlsContext::load_client(config.smtp_tls_ca, config.smtp_tls_cert, config.smtp_tls_key);
    if (!loaded) {
        return loaded.error();
    }
    return {};
}

namespace {

// A file that holds secrets: a regular file without permissions for group or
// others, of at most `max` octets, read whole. The errors start with `name`.
Result<std::string> read_private_file(const std::string& path, const std::string& name, std::size_t max,
                                      const char* holds)
{
    Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK));
    if (!fd) {
        return Error{errno, name + ": " + std::strerror(errno)};
    }
    struct stat st {};
    if (::fstat(fd.get(), &st) != 0) {
        return Error{errno, name + ": " + std::strerror(errno)};
    }
    if (!S_ISREG(st.st_mode)) {
        return Error{0, name + ": not a regular file"};
    }
    if ((st.st_mode & (S_IRWXG | S_IRWXO)) != 0) {
        return Error{0, name + ": holds " + holds + ", but group or others have permissions on it (mode " +
                            [&] {
                                char text[8];
                                std::snprintf(text, sizeof text, "%04o", static_cast<unsigned>(st.st_mode & 07777));
                                return std::string(text);
                            }() +
                            "); make it readable by its owner only (chmod 600)"};
    }
    if (static_cast<std::size_t>(st.st_size) > max) {
        return Error{0, name + ": larger than " + std::to_string(max) + " octets"};
    }
    std::string text;
    char buffer[4096];
    for (;;) {
        ssize_t n = ::read(fd.get(), buffer, sizeof buffer);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            return Error{errno, name + ": " + std::strerror(errno)};
        }
        if (n == 0) {
            break;
        }
        text.append(buffer, static_cast<std::size_t>(n));
        if (text.size() > max) {
            return Error{0, name + ": larger than " + std::to_string(max) + " octets"};
        }
    }
    return text;
}

} // namespace

Result<std::vector<AuthEntry>> load_auth_file(const std::string& path)
{
    return load_credentials_file(path, "smtp-auth-file");
}

Result<std::vector<AuthEntry>> load_credentials_file(const std::string& path, const std::string& option)
{
    std::string name = option + " " + path;
    auto text = read_private_file(path, name, k_max_auth_file, "passwords");
    if (!text) {
        return text.error();
    }
    auto parsed = parse_auth_file(text.value());
    if (!parsed) {
        return Error{0, name + ", " + parsed.error().message};
    }
    return parsed;
}

Result<std::string> load_http_secret(const std::string& path)
{
    std::string name = "http-secret-file " + path;
    auto text = read_private_file(path, name, k_max_http_secret, "a secret");
    if (!text) {
        return text.error();
    }
    std::string secret = std::move(text.value());
    if (!secret.empty() && secret.back() == '\n') {
        secret.pop_back();
        if (!secret.empty() && secret.back() == '\r') {
            secret.pop_back();
        }
    }
    if (secret.empty()) {
        return Error{0, name + ": empty (one line: the secret)"};
    }
    if (secret.find('\n') != std::string::npos) {
        return Error{0, name + ": more than one line (one line: the secret)"};
    }
    return secret;
}

bool has_http_route(const std::vector<Route>& routes)
{
    return std::any_of(routes.begin(), routes.end(), [](const Route& r) { return r.transport.kind == TransportKind::http; });
}

std::vector<std::string> unused_auth_entries(const std::vector<AuthEntry>& entries, const std::vector<Route>& routes)
{
    std::vector<std::string> out;
    for (const AuthEntry& e : entries) {
        bool used = false;
        for (const Route& r : routes) {
            if (r.transport.kind != TransportKind::smtp) {
                continue;
            }
            std::vector<AuthEntry> one{e};
            if (find_credentials(one, r.transport.host, r.transport.port) != nullptr) {
                used = true;
            }
        }
        if (!used) {
            out.push_back("line " + std::to_string(e.line) + ": " + e.host +
                          (e.port != 0 ? ":" + std::to_string(e.port) : std::string()));
        }
    }
    return out;
}

} // namespace smtpspool
