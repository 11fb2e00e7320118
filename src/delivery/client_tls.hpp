// client_tls: the port through which the SMTP client gets TLS on its socket.
// The delivery layer includes no TLS library; cli wires this port to the one
// TLS module (server/tls, OpenSSL), which serves both directions.
#pragma once

#include "base/result.hpp"
#include "model/envelope.hpp"

#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

namespace smtpspool {

// One TLS session on a connected socket.
class ClientTlsChannel {
public:
    enum class Io { ok, eof, timeout, error };
    virtual ~ClientTlsChannel() = default; // sends close_notify when it can without waiting
    // Some octets into buffer (n of them), or the end, a timeout or an error.
    virtual Io read(char* buffer, std::size_t capacity, std::size_t& n) = 0;
    // All of bytes, or a timeout or an error.
    virtual Io write(std::string_view bytes) = 0;
    // Why the last read or write failed.
    virtual std::string error() const = 0;
    // The protocol version, the cipher, and whether the certificate was verified.
    virtual DeliveryTls record() const = 0;
    // "" when the server's chain leads to a trusted certificate and names the
    // host; otherwise why not.
    virtual std::string verify_error() const = 0;
};

class ClientTlsConnector {
public:
    // Milliseconds left to wait for the descriptor (0: time is up).
    using WaitMs = std::function<int()>;
    virtual ~ClientTlsConnector() = default;
    // The client handshake on fd (a connected socket, made non-blocking).
    // host (a name, or an address without brackets) is sent as SNI when it is
    // a name and is what the certificate must name. The error says why the
    // handshake (or the TLS set-up: unreadable CA file...) failed.
    virtual Result<std::unique_ptr<ClientTlsChannel>> handshake(int fd, const std::string& host, WaitMs wait_ms) = 0;
};

} // namespace smtpspool
