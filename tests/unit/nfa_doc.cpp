// nfa_doc: the man page's tables and the golden matrix, from k_rules.
#include "nfa_doc.hpp"

#include "smtp/smtp_nfa.hpp"
#include "smtp/smtp_reply.hpp"

#include <array>

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
    case Next::message:
        return "greeted"; // after the reply to the data, not at 354
    case Next::in_bdat:
        return "in_bdat";
    }
    return "";
}

// The state refusals, short enough for the table's cells.
std::string cell_label(Refusal r)
{
    switch (r) {
    case Refusal::none:
        return "yes";
    case Refusal::greeting:
        return "G";
    case Refusal::mail:
        return "M";
    case Refusal::recipient:
        return "R";
    case Refusal::nested_mail:
        return "N";
    case Refusal::transaction:
        return "T";
    case Refusal::last_chunk:
        return "L";
    case Refusal::denied:
        return "D";
    default:
        return std::string(refusal_name(r));
    }
}

std::string guard_meaning(Guard g)
{
    switch (g) {
    case Guard::ehlo:
        return "the client greeted with EHLO, not HELO";
    case Guard::tls_active:
        return "the connection is encrypted";
    case Guard::authenticated:
        return "AUTH succeeded";
    case Guard::tls_required:
        return "\\-\\-require\\-tls applies to this client and TLS is not active yet";
    case Guard::cleartext:
        return "a network client without TLS";
    case Guard::starttls_offered:
        return "a certificate is configured and the client is on the network";
    case Guard::auth_configured:
        return "a password check is configured";
    case Guard::rfc821:
        return "\\-\\-rfc821 was given";
    }
    return "";
}

// tbl(1) data: a backslash starts an escape; a leading dot or quote a request.
std::string roff_text(std::string_view s)
{
    std::string out;
    for (char c : s) {
        if (c == '\\') {
            out += "\\e";
        } else if (c == '-') {
            out += "\\-";
        } else {
            out.push_back(c);
        }
    }
    if (!out.empty() && (out[0] == '.' || out[0] == '\'')) {
        out.insert(0, "\\&");
    }
    return out;
}

// The verb a reply names, in italics.
std::string with_verb(std::string s)
{
    if (auto p = s.find("VERB"); p != std::string::npos) {
        s.replace(p, 4, "\\fIverb\\fP");
    }
    return s;
}

std::string reply_text(const Reply& r)
{
    std::string s = std::to_string(r.code);
    if (!r.status.empty()) {
        s += " " + r.status;
    }
    return s + " " + r.text;
}

} // namespace

std::string nfa_table_roff()
{
    // The states: which verbs each allows, and why the others are refused.
    std::string out = ".TS\nl2 c2 c2 c2 c2 c2 c2 l.\nverb";
    for (std::size_t s = 0; s < k_state_count; ++s) {
        out += "\t" + std::string(state_name(static_cast<State>(s)));
    }
    out += "\tsuccessor\n_\n";
    for (const Rule& r : k_rules) {
        out += std::string(verb_label(r.verb));
        for (Refusal why : r.in) {
            out += "\t" + cell_label(why);
        }
        out += "\t" + next_name(r.next) + "\n";
    }
    out += ".TE\n";
    // The guards, in the order they are checked.
    out += ".PP\nGuards, checked after the state in this order (before it where marked):\n.TS\nl l l l.\n"
           "verb\tneeds\tchecked\totherwise\n_\n";
    for (const Rule& r : k_rules) {
        for (const Check& c : r.guards) {
            if (c.refusal == Refusal::none) {
                continue;
            }
            out += std::string(verb_label(r.verb)) + "\t" + (c.wanted ? "" : "no ") +
                   std::string(guard_name(c.guard)) + "\t" + (c.before_state ? "before state" : "after state") +
                   "\t" + std::string(refusal_name(c.refusal)) + "\n";
        }
    }
    out += ".TE\n.PP\nThe guards:\n.TS\nl lx.\n";
    for (std::size_t g = 0; g < k_guard_count; ++g) {
        out += std::string(guard_name(static_cast<Guard>(g))) + "\tT{\n" + guard_meaning(static_cast<Guard>(g)) +
               "\nT}\n";
    }
    out += ".TE\n";
    // Every refusal and its reply.
    out += ".PP\nRefusals and their replies:\n.TS\nl l lx.\ncell\trefusal\treply\n_\n";
    for (std::size_t i = 1; i < k_refusal_count; ++i) {
        const auto why = static_cast<Refusal>(i);
        const std::string label = cell_label(why);
        out += (label == refusal_name(why) ? std::string("\\-") : label) + "\t" + std::string(refusal_name(why)) +
               "\tT{\n" + with_verb(roff_text(reply_text(replies::refusal(why, "VERB")))) + "\nT}\n";
    }
    out += ".TE\n";
    return out;
}

const std::vector<std::string>& nfa_matrix_setups()
{
    static const std::vector<std::string> setups = [] {
        std::vector<std::string> v;
        for (std::size_t s = 0; s < k_state_count; ++s) {
            v.emplace_back(state_name(static_cast<State>(s)));
        }
        v.emplace_back("greeted/helo");
        v.emplace_back("greeted/tls");
        return v;
    }();
    return setups;
}

const std::vector<std::string>& nfa_matrix_verbs()
{
    static const std::vector<std::string> verbs = [] {
        std::vector<std::string> v;
        for (const Rule& r : k_rules) {
            v.emplace_back(r.verb == Verb::unimplemented ? "TURN"
                           : r.verb == Verb::unknown     ? "FOO"
                                                         : std::string(r.name));
        }
        return v;
    }();
    return verbs;
}

std::string nfa_matrix_text(const MatrixCell& cell)
{
    std::string out =
        "# Every (verb, setup) pair through the real dispatcher: \"reply code:state after\".\n"
        "# Generated by the unit tests (NFA_REGENERATE=1 make unit) from src/smtp/smtp_nfa.hpp\n"
        "# and the session; reviewed like code. Rows are the verbs (TURN stands for the\n"
        "# unimplemented verbs, FOO for unknown ones); columns are the states before the\n"
        "# command, then greeted after HELO instead of EHLO, and greeted after EHLO inside\n"
        "# TLS. The server has a certificate (STARTTLS is offered) and no password file\n"
        "# (AUTH is not: tests/unit/test_auth.cpp has its successes). BDAT is \"BDAT 0\";\n"
        "# in_bdat is reached by \"BDAT 1\" and one octet after in_rcpt; denied is a client\n"
        "# given 554 instead of 220.\n";
    auto pad = [](std::string s, std::size_t width) {
        s.resize(std::max(width, s.size() + 1), ' ');
        return s;
    };
    std::string header = pad("verb", 9);
    for (const std::string& s : nfa_matrix_setups()) {
        header += pad(s, 15);
    }
    while (!header.empty() && header.back() == ' ') {
        header.pop_back();
    }
    out += header + "\n";
    for (const std::string& verb : nfa_matrix_verbs()) {
        std::string row = pad(verb, 9);
        for (const std::string& s : nfa_matrix_setups()) {
            row += pad(cell(verb, s), 15);
        }
        while (!row.empty() && row.back() == ' ') {
            row.pop_back();
        }
        out += row + "\n";
    }
    return out;
}

} // namespace smtpspool
