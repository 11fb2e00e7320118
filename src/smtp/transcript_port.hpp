// transcript_port: where the session hands each line the client sent, for a
// session transcript (smtpspool(8), SESSION TRANSCRIPTS). The session never
// hands over credentials or message content: an AUTH command and each answer
// to its 334 arrive as a marker, and the octets of DATA and BDAT not at all.
#pragma once

#include <string_view>

namespace smtpspool {

class TranscriptPort {
public:
    virtual ~TranscriptPort() = default;
    // A command line as received, without its line end; or a marker.
    virtual void client_line(std::string_view line) = 0;
};

inline constexpr std::string_view k_transcript_auth_marker = "[AUTH command, not recorded]";
inline constexpr std::string_view k_transcript_sasl_marker = "[AUTH response, not recorded]";

} // namespace smtpspool
