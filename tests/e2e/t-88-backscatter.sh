#!/bin/bash
# Backscatter: a stranger (a network client that may not relay) names a third
# party as the sender, asks RET=FULL and NOTIFY=SUCCESS, and sends a 1 MB
# message (8 KiB of header fields, then the body) to a recipient that the
# smarthost refuses (550) and to one it accepts. The same message also comes
# from a relay client (a local client). One runq:
#  - the stranger's envelope says RET=HDRS, dsn_limited, NOTIFY FAILURE only;
#    its one notice (no success notice) is a failure report whose returned
#    part is text/rfc822-headers: at most 4 KiB of whole header fields, none
#    of the body; the whole notice is under 8 KiB;
#  - the relay client's failure report returns the whole message
#    (message/rfc822), and its success notice is queued.
# A second runq sends the notices: the third party receives under 8 KiB,
# without the body.
# shellcheck source=tests/e2e/lib.sh
source "$(dirname "$0")/lib.sh"
# shellcheck source=tests/e2e/deliverylib.sh
source "$E2E_DIR/deliverylib.sh"
need_aiosmtpd

SPOOL=$TEST_TMP/spool
SINK=$TEST_TMP/sink
RULES=$TEST_TMP/rules.json
set_rules "$RULES" '{"rcpt": {"nosuchuser@example.com": "550 5.1.1 <nosuchuser@example.com>: no such user"}}'
start_smarthost "$SINK" "$RULES"
ROUTES=(--route "example.com=smtp:127.0.0.1:$SMARTHOST_PORT" --smarthost "127.0.0.1:$SMARTHOST_PORT")
RUNQ=(--spool "$SPOOL" --hostname mx.example.com "${ROUTES[@]}" --smtp-timeout 10s)

step "a stranger and a relay client each send a 1 MB message with RET=FULL and NOTIFY=SUCCESS"
SPOOL=$SPOOL PORT=$SMARTHOST_PORT python3 - <<'EOF' >"$TEST_TMP/ids"
import os, re, subprocess
from e2elib import *
from deliverylib import *

spool, port = os.environ["SPOOL"], os.environ["PORT"]
head = b"Subject: BUY CHEAP PILLS\r\n" + b"".join(b"X-Spam-%04d: visit http://spam.example/ now\r\n" % i
                                                  for i in range(200))
body = b"".join(b"SPAM BODY chosen by the attacker: http://spam.example/ %06d\r\n" % i for i in range(17000))
msg = head + b"\r\n" + body
expect(len(msg) > 1 << 20, "the test message", "over 1 MB", len(msg))

def send(sender, env, log):
    session = (b"EHLO spammer.example\r\n" + f"MAIL FROM:<{sender}> RET=FULL\r\n".encode() +
               b"RCPT TO:<nosuchuser@example.com> NOTIFY=SUCCESS,FAILURE\r\n"
               b"RCPT TO:<alice@example.com> NOTIFY=SUCCESS\r\n"
               b"DATA\r\n" + stuff(msg) + b"QUIT\r\n")
    p = subprocess.run([binary(), "--spool", spool, "--hostname", "mx.example.com", "--local-domain", "example.com",
                        "--route", f"example.com=smtp:127.0.0.1:{port}", "--log", "stderr"],
                       input=session, capture_output=True, timeout=60, env=env)
    expect_eq(0, p.returncode, f"exit status of {sender}'s session")
    with open(os.path.join(os.environ["TEST_TMP"], log), "wb") as f:
        f.write(p.stderr)
    ids = re.findall(rb"^250 2\.0\.0 message accepted, queued as ([A-Za-z0-9_-]+)\r$", p.stdout, re.M)
    expect_eq(1, len(ids), f"messages queued from {sender} (replies {p.stdout[-400:]!r})")
    return ids[0].decode()

env = {k: v for k, v in os.environ.items() if not k.startswith("TCP") and k not in ("PROTO", "RELAYCLIENT")}
stranger = dict(env, PROTO="TCP", TCPREMOTEIP="203.0.113.66", TCPREMOTEPORT="41000", TCPLOCALIP="192.0.2.1",
                TCPLOCALPORT="25")

def main():
    s = send("victim@third-party.example", stranger, "serve-stranger.log")
    r = send("trusted@client.test", env, "serve-relay.log")
    e = envelope(spool, s)
    expect_eq(("HDRS", True), (e.get("dsn_ret"), e.get("dsn_limited")), "the stranger's RET and dsn_limited")
    expect_eq([["FAILURE"], ["NEVER"]], [x.get("notify") for x in e["recipients"]], "the stranger's NOTIFY")
    e = envelope(spool, r)
    expect_eq(("FULL", None), (e.get("dsn_ret"), e.get("dsn_limited")), "the relay client's RET and dsn_limited")
    print(s)
    print(r)

