#!/bin/bash
# The amqp transport against a real RabbitMQ (Debian's rabbitmq-server, started
# by the test on 127.0.0.1 and a free port; rabbitlib.sh), an exchange "mail"
# and a quorum queue "inbox" bound to it with the key "smtp".
#  1. A message to a@amqp.test, b@amqp.test (the amqp route), c@local.test (a
#     maildir) and x@unbound.test, y@noexchange.test, z@badlogin.test (amqp
#     routes whose key no queue is bound to, whose exchange does not exist,
#     whose login is refused): one runq delivers a and b with one
#     publication, confirmed: in the queue once, persistent, message/rfc822,
#     its body message.eml octet for octet, its message id the idempotency key
#     (computed here independently: idempotency.py), its headers the envelope
#     of a and b only. x, y and z stay pending with the broker's reason
#     (312 NO_ROUTE, 404 NOT_FOUND, the refused login); the password appears
#     in no log line and no envelope.
#     runq --dry-run names the broker, virtual host, exchange and key first.
#     Of two messages for a queue that holds one (x-overflow reject-publish),
#     one is delivered and the broker nacks the other: deferred.
#  2. A credentials file that group or others may read stops runq (exit 78).
#  3. The broker under a memory alarm blocks publishers: a message is
#     deferred once --amqp-timeout 1s has passed without a confirm, and so
#     is one of 16 MB whose sending blocks (the socket buffers full). The
#     broker stopped: deferred (connect), not lost.
#  4. A message larger than --max-message-size and 64 KiB fails before any
#     connection (the broker is down).
# shellcheck source=tests/e2e/lib.sh
source "$(dirname "$0")/lib.sh"
# shellcheck source=tests/e2e/deliverylib.sh
source "$E2E_DIR/deliverylib.sh"
# shellcheck source=tests/e2e/rabbitlib.sh
source "$E2E_DIR/rabbitlib.sh"
need_rabbitmq

SPOOL=$TEST_TMP/spool
MAIL=$TEST_TMP/mail

step "start rabbitmq-server"
start_rabbitmq
echo "rabbitmq-server started in ${RABBIT_STARTUP_SECONDS}s"
amqp_tool declare mail inbox smtp
amqp_tool declare-full mail full full

CREDS=$TEST_TMP/amqp-credentials
printf '# host[:port] user:password\n127.0.0.1:%s mailer:%s\nlocalhost:%s mailer:wrong-%s\n' \
    "$AMQP_PORT" "$RABBIT_PASSWORD" "$AMQP_PORT" "$RABBIT_PASSWORD" >"$CREDS"
chmod 600 "$CREDS"
ROUTES=(--route "amqp.test=amqp://mailer@127.0.0.1:$AMQP_PORT/%2F?exchange=mail&routing_key=smtp"
    --route "unbound.test=amqp://mailer@127.0.0.1:$AMQP_PORT/?exchange=mail&routing_key=nobody"
    --route "noexchange.test=amqp://127.0.0.1:$AMQP_PORT?exchange=absent&routing_key=smtp"
    --route "badlogin.test=amqp://mailer@localhost:$AMQP_PORT?exchange=mail&routing_key=smtp"
    --route "full.test=amqp://mailer@127.0.0.1:$AMQP_PORT/?exchange=mail&routing_key=full"
    --route "local.test=maildir:$MAIL/%u")

step "1. queue and deliver"
SPOOL=$SPOOL python3 - <<'EOF' >"$TEST_TMP/ids"
import os, shutil
from e2elib import *
from deliverylib import *

spool = os.environ["SPOOL"]
BODY = (b"From: alice@client.test\r\nSubject: to the broker\r\n\r\n.a dot\r\n"
        b"8-bit \xc3\xa9 and a control \x01 octet\r\n")
# 1 MB: several AMQP body frames (librabbitmq's frames are 128 KiB).
BIG = b"Subject: big\r\n\r\n" + b"".join(b"%07d 0123456789abcdefghijklmnopqrstuvwxyz\r\n" % i for i in range(20000))

def main():
    ids = queue(spool, [("alice@client.test", ["a@amqp.test", "b@AMQP.test", "c@local.test", "x@unbound.test",
                                               "y@noexchange.test", "z@badlogin.test"], BODY, "BODY=8BITMIME"),
                        ("bob@client.test", ["big@amqp.test"], BIG),
                        ("carol@client.test", ["n1@full.test"], b"Subject: one\r\n\r\none\r\n"),
                        ("carol@client.test", ["n2@full.test"], b"Subject: two\r\n\r\ntwo\r\n")])
    for qid, name in zip(ids, ("m1.eml", "big.eml")):
        shutil.copyfile(os.path.join(spool, "queue", qid, "message.eml"), os.path.join(os.environ["TEST_TMP"], name))
    print(" ".join(ids))

