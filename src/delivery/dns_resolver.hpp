// dns_resolver: the Resolver port of MX delivery over glibc's resolver
// (res_ninit, res_nsend): the name servers of /etc/resolv.conf, or those of
// --dns-server; queries made and answers parsed by delivery/mx. Also this
// machine's interface addresses (getifaddrs), for finding itself among MX hosts.
#pragma once

#include "delivery/mx.hpp"

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace smtpspool {

struct DnsServer {
    std::string address; // IPv4 or IPv6, without brackets
    std::uint16_t port = 53;
    bool operator==(const DnsServer&) const = default;
};

// "192.0.2.53", "192.0.2.53:5353", "::1", "[::1]:5353".
std::optional<DnsServer> parse_dns_server(std::string_view text, std::string& why);
std::string format_dns_server(const DnsServer& server);

// glibc keeps at most this many name servers (MAXNS).
inline constexpr std::size_t k_max_dns_servers = 3;
// Each query: this many seconds per try and server, this many tries per server.
inline constexpr int k_dns_try_seconds = 5;
inline constexpr int k_dns_tries = 2;

class DnsResolver final : public Resolver {
public:
    // servers empty: those of /etc/resolv.conf.
    explicit DnsResolver(const std::vector<DnsServer>& servers);
    ~DnsResolver() override;
    DnsResolver(const DnsResolver&) = delete;
    DnsResolver& operator=(const DnsResolver&) = delete;

    MxAnswer lookup_mx(const std::string& domain) override;
    AddressAnswer lookup_addresses(const std::string& host, std::uint16_t type) override;

private:
    struct State;
    // The raw answer, or nullopt with detail set.
    std::optional<std::string> query(const std::string& name, std::uint16_t type, std::string& detail);
    std::unique_ptr<State> m_state;
    std::uint16_t m_next_id;
};

// The addresses of this machine's interfaces (loopback included), as text.
std::vector<std::string> local_addresses();

} // namespace smtpspool
