#!/bin/bash
# swaks against smtpspool under tcpserver, from a client that may NOT relay:
# the rules are examples/tcpserver/tcp.smtp without RELAYCLIENT, and smtpspool
# runs with --relay-client 192.0.2.0/24, so 127.0.0.1 is a stranger.
#  - a message to a recipient in --local-domain is accepted and spooled;
#  - a message to a stranger domain gets 550 5.7.1 and nothing is spooled;
#  - with both recipients, only the local one is accepted and recorded.
# shellcheck source=tests/e2e/lib.sh
source "$(dirname "$0")/lib.sh"
need_tool tcpserver tcprules tcprulescheck swaks python3

SPOOL=$TEST_TMP/spool
RULES=$TEST_TMP/tcp.smtp.cdb
sed 's/,RELAYCLIENT=""//' "$REPO_ROOT/examples/tcpserver/tcp.smtp" >"$TEST_TMP/tcp.smtp"
compile_rules "$TEST_TMP/tcp.smtp" "$RULES"
out=$(TCPREMOTEIP=127.0.0.1 tcprulescheck "$RULES")
assert_contains "$out" "allow connection" "rules for 127.0.0.1"
assert_not_contains "$out" "RELAYCLIENT" "rules for 127.0.0.1"
start_tcpserver "$RULES" 10 --spool "$SPOOL" --hostname mx.test.example \
    --local-domain mx.test.example --local-domain test.example --relay-client 192.0.2.0/24 --log stderr

swaks_send()
{
    swaks --server "127.0.0.1:$PORT" --helo client.test.example --timeout 20 \
        --from sender@client.test.example "$@"
}

step "a recipient in a local domain is accepted"
set +e
out=$(swaks_send --to user@test.example --header "Subject: swaks e2e local" \
    --body "local delivery through swaks" 2>&1)
status=$?
set -e
assert_eq 0 "$status" "swaks exit status (output: $out)"
assert_match "$out" "<-  250 2\.1\.5 recipient OK" "swaks transcript, RCPT"
assert_match "$out" "<-  250 2\.0\.0 message accepted, queued as [A-Za-z0-9_-]+" "swaks transcript, DATA"
id1=$(sed -n 's/.*<-  250 2\.0\.0 message accepted, queued as \([A-Za-z0-9_-]*\).*/\1/p' <<<"$out")
assert_eq "$id1" "$(ls "$SPOOL/queue")" "the queue after the first message"

step "a stranger domain is refused with 550 5.7.1"
set +e
out=$(swaks_send --to someone@stranger.example --header "Subject: swaks e2e relay" --body "must not be relayed" 2>&1)
status=$?
set -e
assert_contains "$out" "<** 550 5.7.1 relaying denied" "swaks transcript, RCPT to a stranger domain"
assert_not_contains "$out" " -> DATA" "swaks transcript (no DATA without a recipient)"
assert_eq 24 "$status" "swaks exit status (24: every recipient refused)"
assert_eq "$id1" "$(ls "$SPOOL/queue")" "the queue after the refused message"

step "local and stranger recipients together: only the local one is taken"
set +e
out=$(swaks_send --to someone@stranger.example,postmaster@mx.test.example \
    --header "Subject: swaks e2e mixed" --body "one of two recipients" 2>&1)
status=$?
set -e
assert_eq 0 "$status" "swaks exit status (output: $out)"
assert_contains "$out" "<** 550 5.7.1 relaying denied" "swaks transcript, mixed recipients"
assert_match "$out" "queued as [A-Za-z0-9_-]+" "swaks transcript, mixed recipients"
id2=$(sed -n 's/.*<-  250 2\.0\.0 message accepted, queued as \([A-Za-z0-9_-]*\).*/\1/p' <<<"$out")
assert_eq 2 "$(count_entries "$SPOOL/queue")" "messages in the queue"
assert_eq 0 "$(count_entries "$SPOOL/tmp")" "entries left in tmp/"

step "the envelopes and messages"
SPOOL=$SPOOL ID1=$id1 ID2=$id2 python3 - <<'EOF'
import os
from e2elib import *

spool = os.environ["SPOOL"]

def main():
    listed = {e["id"]: e for e in mailq_json(spool)}
    expect_eq(sorted([os.environ["ID1"], os.environ["ID2"]]), sorted(listed), "IDs listed by mailq --json")
    for qid, rcpt, subject, text in ((os.environ["ID1"], "user@test.example", "swaks e2e local",
                                      "local delivery through swaks"),
                                     (os.environ["ID2"], "postmaster@mx.test.example", "swaks e2e mixed",
                                      "one of two recipients")):
        env, msg = load(spool, qid)
        check_envelope(env, qid, msg)
        expect_eq(listed[qid], env, f"{qid}: mailq --json entry against envelope.json")
        expect_eq("127.0.0.1", env["client"]["address"], f"{qid}: client.address")
        expect_eq("client.test.example", env["client"]["helo"], f"{qid}: client.helo")
        expect_eq("sender@client.test.example", env["mail_from"], f"{qid}: mail_from")
        expect_eq([rcpt], [r["address"] for r in env["recipients"]], f"{qid}: recipients")
        header, rest = split_received(msg, qid)
        expect(b"from client.test.example ([127.0.0.1])" in header, f"{qid}: Received:",
               "from client.test.example ([127.0.0.1])", header)
        expect(f"\r\nSubject: {subject}\r\n".encode() in rest, f"{qid}: message", f"Subject: {subject}", rest)
        expect(f"\r\n\r\n{text}\r\n".encode() in rest, f"{qid}: message body", text, rest)
        expect(b"\r\nX-Mailer: swaks" in rest, f"{qid}: message", "X-Mailer: swaks", rest)
        expect_crlf_only(msg, f"{qid}: message.eml")

run(main)
EOF

step "the log shows the client could not relay"
log=$(cat "$TEST_TMP/tcpserver.log")
assert_contains "$log" "relay=no" "smtpspool log"
assert_contains "$log" 'to=someone@stranger.example result=refused code=550' "smtpspool log"
