// smtp_nfa: the table of command ordering, one row per verb: in which states a
// verb is allowed, which guards it needs, what it is refused with otherwise,
// and the state it leads to. This is the only place where command ordering is
// decided; handlers never re-check it.
#pragma once

#include <array>
#include <cstdint>
#include <string_view>

namespace smtpspool {

// States are named after what the session has seen.
enum class State : std::uint8_t {
    connected, // greeting sent, no HELO/EHLO yet
    greeted,   // HELO/EHLO accepted, no transaction open
    in_mail,   // MAIL accepted, no recipient accepted yet
    in_rcpt,   // MAIL and at least one RCPT accepted
    in_bdat,   // BDAT chunks accepted, the one with LAST not yet (RFC 3030 §2)
    denied,    // the client got 554 instead of 220 (RFC 5321 §3.1): only QUIT
};
inline constexpr std::size_t k_state_count = 6;

enum class Verb : std::uint8_t {
    helo,
    ehlo,
    mail,
    rcpt,
    data,
    bdat,
    rset,
    noop,
    quit,
    help,
    vrfy,
    expn,
    starttls,
    auth,
    unimplemented, // recognised verbs we do not offer (502)
    unknown,       // anything else (500)
};
inline constexpr std::size_t k_verb_count = 16;

// The successor of a verb that is allowed and succeeded.
enum class Next : std::uint8_t {
    stay,    // state unchanged (NOOP, HELP, VRFY, ...)
    greeted, // transaction reset, greeting remembered
    in_mail,
    in_rcpt, // only when the handler accepted the recipient
    reset,   // RSET: back to greeted if greeted before, else connected
    closing, // QUIT
    restart, // STARTTLS: back to connected, all but the greeting forgotten (RFC 3207 §4.2)
    message, // DATA: unchanged at 354; the end of the data leads to k_after_message
    in_bdat, // BDAT: unchanged until the chunk's octets are in, then after_chunk
};

// The state after the reply to a message's data (DATA, BDAT LAST, or a chunk
// whose message was refused), whatever that reply: RFC 5321 §4.1.1.4, the
// transaction is over.
inline constexpr State k_after_message = State::greeted;

// The state once every octet of an accepted BDAT chunk is in: in_bdat, or
// k_after_message after the LAST chunk.
constexpr State after_chunk(bool last) { return last ? k_after_message : State::in_bdat; }

// Facts about the session besides its state, which some verbs need (or must
// not have). The session sets them; the table reads them.
enum class Guard : std::uint8_t {
    ehlo,             // the client greeted with EHLO, not HELO
    tls_active,       // the connection is encrypted
    authenticated,    // AUTH succeeded
    tls_required,     // --require-tls applies to this client and TLS is not active yet
    cleartext,        // a network client without TLS (AUTH is not offered to it)
    starttls_offered, // a certificate is configured and the client is on the network
    auth_configured,  // a password check is configured
    rfc821,           // --rfc821: no ESMTP service extensions
};
inline constexpr std::size_t k_guard_count = 8;

using GuardSet = std::uint16_t;

constexpr GuardSet bit(Guard g) { return static_cast<GuardSet>(1u << static_cast<unsigned>(g)); }

// Why a command is refused; each names one reply (replies::refusal).
enum class Refusal : std::uint8_t {
    none, // allowed
    // By state: what is missing.
    greeting,    // 503 send HELO or EHLO first
    mail,        // 503 send MAIL first
    recipient,   // 554 no valid recipients (RFC 5321 §3.3)
    nested_mail, // 503 nested MAIL
    transaction, // 503 not inside a transaction
    last_chunk,  // 503 send BDAT ... LAST or RSET (RFC 3030 §2)
    denied,      // 503 only QUIT (after the 554 greeting)
    // By guard.
    not_offered,   // 502 command not implemented
    needs_ehlo,    // 503 send EHLO before the verb
    tls_active,    // 503 TLS is already active
    authenticated, // 503 already authenticated
    tls_required,  // 530 must issue a STARTTLS command first
    needs_tls,     // 538 encryption required (AUTH in cleartext)
};
inline constexpr std::size_t k_refusal_count = 14;

// One guard of a row: refused with `refusal` unless the guard is `wanted`
// (true: must hold; false: must not). Guards are checked after the state, in
// the order of the row, unless `before_state`: a verb that this configuration
// does not implement is 502 in every state, as the (unimplemented) row is.
// The denied state comes before every guard.
struct Check {
    Guard guard = Guard::ehlo;
    bool wanted = false;
    Refusal refusal = Refusal::none; // none: an unused slot
    bool before_state = false;
};
inline constexpr std::size_t k_max_checks = 4;

struct Rule {
    Verb verb;
    std::string_view name;                    // as on the wire; "" for the catch-all rows
    std::array<Refusal, k_state_count> in;    // per antecedent state: none where allowed
    std::array<Check, k_max_checks> guards;   // in the order they are checked
    Next next;                                // successor when the handler succeeds
};

constexpr std::array<Rule, k_verb_count> make_rules()
{
    using enum Refusal;
    constexpr Refusal ok = none;
    // Allowed outside BDAT (RFC 3030 §2: once BDAT chunks have been sent, the
    // transaction is finished with BDAT LAST or abandoned with RSET or QUIT;
    // nothing else may come between).
    constexpr std::array<Refusal, k_state_count> outside_bdat{ok, ok, ok, ok, last_chunk, denied};
    constexpr std::array<Refusal, k_state_count> everywhere{ok, ok, ok, ok, ok, denied};
    constexpr std::array<Refusal, k_state_count> between_transactions{greeting, ok,         transaction,
                                                                      transaction, last_chunk, denied};
    auto need = [](Guard g, Refusal r) { return Check{g, true, r, false}; };
    auto never = [](Guard g, Refusal r) { return Check{g, false, r, false}; };
    // clang-format off
    return {{
        // verb               name        connected greeted in_mail    in_rcpt      in_bdat     denied
        {Verb::helo,          "HELO",     outside_bdat, {}, Next::greeted},
        {Verb::ehlo,          "EHLO",     outside_bdat, {}, Next::greeted},
        {Verb::mail,          "MAIL",     {greeting, ok,    nested_mail, nested_mail, last_chunk, denied},
                                          {never(Guard::tls_required, tls_required)}, Next::in_mail},
        {Verb::rcpt,          "RCPT",     {greeting, mail,  ok,          ok,          last_chunk, denied}, {}, Next::in_rcpt},
        {Verb::data,          "DATA",     {greeting, mail,  recipient,   ok,          last_chunk, denied}, {}, Next::message},
        // RFC 3030 §2: BDAT where CHUNKING was offered, that is after EHLO.
        {Verb::bdat,          "BDAT",     {greeting, mail,  recipient,   ok,          ok,         denied},
                                          {Check{Guard::rfc821, false, not_offered, true},
                                           need(Guard::ehlo, needs_ehlo)}, Next::in_bdat},
        {Verb::rset,          "RSET",     everywhere, {}, Next::reset},
        {Verb::noop,          "NOOP",     everywhere, {}, Next::stay},
        {Verb::quit,          "QUIT",     {ok,       ok,    ok,          ok,          ok,         ok}, {}, Next::closing},
        {Verb::help,          "HELP",     outside_bdat, {}, Next::stay},
        {Verb::vrfy,          "VRFY",     outside_bdat, {}, Next::stay},
        {Verb::expn,          "EXPN",     outside_bdat, {}, Next::stay},
        {Verb::starttls,      "STARTTLS", between_transactions,
                                          {need(Guard::starttls_offered, not_offered),
                                           never(Guard::tls_active, tls_active),
                                           need(Guard::ehlo, needs_ehlo)}, Next::restart},
        // RFC 4954 §4: after EHLO, once, outside a transaction, and here
        // only inside TLS or from a local client.
        {Verb::auth,          "AUTH",     between_transactions,
                                          {need(Guard::auth_configured, not_offered),
                                           need(Guard::ehlo, needs_ehlo),
                                           never(Guard::authenticated, authenticated),
                                           never(Guard::cleartext, needs_tls)}, Next::stay},
        {Verb::unimplemented, "",         everywhere, {}, Next::stay},
        {Verb::unknown,       "",         everywhere, {}, Next::stay},
    }};
    // clang-format on
}

inline constexpr std::array<Rule, k_verb_count> k_rules = make_rules();

constexpr const Rule& rule_for(Verb v) { return k_rules[static_cast<std::size_t>(v)]; }

// Allowed by state alone (whatever the guards).
constexpr bool allowed(Verb v, State s) { return rule_for(v).in[static_cast<std::size_t>(s)] == Refusal::none; }

constexpr bool holds(GuardSet guards, const Check& c) { return ((guards & bit(c.guard)) != 0) == c.wanted; }

// Why verb v is refused in state s with these guards; Refusal::none if it may
// go to its handler.
constexpr Refusal refusal_for(Verb v, State s, GuardSet guards)
{
    const Rule& r = rule_for(v);
    const Refusal by_state = r.in[static_cast<std::size_t>(s)];
    if (by_state == Refusal::denied) {
        return by_state;
    }
    for (const Check& c : r.guards) {
        if (c.refusal != Refusal::none && c.before_state && !holds(guards, c)) {
            return c.refusal;
        }
    }
    if (by_state != Refusal::none) {
        return by_state;
    }
    for (const Check& c : r.guards) {
        if (c.refusal != Refusal::none && !c.before_state && !holds(guards, c)) {
            return c.refusal;
        }
    }
    return Refusal::none;
}

// Every verb has exactly one row, at the index of its enumerator; QUIT is
// allowed everywhere (a client can always leave); the denied state allows
// nothing else.
constexpr bool rules_are_well_formed()
{
    for (std::size_t i = 0; i < k_rules.size(); ++i) {
        const Rule& r = k_rules[i];
        if (static_cast<std::size_t>(r.verb) != i) {
            return false;
        }
        const Refusal in_denied = r.in[static_cast<std::size_t>(State::denied)];
        if ((r.verb == Verb::quit) != (in_denied == Refusal::none)) {
            return false;
        }
        for (const Check& c : r.guards) {
            if (c.refusal == Refusal::denied || (c.refusal != Refusal::none && c.refusal < Refusal::not_offered)) {
                return false; // guards give guard refusals
            }
        }
    }
    for (Refusal r : rule_for(Verb::quit).in) {
        if (r != Refusal::none) {
            return false;
        }
    }
    return true;
}
static_assert(rules_are_well_formed(), "k_rules: one row per Verb in enum order, QUIT allowed everywhere");

// The state after an allowed verb's handler succeeded in state s (for DATA
// and BDAT, the state until their octets are in).
constexpr State successor(Verb v, State s)
{
    switch (rule_for(v).next) {
    case Next::stay:
    case Next::closing:
    case Next::message:
    case Next::in_bdat:
        return s;
    case Next::greeted:
        return State::greeted;
    case Next::in_mail:
        return State::in_mail;
    case Next::in_rcpt:
        return State::in_rcpt;
    case Next::reset:
        return s == State::connected ? State::connected : State::greeted;
    case Next::restart:
        return State::connected;
    }
    return s;
}

constexpr std::string_view state_name(State s)
{
    constexpr std::array<std::string_view, k_state_count> names{"connected", "greeted", "in_mail",
                                                                "in_rcpt",   "in_bdat", "denied"};
    return names[static_cast<std::size_t>(s)];
}

constexpr std::string_view guard_name(Guard g)
{
    constexpr std::array<std::string_view, k_guard_count> names{
        "ehlo",      "tls_active",       "authenticated",   "tls_required",
        "cleartext", "starttls_offered", "auth_configured", "rfc821"};
    return names[static_cast<std::size_t>(g)];
}

constexpr std::string_view refusal_name(Refusal r)
{
    constexpr std::array<std::string_view, k_refusal_count> names{
        "yes",         "greeting",   "mail",       "recipient",  "nested_mail",   "transaction", "last_chunk",
        "denied",      "not_offered", "needs_ehlo", "tls_active", "authenticated", "tls_required", "needs_tls"};
    return names[static_cast<std::size_t>(r)];
}

constexpr std::string_view verb_label(Verb v)
{
    if (v == Verb::unimplemented) {
        return "(unimplemented)";
    }
    if (v == Verb::unknown) {
        return "(unknown)";
    }
    return rule_for(v).name;
}

} // namespace smtpspool
