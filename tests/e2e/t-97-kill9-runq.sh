#!/bin/bash
# kill -9 of runq in the middle of its work loses nothing. 60 messages, each
# to a pipe recipient p<i>@pipe.test; every third also to d<i>@pipe.test,
# which the pipe command defers (exit 75) while the file $DEFER exists, so
# that runq rewrites envelopes too. The command appends "ID RECIPIENT" to a
# file for every delivery it accepts.
#  1. runq with a pipe command that takes 0.2 s; kill -9 once 5 deliveries
#     are in the file (runq is waiting for the command);
#  2. four runqs with a command that takes 20 ms, each killed after a random
#     20-210 ms;
# after every kill: each queued message still has both files, every
# envelope.json parses and has sane statuses, mailq --json exits 0.
#  3. a last `runq ID...` (all that is left, the deferrals lifted) delivers the
#     rest. Then every recipient is in the file; a recipient appears twice only
#     if its message was the one being delivered when a runq was killed (the
#     last ID in the file once the command the killed runq had started has
#     finished: at-least-once, never lost); and the queue is empty.
# shellcheck source=tests/e2e/lib.sh
source "$(dirname "$0")/lib.sh"
# shellcheck source=tests/e2e/deliverylib.sh
source "$E2E_DIR/deliverylib.sh"
need_tool python3

SPOOL=$TEST_TMP/spool
DELIVERED=$TEST_TMP/delivered
DEFER=$TEST_TMP/defer
SLOW=$TEST_TMP/slow
: >"$DELIVERED"
: >"$DEFER"
: >"$TEST_TMP/in-flight"
RUNNING=$TEST_TMP/running
mkdir -p "$RUNNING"
cat >"$TEST_TMP/deliver.sh" <<EOF
#!/bin/sh
# One file in $RUNNING while it runs, so that the test can wait for the
# commands of a killed runq to finish.
: >"$RUNNING/\$\$"
cat >/dev/null
case "\$LOCAL" in
d*) [ -e "$DEFER" ] && { rm -f "$RUNNING/\$\$"; exit 75; } ;;
esac
echo "\$MESSAGE_ID \$RECIPIENT" >>"$DELIVERED"
[ -e "$SLOW" ] && sleep "\$(cat "$SLOW")"
rm -f "$RUNNING/\$\$"
exit 0
EOF
chmod +x "$TEST_TMP/deliver.sh"
# --concurrency 1: one delivery in flight when runq is killed (the accounting
# below); runq with workers is t-86.
RUNQ=(--spool "$SPOOL" --hostname relay.test --concurrency 1 --retry-schedule 1h --route "pipe.test=pipe:$TEST_TMP/deliver.sh")

step "queue 60 messages"
SPOOL=$SPOOL python3 - <<'EOF'
import os
from e2elib import *
from deliverylib import *

def main():
    msgs = []
    for i in range(60):
        rcpts = [f"p{i}@pipe.test"] + ([f"d{i}@pipe.test"] if i % 3 == 0 else [])
        msgs.append((f"s{i}@client.test", rcpts, f"Subject: {i}\r\n\r\nbody {i}\r\n".encode()))
    queue(os.environ["SPOOL"], msgs)

run(main)
EOF
assert_eq 60 "$(count_entries "$SPOOL/queue")" "messages in queue/"

# check_spool WHEN: every message left is complete and readable.
check_spool()
{
    SPOOL=$SPOOL WHEN=$1 python3 - <<'EOF'
import os
from e2elib import *
from deliverylib import *

spool, when = os.environ["SPOOL"], os.environ["WHEN"]

def main():
    listed = mailq_json(spool)
    ids = queue_ids(spool)
    expect_eq(ids, [e["id"] for e in listed], f"{when}: mailq --json against queue/")
    for qid in ids:
        files = set(os.listdir(os.path.join(spool, "queue", qid)))
        expect({"envelope.json", "message.eml"} <= files, f"{when}: files of {qid}", "envelope.json, message.eml",
               sorted(files))
        env = envelope(spool, qid)
        expect_eq(qid, env["id"], f"{when}: id in {qid}/envelope.json")
        for r in env["recipients"]:
            expect(r["status"] in ("pending", "delivered"), f"{when}: {qid} {r['address']}", "pending or delivered",
                   r["status"])
        expect(any(r["status"] == "pending" for r in env["recipients"]), f"{when}: {qid}",
               "a pending recipient (else it would have been removed)", env["recipients"])
        expect_eq(os.path.getsize(os.path.join(spool, "queue", qid, "message.eml")), env["size"],
                  f"{when}: {qid}: size")
    extra = sorted(f for qid in ids for f in os.listdir(os.path.join(spool, "queue", qid))
                   if f not in ("envelope.json", "message.eml"))
    print(f"{when}: {len(ids)} messages left, all readable; other files: {extra}")

run(main)
EOF
}

