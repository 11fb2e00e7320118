// The doctest runner of the unit tier. Run from tests/unit (data files are relative).
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include <csignal>

int main(int argc, char** argv)
{
    // As serve and runq do: a pipe command or client that stops reading is an
    // EPIPE to handle, never a signal (the pipe transport's tests start
    // commands that exit without reading their input).
    std::signal(SIGPIPE, SIG_IGN);
    doctest::Context context(argc, argv);
    return context.run();
}
