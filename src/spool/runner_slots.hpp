// runner_slots: the bound on the runq processes that serve --deliver-now
// starts for one spool. SPOOL/state/runq-slot.0 ... runq-slot.(N-1); a slot is
// taken by an exclusive flock(2) on its file, held by whoever keeps the
// descriptor open (the runq it is handed to), and freed when the last holder
// closes it, exits included.
#pragma once

#include "base/fd.hpp"
#include "base/result.hpp"

#include <cstddef>
#include <optional>
#include <string>

namespace smtpspool {

// A free slot, locked; nullopt when all `slots` are taken. SPOOL/state is
// created (0700) when missing; it and the slot files are opened without
// following a link. Error when SPOOL/state or a slot file cannot be opened.
Result<std::optional<Fd>> take_runner_slot(const std::string& spool, std::size_t slots);

} // namespace smtpspool
