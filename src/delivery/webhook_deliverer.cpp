// webhook_deliverer: the request through libcurl. The body is read twice from
// the spool: once to sign it (the signature goes in a header, before the
// body), once to send it; neither pass holds the message in memory.
//
// libcurl is loaded (dlopen) by the first request of a run, not linked: with
// its dozens of libraries linked, every `serve` (a process per connection)
// took about 4 ms instead of 0.75 ms to its greeting (bench/greet.c). Only
// its header's types and constants are compiled in.
#include "delivery/webhook_deliverer.hpp"

#include "base/clock.hpp"
#include "base/sha256.hpp"
#include "base/text.hpp"
#include "delivery/webhook.hpp"
#include "spool/envelope_json.hpp"

#include <curl/curl.h>
#include <dlfcn.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <random>
#include <type_traits>
#include <sys/stat.h>
#include <unistd.h>

namespace smtpspool {
namespace {

// What the read callback sends: the frame's head, the message, the tail.
struct RequestBody {
    std::string_view head, tail;
    int fd = -1;
    std::uint64_t message_size = 0; // as read by the signing pass
    std::size_t at = 0;             // octets of head or tail sent
    std::uint64_t message_sent = 0;
    int stage = 0; // 0 head, 1 message, 2 tail, 3 done
    std::string error;
};

std::size_t read_body(char* buffer, std::size_t size, std::size_t items, void* data)
{
    auto& b = *static_cast<RequestBody*>(data);
    std::size_t room = size * items;
    std::size_t out = 0;
    while (out < room && b.stage < 3) {
        if (b.stage == 0 || b.stage == 2) {
            std::string_view part = b.stage == 0 ? b.head : b.tail;
            std::size_t n = std::min(room - out, part.size() - b.at);
            std::memcpy(buffer + out, part.data() + b.at, n);
            out += n;
            b.at += n;
            if (b.at == part.size()) {
                b.at = 0;
                b.stage += 1;
            }
            continue;
        }
        std::uint64_t left = b.message_size - b.message_sent;
        if (left == 0) {
            b.stage = 2;
            continue;
        }
        ssize_t n = ::read(b.fd, buffer + out, static_cast<std::size_t>(std::min<std::uint64_t>(room - out, left)));
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            b.error = n == 0 ? "the message became shorter while it was sent" : std::strerror(errno);
            return CURL_READFUNC_ABORT;
        }
        out += static_cast<std::size_t>(n);
        b.message_sent += static_cast<std::uint64_t>(n);
    }
    return out;
}

// What the answer said: the last status line's reason, Retry-After, the body's start.
struct Answer {
    std::string reason;
    std::optional<std::string> retry_after;
    std::string body;
};

std::size_t on_header(char* buffer, std::size_t size, std::size_t items, void* data)
{
    auto& a = *static_cast<Answer*>(data);
    std::string_view line(buffer, size * items);
    if (line.substr(0, 5) == "HTTP/") { // a new answer (after 100 Continue, say): forget the last
        a = Answer{};
        std::size_t sp = line.find(' ');
        std::size_t sp2 = sp == std::string_view::npos ? sp : line.find(' ', sp + 1);
        if (sp2 != std::string_view::npos) {
            a.reason = std::string(text::trim_space(line.substr(sp2 + 1)));
        }
        return size * items;
    }
    std::size_t colon = line.find(':');
    if (colon != std::string_view::npos) {
        std::string name(line.substr(0, colon));
        std::transform(name.begin(), name.end(), name.begin(), [](unsigned char c) { return std::tolower(c); });
        if (name == "retry-after") {
            a.retry_after = std::string(text::trim_space(line.substr(colon + 1)));
        }
    }
    return size * items;
}

std::size_t on_body(char* buffer, std::size_t size, std::size_t items, void* data)
{
    auto& a = *static_cast<Answer*>(data);
    std::size_t n = size * items;
    if (a.body.size() < k_webhook_body_kept) {
        a.body.append(buffer, std::min(n, k_webhook_body_kept - a.body.size()));
    }
    return n;
}

std::string random_boundary()
{
    std::random_device random;
    static constexpr char k_digits[] = "0123456789abcdef";
    std::string out = "smtpspool-";
    for (int i = 0; i < 32; ++i) {
        out += k_digits[random() & 0xf];
    }
    return out;
}

// The functions of libcurl we call, looked up once per process.
struct CurlApi {
    CURLcode (*global_init)(long) = nullptr;
    CURL* (*easy_init)() = nullptr;
    CURLcode (*easy_setopt)(CURL*, CURLoption, ...) = nullptr;
    CURLcode (*easy_perform)(CURL*) = nullptr;
    CURLcode (*easy_getinfo)(CURL*, CURLINFO, ...) = nullptr;
    void (*easy_cleanup)(CURL*) = nullptr;
    const char* (*easy_strerror)(CURLcode) = nullptr;
    curl_slist* (*slist_append)(curl_slist*, const char*) = nullptr;
    void (*slist_free_all)(curl_slist*) = nullptr;
};

// libcurl.so.4 (Debian's libcurl4, OpenSSL flavour), or why it cannot be used.
const CurlApi* curl_api(std::string& why)
{
    static CurlApi api;
    static std::string error;
    static bool tried = false;
    if (!tried) {
        tried = true;
        void* lib = ::dlopen("libcurl.so.4", RTLD_NOW | RTLD_LOCAL);
        if (lib == nullptr) {
            const char* e = ::dlerror();
            error = std::string("libcurl cannot be loaded: ") + (e != nullptr ? e : "dlopen failed");
            return nullptr;
        }
        auto find = [&](auto& f, const char* name) {
            void* p = ::dlsym(lib, name);
            if (p == nullptr && error.empty()) {
                error = std::string("libcurl has no ") + name;
            }
            f = reinterpret_cast<std::remove_reference_t<decltype(f)>>(p);
        };
        find(api.global_init, "curl_global_init");
        find(api.easy_init, "curl_easy_init");
        find(api.easy_setopt, "curl_easy_setopt");
        find(api.easy_perform, "curl_easy_perform");
        find(api.easy_getinfo, "curl_easy_getinfo");
        find(api.easy_cleanup, "curl_easy_cleanup");
        find(api.easy_strerror, "curl_easy_strerror");
        find(api.slist_append, "curl_slist_append");
        find(api.slist_free_all, "curl_slist_free_all");
        if (error.empty() && api.global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
            error = "libcurl could not start";
        }
    }
    if (!error.empty()) {
        why = error;
        return nullptr;
    }
    return &api;
}

std::time_t system_now() { return std::time(nullptr); }

} // namespace

