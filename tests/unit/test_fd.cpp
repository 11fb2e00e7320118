// Tests of base/fd: Fd ownership and set_nonblocking.
#include "base/fd.hpp"

#include <doctest/doctest.h>

#include <cerrno>
#include <fcntl.h>
#include <unistd.h>

using namespace smtpspool;

TEST_SUITE("fd")
{
    TEST_CASE("set_nonblocking adds O_NONBLOCK and keeps the other flags")
    {
        int fds[2];
        REQUIRE(::pipe2(fds, O_CLOEXEC) == 0);
        Fd read_end(fds[0]), write_end(fds[1]);
        REQUIRE(::fcntl(write_end.get(), F_SETFL, O_APPEND) == 0);
        REQUIRE((::fcntl(write_end.get(), F_GETFL) & O_NONBLOCK) == 0);
        CHECK(set_nonblocking(write_end.get()));
        int flags = ::fcntl(write_end.get(), F_GETFL);
        CHECK((flags & O_NONBLOCK) != 0);
        CHECK((flags & O_APPEND) != 0); // kept, not overwritten
        CHECK((flags & O_ACCMODE) == O_WRONLY);
        CHECK(set_nonblocking(write_end.get())); // twice is fine
        char c;
        CHECK(set_nonblocking(read_end.get()));
        CHECK(::read(read_end.get(), &c, 1) == -1);
        CHECK(errno == EAGAIN);
    }

    TEST_CASE("set_nonblocking on a closed descriptor fails with errno set")
    {
        int fds[2];
        REQUIRE(::pipe(fds) == 0);
        ::close(fds[0]);
        ::close(fds[1]);
        errno = 0;
        CHECK_FALSE(set_nonblocking(fds[0]));
        CHECK(errno == EBADF);
    }
}
