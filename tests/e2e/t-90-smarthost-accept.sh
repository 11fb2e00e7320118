#!/bin/bash
# runq delivers to a smarthost that accepts everything (aiosmtpd, through
# tests/e2e/smarthost.py). Three queued messages: one with lines that need
# dot-stuffing (a lone ".", ".." and ". " lines, a 998-octet line, trailing
# spaces, empty lines), one from the null sender to two recipients, one
# 8BITMIME message with 8-bit octets. One runq must:
#  - send each message once, with the envelope sender and recipients of the
#    queue, MAIL FROM with SIZE= the size of message.eml (the server offers
#    SIZE) and BODY=8BITMIME for the 8-bit one, EHLO with --hostname;
#  - hand over exactly the octets of message.eml (the server undoes the
#    dot-stuffing);
#  - use one connection for all three messages;
#  - remove each message from the queue (nothing left in queue/ or tmp/),
#    log one delivery per recipient and exit 0;
#  - deliver 50 more messages on one connection in well under 2 s (no 40 ms
#    Nagle/delayed-ACK stall at each end of data).
# shellcheck source=tests/e2e/lib.sh
source "$(dirname "$0")/lib.sh"
# shellcheck source=tests/e2e/deliverylib.sh
source "$E2E_DIR/deliverylib.sh"
need_aiosmtpd

SPOOL=$TEST_TMP/spool
SINK=$TEST_TMP/sink

step "start the smarthost"
start_smarthost "$SINK"

step "queue three messages"
SPOOL=$SPOOL python3 - <<'EOF' >"$TEST_TMP/ids"
import os, shutil
from e2elib import *
from deliverylib import *

spool = os.environ["SPOOL"]
BODY1 = (b"From: Alice <alice@client.test>\r\n"
         b"To: Bob <bob@far.test>\r\n"
         b"Subject: dots and such\r\n"
         b"Message-ID: <one@client.test>\r\n"
         b"\r\n"
         b".\r\n"
         b"..\r\n"
         b". \r\n"
         b".leading dot\r\n"
         b"\r\n"
         b"\r\n"
         b"trailing spaces   \r\n"
         b"\ttab\r\n"
         + b"y" * 996 + b"\r\n"
         b"last\r\n")
BODY2 = (b"Subject: from the null sender\r\n"
         b"\r\n"
         b"two recipients\r\n")
BODY3 = ("Subject: 8 bits\r\n"
         "Content-Type: text/plain; charset=utf-8\r\n"
         "Content-Transfer-Encoding: 8bit\r\n"
         "\r\n"
         "Grüße, ¡olé! — ☃\r\n").encode()

def main():
    ids = queue(spool, [("alice@client.test", ["bob@far.test"], BODY1),
                        ("", ["postmaster@far.test", "carol@other.far.test"], BODY2),
                        ("dave@client.test", ["erin@far.test"], BODY3, "BODY=8BITMIME")])
    os.makedirs(os.path.join(os.environ["TEST_TMP"], "before"))
    for qid in ids:
        env = envelope(spool, qid)
        expect_eq(["pending"] * len(env["recipients"]), [r["status"] for r in env["recipients"]], f"{qid}: status")
        shutil.copy(os.path.join(spool, "queue", qid, "message.eml"),
                    os.path.join(os.environ["TEST_TMP"], "before", qid + ".eml"))
        shutil.copy(os.path.join(spool, "queue", qid, "envelope.json"),
                    os.path.join(os.environ["TEST_TMP"], "before", qid + ".json"))
    expect_eq("8BITMIME", envelope(spool, ids[2])["body"], "body of the third message")
    print("\n".join(ids))

run(main)
EOF
mapfile -t IDS <"$TEST_TMP/ids"
assert_eq 3 "${#IDS[@]}" "queued messages"

step "one runq to the smarthost"
t0=$EPOCHREALTIME
status=0
# --concurrency 1: the transactions arrive in queue order, one connection.
runq_logged "$TEST_TMP/runq.log" --spool "$SPOOL" --hostname relay.test --concurrency 1 \
    --smarthost "127.0.0.1:$SMARTHOST_PORT" --smtp-timeout 10s || status=$?