run(main)
EOF
read -r M1 _ N1 N2 <"$TEST_TMP/ids"
dry=$("$SMTPSPOOL_BIN" runq --dry-run --spool "$SPOOL" --hostname relay.test --amqp-credentials-file "$CREDS" \
    "${ROUTES[@]}")
assert_contains "$dry" "publish by AMQP to 127.0.0.1:$AMQP_PORT (virtual host /, exchange 'mail', routing key 'smtp')" \
    "runq --dry-run"
status=0
runq_logged "$TEST_TMP/runq.log" --spool "$SPOOL" --hostname relay.test --concurrency 1 --amqp-timeout 10s \
    --amqp-credentials-file "$CREDS" --retry-schedule 5m "${ROUTES[@]}" || status=$?
cat "$TEST_TMP/runq.log"
assert_eq 0 "$status" "exit status of runq"

amqp_tool drain inbox >"$TEST_TMP/drained"
SPOOL=$SPOOL M1=$M1 N1=$N1 N2=$N2 PW=$RABBIT_PASSWORD python3 - <<'EOF'
import json, os
from e2elib import *
from deliverylib import *
from idempotency import idempotency_key

spool, m1, pw, tmp = os.environ["SPOOL"], os.environ["M1"], os.environ["PW"], os.environ["TEST_TMP"]

def main():
    got = jsonl(os.path.join(tmp, "drained"))
    expect_eq(2, len(got), "messages in the quorum queue")
    big = [g for g in got if g["headers"]["rcpt-to"] == ["big@amqp.test"]]
    expect_eq(1, len(big), "the big message in the queue")
    with open(os.path.join(tmp, "big.eml"), "rb") as f:
        expect_eq(f.read(), big[0]["body"].encode("latin-1"), "the big message's body (1 MB)")
    m = [g for g in got if g is not big[0]][0]
    with open(os.path.join(tmp, "m1.eml"), "rb") as f:
        eml = f.read()
    expect_eq(eml, m["body"].encode("latin-1"), "the body: message.eml, octet for octet")
    # The session stores domains in lower case.
    key = idempotency_key("a.test", m1, ["a@amqp.test", "b@amqp.test"])
    expect_eq(key, m["message_id"], "message id: the idempotency key")
    expect_eq(2, m["delivery_mode"], "delivery mode (persistent)")
    expect_eq("message/rfc822", m["content_type"], "content type")
    expect_eq("smtpspool", m["app_id"], "app id")
    h = m["headers"]
    expect_eq(key, h["idempotency-key"], "header idempotency-key")
    expect_eq("alice@client.test", h["mail-from"], "header mail-from")
    expect_eq(["a@amqp.test", "b@amqp.test"], h["rcpt-to"], "header rcpt-to: this route's recipients only")
    env = h["smtpspool-envelope"]
    expect_eq(m1, env["queue_id"], "envelope queue_id")
    expect_eq(key, env["idempotency_key"], "envelope idempotency_key")
    expect_eq("alice@client.test", env["mail_from"], "envelope mail_from")
    expect_eq(["a@amqp.test", "b@amqp.test"], env["recipients"], "envelope recipients")
    expect_eq("8BITMIME", env["body"], "envelope body")
    expect_eq(len(eml), env["size"], "envelope size")
    expect_eq("client.test", env["helo"], "envelope helo")
    expect_eq(None, env["client_address"], "envelope client_address (a local client)")

    e = envelope(spool, m1)
    by = {r["address"]: r for r in e["recipients"]}
    for a in ("a@amqp.test", "b@amqp.test", "c@local.test"):
        expect_eq("delivered", by[a]["status"], f"{a}: status")
    for a, why in (("x@unbound.test", "312 NO_ROUTE"), ("y@noexchange.test", "404 NOT_FOUND"),
                   ("z@badlogin.test", "login as mailer")):
        expect_eq("pending", by[a]["status"], f"{a}: status")
        expect(why in (by[a].get("last_error") or ""), f"{a}: last_error", why, by[a].get("last_error"))
    expect_eq(f"127.0.0.1:{os.environ['AMQP_PORT']}", by["x@unbound.test"].get("last_hop"), "x: last_hop")
    with open(os.path.join(tmp, "runq.log"), encoding="utf-8", errors="replace") as f:
        log = f.read()
    with open(os.path.join(spool, "queue", m1, "envelope.json"), encoding="utf-8") as f:
        stored = f.read()
    expect(pw not in log and pw not in stored, "runq's log and the envelope", "no password", "the password")
    expect("check --amqp-credentials-file" in log, "runq's log", "a notice about the refused login", log[-2000:])
    # The queue behind full.test takes one message and the broker nacks the other.
    # (A message whose recipients are all delivered leaves the queue.)
    left = [k for k in ("N1", "N2") if os.path.isdir(os.path.join(spool, "queue", os.environ[k]))]
    expect_eq(1, len(left), "of the messages to n1@full.test and n2@full.test, those left in the queue")
    nacked = envelope(spool, os.environ[left[0]])["recipients"][0]
    expect_eq("pending", nacked["status"], "the refused one")
    expect("basic.nack" in (nacked.get("last_error") or ""), "last_error of the refused one", "basic.nack",
           nacked.get("last_error"))

