// tls: OpenSSL's SSL_CTX and SSL behind TlsContext and TlsStream.
#include "server/tls.hpp"

#include "base/fd.hpp"

#include <cerrno>
#include <cstring>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <poll.h>

namespace smtpspool {
namespace {

// The first queued library error as text (and the queue emptied).
std::string library_error(std::string_view fallback)
{
    unsigned long e = ::ERR_get_error();
    ::ERR_clear_error();
    if (e == 0) {
        return std::string(fallback);
    }
    char text[256];
    ::ERR_error_string_n(e, text, sizeof text);
    return text;
}

} // namespace

Result<std::shared_ptr<TlsContext>> TlsContext::load(const std::string& cert_file, const std::string& key_file)
{
    std::shared_ptr<TlsContext> c(new TlsContext);
    c->m_ctx = ::SSL_CTX_new(::TLS_server_method());
    if (c->m_ctx == nullptr) {
        return Error{0, "cannot set up TLS: " + library_error("SSL_CTX_new failed")};
    }
    ::SSL_CTX_set_min_proto_version(c->m_ctx, TLS1_2_VERSION);
    ::SSL_CTX_set_options(c->m_ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_TICKET | SSL_OP_CIPHER_SERVER_PREFERENCE);
    ::SSL_CTX_set_session_cache_mode(c->m_ctx, SSL_SESS_CACHE_OFF);
    if (::SSL_CTX_use_certificate_chain_file(c->m_ctx, cert_file.c_str()) != 1) {
        return Error{0, "cannot load the TLS certificate " + cert_file + ": " + library_error("unreadable")};
    }
    if (::SSL_CTX_use_PrivateKey_file(c->m_ctx, key_file.c_str(), SSL_FILETYPE_PEM) != 1) {
        return Error{0, "cannot load the TLS key " + key_file + ": " + library_error("unreadable")};
    }
    if (::SSL_CTX_check_private_key(c->m_ctx) != 1) {
        return Error{0, "the TLS key " + key_file + " does not match the certificate " + cert_file + ": " +
                            library_error("mismatch")};
    }
    return c;
}

Result<std::shared_ptr<TlsContext>> TlsContext::load_client(const std::optional<std::string>& ca_file,
                                                            const std::optional<std::string>& cert_file,
                                                            const std::optional<std::string>& key_file)
{
    std::shared_ptr<TlsContext> c(new TlsContext);
    c->m_ctx = ::SSL_CTX_new(::TLS_client_method());
    if (c->m_ctx == nullptr) {
        return Error{0, "cannot set up TLS: " + library_error("SSL_CTX_new failed")};
    }
    ::SSL_CTX_set_min_proto_version(c->m_ctx, TLS1_2_VERSION);
    ::SSL_CTX_set_options(c->m_ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_TICKET);
    ::SSL_CTX_set_session_cache_mode(c->m_ctx, SSL_SESS_CACHE_OFF);
    // The chain is checked during the handshake but never ends it: the
    // caller reads the verdict (verify_error) and decides by its TLS level.
    ::SSL_CTX_set_verify(c->m_ctx, SSL_VERIFY_NONE, nullptr);
    if (ca_file) {
        if (::SSL_CTX_load_verify_locations(c->m_ctx, ca_file->c_str(), nullptr) != 1) {
            return Error{0, "cannot load the CA certificates " + *ca_file + ": " + library_error("unreadable")};
        }
    } else if (::SSL_CTX_set_default_verify_paths(c->m_ctx) != 1) {
        return Error{0, "cannot load the system's CA certificates: " + library_error("unreadable")};
    }
    if (cert_file.has_value() != key_file.has_value()) {
        return Error{0, "a client certificate needs both a certificate and a key file"};
    }
    if (cert_file) {
        if (::SSL_CTX_use_certificate_chain_file(c->m_ctx, cert_file->c_str()) != 1) {
            return Error{0, "cannot load the TLS client certificate " + *cert_file + ": " + library_error("unreadable")};
        }
        if (::SSL_CTX_use_PrivateKey_file(c->m_ctx, key_file->c_str(), SSL_FILETYPE_PEM) != 1) {
            return Error{0, "cannot load the TLS client key " + *key_file + ": " + library_error("unreadable")};
        }
        if (::SSL_CTX_check_private_key(c->m_ctx) != 1) {
            return Error{0, "the TLS client key " + *key_file + " does not match the certificate " + *cert_file +
                                ": " + library_error("mismatch")};
        }
    }
    return c;
}

TlsContext::~TlsContext() { ::SSL_CTX_free(m_ctx); }

namespace {

// A stream over in and out (one BIO when they are the same descriptor).
Result<void> attach(::SSL_CTX* ctx, ::SSL*& ssl, int in, int out)
{
    if (!set_nonblocking(in) || !set_nonblocking(out)) {
        return Error{errno, std::string("cannot make the connection non-blocking: ") + std::strerror(errno)};
    }
    ssl = ::SSL_new(ctx);
    BIO* rbio = ::BIO_new_fd(in, BIO_NOCLOSE);
    BIO* wbio = in == out ? rbio : ::BIO_new_fd(out, BIO_NOCLOSE);
    if (ssl == nullptr || rbio == nullptr || wbio == nullptr) {
        ::BIO_free(rbio);
        if (wbio != rbio) {
            ::BIO_free(wbio);
        }
        return Error{0, "cannot set up TLS: " + library_error("out of memory")};
    }
    // One BIO for both sides when in == out: SSL_set_bio then takes one reference.
    ::SSL_set_bio(ssl, rbio, wbio);
    return {};
}

bool is_ip_address(const std::string& host)
{
    return host.find(':') != std::string::npos ||
           host.find_first_not_of("0123456789.") == std::string::npos;
}

} // namespace

Result<std::unique_ptr<TlsStream>> TlsStream::accept(const std::shared_ptr<TlsContext>& context, int in, int out,
                                                     WaitMs wait_ms)
{
    std::unique_ptr<TlsStream> s(new TlsStream);
    s->m_context = context;
    s->m_in = in;
    s->m_out = out;
    s->m_wait_ms = std::move(wait_ms);
    if (auto r = attach(context->m_ctx, s->m_ssl, in, out); !r) {
        return r.error();
    }
    return handshake(std::move(s), ::SSL_accept);
}

Result<std::unique_ptr<TlsStream>> TlsStream::connect(const std::shared_ptr<TlsContext>& context, int fd,
                                                      const std::string& host, WaitMs wait_ms)
{
    std::unique_ptr<TlsStream> s(new TlsStream);
    s->m_context = context;
    s->m_in = s->m_out = fd;
    s->m_wait_ms = std::move(wait_ms);
    if (auto r = attach(context->m_ctx, s->m_ssl, fd, fd); !r) {
        return r.error();
    }
    // RFC 6125: the name we connected to is the reference identity; SNI
    // (RFC 6066 §3) carries only names, never addresses.
    X509_VERIFY_PARAM* param = ::SSL_get0_param(s->m_ssl);
    if (is_ip_address(host)) {
        if (::X509_VERIFY_PARAM_set1_ip_asc(param, host.c_str()) != 1) {
            return Error{0, "cannot set up TLS: " + library_error("bad address")};
        }
    } else {
        ::X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
        if (::SSL_set1_host(s->m_ssl, host.c_str()) != 1 || ::SSL_set_tlsext_host_name(s->m_ssl, host.c_str()) != 1) {
            return Error{0, "cannot set up TLS: " + library_error("bad host name")};
        }
    }
    return handshake(std::move(s), ::SSL_connect);
}

Result<std::unique_ptr<TlsStream>> TlsStream::handshake(std::unique_ptr<TlsStream> s, int (*step)(::ssl_st*))
{
    for (;;) {
        errno = 0;
        int r = step(s->m_ssl);
        if (r == 1) {
            return s;
        }
        Io io = s->wait(::SSL_get_error(s->m_ssl, r), r);
        if (io == Io::timeout) {
            return Error{ETIMEDOUT, "TLS handshake timed out"};
        }
        if (io != Io::ok) {
            return Error{0, "TLS handshake failed: " + (s->m_error.empty() ? std::string("connection closed") : s->m_error)};
        }
    }
}

TlsStream::~TlsStream()
{
    if (m_ssl != nullptr) {
        ::SSL_shutdown(m_ssl); // one try: non-blocking, no waiting for the peer's reply
        ::SSL_free(m_ssl);
    }
}

// After an SSL_* call returned `result` with `ssl_error`: ok to retry (after
// waiting for the descriptor it needs), or why not.
TlsStream::Io TlsStream::wait(int ssl_error, int result)
{
    int fd = -1;
    short events = 0;
    switch (ssl_error) {
    case SSL_ERROR_WANT_READ:
        fd = m_in;
        events = POLLIN;
        break;
    case SSL_ERROR_WANT_WRITE:
        fd = m_out;
        events = POLLOUT;
        break;
    case SSL_ERROR_ZERO_RETURN:
        return Io::eof;
    case SSL_ERROR_SYSCALL:
        if (result == 0 || errno == 0 || errno == ECONNRESET || errno == EPIPE) {
            m_error = library_error("connection closed");
            return Io::eof;
        }
        m_error = library_error(std::strerror(errno));
        return Io::error;
    default:
        m_error = library_error("protocol error");
        return Io::error;
    }
    for (;;) {
        pollfd p{fd, events, 0};
        int r = ::poll(&p, 1, m_wait_ms());
        if (r > 0) {
            return Io::ok;
        }
        if (r == 0) {
            return Io::timeout;
        }
        if (errno != EINTR) {
            m_error = std::strerror(errno);
            return Io::error;
        }
    }
}

TlsStream::Io TlsStream::read(char* buffer, std::size_t capacity, std::size_t& n)
{
    for (;;) {
        errno = 0;
        int r = ::SSL_read(m_ssl, buffer, static_cast<int>(std::min<std::size_t>(capacity, 1 << 30)));
        if (r > 0) {
            n = static_cast<std::size_t>(r);
            return Io::ok;
        }
        if (Io io = wait(::SSL_get_error(m_ssl, r), r); io != Io::ok) {
            return io;
        }
    }
}

TlsStream::Io TlsStream::write(std::string_view bytes)
{
    while (!bytes.empty()) {
        errno = 0;
        int r = ::SSL_write(m_ssl, bytes.data(), static_cast<int>(std::min<std::size_t>(bytes.size(), 1 << 30)));
        if (r > 0) {
            bytes.remove_prefix(static_cast<std::size_t>(r));
            continue;
        }
        Io io = wait(::SSL_get_error(m_ssl, r), r);
        if (io == Io::eof) {
            return Io::error; // a write to a closed connection failed
        }
        if (io != Io::ok) {
            return io;
        }
    }
    return Io::ok;
}

std::string TlsStream::verify_error() const
{
    if (::SSL_get0_peer_certificate(m_ssl) == nullptr) {
        return "no certificate";
    }
    long v = ::SSL_get_verify_result(m_ssl);
    return v == X509_V_OK ? "" : ::X509_verify_cert_error_string(v);
}

TlsInfo TlsStream::info() const
{
    return {::SSL_get_version(m_ssl), ::SSL_CIPHER_get_name(::SSL_get_current_cipher(m_ssl))};
}

} // namespace smtpspool
