// runner_slots: the slot files under SPOOL/state and their locks.
#include "spool/runner_slots.hpp"

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>

namespace smtpspool {
namespace {

Error sys_error(const std::string& what)
{
    int e = errno;
    return Error{e, what + ": " + std::strerror(e)};
}

Fd open_at(int parent, const char* name, int flags, mode_t mode)
{
    int fd;
    do {
        fd = ::openat(parent, name, flags | O_NOFOLLOW | O_CLOEXEC, mode);
    } while (fd < 0 && errno == EINTR);
    return Fd(fd);
}

} // namespace

Result<std::optional<Fd>> take_runner_slot(const std::string& spool, std::size_t slots)
{
    // The spool itself may be a link the administrator made.
    Fd root(::open(spool.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!root) {
        return sys_error("cannot open " + spool);
    }
    Fd state = open_at(root.get(), "state", O_RDONLY | O_DIRECTORY, 0);
    if (!state && errno == ENOENT) {
        if (::mkdirat(root.get(), "state", 0700) != 0 && errno != EEXIST) {
            return sys_error("cannot create " + spool + "/state");
        }
        state = open_at(root.get(), "state", O_RDONLY | O_DIRECTORY, 0);
    }
    if (!state) {
        return sys_error("cannot open " + spool + "/state");
    }
    for (std::size_t i = 0; i < slots; ++i) {
        std::string name = "runq-slot." + std::to_string(i);
        Fd slot = open_at(state.get(), name.c_str(), O_RDONLY | O_CREAT, 0600);
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
