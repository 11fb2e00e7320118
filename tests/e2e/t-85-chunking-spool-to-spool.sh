#!/bin/bash
# CHUNKING out: spool A's runq delivers to smtpspool B under tcpserver, which
# offers CHUNKING and BINARYMIME; recordio(1) between them records what A
# sends. Three messages: BODY=BINARYMIME with a NUL, a bare LF and a bare CR
# (refused before by every next hop), a 7-bit message of 2.5 MiB, and an
# 8BITMIME message. Each must arrive octet for octet (B's message.eml is B's
# Received: header followed by A's message.eml), with A's BODY=; A must have
# sent BDAT chunks of 1 MiB (no DATA), the last with LAST (tests/e2e/
# recordproxy.py, between them, records what A sends).
# shellcheck source=tests/e2e/lib.sh
source "$(dirname "$0")/lib.sh"
# shellcheck source=tests/e2e/deliverylib.sh
source "$E2E_DIR/deliverylib.sh"
need_tool tcpserver tcprules python3

A=$TEST_TMP/spool-a
B=$TEST_TMP/spool-b

step "start smtpspool B under tcpserver, and the recording proxy before it"
compile_rules "$REPO_ROOT/examples/tcpserver/tcp.smtp" "$TEST_TMP/tcp.smtp.cdb"
start_tcpserver "$TEST_TMP/tcp.smtp.cdb" 5 --spool "$B" --hostname b.test --log stderr
PROXY_PORT=$(free_port)
start_bg "$TEST_TMP/proxy.log" python3 "$E2E_DIR/recordproxy.py" "$PROXY_PORT" "$PORT" "$TEST_TMP/sent"
wait_for_port "$PROXY_PORT" "$BG_PID" "$TEST_TMP/proxy.log"

step "queue three messages in spool A"
A=$A python3 - <<'EOF'
import os, shutil
from e2elib import *
from deliverylib import *

spool = os.environ["A"]
M1 = b"Subject: binary\r\n\r\nNUL \x00, bare LF \n, bare CR \r, 8 bits \xff\xfe\r\n.\r\n"
M2 = b"Subject: big\r\n\r\n" + b"".join(b"line %07d of a big message .\r\n.\r\n" % i for i in range(75000))
M3 = "Subject: 8 bits\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nÄpfel und Birnen\r\n".encode()

def main():
    expect(len(M2) > 2.5 * 2**20, "the big message", "over 2.5 MiB", len(M2))
    ids = queue(spool, [("alice@client.test", ["bob@b.test"], M1, "BODY=BINARYMIME"),
                        ("alice@client.test", ["bob@b.test"], M2),
                        ("alice@client.test", ["bob@b.test"], M3, "BODY=8BITMIME")])
    os.makedirs(os.path.join(os.environ["TEST_TMP"], "a"))
    for qid, name in zip(ids, ("1", "big", "3")):
        shutil.copytree(os.path.join(spool, "queue", qid), os.path.join(os.environ["TEST_TMP"], "a", qid))
        shutil.copy(os.path.join(spool, "queue", qid, "message.eml"), f"{spool}-{name}.eml")

run(main)
EOF

step "runq in A with B as the smarthost"
# --concurrency 1: one connection, the commands in queue order.
runq_logged "$TEST_TMP/runq.log" --spool "$A" --hostname relay.test --smarthost "127.0.0.1:$PROXY_PORT" \
    --smtp-timeout 10s --concurrency 1 || fail "runq exited $?"
cat "$TEST_TMP/runq.log"
assert_contains "$(cat "$TEST_TMP/runq.log")" "delivered=3 deferred=0 failed=0 bounces=0 removed=3" "runq log"

step "the three messages are in spool B, octet for octet"
A=$A B=$B python3 - <<'EOF'
import json, os
from e2elib import *
from deliverylib import *

a, b = os.environ["A"], os.environ["B"]
copies = os.path.join(os.environ["TEST_TMP"], "a")

def main():
    a_ids = sorted(os.listdir(copies))
    b_ids = queue_ids(b)
    expect_eq(3, len(b_ids), "messages in spool B")
    for aid, bid in zip(a_ids, b_ids):
        with open(os.path.join(copies, aid, "envelope.json")) as f:
            aenv = json.load(f)
        with open(os.path.join(copies, aid, "message.eml"), "rb") as f:
            amsg = f.read()
        benv, bmsg = load(b, bid)
        expect_eq(aenv["body"], benv["body"], f"{bid}: body (as in A's {aid})")
        expect_eq(aenv["content"], benv["content"], f"{bid}: content (as in A's {aid})")
        header, rest = split_received(bmsg, bid)
        expect_eq(amsg, rest, f"{bid}: B's message.eml after its Received: header, against A's message.eml")
    expect_eq(["BINARYMIME", "7BIT", "8BITMIME"], [load(b, i)[0]["body"] for i in b_ids], "bodies in B")
    expect_eq(["binary", "7bit", "8bit"], [load(b, i)[0]["content"] for i in b_ids], "contents in B")

run(main)
EOF

step "A sent BDAT chunks, never DATA"
# (A chunk's last line and the next command can share a line.)
commands=$(tr -d '\0\r' <"$TEST_TMP/sent" | grep -a -o -E 'MAIL FROM:<[^>]*>.*|^DATA|BDAT [0-9]+( LAST)?')
printf '%s\n' "$commands"
big=$(wc -c <"$A"-big.eml)
assert_not_contains "$commands" "DATA" "commands A sent"
assert_eq "MAIL FROM:<alice@client.test> SIZE=$(wc -c <"$A"-1.eml) BODY=BINARYMIME
BDAT $(wc -c <"$A"-1.eml) LAST
MAIL FROM:<alice@client.test> SIZE=$big
BDAT 1048576
BDAT 1048576
BDAT $((big - 2097152)) LAST
MAIL FROM:<alice@client.test> SIZE=$(wc -c <"$A"-3.eml) BODY=8BITMIME
BDAT $(wc -c <"$A"-3.eml) LAST" "$commands" "commands A sent"
