// amqp_deliverer: publishing with publisher confirms over librabbitmq (the
// only file that includes its headers; plain TCP, no TLS: librabbitmq's TLS
// would be a second TLS module beside server/tls).
#include "delivery/amqp_deliverer.hpp"

#include "base/text.hpp"
#include "delivery/idempotency.hpp"

#include <amqp.h>
#include <amqp_framing.h>
#include <amqp_tcp_socket.h>

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <mutex>
#include <thread>

namespace smtpspool {

namespace {

constexpr amqp_channel_t k_channel = 1;

amqp_bytes_t bytes_of(const std::string& s)
{
    return amqp_bytes_t{s.size(), const_cast<char*>(s.data())};
}

std::string text_of(amqp_bytes_t b)
{
    return text::detail_line(std::string_view(static_cast<const char*>(b.bytes), b.len), 200);
}

timeval remaining(std::chrono::steady_clock::time_point deadline)
{
    auto left = std::chrono::duration_cast<std::chrono::microseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() < 1000) {
        left = std::chrono::microseconds(1000);
    }
    timeval tv{};
    tv.tv_sec = static_cast<time_t>(left.count() / 1000000);
    tv.tv_usec = static_cast<suseconds_t>(left.count() % 1000000);
    return tv;
}

// A broker's close method: "CODE TEXT".
std::string describe_close(const amqp_method_t& method)
{
    if (method.id == AMQP_CONNECTION_CLOSE_METHOD) {
        auto* m = static_cast<amqp_connection_close_t*>(method.decoded);
        return "connection closed by the broker: " + std::to_string(m->reply_code) + " " + text_of(m->reply_text);
    }
    if (method.id == AMQP_CHANNEL_CLOSE_METHOD) {
        auto* m = static_cast<amqp_channel_close_t*>(method.decoded);
        return "channel closed by the broker: " + std::to_string(m->reply_code) + " " + text_of(m->reply_text);
    }
    return "unexpected method from the broker";
}

std::string describe_reply(const amqp_rpc_reply_t& r)
{
    switch (r.reply_type) {
    case AMQP_RESPONSE_NORMAL:
        return "";
    case AMQP_RESPONSE_NONE:
        return "no reply from the broker";
    case AMQP_RESPONSE_LIBRARY_EXCEPTION:
        return amqp_error_string2(r.library_error);
    case AMQP_RESPONSE_SERVER_EXCEPTION:
        return describe_close(r.reply);
    }
    return "unknown reply";
}

std::string hop_of(const AmqpTarget& t)
{
    std::string host = t.host.find(':') != std::string::npos ? "[" + t.host + "]" : t.host;
    return host + ":" + std::to_string(t.port);
}

// The message file, whole: at most max octets (a larger one is an error
// with errnum EFBIG).
Result<std::string> read_message(const MessageOpener& open, std::uint64_t max)
{
    auto fd = open();
    if (!fd) {
        return fd.error();
    }
    struct stat st {};
    if (::fstat(fd.value().get(), &st) != 0) {
        return sys_error("message");
    }
    if (static_cast<std::uint64_t>(st.st_size) > max) {
        return Error{EFBIG, "the message (" + std::to_string(st.st_size) + " octets) is larger than the amqp " +
                                "transport sends (" + std::to_string(max) + " octets)"};
    }
    std::string body;
    body.reserve(static_cast<std::size_t>(st.st_size));
    char buffer[65536];
    for (;;) {
        ssize_t n = ::read(fd.value().get(), buffer, sizeof buffer);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            return sys_error("message");
        }
        if (n == 0) {
            return body;
        }
        if (body.size() + static_cast<std::size_t>(n) > max) {
            return Error{EFBIG, "the message grew past " + std::to_string(max) + " octets"};
        }
        body.append(buffer, static_cast<std::size_t>(n));
    }
}

