// nfa_doc: the NFA table rendered for the man page (tbl(1) input), and the
// golden matrix of every verb in every state as the session answers it. A
// unit test keeps man/smtpspool.8 and tests/unit/data/nfa-matrix.txt equal to
// these renderings of k_rules.
#pragma once

#include <functional>
#include <string>
#include <vector>

namespace smtpspool {

std::string nfa_table_roff();

// The reply code and the state after one command in one setup, "250:greeted".
using MatrixCell = std::function<std::string(const std::string& verb, const std::string& setup)>;

// The setups (column names): every state, then the guard variants of greeted.
const std::vector<std::string>& nfa_matrix_setups();
// The verbs as the matrix names them (TURN for the unimplemented ones, FOO for unknown).
const std::vector<std::string>& nfa_matrix_verbs();
// The matrix file: its comment, the header line, one row per verb.
std::string nfa_matrix_text(const MatrixCell& cell);

} // namespace smtpspool
