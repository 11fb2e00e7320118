#!/bin/sh
# A data hook: reads the message, adds header fields, ignores a bad line, and
# refuses messages that mention EICAR.
if grep -q EICAR; then
    echo "554 5.7.0 virus found"
    exit 1
fi
echo "X-Checked-By: hook-headers"
echo "X-Sender-Seen: <$SMTPSPOOL_SENDER>"
echo "  folded continuation"
echo "this line is not a header"
exit 0
