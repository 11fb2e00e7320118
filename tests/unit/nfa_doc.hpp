// nfa_doc: the NFA table rendered for the man page (tbl(1) input). A unit test
// keeps man/smtpspool.8 equal to this rendering of k_rules.
#pragma once

#include <string>

namespace smtpspool {

std::string nfa_table_roff();

} // namespace smtpspool
