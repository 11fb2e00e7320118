#!/bin/bash
# The http and https transports against a webhook application on http.server
# (webhook_app.py, started here on 127.0.0.1), one path per kind of answer:
#  - /ok verifies the signature with the code smtpspool-runq(8) gives and
#    parses the body: delivered; the envelope part holds only the route's
#    recipients, the message part is message.eml octet for octet, the
#    idempotency key is the queue id and the recipient set's digest, and two
#    messages in one run share one connection;
#  - /down (500) deferred; /busy (429, Retry-After: 7200) deferred until then
#    (and the run posts nothing more to it), and only until the expiry when
#    that comes first; /bad (400) failed and
#    bounced with the status line and the body's start; /hang deferred after
#    --http-timeout;
#  - https with a test CA made here: verified with --http-tls-ca, deferred
#    with another CA;
#  - a 40 MB message goes through with runq under half of it in memory;
#  - runq refuses an http route without --http-secret-file and a secret file
#    that others may read (exit 78).
# shellcheck source=tests/e2e/lib.sh
source "$(dirname "$0")/lib.sh"
# shellcheck source=tests/e2e/deliverylib.sh
source "$E2E_DIR/deliverylib.sh"
need_tool openssl
need_tool mandoc

SECRET=$TEST_TMP/secret
printf 'correct horse battery staple\n' >"$SECRET"
chmod 600 "$SECRET"

step "the verifier of the application is the one smtpspool-runq(8) gives"
python3 - "$E2E_DIR/webhook_app.py" "$REPO_ROOT/man/smtpspool-runq.8" <<'PY'
import subprocess, sys
app = open(sys.argv[1]).read()
code = app.split("# --- verifier", 1)[1].split("\n", 1)[1].split("# --- end of the verifier", 1)[0]
page = subprocess.run(["mandoc", "-T", "ascii", sys.argv[2]], capture_output=True, text=True, check=True).stdout
page = "\n".join(line[7:] if line.startswith("       ") else line for line in page.splitlines())
if code.strip() not in page:
    sys.exit("the verifier of webhook_app.py is not the one of the man page:\n" + code)
PY

step "a test CA, a certificate for 127.0.0.1 signed by it, and another CA"
PKI=$TEST_TMP/pki
mkdir -p "$PKI"
(
    cd "$PKI"
    for ca in ca other-ca; do
        openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout "$ca.key" -out "$ca.pem" -days 2 -subj "/CN=$ca" \
            -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign >/dev/null 2>&1
    done
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout server.key -out server.csr -subj /CN=127.0.0.1 >/dev/null 2>&1
    printf 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n' >ext.cnf
    openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out server.pem -days 2 \
        -extfile ext.cnf >/dev/null 2>&1
) || fail "openssl could not make the test CA"

step "start the application, over HTTP and over HTTPS"
APP=$TEST_TMP/app
TLSAPP=$TEST_TMP/tlsapp
mkdir -p "$APP" "$TLSAPP"
HTTP_PORT=$(free_port)
start_bg "$APP.log" /usr/bin/python3 "$E2E_DIR/webhook_app.py" "$HTTP_PORT" "$APP" "$SECRET"
wait_for_port "$HTTP_PORT" "$BG_PID" "$APP.log"
HTTPS_PORT=$(free_port)
start_bg "$TLSAPP.log" /usr/bin/python3 "$E2E_DIR/webhook_app.py" "$HTTPS_PORT" "$TLSAPP" "$SECRET" \
    "$PKI/server.pem" "$PKI/server.key"
wait_for_port "$HTTPS_PORT" "$BG_PID" "$TLSAPP.log"

URL=http://127.0.0.1:$HTTP_PORT
ROUTES=(--route "ok.test=$URL/ok" --route "down.test=$URL/down" --route "busy.test=$URL/busy"
    --route "bad.test=$URL/bad" --route "hang.test=$URL/hang" --route "local.test=maildir:$TEST_TMP/md/%u"
    --route "tls.test=https://127.0.0.1:$HTTPS_PORT/ok")
