// privileges: initgroups(3), setgid(2), setuid(2), in that order, then a check.
#include "cli/privileges.hpp"

#include <cerrno>
#include <cstring>
#include <grp.h>
#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

namespace smtpspool {

Result<void> drop_privileges(const std::string& user)
{
    errno = 0;
    const passwd* pw = ::getpwnam(user.c_str());
    if (pw == nullptr) {
        return Error{ENOENT, "--user: no such user: " + user};
    }
    if (::geteuid() != 0) {
        if (::geteuid() == pw->pw_uid && ::getuid() == pw->pw_uid) {
            return {};
        }
        return Error{EPERM, "--user " + user + ": only root can switch users"};
    }
    if (pw->pw_uid == 0) {
        return Error{EPERM, "--user " + user + ": names root"};
    }
    uid_t uid = pw->pw_uid;
    gid_t gid = pw->pw_gid;
    if (::initgroups(user.c_str(), gid) != 0 || ::setgid(gid) != 0 || ::setuid(uid) != 0) {
        return Error{errno, "--user " + user + ": " + std::strerror(errno)};
    }
    // setuid(2) from root changes all three user ids; make sure of it.
    if (::setuid(0) == 0 || ::geteuid() != uid || ::getegid() != gid) {
        return Error{EPERM, "--user " + user + ": root privileges could not be given up"};
    }
    return {};
}

std::optional<std::string> user_to_become(const std::optional<std::string>& user, const std::string& spool)
{
    if (user) {
        return user;
    }
    struct stat st {};
    if (::geteuid() != 0 || ::stat(spool.c_str(), &st) != 0 || st.st_uid == 0) {
        return std::nullopt;
    }
    if (const passwd* pw = ::getpwuid(st.st_uid)) {
        return std::string(pw->pw_name);
    }
    return std::nullopt;
}

bool may_choose_config(const std::string& system_spool)
{
    if (::getuid() == 0) {
        return true;
    }
    struct stat st {};
    return ::stat(system_spool.c_str(), &st) == 0 && st.st_uid == ::getuid();
}

} // namespace smtpspool
