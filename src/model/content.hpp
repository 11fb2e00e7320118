// content: what a stored message's octets really are, whatever the client
// declared with BODY= (RFC 2045 §2.7-2.9 classes; line lengths are not looked at).
#pragma once

#include <optional>
#include <string_view>

namespace smtpspool {

enum class Content {
    seven_bit,  // "7bit": every octet below 0x80, no NUL, CR and LF only as CRLF
    eight_bit,  // "8bit": some octet of 0x80 or more, no NUL, CR and LF only as CRLF
    binary,     // "binary": a NUL, a bare CR or a bare LF (only a BINARYMIME message stores these)
};

// "7bit", "8bit", "binary": the envelope's "content" value.
std::string_view content_name(Content content);
std::optional<Content> content_from_name(std::string_view name);

// The class of two pieces of one message taken together.
inline Content worse(Content a, Content b) { return a > b ? a : b; }

// Classifies octets fed in any chunking.
class ContentScanner {
public:
    void feed(std::string_view bytes);
    // The class of everything fed; a CR at the very end counts as a bare CR.
    Content result() const;

private:
    bool m_eight_bit = false;
    bool m_binary = false;
    bool m_cr = false; // the last octet fed was a CR
};

} // namespace smtpspool
