#!/bin/bash
# AUTH PLAIN and LOGIN inside STARTTLS under tcpserver, with a password file
# of real crypt(3) hashes (openssl passwd -6): smtplib login(), swaks --auth
# with both mechanisms, curl --user. Only an authenticated client may relay
# (the server relays for nobody else here); a wrong password gets 535 and is
# logged without the password; AUTH is not offered outside TLS.
# shellcheck source=tests/e2e/lib.sh
source "$(dirname "$0")/lib.sh"
need_tool tcpserver openssl swaks curl python3

SPOOL=$TEST_TMP/spool
CERT=$TEST_TMP/cert.pem
KEY=$TEST_TMP/key.pem
make_certificate "$CERT" "$KEY"
printf 'alice:%s\nbob:%s\n' "$(openssl passwd -6 's3cret word')" "$(openssl passwd -6 hunter2)" >"$TEST_TMP/passwd"

PORT=$(free_port)
start_bg "$TEST_TMP/server.log" tcpserver -R -H -l 0 127.0.0.1 "$PORT" "$SMTPSPOOL_BIN" --spool "$SPOOL" \
    --hostname mx.test.example --relay-client 192.0.2.0/24 --log stderr --tls-cert "$CERT" --tls-key "$KEY" \
    --auth-passwd "$TEST_TMP/passwd"
wait_for_port "$PORT" "$BG_PID" "$TEST_TMP/server.log"

step "smtplib: no AUTH in the clear, relaying refused; login() inside TLS, then relaying"
PORT=$PORT SPOOL=$SPOOL python3 - <<'PY'
import os, smtplib, ssl
from e2elib import *

ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE

def main():
    c = smtplib.SMTP("127.0.0.1", int(os.environ["PORT"]), local_hostname="client.test.example", timeout=20)
    c.ehlo()
    expect(not c.has_extn("auth"), "EHLO keywords in the clear", "no AUTH", c.esmtp_features)
    expect_eq((538, b"5.7.11 encryption required for requested authentication mechanism"),
              c.docmd("AUTH", "PLAIN AGFsaWNlAHMzY3JldA=="), "AUTH in the clear")
    c.starttls(context=ctx)
    c.ehlo()
    expect_eq("PLAIN LOGIN", c.esmtp_features.get("auth", "").strip(), "AUTH mechanisms inside TLS")
    c.mail("a@client.test.example")
    code, _ = c.rcpt("far@elsewhere.example")
    expect_eq(550, code, "relaying before AUTH")
    c.rset()
    try:
        c.login("alice", "wrong")
        raise Failure("login with a wrong password succeeded")
    except smtplib.SMTPAuthenticationError as e:
        expect_eq(535, e.smtp_code, "wrong password")
    code, text = c.login("alice", "s3cret word")
    expect_eq((235, b"2.7.0 authentication successful"), (code, text), "login")
    expect_eq({}, c.sendmail("a@client.test.example", ["far@elsewhere.example"], b"Subject: relayed\r\n\r\nhi\r\n"),
              "refused recipients after AUTH")
    c.quit()
    ids = queue_ids(os.environ["SPOOL"])
    expect_eq(1, len(ids), "messages queued")
    env, msg = load(os.environ["SPOOL"], ids[0])
    expect_eq("alice", env["client"].get("auth"), "client.auth")
    expect(b" with ESMTPSA id " in msg.split(b"\r\n\r\n")[0], "Received:", "with ESMTPSA", msg[:300])

run(main)
PY

step "swaks --auth PLAIN and LOGIN over TLS"
for mech in PLAIN LOGIN; do
    out=$(swaks --server 127.0.0.1 --port "$PORT" --tls --auth "$mech" --auth-user bob --auth-password hunter2 \
        --helo client.test.example --from b@client.test.example --to far@elsewhere.example \
        --header "Subject: swaks $mech" 2>&1) || fail "swaks --auth $mech exited $?: $out"
    assert_contains "$out" "<~  235 2.7.0 authentication successful" "swaks $mech"
    assert_match "$out" "<~  250 2.0.0 message accepted, queued as" "swaks $mech"
done

