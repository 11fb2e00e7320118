// auth: base64 and the PLAIN message.
#include "smtp/auth.hpp"

#include <array>

namespace smtpspool {
namespace {

constexpr std::string_view k_alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

int sextet(char c)
{
    std::size_t i = k_alphabet.find(c);
    return i == std::string_view::npos ? -1 : static_cast<int>(i);
}

} // namespace

// Ours, not OpenSSL's: smtp/ is pure (no OpenSSL), and neither of OpenSSL's
// decoders is this strict. EVP_DecodeBlock skips leading and trailing white
// space (" QUJD", "QUJD\r\n"), decodes '=' anywhere as zero bits ("=QQ=",
// "QQ==QUJD", "QUJD====") and leaves the padding's zero octets in its output
// ("QQ==" gives 3 octets); EVP_DecodeUpdate also takes white space and line
// breaks between groups ("QU JD", "QUJD\nQUJD"). Each would need our checks
// of the alphabet, the length and the padding first, which is the decoder.
std::optional<std::string> base64_decode(std::string_view text)
{
    if (text.size() % 4 != 0) {
        return std::nullopt;
    }
    std::string out;
    out.reserve(text.size() / 4 * 3);
    for (std::size_t i = 0; i < text.size(); i += 4) {
        std::array<int, 4> v{};
        int pad = 0;
        for (std::size_t k = 0; k < 4; ++k) {
            char c = text[i + k];
            if (c == '=') {
                // Only in the last group, only at its end (x===, xx==, xxx=).
                if (i + 4 != text.size() || k < 2) {
                    return std::nullopt;
                }
                ++pad;
                v[k] = 0;
                continue;
            }
            if (pad > 0 || (v[k] = sextet(c)) < 0) {
                return std::nullopt;
            }
        }
        unsigned n = (static_cast<unsigned>(v[0]) << 18) | (static_cast<unsigned>(v[1]) << 12) |
                     (static_cast<unsigned>(v[2]) << 6) | static_cast<unsigned>(v[3]);
        out.push_back(static_cast<char>(n >> 16));
        if (pad < 2) {
            out.push_back(static_cast<char>((n >> 8) & 0xff));
        }
        if (pad < 1) {
            out.push_back(static_cast<char>(n & 0xff));
        }
    }
    return out;
}

std::string base64_encode(std::string_view octets)
{
    std::string out;
    for (std::size_t i = 0; i < octets.size(); i += 3) {
        std::size_t left = octets.size() - i;
        unsigned n = static_cast<unsigned char>(octets[i]) << 16;
        if (left > 1) {
            n |= static_cast<unsigned char>(octets[i + 1]) << 8;
        }
        if (left > 2) {
            n |= static_cast<unsigned char>(octets[i + 2]);
        }
        out.push_back(k_alphabet[(n >> 18) & 63]);
        out.push_back(k_alphabet[(n >> 12) & 63]);
        out.push_back(left > 1 ? k_alphabet[(n >> 6) & 63] : '=');
        out.push_back(left > 2 ? k_alphabet[n & 63] : '=');
    }
    return out;
}

std::optional<PlainCredentials> parse_plain(std::string_view decoded)
{
    std::size_t first = decoded.find('\0');
    if (first == std::string_view::npos) {
        return std::nullopt;
    }
    std::size_t second = decoded.find('\0', first + 1);
    if (second == std::string_view::npos || decoded.find('\0', second + 1) != std::string_view::npos) {
        return std::nullopt;
    }
    PlainCredentials c{std::string(decoded.substr(0, first)),
                       std::string(decoded.substr(first + 1, second - first - 1)),
                       std::string(decoded.substr(second + 1))};
    if (c.user.empty() || c.password.empty()) {
        return std::nullopt;
    }
    return c;
}

} // namespace smtpspool