# kill_runq: kill -9 the runq the caller started as $runq_pid.
kill_runq()
{
    kill -KILL "$runq_pid" 2>/dev/null || true
    local status=0
    wait "$runq_pid" || status=$?
    if [[ $status -eq 0 ]]; then
        echo "runq had finished before the kill"
        return
    fi
    assert_eq 137 "$status" "exit status of the killed runq (SIGKILL)"
    # The command runq was waiting for lives on: let it finish. Then the last
    # delivery in the file may belong to the message runq was busy with.
    sleep 0.05
    local deadline=$((SECONDS + 5))
    while [[ -n $(ls "$RUNNING") ]]; do
        ((SECONDS < deadline)) || fail "the pipe command of the killed runq still runs after 5 s"
        sleep 0.02
    done
    tail -n 1 "$DELIVERED" | cut -d' ' -f1 >>"$TEST_TMP/in-flight"
}

step "1. kill -9 while runq waits for a slow pipe command"
echo 0.2 >"$SLOW"
# Not through a function: $! must be runq itself, not a subshell.
"$SMTPSPOOL_BIN" runq --log stderr "${RUNQ[@]}" 2>>"$TEST_TMP/runq.log" &
runq_pid=$!
deadline=$((SECONDS + 20))
while (($(wc -l <"$DELIVERED") < 5)); do
    ((SECONDS < deadline)) || fail "no 5 deliveries after 20 s"
    sleep 0.02
done
kill_runq
echo 0.02 >"$SLOW"
echo "deliveries so far: $(wc -l <"$DELIVERED")"
check_spool "after kill 1"

step "2. four more runqs, each killed at a random moment"
for round in 2 3 4 5; do
    mapfile -t left < <(ls "$SPOOL/queue")
    "$SMTPSPOOL_BIN" runq --log stderr "${RUNQ[@]}" "${left[@]}" 2>>"$TEST_TMP/runq.log" &
    runq_pid=$!
    sleep "0.$((RANDOM % 20 + 2))"
    kill_runq
    echo "round $round: deliveries so far: $(wc -l <"$DELIVERED")"
    check_spool "after kill $round"
done

step "3. the last runq delivers the rest"
rm -f "$DEFER" "$SLOW"
mapfile -t left < <(ls "$SPOOL/queue")
runq_logged "$TEST_TMP/runq.log" "${RUNQ[@]}" "${left[@]}" || fail "the last runq exited $?"
SPOOL=$SPOOL DELIVERED=$DELIVERED python3 - <<'EOF'
import collections, os
from e2elib import *
from deliverylib import *

spool = os.environ["SPOOL"]

def main():
    with open(os.environ["DELIVERED"]) as f:
        lines = f.read().splitlines()
    with open(os.path.join(os.environ["TEST_TMP"], "in-flight")) as f:
        in_flight = set(f.read().split())
    want = sorted([f"p{i}@pipe.test" for i in range(60)] + [f"d{i}@pipe.test" for i in range(0, 60, 3)])
    expect_eq(want, sorted(set(line.split(" ", 1)[1] for line in lines)), "recipients delivered (none lost)")
    expect_eq(60, len({line.split(" ", 1)[0] for line in lines}), "queue IDs in the deliveries")
    counts = collections.Counter(lines)
    dups = {k: v for k, v in counts.items() if v > 1}
    print(f"{len(lines)} deliveries, duplicates {dups}, messages in flight at the kills {sorted(in_flight)}")
    for line, n in dups.items():
        expect(line.split(" ", 1)[0] in in_flight, f"the duplicate delivery {line!r} ({n} times)",
               "only for a message in flight when runq was killed", sorted(in_flight))
    expect_eq([], queue_ids(spool), "queue/ at the end")
    expect_eq([], mailq_json(spool), "mailq --json at the end")

run(main)
EOF
