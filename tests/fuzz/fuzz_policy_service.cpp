// fuzz_policy_service: the policy delegation codec (smtp/policy_delegation):
// a policy service's answers read in pieces, their actions, how several add
// up; the request's encoding; service addresses. Invariants: the answer
// reader gives the same result at any chunking and stays within its bound;
// every reply an action gives is a 4yz or 5yz refusal with an enhanced code
// of its class and printable text, and renders well-formed; a PREPEND field
// is one printable line with a field name; an outcome's header lines are at
// most k_max_prepend_fields CRLF-ended lines; an encoded request has one line
// per attribute whatever the values hold.
#include "fuzz_check.hpp"
#include "smtp/header_check.hpp"
#include "smtp/policy_delegation.hpp"

#include <algorithm>
#include <cstdint>

using namespace smtpspool;
using namespace smtpspool::delegation;

namespace {

struct Read {
    AnswerReader::Status status;
    std::string lines;
    std::size_t used;
};

Read read(std::string_view input, std::size_t step)
{
    AnswerReader r;
    std::size_t at = 0;
    while (r.status() == AnswerReader::Status::more && at < input.size()) {
        std::size_t used = 0;
        r.feed(input.substr(at, step), used);
        FUZZ_CHECK(used <= step);
        at += used;
    }
    return {r.status(), r.lines(), at};
}

bool printable(std::string_view s, bool tab)
{
    return std::all_of(s.begin(), s.end(), [tab](char c) {
        auto u = static_cast<unsigned char>(c);
        return (u >= 0x20 && u < 0x7f) || (tab && c == '\t');
    });
}

void check_reply(const Reply& r)
{
    FUZZ_CHECK(r.code >= 400 && r.code < 560 && r.code != 421 && r.code != 521);
    FUZZ_CHECK(!r.status.empty() && r.status[0] == static_cast<char>('0' + r.code / 100));
    FUZZ_CHECK(!r.text.empty() && r.text.size() <= k_max_text && printable(r.text, false));
    FUZZ_CHECK(well_formed_replies(render(r)));
}

void check_action(const Action& a)
{
    using K = Action::Kind;
    const bool refusal = a.kind == K::reject || a.kind == K::defer || a.kind == K::defer_if_permit ||
                         a.kind == K::defer_if_reject;
    FUZZ_CHECK(refusal == a.reply.has_value());
    if (a.reply) {
        check_reply(*a.reply);
        FUZZ_CHECK((a.kind == K::reject) == (a.reply->code >= 500));
    }
    FUZZ_CHECK(a.text.size() <= k_max_text && printable(a.text, false));
    if (a.kind == K::prepend) {
        std::size_t colon = a.header.find(':');
        FUZZ_CHECK(colon != std::string::npos && colon > 0 && is_field_name(a.header.substr(0, colon)));
        FUZZ_CHECK(a.header.size() <= 998 && printable(a.header, true));
    } else {
        FUZZ_CHECK(a.header.empty());
    }
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
    if (size < 1) {
        return 0;
    }
    const std::size_t step = 1 + data[0] % 13;
    std::string_view input(reinterpret_cast<const char*>(data + 1), size - 1);

    // Answers, one after the other, as a service would send them.
    Decision decision;
    bool asking = true;
    while (!input.empty()) {
        Read whole = read(input, input.size());
        Read parts = read(input, step);
        FUZZ_CHECK(whole.status == parts.status && whole.lines == parts.lines && whole.used == parts.used);
        FUZZ_CHECK(whole.used <= k_max_answer);
        if (whole.status != AnswerReader::Status::done) {
            break;
        }
        FUZZ_CHECK(whole.lines.find('\0') == std::string::npos);
        FUZZ_CHECK(whole.lines.empty() || whole.lines.back() == '\n');
        FUZZ_CHECK(whole.lines.find("\n\n") == std::string::npos && whole.lines.front() != '\n');
        input.remove_prefix(whole.used);
        auto action = answer_action(whole.lines);
        if (!action) {
            FUZZ_CHECK(!action.error().empty());
            if (asking) {
                asking = decision.add_failure(service_unavailable());
            }
            continue;
        }
        auto parsed = parse_action(action.value());
        if (!parsed) {
            FUZZ_CHECK(!parsed.error().empty());
            continue;
        }
        check_action(parsed.value());
        if (asking) {
            asking = decision.add(parsed.value());
        }
    }
    Decision::Outcome o = decision.outcome();
    if (o.refusal) {
        check_reply(*o.refusal);
        FUZZ_CHECK(o.headers.empty() && !o.hold && !o.discard);
    }
    std::size_t lines = 0;
    for (std::size_t at = 0; at < o.headers.size(); ++lines) {
        std::size_t end = o.headers.find("\r\n", at);
        FUZZ_CHECK(end != std::string::npos);
        FUZZ_CHECK(o.headers.substr(at, end - at).find_first_of("\r\n") == std::string::npos);
        at = end + 2;
    }
    FUZZ_CHECK(lines <= k_max_prepend_fields);

    // The whole input as values of a request, and as a service address.
    std::string_view raw(reinterpret_cast<const char*>(data), size);
    std::string request = encode_request({{"helo_name", std::string(raw)}, {"sender", std::string(raw.substr(size / 2))}});
    FUZZ_CHECK(std::count(request.begin(), request.end(), '\n') == 3 && request.ends_with("\n\n"));
    FUZZ_CHECK(request.find('\r') == std::string::npos && request.find('\0') == std::string::npos);
    std::string why;
    if (auto a = parse_policy_service(raw, why)) {
        FUZZ_CHECK(a->kind == PolicyServiceAddress::Kind::unix_socket ? !a->path.empty()
                                                                       : !a->host.empty() && !a->port.empty());
    } else {
        FUZZ_CHECK(!why.empty());
    }
    return 0;
}
