// nfa_doc: one row per verb, one column per antecedent state, then the successor.
#include "nfa_doc.hpp"

#include "smtp/smtp_nfa.hpp"

namespace smtpspool {
namespace {

std::string next_name(Next n)
{
    switch (n) {
    case Next::stay:
        return "unchanged";
    case Next::greeted:
        return "greeted";
    case Next::in_mail:
        return "in_mail";
    case Next::in_rcpt:
        return "in_rcpt";
    case Next::reset:
        return "reset";
    case Next::closing:
        return "closing";
    case Next::restart:
        return "connected";
    case Next::in_bdat:
        return "in_bdat";
    }
    return "";
}

} // namespace

std::string nfa_table_roff()
{
    std::string out = ".TS\nl c c c c c l.\nverb";
    for (std::size_t s = 0; s < k_state_count; ++s) {
        out += "\t" + std::string(state_name(static_cast<State>(s)));
    }
    out += "\tsuccessor\n_\n";
    for (const Rule& r : k_rules) {
        out += std::string(verb_label(r.verb));
        for (std::size_t s = 0; s < k_state_count; ++s) {
            out += allowed(r.verb, static_cast<State>(s)) ? "\tyes" : "\t\\-";
        }
        out += "\t" + next_name(r.next) + "\n";
    }
    out += ".TE\n";
    return out;
}

} // namespace smtpspool
