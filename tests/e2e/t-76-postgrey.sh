#!/bin/bash
# Greylisting with the real postgrey(8) and examples/postgrey.conf: postgrey
# started here on a free loopback port (the example's port replaced by it),
# with its database in the test's directory, empty whitelists and a 1-second
# --delay. The first attempt of a network client is 450 (postgrey's
# DEFER_IF_PERMIT); attempts are repeated, each a new session, until one is
# accepted (bounded, never a fixed sleep), and the accepted message carries
# postgrey's X-Greylist: field on top. Another recipient is greylisted anew.
# shellcheck source=tests/e2e/lib.sh
source "$(dirname "$0")/lib.sh"
need_tool python3
[[ -x /usr/sbin/postgrey ]] || skip_test "postgrey is not installed (make deps installs it)"

PORT=$(free_port)
DB=$TEST_TMP/postgrey
mkdir -p "$DB"
: >"$TEST_TMP/whitelist-clients"
: >"$TEST_TMP/whitelist-recipients"
start_bg "$TEST_TMP/postgrey.log" /usr/sbin/postgrey --inet="127.0.0.1:$PORT" --dbdir="$DB" --delay=1 \
    --user="$(id -un)" --group="$(id -gn)" --pidfile="$DB/pid" \
    --whitelist-clients="$TEST_TMP/whitelist-clients" --whitelist-recipients="$TEST_TMP/whitelist-recipients"
PG=$BG_PID
wait_for_port "$PORT" "$PG" "$TEST_TMP/postgrey.log"

# The example, with postgrey's port replaced by the test's.
CONF=$TEST_TMP/postgrey.conf
sed "s/^policy-service = inet:127.0.0.1:10023\$/policy-service = inet:127.0.0.1:$PORT/" \
    "$REPO_ROOT/examples/postgrey.conf" >"$CONF"
grep -qx "policy-service = inet:127.0.0.1:$PORT" "$CONF" || fail "the example has no policy-service line for postgrey"

step "first 450, then accepted after the delay, with X-Greylist:"
CONF=$CONF python3 - <<'EOF'
import os, re, subprocess, time
from e2elib import *

tmp = os.environ["TEST_TMP"]
spool = os.path.join(tmp, "spool")
env = {k: v for k, v in os.environ.items() if not k.startswith("TCP") and k not in ("PROTO", "RELAYCLIENT")}
client = dict(env, PROTO="TCP", TCPREMOTEIP="203.0.113.5", TCPREMOTEPORT="41000")


def attempt(rcpt):
    """One session; returns (the reply to RCPT, the queue id or None)."""
    data = (b"EHLO client.example\r\nMAIL FROM:<someone@sender.example>\r\n" +
            f"RCPT TO:<{rcpt}>\r\n".encode() + b"DATA\r\nSubject: greylisted\r\n\r\nhello\r\n.\r\nQUIT\r\n")
    p = subprocess.run([binary(), "--config", os.environ["CONF"], "--spool", spool, "--log", "stderr"],
                       input=data, capture_output=True, timeout=60, env=client)
    expect_eq(0, p.returncode, "exit status of the session")
    replies = [l for l in p.stdout.decode().split("\r\n") if re.match(r"^\d{3} ", l)]
    ids = [m.group(1) for l in replies for m in [re.search(r"queued as ([A-Za-z0-9_-]+)$", l)] if m]
    return replies[3], (ids[0] if ids else None), p.stderr.decode()


def main():
    rcpt, qid, log = attempt("alice@example.org")
    expect(rcpt.startswith("450 4.2.0 Greylisted"), "the first attempt", "450 4.2.0 Greylisted", rcpt)
    expect_eq(None, qid, "a queue id after the first attempt")
    expect(re.search(r"event=policy-service service=inet:127\.0\.0\.1:\d+ stage=rcpt to=alice@example.org "
                     r"action=defer_if_permit code=450", log), "the log", "postgrey's answer", log[-2000:])
    # Retries, as a client would make them, until postgrey's delay has passed.
    deadline = time.monotonic() + 15
    tries = 1
    while True:
        rcpt, qid, log = attempt("alice@example.org")
        tries += 1
        if not rcpt.startswith("450"):
            break
        expect(time.monotonic() < deadline, "a retry", "accepted within 15 s", rcpt)
        time.sleep(0.25)
    expect_eq("250 2.1.5 recipient OK", rcpt, f"the retry (attempt {tries})")
    expect(qid is not None, "the retry", "queued", qid)
    with open(os.path.join(spool, "queue", qid, "message.eml"), "rb") as f:
        msg = f.read()
    expect(re.match(rb"X-Greylist: delayed \d+ seconds by postgrey-[^\r\n]*\r\nReceived: from client\.example", msg),
           "the accepted message", "postgrey's X-Greylist: field on top", msg[:200])
    expect_eq([qid], queue_ids(spool), "the queue")
    rcpt, qid, log = attempt("bob@example.org")
    expect(rcpt.startswith("450 4.2.0"), "another recipient", "greylisted too", rcpt)


run(main)
EOF
grep -q "action=greylist, reason=new" "$TEST_TMP/postgrey.log" || fail "postgrey did not log the greylisting: $(cat "$TEST_TMP/postgrey.log")"
