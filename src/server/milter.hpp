// milter: the FilterPort of a chain of milters (smtpspool(8), MILTERS): one
// socket per milter (UNIX-domain, IPv4 or IPv6), opened and negotiated at
// connect, each event with its macros, every wait bounded by the timeout
// (poll), and a milter that is down, too slow or breaks the protocol handled
// by the default action. The wire format is milter_protocol.
#pragma once

#include "base/fd.hpp"
#include "base/log.hpp"
#include "server/milter_protocol.hpp"
#include "smtp/filter_port.hpp"

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace smtpspool {

// --milter SPEC: unix:/path, inet:HOST:PORT or inet6:HOST:PORT (an IPv6
// HOST may be in brackets).
struct MilterSpec {
    enum class Kind { unix_socket, inet, inet6 };
    std::string text; // as given: the milter's name in the log
    Kind kind = Kind::unix_socket;
    std::string address; // the path, or the host
    std::uint16_t port = 0;
};
std::optional<MilterSpec> parse_milter_spec(std::string_view text, std::string& why);

// --milter-default-action: for a milter that is down, too slow, or breaks
// the protocol.
enum class MilterDefault { tempfail, accept, reject };
std::optional<MilterDefault> parse_milter_default(std::string_view text);
std::string_view milter_default_name(MilterDefault d);

struct MilterOptions {
    std::vector<MilterSpec> milters; // applied in this order
    MilterDefault default_action = MilterDefault::tempfail;
    std::chrono::milliseconds timeout{30000}; // connect, and each reply
    std::size_t max_body = 0;                 // a replaced body's bound; 0: k_max_packet * 64
};

class MilterChain final : public FilterPort {
public:
    MilterChain(MilterOptions options, LogSink& log);
    ~MilterChain() override;

    FilterVerdict connect(const FilterConnect& facts) override;
    FilterVerdict helo(std::string_view name) override;
    FilterVerdict mail(std::string_view sender, const std::vector<std::string>& parameters,
                       const FilterMessageFacts& facts) override;
    FilterVerdict rcpt(std::string_view recipient, const std::vector<std::string>& parameters) override;
    FilterVerdict data(const FilterMessageFacts& facts) override;
    void message(std::string_view octets) override;
    EndOfMessageVerdict end_of_message(const MessageSource& source) override;
    void abort() override;
    void quit() override;

    struct Milter; // one milter's connection and state

private:
    // One event to every milter that still wants it; the chain's verdict.
    struct Event {
        milter::Stage stage;
        char command;
        std::string packet;
        std::uint32_t not_wanted; // SMFIP_NO* bit
        std::uint32_t no_reply;   // SMFIP_NR_* bit
        std::string_view name;    // for the log
    };
    FilterVerdict send_event(const Event& event);
    void content(Milter& m, const milter::ContentEvent& e);
    Result<void> send_content(Milter& m, const MessageEdits& before, const MessageSource& source, bool& read);
    FilterVerdict failed(Milter& m, std::string_view stage, std::string_view reason);
    FilterVerdict unavailable(const Milter& m) const;
    void log(const Milter& m, std::string_view stage, std::string_view action, std::string_view reason = {},
             int code = 0, std::size_t edits = 0);
    void end_transaction();

    MilterOptions m_options;
    LogSink& m_log;
    std::vector<std::unique_ptr<Milter>> m_milters;
    std::map<std::string, std::string> m_macros; // what we know, by name as sent ("j", "{client_addr}")
    milter::ContentSplitter m_splitter;
    std::vector<milter::ContentEvent> m_events;
    bool m_in_transaction = false;
    std::optional<FilterVerdict> m_content_verdict; // given while a milter was sent the content
};

} // namespace smtpspool
