#!/bin/sh
# Runs smtpspool under valgrind memcheck for the transcript tier: any error
# makes valgrind print to stderr and exit 99, and run.py fails on both.
exec valgrind -q --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite "$SMTPSPOOL_BINARY" "$@"