// Ends a send that blocks past the deadline: librabbitmq waits for the socket
// to take a content body with no deadline of its own (a broker under a
// resource alarm stops reading), so past the deadline this shuts the socket
// down and the send fails. Its thread lives only while the send does (no
// thread is left when runq forks its workers).
class SendWatchdog {
public:
    SendWatchdog(int fd, std::chrono::steady_clock::time_point deadline)
        : m_thread([this, fd, deadline] {
              std::unique_lock lock(m_mutex);
              if (!m_cv.wait_until(lock, deadline, [this] { return m_done; })) {
                  m_fired = true;
                  ::shutdown(fd, SHUT_RDWR);
              }
          })
    {
    }
    SendWatchdog(const SendWatchdog&) = delete;
    SendWatchdog& operator=(const SendWatchdog&) = delete;
    ~SendWatchdog()
    {
        {
            std::lock_guard lock(m_mutex);
            m_done = true;
        }
        m_cv.notify_one();
        m_thread.join();
    }
    bool fired()
    {
        std::lock_guard lock(m_mutex);
        return m_fired;
    }

private:
    std::mutex m_mutex;
    std::condition_variable m_cv;
    bool m_done = false;
    bool m_fired = false;
    std::thread m_thread; // last: the others exist when it starts
};

} // namespace

std::string amqp_envelope_json(const Envelope& envelope, const std::vector<std::size_t>& recipients,
                               const std::string& key)
{
    std::string out = "{\"queue_id\":";
    text::append_json_string(out, envelope.id);
    out += ",\"idempotency_key\":";
    text::append_json_string(out, key);
    out += ",\"mail_from\":";
    text::append_json_string(out, envelope.mail_from);
    out += ",\"recipients\":[";
    for (std::size_t i = 0; i < recipients.size(); ++i) {
        out += i == 0 ? "" : ",";
        text::append_json_string(out, envelope.recipients[recipients[i]].address);
    }
    out += "],\"received_at\":";
    text::append_json_string(out, envelope.received_at);
    out += ",\"hostname\":";
    text::append_json_string(out, envelope.hostname);
    out += ",\"client_address\":";
    if (envelope.client.address) {
        text::append_json_string(out, *envelope.client.address);
    } else {
        out += "null";
    }
    out += ",\"helo\":";
    text::append_json_string(out, envelope.client.helo);
    out += ",\"body\":";
    text::append_json_string(out, body_name(envelope.body));
    out += ",\"smtputf8\":";
    out += envelope.smtputf8 ? "true" : "false";
    out += ",\"size\":" + std::to_string(envelope.size) + "}";
    return out;
}

struct AmqpDeliverer::Connection {
    amqp_connection_state_t state = nullptr;
    std::uint64_t next_tag = 1; // the delivery tag of the next publication (confirm mode)
    bool clean = false;         // may be closed with connection.close
    ~Connection()
    {
        if (state != nullptr) {
            if (clean) {
                amqp_connection_close(state, AMQP_REPLY_SUCCESS);
            }
            amqp_destroy_connection(state);
        }
    }
};

AmqpDeliverer::AmqpDeliverer(AmqpTarget target, std::optional<AmqpCredentials> credentials,
                             std::string credentials_problem, std::chrono::seconds timeout, std::uint64_t max_size)
    : m_target(std::move(target)), m_credentials(std::move(credentials)),
      m_credentials_problem(std::move(credentials_problem)), m_timeout(timeout), m_max_size(max_size)
{
}

AmqpDeliverer::~AmqpDeliverer() = default;

std::vector<RecipientOutcome> AmqpDeliverer::all(const Delivery& delivery, Outcome outcome,
                                                 const std::string& detail) const
{
    RecipientOutcome o;
    o.outcome = outcome;
    o.detail = text::detail_line(detail, 300);
    o.handoff = Handoff::relayed;
    o.hop = hop_of(m_target);
    return std::vector<RecipientOutcome>(delivery.recipients.size(), o);
}

// After a failure: the socket is closed without the close handshake, which
// could wait as long again.
void AmqpDeliverer::drop()
{
    if (m_connection) {
        m_connection->clean = false;
    }
    m_connection.reset();
}

// The end of a run: connection.close on a connection in good order.
void AmqpDeliverer::finish() { m_connection.reset(); }

std::vector<std::string> AmqpDeliverer::take_notices() { return std::exchange(m_notices, {}); }

