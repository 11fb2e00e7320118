// envelope_json: envelope.json read (nlohmann's parser) and written (a
// streaming pretty writer, and nlohmann's ordered_json for mailq's lines), all
// three driven by one list of fields (visit_fields): a new field is one line
// there.
#include "spool/envelope_json.hpp"

#include "base/clock.hpp"
#include "base/limits.hpp"
#include "smtp/dsn.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <array>
#include <charconv>
#include <initializer_list>
#include <utility>
#include <optional>
#include <vector>

namespace smtpspool {
namespace {

using Json = nlohmann::ordered_json;

struct Invalid {
    std::string what;
};

// How a field is written and what reading accepts.
enum class Presence {
    required,   // always written; must be there
    nullable,   // always written, null when unset; must be there, may be null
    late,       // always written (null when unset); may be absent (added after version 1 first shipped)
    when_set,   // written only when set; when there, must have a value
    when_set_or_null, // written only when set; when there, may be null
};

using Check = void (*)(const std::string& value);

void check_queue_id(const std::string& id)
{
    if (!is_valid_queue_id(id)) {
        throw Invalid{"\"id\" is not a valid queue id"};
    }
}

void one_of(const std::string& value, const char* key, std::initializer_list<const char*> allowed)
{
    for (const char* a : allowed) {
        if (value == a) {
            return;
        }
    }
    throw Invalid{std::string("\"") + key + "\" has an unknown value"};
}

void check_protocol(const std::string& v) { one_of(v, "protocol", {"SMTP", "ESMTP", "local"}); }
void check_ret(const std::string& v) { one_of(v, "dsn_ret", {"FULL", "HDRS"}); }

void check_envid(const std::string& v)
{
    std::string why;
    if (parse_envid(xtext_encode(v), why) != v) {
        throw Invalid{"\"dsn_envid\" must be printable ASCII, at most " + std::to_string(limits::k_max_envid) +
                      " characters as xtext"};
    }
}

void check_orcpt(const std::string& v)
{
    std::string why;
    if (parse_orcpt(orcpt_parameter(v), why) != v) {
        throw Invalid{"\"orcpt\" must be addr-type;address of printable ASCII"};
    }
}

// last_tls's texts: printable ASCII, at most k_max_delivery_tls_text octets.
void check_tls_text(const std::string& v)
{
    bool printable = std::all_of(v.begin(), v.end(), [](char c) { return c >= 0x20 && c < 0x7f; });
    if (!printable || v.size() > k_max_delivery_tls_text) {
        throw Invalid{"\"last_tls\" texts must be printable ASCII, at most " +
                      std::to_string(k_max_delivery_tls_text) + " octets"};
    }
}

template <const char* Key>
void check_time(const std::string& v)
{
    if (!parse_rfc3339_utc(v)) {
        throw Invalid{std::string("\"") + Key + "\" is not an RFC 3339 UTC time"};
    }
}
constexpr char k_received_at[] = "received_at";
constexpr char k_last_attempt[] = "last_attempt";
constexpr char k_next_attempt[] = "next_attempt";
constexpr char k_delay_notified[] = "delay_notified";

void check_last_hop(const std::string& v)
{
    if (!is_valid_last_hop(v)) {
        throw Invalid{"\"last_hop\" must be 1 to " + std::to_string(limits::k_max_last_hop) +
                      " letters, digits and . - _ : [ ]"};
    }
}

// RFC 3461 §4.1: NEVER alone, or SUCCESS, FAILURE, DELAY each at most once.
void check_notify(const std::vector<std::string>& keywords)
{
    std::string joined;
    for (const std::string& k : keywords) {
        joined += (joined.empty() ? "" : ",") + k;
    }
    std::string why;
    auto parsed = parse_notify(joined, why);
    if (!parsed || *parsed != keywords) {
        throw Invalid{"\"notify\" must be [\"NEVER\"] or some of \"SUCCESS\", \"FAILURE\", \"DELAY\""};
    }
}

// The one list of envelope.json's fields, in the order they are written.
// E is Envelope (reading) or const Envelope (writing); V reads or writes.
template <class E, class V>
void visit_fields(E& e, V& v)
{
    v.version("version");
    v.text("id", e.id, Presence::required, check_queue_id);
    v.text("received_at", e.received_at, Presence::required, check_time<k_received_at>);
    v.text("hostname", e.hostname, Presence::required);
    v.object("client", [&] {
        v.text("address", e.client.address, Presence::nullable);
        v.port("port", e.client.port);
        v.text("hostname", e.client.hostname, Presence::nullable);
        v.text("ident", e.client.ident, Presence::nullable);
        v.text("helo", e.client.helo, Presence::required);
        v.text("protocol", e.client.protocol, Presence::required, check_protocol);
        v.optional_object("tls", e.client.tls, [&](auto& tls) {
            v.text("version", tls.version, Presence::required);
            v.text("cipher", tls.cipher, Presence::required);
        });
        v.text("auth", e.client.auth, Presence::when_set);
    });
    v.text("mail_from", e.mail_from, Presence::required);
    v.named("body", e.body, body_name, body_from_name);
    v.flag("smtputf8", e.smtputf8, Presence::required);
    v.text("dsn_ret", e.dsn_ret, Presence::when_set, check_ret);
    v.text("dsn_envid", e.dsn_envid, Presence::when_set, check_envid);
    v.flag("dsn_limited", e.dsn_limited, Presence::when_set);
    v.count("size", e.size, Presence::required);
    v.optional_named("content", e.content, content_name, content_from_name);
    v.array("recipients", e.recipients, [&](auto& r) {
        v.text("address", r.address, Presence::required);
        v.named("status", r.status, status_name, status_from_name);
        v.count("attempts", r.attempts, Presence::required);
        v.text("last_error", r.last_error, Presence::nullable);
        v.optional_object("last_tls", r.last_tls, [&](auto& tls) {
            v.text("version", tls.version, Presence::required, check_tls_text);
            v.text("cipher", tls.cipher, Presence::required, check_tls_text);
            v.flag("verified", tls.verified, Presence::required);
        });
        v.text("last_hop", r.last_hop, Presence::when_set, check_last_hop);
        v.text("original", r.original, Presence::when_set_or_null);
        v.keywords("notify", r.notify, check_notify);
        v.text("orcpt", r.orcpt, Presence::when_set, check_orcpt);
    });
    v.count("attempts", e.attempts, Presence::late);
    v.text("last_attempt", e.last_attempt, Presence::late, check_time<k_last_attempt>);
    v.text("next_attempt", e.next_attempt, Presence::late, check_time<k_next_attempt>);
    v.flag("held", e.held, Presence::when_set);
    v.text("delay_notified", e.delay_notified, Presence::when_set, check_time<k_delay_notified>);
}

// Builds the ordered_json tree of an envelope.
class Writer {
public:
    explicit Writer(Json& root) : m_current(&root) {}