SPOOL=$TEST_TMP/spool
queue_to() # RCPT...: one message to these recipients; prints its id
{
    local session rcpt
    session=$'EHLO c.test\r\nMAIL FROM:<s@client.test>\r\n'
    for rcpt in "$@"; do
        session+="RCPT TO:<$rcpt>"$'\r\n'
    done
    session+=$'DATA\r\nSubject: to '"$1"$'\r\n\r\nline one\r\n..dot line\r\n\r\n.\r\nQUIT\r\n'
    printf '%s' "$session" | queue_session "$SPOOL"
}
field() # ID PYTHON-EXPRESSION on e, the envelope (r: its first recipient)
{
    python3 -c '
import json, sys
e = json.load(open(sys.argv[1] + "/queue/" + sys.argv[2] + "/envelope.json"))
r = e["recipients"][0]
print(eval(sys.argv[3]))' "$SPOOL" "$1" "$2"
}

step "one run: every kind of answer"
M1=$(queue_to a@ok.test b@ok.test c@local.test)
M2=$(queue_to d@ok.test)
DOWN=$(queue_to e@down.test)
BUSY=$(queue_to f@busy.test)
BUSY2=$(queue_to f2@busy.test)
BAD=$(queue_to g@bad.test)
HANG=$(queue_to h@hang.test)
cp "$SPOOL/queue/$M1/message.eml" "$TEST_TMP/m1.eml"
cp "$SPOOL/queue/$M2/message.eml" "$TEST_TMP/m2.eml"
status=0
runq_logged "$TEST_TMP/run1.log" --spool "$SPOOL" --hostname relay.test --concurrency 1 --retry-schedule 1m \
    --http-secret-file "$SECRET" --http-timeout 2s "${ROUTES[@]}" "$M1" "$M2" "$DOWN" "$BUSY" "$BUSY2" "$BAD" "$HANG" ||
    status=$?
cat "$TEST_TMP/run1.log"
assert_eq 0 "$status" "runq's exit status"

step "/ok: delivered, signed, the route's recipients only, the message as stored, one connection"
[[ ! -e "$SPOOL/queue/$M1" && ! -e "$SPOOL/queue/$M2" ]] || fail "the delivered messages are still queued"
[[ $(count_entries "$TEST_TMP/md/c/new") == 1 ]] || fail "c@local.test: nothing in its maildir"
assert_match "$(cat "$TEST_TMP/run1.log")" \
    "event=delivery id=$M1 to=a@ok.test via=$URL/ok result=delivered detail=\"HTTP 200 OK: stored\" hop=127.0.0.1\[127.0.0.1\]:$HTTP_PORT" \
    "the delivery's log line"
python3 - "$APP" "$M1" "$M2" "$TEST_TMP" <<'PY'
import hashlib, json, sys
app, m1, m2, tmp = sys.argv[1:]
requests = [json.loads(l) for l in open(app + "/requests.jsonl")]
ok = [r for r in requests if r["path"] == "/ok"]
assert len(ok) == 2, ok
by_id = {r["envelope"]["id"]: r for r in ok}
for qid, rcpts, eml in ((m1, ["a@ok.test", "b@ok.test"], "m1.eml"), (m2, ["d@ok.test"], "m2.eml")):
    r = by_id[qid]
    assert r["signature_ok"], r
    assert [x["address"] for x in r["envelope"]["recipients"]] == rcpts, r["envelope"]["recipients"]
    digest = hashlib.sha256(("a.test\n" + "".join(a + "\n" for a in sorted(rcpts))).encode()).hexdigest()[:32]
    assert r["idempotency_key"] == qid + "." + digest, (r["idempotency_key"], digest)
    assert r["content_type"].startswith("multipart/form-data; boundary="), r["content_type"]
    assert "Content-Type: message/rfc822" in r["message_part"], r["message_part"]
    assert "Content-Type: application/json" in r["envelope_part"], r["envelope_part"]
    got = open("%s/%d.eml" % (app, r["n"]), "rb").read()
    assert got == open(tmp + "/" + eml, "rb").read(), "the message part differs from message.eml"
assert by_id[m1]["client_port"] == by_id[m2]["client_port"], "two connections for two requests in one run"
PY

