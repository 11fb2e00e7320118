#!/bin/bash
# DSN (RFC 3461) through runq, against the aiosmtpd smarthost and a maildir:
#  1. The smarthost offers DSN. M1 from alice@ with RET=HDRS ENVID=QQ+2B1, to
#     bob@ (NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;Bob+2Bx@far.test), carol@
#     (NOTIFY=NEVER) and dave@ (no parameters): the MAIL carries exactly
#     RET=HDRS ENVID=QQ+2B1, each RCPT exactly its own parameters (re-encoded
#     as xtext), and since that server reports success itself, runq queues no
#     notice: the queue ends empty.
#  2. The smarthost no longer offers DSN. M2 to bob@ with NOTIFY=SUCCESS: no
#     DSN parameter is sent (aiosmtpd would refuse it), and runq queues one
#     success notice to alice@ from the null sender with Action: relayed.
#  3. A maildir route. M3 with ENVID=E3 to eve@maildir.test (NOTIFY=SUCCESS
#     ORCPT=rfc822;Eve@maildir.test) and frank@maildir.test (no NOTIFY): both
#     delivered, and one success notice for eve only: an RFC 3464 report
#     (text/plain, message/delivery-status, text/rfc822-headers) with
#     Original-Envelope-Id: E3, Original-Recipient: rfc822; Eve@maildir.test,
#     Action: delivered, Status: 2.0.0, no Diagnostic-Code (no local paths
#     for the sender), and the header section of M3 without its body.
# shellcheck source=tests/e2e/lib.sh
source "$(dirname "$0")/lib.sh"
# shellcheck source=tests/e2e/deliverylib.sh
source "$E2E_DIR/deliverylib.sh"
need_aiosmtpd

SPOOL=$TEST_TMP/spool
SPOOL3=$TEST_TMP/spool3
MAIL=$TEST_TMP/mail
SINK=$TEST_TMP/sink
RULES=$TEST_TMP/rules.json
set_rules "$RULES" '{"dsn": true}'
start_smarthost "$SINK" "$RULES"
RUNQ=(--spool "$SPOOL" --hostname relay.test --smarthost "127.0.0.1:$SMARTHOST_PORT" --smtp-timeout 10s)

# queue SPOOL SESSION-LINES...: one session (LF line ends: a local client).
queue()
{
    local spool=$1
    shift
    printf '%s\n' "EHLO client.test" "$@" "QUIT" | queue_session "$spool"
}

step "1. to a smarthost with DSN: the parameters go on, no notice of ours"
M1=$(queue "$SPOOL" "MAIL FROM:<alice@client.test> RET=HDRS ENVID=QQ+2B1" \
    "RCPT TO:<bob@far.test> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;Bob+2Bx@far.test" \
    "RCPT TO:<carol@far.test> NOTIFY=NEVER" "RCPT TO:<dave@far.test>" "DATA" "Subject: one" "" "first" ".")
[[ -n $M1 ]] || fail "M1 not queued"
runq_logged "$TEST_TMP/runq1.log" "${RUNQ[@]}" || fail "runq exited $?"
cat "$TEST_TMP/runq1.log"
assert_contains "$(cat "$TEST_TMP/runq1.log")" "delivered=3 deferred=0 failed=0 bounces=0 removed=1" "runq log"
SPOOL=$SPOOL SINK=$SINK python3 - <<'EOF'
import os
from e2elib import *
from deliverylib import *

spool, sink = os.environ["SPOOL"], os.environ["SINK"]

def main():
    got = transactions(sink)
    expect_eq(1, len(got), "transactions at the smarthost")
    expect_eq(["RET=HDRS", "ENVID=QQ+2B1"], got[0]["dsn_mail"], "DSN parameters of MAIL")
    rcpts = {r["rcpt"]: r["dsn"] for r in jsonl(os.path.join(sink, "rcpts.jsonl"))}
    expect_eq({"bob@far.test": ["NOTIFY=SUCCESS,FAILURE", "ORCPT=rfc822;Bob+2Bx@far.test"],
               "carol@far.test": ["NOTIFY=NEVER"],
               "dave@far.test": []}, rcpts, "DSN parameters of each RCPT")
    expect_eq([], queue_ids(spool), "queue/ (no success notice: the smarthost reports)")

run(main)
EOF

step "2. to a smarthost without DSN: nothing passed on, a 'relayed' notice"
set_rules "$RULES" '{}'
M2=$(queue "$SPOOL" "MAIL FROM:<alice@client.test> ENVID=E2" "RCPT TO:<bob@far.test> NOTIFY=SUCCESS" \
    "DATA" "Subject: two" "" "second" ".")
[[ -n $M2 ]] || fail "M2 not queued"
runq_logged "$TEST_TMP/runq2.log" "${RUNQ[@]}" || fail "runq exited $?"
cat "$TEST_TMP/runq2.log"
assert_contains "$(cat "$TEST_TMP/runq2.log")" "delivered=1 deferred=0 failed=0 bounces=1 removed=1" "runq log"
assert_match "$(cat "$TEST_TMP/runq2.log")" "event=bounce id=$M2 bounce_id=[^ ]+ to=alice@client.test kind=success" \
    "runq log"
SPOOL=$SPOOL SINK=$SINK python3 - <<'EOF'
import email, email.policy, os
from e2elib import *
from deliverylib import *

