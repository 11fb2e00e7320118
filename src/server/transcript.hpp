// transcript: a session transcript file (smtpspool(8), SESSION TRANSCRIPTS):
// each command line the session hands over (TranscriptPort), each reply the
// transport writes, and each event the session logs, one timestamped line
// each, escaped with text::terminal_text; at most a cap of octets, then a
// marker. Created O_CREAT|O_EXCL|O_NOFOLLOW, mode 0640, in a directory
// opened O_DIRECTORY|O_NOFOLLOW; renamed at the end to carry the queue ids.
#pragma once

#include "base/fd.hpp"
#include "base/log.hpp"
#include "base/result.hpp"
#include "smtp/transcript_port.hpp"

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace smtpspool {

class SessionTranscript final : public TranscriptPort {
public:
    // Creates DIR/STAMP-PID.open (STAMP: the session's start, as in queue ids).
    static Result<SessionTranscript> open(const std::string& dir, std::size_t max_size, long pid);

    void client_line(std::string_view line) override;
    // The replies as written (CRLF-separated lines).
    void server(std::string_view wire);
    // A log event of the session.
    void event(const LogLine& line);
    // Renames the file to STAMP-PID.txt, or STAMP-PID+ID+ID....txt with the
    // ids of the messages queued, as many as fit in a name of 240 octets.
    void finish(const std::vector<std::string>& ids);
    const std::string& name() const { return m_name; }

private:
    SessionTranscript(Fd dir, Fd file, std::string base, std::size_t max_size);
    void write_line(char direction, std::string_view text);

    Fd m_dir;
    Fd m_file;
    std::string m_base; // STAMP-PID
    std::string m_name; // the file's name now
    std::size_t m_max_size;
    std::size_t m_written = 0;
    bool m_truncated = false;
};

// The transcript of the session that queued `id` in `dir`, opened for
// reading (O_NOFOLLOW): the file whose name carries the id, else the first
// (in name order) whose text records "event=queued id=ID" (a session that
// queued more ids than its name holds, or that never ended). ENOENT when none.
Result<Fd> open_transcript_of(const std::string& dir, const std::string& id);

// A LogSink that passes each line on and also writes it into a transcript.
class TranscriptLog final : public LogSink {
public:
    TranscriptLog(LogSink& next, SessionTranscript& transcript) : m_next(next), m_transcript(transcript) {}
    void log(const LogLine& line) override;

private:
    LogSink& m_next;
    SessionTranscript& m_transcript;
};

} // namespace smtpspool
