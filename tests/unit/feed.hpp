// feed: the tests' "feed until consumed" driver. Session::feed may use less
// than it is given (it stops after a message's data or a BDAT chunk so that
// its reply goes out first); a transport calls it again with the rest. The
// unit fixture, the in-process transcripts and fuzz_session all drive a
// Session through this one loop (the stdio transport has its own, with writes
// between the calls).
#pragma once

#include "smtp/session.hpp"

#include <functional>
#include <string>
#include <string_view>

namespace testutil {

struct Fed {
    std::string wire;         // every reply, in order
    std::size_t consumed = 0; // octets of the input used
    bool close = false;       // the session ended
    bool start_tls = false;   // STARTTLS accepted: the input after `consumed` was not fed
    bool stalled = false;     // feed used nothing and neither closed nor asked for TLS
    int feeds = 0;            // calls of Session::feed
};

// Feeds `bytes` until all are used, the session closes, or it asks for the
// TLS handshake. `each` sees every Output with the input it answered.
inline Fed feed_until_consumed(smtpspool::Session& session, std::string_view bytes,
                               const std::function<void(const smtpspool::Output&, std::string_view)>& each = {})
{
    Fed fed;
    for (;;) {
        smtpspool::Output o = session.feed(bytes);
        if (each) {
            each(o, bytes);
        }
        ++fed.feeds;
        fed.wire += o.wire;
        fed.consumed += o.consumed;
        fed.close = fed.close || o.close;
        if (o.start_tls) {
            fed.start_tls = true;
            break;
        }
        if (o.close || o.consumed >= bytes.size()) {
            break;
        }
        if (o.consumed == 0) {
            fed.stalled = true;
            break;
        }
        bytes.remove_prefix(o.consumed);
    }
    return fed;
}

} // namespace testutil
