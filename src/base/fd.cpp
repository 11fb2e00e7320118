// fd: the descriptor helpers declared with Fd.
#include "base/fd.hpp"

#include <fcntl.h>

namespace smtpspool {

bool set_nonblocking(int fd)
{
    int flags = ::fcntl(fd, F_GETFL);
    return flags >= 0 && ::fcntl(fd, F_SETFL, flags | O_NONBLOCK) == 0;
}

} // namespace smtpspool
