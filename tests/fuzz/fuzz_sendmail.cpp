// fuzz_sendmail: the message reader of `smtpspool sendmail`: line splitting,
// the header section, address lists and mailboxes. Invariants: the same lines
// at any chunking, each ending in CRLF with no other CR or LF; the header
// section keeps every octet of the lines it took, in order; field names are
// lower-case field-name characters; an extracted address is trimmed and has
// no line ends; a mailbox has a domain and parses again as a path.
#include "fuzz_check.hpp"
#include "cli/sendmail.hpp"
#include "smtp/smtp_address.hpp"

#include <cstdint>
#include <string>
#include <vector>

using namespace smtpspool;

namespace {

std::vector<std::string> split(std::string_view text, std::size_t chunk)
{
    LineSplitter s;
    std::vector<std::string> lines;
    std::string line;
    while (!text.empty()) {
        std::string_view piece = text.substr(0, chunk);
        text.remove_prefix(piece.size());
        while (s.take(piece, line)) {
            lines.push_back(line);
        }
    }
    if (s.finish(line)) {
        lines.push_back(line);
    }
    return lines;
}

// Lines read in pieces of at most max_piece octets (plus the CRLF), joined
// again where a piece does not end its line.
std::vector<std::string> split_in_pieces(std::string_view text, std::size_t chunk, std::size_t max_piece)
{
    LineSplitter s(max_piece);
    std::vector<std::string> lines;
    std::string line, joined;
    bool open = false;
    auto add = [&] {
        FUZZ_CHECK(line.size() <= max_piece + 2);
        FUZZ_CHECK(s.starts_line() == !open);
        joined += line;
        open = !s.ends_line();
        if (!open) {
            lines.push_back(joined);
            joined.clear();
        }
    };
    while (!text.empty()) {
        std::string_view piece = text.substr(0, chunk);
        text.remove_prefix(piece.size());
        while (s.take(piece, line)) {
            add();
        }
    }
    if (s.finish(line)) {
        add();
    }
    FUZZ_CHECK(!open);
    return lines;
}

void check_addresses(std::string_view body)
{
    for (const std::string& a : header_addresses(body)) {
        FUZZ_CHECK(!a.empty());
        FUZZ_CHECK(a.find_first_of("\r\n") == std::string::npos);
        FUZZ_CHECK(a.front() != ' ' && a.front() != '\t' && a.back() != ' ' && a.back() != '\t');
        bool non_ascii = false;
        std::string m = submission_mailbox(a, "host.test", non_ascii);
        if (m.empty()) {
            continue;
        }
        FUZZ_CHECK(m.find('@') != std::string::npos);
        PathParse p = parse_path("<" + m + ">", PathKind::forward);
        FUZZ_CHECK(p.error == PathError::none && p.end == m.size() + 2);
        FUZZ_CHECK(p.path.local + "@" + p.path.domain == m);
        FUZZ_CHECK(non_ascii || !p.path.non_ascii);
    }
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
    if (size < 1) {
        return 0;
    }
    std::size_t chunk = data[0] % 16 + 1;
    std::string_view text(reinterpret_cast<const char*>(data) + 1, size - 1);

    std::vector<std::string> lines = split(text, text.size() + 1);
    FUZZ_CHECK(split(text, chunk) == lines);
    FUZZ_CHECK(split_in_pieces(text, chunk, 1 + data[0] % 7) == lines);
    std::size_t octets = 0;
    for (const std::string& l : lines) {
        FUZZ_CHECK(l.size() >= 2 && l.compare(l.size() - 2, 2, "\r\n") == 0);
        FUZZ_CHECK(l.find_first_of("\r\n") == l.size() - 2);
        octets += l.size() - 2;
    }
    // Every CR and LF is a line end (a CRLF one end); every other octet stays.
    std::size_t ends = 0, end_octets = 0;
    for (std::size_t i = 0; i < text.size(); ++i) {
        if (text[i] == '\n' || text[i] == '\r') {
            ++ends;
            ++end_octets;
            if (text[i] == '\r' && i + 1 < text.size() && text[i + 1] == '\n') {
                ++i;
                ++end_octets;
            }
        }
    }
    bool partial = !text.empty() && text.back() != '\n' && text.back() != '\r';
    FUZZ_CHECK(octets == text.size() - end_octets);
    FUZZ_CHECK(lines.size() == ends + (partial ? 1 : 0));

    HeaderSection header;
    std::string taken;
    std::size_t used = 0;
    HeaderSection::Step step = HeaderSection::Step::more;
    for (; used < lines.size(); ++used) {
        step = header.add(lines[used]);
        if (step != HeaderSection::Step::more) {
            break;
        }
        if (used == 0 && header.skipped_from_line) {
            continue; // a leading mbox From line is dropped, not a field
        }
        taken += lines[used];
    }
    std::string joined;
    for (const HeaderSection::Field& f : header.fields) {
        FUZZ_CHECK(!f.name.empty());
        for (char c : f.name) {
            auto u = static_cast<unsigned char>(c);
            FUZZ_CHECK(u >= 33 && u <= 126 && c != ':' && !(c >= 'A' && c <= 'Z'));
        }
        FUZZ_CHECK(f.text.size() >= 2 && f.text.compare(f.text.size() - 2, 2, "\r\n") == 0);
        joined += f.text;
        if (f.name == "to" || f.name == "cc" || f.name == "bcc") {
            check_addresses(std::string_view(f.text).substr(f.text.find(':') + 1));
        }
    }
    FUZZ_CHECK(joined == taken);
    if (step == HeaderSection::Step::body) {
        FUZZ_CHECK(header.first_body_line == lines[used]);
        FUZZ_CHECK(header.size == taken.size());
    }
    check_addresses(text.substr(0, 4096));
    return 0;
}
