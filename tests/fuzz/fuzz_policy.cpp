// fuzz_policy: the policy file parsers (aliases, sender deny list, local users)
// and the streaming header check. Invariants: parsers never crash and report
// a line inside the text; an expansion is bounded, has no duplicates and
// never contains an empty address; the header check gives the same verdict
// at any chunking and counts no more Received: fields than there are lines.
#include "policy/aliases.hpp"
#include "fuzz_check.hpp"
#include "smtp/header_check.hpp"

#include <algorithm>
#include <cstdint>

using namespace smtpspool;

namespace {

std::size_t line_count(std::string_view text) { return std::count(text.begin(), text.end(), '\n') + 1; }

template <typename T>
const T* parsed(const std::variant<T, ListError>& r, std::string_view text)
{
    if (auto* e = std::get_if<ListError>(&r)) {
        FUZZ_CHECK(e->line >= 1 && e->line <= line_count(text));
        FUZZ_CHECK(!e->message.empty());
        return nullptr;
    }
    return &std::get<T>(r);
}

void aliases(std::string_view text)
{
    auto r = Aliases::parse(text);
    const Aliases* a = parsed(r, text);
    if (a == nullptr) {
        return;
    }
    auto is_local = [](std::string_view d) { return d == "mx.test" || d.size() % 3 == 0; };
    // Expand every key-like word of the text, and a few fixed addresses.
    std::vector<std::string> probes{"postmaster", "root@mx.test", "a@b.test"};
    for_each_entry(text, [&](std::size_t, std::string_view line) {
        probes.emplace_back(line.substr(0, line.find(':')));
        probes.push_back(std::string(line.substr(0, line.find(':'))) + "@mx.test");
    });
    for (const std::string& p : probes) {
        if (p.empty()) {
            continue; // the session never asks about an empty recipient
        }
        const std::size_t max = 50;
        auto e = a->expand(p, is_local, max, "mx.test");
        if (auto* list = std::get_if<std::vector<std::string>>(&e)) {
            FUZZ_CHECK(!list->empty() && list->size() <= max);
            std::vector<std::string> sorted = *list;
            std::sort(sorted.begin(), sorted.end());
            FUZZ_CHECK(std::adjacent_find(sorted.begin(), sorted.end()) == sorted.end());
            for (const std::string& addr : *list) {
                FUZZ_CHECK(!addr.empty());
            }
            if (!a->has(p, is_local)) {
                FUZZ_CHECK(list->size() == 1 && (*list)[0] == p);
            }
        } else {
            FUZZ_CHECK(!std::get<Aliases::Refused>(e).why.empty());
        }
    }
}

void lists(std::string_view text)
{
    auto s = SenderList::parse(text);
    if (const SenderList* list = parsed(s, text)) {
        FUZZ_CHECK(!list->matches(""));
        for_each_entry(text, [&](std::size_t, std::string_view entry) {
            if (!entry.empty() && entry.front() != '@') {
                FUZZ_CHECK(list->matches(entry)); // an address entry matches itself
            }
        });
    }
    auto u = LocalUsers::parse(text);
    if (const LocalUsers* users = parsed(u, text)) {
        for_each_entry(text, [&](std::size_t, std::string_view entry) { FUZZ_CHECK(users->contains(entry)); });
    }
}

struct Verdict {
    bool loop;
    std::string malformed;
    std::size_t received;
};

Verdict headers(std::string_view text, HeaderCheck::Options o, std::size_t step)
{
    HeaderCheck h(o);
    for (std::size_t i = 0; i < text.size(); i += step) {
        h.feed(text.substr(i, step));
    }
    h.finish();
    return {h.loop(), h.malformed(), h.received_fields()};
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
    if (size < 2) {
        return 0;
    }
    std::string_view text(reinterpret_cast<const char*>(data + 2), size - 2);
    switch (data[0] % 3) {
    case 0:
        aliases(text);
        break;
    case 1:
        lists(text);
        break;
    default: {
        HeaderCheck::Options o{(data[1] & 1) != 0, (data[1] & 2) != 0, static_cast<std::size_t>(data[1] >> 2)};
        Verdict whole = headers(text, o, text.size() + 1);
        Verdict parts = headers(text, o, 1 + data[1] % 7);
        FUZZ_CHECK(whole.loop == parts.loop && whole.malformed == parts.malformed && whole.received == parts.received);
        FUZZ_CHECK(whole.received <= line_count(text));
        FUZZ_CHECK(whole.loop == (whole.received > o.max_hops));
        if (!o.strict) {
            FUZZ_CHECK(whole.malformed.empty());
        }
        break;
    }
    }
    return 0;
}