spool, sink = os.environ["SPOOL"], os.environ["SINK"]

def main():
    got = transactions(sink)
    expect_eq(2, len(got), "transactions at the smarthost")
    expect_eq([], got[1]["dsn_mail"], "DSN parameters of MAIL")
    expect_eq([[]], [r["dsn"] for r in jsonl(os.path.join(sink, "rcpts.jsonl"))][3:], "DSN parameters of RCPT")
    ids = queue_ids(spool)
    expect_eq(1, len(ids), "messages in queue/ (the notice)")
    env = envelope(spool, ids[0])
    expect_eq(("", ["alice@client.test"]), (env["mail_from"], [r["address"] for r in env["recipients"]]),
              "the notice's envelope")
    msg = email.message_from_bytes(message(spool, ids[0]), policy=email.policy.compat32)
    expect_eq("Successful Mail Delivery Report", msg["Subject"], "Subject:")
    blocks = msg.get_payload()[1].get_payload()
    expect_eq("E2", blocks[0]["Original-Envelope-Id"], "Original-Envelope-Id")
    expect_eq(2, len(blocks), "delivery-status groups")
    expect_eq(("rfc822; bob@far.test", "relayed", "2.0.0"),
              (blocks[1]["Final-Recipient"], blocks[1]["Action"], blocks[1]["Status"]), "bob's group")
    expect((blocks[1]["Diagnostic-Code"] or "").startswith("smtp; 250"), "bob's Diagnostic-Code", "smtp; 250 ...",
           blocks[1]["Diagnostic-Code"])

run(main)
EOF

step "3. maildir with NOTIFY=SUCCESS: a success notice, Action: delivered"
M3=$(queue "$SPOOL3" "MAIL FROM:<alice@client.test> RET=FULL ENVID=E3" \
    "RCPT TO:<eve@maildir.test> NOTIFY=SUCCESS ORCPT=rfc822;Eve@maildir.test" "RCPT TO:<frank@maildir.test>" \
    "DATA" "Subject: three" "" "the body stays out" ".")
[[ -n $M3 ]] || fail "M3 not queued"
cp "$SPOOL3/queue/$M3/message.eml" "$TEST_TMP/m3.eml"
runq_logged "$TEST_TMP/runq3.log" --spool "$SPOOL3" --hostname relay.test \
    --route "maildir.test=maildir:$MAIL/%d/%u" || fail "runq exited $?"
cat "$TEST_TMP/runq3.log"
assert_contains "$(cat "$TEST_TMP/runq3.log")" "delivered=2 deferred=0 failed=0 bounces=1 removed=1" "runq log"
SPOOL=$SPOOL3 MAIL=$MAIL M3=$M3 python3 - <<'EOF'
import email, email.policy, os
from e2elib import *
from deliverylib import *

spool, mail, m3 = os.environ["SPOOL"], os.environ["MAIL"], os.environ["M3"]

def main():
    for user in ("eve", "frank"):
        files = os.listdir(os.path.join(mail, "maildir.test", user, "new"))
        expect_eq(1, len(files), f"messages in {user}'s maildir")
    ids = queue_ids(spool)
    expect_eq(1, len(ids), "messages in queue/ (the notice)")
    env = envelope(spool, ids[0])
    expect_eq(("", ["alice@client.test"]), (env["mail_from"], [r["address"] for r in env["recipients"]]),
              "the notice's envelope")
    raw = message(spool, ids[0])
    expect_eq(len(raw), env["size"], "size")
    msg = email.message_from_bytes(raw, policy=email.policy.compat32)
    expect(msg.defects == [], "MIME structure", "no defects", msg.defects)
    expect_eq("multipart/report", msg.get_content_type(), "Content-Type")
    expect_eq("delivery-status", msg.get_param("report-type"), "report-type")
    expect_eq("auto-replied", msg["Auto-Submitted"], "Auto-Submitted:")
    parts = msg.get_payload()
    expect_eq(["text/plain", "message/delivery-status", "text/rfc822-headers"],
              [p.get_content_type() for p in parts], "parts")
    expect(m3 in parts[0].get_payload() and "<eve@maildir.test>" in parts[0].get_payload(), "text part",
           "the id and eve", parts[0].get_payload())
    expect("frank" not in raw.decode(), "the notice", "nothing about frank (no NOTIFY)", None)
    blocks = parts[1].get_payload()
    expect_eq(2, len(blocks), "delivery-status groups")
    expect_eq("E3", blocks[0]["Original-Envelope-Id"], "Original-Envelope-Id")
    expect_eq("dns; relay.test", blocks[0]["Reporting-MTA"], "Reporting-MTA")
    b = blocks[1]
    expect_eq(("rfc822; Eve@maildir.test", "rfc822; eve@maildir.test", "delivered", "2.0.0", None),
              (b["Original-Recipient"], b["Final-Recipient"], b["Action"], b["Status"], b["Diagnostic-Code"]),
              "eve's group")
    with open(os.path.join(os.environ["TEST_TMP"], "m3.eml"), "rb") as f:
        expect_eq(head_of(f.read()), parts[2].get_payload(decode=True).rstrip(b"\r\n") + b"\r\n",
                  "the header section of M3")
    expect(b"the body stays out" not in raw, "the notice", "not the body (RET applies to failures)", None)

run(main)
EOF