struct WebhookDeliverer::Connection {
    const CurlApi* api = nullptr;
    CURL* curl = nullptr;
    ~Connection()
    {
        if (curl != nullptr) {
            api->easy_cleanup(curl);
        }
    }
};

WebhookDeliverer::WebhookDeliverer(WebhookOptions options, std::function<std::time_t()> now)
    : m_options(std::move(options)), m_now(now ? std::move(now) : system_now)
{
    std::string why;
    if (auto url = parse_webhook_url(m_options.url, why)) {
        m_host = url->host;
    }
}

WebhookDeliverer::~WebhookDeliverer() = default;

void WebhookDeliverer::finish() { m_connection.reset(); }

std::vector<std::string> WebhookDeliverer::take_notices() { return std::exchange(m_notices, {}); }

std::vector<RecipientOutcome> WebhookDeliverer::deliver(const Delivery& delivery)
{
    RecipientOutcome o;
    std::time_t now = m_now();
    if (now < m_wait_until) {
        // The application asked to wait (Retry-After): the rest of the run
        // does not ask it again.
        o.outcome = Outcome::temporary;
        o.detail = "not sent: " + m_wait_reason + ", with Retry-After";
        o.retry_after = std::chrono::seconds(m_wait_until - now);
    } else {
        o = post(delivery);
        if (o.outcome == Outcome::temporary && o.retry_after.count() > 0) {
            m_wait_until = now + static_cast<std::time_t>(o.retry_after.count());
            m_wait_reason = "the last answer was " + o.detail.substr(0, o.detail.find(':'));
        }
    }
    return std::vector<RecipientOutcome>(delivery.recipients.size(), o);
}

