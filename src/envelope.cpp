// envelope: hand-written mapping between Envelope and JSON (nlohmann ordered_json).
#include "envelope.hpp"

#include "clock.hpp"

#include <nlohmann/json.hpp>

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
        recipients.push_back(std::move(rc));
    }
    Json client{{"address", optional_string(e.client.address)},
                {"port", e.client.port ? Json(*e.client.port) : Json(nullptr)},
                {"hostname", optional_string(e.client.hostname)},
                {"ident", optional_string(e.client.ident)},
                {"helo", e.client.helo},
                {"protocol", e.client.protocol}};
    return Json{{"version", k_envelope_version},
                {"id", e.id},
                {"received_at", e.received_at},
                {"hostname", e.hostname},
                {"client", client},
                {"mail_from", e.mail_from},
                {"body", e.body},
                {"smtputf8", e.smtputf8},
                {"size", e.size},
                {"recipients", recipients},
                {"attempts", e.attempts},
                {"last_attempt", optional_string(e.last_attempt)},
                {"next_attempt", optional_string(e.next_attempt)}};
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
    e.mail_from = get_string(j, "mail_from");
    e.body = get_string(j, "body");
    require_one_of(e.body, "body", {"7BIT", "8BITMIME"});
    const Json& utf8 = member(j, "smtputf8");
    if (!utf8.is_boolean()) {
        throw Invalid{"\"smtputf8\" must be true or false"};
    }
    e.smtputf8 = utf8.get<bool>();
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

} // namespace

bool is_valid_queue_id(std::string_view id)
{
    if (id.empty() || id.size() > 128) {
        return false;
    }
    for (char c : id) {
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
        if (!ok) {
            return false;
        }
    }
    return true;
}

std::string envelope_to_json(const Envelope& envelope)
{
    return to_tree(envelope).dump(2, ' ', false, Json::error_handler_t::replace) + "\n";
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
