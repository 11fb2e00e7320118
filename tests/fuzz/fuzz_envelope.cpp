// fuzz_envelope: the envelope reader (spool files are input too). Invariant:
// whatever it accepts, it writes back and reads again to the same JSON.
#include "model/envelope.hpp"
#include "spool/envelope_json.hpp"
#include "fuzz_check.hpp"

#include <cstdint>

using namespace smtpspool;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
    std::string_view text(reinterpret_cast<const char*>(data), size);
    auto e = envelope_from_json(text);
    if (!e) {
        FUZZ_CHECK(!e.error().message.empty());
        return 0;
    }
    FUZZ_CHECK(is_valid_queue_id(e.value().id));
    FUZZ_CHECK(!e.value().recipients.empty());
    std::string json = envelope_to_json(e.value());
    auto again = envelope_from_json(json);
    FUZZ_CHECK(again.ok());
    FUZZ_CHECK(envelope_to_json(again.value()) == json);
    return 0;
}
