// runner_slots: the slot files under SPOOL/state and their locks.
#include "spool/runner_slots.hpp"

#include "base/fs.hpp"

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>

namespace smtpspool {

Result<std::optional<Fd>> take_runner_slot(const std::string& spool, std::size_t slots)
{
    auto state = open_state_directory(spool);
    if (!state) {
        return state.error();
    }
    for (std::size_t i = 0; i < slots; ++i) {
        std::string name = "runq-slot." + std::to_string(i);
        Fd slot = openat_nofollow(state.value().get(), name, O_RDONLY | O_CREAT, 0600);
        if (!slot) {
            return sys_error("cannot open " + spool + "/state/" + name);
        }
        struct stat st {};
        if (::fstat(slot.get(), &st) != 0 || !S_ISREG(st.st_mode)) {
            return Error{EINVAL, spool + "/state/" + name + ": not a regular file"};
        }
        int rc;
        do {
            rc = ::flock(slot.get(), LOCK_EX | LOCK_NB);
        } while (rc != 0 && errno == EINTR);
        if (rc == 0) {
            return std::optional<Fd>(std::move(slot));
        }
        if (errno != EWOULDBLOCK) {
            return sys_error("cannot lock " + spool + "/state/" + name);
        }
    }
    return std::optional<Fd>();
}

} // namespace smtpspool
