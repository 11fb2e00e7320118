// privileges: --user, the switch from root to an unprivileged user before a
// command touches the spool (smtpspool(8), SECURITY).
#pragma once

#include "base/result.hpp"

#include <optional>
#include <string>

namespace smtpspool {

// As root: takes the user's groups, group id and user id for good (and checks
// that root cannot be regained). As another user: succeeds only when that is
// the user named. errnum ENOENT when there is no such user, EPERM otherwise.
Result<void> drop_privileges(const std::string& user);

// Who a command started as root should become before it touches the spool:
// `user` when given (--user), else the owner of the spool directory when that
// is not root; nullopt when there is no one to become (not root, or a spool
// owned by root).
std::optional<std::string> user_to_become(const std::optional<std::string>& user, const std::string& spool);

// Whether the caller may name another configuration than the system's (it
// names the programs that hooks and pipe routes run): root (the real user id)
// and the owner of the system configuration's spool directory may.
bool may_choose_config(const std::string& system_spool);

} // namespace smtpspool
