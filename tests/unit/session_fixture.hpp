// session_fixture: a Session wired to MemorySpool, RecordingLog and a FixedClock.
#pragma once

#include "session.hpp"
#include "testutil.hpp"

#include <string>
#include <vector>

namespace testutil {

inline SessionConfig test_config(bool local = false)
{
    SessionConfig c;
    c.hostname = "mx.test";
    c.local_domains = {"mx.test", "localhost"};
    c.max_message_size = 1000;
    c.max_recipients = 5;
    c.max_line_length = 600;
    c.max_errors = 10;
    c.peer.local = local;
    if (!local) {
        c.peer.address = "192.0.2.7";
        c.peer.port = 40000;
    }
    c.may_relay = local;
    return c;
}

struct SessionFixture {
    explicit SessionFixture(SessionConfig config = test_config())
        : clock(TimePoint(std::chrono::seconds(1795000000))), session(std::move(config), spool, log, clock)
    {
        wire = session.start().wire;
    }
    // Sends bytes, returns what the server wrote in reply.
    std::string send(std::string_view bytes)
    {
        std::string out;
        for (;;) {
            Output o = session.feed(bytes);
            out += o.wire;
            closed = closed || o.close;
            ++feeds;
            if (o.close || o.consumed >= bytes.size()) {
                break;
            }
            bytes.remove_prefix(o.consumed);
        }
        wire += out;
        return out;
    }
    int feeds = 0;
    // Reply codes of each final reply line in `out`.
    static std::vector<int> codes(std::string_view out)
    {
        std::vector<int> result;
        std::size_t pos = 0;
        while (pos < out.size()) {
            std::size_t end = out.find("\r\n", pos);
            std::string_view line = out.substr(pos, end - pos);
            if (line.size() >= 4 && line[3] == ' ') {
                result.push_back(std::stoi(std::string(line.substr(0, 3))));
            }
            pos = end == std::string_view::npos ? out.size() : end + 2;
        }
        return result;
    }

    MemorySpool spool;
    RecordingLog log;
    FixedClock clock;
    Session session;
    std::string wire;
    bool closed = false;
};

} // namespace testutil
