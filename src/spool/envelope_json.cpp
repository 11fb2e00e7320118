// envelope_json: the mapping between Envelope and envelope.json (nlohmann ordered_json).
#include "spool/envelope_json.hpp"

#include "base/clock.hpp"
#include "smtp/dsn.hpp"
#include "base/limits.hpp"

#include <algorithm>
#include <nlohmann/json.hpp>

#include <charconv>

namespace smtpspool {
namespace {

using Json = nlohmann::ordered_json;

Json optional_string(const std::optional<std::string>& s) { return s ? Json(*s) : Json(nullptr); }

Json to_tree(const Envelope& e)
{
    Json recipients = Json::array();
    for (const Recipient& r : e.recipients) {
        Json rc{{"address", r.address},
                {"status", r.status},
                {"attempts", r.attempts},
                {"last_error", optional_string(r.last_error)}};
        if (r.original) {
            rc["original"] = *r.original;
        }
        if (r.notify) {
            rc["notify"] = *r.notify;
        }
        if (r.orcpt) {
            rc["orcpt"] = *r.orcpt;
        }
        recipients.push_back(std::move(rc));
    }
    Json client{{"address", optional_string(e.client.address)},
                {"port", e.client.port ? Json(*e.client.port) : Json(nullptr)},
                {"hostname", optional_string(e.client.hostname)},
                {"ident", optional_string(e.client.ident)},
                {"helo", e.client.helo},
                {"protocol", e.client.protocol}};
    if (e.client.tls) {
        client["tls"] = Json{{"version", e.client.tls->version}, {"cipher", e.client.tls->cipher}};
    }
    if (e.client.auth) {
        client["auth"] = *e.client.auth;
    }
    Json j{{"version", k_envelope_version},
           {"id", e.id},
           {"received_at", e.received_at},
           {"hostname", e.hostname},
           {"client", client},
           {"mail_from", e.mail_from},
           {"body", e.body},
           {"smtputf8", e.smtputf8}};
    if (e.dsn_ret) {
        j["dsn_ret"] = *e.dsn_ret;
    }
    if (e.dsn_envid) {
        j["dsn_envid"] = *e.dsn_envid;
    }
    j["size"] = e.size;
    j["recipients"] = recipients;
    j["attempts"] = e.attempts;
    j["last_attempt"] = optional_string(e.last_attempt);
    j["next_attempt"] = optional_string(e.next_attempt);
    return j;
}

struct Invalid {
    std::string what;
};

const Json& member(const Json& obj, const char* key)
{
    auto it = obj.find(key);
    if (it == obj.end()) {
        throw Invalid{std::string("missing key \"") + key + "\""};
    }
    return *it;
}

std::string get_string(const Json& obj, const char* key)
{
    const Json& v = member(obj, key);
    if (!v.is_string()) {
        throw Invalid{std::string("\"") + key + "\" must be a string"};
    }
    return v.get<std::string>();
}

std::optional<std::string> get_optional_string(const Json& obj, const char* key)
{
    const Json& v = member(obj, key);
    if (v.is_null()) {
        return std::nullopt;
    }
    if (!v.is_string()) {
        throw Invalid{std::string("\"") + key + "\" must be a string or null"};
    }
    return v.get<std::string>();
}

std::uint64_t get_count(const Json& obj, const char* key)
{
    const Json& v = member(obj, key);
    if (!v.is_number_unsigned()) {
        throw Invalid{std::string("\"") + key + "\" must be a non-negative integer"};
    }
    return v.get<std::uint64_t>();
}

void require_one_of(const std::string& value, const char* key, std::initializer_list<const char*> allowed)
{
    for (const char* a : allowed) {
        if (value == a) {
            return;
        }
    }
    throw Invalid{std::string("\"") + key + "\" has an unknown value"};
}

// RFC 3461 §4.1: NEVER alone, or SUCCESS, FAILURE, DELAY each at most once.
std::vector<std::string> get_notify(const Json& r)
{
    const Json& v = member(r, "notify");
    std::string joined;
    if (v.is_array()) {
        for (const Json& k : v) {
            if (!k.is_string()) {
                joined.clear();
                break;
            }
            joined += (joined.empty() ? "" : ",") + k.get<std::string>();
        }
    }
    std::string why;
    auto keywords = parse_notify(joined, why);
    if (!keywords || Json(*keywords) != v) {
        throw Invalid{"\"notify\" must be [\"NEVER\"] or some of \"SUCCESS\", \"FAILURE\", \"DELAY\""};
    }
    return *keywords;
}

Envelope from_tree(const Json& j)
{
    if (!j.is_object()) {
        throw Invalid{"not a JSON object"};
    }
    const Json& version = member(j, "version");
    if (!version.is_number_integer() || version.get<long long>() != k_envelope_version) {
        throw Invalid{"unsupported envelope version"};
    }
    Envelope e;
    e.id = get_string(j, "id");
    if (!is_valid_queue_id(e.id)) {
        throw Invalid{"\"id\" is not a valid queue id"};
    }
    e.received_at = get_string(j, "received_at");
    e.hostname = get_string(j, "hostname");
    const Json& client = member(j, "client");
    if (!client.is_object()) {
        throw Invalid{"\"client\" must be an object"};
    }
    e.client.address = get_optional_string(client, "address");
    const Json& port = member(client, "port");
    if (port.is_null()) {
        e.client.port = std::nullopt;
    } else if (port.is_number_unsigned() && port.get<std::uint64_t>() <= 65535) {
        e.client.port = port.get<std::uint64_t>();
    } else {
        throw Invalid{"\"port\" must be a port number or null"};
    }
    e.client.hostname = get_optional_string(client, "hostname");
    e.client.ident = get_optional_string(client, "ident");
    e.client.helo = get_string(client, "helo");
    e.client.protocol = get_string(client, "protocol");
    require_one_of(e.client.protocol, "protocol", {"SMTP", "ESMTP", "local"});
    if (client.contains("tls")) {
        const Json& tls = client["tls"];
        if (!tls.is_object()) {
            throw Invalid{"\"tls\" must be an object"};
        }
        e.client.tls = TlsInfo{get_string(tls, "version"), get_string(tls, "cipher")};
    }
    if (client.contains("auth")) {
        e.client.auth = get_string(client, "auth");
    }
    e.mail_from = get_string(j, "mail_from");
    e.body = get_string(j, "body");
    require_one_of(e.body, "body", {"7BIT", "8BITMIME", "BINARYMIME"});
    const Json& utf8 = member(j, "smtputf8");
    if (!utf8.is_boolean()) {
        throw Invalid{"\"smtputf8\" must be true or false"};
    }
    e.smtputf8 = utf8.get<bool>();
    if (j.contains("dsn_ret")) {
        e.dsn_ret = get_string(j, "dsn_ret");
        require_one_of(*e.dsn_ret, "dsn_ret", {"FULL", "HDRS"});
    }
    if (j.contains("dsn_envid")) {
        e.dsn_envid = get_string(j, "dsn_envid");
        std::string why;
        if (parse_envid(xtext_encode(*e.dsn_envid), why) != e.dsn_envid) {
            throw Invalid{"\"dsn_envid\" must be printable ASCII, at most " + std::to_string(limits::k_max_envid) +
                          " characters as xtext"};
        }
    }
    e.size = get_count(j, "size");
    const Json& rcpts = member(j, "recipients");
    if (!rcpts.is_array() || rcpts.empty()) {
        throw Invalid{"\"recipients\" must be a non-empty array"};
    }
    for (const Json& r : rcpts) {
        if (!r.is_object()) {
            throw Invalid{"a recipient must be an object"};
        }
        Recipient rc;
        rc.address = get_string(r, "address");
        rc.status = get_string(r, "status");
        require_one_of(rc.status, "status", {"pending", "delivered", "failed"});
        rc.attempts = get_count(r, "attempts");
        rc.last_error = get_optional_string(r, "last_error");
        if (r.contains("original")) {
            rc.original = get_optional_string(r, "original");
        }
        // The DSN keys came later: absent in older spools.
        if (r.contains("notify")) {
            rc.notify = get_notify(r);
        }
        if (r.contains("orcpt")) {
            rc.orcpt = get_string(r, "orcpt");
            std::string why;
            if (parse_orcpt(orcpt_parameter(*rc.orcpt), why) != rc.orcpt) {
                throw Invalid{"\"orcpt\" must be addr-type;address of printable ASCII"};
            }
        }
        e.recipients.push_back(std::move(rc));
    }
    // Added after the first release of version 1: optional, absent = never tried.
    if (j.contains("attempts")) {
        e.attempts = get_count(j, "attempts");
    }
    for (auto [key, field] : {std::pair{"last_attempt", &e.last_attempt}, std::pair{"next_attempt", &e.next_attempt}}) {
        if (j.contains(key)) {
            *field = get_optional_string(j, key);
            if (*field && !parse_rfc3339_utc(**field)) {
                throw Invalid{std::string("\"") + key + "\" is not an RFC 3339 UTC time"};
            }
        }
    }
    return e;
}


// envelope_to_json without building a tree: the same octets as
// to_tree(e).dump(2, ' ', false, replace) + "\n", which the tests check. A
// string of printable ASCII other than '"' and '\\' is written as it is; any
// other string goes through nlohmann's escaping (and its UTF-8 replacement).
class PrettyWriter {
public:
    explicit PrettyWriter(std::string& out) : m_out(out) {}

