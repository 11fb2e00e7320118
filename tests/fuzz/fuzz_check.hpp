// fuzz_check: the invariant check of the fuzz targets: abort (and so report a
// crash with the input) when a promised property does not hold.
#pragma once

#include <cstdio>
#include <cstdlib>
#include <string_view>

#define FUZZ_CHECK(cond)                                                                                        \
    do {                                                                                                        \
        if (!(cond)) {                                                                                          \
            std::fprintf(stderr, "invariant failed: %s (%s:%d)\n", #cond, __FILE__, __LINE__);                 \
            std::abort();                                                                                       \
        }                                                                                                       \
    } while (0)

// Every line: three digits 2xx-5xx, then space or hyphen, CRLF, at most 512 octets.
inline bool well_formed_replies(std::string_view wire)
{
    while (!wire.empty()) {
        auto end = wire.find("\r\n");
        if (end == std::string_view::npos || end + 2 > 512 || end < 4) {
            return false;
        }
        std::string_view line = wire.substr(0, end);
        if (line[0] < '2' || line[0] > '5' || line[1] < '0' || line[1] > '9' || line[2] < '0' || line[2] > '9' ||
            (line[3] != ' ' && line[3] != '-')) {
            return false;
        }
        for (char c : line) {
            if (c == '\r' || c == '\n') {
                return false;
            }
        }
        wire.remove_prefix(end + 2);
    }
    return true;
}
