#!/bin/bash
# serve --deliver-now: one runq per session, started when the session ends,
# and at most 4 (limits::k_deliver_now_runners) at once per spool.
#  - one session of 20 messages: every 250 comes before any delivery (the
#    first delivery sleeps 2 s, and serve has exited by then); all 20 are
#    delivered by one runq (each delivery records its runq's pid), started
#    once with the 20 ids and the session's routes, in a session of its own
#    (not the test's), fds 0 and 1 on /dev/null and a runner slot of the
#    spool (SPOOL/state/runq-slot.N) locked on its fd 3;
#  - eight sessions at once, one message each, every delivery sleeping 3 s:
#    never more than 4 runqs deliver at the same time (each delivery counts
#    the runqs delivering as it starts); the sessions that found every slot
#    taken started none and say so in the log, their messages stay queued,
#    and the next scheduled runq delivers them.
# A runq is counted by its parent: the pipe command's parent is the runq that
# runs it (a process list would also see a runq's child between fork and exec).
# shellcheck source=tests/e2e/lib.sh
source "$(dirname "$0")/lib.sh"
need_tool python3

SPOOL=$TEST_TMP/spool
OUT=$TEST_TMP/out
mkdir -p "$OUT/active"
# shellcheck disable=SC2016 # expanded by the pipe command's shell
RECORD='echo $PPID >"$OUT/$MESSAGE_ID.runq"; tr "\0" "\n" </proc/$PPID/cmdline >"$OUT/$MESSAGE_ID.argv"; cut -d" " -f6 /proc/$PPID/stat >"$OUT/$MESSAGE_ID.sid"; for fd in 0 1 3; do readlink /proc/$PPID/fd/$fd; done >"$OUT/$MESSAGE_ID.fds"'

step "one session of 20 messages: one runq, after the session"
SPOOL=$SPOOL OUT=$OUT RECORD=$RECORD python3 - <<'EOF'
import os, subprocess, time
from e2elib import *

spool, out = os.environ["SPOOL"], os.environ["OUT"]
route = ("pipe.test=pipe:OUT=" + out + "; " + os.environ["RECORD"] +
         '; mkdir "$OUT/first" 2>/dev/null && sleep 2; cat >"$OUT/$MESSAGE_ID.tmp" && mv "$OUT/$MESSAGE_ID.tmp" "$OUT/$MESSAGE_ID"')
data = b"EHLO client.test\r\n"
for n in range(20):
    data += b"MAIL FROM:<s%d@client.test>\r\nRCPT TO:<r%d@pipe.test>\r\nDATA\r\nSubject: now %d\r\n\r\nbody\r\n.\r\n" % (n, n, n)
data += b"QUIT\r\n"
# --concurrency 1 (passed on to the runq): the runq delivers itself, no worker.
p = subprocess.run([binary(), "--spool", spool, "--hostname", "mx.test", "--log", "stderr", "--deliver-now",
                    "--concurrency", "1", "--route", route], input=data, capture_output=True, env=clean_env(),
                   timeout=30)
expect_eq(0, p.returncode, "serve's exit status")
ids = [line.rsplit(" ", 1)[1] for line in p.stdout.decode().splitlines() if "queued as" in line]
expect_eq(20, len(ids), f"messages accepted ({p.stdout!r})")
delivered_at_exit = [i for i in ids if os.path.exists(os.path.join(out, i))]
expect_eq([], delivered_at_exit, "messages delivered when serve had exited (the first delivery sleeps 2 s)")
log = p.stderr.decode()
started = [l for l in log.splitlines() if "event=deliver-now" in l]
expect_eq(1, len(started), f"deliver-now log lines ({log})")
expect("result=started" in started[0] and "messages=20" in started[0], "the deliver-now line",
       "result=started messages=20", started[0])

deadline = time.monotonic() + 60
while time.monotonic() < deadline and (queue_ids(spool) or not all(os.path.exists(os.path.join(out, i)) for i in ids)):
    time.sleep(0.1)
expect_eq([], queue_ids(spool), "queue/ after the deliveries")
runqs = set()
for i in ids:
    with open(os.path.join(out, i), "rb") as f:
        got = f.read()
    expect(got.startswith(b"Return-Path: <s") and b"\nDelivered-To: r" in got, f"{i}: the pipe's input",
           "Return-Path:, Delivered-To:", got[:200])
    with open(os.path.join(out, i + ".runq")) as f:
        runqs.add(int(f.read()))
