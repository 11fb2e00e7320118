// fuzz_address: the Path grammar and MAIL/RCPT argument parsing, with the DSN
// parameters. Invariants: refusals render as well-formed replies; accepted
// paths are bounded, contain no control characters (C0, DEL, C1 or
// bidirectional), and parse again to themselves; a forward path's canonical
// mailbox parses again to itself; xtext decodes what it encodes; accepted DSN values are bounded
// printable ASCII that the envelope reader takes back (re-encoded) unchanged.
#include "smtp/dsn.hpp"
#include "fuzz_check.hpp"
#include "base/limits.hpp"
#include "base/text.hpp"
#include "smtp/smtp_address.hpp"
#include "smtp/smtp_command.hpp"

#include <cstdint>

using namespace smtpspool;

namespace {

bool printable(std::string_view s)
{
    for (char c : s) {
        if (c < ' ' || c > '~') {
            return false;
        }
    }
    return true;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
    std::string_view text(reinterpret_cast<const char*>(data), size);
    for (PathKind kind : {PathKind::reverse, PathKind::forward}) {
        PathParse p = parse_path(text, kind);
        if (p.error != PathError::none) {
            continue;
        }
        FUZZ_CHECK(p.end <= text.size() && text[p.end - 1] == '>');
        FUZZ_CHECK(p.path.local.size() <= 64);
        FUZZ_CHECK(p.path.domain.size() <= 255);
        for (char c : p.path.mailbox) {
            auto u = static_cast<unsigned char>(c);
            FUZZ_CHECK(u >= 0x20 && u != 0x7f);
        }
        FUZZ_CHECK(!text::has_invisible_control(p.path.mailbox));
        if (!p.path.mailbox.empty() && !p.path.domain.empty()) {
            PathParse again = parse_path("<" + p.path.mailbox + ">", kind);
            FUZZ_CHECK(again.error == PathError::none);
            FUZZ_CHECK(again.path.mailbox == p.path.mailbox);
            // The stored form of a local recipient is an address too, and stable.
            std::string canonical = canonical_mailbox(p.path.local, p.path.domain);
            PathParse stored = parse_path("<" + canonical + ">", PathKind::forward);
            FUZZ_CHECK(stored.error != PathError::syntax && stored.error != PathError::invisible_control);
            if (stored.error == PathError::none) {
                FUZZ_CHECK(stored.path.mailbox == canonical);
                FUZZ_CHECK(canonical_mailbox(stored.path.local, stored.path.domain) == canonical);
                FUZZ_CHECK(has_routing_character(stored.path.local) == has_routing_character(p.path.local));
            }
        }
    }
    auto mail = parse_mail(text, MailOptions{true, 1000});
    if (auto* r = std::get_if<Reply>(&mail)) {
        FUZZ_CHECK(r->code >= 400 && well_formed_replies(render(*r)));
    } else {
        const MailCommand& m = std::get<MailCommand>(mail);
        FUZZ_CHECK(m.declared_size <= 1000);
        FUZZ_CHECK(m.smtputf8 || !m.path.non_ascii);
        FUZZ_CHECK(m.ret.empty() || m.ret == "FULL" || m.ret == "HDRS");
        if (m.envid) {
            FUZZ_CHECK(printable(*m.envid) && m.envid->size() <= limits::k_max_envid);
            std::string why;
            FUZZ_CHECK(parse_envid(xtext_encode(*m.envid), why) == m.envid);
        }
    }
    auto rcpt = parse_rcpt(text, true, false);
    if (auto* r = std::get_if<Reply>(&rcpt)) {
        FUZZ_CHECK(r->code >= 400 && well_formed_replies(render(*r)));
    } else {
        const RcptCommand& accepted = std::get<RcptCommand>(rcpt);
        FUZZ_CHECK(!accepted.path.mailbox.empty());
        std::string why;
        if (accepted.notify) {
            std::string joined;
            for (const std::string& k : *accepted.notify) {
                joined += (joined.empty() ? "" : ",") + k;
            }
            FUZZ_CHECK(parse_notify(joined, why) == accepted.notify);
            FUZZ_CHECK(!accepted.notify->empty() && accepted.notify->size() <= 3);
        }
        if (accepted.orcpt) {
            FUZZ_CHECK(printable(*accepted.orcpt) && accepted.orcpt->find(';') != std::string::npos);
            FUZZ_CHECK(parse_orcpt(orcpt_parameter(*accepted.orcpt), why) == accepted.orcpt);
        }
    }
    // xtext: what is encoded decodes back; decoded xtext encodes to xtext.
    std::string encoded = xtext_encode(text);
    FUZZ_CHECK(xtext_decode(encoded) == std::optional<std::string>(std::string(text)));
    if (auto decoded = xtext_decode(text)) {
        FUZZ_CHECK(decoded->size() <= text.size());
        FUZZ_CHECK(xtext_decode(xtext_encode(*decoded)) == decoded);
    }
    return 0;
}
