// run-transcripts: tests/sessions/*.txt in-process (tests/unit/transcript.hpp).
// Usage: run-transcripts DIR [NAME...]. Prints each result, the skipped ones
// with the reason, and a count; exits 1 when one diverges or none ran.
#include "../transcript.hpp"

#include <algorithm>
#include <chrono>
#include <csignal>
#include <filesystem>
#include <iostream>
#include <map>

using namespace testutil;

int main(int argc, char** argv)
{
    if (argc < 2) {
        std::cerr << "usage: run-transcripts DIR [NAME...]\n";
        return 64;
    }
    std::signal(SIGPIPE, SIG_IGN); // as serve: a hook that does not read its input is an EPIPE
    std::filesystem::path dir = argv[1];
    std::vector<std::string> names(argv + 2, argv + argc);
    if (names.empty()) {
        for (const auto& e : std::filesystem::directory_iterator(dir)) {
            if (e.path().extension() == ".txt") {
                names.push_back(e.path().filename().string());
            }
        }
        std::sort(names.begin(), names.end());
    }
    auto started = std::chrono::steady_clock::now();
    int passed = 0, failed = 0, skipped = 0;
    std::map<std::string, std::vector<std::string>> skips; // reason -> transcripts
    for (const std::string& name : names) {
        Transcript t;
        try {
            t = parse_transcript((dir / name).string());
        } catch (const std::exception& e) {
            std::cout << "FAIL " << name << ": " << e.what() << "\n";
            ++failed;
            continue;
        }
        if (auto reason = in_process_skip(t)) {
            ++skipped;
            skips[*reason].push_back(name);
            std::cout << "SKIP " << name << ": " << *reason << "\n";
            continue;
        }
        for (const std::string& mode : t.modes) {
            TranscriptRun r = run_in_process(t, mode);
            if (!r.error) {
                ++passed;
                std::cout << "PASS " << name << " (" << mode << ")\n";
                continue;
            }
            ++failed;
            std::cout << "FAIL " << name << " (" << mode << "): " << *r.error << "\n     replies were:\n";
            std::string_view rest = r.replies;
            for (std::size_t end; (end = rest.find("\r\n")) != std::string_view::npos; rest.remove_prefix(end + 2)) {
                std::cout << "       " << rest.substr(0, end) << "\n";
            }
        }
    }
    auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started);
    std::cout << "skipped in-process (they run against the binary, make sessions):\n";
    for (const auto& [reason, list] : skips) {
        std::cout << "  " << list.size() << " " << reason << ":";
        for (const std::string& n : list) {
            std::cout << " " << n;
        }
        std::cout << "\n";
    }
    std::cout << "in-process transcripts, " << names.size() - static_cast<std::size_t>(skipped) << " of "
              << names.size() << " files run in " << ms.count() << " ms\n";
    std::cout << "transcripts: " << passed << " passed, " << failed << " failed, " << skipped << " skipped\n";
    return failed != 0 || passed == 0 ? 1 : 0;
}