cat "$TEST_TMP/runq.log"
assert_eq 0 "$status" "exit status of runq"
elapsed=$(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%d", (b - a) * 1000 }')
echo "runq took ${elapsed} ms"

step "the smarthost received each message exactly as queued"
SPOOL=$SPOOL SINK=$SINK IDS="${IDS[*]}" python3 - <<'EOF'
import json, os
from e2elib import *
from deliverylib import *

spool, sink = os.environ["SPOOL"], os.environ["SINK"]
ids = os.environ["IDS"].split()
before = os.path.join(os.environ["TEST_TMP"], "before")

def main():
    got = transactions(sink)
    expect_eq(3, len(got), "transactions at the smarthost")
    for qid, t in zip(ids, got):
        with open(os.path.join(before, qid + ".json")) as f:
            env = json.load(f)
        with open(os.path.join(before, qid + ".eml"), "rb") as f:
            eml = f.read()
        expect_eq(env["mail_from"], t["mail_from"], f"{qid}: MAIL FROM at the smarthost")
        expect_eq([r["address"] for r in env["recipients"]], t["rcpt_tos"], f"{qid}: RCPT TO at the smarthost")
        expect_eq("relay.test", t["helo"], f"{qid}: EHLO name (--hostname)")
        expect(t["reply"].startswith("250"), f"{qid}: reply", "250", t["reply"])
        expect_eq(eml, received(sink, t), f"{qid}: octets received against message.eml")
        expect(f"SIZE={len(eml)}" in t["mail_options"], f"{qid}: MAIL FROM parameters",
               f"SIZE={len(eml)}", t["mail_options"])
        want_body = ["BODY=8BITMIME"] if env["body"] == "8BITMIME" else []
        expect_eq(want_body, [o for o in t["mail_options"] if o.startswith("BODY=")],
                  f"{qid}: BODY= parameter")
    expect_eq(1, len({tuple(t["peer"]) for t in got}), "connections used for the three messages (peers)")
    expect_eq([], queue_ids(spool), "queue/ after delivery")
    expect_eq([], tmp_entries(spool), "tmp/ after delivery")
    expect_eq([], mailq_json(spool), "mailq --json after delivery")

run(main)
EOF

step "the log tells the story"
log=$(cat "$TEST_TMP/runq.log")
assert_eq 4 "$(grep -c 'event=delivery .*result=delivered' <<<"$log")" "deliveries logged"
for id in "${IDS[@]}"; do
    assert_contains "$log" "event=removed id=$id" "runq log"
done
assert_contains "$log" "event=runq-done messages=3 attempted=3 delivered=4 deferred=0 failed=0 bounces=0 removed=3" \
    "runq log"
out=$("$SMTPSPOOL_BIN" mailq --spool "$SPOOL")
assert_eq "Mail queue is empty" "$out" "mailq"

step "a second runq finds nothing to do and sends nothing"
runq_logged "$TEST_TMP/runq2.log" --spool "$SPOOL" --hostname relay.test --smarthost "127.0.0.1:$SMARTHOST_PORT" ||
    fail "second runq exited $?"
assert_eq 3 "$(wc -l <"$SINK/transactions.jsonl")" "transactions after a second runq"

step "50 messages on one connection: no 40 ms stall per message"
# Nagle's algorithm holds back a small write (the end-of-data mark sent
# apart from the message) until the server ACKs the previous one, and the
# server delays that ACK (40 ms on Linux) while it waits for the end of data.
# A client that sends the mark apart without TCP_NODELAY gets 40 ms per
# message (under 25 messages/s); 50 messages must take well under 2 s.
SPOOL2=$TEST_TMP/spool2
SPOOL=$SPOOL2 python3 - <<'EOF2'
import os
from e2elib import *
from deliverylib import *

def main():
    queue(os.environ["SPOOL"], [(f"s{i}@client.test", [f"r{i}@far.test"], b"Subject: fast\r\n\r\nbody\r\n")
                                for i in range(50)])

run(main)
EOF2
t0=$EPOCHREALTIME
runq_logged "$TEST_TMP/runq3.log" --spool "$SPOOL2" --hostname relay.test --smarthost "127.0.0.1:$SMARTHOST_PORT" ||
    fail "runq of 50 messages exited $?"
ms=$(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%d", (b - a) * 1000 }')
echo "50 messages delivered in $ms ms"
assert_contains "$(cat "$TEST_TMP/runq3.log")" "delivered=50 deferred=0 failed=0 bounces=0 removed=50" "runq log"
assert_eq 53 "$(wc -l <"$SINK/transactions.jsonl")" "transactions at the smarthost"
((ms < 1200)) || fail "runq took $ms ms for 50 messages on one connection ($((ms / 50)) ms each):" \
    "the end of data waits for a delayed ACK (no TCP_NODELAY, '.' CRLF written apart from the message)"
