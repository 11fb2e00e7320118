// fuzz_address: the Path grammar and MAIL/RCPT argument parsing. Invariants:
// refusals render as well-formed replies; accepted paths are bounded, contain
// no control characters, and parse again to themselves.
#include "fuzz_check.hpp"
#include "smtp_address.hpp"
#include "smtp_command.hpp"

#include <cstdint>

using namespace smtpspool;

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
        if (!p.path.mailbox.empty() && !p.path.domain.empty()) {
            PathParse again = parse_path("<" + p.path.mailbox + ">", kind);
            FUZZ_CHECK(again.error == PathError::none);
            FUZZ_CHECK(again.path.mailbox == p.path.mailbox);
        }
    }
    auto mail = parse_mail(text, MailOptions{true, 1000});
    if (auto* r = std::get_if<Reply>(&mail)) {
        FUZZ_CHECK(r->code >= 400 && well_formed_replies(render(*r)));
    } else {
        const MailCommand& m = std::get<MailCommand>(mail);
        FUZZ_CHECK(m.declared_size <= 1000);
        FUZZ_CHECK(m.smtputf8 || !m.path.non_ascii);
    }
    auto rcpt = parse_rcpt(text, true, false);
    if (auto* r = std::get_if<Reply>(&rcpt)) {
        FUZZ_CHECK(r->code >= 400 && well_formed_replies(render(*r)));
    } else {
        FUZZ_CHECK(!std::get<RcptCommand>(rcpt).path.mailbox.empty());
    }
    return 0;
}
