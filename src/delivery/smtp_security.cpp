// smtp_security: TLS levels and policy, the credentials file, AUTH mechanism
// choice and the client's PLAIN and LOGIN messages (RFC 4954, RFC 4616).
#include "delivery/smtp_security.hpp"

#include "base/cidr.hpp"
#include "delivery/route.hpp"
#include "smtp/auth.hpp"
#include "smtp/smtp_address.hpp"

#include <algorithm>

namespace smtpspool {
namespace {

constexpr std::string_view k_level_names[] = {"none", "may", "encrypt", "verify"};

bool is_blank(char c) { return c == ' ' || c == '\t'; }

std::string ascii_upper(std::string_view text)
{
    std::string out(text);
    for (char& c : out) {
        if (c >= 'a' && c <= 'z') {
            c = static_cast<char>(c - 'a' + 'A');
        }
    }
    return out;
}

// A host as policies and credentials keep it: lower case, no brackets.
std::string host_key(std::string_view host)
{
    if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
        host = host.substr(1, host.size() - 2);
    }
    return ascii_lower(host);
}

} // namespace

std::string_view tls_level_name(TlsLevel level) { return k_level_names[static_cast<int>(level)]; }

std::optional<TlsLevel> tls_level_from_name(std::string_view name)
{
    for (int i = 0; i < 4; ++i) {
        if (name == k_level_names[i]) {
            return static_cast<TlsLevel>(i);
        }
    }
    return std::nullopt;
}

std::optional<TlsPolicyEntry> parse_tls_policy_entry(std::string_view text, std::string& why)
{
    auto eq = text.rfind('=');
    if (eq == std::string_view::npos) {
        why = "expected HOST=LEVEL";
        return std::nullopt;
    }
    TlsPolicyEntry entry;
    auto level = tls_level_from_name(text.substr(eq + 1));
    if (!level) {
        why = "unknown level '" + std::string(text.substr(eq + 1)) + "' (none, may, encrypt or verify)";
        return std::nullopt;
    }
    entry.level = *level;
    std::string_view host = text.substr(0, eq);
    std::uint16_t port = 0;
    std::string bare = host.size() >= 2 && host.front() != '[' && std::count(host.begin(), host.end(), ':') > 1
                           ? "[" + std::string(host) + "]"
                           : std::string(host);
    if (!parse_host_port(bare, entry.host, port, why)) {
        return std::nullopt;
    }
    if (port != 0) {
        why = "a host without a port";
        return std::nullopt;
    }
    entry.host = host_key(entry.host);
    return entry;
}

TlsLevel tls_level_for(std::string_view host, TlsLevel global, const std::vector<TlsPolicyEntry>& policy)
{
    std::string key = host_key(host);
    for (const TlsPolicyEntry& e : policy) {
        if (e.host == key) {
            return e.level;
        }
    }
    return global;
}

