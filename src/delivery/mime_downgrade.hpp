// mime_downgrade: an 8-bit message made 7-bit for a next hop without 8BITMIME
// (RFC 6152 §3), by re-encoding the body of each 8-bit leaf part with
// quoted-printable (text/*) or base64 (any other type) (RFC 2045 §6), as
// RFC 1652 §3 described it first. Streaming and pure: fed the stored octets in
// any chunking, it holds at most one part's header section
// (k_max_mime_header_section), one line piece (k_mime_line_piece) and one
// bit per leaf part.
//
// Two passes over the message. The first (analyze) writes nothing: it learns
// which leaf parts have 8-bit octets (the plan), or why the message cannot be
// converted (refusal()). The second (convert, with that plan) writes the 7-bit
// message; feeding it the same octets gives the same output every time, so a
// third pass can count the size to announce first.
//
// What it changes, and nothing else:
// - a leaf part (not multipart/*, not message/rfc822) whose body has an octet
//   of 0x80 or more, declared 7bit, 8bit, binary or nothing: its
//   Content-Transfer-Encoding fields are removed and one naming the new
//   encoding is added at the end of its header section; one without
//   Content-Type gets "Content-Type: text/plain; charset=unknown-8bit"
//   (RFC 1428: its charset was never declared), and at the top level of a
//   message (or of a message/rfc822 part) without MIME-Version, "MIME-Version:
//   1.0" is added too. The body is encoded whole; the CRLF before a boundary
//   delimiter belongs to the delimiter (RFC 2046 §5.1.1) and stays out of it.
// - multipart/* and message/rfc822 entities declared 8bit or binary are
//   declared 7bit (their content is converted within, RFC 2046 §5.1, §5.2.1);
//   message/rfc822 bodies are parsed as messages.
// - an octet of 0x80 or more in a preamble or epilogue, or after the "--" of
//   a close delimiter (text MIME readers ignore, RFC 2046 §5.1.1), becomes '?'.
// - a Subject, Comments or Content-Description field (unstructured, RFC 5322
//   §3.6.5) with 8-bit octets, in a message without SMTPUTF8: its body becomes
//   RFC 2047 encoded words ("Q", charset UTF-8 when the octets are UTF-8,
//   unknown-8bit otherwise), one to a line, each at most 75 characters.
// Every line it writes ends with CRLF; a line it encodes is at most 76
// octets; lines it copies keep their length.
//
// It refuses (refusal() says why, one line) rather than change what a
// signature covers or what it cannot represent:
// - 8-bit octets anywhere inside a multipart/signed entity (RFC 1847 §2.1:
//   the first part is signed as it is, transfer encoding included);
// - 8-bit octets in any other header field (a structured one, whose encoded
//   words would change what it says), unless eight_bit_headers (an SMTPUTF8
//   message, RFC 6532, to a server that offers SMTPUTF8);
// - 8-bit octets in a part declared base64, quoted-printable or an encoding
//   it does not know;
// - a header section longer than k_max_mime_header_section, or entities
//   nested more than k_max_mime_depth deep.
// application/pkcs7-mime and the like are converted as any other leaf: their
// signature covers the decoded content, which base64 keeps.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace smtpspool {

inline constexpr std::size_t k_max_mime_header_section = 256 * 1024;
inline constexpr std::size_t k_max_mime_depth = 64;
// A line longer than this is handled in pieces of this size: none can be a
// boundary line (RFC 2046 §5.1.1: at most 70 octets of boundary).
inline constexpr std::size_t k_mime_line_piece = 4096;

class MimeDowngrade {
public:
    // The analyzing pass: writes nothing to `out`.
    static MimeDowngrade analyze(bool eight_bit_headers);
    // The converting pass, with the plan of an analyzing pass over the same octets.
    static MimeDowngrade convert(std::vector<bool> plan, bool eight_bit_headers);

    void feed(std::string_view in, std::string& out);
    // The end of the message.
    void finish(std::string& out);

    // "" while the message can be converted.
    const std::string& refusal() const { return m_refusal; }
    // After an analyzing pass: for each leaf part in order, whether it is re-encoded.
    const std::vector<bool>& plan() const { return m_plan; }
    // Leaf parts re-encoded (converting pass).
    std::size_t encoded_parts() const { return m_encoded; }

private:
    enum class Mode { headers, leaf_copy, leaf_encode, ignored };
    enum class Encoding { none, quoted_printable, base64 };
    struct Frame {
        std::string boundary;
        bool is_signed = false;
        bool digest = false;
        std::size_t message_depth = 0;
    };
    struct Piece {
        std::string_view text; // without its line end
        std::string_view eol;  // "\r\n", "\n" or "" (the line goes on, or the input ended)
        bool first = true;     // starts a line
        bool last = true;      // ends a line
    };

    MimeDowngrade(bool analyzing, std::vector<bool> plan, bool eight_bit_headers);

    void piece(const Piece& p, std::string& out);
    bool boundary(const Piece& p, std::string& out);
    void end_headers(std::string& out);
    void end_entity(bool at_eof, std::string& out);
    void body(const Piece& p, std::string& out);
    void copy_7bit(std::string_view text, std::string& out);
    void refuse(std::string why);
    void emit(std::string& out, std::string_view bytes) const;
    bool in_signed() const;

    // The encoders, over the body of the part being encoded.
    void encode(std::string_view bytes, std::string& out);
    void encode_line_break(std::string_view eol, std::string& out);
    void encode_finish(bool at_eof, std::string& out);
    void qp_token(std::string_view token, std::string& out);
    void b64_group(std::string& out);

    bool m_analyzing;
    bool m_eight_bit_headers;
    std::vector<bool> m_plan;
    std::size_t m_leaves = 0; // leaf parts seen so far
    std::size_t m_encoded = 0;
    std::string m_refusal;

    std::string m_line;       // the line being assembled (at most k_mime_line_piece octets)
    bool m_continued = false; // m_line continues a line whose start was handed on

    Mode m_mode = Mode::headers;
    std::vector<Frame> m_frames; // open multiparts, outermost first
    std::size_t m_message_depth = 0;
    // The entity whose header section is being read.
    std::string m_header;
    bool m_message_level = true;     // the top level of a message (MIME-Version belongs here)
    bool m_default_message = false;  // Content-Type defaults to message/rfc822 (a multipart/digest part)
    // The leaf part being read.
    bool m_leaf_8bit = false;
    std::string m_leaf_cte; // its Content-Transfer-Encoding, lower case, "" when absent
    Encoding m_encoding = Encoding::none;
    std::string m_pending_eol; // the last line end of the body: part of it, unless a delimiter follows
    std::size_t m_col = 0;     // octets on the encoded output line so far
    char m_qp_space = 0;       // a SP or HTAB held back: encoded if it ends the line
    unsigned char m_b64[3] = {0, 0, 0};
    std::size_t m_b64_n = 0;
};

// The decoders of the two encodings (for tests and the fuzz target): lenient
// as RFC 2045 §6.7-6.8 ask (soft line breaks and trailing white space dropped,
// characters outside the base64 alphabet ignored); hard line breaks are CRLF.
std::string decode_quoted_printable(std::string_view in);
std::string decode_base64(std::string_view in);

} // namespace smtpspool
