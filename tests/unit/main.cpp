// The doctest runner of the unit tier. Run from tests/unit (data files are relative).
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

int main(int argc, char** argv)
{
    doctest::Context context(argc, argv);
    return context.run();
}
