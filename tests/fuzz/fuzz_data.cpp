// fuzz_data: the DATA reader and the BDAT chunk reader. Invariants: the same
// outcome at any chunking; a message that is not refused has canonical CRLF
// lines (network mode, and BDAT unless BINARYMIME) and its size is what was
// stored; nothing is stored after the size limit; a NUL octet refuses the
// message (BDAT: unless BINARYMIME), and none is ever stored.
#include "fuzz_check.hpp"
#include "smtp/smtp_data.hpp"

#include <cstdint>

using namespace smtpspool;

namespace {

struct Outcome {
    std::string body;
    std::size_t consumed = 0;
    bool done = false, bare = false, nul = false, big = false;
    std::size_t size = 0;
};

Outcome read(std::string_view in, LineEnds mode, std::size_t max, std::size_t step)
{
    DataReader r(mode, max);
    Outcome o;
    for (std::size_t i = 0; i < in.size() && !r.done(); i += step) {
        std::string_view chunk = in.substr(i, step);
        std::size_t used = r.feed(chunk, o.body);
        o.consumed += used;
        FUZZ_CHECK(used == chunk.size() || r.done());
        FUZZ_CHECK(o.body.size() <= max + 2);
    }
    o.done = r.done();
    o.bare = r.bare_line_end();
    o.nul = r.nul();
    o.big = r.too_big();
    o.size = r.size();
    FUZZ_CHECK(o.body.find('\0') == std::string::npos);
    return o;
}

struct Chunks {
    std::string body;
    bool bare = false, nul = false, big = false;
    std::size_t size = 0;
};

Chunks read_chunks(std::string_view in, bool binary, std::size_t max, std::size_t step)
{
    ChunkReader r(binary, max);
    Chunks o;
    for (std::size_t i = 0; i < in.size(); i += step) {
        r.feed(in.substr(i, step), o.body);
        FUZZ_CHECK(o.body.size() <= max);
    }
    r.finish();
    o.bare = r.bare_line_end();
    o.nul = r.nul();
    o.big = r.too_big();
    o.size = r.size();
    return o;
}

void check_chunks(std::string_view in, bool binary, std::size_t max, std::size_t step)
{
    Chunks whole = read_chunks(in, binary, max, in.size() + 1);
    Chunks parts = read_chunks(in, binary, max, step);
    FUZZ_CHECK(whole.bare == parts.bare && whole.nul == parts.nul && whole.big == parts.big &&
               whole.size == parts.size);
    FUZZ_CHECK(whole.size == in.size());
    FUZZ_CHECK(whole.nul == (!binary && in.find('\0') != std::string_view::npos));
    FUZZ_CHECK(binary || whole.body.find('\0') == std::string::npos);
    FUZZ_CHECK(whole.big == (in.size() > max));
    FUZZ_CHECK(!binary || !whole.bare);
    bool crlf_only = true;
    for (std::size_t k = 0; k < in.size(); ++k) {
        if ((in[k] == '\n' && (k == 0 || in[k - 1] != '\r')) ||
            (in[k] == '\r' && (k + 1 >= in.size() || in[k + 1] != '\n'))) {
            crlf_only = false;
        }
    }
    FUZZ_CHECK(binary || whole.bare == !crlf_only);
    if (!whole.bare && !whole.nul && !whole.big) {
        FUZZ_CHECK(whole.body == in && parts.body == in);
    }
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
    if (size < 2) {
        return 0;
    }
    LineEnds mode = (data[0] & 1) ? LineEnds::lf_accepted : LineEnds::crlf_only;
    std::size_t step = 1 + data[1] % 13;
    std::size_t max = 64 + (data[0] >> 1) * 8;
    std::string_view in(reinterpret_cast<const char*>(data + 2), size - 2);
    Outcome whole = read(in, mode, max, in.size() + 1);
    Outcome parts = read(in, mode, max, step);
    FUZZ_CHECK(whole.consumed == parts.consumed && whole.done == parts.done && whole.bare == parts.bare &&
               whole.nul == parts.nul && whole.big == parts.big && whole.size == parts.size);
    check_chunks(in, (data[0] & 2) != 0, max, step);
    if (!whole.bare && !whole.nul && !whole.big) {
        FUZZ_CHECK(whole.body == parts.body);
        FUZZ_CHECK(whole.body.size() == whole.size);
        for (std::size_t k = 0; k < whole.body.size(); ++k) {
            if (whole.body[k] == '\n') {
                FUZZ_CHECK(k > 0 && whole.body[k - 1] == '\r');
            }
            if (whole.body[k] == '\r') {
                FUZZ_CHECK(k + 1 >= whole.body.size() || whole.body[k + 1] == '\n');
            }
        }
        if (whole.done) {
            FUZZ_CHECK(whole.body.empty() || whole.body.size() >= 2);
            FUZZ_CHECK(whole.body.empty() || whole.body.substr(whole.body.size() - 2) == "\r\n");
        }
    }
    return 0;
}