Result<void> AmqpDeliverer::connect(std::chrono::steady_clock::time_point deadline)
{
    auto c = std::make_unique<Connection>();
    c->state = amqp_new_connection();
    if (c->state == nullptr) {
        return Error{ENOMEM, "out of memory"};
    }
    amqp_socket_t* socket = amqp_tcp_socket_new(c->state);
    if (socket == nullptr) {
        return Error{ENOMEM, "out of memory"};
    }
    std::string where = "amqp " + hop_of(m_target) + ": ";
    timeval tv = remaining(deadline);
    if (int rc = amqp_socket_open_noblock(socket, m_target.host.c_str(), m_target.port, &tv); rc != AMQP_STATUS_OK) {
        return Error{0, where + "connect: " + amqp_error_string2(rc)};
    }
    tv = remaining(deadline);
    amqp_set_handshake_timeout(c->state, &tv);
    amqp_set_rpc_timeout(c->state, &tv);
    amqp_rpc_reply_t r = amqp_login(c->state, m_target.vhost.c_str(), 1, AMQP_DEFAULT_FRAME_SIZE, 0,
                                    AMQP_SASL_METHOD_PLAIN, m_credentials->user.c_str(),
                                    m_credentials->password.c_str());
    if (r.reply_type != AMQP_RESPONSE_NORMAL) {
        std::string why = where + "login as " + text::detail_line(m_credentials->user, 100) + " to virtual host " +
                          text::detail_line(m_target.vhost, 100) + " refused or failed: " + describe_reply(r);
        if (!m_noticed) {
            m_notices.push_back(why + " (check --amqp-credentials-file and the broker's permissions)");
            m_noticed = true;
        }
        return Error{0, why};
    }
    amqp_channel_open(c->state, k_channel);
    if (r = amqp_get_rpc_reply(c->state); r.reply_type != AMQP_RESPONSE_NORMAL) {
        return Error{0, where + "channel.open: " + describe_reply(r)};
    }
    amqp_confirm_select(c->state, k_channel);
    if (r = amqp_get_rpc_reply(c->state); r.reply_type != AMQP_RESPONSE_NORMAL) {
        return Error{0, where + "confirm.select: " + describe_reply(r)};
    }
    c->clean = true;
    m_connection = std::move(c);
    return {};
}

