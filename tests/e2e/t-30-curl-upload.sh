#!/bin/bash
# curl's smtp:// upload (--mail-from, --mail-rcpt, --upload-file) against
# smtpspool under tcpserver. The message (about 200 kB, CRLF line ends, lines
# that start with dots, a line that is only a dot, 8-bit octets) must be stored
# byte for byte after the Received: header: curl stuffs the dots, smtpspool
# must take them out again, and the size crosses the read and write buffers.
# shellcheck source=tests/e2e/lib.sh
source "$(dirname "$0")/lib.sh"
need_tool tcpserver tcprules curl python3

SPOOL=$TEST_TMP/spool
compile_rules "$REPO_ROOT/examples/tcpserver/tcp.smtp" "$TEST_TMP/tcp.smtp.cdb"
start_tcpserver "$TEST_TMP/tcp.smtp.cdb" 10 --spool "$SPOOL" --hostname mx.test.example --log stderr

step "make the message"
MSG=$TEST_TMP/message.eml
python3 - "$MSG" <<'EOF'
import random, sys
rnd = random.Random(20240601)
lines = [b"From: Curl Sender <curl@client.test.example>",
         b"To: one@mx.test.example, two@elsewhere.example",
         b"Subject: curl upload, byte-exact",
         b"MIME-Version: 1.0",
         b"Content-Type: text/plain; charset=utf-8",
         b"",
         b".a dot first",
         b"..two dots first",
         b".",
         b"...",
         b" . space dot",
         "Grüße, 8-bit octets: \u00e9\u00e8 \u2603".encode(),
         b"",
         b"trailing spaces   ",
         b"\ttab first"]
alphabet = b"abcdefghijklmnopqrstuvwxyz ABCDEFGHIJKLMNOPQRSTUVWXYZ 0123456789 .,;:-_!?"
size = sum(len(l) + 2 for l in lines)
while size < 200_000:
    n = rnd.choice([0, 1, 2, 40, 76, 200, 997, 998])
    line = bytes(rnd.choice(alphabet) for _ in range(n))
    if rnd.random() < 0.05:
        line = b"." + line[:997]
    lines.append(line)
    size += len(line) + 2
lines.append(b"the end")
with open(sys.argv[1], "wb") as f:
    f.write(b"\r\n".join(lines) + b"\r\n")
EOF

step "upload it with curl"
set +e
out=$(curl --silent --show-error --verbose --max-time 30 \
    --url "smtp://127.0.0.1:$PORT/client.test.example" \
    --mail-from curl@client.test.example \
    --mail-rcpt one@mx.test.example --mail-rcpt two@elsewhere.example \
    --upload-file "$MSG" 2>&1)
status=$?
set -e
assert_eq 0 "$status" "curl exit status (output: $(grep -v '^[*] ' <<<"$out" | head -40))"
assert_match "$out" "< 250 2\.0\.0 message accepted, queued as [A-Za-z0-9_-]+" "curl transcript"
id=$(sed -n 's/^< 250 2\.0\.0 message accepted, queued as \([A-Za-z0-9_-]*\).*/\1/p' <<<"$out" | tr -d '\r')
assert_eq "$id" "$(ls "$SPOOL/queue")" "the queue"
assert_eq 0 "$(count_entries "$SPOOL/tmp")" "entries left in tmp/"

step "the stored message and envelope"
SPOOL=$SPOOL ID=$id MSG=$MSG python3 - <<'EOF'
import os
from e2elib import *

spool, qid = os.environ["SPOOL"], os.environ["ID"]

def main():
    with open(os.environ["MSG"], "rb") as f:
        sent = f.read()
    env, msg = load(spool, qid)
    check_envelope(env, qid, msg)
    header, rest = split_received(msg, qid)
    expect_eq(sent, rest, f"{qid}: message.eml after Received: against the upload")
    expect(header.startswith(b"Received: from client.test.example ([127.0.0.1])"), f"{qid}: Received:",
           "from client.test.example ([127.0.0.1])", header)
    expect_eq(len(header) + len(sent), env["size"], f"{qid}: size")
    expect_eq("curl@client.test.example", env["mail_from"], f"{qid}: mail_from")
    expect_eq(["one@mx.test.example", "two@elsewhere.example"], [r["address"] for r in env["recipients"]],
              f"{qid}: recipients")
    expect_eq("127.0.0.1", env["client"]["address"], f"{qid}: client.address")
    expect_eq("client.test.example", env["client"]["helo"], f"{qid}: client.helo")
    expect_eq("ESMTP", env["client"]["protocol"], f"{qid}: client.protocol")

run(main)
EOF

step "smtpspool cat prints the stored message"
"$SMTPSPOOL_BIN" cat --spool "$SPOOL" "$id" >"$TEST_TMP/cat.out"
assert_files_equal "$SPOOL/queue/$id/message.eml" "$TEST_TMP/cat.out" "smtpspool cat output"
