// tls: TLS (OpenSSL) in both directions. The server end over the session's
// two descriptors, for the transport: STARTTLS (RFC 3207) and
// --tls-on-connect. The client end over a connected socket, for runq's SMTP
// client: STARTTLS and implicit TLS (RFC 8314), the certificate chain and the
// host name checked and the verdict reported. TLS 1.2 and later with the
// library's default ciphers; no renegotiation, no tickets (every session is
// its own process). The only file that includes OpenSSL.
#pragma once

#include "model/envelope.hpp"
#include "base/result.hpp"

#include <cstddef>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

// OpenSSL's types, declared as the library does (openssl/types.h).
struct ssl_ctx_st;
struct ssl_st;

namespace smtpspool {

// A certificate chain and its private key, loaded once per process (so a
// renewed certificate is used by the next connection without a restart).
class TlsContext {
public:
    static Result<std::shared_ptr<TlsContext>> load(const std::string& cert_file, const std::string& key_file);
    // The client end: servers' certificates are checked against the PEM
    // certificates in ca_file, or the system's trusted ones without it; with
    // cert_file and key_file, a client certificate (both or neither).
    static Result<std::shared_ptr<TlsContext>> load_client(const std::optional<std::string>& ca_file,
                                                           const std::optional<std::string>& cert_file,
                                                           const std::optional<std::string>& key_file);
    ~TlsContext();
    TlsContext(const TlsContext&) = delete;
    TlsContext& operator=(const TlsContext&) = delete;

private:
    TlsContext() = default;
    friend class TlsStream;
    ::ssl_ctx_st* m_ctx = nullptr;
};

// One TLS session. Sets both descriptors non-blocking and waits in poll(2)
// with the time `wait_ms` gives, so that no read, write or handshake can
// outlast the transport's timeouts.
class TlsStream {
public:
    using WaitMs = std::function<int()>;
    enum class Io { ok, eof, timeout, error };

    // The handshake; the error's message says why it failed.
    static Result<std::unique_ptr<TlsStream>> accept(const std::shared_ptr<TlsContext>& context, int in, int out,
                                                     WaitMs wait_ms);
    // The client's handshake on a connected socket. host (a name, or an IP
    // address without brackets) is sent as SNI when it is a name, and the
    // server's certificate is checked against it; the handshake succeeds
    // whatever the check says, and verify_error() tells.
    static Result<std::unique_ptr<TlsStream>> connect(const std::shared_ptr<TlsContext>& context, int fd,
                                                      const std::string& host, WaitMs wait_ms);
    ~TlsStream(); // sends close_notify when it can without waiting
    TlsStream(const TlsStream&) = delete;
    TlsStream& operator=(const TlsStream&) = delete;

    // Some octets into buffer (n of them), or the end, a timeout or an error.
    Io read(char* buffer, std::size_t capacity, std::size_t& n);
    // All of bytes, or a timeout or an error.
    Io write(std::string_view bytes);
    TlsInfo info() const;
    // After connect: "" when the server's chain leads to a trusted
    // certificate and names the host, else why not (the library's words).
    std::string verify_error() const;
    // The library's reason for the last error.
    const std::string& error() const { return m_error; }

private:
    TlsStream() = default;
    Io wait(int ssl_error, int result);
    // SSL_accept or SSL_connect until done, waiting as the library asks.
    static Result<std::unique_ptr<TlsStream>> handshake(std::unique_ptr<TlsStream> s, int (*step)(::ssl_st*));
    std::shared_ptr<TlsContext> m_context;
    ::ssl_st* m_ssl = nullptr;
    int m_in = -1, m_out = -1;
    WaitMs m_wait_ms;
    std::string m_error;
};

} // namespace smtpspool