expect_eq(1, len(runqs), f"runq processes that delivered the 20 messages ({sorted(runqs)})")
first = ids[0]
with open(os.path.join(out, first + ".argv")) as f:
    argv = f.read().split("\n")[:-1]
expect_eq(sorted(ids), sorted(argv[-20:]), "the ids the runq was started with")
expect("runq" in argv and "--route" in argv and route in argv, "the runq's arguments", "runq and the session's --route", argv)
expect(argv[argv.index("--concurrency") + 1] == "1", "the runq's --concurrency", "the session's, 1", argv)
with open(os.path.join(out, first + ".sid")) as f:
    sid = int(f.read())
expect(sid != os.getsid(0), "the runq's session", "not the test's", sid)
with open(os.path.join(out, first + ".fds")) as f:
    fds = f.read().split("\n")
expect_eq(["/dev/null", "/dev/null"], fds[:2], "the runq's fds 0 and 1")
expect(fds[2].startswith(os.path.realpath(spool) + "/state/runq-slot."), "the runq's fd 3", "a runner slot", fds[2])
EOF

step "eight sessions at once: at most 4 runqs deliver at the same time; the rest wait for the next runq"
SPOOL2=$TEST_TMP/spool2
OUT2=$TEST_TMP/out2
mkdir -p "$OUT2/active"
SPOOL=$SPOOL2 OUT=$OUT2 python3 - <<'EOF'
import os, subprocess, time
from e2elib import *

spool, out = os.environ["SPOOL"], os.environ["OUT"]
route = ("pipe.test=pipe:OUT=" + out + '; touch "$OUT/active/$PPID"; ls "$OUT/active" | wc -l >>"$OUT/overlap"; '
         'echo $PPID >>"$OUT/runqs"; sleep 3; cat >"$OUT/$MESSAGE_ID"; rm "$OUT/active/$PPID"')
args = [binary(), "--spool", spool, "--hostname", "mx.test", "--log", "stderr", "--deliver-now", "--route", route]
data = b"EHLO client.test\r\nMAIL FROM:<s@client.test>\r\nRCPT TO:<r@pipe.test>\r\nDATA\r\nSubject: x\r\n\r\nbody\r\n.\r\nQUIT\r\n"
os.makedirs(os.path.join(spool, "queue"), exist_ok=True)
sessions = [subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             env=clean_env()) for _ in range(8)]
results = [s.communicate(data, timeout=30) for s in sessions]
ids, started, waiting = [], 0, []
for (so, se), s in zip(results, sessions):
    expect_eq(0, s.returncode, "serve's exit status")
    qid = [l.rsplit(" ", 1)[1] for l in so.decode().splitlines() if "queued as" in l]
    expect_eq(1, len(qid), f"messages accepted ({so!r})")
    ids += qid
    lines = [l for l in se.decode().splitlines() if "event=deliver-now" in l]
    expect_eq(1, len(lines), f"deliver-now log lines ({se!r})")
    if "result=started" in lines[0]:
        started += 1
    else:
        expect("result=not-started" in lines[0] and "every runner slot is taken" in lines[0], "the deliver-now line",
               "not-started: every runner slot is taken", lines[0])
        waiting += qid
print(f"runqs started: {started}, messages waiting: {len(waiting)}")
expect(1 <= started <= 4, "runqs started by eight sessions at once", "1 to 4", started)

deadline = time.monotonic() + 60
while time.monotonic() < deadline and (len(queue_ids(spool)) > len(waiting) or os.listdir(os.path.join(out, "active"))):
    time.sleep(0.1)
with open(os.path.join(out, "overlap")) as f:
    overlap = [int(x) for x in f.read().split()]
with open(os.path.join(out, "runqs")) as f:
    runqs = set(f.read().split())
print(f"runqs delivering at once, as each delivery began: {overlap}")
expect(max(overlap) <= 4, "runqs delivering at once", "at most 4", overlap)
expect_eq(started, len(runqs), "runqs that delivered")
expect_eq(sorted(waiting), queue_ids(spool), "the messages left for the next runq")

p = subprocess.run([binary(), "runq", "--spool", spool, "--log", "stderr", "--route", route],
                   capture_output=True, env=clean_env(), timeout=120)
expect_eq(0, p.returncode, f"the scheduled runq's exit status ({p.stderr!r})")
expect_eq([], queue_ids(spool), "queue/ after the scheduled runq")
expect_eq(sorted(ids), sorted(i for i in os.listdir(out) if i in ids), "messages delivered")
EOF