Result<std::vector<AuthEntry>> parse_auth_file(std::string_view text)
{
    std::vector<AuthEntry> entries;
    std::size_t number = 0;
    while (!text.empty()) {
        ++number;
        auto nl = text.find('\n');
        std::string_view line = text.substr(0, nl);
        text = nl == std::string_view::npos ? std::string_view() : text.substr(nl + 1);
        if (!line.empty() && line.back() == '\r') {
            line.remove_suffix(1);
        }
        std::string_view trimmed = line;
        while (!trimmed.empty() && is_blank(trimmed.front())) {
            trimmed.remove_prefix(1);
        }
        if (trimmed.empty() || trimmed.front() == '#') {
            continue;
        }
        auto fail = [number](const std::string& why) {
            return Error{0, "line " + std::to_string(number) + ": " + why};
        };
        auto blank = std::find_if(trimmed.begin(), trimmed.end(), is_blank);
        if (blank == trimmed.end()) {
            return fail("expected HOST[:PORT] USER:PASSWORD");
        }
        std::string_view where = trimmed.substr(0, static_cast<std::size_t>(blank - trimmed.begin()));
        std::string_view rest = trimmed.substr(where.size());
        while (!rest.empty() && is_blank(rest.front())) {
            rest.remove_prefix(1);
        }
        AuthEntry entry;
        entry.line = number;
        std::string why;
        if (!parse_host_port(where, entry.host, entry.port, why)) {
            return fail("the host: " + why);
        }
        entry.host = host_key(entry.host);
        auto colon = rest.find(':');
        if (colon == std::string_view::npos) {
            return fail("expected USER:PASSWORD after the host");
        }
        entry.user = std::string(rest.substr(0, colon));
        entry.password = std::string(rest.substr(colon + 1));
        if (entry.user.empty() || entry.password.empty()) {
            return fail("an empty user or password");
        }
        // A NUL would end the PLAIN message's field; other controls, a CR or LF
        // on the wire, nothing a real password holds.
        auto control = [](char c) { return static_cast<unsigned char>(c) < 0x20 || c == 0x7f; };
        if (std::any_of(entry.user.begin(), entry.user.end(), control) ||
            std::any_of(entry.password.begin(), entry.password.end(), control)) {
            return fail("a control character in the user or password");
        }
        for (const AuthEntry& other : entries) {
            if (other.host == entry.host && other.port == entry.port) {
                return fail("the same host and port as line " + std::to_string(other.line));
            }
        }
        entries.push_back(std::move(entry));
    }
    return entries;
}

const AuthEntry* find_credentials(const std::vector<AuthEntry>& entries, std::string_view host, std::uint16_t port)
{
    std::string key = host_key(host);
    const AuthEntry* any_port = nullptr;
    for (const AuthEntry& e : entries) {
        if (e.host != key) {
            continue;
        }
        if (e.port == port) {
            return &e;
        }
        if (e.port == 0) {
            any_port = &e;
        }
    }
    return any_port;
}

std::string_view auth_mechanism_name(AuthMechanism m)
{
    return m == AuthMechanism::plain ? "PLAIN" : m == AuthMechanism::login ? "LOGIN" : "none";
}

std::vector<std::string> offered_auth_mechanisms(const std::vector<std::string>& ehlo_lines)
{
    std::vector<std::string> out;
    for (const std::string& line : ehlo_lines) {
        std::string_view l = line;
        if (l.size() < 5 || ascii_lower(l.substr(0, 4)) != "auth" || (l[4] != ' ' && l[4] != '=')) {
            continue;
        }
        l.remove_prefix(5);
        while (!l.empty()) {
            auto sp = l.find(' ');
            std::string word = ascii_upper(l.substr(0, sp));
            if (!word.empty() && std::find(out.begin(), out.end(), word) == out.end()) {
                out.push_back(word);
            }
            l = sp == std::string_view::npos ? std::string_view() : l.substr(sp + 1);
        }
    }
    return out;
}

AuthMechanism choose_auth_mechanism(const std::vector<std::string>& offered)
{
    auto has = [&](std::string_view m) { return std::find(offered.begin(), offered.end(), m) != offered.end(); };
    return has("PLAIN") ? AuthMechanism::plain : has("LOGIN") ? AuthMechanism::login : AuthMechanism::none;
}

std::string auth_plain_command(std::string_view user, std::string_view password)
{
    std::string message;
    message += '\0';
    message += user;
    message += '\0';
    message += password;
    return "AUTH PLAIN " + base64_encode(message) + "\r\n";
}

std::string auth_login_answer(std::string_view text) { return base64_encode(text) + "\r\n"; }

bool is_loopback_address(std::string_view address)
{
    auto ip = parse_ip(address);
    if (!ip) {
        return false;
    }
    const auto& a = *ip;
    bool v4_mapped = std::all_of(a.begin(), a.begin() + 10, [](std::uint8_t b) { return b == 0; }) && a[10] == 0xff &&
                     a[11] == 0xff;
    if (v4_mapped) {
        return a[12] == 127;
    }
    bool v6_loopback = std::all_of(a.begin(), a.begin() + 15, [](std::uint8_t b) { return b == 0; }) && a[15] == 1;
    return v6_loopback;
}

} // namespace smtpspool
