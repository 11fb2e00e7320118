// fuzz_downgrade: the 8-bit to 7-bit MIME conversion. Invariants: the
// analyzing pass writes nothing; a message it accepts converts without
// complaint, to the same octets whatever the chunking; the output has no
// octet of 0x80 or more (unless 8-bit header fields are allowed), no LF
// without its CR, and no line over 998 octets when the input had none; a
// message without Content-Type whose body is re-encoded decodes back to that body.
#include "fuzz_check.hpp"
#include "delivery/mime_downgrade.hpp"

#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

using namespace smtpspool;

namespace {

std::string run(MimeDowngrade& d, std::string_view in, std::size_t step)
{
    std::string out;
    for (std::size_t i = 0; i < in.size(); i += step) {
        d.feed(in.substr(i, step), out);
    }
    d.finish(out);
    return out;
}

std::size_t longest_line(std::string_view s, std::string_view end)
{
    std::size_t longest = 0;
    while (!s.empty()) {
        std::size_t e = s.find(end);
        longest = std::max(longest, e == std::string_view::npos ? s.size() : e);
        s.remove_prefix(e == std::string_view::npos ? s.size() : e + end.size());
    }
    return longest;
}

bool lf_only_after_cr(std::string_view s)
{
    for (std::size_t i = 0; i < s.size(); ++i) {
        if (s[i] == '\n' && (i == 0 || s[i - 1] != '\r')) {
            return false;
        }
    }
    return true;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
    if (size < 1) {
        return 0;
    }
    std::size_t step = 1 + data[0] % 31;
    bool utf8_headers = (data[0] & 0x80) != 0;
    std::string_view in(reinterpret_cast<const char*>(data + 1), size - 1);

    MimeDowngrade analyzer = MimeDowngrade::analyze(utf8_headers);
    std::string none = run(analyzer, in, step);
    FUZZ_CHECK(none.empty());
    if (!analyzer.refusal().empty()) {
        FUZZ_CHECK(analyzer.refusal().find('\n') == std::string::npos);
        return 0;
    }
    MimeDowngrade converter = MimeDowngrade::convert(analyzer.plan(), utf8_headers);
    std::string out = run(converter, in, step);
    FUZZ_CHECK(converter.refusal().empty());
    MimeDowngrade again = MimeDowngrade::convert(analyzer.plan(), utf8_headers);
    FUZZ_CHECK(run(again, in, in.size() + 1) == out);

    FUZZ_CHECK(lf_only_after_cr(out));
    if (!utf8_headers) {
        FUZZ_CHECK(std::none_of(out.begin(), out.end(), [](char c) { return static_cast<unsigned char>(c) >= 0x80; }));
    }
    if (longest_line(in, "\n") <= 998) {
        FUZZ_CHECK(longest_line(out, "\r\n") <= 998);
    }

    // A single part without Content-Type, re-encoded: its body decodes back.
    const std::vector<bool>& plan = analyzer.plan();
    if (plan.size() == 1 && plan[0] && lf_only_after_cr(in)) {
        std::size_t in_end = in.starts_with("\r\n") ? 0 : in.find("\r\n\r\n");
        if (in_end != std::string_view::npos) {
            std::string header(in.substr(0, in_end));
            std::transform(header.begin(), header.end(), header.begin(),
                           [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
            if (header.find("content-type") == std::string::npos) {
                std::string_view body = in.substr(in_end == 0 ? 2 : in_end + 4);
                std::size_t out_end = out.find("\r\n\r\n");
                FUZZ_CHECK(out_end != std::string::npos);
                FUZZ_CHECK(decode_quoted_printable(std::string_view(out).substr(out_end + 4)) == body);
            }
        }
    }
    return 0;
}
