#!/bin/sh
# Runs smtpspool under valgrind memcheck for the transcript tier: any error
# makes valgrind report it on stderr and exit 99, and run.py fails on both.
# valgrind 3.19 does not know pidfd_open(2) (syscall 434); the hook runner
# then falls back to polling, and valgrind's warning about the syscall is the
# one thing of its report that is not passed on.
log=$(mktemp) || exit 70
valgrind -q --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite --log-file="$log" \
    "$SMTPSPOOL_BINARY" "$@"
status=$?
grep -v -e 'WARNING: unhandled amd64-linux syscall: 434$' -e 'You may be able to write your own handler' \
    -e 'README_MISSING_SYSCALL_OR_IOCTL' -e 'Nevertheless we consider this a bug' \
    -e 'it at http://valgrind.org/support/bug_reports.html' "$log" >&2
rm -f "$log"
exit "$status"
