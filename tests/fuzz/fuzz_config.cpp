// fuzz_config: the config file reader (Boost.ProgramOptions and our value
// checks), through parse_config as check-config reads it. Invariants: any
// file gives settings or a configuration error naming the command, never an
// exception; accepted settings printed by describe() read back to the same
// settings (what check-config prints is a config file), each line a key of
// the option table.
#include "cli/config.hpp"
#include "fuzz_check.hpp"

#include <algorithm>
#include <cstdint>
#include <string>
#include <sys/mman.h>
#include <unistd.h>

using namespace smtpspool;

namespace {

// The text as a file (memory only), and the result of reading it.
std::variant<Config, ConfigExit> read_text(std::string_view text)
{
    int fd = ::memfd_create("fuzz-config", 0);
    FUZZ_CHECK(fd >= 0);
    FUZZ_CHECK(::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size()));
    std::string path = "/proc/self/fd/" + std::to_string(fd);
    const char* argv[] = {"smtpspool", "check-config", "--config", path.c_str()};
    auto r = parse_config(4, argv);
    ::close(fd);
    return r;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
    std::string_view text(reinterpret_cast<const char*>(data), size);
    auto r = read_text(text);
    if (auto* e = std::get_if<ConfigExit>(&r)) {
        FUZZ_CHECK(e->status == k_exit_config);
        FUZZ_CHECK(e->text.rfind("smtpspool check-config: configuration error: ", 0) == 0);
        FUZZ_CHECK(e->text.back() == '\n');
        return 0;
    }
    Config c = std::get<Config>(r);
    apply_machine_defaults(c, "fuzz.test");
    std::string described = describe(c);
    // Each line of it names an option of the table that a file may set.
    static const std::vector<OptionInfo> table = option_table();
    for (std::size_t at = 0; at < described.size();) {
        std::size_t end = described.find('\n', at);
        std::string key = described.substr(at, described.find(" = ", at) - at);
        FUZZ_CHECK(std::any_of(table.begin(), table.end(),
                               [&](const OptionInfo& o) { return o.name == key && o.in_config_file; }));
        at = end + 1;
    }
    auto again = read_text(described);
    if (auto* e = std::get_if<ConfigExit>(&again)) {
        std::fprintf(stderr, "describe() output refused: %s---\n%s", e->text.c_str(), described.c_str());
        FUZZ_CHECK(!"describe() reads back");
    }
    Config back = std::get<Config>(again);
    apply_machine_defaults(back, "other.test");
    FUZZ_CHECK(describe(back) == described);
    return 0;
}
