#!/bin/sh
# A rcpt hook: a reply line and exit 1 for "blocked", exit 100 for "perm",
# exit 111 for "temp", accept the rest.
case "$SMTPSPOOL_RECIPIENT" in
blocked@*) echo "550 5.7.1 $SMTPSPOOL_RECIPIENT is blocked here"; exit 1 ;;
perm@*) exit 100 ;;
temp@*) exit 111 ;;
esac
exit 0
