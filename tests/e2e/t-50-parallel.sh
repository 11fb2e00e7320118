#!/bin/bash
# 20 concurrent SMTP sessions through tcpserver (-c 40), each its own
# connection from its own Python thread, each sending 5 messages: 100 queue IDs,
# all distinct, each message stored with its own envelope and body, every
# envelope valid, and nothing left in SPOOL/tmp.
# shellcheck source=tests/e2e/lib.sh
source "$(dirname "$0")/lib.sh"
need_tool tcpserver tcprules python3

SPOOL=$TEST_TMP/spool
compile_rules "$REPO_ROOT/examples/tcpserver/tcp.smtp" "$TEST_TMP/tcp.smtp.cdb"
start_tcpserver "$TEST_TMP/tcp.smtp.cdb" 40 --spool "$SPOOL" --hostname mx.test.example --log stderr

step "20 sessions x 5 messages"
PORT=$PORT SPOOL=$SPOOL python3 - <<'EOF'
import os, smtplib, threading
from e2elib import *

port, spool = int(os.environ["PORT"]), os.environ["SPOOL"]
SESSIONS, MESSAGES = 20, 5

def body(s, m):
    return (f"Subject: session {s} message {m}\r\n\r\n".encode()
            + b"".join(f"session {s} message {m} line {i}\r\n".encode() for i in range(50 * (m + 1))))

results = {}   # session -> (source port, [(message number, queue id)])
errors = []
start = threading.Barrier(SESSIONS)

def session(s):
    try:
        c = smtplib.SMTP("127.0.0.1", port, local_hostname=f"client{s}.test.example", timeout=60)
        c.ehlo()
        source_port = c.sock.getsockname()[1]
        start.wait(timeout=30)   # every connection is open before any message goes
        sent = []
        for m in range(MESSAGES):
            code, text = c.mail(f"s{s}@client.test.example")
            expect_eq(250, code, f"session {s}: MAIL reply ({text!r})")
            code, text = c.rcpt(f"r{s}.{m}@mx.test.example")
            expect_eq(250, code, f"session {s}: RCPT reply ({text!r})")
            code, text = c.data(body(s, m))
            expect_eq(250, code, f"session {s}: DATA reply ({text!r})")
            sent.append((m, queued_id(text.decode(), f"session {s} DATA reply")))
        c.quit()
        results[s] = (source_port, sent)
    except Exception as e:  # noqa: BLE001 - reported below
        errors.append(f"session {s}: {type(e).__name__}: {e}")

def main():
    threads = [threading.Thread(target=session, args=(s,)) for s in range(SESSIONS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=90)
    expect_eq([], errors, "errors in the sessions")
    expect_eq(SESSIONS, len(results), "sessions that finished")

    ids = [qid for _, sent in results.values() for _, qid in sent]
    expect_eq(SESSIONS * MESSAGES, len(ids), "queue IDs returned")
    expect_eq(len(ids), len(set(ids)), "distinct queue IDs")
    expect_eq(sorted(ids), queue_ids(spool), "directories under queue/ against the IDs returned")
    expect_eq([], tmp_entries(spool), "entries left in tmp/")
    expect_eq(sorted(ids), [e["id"] for e in mailq_json(spool)], "IDs listed by mailq --json")
    ports = [p for p, _ in results.values()]
    expect_eq(SESSIONS, len(set(ports)), "distinct client ports")

    for s, (source_port, sent) in results.items():
        for m, qid in sent:
            env, msg = load(spool, qid)
            check_envelope(env, qid, msg)
            expect_eq("127.0.0.1", env["client"]["address"], f"{qid}: client.address")
            expect_eq(source_port, env["client"]["port"], f"{qid}: client.port of session {s}")
            expect_eq(f"client{s}.test.example", env["client"]["helo"], f"{qid}: client.helo")
            expect_eq(f"s{s}@client.test.example", env["mail_from"], f"{qid}: mail_from")
            expect_eq([f"r{s}.{m}@mx.test.example"], [r["address"] for r in env["recipients"]],
                      f"{qid}: recipients")
            _, rest = split_received(msg, qid)
            expect(rest == body(s, m), f"{qid}: message body", f"session {s} message {m}", rest[:80])
    # IDs sort by arrival: within one session, later messages sort later.
    for s, (_, sent) in results.items():
        got = [qid for _, qid in sent]
        expect_eq(sorted(got), got, f"session {s}: IDs in arrival order")

run(main)
EOF

step "the log"
log=$(cat "$TEST_TMP/tcpserver.log")
assert_eq 100 "$(grep -c 'event=queued' <<<"$log")" "event=queued lines"
assert_eq 0 "$(grep -c 'event=rejected' <<<"$log" || true)" "event=rejected lines"
# tcpserver -v logs "status: N/40" at each connection: all 20 were open at once.
peak=$(sed -n 's/^tcpserver: status: \([0-9]*\)\/40$/\1/p' <<<"$log" | sort -n | tail -1)
((peak >= 20)) || fail "concurrent sessions: expected at least 20 at once, tcpserver saw at most [$peak]"