run(main)
EOF
mapfile -t IDS <"$TEST_TMP/ids"
S=${IDS[0]}
R=${IDS[1]}
assert_match "$(cat "$TEST_TMP/serve-stranger.log")" "event=queued id=$S size=[0-9]+ recipients=2 dsn=limited" "serve log"
assert_not_contains "$(cat "$TEST_TMP/serve-relay.log")" "dsn=limited" "serve log of the relay client"

step "runq: alice delivered twice, nosuchuser fails twice; the stranger gets one small failure notice"
runq_logged "$TEST_TMP/runq1.log" "${RUNQ[@]}" || fail "runq exited $?"
cat "$TEST_TMP/runq1.log"
log=$(cat "$TEST_TMP/runq1.log")
assert_contains "$log" "delivered=2 deferred=0 failed=2 bounces=3 removed=2" "runq log"
assert_match "$log" "event=bounce id=$S bounce_id=[^ ]+ to=victim@third-party.example kind=failure" "runq log"
assert_not_contains "$log" "to=victim@third-party.example kind=success" "runq log"
SPOOL=$SPOOL S=$S R=$R python3 - <<'EOF'
import email, email.policy, os
from e2elib import *
from deliverylib import *

spool, s, r = os.environ["SPOOL"], os.environ["S"], os.environ["R"]

def main():
    notices = {}
    for qid in queue_ids(spool):
        raw = message(spool, qid)
        msg = email.message_from_bytes(raw, policy=email.policy.compat32)
        notices[(envelope(spool, qid)["recipients"][0]["address"], msg["Subject"])] = raw
    fail_subject, ok_subject = "Undelivered Mail Returned to Sender", "Successful Mail Delivery Report"
    expect_eq(sorted([("victim@third-party.example", fail_subject), ("trusted@client.test", fail_subject),
                      ("trusted@client.test", ok_subject)]), sorted(notices), "the notices queued")
    raw = notices[("victim@third-party.example", fail_subject)]
    expect(len(raw) < 8192, "the stranger's notice", "under 8 KiB", len(raw))
    expect(b"SPAM BODY" not in raw, "the stranger's notice", "none of the body", None)
    parts = email.message_from_bytes(raw, policy=email.policy.compat32).get_payload()
    expect_eq(["text/plain", "message/delivery-status", "text/rfc822-headers"],
              [p.get_content_type() for p in parts], "the stranger's notice's parts")
    returned = parts[2].get_payload(decode=True)
    expect(len(returned) <= 4096 + 2, "the returned header section", "at most 4 KiB", len(returned))
    expect(returned.startswith(b"Received: from spammer.example"), "the returned header section",
           "our Received: first", returned[:80])
    expect(returned.rstrip(b"\r\n").endswith(b" now"), "the returned header section", "whole fields only",
           returned[-80:])
    raw = notices[("trusted@client.test", fail_subject)]
    expect(len(raw) > 1 << 20, "the relay client's failure notice", "the whole message (RET=FULL)", len(raw))
    expect_eq(["text/plain", "message/delivery-status", "message/rfc822"],
              [p.get_content_type() for p in email.message_from_bytes(raw, policy=email.policy.compat32).get_payload()],
              "the relay client's failure notice's parts")

run(main)
EOF

step "the notices go out: the third party gets under 8 KiB and no body"
runq_logged "$TEST_TMP/runq2.log" "${RUNQ[@]}" || fail "runq of the notices exited $?"
cat "$TEST_TMP/runq2.log"
assert_contains "$(cat "$TEST_TMP/runq2.log")" "delivered=3 deferred=0 failed=0 bounces=0 removed=3" "runq log"
SINK=$SINK python3 - <<'EOF'
import os
from e2elib import *
from deliverylib import *

sink = os.environ["SINK"]

def main():
    to_victim = [t for t in transactions(sink) if t["rcpt_tos"] == ["victim@third-party.example"]]
    expect_eq([""], [t["mail_from"] for t in to_victim], "transactions to the third party (from <>)")
    got = received(sink, to_victim[0])
    expect(len(got) < 8192, "what the third party received", "under 8 KiB", len(got))
    expect(b"SPAM BODY" not in got, "what the third party received", "none of the body", None)
    expect(b"X-Spam-0000: visit http://spam.example/ now" in got, "what the third party received",
           "the first header fields", None)

run(main)
EOF