    void version(const char* key) { (*m_current)[key] = k_envelope_version; }
    void text(const char* key, const std::string& value, Presence, Check = nullptr) { (*m_current)[key] = value; }
    void text(const char* key, const std::optional<std::string>& value, Presence presence, Check = nullptr)
    {
        if (value) {
            (*m_current)[key] = *value;
        } else if (presence == Presence::nullable || presence == Presence::late) {
            (*m_current)[key] = nullptr;
        }
    }
    void port(const char* key, const std::optional<std::uint64_t>& value)
    {
        (*m_current)[key] = value ? Json(*value) : Json(nullptr);
    }
    template <class T>
    void named(const char* key, T value, std::string_view (*name)(T), std::optional<T> (*)(std::string_view))
    {
        (*m_current)[key] = std::string(name(value));
    }
    template <class T>
    void optional_named(const char* key, const std::optional<T>& value, std::string_view (*name)(T),
                        std::optional<T> (*)(std::string_view))
    {
        if (value) {
            (*m_current)[key] = std::string(name(*value));
        }
    }
    void count(const char* key, std::uint64_t value, Presence) { (*m_current)[key] = value; }
    void flag(const char* key, bool value, Presence presence)
    {
        if (value || presence != Presence::when_set) {
            (*m_current)[key] = value;
        }
    }
    void keywords(const char* key, const std::optional<std::vector<std::string>>& value, void (*)(const std::vector<std::string>&))
    {
        if (value) {
            (*m_current)[key] = *value;
        }
    }
    template <class F>
    void object(const char* key, F&& fields)
    {
        Json child = Json::object();
        within(child, fields);
        (*m_current)[key] = std::move(child);
    }
    template <class T, class F>
    void optional_object(const char* key, const std::optional<T>& value, F&& fields)
    {
        if (value) {
            Json child = Json::object();
            within(child, [&] { fields(*value); });
            (*m_current)[key] = std::move(child);
        }
    }
    template <class T, class F>
    void array(const char* key, const std::vector<T>& items, F&& fields)
    {
        Json list = Json::array();
        for (const T& item : items) {
            Json child = Json::object();
            within(child, [&] { fields(item); });
            list.push_back(std::move(child));
        }
        (*m_current)[key] = std::move(list);
    }

private:
    template <class F>
    void within(Json& child, F&& fields)
    {
        Json* outer = std::exchange(m_current, &child);
        fields();
        m_current = outer;
    }
    Json* m_current;
};

// Writes envelope.json directly, pretty-printed: the same octets as the
// tree's dump(2) plus a newline (a unit test compares them), at about half
// the instructions per message on the receiving hot path (bench/). A string
// of printable ASCII other than '"' and '\\' is written as it is; any other
// goes through nlohmann's escaping (and its UTF-8 replacement).
class PrettyWriter {
public:
    explicit PrettyWriter(std::string& out) : m_out(out) {}

