#!/bin/bash
# A smarthost that defers (451), then accepts. Two messages:
#  M1 to ok1@ (accepted) and defer-rcpt@ (451 4.3.0 to its RCPT);
#  M2 to defer-data@ and ok2@ (both RCPTs accepted, 451 4.3.2 to the end of data).
# runq --retry-schedule 10m,1h must:
#  - deliver ok1 only and keep M1 with defer-rcpt pending (attempts 1,
#    last_error with the 451 reply), M2 with both pending (the DATA reply);
#  - record attempts, last_attempt (now) and next_attempt = last_attempt + 10m;
#  - on a second plain runq, touch nothing (not due: nothing sent, envelopes
#    byte for byte the same);
#  - on `runq M1` (forced) while still deferred: send only defer-rcpt (ok1 is
#    never sent again), attempts 2, next_attempt = last_attempt + 1h;
#  - once the smarthost accepts, `runq M1` and `runq M2` deliver the pending
#    recipients (the exact octets of message.eml) and remove both; no bounce.
# shellcheck source=tests/e2e/lib.sh
source "$(dirname "$0")/lib.sh"
# shellcheck source=tests/e2e/deliverylib.sh
source "$E2E_DIR/deliverylib.sh"
need_aiosmtpd

SPOOL=$TEST_TMP/spool
SINK=$TEST_TMP/sink
RULES=$TEST_TMP/rules.json
set_rules "$RULES" '{"rcpt": {"defer-rcpt@far.test": "451 4.3.0 mailbox busy, try later"},
  "data_for": {"defer-data@far.test": "451 4.3.2 not accepting messages now"}}'
start_smarthost "$SINK" "$RULES"
RUNQ=(--spool "$SPOOL" --hostname relay.test --smarthost "127.0.0.1:$SMARTHOST_PORT" --retry-schedule "10m,1h"
    --smtp-timeout 10s --concurrency 1)

step "queue M1 and M2"
SPOOL=$SPOOL python3 - <<'EOF' >"$TEST_TMP/ids"
import os, shutil
from e2elib import *
from deliverylib import *

spool = os.environ["SPOOL"]

def main():
    ids = queue(spool, [("s1@client.test", ["ok1@far.test", "defer-rcpt@far.test"],
                         b"Subject: M1\r\n\r\n.one dot\r\nbody of M1\r\n"),
                        ("s2@client.test", ["defer-data@far.test", "ok2@far.test"],
                         b"Subject: M2\r\n\r\nbody of M2\r\n")])
    for qid in ids:
        shutil.copy(os.path.join(spool, "queue", qid, "message.eml"),
                    os.path.join(os.environ["TEST_TMP"], qid + ".eml"))
    print("\n".join(ids))

run(main)
EOF
mapfile -t IDS <"$TEST_TMP/ids"
M1=${IDS[0]}
M2=${IDS[1]}

step "first runq: the smarthost defers"
t0=$(date -u +%s)
runq_logged "$TEST_TMP/runq.log" "${RUNQ[@]}" || fail "runq exited $?"
t1=$(date -u +%s)
SPOOL=$SPOOL SINK=$SINK M1=$M1 M2=$M2 T0=$t0 T1=$t1 python3 - <<'EOF'
import datetime, os
from e2elib import *
from deliverylib import *

spool, sink, m1, m2 = os.environ["SPOOL"], os.environ["SINK"], os.environ["M1"], os.environ["M2"]
t0, t1 = int(os.environ["T0"]), int(os.environ["T1"])

def check_times(env, qid, attempts, delay):
    expect_eq(attempts, env["attempts"], f"{qid}: attempts of the message")
    last = parse_time(env["last_attempt"], f"{qid}: last_attempt")
    nxt = parse_time(env["next_attempt"], f"{qid}: next_attempt")
    expect(t0 - 1 <= last.timestamp() <= t1 + 1, f"{qid}: last_attempt", f"between {t0} and {t1}",
           last.timestamp())
    expect_eq(datetime.timedelta(seconds=delay), nxt - last, f"{qid}: next_attempt - last_attempt")

def main():
    expect_eq([m1, m2], queue_ids(spool), "queue/ after the first runq")
    e1, e2 = envelope(spool, m1), envelope(spool, m2)
    r1 = recipients(e1)
    expect_eq(("delivered", 1, None), r1["ok1@far.test"], f"{m1}: ok1")
    status, attempts, error = r1["defer-rcpt@far.test"]
    expect_eq(("pending", 1), (status, attempts), f"{m1}: defer-rcpt status and attempts")
    expect(error is not None and "451 4.3.0 mailbox busy" in error, f"{m1}: defer-rcpt last_error",
           "the 451 reply to RCPT", error)
    check_times(e1, m1, 1, 600)
    for address, (status, attempts, error) in recipients(e2).items():
        expect_eq(("pending", 1), (status, attempts), f"{m2}: {address} status and attempts")
        expect(error is not None and "451 4.3.2 not accepting" in error, f"{m2}: {address} last_error",
               "the 451 reply to the end of data", error)
    check_times(e2, m2, 1, 600)
    got = transactions(sink)
    expect_eq([(["ok1@far.test"], "250"), (["defer-data@far.test", "ok2@far.test"], "451")],
              [(t["rcpt_tos"], t["reply"][:3]) for t in got], "transactions at the smarthost")
    with open(os.path.join(os.environ["TEST_TMP"], m1 + ".eml"), "rb") as f:
        expect_eq(f.read(), received(sink, got[0]), f"{m1}: octets received for ok1")

