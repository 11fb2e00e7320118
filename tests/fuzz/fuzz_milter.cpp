// fuzz_milter: the milter reply parser and the negotiation. The input is a
// stream of packets as a milter would send them: the first read as the
// answer to SMFIC_OPTNEG, the rest as replies. Invariants: framing never reads
// past the input or the packet bound; a negotiation keeps within what was
// offered; every accepted reply holds only checked values (header names and
// values, reply codes 4xx/5xx on one line, addresses that parse again to
// themselves), and built again as a packet parses to the same reply.
#include "fuzz_check.hpp"
#include "server/milter_protocol.hpp"

#include <cstdint>
#include <string>

using namespace smtpspool;
using namespace smtpspool::milter;

namespace {

std::string be32(std::uint32_t v)
{
    return std::string{static_cast<char>(v >> 24), static_cast<char>(v >> 16 & 0xff), static_cast<char>(v >> 8 & 0xff),
                       static_cast<char>(v & 0xff)};
}

bool one_line(std::string_view s) { return s.find_first_of(std::string_view("\r\n\0", 3)) == std::string_view::npos; }

void check_reply(const Frame& f, const Response& r)
{
    using K = Response::Kind;
    switch (r.kind) {
    case K::reject:
    case K::tempfail:
        if (r.reply) {
            FUZZ_CHECK(f.command == 'y');
            FUZZ_CHECK((r.kind == K::reject) == (r.reply->code >= 500 && r.reply->code <= 599));
            FUZZ_CHECK(r.reply->code >= 400 && r.reply->code <= 599);
            FUZZ_CHECK(one_line(r.reply->text) && !r.reply->text.empty());
            FUZZ_CHECK(r.reply->status.empty() || r.reply->status[0] == static_cast<char>('0' + r.reply->code / 100));
            FUZZ_CHECK(r.reply->text.size() <= k_max_reply_text);
        }
        break;
    case K::add_header:
    case K::insert_header:
    case K::change_header: {
        FUZZ_CHECK(valid_header_name(r.name) && valid_header_value(r.value));
        std::string data = r.kind == K::add_header ? std::string() : be32(r.index);
        data += r.name + '\0' + r.value + '\0';
        std::string again = packet(f.command, data);
        auto p = parse_response(std::get<Frame>(read_frame(again)));
        FUZZ_CHECK(std::holds_alternative<Response>(p));
        const Response& g = std::get<Response>(p);
        FUZZ_CHECK(g.kind == r.kind && g.name == r.name && g.value == r.value && g.index == r.index);
        break;
    }
    case K::add_rcpt:
    case K::delete_rcpt:
    case K::change_from: {
        const bool reverse = r.kind == K::change_from;
        FUZZ_CHECK(reverse || !r.value.empty());
        auto again = parse_milter_address(r.value, reverse);
        FUZZ_CHECK(again && *again == r.value);
        FUZZ_CHECK(one_line(r.value));
        break;
    }
    case K::quarantine:
        FUZZ_CHECK(one_line(r.value));
        break;
    case K::replace_body:
        FUZZ_CHECK(r.value == f.data);
        break;
    default:
        FUZZ_CHECK(f.data.empty());
        break;
    }
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
    std::string_view in(reinterpret_cast<const char*>(data), size);
    bool first = true;
    while (!in.empty()) {
        FrameRead fr = read_frame(in);
        if (auto* more = std::get_if<NeedMore>(&fr)) {
            FUZZ_CHECK(more->at_least >= 1 && in.size() + more->at_least <= 4 + k_max_packet);
            break;
        }
        if (auto* bad = std::get_if<Malformed>(&fr)) {
            FUZZ_CHECK(!bad->reason.empty());
            break;
        }
        const Frame& f = std::get<Frame>(fr);
        FUZZ_CHECK(f.length <= in.size() && f.length == 5 + f.data.size() && f.length <= 4 + k_max_packet);
        if (first) {
            first = false;
            auto n = parse_negotiation(f, action::k_offered, step::k_offered);
            if (auto* g = std::get_if<Negotiation>(&n)) {
                FUZZ_CHECK(g->version >= 2 && g->version <= k_version);
                FUZZ_CHECK((g->actions & ~action::k_offered) == 0);
                FUZZ_CHECK((g->steps & ~step::k_offered) == 0);
            } else {
                FUZZ_CHECK(!std::get<Malformed>(n).reason.empty());
            }
        } else {
            auto r = parse_response(f);
            if (auto* g = std::get_if<Response>(&r)) {
                check_reply(f, *g);
            } else {
                FUZZ_CHECK(!std::get<Malformed>(r).reason.empty());
            }
        }
        in.remove_prefix(f.length);
    }
    return 0;
}