step "curl --user with --ssl-reqd"
printf 'Subject: curl\r\n\r\nbody\r\n' >"$TEST_TMP/mail.txt"
curl -sS --ssl-reqd -k --max-time 20 --user 'alice:s3cret word' "smtp://127.0.0.1:$PORT/client.test.example" \
    --mail-from c@client.test.example --mail-rcpt far@elsewhere.example -T "$TEST_TMP/mail.txt" ||
    fail "curl --user exited $?"
set +e
curl -sS --ssl-reqd -k --max-time 20 --user 'alice:nope' "smtp://127.0.0.1:$PORT/client.test.example" \
    --mail-from c@client.test.example --mail-rcpt far@elsewhere.example -T "$TEST_TMP/mail.txt" 2>"$TEST_TMP/curl.err"
code=$?
set -e
assert_eq 67 "$code" "curl's exit status for a refused login"
assert_eq 4 "$(count_entries "$SPOOL/queue")" "messages queued"

step "the log names users and results, never a password"
log=$(cat "$TEST_TMP/server.log")
assert_contains "$log" "event=auth mechanism=PLAIN user=alice result=refused" "log"
assert_contains "$log" "event=auth mechanism=PLAIN user=alice result=ok" "log"
assert_contains "$log" "event=auth mechanism=LOGIN user=bob result=ok" "log"
assert_not_contains "$log" "s3cret" "log"
assert_not_contains "$log" "hunter2" "log"
assert_not_contains "$log" "nope" "log"

step "check-config reads the password file and names a bad line"
printf 'alice:$6$x$y\nbob:plaintext\n' >"$TEST_TMP/bad-passwd"
set +e
err=$("$SMTPSPOOL_BIN" check-config --spool "$SPOOL" --auth-passwd "$TEST_TMP/bad-passwd" 2>&1)
code=$?
set -e
assert_eq 78 "$code" "check-config exit status with a bad password file"
assert_contains "$err" "auth-passwd: $TEST_TMP/bad-passwd line 2: the hash of bob is not in crypt(3) form" "check-config"
out=$("$SMTPSPOOL_BIN" check-config --spool "$SPOOL" --auth-passwd "$TEST_TMP/passwd")
assert_contains "$out" "auth-passwd = $TEST_TMP/passwd" "check-config"

step "--auth-command: a checkpassword program instead of the password file"
cat >"$TEST_TMP/checkpassword" <<'SH'
#!/bin/sh
input=$(head -c 512 <&3 | tr '\0' '\n')
user=$(printf '%s\n' "$input" | sed -n 1p)
pass=$(printf '%s\n' "$input" | sed -n 2p)
[ "$user" = carol ] && [ "$pass" = opensesame ] && exec "$@"
exit 1
SH
chmod 755 "$TEST_TMP/checkpassword"
PORT2=$(free_port)
start_bg "$TEST_TMP/server2.log" tcpserver -R -H -l 0 127.0.0.1 "$PORT2" "$SMTPSPOOL_BIN" --spool "$SPOOL" \
    --hostname mx.test.example --relay-client 192.0.2.0/24 --log stderr --tls-cert "$CERT" --tls-key "$KEY" \
    --auth-command "$TEST_TMP/checkpassword"
wait_for_port "$PORT2" "$BG_PID" "$TEST_TMP/server2.log"
out=$(swaks --server 127.0.0.1 --port "$PORT2" --tls --auth PLAIN --auth-user carol --auth-password opensesame \
    --helo client.test.example --from d@client.test.example --to far@elsewhere.example 2>&1) ||
    fail "swaks with --auth-command exited $?: $out"
assert_match "$out" "<~  250 2.0.0 message accepted, queued as" "swaks (checkpassword)"
set +e
out=$(swaks --server 127.0.0.1 --port "$PORT2" --tls --auth LOGIN --auth-user carol --auth-password guess \
    --helo client.test.example --from d@client.test.example --to far@elsewhere.example 2>&1)
set -e
assert_contains "$out" "<~* 535 5.7.8 authentication credentials invalid" "swaks (checkpassword, wrong password)"
assert_contains "$(cat "$TEST_TMP/server2.log")" "event=auth mechanism=PLAIN user=carol result=ok" "log"
