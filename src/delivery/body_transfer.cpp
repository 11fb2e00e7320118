// body_transfer: RFC 6152 §3 (8BITMIME, and what a client does for a server
// without it), RFC 3030 (CHUNKING, BINARYMIME).
#include "delivery/body_transfer.hpp"

#include "base/limits.hpp"
#include "base/text.hpp"

#include <cerrno>
#include <unistd.h>

namespace smtpspool {
namespace {

// One block of the file at `offset`; "" at its end.
Result<std::size_t> read_block(int fd, std::uint64_t offset, std::string& block)
{
    block.resize(limits::k_read_buffer);
    for (;;) {
        ssize_t n = ::pread(fd, block.data(), block.size(), static_cast<off_t>(offset));
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            return sys_error("cannot read the message file");
        }
        block.resize(static_cast<std::size_t>(n));
        return block.size();
    }
}

} // namespace

BodyTransfer choose_transfer(Body declared, Content content, const EhloFeatures& features, std::string_view where)
{
    BodyTransfer t;
    if (declared == Body::binary_mime) {
        if (features.binary_mime && features.chunking) {
            t.declare = Body::binary_mime;
            t.bdat = true;
            return t;
        }
        t.way = BodyTransfer::Way::refused;
        t.refusal = text::detail_line("554 5.6.3 not sent: the message is BODY=BINARYMIME, and " + std::string(where) +
                                          " does not offer " +
                                          (features.chunking ? "BINARYMIME" : "CHUNKING and BINARYMIME") +
                                          " (RFC 3030)",
                                      k_max_detail);
        return t;
    }
    t.bdat = features.chunking && content != Content::binary;
    if (content == Content::seven_bit) {
        t.declare = declared == Body::eight_bit_mime && features.eight_bit_mime ? Body::eight_bit_mime
                                                                                : Body::seven_bit;
        return t;
    }
    if (features.eight_bit_mime) {
        t.declare = Body::eight_bit_mime;
        return t;
    }
    t.way = BodyTransfer::Way::converted;
    return t;
}

Result<Content> scan_content(int fd)
{
    ContentScanner scanner;
    std::string block;
    for (std::uint64_t offset = 0;;) {
        auto n = read_block(fd, offset, block);
        if (!n) {
            return n.error();
        }
        if (*n == 0) {
            return scanner.result();
        }
        scanner.feed(block);
        offset += *n;
    }
}

Result<Downgrade> plan_downgrade(int fd, bool eight_bit_headers)
{
    Downgrade d;
    MimeDowngrade analyzer = MimeDowngrade::analyze(eight_bit_headers);
    std::string block;
    std::string none;
    for (std::uint64_t offset = 0;;) {
        auto n = read_block(fd, offset, block);
        if (!n) {
            return n.error();
        }
        if (*n == 0) {
            break;
        }
        analyzer.feed(block, none);
        offset += *n;
    }
    analyzer.finish(none);
    if (!analyzer.refusal().empty()) {
        d.refusal = analyzer.refusal();
        return d;
    }
    d.plan = analyzer.plan();
    // The size to announce: the converted octets, counted.
    BodySource counter(fd, &d, eight_bit_headers);
    std::string out;
    for (;;) {
        out.clear();
        auto more = counter.next(out);
        if (!more) {
            return more.error();
        }
        if (!*more) {
            break;
        }
        d.size += out.size();
    }
    d.refusal = counter.refusal();
    return d;
}

BodySource::BodySource(int fd, const Downgrade* downgrade, bool eight_bit_headers) : m_fd(fd)
{
    if (downgrade != nullptr) {
        m_converter.emplace(MimeDowngrade::convert(downgrade->plan, eight_bit_headers));
    }
}

Result<bool> BodySource::next(std::string& out)
{
    std::size_t before = out.size();
    while (out.size() == before && !m_done) {
        auto n = read_block(m_fd, m_offset, m_block);
        if (!n) {
            return n.error();
        }
        m_offset += *n;
        if (!m_converter) {
            m_done = *n == 0;
            out.append(m_block);
            continue;
        }
        if (*n == 0) {
            m_converter->finish(out);
            m_done = true;
        } else {
            m_converter->feed(m_block, out);
        }
    }
    return out.size() > before;
}

} // namespace smtpspool
