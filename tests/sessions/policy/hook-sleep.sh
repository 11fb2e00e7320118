#!/bin/sh
# A hook that hangs (and starts a grandchild that hangs too).
sleep 60 &
sleep 60
