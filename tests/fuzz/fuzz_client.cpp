// fuzz_client: the SMTP client's reply parser, EHLO keywords, dot-stuffer and
// credentials-file parser. Invariants: parsed replies carry no CR/LF and valid
// codes, memory is bounded; AUTH mechanisms are single upper-case words and
// the choice is one of them; the stuffer never emits a bare CR or LF, and its
// only end mark is the last; a credentials entry has a user without ':' and
// neither user nor password holds a control character.
#include "fuzz_check.hpp"
#include "delivery/smtp_client.hpp"
#include "delivery/smtp_security.hpp"

#include <algorithm>

#include <cstdint>

using namespace smtpspool;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
    if (size < 1) {
        return 0;
    }
    std::size_t step = 1 + data[0] % 11;
    std::string_view in(reinterpret_cast<const char*>(data + 1), size - 1);

    ReplyParser parser;
    std::string_view rest = in;
    while (!rest.empty() && !parser.failed()) {
        std::string_view chunk = rest.substr(0, step);
        std::size_t used = parser.feed(chunk);
        FUZZ_CHECK(used <= chunk.size());
        rest.remove_prefix(used);
        if (parser.ready()) {
            ServerReply r = parser.take();
            FUZZ_CHECK(r.code >= 200 && r.code <= 559);
            FUZZ_CHECK(!r.lines.empty() && r.lines.size() <= k_max_server_reply_lines);
            for (const std::string& l : r.lines) {
                FUZZ_CHECK(l.find('\r') == std::string::npos && l.find('\n') == std::string::npos);
                FUZZ_CHECK(l.size() <= k_max_server_reply_line);
            }
            EhloFeatures f = parse_ehlo(r);
            for (const std::string& m : f.auth) {
                FUZZ_CHECK(!m.empty() && m.find(' ') == std::string::npos);
                FUZZ_CHECK(std::none_of(m.begin(), m.end(), [](char c) { return c >= 'a' && c <= 'z'; }));
            }
            AuthMechanism chosen = choose_auth_mechanism(f.auth);
            FUZZ_CHECK(chosen == AuthMechanism::none ||
                       std::find(f.auth.begin(), f.auth.end(), auth_mechanism_name(chosen)) != f.auth.end());
            std::string detail = reply_detail(r);
            FUZZ_CHECK(detail.size() <= k_max_detail + 4);
            FUZZ_CHECK(detail.find('\r') == std::string::npos && detail.find('\n') == std::string::npos);
        } else if (used == 0 && !parser.failed()) {
            FUZZ_CHECK(false); // no progress without an outcome
        }
    }

    DotStuffer stuffer;
    std::string wire;
    for (std::size_t i = 0; i < in.size(); i += step) {
        stuffer.feed(in.substr(i, step), wire);
    }
    stuffer.finish(wire);
    FUZZ_CHECK(wire.size() >= 3 && wire.substr(wire.size() - 3) == ".\r\n");
    for (std::size_t k = 0; k < wire.size(); ++k) {
        if (wire[k] == '\n') {
            FUZZ_CHECK(k > 0 && wire[k - 1] == '\r');
        }
        if (wire[k] == '\r') {
            FUZZ_CHECK(k + 1 < wire.size() && wire[k + 1] == '\n');
        }
    }
    std::string framed = "\r\n" + wire;
    FUZZ_CHECK(framed.find("\r\n.\r\n") == framed.size() - 5);

    auto control = [](char c) { return static_cast<unsigned char>(c) < 0x20 || c == 0x7f; };
    if (auto entries = parse_auth_file(in)) {
        for (const AuthEntry& e : entries.value()) {
            FUZZ_CHECK(!e.host.empty() && !e.user.empty() && !e.password.empty());
            FUZZ_CHECK(e.user.find(':') == std::string::npos);
            FUZZ_CHECK(std::none_of(e.user.begin(), e.user.end(), control));
            FUZZ_CHECK(std::none_of(e.password.begin(), e.password.end(), control));
            FUZZ_CHECK(find_credentials(entries.value(), e.host, e.port) != nullptr);
        }
    } else {
        FUZZ_CHECK(entries.error().message.starts_with("line "));
    }
    return 0;
}
