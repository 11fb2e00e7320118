// smtp_lost: what the SMTP client's files share inside the delivery layer:
// Lost (the connection is unusable), the reply class and the clock helpers.
#pragma once

#include "base/text.hpp"
#include "delivery/smtp_client.hpp"

#include <chrono>
#include <climits>
#include <string>
#include <string_view>

namespace smtpspool {

// The connection is unusable; detail says why (one line of at most
// k_max_detail octets, for every recipient not yet decided). Thrown inside
// the SMTP client's files, never out of SmtpDeliverer.
struct Lost {
    explicit Lost(std::string_view why) : detail(text::detail_line(why, k_max_detail)) {}
    std::string detail;
};

inline int klass(const ServerReply& reply) { return reply.code / 100; }

inline std::string seconds(std::chrono::seconds s) { return std::to_string(s.count()) + " s"; }

// Milliseconds from now to deadline, 0 when passed.
inline int remaining_ms(std::chrono::steady_clock::time_point deadline)
{
    auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now()).count();
    if (left <= 0) {
        return 0;
    }
    return left > INT_MAX ? INT_MAX : static_cast<int>(left);
}

} // namespace smtpspool
