// address_list: parsing and matching the sender deny list and the local users.
#include "policy/address_list.hpp"

#include "smtp/smtp_address.hpp"

#include <algorithm>

namespace smtpspool {
namespace {

bool printable_word(std::string_view s)
{
    return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) {
        auto u = static_cast<unsigned char>(c);
        return u > 0x20 && u != 0x7f;
    });
}

} // namespace

std::variant<SenderList, ListError> SenderList::parse(std::string_view text)
{
    SenderList list;
    std::optional<ListError> error;
    for_each_entry(text, [&](std::size_t line, std::string_view entry) {
        if (error) {
            return;
        }
        std::size_t at = entry.rfind('@');
        if (!printable_word(entry) || at == std::string_view::npos) {
            error = ListError{line, "expected user@domain, @domain or @.domain: '" + std::string(entry) + "'"};
            return;
        }
        std::string domain = ascii_lower(entry.substr(at + 1));
        bool parent = !domain.empty() && domain.front() == '.';
        if (parent) {
            domain.erase(0, 1);
        }
        if (!is_domain(domain) && !is_address_literal(domain)) {
            error = ListError{line, "not a domain: '" + std::string(entry.substr(at + 1)) + "'"};
            return;
        }
        if (at == 0) {
            (parent ? list.m_parents : list.m_domains).insert(domain);
        } else if (parent) {
            error = ListError{line, "@.domain takes no local part: '" + std::string(entry) + "'"};
        } else {
            list.m_addresses.insert(ascii_lower(entry.substr(0, at)) + "@" + domain);
        }
    });
    if (error) {
        return *error;
    }
    return list;
}

bool SenderList::matches(std::string_view address) const
{
    std::size_t at = address.rfind('@');
    if (address.empty() || at == std::string_view::npos) {
        return false;
    }
    std::string lower = ascii_lower(address);
    if (m_addresses.count(lower) > 0) {
        return true;
    }
    std::string_view domain = std::string_view(lower).substr(at + 1);
    if (m_domains.count(std::string(domain)) > 0) {
        return true;
    }
    for (std::size_t dot = domain.find('.'); dot != std::string_view::npos; dot = domain.find('.', dot + 1)) {
        if (m_parents.count(std::string(domain.substr(dot + 1))) > 0) {
            return true;
        }
    }
    return false;
}

std::variant<LocalUsers, ListError> LocalUsers::parse(std::string_view text)
{
    LocalUsers users;
    std::optional<ListError> error;
    for_each_entry(text, [&](std::size_t line, std::string_view entry) {
        if (!error && (!printable_word(entry) || entry.find('@') != std::string_view::npos)) {
            error = ListError{line, "expected one local part (no '@', no spaces): '" + std::string(entry) + "'"};
        }
        if (!error) {
            users.m_users.insert(canonical_local_part(entry));
        }
    });
    if (error) {
        return *error;
    }
    return users;
}

bool LocalUsers::contains(std::string_view local_part) const
{
    return m_users.count(canonical_local_part(local_part)) > 0;
}

} // namespace smtpspool
