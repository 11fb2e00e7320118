#!/bin/bash
# serve --deliver-now: smtpspool under tcpserver with a pipe route whose
# command sleeps 3 s before it takes the message. Two messages on one
# smtplib connection:
#  - each 250 comes at once (well under the 3 s of the command) and the
#    whole session is over in under 1.5 s: the session never waits for
#    delivery;
#  - a detached runq per message is running meanwhile: for that one ID, with
#    the session's routes, in a session of its own (not the test's), its
#    standard input and output on /dev/null;
#  - both messages are delivered by the pipe shortly after (in parallel: both
#    within 6 s), with the usual input, and the queue ends empty.
# shellcheck source=tests/e2e/lib.sh
source "$(dirname "$0")/lib.sh"
# shellcheck source=tests/e2e/deliverylib.sh
source "$E2E_DIR/deliverylib.sh"
need_tool tcpserver tcprules python3

SPOOL=$TEST_TMP/spool
OUT=$TEST_TMP/out
mkdir -p "$OUT"
compile_rules "$REPO_ROOT/examples/tcpserver/tcp.smtp" "$TEST_TMP/tcp.smtp.cdb"
start_tcpserver "$TEST_TMP/tcp.smtp.cdb" 5 --spool "$SPOOL" --hostname mx.test --log stderr --deliver-now \
    --route "pipe.test=pipe:sleep 3; cat >$OUT/\$MESSAGE_ID.tmp && mv $OUT/\$MESSAGE_ID.tmp $OUT/\$MESSAGE_ID"

step "two messages, each 250 at once, then the deliveries 3 s later"
PORT=$PORT SPOOL=$SPOOL OUT=$OUT python3 - <<'EOF'
import os, smtplib, time
from e2elib import *
from deliverylib import *

port, spool, out = int(os.environ["PORT"]), os.environ["SPOOL"], os.environ["OUT"]
BODY = b"Subject: now %d\r\n\r\ndeliver me now\r\n"

def runqs():
    """{pid: argv} of the runq processes working on our spool."""
    found = {}
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                argv = [a.decode() for a in f.read().split(b"\0")[:-1]]
        except OSError:
            continue
        if "runq" in argv and spool in argv:
            found[int(pid)] = argv
    return found

def main():
    t0 = time.monotonic()
    c = smtplib.SMTP("127.0.0.1", port, local_hostname="client.test", timeout=20)
    c.ehlo()
    ids, waits = [], []
    for n in (1, 2):
        c.mail(f"sender{n}@client.test")
        code, _ = c.rcpt(f"r{n}@pipe.test")
        expect_eq(250, code, "reply to RCPT")
        t = time.monotonic()
        code, text = c.data(BODY % n)
        waits.append(time.monotonic() - t)
        expect_eq(250, code, f"reply to DATA ({text!r})")
        ids.append(queued_id(text.decode(), "DATA reply"))
    c.quit()
    session = time.monotonic() - t0
    accepted = time.monotonic()
    print(f"250 after {[round(w, 3) for w in waits]} s, session {session:.3f} s")
    for w in waits:
        expect(w < 1.0, "time from the end of data to the 250", "under 1 s (the command sleeps 3 s)", w)
    expect(session < 1.5, "the whole session", "under 1.5 s", session)

    # The detached runqs, one per message, while their commands sleep.
    # (each was forked before the reply to the next command; give it time to exec)
    found = runqs()
    while len(found) < 2 and time.monotonic() < accepted + 1:
        time.sleep(0.02)
        found = runqs()
    expect_eq(2, len(found), f"runq processes for {spool} ({found})")
    expect_eq(sorted(ids), sorted(argv[-1] for argv in found.values()), "the ID each runq was started for")
    for pid, argv in found.items():
        expect("--route" in argv and any(a.startswith("pipe.test=pipe:sleep 3;") for a in argv),
               f"runq {pid}: arguments", "the session's --route", argv)
        expect(os.getsid(pid) != os.getsid(0), f"runq {pid}: session", "not the test's session", os.getsid(pid))
        for fd in (0, 1):
            expect_eq("/dev/null", os.readlink(f"/proc/{pid}/fd/{fd}"), f"runq {pid}: fd {fd}")

    deadline = accepted + 6
    while time.monotonic() < deadline and (queue_ids(spool) or runqs()):
        time.sleep(0.05)
    took = time.monotonic() - accepted
    print(f"delivered {took:.2f} s after the session")
    expect_eq([], queue_ids(spool), "queue/ 6 s after the session")
    expect_eq({}, runqs(), "runq processes still running")
    expect(took >= 2.5, "delivery time", "at least the command's 3 s (so it ran after the session)", took)
    for n, qid in enumerate(ids, 1):
        with open(os.path.join(out, qid), "rb") as f:
            got = f.read()
        expect(got.startswith(f"Return-Path: <sender{n}@client.test>\nDelivered-To: r{n}@pipe.test\nReceived: ".encode()),
               f"{qid}: the pipe's input", "Return-Path:, Delivered-To:, Received:", got[:200])
        expect(got.endswith(lf(BODY % n)), f"{qid}: the pipe's input", "the message with LF line ends", got)

run(main)
EOF