    void open(char bracket)
    {
        m_out += bracket;
        ++m_depth;
        m_first = true;
    }
    void close(char bracket)
    {
        --m_depth;
        if (!m_first) {
            newline();
        }
        m_out += bracket;
        m_first = false;
    }
    // Starts a member ("key": ) of the current object.
    void key(std::string_view k)
    {
        item();
        m_out += '"';
        m_out += k; // keys are ours: plain ASCII
        m_out += "\": ";
    }
    // Starts an element of the current array.
    void element() { item(); }

    void string(std::string_view s)
    {
        bool plain = true;
        for (char c : s) {
            auto u = static_cast<unsigned char>(c);
            if (u < 0x20 || u >= 0x7f || c == '"' || c == '\\') {
                plain = false;
                break;
            }
        }
        if (plain) {
            m_out += '"';
            m_out += s;
            m_out += '"';
        } else {
            m_out += Json(std::string(s)).dump(-1, ' ', false, Json::error_handler_t::replace);
        }
    }
    void optional(const std::optional<std::string>& s)
    {
        if (s) {
            string(*s);
        } else {
            m_out += "null";
        }
    }
    void number(std::uint64_t n)
    {
        char buf[24];
        auto [end, ec] = std::to_chars(buf, buf + sizeof buf, n);
        m_out.append(buf, end);
    }
    void number(const std::optional<std::uint64_t>& n)
    {
        if (n) {
            number(*n);
        } else {
            m_out += "null";
        }
    }
    void boolean(bool b) { m_out += b ? "true" : "false"; }

private:
    void item()
    {
        if (!m_first) {
            m_out += ',';
        }
        m_first = false;
        newline();
    }
    void newline()
    {
        m_out += '\n';
        m_out.append(2 * m_depth, ' ');
    }

