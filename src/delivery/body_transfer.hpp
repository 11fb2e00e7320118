// body_transfer: how a message's octets go to the next hop: as stored or
// converted to 7 bits (RFC 6152 §3), with DATA or with BDAT chunks (RFC 3030),
// and which BODY= goes with MAIL. The choice is pure (choose_transfer); the
// rest reads the message file by descriptor (pread, so the offset of the
// descriptor does not matter) and never holds more than a block and a chunk.
#pragma once

#include "base/result.hpp"
#include "delivery/mime_downgrade.hpp"
#include "delivery/smtp_client.hpp"
#include "model/content.hpp"
#include "model/envelope.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace smtpspool {

// Octets of message per BDAT command (RFC 3030 §2 sets no bound; a chunk is
// sent from the file as it is read, never held whole).
inline constexpr std::uint64_t k_bdat_chunk = 1 << 20;

struct BodyTransfer {
    enum class Way { as_stored, converted, refused };
    Way way = Way::as_stored;
    Body declare = Body::seven_bit; // BODY= with MAIL (seven_bit: none)
    bool bdat = false;              // BDAT chunks instead of DATA
    std::string refusal;            // when refused: the permanent detail ("554 5.6.3 ...")
};

// The transfer of a message declared `declared` whose octets are `content`,
// to the server `where` that offers `features`:
// - BINARYMIME: BDAT with BODY=BINARYMIME to a server that offers CHUNKING
//   and BINARYMIME; otherwise refused (RFC 3030 §3: binary content cannot be
//   sent by DATA, and it is not converted).
// - 7-bit content: as stored, BODY=8BITMIME only when declared and offered.
// - 8-bit content (declared or not): as stored with BODY=8BITMIME to a server
//   that offers 8BITMIME; otherwise converted, without BODY=.
// - binary content not declared BINARYMIME (not stored by serve): as 8-bit,
//   but by DATA, whose dot-stuffer ends every line with CRLF.
// BDAT whenever the server offers CHUNKING and the octets are not binary.
BodyTransfer choose_transfer(Body declared, Content content, const EhloFeatures& features, std::string_view where);

// The class of the message file's octets (when the envelope does not say).
Result<Content> scan_content(int fd);

// The two passes of MimeDowngrade over the message file: the plan, the size of
// the converted message, or why it cannot be converted.
struct Downgrade {
    std::string refusal;
    std::vector<bool> plan;
    std::uint64_t size = 0;
};
Result<Downgrade> plan_downgrade(int fd, bool eight_bit_headers);

// The octets to send, from the start of the file: as stored, or converted by a plan.
class BodySource {
public:
    BodySource(int fd, const Downgrade* downgrade, bool eight_bit_headers);
    // Appends at least one octet to `out`, or returns false: the message is over.
    Result<bool> next(std::string& out);
    // The converter's complaint (the file changed between the passes), else "".
    std::string refusal() const { return m_converter ? m_converter->refusal() : std::string(); }

private:
    int m_fd;
    std::uint64_t m_offset = 0;
    bool m_done = false;
    std::optional<MimeDowngrade> m_converter;
    std::string m_block;
};

} // namespace smtpspool