run(main)
EOF

step "2. a credentials file others may read is a configuration error"
chmod 644 "$CREDS"
status=0
runq_logged "$TEST_TMP/runq2.log" --spool "$SPOOL" --hostname relay.test --amqp-credentials-file "$CREDS" \
    "${ROUTES[@]}" || status=$?
assert_eq 78 "$status" "exit status of runq"
assert_contains "$(cat "$TEST_TMP/runq2.log")" "chmod 600" "runq's complaint"
chmod 600 "$CREDS"

step "3. the broker blocks publishers (memory alarm): deferred after --amqp-timeout"
M2=$(printf 'EHLO c.test\r\nMAIL FROM:<alice@client.test>\r\nRCPT TO:<d@amqp.test>\r\nDATA\r\nSubject: later\r\n\r\nbody\r\n.\r\nQUIT\r\n' |
    queue_session "$SPOOL")
# 16 MB: more than the socket buffers hold, so that sending it blocks too.
HUGE=$(SPOOL=$SPOOL python3 -c '
import os
from deliverylib import queue
body = b"Subject: huge\r\n\r\n" + b"x" * 998 + b"\r\n"
print(queue(os.environ["SPOOL"], [("alice@client.test", ["huge@amqp.test"], body * 16000)])[0])')
rabbitmqctl set_vm_memory_high_watermark 0 >/dev/null
status=0
timeout 30 "$SMTPSPOOL_BIN" runq --log stderr --spool "$SPOOL" --hostname relay.test --amqp-timeout 1s \
    --concurrency 1 --amqp-credentials-file "$CREDS" "${ROUTES[@]}" "$M2" "$HUGE" 2>"$TEST_TMP/runq3a.log" || status=$?
cat "$TEST_TMP/runq3a.log"
assert_eq 0 "$status" "exit status of runq (124: still sending after 30 s)"
assert_contains "$(grep 'to=d@amqp.test' "$TEST_TMP/runq3a.log")" \
    'result=deferred detail="amqp 127.0.0.1:'"$AMQP_PORT"': no confirm from the broker within 1s"' "the outcome for d@amqp.test"
assert_contains "$(grep 'to=huge@amqp.test' "$TEST_TMP/runq3a.log")" 'result=deferred' "the outcome for huge@amqp.test"

step "3. the broker stopped: deferred"
stop_rabbitmq
status=0
runq_logged "$TEST_TMP/runq3.log" --spool "$SPOOL" --hostname relay.test --amqp-timeout 5s \
    --amqp-credentials-file "$CREDS" "${ROUTES[@]}" "$M2" || status=$?
cat "$TEST_TMP/runq3.log"
assert_eq 0 "$status" "exit status of runq"
SPOOL=$SPOOL M2=$M2 python3 - <<'EOF'
import os
from e2elib import *
from deliverylib import *

def main():
    r = envelope(os.environ["SPOOL"], os.environ["M2"])["recipients"][0]
    expect_eq("pending", r["status"], "d@amqp.test with the broker down")
    expect("connect" in (r.get("last_error") or ""), "last_error", "the failed connection", r.get("last_error"))

run(main)
EOF

step "4. a message larger than --max-message-size and 64 KiB fails at once"
M3=$(printf 'EHLO c.test\r\nMAIL FROM:<alice@client.test>\r\nRCPT TO:<e@amqp.test>\r\nDATA\r\nSubject: too big\r\n\r\n%s\r\n.\r\nQUIT\r\n' \
    "$(head -c 150000 /dev/zero | tr '\0' x | fold -w 500)" | queue_session "$SPOOL")
status=0
runq_logged "$TEST_TMP/runq4.log" --spool "$SPOOL" --hostname relay.test --max-message-size 50000 \
    --amqp-credentials-file "$CREDS" "${ROUTES[@]}" "$M3" || status=$?
cat "$TEST_TMP/runq4.log"
assert_eq 0 "$status" "exit status of runq"
assert_match "$(grep 'to=e@amqp.test' "$TEST_TMP/runq4.log")" \
    'result=failed .*larger than the amqp transport sends \(115536 octets\)' "the outcome for e@amqp.test"
