#!/bin/bash
# kill -9 of a runq with workers (--concurrency 4): its workers end with it
# (none goes on delivering as an orphan), the spool stays whole, and the next
# runq delivers the rest: no recipient lost. 40 messages to a pipe command
# that records its worker and takes 1 s (a worker's ten messages: 10 s).
# shellcheck source=tests/e2e/lib.sh
source "$(dirname "$0")/lib.sh"
# shellcheck source=tests/e2e/deliverylib.sh
source "$E2E_DIR/deliverylib.sh"
need_tool python3

SPOOL=$TEST_TMP/spool
DELIVERED=$TEST_TMP/delivered
WORKERS=$TEST_TMP/workers
SLOW=$TEST_TMP/slow
: >"$DELIVERED"
: >"$WORKERS"
echo 1 >"$SLOW"
cat >"$TEST_TMP/deliver.sh" <<END
#!/bin/sh
# The worker: the parent, or the parent's parent (the shell of the route), that is a runq.
for p in "\$PPID" "\$(cut -d' ' -f4 /proc/\$PPID/stat)"; do
    if tr '\\0' ' ' </proc/\$p/cmdline | grep -q ' runq '; then echo "\$p" >>"$WORKERS"; break; fi
done
cat >/dev/null
echo "\$MESSAGE_ID \$RECIPIENT" >>"$DELIVERED"
[ -e "$SLOW" ] && sleep "\$(cat "$SLOW")"
exit 0
END
chmod +x "$TEST_TMP/deliver.sh"
RUNQ=(--spool "$SPOOL" --hostname relay.test --concurrency 4 --concurrency-per-host 4
    --route "pipe.test=pipe:$TEST_TMP/deliver.sh")

step "queue 40 messages"
SPOOL=$SPOOL python3 - <<'END'
import os
from e2elib import *
from deliverylib import *

def main():
    queue(os.environ["SPOOL"], [(f"s{i}@client.test", [f"p{i}@pipe.test"], f"Subject: {i}\r\n\r\nbody {i}\r\n".encode())
                                for i in range(40)])

run(main)
END

step "kill -9 the runq once its workers deliver"
# Under a subreaper that reaps every process orphaned below it, so that a
# worker that outlives the runq is seen, and one that ends is gone (not
# left a zombie by an init that does not reap); it writes the runq's pid,
# then its exit status.
python3 - "$TEST_TMP/runq.pid" "$TEST_TMP/runq.status" "$SMTPSPOOL_BIN" runq --log stderr "${RUNQ[@]}" \
    2>>"$TEST_TMP/runq.log" <<'END' &
import ctypes, os, sys
PR_SET_CHILD_SUBREAPER = 36
if ctypes.CDLL(None, use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
    sys.exit("prctl(PR_SET_CHILD_SUBREAPER) failed")
pid = os.fork()
if pid == 0:
    os.execv(sys.argv[3], sys.argv[3:])
with open(sys.argv[1], "w") as f:
    f.write(str(pid))
status = None
while True:
    try:
        p, s = os.wait()
    except ChildProcessError:
        break
    if p == pid:
        status = s
with open(sys.argv[2], "w") as f:
    f.write(str(os.waitstatus_to_exitcode(status)))
END
reaper=$!
deadline=$((SECONDS + 10))
until [[ -s $TEST_TMP/runq.pid ]]; do
    ((SECONDS < deadline)) || fail "runq did not start"
    sleep 0.02
done
runq_pid=$(cat "$TEST_TMP/runq.pid")
deadline=$((SECONDS + 20))
while (($(sort -u "$WORKERS" | wc -l) < 4)); do
    ((SECONDS < deadline)) || fail "no 4 workers delivering after 20 s: $(sort -u "$WORKERS" | tr '\n' ' ')"
    sleep 0.02
done
kill -KILL "$runq_pid"
mapfile -t workers < <(sort -u "$WORKERS")
echo "workers: ${workers[*]}; deliveries when killed: $(wc -l <"$DELIVERED")"
# alive: one of the workers still runs (a zombie does not count).
alive()
{
    local p state
    for p in "${workers[@]}"; do
        state=$(awk '{ print $3 }' "/proc/$p/stat" 2>/dev/null) || continue
        [[ -n $state && $state != Z ]] && return 0
    done
    return 1
}
deadline=$((SECONDS + 5))
while alive; do
    ((SECONDS < deadline)) || fail "a worker of the killed runq still runs after 5 s"
    sleep 0.02
done
# The subreaper ends once every process below it has (the pipe commands
# that were running included).
wait "$reaper" || fail "the subreaper exited $?"
assert_eq -9 "$(cat "$TEST_TMP/runq.status")" "how the runq ended (SIGKILL)"
n=$(wc -l <"$DELIVERED")
sleep 0.5
assert_eq "$n" "$(wc -l <"$DELIVERED")" "deliveries once the workers had ended (none goes on)"
((n < 40)) || fail "all 40 delivered although runq was killed after 4: its workers went on"
"$SMTPSPOOL_BIN" mailq --json --spool "$SPOOL" >/dev/null || fail "mailq --json exited $? after the kill"

step "the next runq delivers the rest"
rm -f "$SLOW"
runq_logged "$TEST_TMP/runq.log" "${RUNQ[@]}" || fail "the last runq exited $?"
SPOOL=$SPOOL DELIVERED=$DELIVERED python3 - <<'END'
import os
from e2elib import *
from deliverylib import *

def main():
    with open(os.environ["DELIVERED"]) as f:
        lines = f.read().splitlines()
    expect_eq(sorted(f"p{i}@pipe.test" for i in range(40)), sorted(set(l.split(" ", 1)[1] for l in lines)),
              "recipients delivered (none lost)")
    expect_eq([], queue_ids(os.environ["SPOOL"]), "queue/ at the end")

run(main)
END
