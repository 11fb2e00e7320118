#!/bin/bash
# Expiry: a message that cannot be delivered (the smarthost's port is closed:
# temporary) is given up after --max-queue-time. Two messages: M1 from
# alice@ to b@ and c@, M2 from the null sender to d@.
#  1. runq (default --max-queue-time): both deferred, kept;
#  2. a second later, runq --max-queue-time 1s M1 M2: every recipient is
#     tried once more (a delivery line with result=expired), then fails
#     ("message expired after AGE in the queue; last error: ...", AGE being
#     the message's real age, a few seconds here), both
#     messages are removed, and exactly one bounce is queued: to alice, with
#     one group per recipient, Action: failed, Status: 4.4.7 and the last
#     error; none for M2 (null sender);
#  3. the bounce, undeliverable too, expires in its turn: it is removed and no
#     bounce of the bounce is queued; the queue ends empty.
# shellcheck source=tests/e2e/lib.sh
source "$(dirname "$0")/lib.sh"
# shellcheck source=tests/e2e/deliverylib.sh
source "$E2E_DIR/deliverylib.sh"
need_tool python3

SPOOL=$TEST_TMP/spool
CLOSED=$(free_port)
RUNQ=(--spool "$SPOOL" --hostname relay.test --smarthost "127.0.0.1:$CLOSED" --retry-schedule 10m)

step "queue M1 and M2"
SPOOL=$SPOOL python3 - <<'EOF' >"$TEST_TMP/ids"
import os, shutil
from e2elib import *
from deliverylib import *

spool = os.environ["SPOOL"]

def main():
    ids = queue(spool, [("alice@client.test", ["b@far.test", "c@far.test"],
                         b"From: alice@client.test\r\nSubject: will expire\r\n\r\nbody\r\n"),
                        ("", ["d@far.test"], b"Subject: from the null sender\r\n\r\nbody\r\n")])
    for qid in ids:
        shutil.copytree(os.path.join(spool, "queue", qid), os.path.join(os.environ["TEST_TMP"], "q-" + qid))
    print("\n".join(ids))

run(main)
EOF
mapfile -t IDS <"$TEST_TMP/ids"
M1=${IDS[0]}
M2=${IDS[1]}

step "1. runq: deferred, kept"
runq_logged "$TEST_TMP/runq.log" "${RUNQ[@]}" || fail "runq exited $?"
assert_contains "$(cat "$TEST_TMP/runq.log")" "delivered=0 deferred=3 failed=0 bounces=0 removed=0" "runq log"
assert_eq "$M1 $M2" "$(cd "$SPOOL/queue" && echo *)" "queue/ after the first runq"

step "2. a second later, runq --max-queue-time 1s: expired, one bounce"
sleep 1.1
runq_logged "$TEST_TMP/runq2.log" "${RUNQ[@]}" --max-queue-time 1s "$M1" "$M2" || fail "runq exited $?"
cat "$TEST_TMP/runq2.log"
log=$(cat "$TEST_TMP/runq2.log")
assert_contains "$log" "delivered=0 deferred=0 failed=3 bounces=1 removed=2" "runq log"
for to in b@far.test c@far.test d@far.test; do
    assert_match "$log" "event=delivery id=[^ ]+ to=$to via=[^ ]+ result=expired " "runq log (the last attempt)"
    assert_match "$log" "event=expired id=[^ ]+ to=$to age=[1-9]s" "runq log"
done
CLOSED=$CLOSED SPOOL=$SPOOL M1=$M1 M2=$M2 python3 - <<'EOF' >"$TEST_TMP/bounce"
import json, os, re
from e2elib import *
from deliverylib import *

spool, m1, m2, closed = os.environ["SPOOL"], os.environ["M1"], os.environ["M2"], os.environ["CLOSED"]

def main():
    left = queue_ids(spool)
    expect(m1 not in left and m2 not in left, "queue/", "neither expired message", left)
    expect_eq(1, len(left), f"messages in queue/ (one bounce): {left}")
    d = os.path.join(os.environ["TEST_TMP"], "q-" + m1)
    with open(os.path.join(d, "envelope.json")) as f:
        orig = json.load(f)
    with open(os.path.join(d, "message.eml"), "rb") as f:
        eml = f.read()
    why = f" in the queue; last error: connection to 127.0.0.1:{closed} refused"
    check_bounce(spool, left[0], orig, {"b@far.test": (r"4\.4\.7", why),
                                       "c@far.test": (r"4\.4\.7", why)}, head_of(eml))
    with open(os.path.join(spool, "queue", left[0], "message.eml"), "rb") as f:
        text = f.read()
    expect(re.search(rb"message expired after [1-9]s in the queue", text) is not None, "the bounce",
           "message expired after Ns (the real age, a few seconds)", text)
    print(left[0])

run(main)
EOF
read -r BOUNCE <"$TEST_TMP/bounce"

step "3. the bounce expires too, without a bounce of its own"
runq_logged "$TEST_TMP/runq3.log" "${RUNQ[@]}" "$BOUNCE" || fail "runq exited $?"
assert_contains "$(cat "$TEST_TMP/runq3.log")" "deferred=1 failed=0 bounces=0 removed=0" "runq log of the bounce"
sleep 1.1
runq_logged "$TEST_TMP/runq4.log" "${RUNQ[@]}" --max-queue-time 1s "$BOUNCE" || fail "runq exited $?"
assert_contains "$(cat "$TEST_TMP/runq4.log")" "deferred=0 failed=1 bounces=0 removed=1" "runq log of the bounce"
assert_eq 0 "$(count_entries "$SPOOL/queue")" "messages in queue/ at the end"
assert_eq 0 "$(count_entries "$SPOOL/tmp")" "entries in tmp/ at the end"