    void version(const char* key)
    {
        start(key);
        number(static_cast<std::uint64_t>(k_envelope_version));
    }
    void text(const char* key, const std::string& value, Presence, Check = nullptr)
    {
        start(key);
        string(value);
    }
    void text(const char* key, const std::optional<std::string>& value, Presence presence, Check = nullptr)
    {
        if (value) {
            start(key);
            string(*value);
        } else if (presence == Presence::nullable || presence == Presence::late) {
            start(key);
            m_out += "null";
        }
    }
    template <class T>
    void named(const char* key, T value, std::string_view (*name)(T), std::optional<T> (*)(std::string_view))
    {
        start(key);
        string(name(value));
    }
    template <class T>
    void optional_named(const char* key, const std::optional<T>& value, std::string_view (*name)(T),
                        std::optional<T> (*)(std::string_view))
    {
        if (value) {
            start(key);
            string(name(*value));
        }
    }
    void port(const char* key, const std::optional<std::uint64_t>& value)
    {
        start(key);
        if (value) {
            number(*value);
        } else {
            m_out += "null";
        }
    }
    void count(const char* key, std::uint64_t value, Presence)
    {
        start(key);
        number(value);
    }
    void flag(const char* key, bool value, Presence presence)
    {
        if (!value && presence == Presence::when_set) {
            return;
        }
        start(key);
        m_out += value ? "true" : "false";
    }
    void keywords(const char* key, const std::optional<std::vector<std::string>>& value,
                  void (*)(const std::vector<std::string>&))
    {
        if (!value) {
            return;
        }
        start(key);
        open('[');
        for (const std::string& word : *value) {
            item();
            string(word);
        }
        close(']');
    }
    template <class F>
    void object(const char* key, F&& fields)
    {
        start(key);
        open('{');
        fields();
        close('}');
    }
    template <class T, class F>
    void optional_object(const char* key, const std::optional<T>& value, F&& fields)
    {
        if (value) {
            object(key, [&] { fields(*value); });
        }
    }
    template <class T, class F>
    void array(const char* key, const std::vector<T>& items, F&& fields)
    {
        start(key);
        open('[');
        for (const T& item_value : items) {
            item();
            open('{');
            fields(item_value);
            close('}');
        }
        close(']');
    }
    void open_root() { open('{'); }
    void close_root()
    {
        close('}');
        m_out += '\n';
    }

private:
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
    // A member ("key": ) of the current object; keys are ours, plain ASCII.
    void start(const char* key)
    {
        item();
        m_out += '"';
        m_out += key;
        m_out += "\": ";
    }
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
    void number(std::uint64_t n)
    {
        char buf[24];
        auto [end, ec] = std::to_chars(buf, buf + sizeof buf, n);
        m_out.append(buf, end);
    }

