// fuzz_auth_results: the Authentication-Results: filter over arbitrary
// octets, whole and in chunks, with a small limit on the field it holds.
// Invariants: the same output and count at any chunking; the output is the
// input minus whole header fields, each an Authentication-Results: field:
// of those no longer than the limit, exactly the ones claiming our
// authserv-id; the count of them is what the filter says; the body is never
// touched.
#include "fuzz_check.hpp"
#include "smtp/auth_results.hpp"
#include "smtp/smtp_address.hpp"

#include <cstdint>
#include <set>
#include <string>
#include <utility>
#include <vector>

using namespace smtpspool;

namespace {

const std::string k_id = "mx.test";

struct Run {
    std::string out;
    std::size_t removed = 0;
};

Run run(std::string_view in, std::size_t step, std::size_t max)
{
    AuthResultsFilter f(k_id, max);
    Run r;
    for (std::size_t i = 0; i < in.size(); i += step) {
        f.feed(in.substr(i, step), r.out);
    }
    f.finish(r.out);
    r.removed = f.removed();
    return r;
}

// The header section's fields (a line that starts with white space continues
// the one before) and what follows the blank line, blank line included.
struct Split {
    std::vector<std::string> fields;
    std::string rest;
};

Split split(std::string_view in)
{
    Split s;
    while (!in.empty()) {
        std::size_t lf = in.find('\n');
        std::size_t len = lf == std::string_view::npos ? in.size() : lf + 1;
        std::string_view line = in.substr(0, len);
        if (line == "\n" || line == "\r\n") {
            s.rest = std::string(in);
            return s;
        }
        if ((line[0] == ' ' || line[0] == '\t') && !s.fields.empty()) {
            s.fields.back().append(line);
        } else {
            s.fields.emplace_back(line);
        }
        in.remove_prefix(len);
    }
    return s;
}

// other: stays; ours: goes; long: an Authentication-Results: field longer
// than the limit, decided on its first octets (either).
enum class Kind { other, long_field, ours };

Kind kind(const std::string& field, std::size_t max)
{
    std::size_t colon = field.find(':');
    std::size_t lf = field.find('\n');
    if (colon == std::string::npos || (lf != std::string::npos && lf < colon)) {
        return Kind::other;
    }
    std::string name = field.substr(0, colon);
    while (!name.empty() && (name.back() == ' ' || name.back() == '\t')) {
        name.pop_back();
    }
    if (ascii_lower(name) != "authentication-results") {
        return Kind::other;
    }
    if (field.size() > max) {
        return Kind::long_field;
    }
    auto id = authserv_id_of(std::string_view(field).substr(colon + 1));
    return id && ascii_lower(*id) == k_id ? Kind::ours : Kind::other;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
    if (size < 2) {
        return 0;
    }
    const std::size_t step = 1 + data[0] % 13;
    const std::size_t max = 16 + data[1] * 4;
    std::string_view in(reinterpret_cast<const char*>(data + 2), size - 2);
    Run whole = run(in, in.size() + 1, max);
    Run parts = run(in, step, max);
    FUZZ_CHECK(whole.out == parts.out && whole.removed == parts.removed);

    const Split s = split(in);
    const std::string& out = whole.out;
    // Where the output may stand after each field, and how many went.
    std::set<std::pair<std::size_t, std::size_t>> at{{0, 0}};
    for (const std::string& field : s.fields) {
        const Kind k = kind(field, max);
        std::set<std::pair<std::size_t, std::size_t>> next;
        for (auto [pos, gone] : at) {
            if (k != Kind::other) {
                next.insert({pos, gone + 1});
            }
            if (k != Kind::ours && out.compare(pos, field.size(), field) == 0) {
                next.insert({pos + field.size(), gone});
            }
        }
        at = std::move(next);
        FUZZ_CHECK(!at.empty());
    }
    bool found = false;
    for (auto [pos, gone] : at) {
        if (gone == whole.removed && out.size() == pos + s.rest.size() && out.compare(pos, s.rest.size(), s.rest) == 0) {
            found = true;
        }
    }
    FUZZ_CHECK(found);
    return 0;
}
