#!/bin/bash
# A smarthost that refuses some recipients for good (5xx to RCPT). Two messages:
#  M1 from alice@ to bob@ (accepted) and nobody@ (550 5.1.1);
#  M2 from carol@ to gone@ (550 5.1.1) and nomail@ (553 5.7.1).
# One runq must deliver bob, fail the three others at once (no retry), remove
# both originals and queue exactly one bounce per original, to its sender,
# from the null sender, as an RFC 3464 multipart/report: a text part naming
# the message and the failed recipients, a message/delivery-status part
# (Reporting-MTA; per recipient Final-Recipient, Action: failed, the Status
# of the server's enhanced code, Diagnostic-Code: smtp; with its reply) and
# the original header section as text/rfc822-headers.
# Then the bounces go out themselves: alice's is accepted (MAIL FROM:<>, the
# octets of its message.eml); carol's is refused with 550, and since a bounce
# has the null sender, no bounce of the bounce is queued: the queue ends empty.
# shellcheck source=tests/e2e/lib.sh
source "$(dirname "$0")/lib.sh"
# shellcheck source=tests/e2e/deliverylib.sh
source "$E2E_DIR/deliverylib.sh"
need_aiosmtpd

SPOOL=$TEST_TMP/spool
SINK=$TEST_TMP/sink
RULES=$TEST_TMP/rules.json
set_rules "$RULES" '{"rcpt": {"nobody@far.test": "550 5.1.1 <nobody@far.test>: no such user",
  "gone@far.test": "550 5.1.1 <gone@far.test>: mailbox gone",
  "nomail@far.test": "553 5.7.1 <nomail@far.test>: relay access denied"}}'
start_smarthost "$SINK" "$RULES"
RUNQ=(--spool "$SPOOL" --hostname relay.test --smarthost "127.0.0.1:$SMARTHOST_PORT" --smtp-timeout 10s)

step "queue M1 and M2"
SPOOL=$SPOOL python3 - <<'EOF' >"$TEST_TMP/ids"
import json, os, shutil
from e2elib import *
from deliverylib import *

spool = os.environ["SPOOL"]
M1 = (b"From: Alice <alice@client.test>\r\n"
      b"To: bob@far.test, nobody@far.test\r\n"
      b"Subject: the report must quote this\r\n"
      b"Message-ID: <m1.4711@client.test>\r\n"
      b"\r\n"
      b"Body text that must not be in the bounce.\r\n")
M2 = (b"From: carol@client.test\r\n"
      b"Subject: two failures\r\n"
      b"\r\n"
      b"second\r\n")

def main():
    ids = queue(spool, [("alice@client.test", ["bob@far.test", "nobody@far.test"], M1),
                        ("carol@client.test", ["gone@far.test", "nomail@far.test"], M2)])
    for qid in ids:
        shutil.copy(os.path.join(spool, "queue", qid, "message.eml"), os.path.join(os.environ["TEST_TMP"], qid + ".eml"))
        shutil.copy(os.path.join(spool, "queue", qid, "envelope.json"), os.path.join(os.environ["TEST_TMP"], qid + ".json"))
    print("\n".join(ids))

run(main)
EOF
mapfile -t IDS <"$TEST_TMP/ids"
M1=${IDS[0]}
M2=${IDS[1]}

step "runq: bob is delivered, three recipients fail, two bounces are queued"
runq_logged "$TEST_TMP/runq.log" "${RUNQ[@]}" || fail "runq exited $?"
cat "$TEST_TMP/runq.log"
log=$(cat "$TEST_TMP/runq.log")
assert_contains "$log" "event=runq-done messages=2 attempted=2 delivered=1 deferred=0 failed=3 bounces=2 removed=2" \
    "runq log"
SPOOL=$SPOOL SINK=$SINK M1=$M1 M2=$M2 python3 - <<'EOF' >"$TEST_TMP/bounces"
import json, os
from e2elib import *
from deliverylib import *

spool, sink, m1, m2 = os.environ["SPOOL"], os.environ["SINK"], os.environ["M1"], os.environ["M2"]

