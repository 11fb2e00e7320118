#!/bin/bash
# "250 2.0.0 ... queued as ID" only after the message is durable. strace
# follows tcpserver and the smtpspool it starts; for each of two messages sent
# with smtplib, the system calls before the write of the 250 reply must hold:
# fsync of tmp/ID/message.eml, of tmp/ID/envelope.json and of the directory
# tmp/ID, then the rename of tmp/ID to queue/ID, then fsync of queue/.
# shellcheck source=tests/e2e/lib.sh
source "$(dirname "$0")/lib.sh"
need_tool tcpserver tcprules python3 strace

if ! probe=$(strace -qq -o /dev/null true 2>&1); then
    skip_test "strace cannot trace here: $probe"
fi

SPOOL=$TEST_TMP/spool
TRACE=$TEST_TMP/trace
compile_rules "$REPO_ROOT/examples/tcpserver/tcp.smtp" "$TEST_TMP/tcp.smtp.cdb"
PORT=$(free_port)
start_bg "$TEST_TMP/tcpserver.log" strace -f -qq -y -s 200 -o "$TRACE" \
    -e trace=fsync,fdatasync,sync,syncfs,rename,renameat,renameat2,write,sendto,sendmsg,writev \
    tcpserver -R -H -l 0 -x "$TEST_TMP/tcp.smtp.cdb" -c 5 127.0.0.1 "$PORT" \
    "$SMTPSPOOL_BIN" --spool "$SPOOL" --hostname mx.test.example --log none
wait_for_port "$PORT" "$BG_PID" "$TEST_TMP/tcpserver.log"

step "two messages"
PORT=$PORT SPOOL=$SPOOL python3 - >"$TEST_TMP/ids" <<'EOF'
import os, smtplib
from e2elib import *

def main():
    c = smtplib.SMTP("127.0.0.1", int(os.environ["PORT"]), local_hostname="trace.test.example", timeout=20)
    c.ehlo()
    for n in range(2):
        c.mail("t@client.test.example")
        c.rcpt(f"r{n}@mx.test.example")
        code, text = c.data(f"Subject: traced {n}\r\n\r\nbody\r\n".encode())
        expect_eq(250, code, f"DATA reply ({text!r})")
        print(queued_id(text.decode(), "DATA reply"))
    c.quit()

run(main)
EOF
stop_bg "$BG_PID" # ends strace, so that the trace is complete

step "the order of system calls before each 250"
SPOOL=$SPOOL TRACE=$TRACE IDS="$(cat "$TEST_TMP/ids")" python3 - <<'EOF'
import os, re
from e2elib import *

spool = os.path.realpath(os.environ["SPOOL"])
ids = os.environ["IDS"].split()

def main():
    expect_eq(2, len(ids), "queue IDs")
    expect_eq(sorted(ids), queue_ids(spool), "the queue")
    with open(os.environ["TRACE"]) as f:
        lines = f.read().splitlines()
    for qid in ids:
        reply = next((i for i, l in enumerate(lines)
                      if re.search(r"\b(write|sendto|sendmsg|writev)\(1<", l) and f"queued as {qid}" in l), None)
        expect(reply is not None, "the trace", f"the write of the 250 reply for {qid}", None)
        pid = lines[reply].split()[0]
        calls = [l for l in lines[:reply] if l.split()[0] == pid]
        tmp, queue = f"{spool}/tmp/{qid}", f"{spool}/queue/{qid}"
        fsync = r"\b(fsync|fdatasync)\(\d+<{}>\) = 0"
        def find(what, pattern, lo, hi):
            hit = next((i for i in range(lo, hi) if re.search(pattern, calls[i])), None)
            expect(hit is not None, f"{qid}: system calls before the 250", what,
                   "\n" + "\n".join(c[:150] for c in calls[-8:]))
            return hit
        rename = find("the rename of tmp/ID to queue/ID", rf"\brename\w*\(.*\"{re.escape(tmp)}\".*\"{re.escape(queue)}\".*= 0",
                      0, len(calls))
        # Before the rename: both files and their directory are on disk.
        find("fsync of tmp/ID/message.eml before the rename", fsync.format(re.escape(tmp + "/message.eml")), 0, rename)
        find("fsync of tmp/ID/envelope.json before the rename", fsync.format(re.escape(tmp + "/envelope.json")), 0,
             rename)
        find("fsync of the directory tmp/ID before the rename", fsync.format(re.escape(tmp)), 0, rename)
        # After it, and before the reply: the rename itself is on disk.
        find("fsync of queue/ after the rename", fsync.format(re.escape(spool + "/queue")), rename + 1, len(calls))

run(main)
EOF
