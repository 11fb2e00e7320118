// smtp_nfa: the table of allowed antecedent states, one row per verb.
// This is the only place where command ordering is decided; handlers never re-check it.
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
};
inline constexpr std::size_t k_state_count = 5;

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

// The successor of a verb that is allowed.
enum class Next : std::uint8_t {
    stay,    // state unchanged (NOOP, HELP, VRFY, ...)
    greeted, // transaction reset, greeting remembered
    in_mail,
    in_rcpt, // only when the handler accepted the recipient
    reset,   // RSET: back to greeted if greeted before, else connected
    closing, // QUIT
    restart, // STARTTLS: back to connected, all but the greeting forgotten (RFC 3207 §4.2)
    in_bdat, // BDAT: in_bdat after a chunk, greeted after the LAST one
};

using StateSet = std::uint8_t;

constexpr StateSet bit(State s) { return static_cast<StateSet>(1u << static_cast<unsigned>(s)); }

template <typename... S>
constexpr StateSet any_of(S... s)
{
    return static_cast<StateSet>((bit(s) | ...));
}

inline constexpr StateSet k_every_state =
    any_of(State::connected, State::greeted, State::in_mail, State::in_rcpt, State::in_bdat);
// RFC 3030 §2: once BDAT chunks have been sent, the transaction is finished
// with BDAT LAST or abandoned with RSET (or QUIT); nothing else may come between.
inline constexpr StateSet k_outside_bdat = any_of(State::connected, State::greeted, State::in_mail, State::in_rcpt);

struct Rule {
    Verb verb;
    std::string_view name; // as on the wire; "" for the catch-all rows
    StateSet from;         // allowed antecedent states
    Next next;             // successor when the handler succeeds
};

// clang-format off
inline constexpr std::array<Rule, k_verb_count> k_rules{{
    // verb               name    allowed antecedent states                      successor
    {Verb::helo,          "HELO", k_outside_bdat,                                Next::greeted},
    {Verb::ehlo,          "EHLO", k_outside_bdat,                                Next::greeted},
    {Verb::mail,          "MAIL", any_of(State::greeted),                        Next::in_mail},
    {Verb::rcpt,          "RCPT", any_of(State::in_mail, State::in_rcpt),        Next::in_rcpt},
    {Verb::data,          "DATA", any_of(State::in_rcpt),                        Next::greeted},
    {Verb::bdat,          "BDAT", any_of(State::in_rcpt, State::in_bdat),        Next::in_bdat},
    {Verb::rset,          "RSET", k_every_state,                                 Next::reset},
    {Verb::noop,          "NOOP", k_every_state,                                 Next::stay},
    {Verb::quit,          "QUIT", k_every_state,                                 Next::closing},
    {Verb::help,          "HELP", k_outside_bdat,                                Next::stay},
    {Verb::vrfy,          "VRFY", k_outside_bdat,                                Next::stay},
    {Verb::expn,          "EXPN", k_outside_bdat,                                Next::stay},
    {Verb::starttls,  "STARTTLS", any_of(State::greeted),                        Next::restart},
    {Verb::auth,          "AUTH", any_of(State::greeted),                        Next::stay},
    {Verb::unimplemented, "",     k_every_state,                                 Next::stay},
    {Verb::unknown,       "",     k_every_state,                                 Next::stay},
}};
// clang-format on

constexpr const Rule& rule_for(Verb v) { return k_rules[static_cast<std::size_t>(v)]; }

constexpr bool allowed(Verb v, State s) { return (rule_for(v).from & bit(s)) != 0; }

// Every verb has exactly one row, at the index of its enumerator.
constexpr bool rules_are_indexed()
{
    for (std::size_t i = 0; i < k_rules.size(); ++i) {
        if (static_cast<std::size_t>(k_rules[i].verb) != i) {
            return false;
        }
    }
    return true;
}
static_assert(rules_are_indexed(), "k_rules must list every Verb once, in enum order");

// The state after an allowed verb succeeded in state s.
constexpr State successor(Verb v, State s)
{
    switch (rule_for(v).next) {
    case Next::stay:
    case Next::closing:
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
    case Next::in_bdat:
        return State::in_bdat;
    }
    return s;
}

// Why a verb that is not allowed in s was refused: the missing antecedent.
enum class Missing : std::uint8_t { greeting, mail, recipient, no_nested_mail, no_transaction, last_chunk };

constexpr Missing missing_for(Verb v, State s)
{
    if (s == State::in_bdat) {
        return Missing::last_chunk;
    }
    if ((v == Verb::starttls || v == Verb::auth) && s != State::connected) {
        return Missing::no_transaction;
    }
    if (v == Verb::mail) {
        return s == State::connected ? Missing::greeting : Missing::no_nested_mail;
    }
    if (s == State::connected) {
        return Missing::greeting;
    }
    if ((v == Verb::data || v == Verb::bdat) && s == State::in_mail) {
        return Missing::recipient;
    }
    return Missing::mail;
}

constexpr std::string_view state_name(State s)
{
    constexpr std::array<std::string_view, k_state_count> names{"connected", "greeted", "in_mail", "in_rcpt",
                                                                "in_bdat"};
    return names[static_cast<std::size_t>(s)];
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
