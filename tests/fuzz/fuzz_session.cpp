// fuzz_session: the whole session core fed arbitrary bytes, whole and in
// chunks. Invariants: well-formed replies, the same result whatever the
// chunking, no message without a sender and a recipient, bounded memory.
#include "../unit/testutil.hpp"
#include "fuzz_check.hpp"
#include "session.hpp"

#include <cstdint>

using namespace smtpspool;
using namespace testutil;

namespace {

struct Run {
    std::string wire;
    std::vector<StoredMessage> messages;
    std::size_t peak = 0;
};

Run drive(std::string_view input, bool local, std::size_t step)
{
    SessionConfig c;
    c.hostname = "mx.test";
    c.local_domains = {"mx.test"};
    c.max_message_size = 2000;
    c.max_recipients = 5;
    c.max_line_length = 600;
    c.max_errors = 50;
    c.peer.local = local;
    c.peer.address = local ? "" : "192.0.2.7";
    c.may_relay = local;
    MemorySpool spool;
    RecordingLog log;
    FixedClock clock(TimePoint(std::chrono::seconds(1795000000)));
    Session s(c, spool, log, clock);
    Run r;
    r.wire = s.start().wire;
    bool closed = false;
    for (std::size_t i = 0; i < input.size() && !closed; i += step) {
        std::string_view chunk = input.substr(i, step);
        for (;;) {
            Output o = s.feed(chunk);
            FUZZ_CHECK(o.consumed <= chunk.size());
            FUZZ_CHECK(o.consumed > 0 || o.close || chunk.empty());
            r.wire += o.wire;
            closed = o.close;
            if (closed || o.consumed == chunk.size()) {
                break;
            }
            chunk.remove_prefix(o.consumed);
        }
    }
    r.wire += s.end_of_input().wire;
    r.messages = spool.messages;
    r.peak = spool.peak;
    FUZZ_CHECK(!spool.open); // nothing left half-written
    return r;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
    if (size < 1) {
        return 0;
    }
    bool local = (data[0] & 1) != 0;
    std::size_t step = 1 + (data[0] >> 1) % 17;
    std::string_view input(reinterpret_cast<const char*>(data + 1), size - 1);
    Run whole = drive(input, local, input.size() + 1);
    Run pieces = drive(input, local, step);
    FUZZ_CHECK(well_formed_replies(whole.wire));
    FUZZ_CHECK(whole.wire == pieces.wire);
    FUZZ_CHECK(whole.messages.size() == pieces.messages.size());
    for (std::size_t i = 0; i < whole.messages.size(); ++i) {
        const StoredMessage& m = whole.messages[i];
        FUZZ_CHECK(m.data == pieces.messages[i].data);
        FUZZ_CHECK(!m.envelope.recipients.empty());
        FUZZ_CHECK(m.envelope.recipients.size() <= 5);
        FUZZ_CHECK(m.data.rfind("Received: ", 0) == 0);
        FUZZ_CHECK(m.envelope.size == m.data.size());
        if (!local) {
            // A network client's accepted message has only CRLF line ends.
            for (std::size_t k = 0; k < m.data.size(); ++k) {
                if (m.data[k] == '\n') {
                    FUZZ_CHECK(k > 0 && m.data[k - 1] == '\r');
                }
                if (m.data[k] == '\r') {
                    FUZZ_CHECK(k + 1 < m.data.size() && m.data[k + 1] == '\n');
                }
            }
        }
    }
    // Memory: a message is never stored beyond the limit plus the Received: header.
    FUZZ_CHECK(whole.peak <= 2000 + 1024);
    // Each queued message was announced with a 250 carrying its id.
    std::size_t queued = 0;
    for (std::size_t p = whole.wire.find("queued as "); p != std::string::npos;
         p = whole.wire.find("queued as ", p + 1)) {
        ++queued;
    }
    FUZZ_CHECK(queued == whole.messages.size());
    return 0;
}