    std::string& m_out;
    std::size_t m_depth = 0;
    bool m_first = true;
};

} // namespace

std::string envelope_to_json(const Envelope& e)
{
    std::string out;
    out.reserve(640 + 160 * e.recipients.size());
    PrettyWriter w(out);
    w.open('{');
    w.key("version");
    w.number(static_cast<std::uint64_t>(k_envelope_version));
    w.key("id");
    w.string(e.id);
    w.key("received_at");
    w.string(e.received_at);
    w.key("hostname");
    w.string(e.hostname);
    w.key("client");
    w.open('{');
    w.key("address");
    w.optional(e.client.address);
    w.key("port");
    w.number(e.client.port);
    w.key("hostname");
    w.optional(e.client.hostname);
    w.key("ident");
    w.optional(e.client.ident);
    w.key("helo");
    w.string(e.client.helo);
    w.key("protocol");
    w.string(e.client.protocol);
    if (e.client.tls) {
        w.key("tls");
        w.open('{');
        w.key("version");
        w.string(e.client.tls->version);
        w.key("cipher");
        w.string(e.client.tls->cipher);
        w.close('}');
    }
    if (e.client.auth) {
        w.key("auth");
        w.string(*e.client.auth);
    }
    w.close('}');
    w.key("mail_from");
    w.string(e.mail_from);
    w.key("body");
    w.string(e.body);
    w.key("smtputf8");
    w.boolean(e.smtputf8);
    if (e.dsn_ret) {
        w.key("dsn_ret");
        w.string(*e.dsn_ret);
    }
    if (e.dsn_envid) {
        w.key("dsn_envid");
        w.string(*e.dsn_envid);
    }
    w.key("size");
    w.number(e.size);
    w.key("recipients");
    w.open('[');
    for (const Recipient& r : e.recipients) {
        w.element();
        w.open('{');
        w.key("address");
        w.string(r.address);
        w.key("status");
        w.string(r.status);
        w.key("attempts");
        w.number(r.attempts);
        w.key("last_error");
        w.optional(r.last_error);
        if (r.original) {
            w.key("original");
            w.string(*r.original);
        }
        if (r.notify) {
            w.key("notify");
            w.open('[');
            for (const std::string& k : *r.notify) {
                w.element();
                w.string(k);
            }
            w.close(']');
        }
        if (r.orcpt) {
            w.key("orcpt");
            w.string(*r.orcpt);
        }
        w.close('}');
    }
    w.close(']');
    w.key("attempts");
    w.number(e.attempts);
    w.key("last_attempt");
    w.optional(e.last_attempt);
    w.key("next_attempt");
    w.optional(e.next_attempt);
    w.close('}');
    out += '\n';
    return out;
}


std::string envelope_to_json_line(const Envelope& envelope)
{
    return to_tree(envelope).dump(-1, ' ', false, Json::error_handler_t::replace);
}

std::string json_quote(std::string_view text)
{
    return Json(std::string(text)).dump(-1, ' ', false, Json::error_handler_t::replace);
}

Result<Envelope> envelope_from_json(std::string_view text)
{
    try {
        return from_tree(Json::parse(text.begin(), text.end()));
    } catch (const Invalid& e) {
        return Error{0, e.what};
    } catch (const nlohmann::json::exception& e) {
        return Error{0, std::string("not valid JSON: ") + e.what()};
    }
}

} // namespace smtpspool
