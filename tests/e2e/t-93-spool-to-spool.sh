#!/bin/bash
# smtpspool as the smarthost of another smtpspool: spool A's runq delivers to
# smtpspool B under tcpserver (the example rules let 127.0.0.1 relay). Three
# messages: plain 7-bit with lines that need dot-stuffing, 8BITMIME with 8-bit
# octets, and SMTPUTF8 (+ 8BITMIME) with UTF-8 addresses. Each must arrive in
# spool B intact: B's message.eml is B's Received: header followed by A's
# message.eml byte for byte; the envelope (sender, recipients, body,
# smtputf8) is A's; B saw our --hostname in EHLO and all three on one
# connection. A's queue ends empty.
# shellcheck source=tests/e2e/lib.sh
source "$(dirname "$0")/lib.sh"
# shellcheck source=tests/e2e/deliverylib.sh
source "$E2E_DIR/deliverylib.sh"
need_tool tcpserver tcprules python3

A=$TEST_TMP/spool-a
B=$TEST_TMP/spool-b

step "start smtpspool B under tcpserver"
compile_rules "$REPO_ROOT/examples/tcpserver/tcp.smtp" "$TEST_TMP/tcp.smtp.cdb"
start_tcpserver "$TEST_TMP/tcp.smtp.cdb" 5 --spool "$B" --hostname b.test --log stderr

step "queue three messages in spool A"
A=$A python3 - <<'EOF' >"$TEST_TMP/ids"
import os, shutil
from e2elib import *
from deliverylib import *

spool = os.environ["A"]
M1 = (b"Subject: plain\r\n"
      b"\r\n"
      b".\r\n"
      b"..\r\n"
      b".x\r\n"
      b"end\r\n")
M2 = "Subject: 8 bits\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nÄpfel und Birnen\r\n".encode()
M3 = "Subject: =?utf-8?q?UTF-8_addresses?=\r\nFrom: jörg@client.test\r\n\r\nGrüße\r\n".encode()

def main():
    ids = queue(spool, [("alice@client.test", ["bob@b.test", "carol@elsewhere.test"], M1),
                        ("", ["dave@b.test"], M2, "BODY=8BITMIME"),
                        ("jörg@client.test", ["ünï@b.test"], M3, "BODY=8BITMIME", "SMTPUTF8")])
    os.makedirs(os.path.join(os.environ["TEST_TMP"], "a"))
    for qid in ids:
        shutil.copytree(os.path.join(spool, "queue", qid), os.path.join(os.environ["TEST_TMP"], "a", qid))
    print("\n".join(ids))

run(main)
EOF

step "runq in A with B as the smarthost"
# --concurrency 1: B receives the messages in A's queue order.
runq_logged "$TEST_TMP/runq.log" --spool "$A" --hostname relay.test --concurrency 1 --smarthost "127.0.0.1:$PORT" \
    --smtp-timeout 10s || fail "runq exited $?"
cat "$TEST_TMP/runq.log"
assert_contains "$(cat "$TEST_TMP/runq.log")" "delivered=4 deferred=0 failed=0 bounces=0 removed=3" "runq log"

step "the three messages are in spool B, intact"
A=$A B=$B python3 - <<'EOF'
import json, os
from e2elib import *
from deliverylib import *

a, b = os.environ["A"], os.environ["B"]
copies = os.path.join(os.environ["TEST_TMP"], "a")

def main():
    expect_eq([], queue_ids(a), "spool A's queue after runq")
    a_ids = sorted(os.listdir(copies))
    b_ids = queue_ids(b)
    expect_eq(3, len(b_ids), "messages in spool B")
    for aid, bid in zip(a_ids, b_ids):
        with open(os.path.join(copies, aid, "envelope.json")) as f:
            aenv = json.load(f)
        with open(os.path.join(copies, aid, "message.eml"), "rb") as f:
            amsg = f.read()
        benv, bmsg = load(b, bid)
        check_envelope(benv, bid, bmsg)
        for key in ("mail_from", "body", "smtputf8"):
            expect_eq(aenv[key], benv[key], f"{bid}: {key} (as in A's {aid})")
        expect_eq([r["address"] for r in aenv["recipients"]], [r["address"] for r in benv["recipients"]],
                  f"{bid}: recipients")
        header, rest = split_received(bmsg, bid)
        expect_eq(amsg, rest, f"{bid}: B's message.eml after its Received: header, against A's message.eml")
        expect(header.startswith(b"Received: from relay.test ([127.0.0.1])\r\n"), f"{bid}: B's Received:",
               "from relay.test ([127.0.0.1])", header)
        expect(b"by b.test (smtpspool)" in header, f"{bid}: B's Received:", "by b.test (smtpspool)", header)
        expect_eq("relay.test", benv["client"]["helo"], f"{bid}: client.helo in B")
        expect_eq("127.0.0.1", benv["client"]["address"], f"{bid}: client.address in B")
    expect_eq(True, load(b, b_ids[2])[0]["smtputf8"], "smtputf8 of the third message in B")
    expect_eq("8BITMIME", load(b, b_ids[1])[0]["body"], "body of the second message in B")

run(main)
EOF

step "B served one session with the three messages"
log=$(cat "$TEST_TMP/tcpserver.log")
assert_eq 3 "$(grep -c 'event=queued' <<<"$log")" "messages queued in B's log"
assert_contains "$log" "reason=quit messages=3 recipients=4" "B's log"
