// fuzz_session: the whole session core fed arbitrary bytes, whole and in
// chunks, with a policy that refuses, expands and adds headers by the input's
// own content, and the policy settings taken from the first byte. Invariants:
// well-formed replies, the same result whatever the chunking (BDAT chunks
// included), no message without a sender and a recipient, recipient and
// message limits kept, bounded memory, CRLF only unless BINARYMIME.
#include "../unit/feed.hpp"
#include "../unit/testutil.hpp"
#include "fuzz_check.hpp"
#include "smtp/session.hpp"

#include <cstdint>

using namespace smtpspool;
using namespace testutil;

namespace {

// Decides by the addresses themselves, so that whole and chunked runs agree.
class FuzzPolicy final : public PolicyPort {
public:
    std::optional<Reply> check_sender(const PolicyFacts& facts) override
    {
        if (facts.sender.find("deny") != std::string_view::npos) {
            return replies::sender_denied();
        }
        return std::nullopt;
    }
    RecipientVerdict check_recipient(const PolicyFacts&, std::string_view r, bool local) override
    {
        if (r.rfind("x", 0) == 0) {
            return {local ? replies::user_unknown() : replies::policy_tempfail(), {}};
        }
        if (r.rfind("list", 0) == 0) {
            return {std::nullopt, {"a@mx.test", "b@mx.test", std::string(r)}};
        }
        return {std::nullopt, {std::string(r)}};
    }
    MessageVerdict check_message(const PolicyFacts& facts) override
    {
        if (facts.size % 7 == 3) {
            return {replies::policy_refused(replies::Stage::data), {}};
        }
        return {std::nullopt, facts.size % 5 == 1 ? "X-Fuzz: added\r\n" : ""};
    }
};

// Knows one user: alice, password s3cret ("AGFsaWNlAHMzY3JldA==" in PLAIN).
class FuzzAuth final : public AuthPort {
public:
    AuthVerdict check(std::string_view user, std::string_view password) override
    {
        FUZZ_CHECK(!user.empty() && !password.empty());
        if (user == "down") {
            return AuthVerdict::temporary;
        }
        return user == "alice" && password == "s3cret" ? AuthVerdict::ok : AuthVerdict::refused;
    }
};

struct Flags {
    bool local, check_headers, max_messages, envelope_to, denied, tls, require_tls;
};

struct Run {
    std::string wire;
    std::vector<StoredMessage> messages;
    std::size_t peak = 0;
    std::size_t handshakes = 0;
};

Run drive(std::string_view input, Flags f, std::size_t step)
{
    bool local = f.local;
    SessionConfig c;
    c.hostname = "mx.test";
    c.local_domains = {"mx.test"};
    c.max_message_size = 2000;
    c.max_recipients = 5;
    c.max_line_length = 600;
    c.max_data_line_length = 100;
    c.max_errors = 50;
    c.peer.local = local;
    c.peer.address = local ? "" : "192.0.2.7";
    c.may_relay = local;
    c.check_headers = f.check_headers;
    c.max_messages = f.max_messages ? 2 : 0;
    c.add_envelope_to = f.envelope_to;
    c.client_denied = f.denied;
    c.tls_offered = f.tls;
    c.require_tls = f.tls && f.require_tls;
    c.max_hops = 3;
    MemorySpool spool;
    FuzzPolicy policy;
    RecordingLog log;
    FixedClock clock(TimePoint(std::chrono::seconds(1795000000)));
    FuzzAuth auth;
    Session s(c, spool, policy, log, clock);
    if (f.tls) {
        s.use_auth(auth); // offered inside TLS, and to a local client
    }
    Run r;
    r.wire = s.start().wire;
    bool closed = false;
    for (std::size_t i = 0; i < input.size() && !closed; i += step) {
        std::string_view chunk = input.substr(i, step);
        for (;;) {
            Fed fed = feed_until_consumed(s, chunk, [&](const Output& o, std::string_view in) {
                FUZZ_CHECK(o.consumed <= in.size());
                FUZZ_CHECK(o.consumed > 0 || o.close || in.empty());
                // A denied client never leaves the denied state (only QUIT is taken).
                FUZZ_CHECK(!f.denied || s.state() == State::denied);
            });
            r.wire += fed.wire;
            closed = fed.close;
            if (!fed.start_tls) {
                break;
            }
            // The client waits for 220, then goes on inside TLS: the rest
            // of the input is what it sends after the handshake.
            FUZZ_CHECK(f.tls && !local);
            FUZZ_CHECK(fed.wire.size() >= 30 &&
                       fed.wire.substr(fed.wire.size() - 30) == "220 2.0.0 ready to start TLS\r\n");
            FUZZ_CHECK(s.state() == State::connected);
            Output t = s.tls_started(TlsInfo{"TLSv1.3", "TLS_FUZZ"}, 0);
            r.wire += t.wire;
            ++r.handshakes;
            if (closed || fed.consumed == chunk.size()) {
                break;
            }
            chunk.remove_prefix(fed.consumed);
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
    Flags flags{local,           (data[0] & 0x20) != 0, (data[0] & 0x40) != 0, (data[0] & 0x80) != 0,
                data[0] == 0xfe, (data[0] & 0x10) != 0, (data[0] & 0x08) != 0};
    std::string_view input(reinterpret_cast<const char*>(data + 1), size - 1);
    Run whole = drive(input, flags, input.size() + 1);
    Run pieces = drive(input, flags, step);
    FUZZ_CHECK(well_formed_replies(whole.wire));
    FUZZ_CHECK(whole.wire == pieces.wire);
    FUZZ_CHECK(whole.handshakes == pieces.handshakes);
    FUZZ_CHECK(whole.handshakes <= 1); // never STARTTLS twice
    FUZZ_CHECK(whole.messages.size() == pieces.messages.size());
    for (std::size_t i = 0; i < whole.messages.size(); ++i) {
        const StoredMessage& m = whole.messages[i];
        FUZZ_CHECK(m.data == pieces.messages[i].data);
        FUZZ_CHECK(!m.envelope.recipients.empty());
        FUZZ_CHECK(m.envelope.recipients.size() <= 5);
        FUZZ_CHECK(m.data.rfind("Received: ", 0) == 0 || m.data.rfind("X-Fuzz: added\r\nReceived: ", 0) == 0);
        for (const Recipient& r : m.envelope.recipients) {
            FUZZ_CHECK(!r.address.empty() && r.address.front() != 'x');
            FUZZ_CHECK(!r.original || *r.original != r.address);
        }
        FUZZ_CHECK(m.envelope.mail_from.find("deny") == std::string::npos);
        FUZZ_CHECK(m.envelope.size == m.data.size());
        // Only alice can authenticate; a network client that did not may not relay.
        FUZZ_CHECK(!m.envelope.client.auth || *m.envelope.client.auth == "alice");
        FUZZ_CHECK(!m.envelope.client.auth || flags.tls);
        if (!local && !m.envelope.client.auth) {
            for (const Recipient& r : m.envelope.recipients) {
                auto at = r.address.rfind('@');
                FUZZ_CHECK(at == std::string::npos || ascii_lower(r.address.substr(at + 1)) == "mx.test");
            }
        }
        // Encrypted exactly when it says so; --require-tls lets nothing else in.
        std::size_t received = m.data.find("Received: ");
        std::size_t end = received;
        while ((end = m.data.find("\r\n", end)) != std::string::npos && end + 2 < m.data.size() &&
               m.data[end + 2] == '\t') {
            end += 2;
        }
        std::string_view header = std::string_view(m.data).substr(received, end - received);
        bool says_tls = header.find("\r\n\tby mx.test (smtpspool, TLSv1.3 TLS_FUZZ)") != std::string_view::npos;
        FUZZ_CHECK(m.envelope.client.tls.has_value() == says_tls);
        FUZZ_CHECK(!(flags.tls && flags.require_tls && !local) || says_tls);
        FUZZ_CHECK(m.envelope.body == Body::seven_bit || m.envelope.body == Body::eight_bit_mime || m.envelope.body == Body::binary_mime);
        if (m.envelope.body != Body::binary_mime) {
            // Only CRLF line ends, from any client: DATA stores a local
            // client's LF as CRLF and refuses the rest, BDAT refuses all bare
            // line ends. Only BDAT brings BINARYMIME octets as they came.
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
    FUZZ_CHECK(!flags.max_messages || whole.messages.size() <= 2);
    FUZZ_CHECK(!flags.denied || whole.messages.empty());
    return 0;
}