step "/down: deferred with the status"
assert_eq "pending|HTTP 500 Internal Server Error" "$(field "$DOWN" 'r["status"] + "|" + r["last_error"]')" "500"

step "/busy: deferred until Retry-After (7200 s), not the schedule's minute"
assert_eq "pending|7200" "$(field "$BUSY" 'r["status"] + "|" + str(__import__("calendar").timegm(__import__("time").strptime(e["next_attempt"], "%Y-%m-%dT%H:%M:%SZ")) - __import__("calendar").timegm(__import__("time").strptime(e["last_attempt"], "%Y-%m-%dT%H:%M:%SZ")))')" \
    "429 with Retry-After"

assert_eq 1 "$(grep -c '"path": "/busy"' "$APP/requests.jsonl")" "requests to /busy in the run that was told to wait"
assert_eq "pending|not sent: the last answer was HTTP 429 Too Many Requests, with Retry-After" \
    "$(field "$BUSY2" 'r["status"] + "|" + r["last_error"]')" "the second message to /busy"
# (to the second: the run's clock and the request's may straddle one)
python3 -c '
import datetime, sys
t = [datetime.datetime.strptime(a, "%Y-%m-%dT%H:%M:%SZ") for a in sys.argv[1:]]
sys.exit(0 if abs((t[0] - t[1]).total_seconds()) <= 1 else "next attempts %s and %s" % tuple(sys.argv[1:]))' \
    "$(field "$BUSY" 'e["next_attempt"]')" "$(field "$BUSY2" 'e["next_attempt"]')" ||
    fail "the second message to /busy does not wait as long as the first"

step "/bad: failed and bounced with the status line and the start of the body"
[[ ! -e "$SPOOL/queue/$BAD" ]] || fail "the failed message is still queued"
BOUNCE=$(grep -o "event=bounce id=$BAD bounce_id=[^ ]*" "$TEST_TMP/run1.log" | cut -d= -f4)
[[ -n "$BOUNCE" ]] || fail "no bounce queued for the 400"
assert_contains "$(cat "$SPOOL/queue/$BOUNCE/message.eml")" \
    "HTTP 400 Bad Request: unknown mailbox for this application xxxx" "the bounce's text"

step "/hang: deferred after --http-timeout"
assert_eq "pending|no answer within 2s (--http-timeout)" "$(field "$HANG" 'r["status"] + "|" + r["last_error"]')" \
    "the hanging application"

step "Retry-After past the expiry: the next attempt is at the expiry"
LATE=$(queue_to late@busy.test)
runq_logged "$TEST_TMP/run2.log" --spool "$SPOOL" --hostname relay.test --retry-schedule 1m --max-queue-time 1h \
    --http-secret-file "$SECRET" "${ROUTES[@]}" "$LATE" || fail "runq failed: $(cat "$TEST_TMP/run2.log")"
assert_eq "$(python3 -c '
import datetime, sys
t = datetime.datetime.strptime(sys.argv[1], "%Y-%m-%dT%H:%M:%SZ") + datetime.timedelta(hours=1)
print(t.strftime("%Y-%m-%dT%H:%M:%SZ"))' "$(field "$LATE" 'e["received_at"]')")" "$(field "$LATE" 'e["next_attempt"]')" \
    "next attempt clamped to received_at + max-queue-time"

step "https: verified with the test CA; deferred with another"
GOOD=$(queue_to i@tls.test)
runq_logged "$TEST_TMP/run3.log" --spool "$SPOOL" --hostname relay.test --http-secret-file "$SECRET" \
    --http-tls-ca "$PKI/ca.pem" "${ROUTES[@]}" "$GOOD" || fail "runq failed: $(cat "$TEST_TMP/run3.log")"
[[ ! -e "$SPOOL/queue/$GOOD" ]] || fail "not delivered over https: $(cat "$TEST_TMP/run3.log")"
assert_contains "$(cat "$TLSAPP/requests.jsonl")" '"signature_ok": true' "the https request"
WRONG=$(queue_to j@tls.test)
runq_logged "$TEST_TMP/run4.log" --spool "$SPOOL" --hostname relay.test --http-secret-file "$SECRET" \
    --http-tls-ca "$PKI/other-ca.pem" "${ROUTES[@]}" "$WRONG" || fail "runq failed: $(cat "$TEST_TMP/run4.log")"