def original(qid):
    with open(os.path.join(os.environ["TEST_TMP"], qid + ".json")) as f:
        env = json.load(f)
    with open(os.path.join(os.environ["TEST_TMP"], qid + ".eml"), "rb") as f:
        return env, f.read()

def main():
    got = transactions(sink)
    expect_eq([("alice@client.test", ["bob@far.test"])], [(t["mail_from"], t["rcpt_tos"]) for t in got],
              "transactions at the smarthost")
    left = queue_ids(spool)
    expect(m1 not in left and m2 not in left, "queue/", "neither original", left)
    expect_eq(2, len(left), "messages in queue/ (the two bounces)")
    bounces = {envelope(spool, b)["recipients"][0]["address"]: b for b in left}
    expect_eq(["alice@client.test", "carol@client.test"], sorted(bounces), "bounce recipients")
    env1, eml1 = original(m1)
    msg = check_bounce(spool, bounces["alice@client.test"], env1,
                       {"nobody@far.test": (r"5\.1\.1", "smtp; 550 5.1.1 <nobody@far.test>: no such user")},
                       head_of(eml1))
    expect(b"must not be in the bounce" not in message(spool, bounces["alice@client.test"]),
           "alice's bounce", "no body of the original", None)
    expect(b"bob@far.test>:" not in message(spool, bounces["alice@client.test"]),
           "alice's bounce", "no line for the delivered recipient bob", None)
    env2, eml2 = original(m2)
    check_bounce(spool, bounces["carol@client.test"], env2,
                 {"gone@far.test": (r"5\.1\.1", "smtp; 550 5.1.1 <gone@far.test>: mailbox gone"),
                  "nomail@far.test": (r"5\.7\.1", "smtp; 553 5.7.1 <nomail@far.test>: relay access denied")},
                 head_of(eml2))
    with open(os.path.join(os.environ["TEST_TMP"], "alice-bounce.eml"), "wb") as f:
        f.write(message(spool, bounces["alice@client.test"]))
    print(bounces["alice@client.test"], bounces["carol@client.test"])

run(main)
EOF
read -r B1 B2 <"$TEST_TMP/bounces"
assert_contains "$log" "event=bounce id=$M1 bounce_id=$B1 to=alice@client.test" "runq log"
assert_contains "$log" "event=bounce id=$M2 bounce_id=$B2 to=carol@client.test" "runq log"
assert_match "$log" "event=delivery id=$M1 to=nobody@far.test via=smtp:[^ ]+ result=failed" "runq log"

step "the bounces go out: alice's is accepted, carol's refused without a bounce of the bounce"
set_rules "$RULES" '{"rcpt": {"carol@client.test": "550 5.1.1 <carol@client.test>: no such user"}}'
runq_logged "$TEST_TMP/runq2.log" "${RUNQ[@]}" || fail "runq of the bounces exited $?"
cat "$TEST_TMP/runq2.log"
SPOOL=$SPOOL SINK=$SINK python3 - <<'EOF'
import os
from e2elib import *
from deliverylib import *

spool, sink = os.environ["SPOOL"], os.environ["SINK"]

def main():
    got = transactions(sink)
    expect_eq(2, len(got), "transactions at the smarthost")
    expect_eq(("", ["alice@client.test"]), (got[1]["mail_from"], got[1]["rcpt_tos"]), "the bounce's envelope")
    with open(os.path.join(os.environ["TEST_TMP"], "alice-bounce.eml"), "rb") as f:
        expect_eq(f.read(), received(sink, got[1]), "octets of alice's bounce at the smarthost")
    refused = [r for r in jsonl(os.path.join(sink, "rcpts.jsonl")) if r["rcpt"] == "carol@client.test"]
    expect_eq([("", "550")], [(r["mail_from"], r["reply"][:3]) for r in refused], "RCPT of carol's bounce")
    expect_eq([], queue_ids(spool), "queue/ (no bounce of a bounce)")
    expect_eq([], tmp_entries(spool), "tmp/")

run(main)
EOF
assert_contains "$(cat "$TEST_TMP/runq2.log")" "bounces=0 removed=2" "runq log of the bounces"
