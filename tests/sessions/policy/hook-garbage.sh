#!/bin/sh
# A hook that fails with output that is not a reply line.
echo "250 2.0.0 pretending to accept"
echo "garbage" >&2
exit 1