RecipientOutcome WebhookDeliverer::post(const Delivery& delivery)
{
    auto temporary = [](std::string detail) { return RecipientOutcome{Outcome::temporary, std::move(detail)}; };
    std::string json = envelope_to_json(envelope_for(delivery.envelope, delivery.recipients));
    MultipartFrame frame = multipart_frame(json, random_boundary());
    std::time_t timestamp = m_now();

    // First pass: the signature over the timestamp and the body.
    auto first = delivery.open_message();
    if (!first) {
        return temporary("cannot read the message: " + first.error().message);
    }
    HmacSha256 mac(m_options.secret);
    mac.update(signature_prefix(timestamp));
    mac.update(frame.head);
    std::uint64_t size = 0;
    char buffer[65536];
    for (;;) {
        ssize_t n = ::read(first.value().get(), buffer, sizeof buffer);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            return temporary(std::string("cannot read the message: ") + std::strerror(errno));
        }
        if (n == 0) {
            break;
        }
        mac.update(std::string_view(buffer, static_cast<std::size_t>(n)));
        size += static_cast<std::uint64_t>(n);
    }
    mac.update(frame.tail);
    std::string signature = signature_value(hex(mac.finish()));

    // Second pass: the same octets, sent.
    auto second = delivery.open_message();
    if (!second) {
        return temporary("cannot read the message: " + second.error().message);
    }
    if (!m_connection) {
        std::string why;
        const CurlApi* loaded = curl_api(why);
        if (loaded == nullptr) {
            if (!m_load_reported) { // once per run, not once per message
                m_load_reported = true;
                m_notices.push_back(why);
            }
            return temporary(why);
        }
        m_connection = std::make_unique<Connection>();
        m_connection->api = loaded;
        m_connection->curl = loaded->easy_init();
        if (m_connection->curl == nullptr) {
            m_connection.reset();
            return temporary("libcurl could not start");
        }
    }
    CURL* curl = m_connection->curl;
    const CurlApi& api = *m_connection->api;
    RequestBody body;
    body.head = frame.head;
    body.tail = frame.tail;
    body.fd = second.value().get();
    body.message_size = size;
    Answer answer;
    char error[CURL_ERROR_SIZE] = {};
    std::string content_type = "Content-Type: " + frame.content_type();
    std::string key = "Idempotency-Key: " + idempotency_key(delivery.envelope, delivery.recipients);
    std::string stamp = "Smtpspool-Timestamp: " + std::to_string(timestamp);
    std::string signed_by = "Smtpspool-Signature: " + signature;
    curl_slist* headers = nullptr;
    for (const std::string* h : {&content_type, &key, &stamp, &signed_by}) {
        headers = api.slist_append(headers, h->c_str());
    }
    headers = api.slist_append(headers, "Expect:"); // no 100-continue round trip
    auto total = static_cast<curl_off_t>(frame.head.size() + size + frame.tail.size());
    long timeout_ms = static_cast<long>(m_options.timeout.count()) * 1000;
    api.easy_setopt(curl, CURLOPT_URL, m_options.url.c_str());
    api.easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
    api.easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 0L);
    api.easy_setopt(curl, CURLOPT_PROXY, ""); // no proxy from the environment
    api.easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    api.easy_setopt(curl, CURLOPT_NETRC, static_cast<long>(CURL_NETRC_IGNORED));
    api.easy_setopt(curl, CURLOPT_USERAGENT, "smtpspool");
    api.easy_setopt(curl, CURLOPT_SSL_VERIFYPEER, 1L);
    api.easy_setopt(curl, CURLOPT_SSL_VERIFYHOST, 2L);
    if (m_options.ca_file) {
        api.easy_setopt(curl, CURLOPT_CAINFO, m_options.ca_file->c_str());
        api.easy_setopt(curl, CURLOPT_CAPATH, nullptr);
    }
    api.easy_setopt(curl, CURLOPT_TIMEOUT_MS, timeout_ms);
    api.easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, timeout_ms);
    api.easy_setopt(curl, CURLOPT_POST, 1L);
    api.easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, total);
    api.easy_setopt(curl, CURLOPT_READFUNCTION, read_body);
    api.easy_setopt(curl, CURLOPT_READDATA, &body);
    api.easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
    api.easy_setopt(curl, CURLOPT_HEADERFUNCTION, on_header);
    api.easy_setopt(curl, CURLOPT_HEADERDATA, &answer);
    api.easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_body);
    api.easy_setopt(curl, CURLOPT_WRITEDATA, &answer);
    api.easy_setopt(curl, CURLOPT_ERRORBUFFER, error);
    CURLcode rc = api.easy_perform(curl);
    long status = 0;
    api.easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
    char* ip = nullptr;
    long port = 0;
    api.easy_getinfo(curl, CURLINFO_PRIMARY_IP, &ip);
    api.easy_getinfo(curl, CURLINFO_PRIMARY_PORT, &port);
    // Nothing of this request may outlive it in the handle.
    api.easy_setopt(curl, CURLOPT_HTTPHEADER, nullptr);
    api.easy_setopt(curl, CURLOPT_READDATA, nullptr);
    api.easy_setopt(curl, CURLOPT_HEADERDATA, nullptr);
    api.easy_setopt(curl, CURLOPT_WRITEDATA, nullptr);
    api.easy_setopt(curl, CURLOPT_ERRORBUFFER, nullptr);
    api.slist_free_all(headers);

    RecipientOutcome o;
    if (ip != nullptr && *ip != '\0') {
        o.hop = m_host + "[" + ip + "]:" + std::to_string(port);
    }
    if (rc != CURLE_OK) {
        o.outcome = Outcome::temporary;
        if (rc == CURLE_OPERATION_TIMEDOUT) {
            o.detail = "no answer within " + format_duration(m_options.timeout) + " (--http-timeout)";
        } else if (rc == CURLE_ABORTED_BY_CALLBACK || !body.error.empty()) {
            o.detail = "cannot read the message: " + body.error;
        } else {
            o.detail = text::detail_line(*error != '\0' ? error : api.easy_strerror(rc), 250);
        }
        if (rc == CURLE_SSL_CACERT_BADFILE && !m_ca_reported) {
            m_ca_reported = true;
            m_notices.push_back("http-tls-ca " + m_options.ca_file.value_or("") + ": " + o.detail);
        }
        return o;
    }
    o.outcome = classify_status(status);
    o.detail = http_detail(status, answer.reason, answer.body);
    if (o.outcome == Outcome::temporary && answer.retry_after) {
        if (auto wait = parse_retry_after(*answer.retry_after, m_now())) {
            o.retry_after = *wait;
        }
    }
    return o;
}

} // namespace smtpspool
