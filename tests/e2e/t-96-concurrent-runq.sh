#!/bin/bash
# Two runq processes at once over 200 queued messages. Each message has a
# recipient at pipe.test (a pipe command that appends "ID RECIPIENT" to a
# file) and every other one also a recipient at far.test (the aiosmtpd
# smarthost). The per-message lock must make every recipient delivered
# exactly once: the file has one line per pipe recipient, the smarthost one
# transaction per message with a far.test recipient (recognised by the queue
# ID in its Received: header), both runqs exit 0, their runq-done lines add up
# to every delivery and every removal, and the queue ends empty.
# shellcheck source=tests/e2e/lib.sh
source "$(dirname "$0")/lib.sh"
# shellcheck source=tests/e2e/deliverylib.sh
source "$E2E_DIR/deliverylib.sh"
need_aiosmtpd

SPOOL=$TEST_TMP/spool
SINK=$TEST_TMP/sink
DELIVERED=$TEST_TMP/delivered
: >"$DELIVERED"
start_smarthost "$SINK"

step "queue 200 messages"
SPOOL=$SPOOL python3 - <<'EOF'
import os
from e2elib import *
from deliverylib import *

def main():
    msgs = []
    for i in range(200):
        rcpts = [f"p{i}@pipe.test"] + ([f"s{i}@far.test"] if i % 2 == 0 else [])
        msgs.append((f"sender{i}@client.test", rcpts, f"Subject: message {i}\r\n\r\nbody {i}\r\n".encode()))
    ids = queue(os.environ["SPOOL"], msgs)
    expect_eq(200, len(set(ids)), "distinct queue IDs")

run(main)
EOF
assert_eq 200 "$(count_entries "$SPOOL/queue")" "messages in queue/"

step "two runq at once"
RUNQ=(--spool "$SPOOL" --hostname relay.test --smtp-timeout 20s
    --route "pipe.test=pipe:cat >/dev/null; echo \"\$MESSAGE_ID \$RECIPIENT\" >>$DELIVERED"
    --route "far.test=smtp:127.0.0.1:$SMARTHOST_PORT")
t0=$EPOCHREALTIME
runq_logged "$TEST_TMP/runq1.log" "${RUNQ[@]}" &
p1=$!
runq_logged "$TEST_TMP/runq2.log" "${RUNQ[@]}" &
p2=$!
s1=0
s2=0
wait "$p1" || s1=$?
wait "$p2" || s2=$?
ms=$(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%d", (b - a) * 1000 }')
grep -h 'event=runq-done' "$TEST_TMP/runq1.log" "$TEST_TMP/runq2.log"
echo "both done in $ms ms"
assert_eq 0 "$s1" "exit status of the first runq"
assert_eq 0 "$s2" "exit status of the second runq"

step "every recipient delivered exactly once"
SPOOL=$SPOOL SINK=$SINK DELIVERED=$DELIVERED python3 - <<'EOF'
import collections, os, re
from e2elib import *
from deliverylib import *

spool, sink = os.environ["SPOOL"], os.environ["SINK"]

def main():
    with open(os.environ["DELIVERED"]) as f:
        lines = f.read().splitlines()
    counts = collections.Counter(lines)
    dups = {k: v for k, v in counts.items() if v > 1}
    expect_eq({}, dups, "pipe deliveries made more than once")
    rcpts = sorted(line.split(" ", 1)[1] for line in lines)
    expect_eq(sorted(f"p{i}@pipe.test" for i in range(200)), rcpts, "recipients the pipe delivered to")
    expect_eq(200, len({line.split(" ", 1)[0] for line in lines}), "distinct queue IDs in the pipe's file")
    got = []
    for t in transactions(sink):
        m = re.search(rb" id ([A-Za-z0-9_-]+);", received(sink, t))
        expect(m is not None, "a message at the smarthost", "a Received: header with the queue ID", t)
        got.append((m.group(1).decode(), tuple(t["rcpt_tos"])))
    counts = collections.Counter(got)
    expect_eq({}, {k: v for k, v in counts.items() if v > 1}, "messages the smarthost received more than once")
    expect_eq(sorted(f"s{i}@far.test" for i in range(0, 200, 2)), sorted(r for _, rs in got for r in rs),
              "recipients at the smarthost")
    expect_eq([], queue_ids(spool), "queue/ at the end")
    expect_eq([], tmp_entries(spool), "tmp/ at the end")

run(main)
EOF

step "the two runqs' counts add up"
read -r delivered removed < <(grep -h 'event=runq-done' "$TEST_TMP/runq1.log" "$TEST_TMP/runq2.log" |
    sed -E 's/.* delivered=([0-9]+) .* removed=([0-9]+) .*/\1 \2/' | awk '{ d += $1; r += $2 } END { print d, r }')
assert_eq 300 "$delivered" "deliveries counted by the two runqs"
assert_eq 200 "$removed" "removals counted by the two runqs"
if grep -q 'event=runq-error\|event=unreadable\|result=deferred\|result=failed' "$TEST_TMP/runq1.log" "$TEST_TMP/runq2.log"; then
    fail "errors or deferrals in the runq logs: $(grep -h 'event=runq-error\|event=unreadable\|result=deferred\|result=failed' \
        "$TEST_TMP/runq1.log" "$TEST_TMP/runq2.log" | head -5)"
fi