run(main)
EOF
grep -q "event=delivery id=$M1 to=defer-rcpt@far.test via=smtp:127.0.0.1:$SMARTHOST_PORT result=deferred detail=\"451 4.3.0" \
    "$TEST_TMP/runq.log" || fail "no deferral of defer-rcpt in the log: $(cat "$TEST_TMP/runq.log")"
out=$("$SMTPSPOOL_BIN" mailq --spool "$SPOOL")
assert_contains "$out" "<defer-rcpt@far.test> pending, 1 attempt: 451 4.3.0 mailbox busy" "mailq"
assert_contains "$out" "<ok1@far.test> delivered" "mailq"

step "a second plain runq: nothing is due, nothing changes"
cp "$SPOOL/queue/$M1/envelope.json" "$TEST_TMP/m1.before"
cp "$SPOOL/queue/$M2/envelope.json" "$TEST_TMP/m2.before"
rcpts_before=$(wc -l <"$SINK/rcpts.jsonl")
runq_logged "$TEST_TMP/runq2.log" "${RUNQ[@]}" || fail "runq exited $?"
assert_eq "$rcpts_before" "$(wc -l <"$SINK/rcpts.jsonl")" "RCPTs at the smarthost after a run with nothing due"
assert_files_equal "$TEST_TMP/m1.before" "$SPOOL/queue/$M1/envelope.json" "M1 envelope after a run with nothing due"
assert_files_equal "$TEST_TMP/m2.before" "$SPOOL/queue/$M2/envelope.json" "M2 envelope after a run with nothing due"
assert_contains "$(cat "$TEST_TMP/runq2.log")" "event=runq-done messages=2 attempted=0" "second runq log"

step "runq M1 while still deferred: only defer-rcpt is tried, the next wait is 1h"
sleep 1 # so that last_attempt moves on
runq_logged "$TEST_TMP/runq3.log" "${RUNQ[@]}" "$M1" || fail "runq $M1 exited $?"
SPOOL=$SPOOL SINK=$SINK M1=$M1 python3 - <<'EOF'
import datetime, os
from e2elib import *
from deliverylib import *

spool, sink, m1 = os.environ["SPOOL"], os.environ["SINK"], os.environ["M1"]

def main():
    e1 = envelope(spool, m1)
    r1 = recipients(e1)
    expect_eq(("delivered", 1, None), r1["ok1@far.test"], f"{m1}: ok1 (not tried again)")
    expect_eq(("pending", 2), r1["defer-rcpt@far.test"][:2], f"{m1}: defer-rcpt")
    expect_eq(2, e1["attempts"], f"{m1}: attempts")
    last = parse_time(e1["last_attempt"], "last_attempt")
    expect_eq(datetime.timedelta(hours=1), parse_time(e1["next_attempt"], "next_attempt") - last,
              f"{m1}: next_attempt - last_attempt after the second attempt")
    rcpts = jsonl(os.path.join(sink, "rcpts.jsonl"))
    expect_eq(1, sum(1 for r in rcpts if r["rcpt"] == "ok1@far.test"), "RCPTs for ok1 at the smarthost")
    expect_eq(2, sum(1 for r in rcpts if r["rcpt"] == "defer-rcpt@far.test"), "RCPTs for defer-rcpt")

run(main)
EOF

step "the smarthost accepts: runq M1 and runq M2 deliver and remove them"
set_rules "$RULES" '{}'
runq_logged "$TEST_TMP/runq4.log" "${RUNQ[@]}" "$M1" || fail "runq $M1 exited $?"
assert_eq "$M2" "$(ls "$SPOOL/queue")" "queue/ after runq M1"
runq_logged "$TEST_TMP/runq4.log" "${RUNQ[@]}" "$M2" || fail "runq $M2 exited $?"
SPOOL=$SPOOL SINK=$SINK M1=$M1 M2=$M2 python3 - <<'EOF'
import os
from e2elib import *
from deliverylib import *

spool, sink, m1, m2 = os.environ["SPOOL"], os.environ["SINK"], os.environ["M1"], os.environ["M2"]

def main():
    got = transactions(sink)
    expect_eq([["ok1@far.test"], ["defer-data@far.test", "ok2@far.test"], ["defer-rcpt@far.test"],
               ["defer-data@far.test", "ok2@far.test"]], [t["rcpt_tos"] for t in got], "all transactions")
    expect_eq(["250", "451", "250", "250"], [t["reply"][:3] for t in got], "their replies")
    for qid, t in ((m1, got[2]), (m2, got[3])):
        with open(os.path.join(os.environ["TEST_TMP"], qid + ".eml"), "rb") as f:
            expect_eq(f.read(), received(sink, t), f"{qid}: octets received at last")
    expect_eq([], queue_ids(spool), "queue/ at the end (and so no bounce)")
    expect_eq([], tmp_entries(spool), "tmp/ at the end")

run(main)
EOF
