// content: the classes of RFC 2045 §2.7-2.9, without the line-length rule.
#include "model/content.hpp"

namespace smtpspool {

std::string_view content_name(Content content)
{
    switch (content) {
    case Content::seven_bit:
        break;
    case Content::eight_bit:
        return "8bit";
    case Content::binary:
        return "binary";
    }
    return "7bit";
}

std::optional<Content> content_from_name(std::string_view name)
{
    for (Content c : {Content::seven_bit, Content::eight_bit, Content::binary}) {
        if (content_name(c) == name) {
            return c;
        }
    }
    return std::nullopt;
}

void ContentScanner::feed(std::string_view bytes)
{
    if (m_binary) {
        return; // nothing can change the class any more
    }
    for (char c : bytes) {
        if (m_cr && c != '\n') {
            m_binary = true; // a CR not followed by LF
            return;
        }
        if (c == '\n' && !m_cr) {
            m_binary = true; // an LF without its CR
            return;
        }
        if (c == '\0') {
            m_binary = true;
            return;
        }
        m_cr = c == '\r';
        if (static_cast<unsigned char>(c) >= 0x80) {
            m_eight_bit = true;
        }
    }
}

Content ContentScanner::result() const
{
    if (m_binary || m_cr) {
        return Content::binary;
    }
    return m_eight_bit ? Content::eight_bit : Content::seven_bit;
}

} // namespace smtpspool
