#!/bin/bash
# runq --concurrency: two runq processes, each with several workers, over 500
# queued messages to five smarthosts (aiosmtpd, one per domain d0.test ...
# d4.test, each on its own loopback port). 475 messages have one recipient;
# 25 have a second one at the next domain (those go in the second phase). The
# per-message lock must make every recipient delivered exactly once, counted
# at the sinks by queue ID and recipient; each sink sees few connections
# (each worker keeps its connection for all its messages to that host), and
# at most --concurrency-per-host of one runq's workers at once.
# shellcheck source=tests/e2e/lib.sh
source "$(dirname "$0")/lib.sh"
# shellcheck source=tests/e2e/deliverylib.sh
source "$E2E_DIR/deliverylib.sh"
need_aiosmtpd

SPOOL=$TEST_TMP/spool
ROUTES=()
SINKS=()
for d in 0 1 2 3 4; do
    start_smarthost "$TEST_TMP/sink$d"
    ROUTES+=(--route "d$d.test=smtp:127.0.0.1:$SMARTHOST_PORT")
    SINKS+=("$TEST_TMP/sink$d")
done

step "queue 500 messages"
SPOOL=$SPOOL python3 - <<'EOF2'
import os
from e2elib import *
from deliverylib import *

def main():
    msgs = []
    for i in range(500):
        rcpts = [f"r{i}@d{i % 5}.test"] + ([f"s{i}@d{(i + 1) % 5}.test"] if i % 20 == 0 else [])
        msgs.append((f"sender{i}@client.test", rcpts, f"Subject: message {i}\r\n\r\nbody {i}\r\n".encode()))
    ids = queue(os.environ["SPOOL"], msgs)
    expect_eq(500, len(set(ids)), "distinct queue IDs")

run(main)
EOF2
assert_eq 500 "$(count_entries "$SPOOL/queue")" "messages in queue/"

step "two runq --concurrency 6 --concurrency-per-host 2 at once"
RUNQ=(--spool "$SPOOL" --hostname relay.test --smtp-timeout 20s --concurrency 6 --concurrency-per-host 2 "${ROUTES[@]}")
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

step "every recipient delivered exactly once, over few connections"
SPOOL=$SPOOL SINKS="${SINKS[*]}" python3 - <<'EOF2'
import collections, os, re
from e2elib import *
from deliverylib import *

spool = os.environ["SPOOL"]

def main():
    got = []
    for d, sink in enumerate(os.environ["SINKS"].split()):
        peers = set()
        for t in transactions(sink):
            m = re.search(rb" id ([A-Za-z0-9_-]+)[;\s]", received(sink, t))
            expect(m is not None, "a message at the smarthost", "a Received: header with the queue ID", t)
            for r in t["rcpt_tos"]:
                expect(r.endswith(f"@d{d}.test"), f"recipients at sink {d}", f"only @d{d}.test", r)
                got.append((m.group(1).decode(), r))
            peers.add(tuple(t["peer"]))
        # Per runq: two workers per host in the first phase, two in the
        # second; reused for every message (about 100 per sink).
        expect(len(peers) <= 8, f"connections to sink {d}", "at most 8 (2 runqs x 2 phases x 2)", len(peers))
    counts = collections.Counter(got)
    expect_eq({}, {k: v for k, v in counts.items() if v > 1}, "recipients delivered more than once")
    want = sorted([f"r{i}@d{i % 5}.test" for i in range(500)] +
                  [f"s{i}@d{(i + 1) % 5}.test" for i in range(0, 500, 20)])
    expect_eq(want, sorted(r for _, r in got), "recipients at the sinks")
    expect_eq([], queue_ids(spool), "queue/ at the end")
    expect_eq([], tmp_entries(spool), "tmp/ at the end")

run(main)
EOF2

step "the two runqs' counts add up, and they used workers"
read -r delivered removed < <(grep -h 'event=runq-done' "$TEST_TMP/runq1.log" "$TEST_TMP/runq2.log" |
    sed -E 's/.* delivered=([0-9]+) .* removed=([0-9]+) .*/\1 \2/' | awk '{ d += $1; r += $2 } END { print d, r }')
assert_eq 525 "$delivered" "deliveries counted by the two runqs"
assert_eq 500 "$removed" "removals counted by the two runqs"
for log in "$TEST_TMP/runq1.log" "$TEST_TMP/runq2.log"; do
    workers=$(grep -h 'event=runq-done' "$log" | sed -E 's/.* workers=([0-9]+).*/\1/')
    [[ $workers -ge 2 ]] || fail "runq-done in $log names $workers workers, expected several"
done
if grep -q 'event=runq-error\|event=unreadable\|result=deferred\|result=failed' "$TEST_TMP/runq1.log" "$TEST_TMP/runq2.log"; then
    fail "errors or deferrals in the runq logs: $(grep -h 'event=runq-error\|event=unreadable\|result=deferred\|result=failed' \
        "$TEST_TMP/runq1.log" "$TEST_TMP/runq2.log" | head -5)"
fi