assert_eq pending "$(field "$WRONG" 'r["status"]')" "https with the wrong CA: status"
assert_contains "$(field "$WRONG" 'r["last_error"]')" "certificate" "https with the wrong CA: last_error"
assert_eq 1 "$(grep -c . "$TLSAPP/requests.jsonl")" "no request reached the application without verification"

step "a 40 MB message is streamed: runq's peak memory stays under half of it"
BIG=$(python3 -c '
import sys
line = b"x" * 998 + b"\r\n"
sys.stdout.buffer.write(b"EHLO c.test\r\nMAIL FROM:<s@client.test>\r\nRCPT TO:<big@ok.test>\r\nDATA\r\n"
                        b"Subject: big\r\n\r\n" + line * 40000 + b".\r\nQUIT\r\n")' |
    "$SMTPSPOOL_BIN" --spool "$SPOOL" --hostname a.test --log none --max-message-size 50000000 |
    grep -o 'queued as [A-Za-z0-9_-]*' | cut -d' ' -f3)
[[ -n "$BIG" ]] || fail "the big message was not queued"
SIZE=$(stat -c %s "$SPOOL/queue/$BIG/message.eml")
RSS=$(python3 -c '
import resource, subprocess, sys
log = open(sys.argv[1], "w")
if subprocess.run(sys.argv[2:], stderr=log).returncode != 0:
    sys.exit("runq failed")
print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024)' "$TEST_TMP/big.log" \
    "$SMTPSPOOL_BIN" runq --log stderr --spool "$SPOOL" --hostname relay.test --http-secret-file "$SECRET" \
    "${ROUTES[@]}" "$BIG") || fail "runq: $(cat "$TEST_TMP/big.log")"
[[ ! -e "$SPOOL/queue/$BIG" ]] || fail "the big message was not delivered: $(cat "$TEST_TMP/big.log")"
N=$(python3 -c 'import json,sys; print([json.loads(l) for l in open(sys.argv[1])][-1]["n"])' "$APP/requests.jsonl")
assert_eq "$SIZE" "$(stat -c %s "$APP/$N.eml")" "the message part of the big message"
((RSS < SIZE / 2)) || fail "runq's peak RSS was $RSS octets for a message of $SIZE"
echo "runq's peak RSS: $RSS octets for a message of $SIZE"

step "a dry run says where a message would be posted"
assert_contains "$("$SMTPSPOOL_BIN" runq --dry-run --spool "$SPOOL" --hostname relay.test --http-secret-file "$SECRET" \
    "${ROUTES[@]}" "$DOWN")" "<e@down.test> down.test via down.test=$URL/down: post to $URL/down" "runq --dry-run"

step "configuration errors: no secret file, a secret file others may read"
status=0
out=$("$SMTPSPOOL_BIN" runq --spool "$SPOOL" --hostname relay.test --log stderr "${ROUTES[@]}" 2>&1) || status=$?
assert_eq 78 "$status" "runq without --http-secret-file"
assert_contains "$out" "needs --http-secret-file" "its message"
chmod 644 "$SECRET"
status=0
out=$("$SMTPSPOOL_BIN" check-config --spool "$SPOOL" --hostname relay.test --http-secret-file "$SECRET" \
    "${ROUTES[@]}" 2>&1) || status=$?
assert_eq 78 "$status" "check-config with a secret file of mode 0644"
assert_contains "$out" "chmod 600" "its message"
chmod 600 "$SECRET"
status=0
out=$("$SMTPSPOOL_BIN" check-config --spool "$SPOOL" --hostname relay.test --http-secret-file "$SECRET" \
    --http-tls-ca "$PKI/missing.pem" "${ROUTES[@]}" 2>&1) || status=$?
assert_eq 78 "$status" "check-config with an --http-tls-ca that cannot be read"
assert_contains "$out" "http-tls-ca $PKI/missing.pem: No such file or directory" "its message"
echo "PASS"