    std::string& m_out;
    std::size_t m_depth = 0;
    bool m_first = true;
};

// Reads an envelope from a tree, checking every field.
class Reader {
public:
    explicit Reader(const Json& root) : m_current(&root)
    {
        if (!root.is_object()) {
            throw Invalid{"not a JSON object"};
        }
    }

    void version(const char* key)
    {
        const Json& v = member(key);
        if (!v.is_number_integer() || v.get<long long>() != k_envelope_version) {
            throw Invalid{"unsupported envelope version"};
        }
    }
    void text(const char* key, std::string& value, Presence, Check check = nullptr)
    {
        value = string_of(member(key), key);
        if (check != nullptr) {
            check(value);
        }
    }
    void text(const char* key, std::optional<std::string>& value, Presence presence, Check check = nullptr)
    {
        const Json* v = find(key);
        if (v == nullptr) {
            if (presence == Presence::required || presence == Presence::nullable) {
                throw missing(key);
            }
            value.reset();
            return;
        }
        bool null_ok = presence != Presence::when_set;
        if (v->is_null() && null_ok) {
            value.reset();
            return;
        }
        if (!v->is_string()) {
            throw Invalid{std::string("\"") + key + "\" must be a string" + (null_ok ? " or null" : "")};
        }
        value = v->get<std::string>();
        if (check != nullptr) {
            check(*value);
        }
    }
    template <class T>
    void named(const char* key, T& value, std::string_view (*)(T), std::optional<T> (*from_name)(std::string_view))
    {
        auto parsed = from_name(string_of(member(key), key));
        if (!parsed) {
            throw Invalid{std::string("\"") + key + "\" has an unknown value"};
        }
        value = *parsed;
    }
    // Written only when known: absent is unknown; when there, a known name.
    template <class T>
    void optional_named(const char* key, std::optional<T>& value, std::string_view (*)(T),
                        std::optional<T> (*from_name)(std::string_view))
    {
        const Json* v = find(key);
        if (v == nullptr) {
            value.reset();
            return;
        }
        auto parsed = from_name(string_of(*v, key));
        if (!parsed) {
            throw Invalid{std::string("\"") + key + "\" has an unknown value"};
        }
        value = *parsed;
    }
    void port(const char* key, std::optional<std::uint64_t>& value)
    {
        const Json& v = member(key);
        if (v.is_null()) {
            value.reset();
        } else if (v.is_number_unsigned() && v.get<std::uint64_t>() <= 65535) {
            value = v.get<std::uint64_t>();
        } else {
            throw Invalid{"\"port\" must be a port number or null"};
        }
    }
    void count(const char* key, std::uint64_t& value, Presence presence)
    {
        const Json* v = find(key);
        if (v == nullptr && presence == Presence::late) {
            value = 0;
            return;
        }
        if (v == nullptr) {
            throw missing(key);
        }
        if (!v->is_number_unsigned()) {
            throw Invalid{std::string("\"") + key + "\" must be a non-negative integer"};
        }
        value = v->get<std::uint64_t>();
    }
    // A flag written only when set is false when absent.
    void flag(const char* key, bool& value, Presence presence)
    {
        const Json* v = find(key);
        if (v == nullptr && presence == Presence::when_set) {
            value = false;
            return;
        }
        if (v == nullptr) {
            throw missing(key);
        }
        if (!v->is_boolean()) {
            throw Invalid{std::string("\"") + key + "\" must be true or false"};
        }
        value = v->get<bool>();
    }
    void keywords(const char* key, std::optional<std::vector<std::string>>& value,
                  void (*check)(const std::vector<std::string>&))
    {
        const Json* v = find(key);
        if (v == nullptr) {
            value.reset();
            return;
        }
        std::vector<std::string> words;
        bool strings = v->is_array();
        for (std::size_t i = 0; strings && i < v->size(); ++i) {
            strings = (*v)[i].is_string();
            if (strings) {
                words.push_back((*v)[i].get<std::string>());
            }
        }
        if (!strings) {
            words.clear();
        }
        check(words);
        value = std::move(words);
    }
    template <class F>
    void object(const char* key, F&& fields)
    {
        const Json& child = member(key);
        if (!child.is_object()) {
            throw Invalid{std::string("\"") + key + "\" must be an object"};
        }
        within(child, fields);
    }
    template <class T, class F>
    void optional_object(const char* key, std::optional<T>& value, F&& fields)
    {
        const Json* child = find(key);
        if (child == nullptr) {
            value.reset();
            return;
        }
        if (!child->is_object()) {
            throw Invalid{std::string("\"") + key + "\" must be an object"};
        }
        T item{};
        within(*child, [&] { fields(item); });
        value = std::move(item);
    }
    template <class T, class F>
    void array(const char* key, std::vector<T>& items, F&& fields)
    {
        const Json& list = member(key);
        if (!list.is_array() || list.empty()) {
            throw Invalid{std::string("\"") + key + "\" must be a non-empty array"};
        }
        items.clear();
        for (const Json& child : list) {
            if (!child.is_object()) {
                throw Invalid{"a recipient must be an object"};
            }
            T item{};
            within(child, [&] { fields(item); });
            items.push_back(std::move(item));
        }
    }

private:
    static Invalid missing(const char* key) { return Invalid{std::string("missing key \"") + key + "\""}; }
    const Json* find(const char* key) const
    {
        auto it = m_current->find(key);
        return it == m_current->end() ? nullptr : &*it;
    }
    const Json& member(const char* key) const
    {
        const Json* v = find(key);
        if (v == nullptr) {
            throw missing(key);
        }
        return *v;
    }
    static std::string string_of(const Json& v, const char* key)
    {
        if (!v.is_string()) {
            throw Invalid{std::string("\"") + key + "\" must be a string"};
        }
        return v.get<std::string>();
    }
    template <class F>
    void within(const Json& child, F&& fields)
    {
        const Json* outer = std::exchange(m_current, &child);
        fields();
        m_current = outer;
    }
    const Json* m_current;
};

Json to_tree(const Envelope& e)
{
    Json root = Json::object();
    Writer w(root);
    visit_fields(e, w);
    return root;
}

} // namespace

std::string envelope_to_json(const Envelope& envelope)
{
    std::string out;
    out.reserve(640 + 160 * envelope.recipients.size());
    PrettyWriter w(out);
    w.open_root();
    visit_fields(envelope, w);
    w.close_root();
    return out;
}

std::string envelope_to_json_line(const Envelope& envelope)
{
    return to_tree(envelope).dump(-1, ' ', false, Json::error_handler_t::replace);
}

std::string json_object_line(std::initializer_list<std::pair<const char*, std::string_view>> members)
{
    Json j = Json::object();
    for (const auto& [key, value] : members) {
        j[key] = std::string(value);
    }
    return j.dump(-1, ' ', false, Json::error_handler_t::replace);
}

std::string json_string(std::string_view text)
{
    return Json(std::string(text)).dump(-1, ' ', false, Json::error_handler_t::replace);
}

Result<Envelope> envelope_from_json(std::string_view text)
{
    try {
        Json tree = Json::parse(text.begin(), text.end());
        Envelope e;
        Reader r(tree);
        visit_fields(e, r);
        return e;
    } catch (const Invalid& e) {
        return Error{0, e.what};
    } catch (const nlohmann::json::exception& e) {
        return Error{0, std::string("not valid JSON: ") + e.what()};
    }
}

} // namespace smtpspool
