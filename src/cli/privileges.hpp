// privileges: --user, the switch from root to an unprivileged user before a
// command touches the spool (smtpspool(8), SECURITY).
#pragma once

#include "base/result.hpp"

#include <string>

namespace smtpspool {

// As root: takes the user's groups, group id and user id for good (and checks
// that root cannot be regained). As another user: succeeds only when that is
// the user named. errnum ENOENT when there is no such user, EPERM otherwise.
Result<void> drop_privileges(const std::string& user);

} // namespace smtpspool
