// dns_resolver: res_nsend with our own query and parser; the name servers
// of --dns-server replace those of resolv.conf in the resolver's state.
#include "delivery/dns_resolver.hpp"

#include "base/cidr.hpp"

#include <algorithm>
#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <cerrno>
#include <charconv>
#include <cstdlib>
#include <cstring>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <random>
#include <resolv.h>
#include <sys/socket.h>

namespace smtpspool {

struct DnsResolver::State {
    struct __res_state rs {};
    bool ready = false;
    std::string init_error;
};

std::optional<DnsServer> parse_dns_server(std::string_view text, std::string& why)
{
    DnsServer s;
    std::string_view port;
    if (!text.empty() && text.front() == '[') {
        auto close = text.find(']');
        if (close == std::string_view::npos) {
            why = "missing ] after an IPv6 address";
            return std::nullopt;
        }
        s.address = std::string(text.substr(1, close - 1));
        std::string_view rest = text.substr(close + 1);
        if (!rest.empty()) {
            if (rest.front() != ':') {
                why = "junk after the address";
                return std::nullopt;
            }
            port = rest.substr(1);
            if (port.empty()) {
                why = "missing port after ':'";
                return std::nullopt;
            }
        }
    } else if (std::count(text.begin(), text.end(), ':') == 1) {
        auto colon = text.find(':');
        s.address = std::string(text.substr(0, colon));
        port = text.substr(colon + 1);
        if (port.empty()) {
            why = "missing port after ':'";
            return std::nullopt;
        }
    } else {
        s.address = std::string(text);
    }
    in_addr v4{};
    in6_addr v6{};
    if (s.address.empty() || (::inet_pton(AF_INET, s.address.c_str(), &v4) != 1 &&
                              ::inet_pton(AF_INET6, s.address.c_str(), &v6) != 1)) {
        why = "not an IP address";
        return std::nullopt;
    }
    if (!port.empty()) {
        unsigned p = 0;
        auto [ptr, ec] = std::from_chars(port.data(), port.data() + port.size(), p);
        if (ec != std::errc() || ptr != port.data() + port.size() || p == 0 || p > 65535) {
            why = "bad port '" + std::string(port) + "'";
            return std::nullopt;
        }
        s.port = static_cast<std::uint16_t>(p);
    }
    return s;
}

std::string format_dns_server(const DnsServer& server)
{
    bool v6 = server.address.find(':') != std::string::npos;
    std::string a = v6 ? "[" + server.address + "]" : server.address;
    return server.port == 53 && !v6 ? a : a + ":" + std::to_string(server.port);
}

DnsResolver::DnsResolver(const std::vector<DnsServer>& servers) : m_state(std::make_unique<State>())
{
    std::random_device seed;
    m_next_id = static_cast<std::uint16_t>(seed());
    struct __res_state& rs = m_state->rs;
    if (::res_ninit(&rs) != 0) {
        m_state->init_error = "cannot initialise the resolver";
        return;
    }
    m_state->ready = true;
    rs.retrans = k_dns_try_seconds;
    rs.retry = k_dns_tries;
    rs.options &= ~static_cast<unsigned long>(RES_ROTATE);
    if (servers.empty()) {
        return;
    }
    // Replace the servers of resolv.conf. IPv4 ones live in nsaddr_list;
    // IPv6 ones in the extension list (sin_family 0 in nsaddr_list), which
    // res_nclose frees: what res_ninit put there is freed first.
    for (int i = 0; i < MAXNS; ++i) {
        std::free(rs._u._ext.nsaddrs[i]);
        rs._u._ext.nsaddrs[i] = nullptr;
    }
    rs._u._ext.nscount = 0;
    int n = 0;
    for (const DnsServer& s : servers) {
        if (n == MAXNS) {
            break;
        }
        sockaddr_in v4{};
        v4.sin_family = AF_INET;
        v4.sin_port = htons(s.port);
        if (::inet_pton(AF_INET, s.address.c_str(), &v4.sin_addr) == 1) {
            rs.nsaddr_list[n] = v4;
            ++n;
            continue;
        }
        auto* v6 = static_cast<sockaddr_in6*>(std::calloc(1, sizeof(sockaddr_in6)));
        if (v6 == nullptr) {
            continue;
        }
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons(s.port);
        if (::inet_pton(AF_INET6, s.address.c_str(), &v6->sin6_addr) != 1) {
            std::free(v6);
            continue;
        }
        std::memset(&rs.nsaddr_list[n], 0, sizeof rs.nsaddr_list[n]);
        rs._u._ext.nsaddrs[n] = v6;
        ++n;
    }
    rs.nscount = n;
}

DnsResolver::~DnsResolver()
{
    if (m_state->ready) {
        ::res_nclose(&m_state->rs);
    }
}

std::optional<std::string> DnsResolver::query(const std::string& name, std::uint16_t type, std::string& detail)
{
    if (!m_state->ready) {
        detail = m_state->init_error;
        return std::nullopt;
    }
    std::string q = make_dns_query(name, type, m_next_id++);
    if (q.empty()) {
        detail = "not a host name";
        return std::nullopt;
    }
    std::string answer(65536, '\0');
    int n = ::res_nsend(&m_state->rs, reinterpret_cast<const unsigned char*>(q.data()), static_cast<int>(q.size()),
                        reinterpret_cast<unsigned char*>(answer.data()), static_cast<int>(answer.size()));
    if (n < 0) {
        int err = errno;
        detail = err == ETIMEDOUT ? "no answer from the name servers (timeout or SERVFAIL)"
               : err == ECONNREFUSED ? "no name server reachable"
                                     : "DNS query failed: " + std::string(std::strerror(err));
        return std::nullopt;
    }
    answer.resize(static_cast<std::size_t>(n));
    return answer;
}

MxAnswer DnsResolver::lookup_mx(const std::string& domain)
{
    std::string detail;
    auto answer = query(domain, k_dns_type_mx, detail);
    if (!answer) {
        return {DnsStatus::failed, {}, detail};
    }
    return parse_mx_response(*answer, domain);
}

AddressAnswer DnsResolver::lookup_addresses(const std::string& host, std::uint16_t type)
{
    std::string detail;
    auto answer = query(host, type, detail);
    if (!answer) {
        return {DnsStatus::failed, {}, detail};
    }
    return parse_address_response(*answer, host, type);
}

std::vector<std::string> local_addresses()
{
    std::vector<std::string> out;
    ifaddrs* list = nullptr;
    if (::getifaddrs(&list) != 0) {
        return out;
    }
    for (ifaddrs* i = list; i != nullptr; i = i->ifa_next) {
        if (i->ifa_addr == nullptr) {
            continue;
        }
        char buf[INET6_ADDRSTRLEN] = {};
        const void* bytes = nullptr;
        if (i->ifa_addr->sa_family == AF_INET) {
            bytes = &reinterpret_cast<const sockaddr_in*>(i->ifa_addr)->sin_addr;
        } else if (i->ifa_addr->sa_family == AF_INET6) {
            bytes = &reinterpret_cast<const sockaddr_in6*>(i->ifa_addr)->sin6_addr;
        } else {
            continue;
        }
        if (::inet_ntop(i->ifa_addr->sa_family, bytes, buf, sizeof buf) != nullptr) {
            out.emplace_back(buf);
        }
    }
    ::freeifaddrs(list);
    return out;
}

} // namespace smtpspool
