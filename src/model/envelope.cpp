// envelope: the message's envelope as the session builds it and the spool
// keeps it (smtpspool-spool(5) describes its JSON form, spool/envelope_json).
#include "model/envelope.hpp"

#include "base/limits.hpp"

#include <algorithm>
#include <array>

namespace smtpspool {

namespace {

// The value of `all` whose name is `name`.
template <typename T, std::size_t N>
std::optional<T> by_name(const std::array<T, N>& all, std::string_view (*name_of)(T), std::string_view name)
{
    for (T value : all) {
        if (name_of(value) == name) {
            return value;
        }
    }
    return std::nullopt;
}

} // namespace

std::string_view body_name(Body body)
{
    switch (body) {
    case Body::seven_bit:
        break;
    case Body::eight_bit_mime:
        return "8BITMIME";
    case Body::binary_mime:
        return "BINARYMIME";
    }
    return "7BIT";
}

std::optional<Body> body_from_name(std::string_view name)
{
    return by_name(std::array{Body::seven_bit, Body::eight_bit_mime, Body::binary_mime}, body_name, name);
}

std::string_view status_name(RecipientStatus status)
{
    switch (status) {
    case RecipientStatus::pending:
        break;
    case RecipientStatus::delivered:
        return "delivered";
    case RecipientStatus::failed:
        return "failed";
    }
    return "pending";
}

std::optional<RecipientStatus> status_from_name(std::string_view name)
{
    return by_name(std::array{RecipientStatus::pending, RecipientStatus::delivered, RecipientStatus::failed},
                   status_name, name);
}

bool is_valid_last_hop(std::string_view hop)
{
    if (hop.empty() || hop.size() > limits::k_max_last_hop) {
        return false;
    }
    for (char c : hop) {
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
                  c == '-' || c == '_' || c == ':' || c == '[' || c == ']';
        if (!ok) {
            return false;
        }
    }
    return true;
}

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

std::vector<Recipient> new_recipients(const std::vector<Recipient>& have, std::vector<std::string> addresses,
                                      std::string_view named)
{
    std::vector<Recipient> added;
    auto known = [&](const std::string& a) {
        auto same = [&](const Recipient& r) { return r.address == a; };
        return std::any_of(have.begin(), have.end(), same) || std::any_of(added.begin(), added.end(), same);
    };
    for (std::string& a : addresses) {
        if (!known(a)) {
            Recipient r;
            r.address = std::move(a);
            if (r.address != named) {
                r.original = std::string(named);
            }
            added.push_back(std::move(r));
        }
    }
    return added;
}

} // namespace smtpspool
