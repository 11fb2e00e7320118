// bdat_transfer: BDAT chunks counted out of the input.
#include "smtp/bdat_transfer.hpp"

#include <utility>

namespace smtpspool {

void BdatTransfer::announce(std::uint64_t size, bool last, std::optional<Reply> refusal)
{
    m_announced = Announced{size, size, last, std::move(refusal)};
}

std::size_t BdatTransfer::take(std::string_view in, std::string& out)
{
    Announced& a = *m_announced;
    const std::size_t n = a.remaining < in.size() ? static_cast<std::size_t>(a.remaining) : in.size();
    a.remaining -= n;
    if (!a.refusal) {
        m_reader->feed(in.substr(0, n), out);
    }
    return n;
}

BdatTransfer::Chunk BdatTransfer::end_chunk()
{
    Announced a = std::move(*m_announced);
    m_announced.reset();
    if (!a.refusal) {
        ++m_accepted_chunks;
        if (a.last) {
            m_reader->finish();
        }
    }
    return {a.size, a.last, std::move(a.refusal)};
}

void BdatTransfer::open_message(bool binary, std::size_t max_size, std::size_t max_line)
{
    m_reader.emplace(binary, max_size, max_line);
    m_accepted_chunks = 0;
}

void BdatTransfer::close_message()
{
    m_reader.reset();
    m_accepted_chunks = 0;
}

void BdatTransfer::clear()
{
    m_announced.reset();
    close_message();
}

} // namespace smtpspool