std::vector<RecipientOutcome> AmqpDeliverer::deliver(const Delivery& delivery)
{
    if (!m_credentials) {
        if (!m_noticed) {
            m_notices.push_back(m_credentials_problem);
            m_noticed = true;
        }
        return all(delivery, Outcome::temporary, m_credentials_problem);
    }
    auto body = read_message(delivery.open_message, m_max_size);
    if (!body) {
        return all(delivery, body.error().errnum == EFBIG ? Outcome::permanent : Outcome::temporary,
                   body.error().message);
    }
    std::vector<std::string> addresses;
    for (std::size_t i : delivery.recipients) {
        addresses.push_back(delivery.envelope.recipients[i].address);
    }
    const std::string key = idempotency_key(delivery.envelope, delivery.recipients);
    const std::string envelope = amqp_envelope_json(delivery.envelope, delivery.recipients, key);

    auto deadline = std::chrono::steady_clock::now() + m_timeout;
    if (!m_connection) {
        if (auto c = connect(deadline); !c) {
            return all(delivery, Outcome::temporary, c.error().message);
        }
    }
    // A new deadline for the publication, so that a slow login does not eat it.
    deadline = std::chrono::steady_clock::now() + m_timeout;
    amqp_connection_state_t state = m_connection->state;
    std::string where = "amqp " + hop_of(m_target) + ": ";

    std::vector<amqp_field_value_t> rcpt(addresses.size());
    for (std::size_t i = 0; i < addresses.size(); ++i) {
        rcpt[i].kind = AMQP_FIELD_KIND_UTF8;
        rcpt[i].value.bytes = bytes_of(addresses[i]);
    }
    amqp_table_entry_t headers[4];
    headers[0].key = amqp_cstring_bytes("idempotency-key");
    headers[0].value.kind = AMQP_FIELD_KIND_UTF8;
    headers[0].value.value.bytes = bytes_of(key);
    headers[1].key = amqp_cstring_bytes("smtpspool-envelope");
    headers[1].value.kind = AMQP_FIELD_KIND_UTF8;
    headers[1].value.value.bytes = bytes_of(envelope);
    headers[2].key = amqp_cstring_bytes("mail-from");
    headers[2].value.kind = AMQP_FIELD_KIND_UTF8;
    headers[2].value.value.bytes = bytes_of(delivery.envelope.mail_from);
    headers[3].key = amqp_cstring_bytes("rcpt-to");
    headers[3].value.kind = AMQP_FIELD_KIND_ARRAY;
    headers[3].value.value.array = amqp_array_t{static_cast<int>(rcpt.size()), rcpt.data()};

    amqp_basic_properties_t props{};
    props._flags = AMQP_BASIC_CONTENT_TYPE_FLAG | AMQP_BASIC_DELIVERY_MODE_FLAG | AMQP_BASIC_MESSAGE_ID_FLAG |
                   AMQP_BASIC_APP_ID_FLAG | AMQP_BASIC_HEADERS_FLAG;
    props.content_type = amqp_cstring_bytes("message/rfc822");
    props.delivery_mode = AMQP_DELIVERY_PERSISTENT;
    props.message_id = bytes_of(key);
    props.app_id = amqp_cstring_bytes("smtpspool");
    props.headers = amqp_table_t{4, headers};

    const std::uint64_t tag = m_connection->next_tag++;
    // mandatory: a message no queue takes comes back (basic.return) instead of vanishing.
    int rc = AMQP_STATUS_OK;
    bool stuck = false;
    {
        SendWatchdog watchdog(amqp_get_sockfd(state), deadline);
        rc = amqp_basic_publish(state, k_channel, bytes_of(m_target.exchange), bytes_of(m_target.routing_key), 1, 0,
                                &props, bytes_of(body.value()));
        stuck = watchdog.fired();
    }
    if (rc != AMQP_STATUS_OK || stuck) {
        drop();
        return all(delivery, Outcome::temporary,
                   where + (stuck ? "the broker did not take the message within " +
                                        std::to_string(m_timeout.count()) + "s"
                                  : std::string("publish: ") + amqp_error_string2(rc)));
    }
    std::string returned;
    for (;;) {
        amqp_frame_t frame{};
        timeval tv = remaining(deadline);
        if (std::chrono::steady_clock::now() >= deadline) {
            rc = AMQP_STATUS_TIMEOUT;
        } else {
            rc = amqp_simple_wait_frame_noblock(state, &frame, &tv);
        }
        if (rc == AMQP_STATUS_TIMEOUT) {
            drop();
            return all(delivery, Outcome::temporary,
                       where + "no confirm from the broker within " + std::to_string(m_timeout.count()) + "s");
        }
        if (rc != AMQP_STATUS_OK) {
            drop();
            return all(delivery, Outcome::temporary, where + "waiting for the confirm: " + amqp_error_string2(rc));
        }
        if (frame.frame_type != AMQP_FRAME_METHOD) {
            continue;
        }
        switch (frame.payload.method.id) {
        case AMQP_BASIC_ACK_METHOD: {
            auto* ack = static_cast<amqp_basic_ack_t*>(frame.payload.method.decoded);
            if (ack->delivery_tag == tag || (ack->multiple != 0 && ack->delivery_tag >= tag)) {
                amqp_maybe_release_buffers(state);
                if (!returned.empty()) {
                    return all(delivery, Outcome::temporary, where + "returned unroutable: " + returned);
                }
                return all(delivery, Outcome::delivered, where + "confirmed, message-id " + key);
            }
            break;
        }
        case AMQP_BASIC_NACK_METHOD: {
            auto* nack = static_cast<amqp_basic_nack_t*>(frame.payload.method.decoded);
            if (nack->delivery_tag == tag || (nack->multiple != 0 && nack->delivery_tag >= tag)) {
                amqp_maybe_release_buffers(state);
                return all(delivery, Outcome::temporary, where + "the broker refused the message (basic.nack)");
            }
            break;
        }
        case AMQP_BASIC_RETURN_METHOD: {
            auto* ret = static_cast<amqp_basic_return_t*>(frame.payload.method.decoded);
            returned = std::to_string(ret->reply_code) + " " + text_of(ret->reply_text) + " (exchange '" +
                       text_of(ret->exchange) + "', routing key '" + text_of(ret->routing_key) + "')";
            amqp_message_t message{};
            amqp_rpc_reply_t r = amqp_read_message(state, frame.channel, &message, 0);
            if (r.reply_type != AMQP_RESPONSE_NORMAL) {
                drop();
                return all(delivery, Outcome::temporary, where + "returned unroutable: " + returned);
            }
            amqp_destroy_message(&message);
            break;
        }
        case AMQP_CHANNEL_CLOSE_METHOD:
        case AMQP_CONNECTION_CLOSE_METHOD: {
            std::string why = describe_close(frame.payload.method);
            drop();
            return all(delivery, Outcome::temporary, where + why);
        }
        default:
            break;
        }
    }
}

} // namespace smtpspool
