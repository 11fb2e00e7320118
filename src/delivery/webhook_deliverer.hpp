// webhook_deliverer: the http and https transports (smtpspool-runq(8)): one
// signed multipart/form-data POST per message and route, through libcurl,
// the message's octets streamed from the spool. The only file that includes
// libcurl (make lint-layers).
#pragma once

#include "delivery/deliverer.hpp"

#include <chrono>
#include <ctime>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace smtpspool {

struct WebhookOptions {
    std::string url;    // as the route gives it (parse_webhook_url accepts it)
    std::string secret; // the HMAC-SHA256 key (--http-secret-file)
    std::chrono::seconds timeout{60};   // one request, connection included
    std::optional<std::string> ca_file; // PEM CA certificates; none: the system's
};

class WebhookDeliverer final : public Deliverer {
public:
    // now: the seconds since the epoch the Smtpspool-Timestamp carries.
    explicit WebhookDeliverer(WebhookOptions options, std::function<std::time_t()> now = nullptr);
    ~WebhookDeliverer() override;
    std::vector<RecipientOutcome> deliver(const Delivery& delivery) override;
    void finish() override;
    std::vector<std::string> take_notices() override;

private:
    struct Connection;
    RecipientOutcome post(const Delivery& delivery);
    WebhookOptions m_options;
    std::function<std::time_t()> m_now;
    std::unique_ptr<Connection> m_connection; // the curl handle: connections kept for the run
    std::string m_host; // the URL's, for the hop
    std::vector<std::string> m_notices;
    bool m_ca_reported = false;
    bool m_load_reported = false;
    std::time_t m_wait_until = 0; // a Retry-After: no request before then in this run
    std::string m_wait_reason;
};

} // namespace smtpspool
