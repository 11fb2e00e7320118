#!/bin/bash
# STARTTLS (RFC 3207) and implicit TLS under tcpserver, with a certificate
# made here by openssl: Python smtplib's starttls() and SMTP_SSL, swaks --tls,
# openssl s_client -starttls smtp, curl --ssl-reqd and smtps://. Then the
# attacks and failures: commands sent in the clear right after STARTTLS (the
# plaintext-injection attack) are never answered, a handshake that fails ends
# the session with nothing stored, --require-tls refuses MAIL before TLS, and
# a certificate that cannot be loaded is not offered.
# shellcheck source=tests/e2e/lib.sh
source "$(dirname "$0")/lib.sh"
need_tool tcpserver openssl swaks curl python3

SPOOL=$TEST_TMP/spool
CERT=$TEST_TMP/cert.pem
KEY=$TEST_TMP/key.pem

step "a self-signed certificate for mx.test.example"
make_certificate "$CERT" "$KEY"

# One server offering STARTTLS and requiring it for MAIL; one with implicit TLS.
COMMON=(--spool "$SPOOL" --hostname mx.test.example --relay-client 127.0.0.0/8 --log stderr
    --tls-cert "$CERT" --tls-key "$KEY")
PORT=$(free_port)
start_bg "$TEST_TMP/starttls.log" tcpserver -R -H -l 0 127.0.0.1 "$PORT" "$SMTPSPOOL_BIN" "${COMMON[@]}" \
    --require-tls --timeout 5
wait_for_port "$PORT" "$BG_PID" "$TEST_TMP/starttls.log"
STARTTLS_PORT=$PORT
PORT=$(free_port)
start_bg "$TEST_TMP/implicit.log" tcpserver -R -H -l 0 127.0.0.1 "$PORT" "$SMTPSPOOL_BIN" "${COMMON[@]}" \
    --tls-on-connect
wait_for_port "$PORT" "$BG_PID" "$TEST_TMP/implicit.log"
IMPLICIT_PORT=$PORT

step "smtplib: STARTTLS offered, MAIL refused before it, mail after it; SMTP_SSL on the implicit port"
STARTTLS_PORT=$STARTTLS_PORT IMPLICIT_PORT=$IMPLICIT_PORT SPOOL=$SPOOL python3 - <<'PY'
import os, smtplib, ssl
from e2elib import *

spool = os.environ["SPOOL"]
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE

def main():
    c = smtplib.SMTP("127.0.0.1", int(os.environ["STARTTLS_PORT"]), local_hostname="client.test.example", timeout=20)
    c.ehlo()
    expect(c.has_extn("starttls"), "EHLO keywords", "STARTTLS", c.esmtp_features)
    code, text = c.mail("a@client.test.example")
    expect_eq((530, b"5.7.0 must issue a STARTTLS command first"), (code, text), "MAIL before STARTTLS")
    code, text = c.starttls(context=ctx)
    expect_eq((220, b"2.0.0 ready to start TLS"), (code, text), "STARTTLS reply")
    version = c.sock.version()
    cipher = c.sock.cipher()[0]
    expect(version in ("TLSv1.2", "TLSv1.3"), "TLS version", "TLSv1.2 or TLSv1.3", version)
    c.ehlo()
    expect(not c.has_extn("starttls"), "EHLO keywords inside TLS", "no STARTTLS", c.esmtp_features)
    expect_eq({}, c.sendmail("a@client.test.example", ["u@mx.test.example"], b"Subject: over STARTTLS\r\n\r\nhi\r\n"),
              "refused recipients")
    c.quit()

    s = smtplib.SMTP_SSL("127.0.0.1", int(os.environ["IMPLICIT_PORT"]), local_hostname="client.test.example",
                         timeout=20, context=ctx)
    s.ehlo()
    expect(not s.has_extn("starttls"), "EHLO keywords with implicit TLS", "no STARTTLS", s.esmtp_features)
    expect_eq({}, s.sendmail("b@client.test.example", ["v@mx.test.example"], b"Subject: implicit\r\n\r\nhi\r\n"),
              "refused recipients (implicit TLS)")
    s.quit()

    ids = queue_ids(spool)
    expect_eq(2, len(ids), "messages queued")
    for qid, sender in zip(ids, ["a@client.test.example", "b@client.test.example"]):
        env, msg = load(spool, qid)
        check_envelope(env, qid, msg)
        expect_eq(sender, env["mail_from"], f"{qid}: mail_from")
        tls = env["client"].get("tls")
        expect(tls is not None and tls["version"] == version and tls["cipher"] == cipher, f"{qid}: client.tls",
               {"version": version, "cipher": cipher}, tls)
        header, _ = split_received(msg, qid)
        expect(f"by mx.test.example (smtpspool, {version} {cipher}) with ESMTPS id {qid}" in header.decode(),
               f"{qid}: Received:", "with ESMTPS and the TLS version and cipher", header)

run(main)
PY

step "swaks --tls"
out=$(swaks --server 127.0.0.1 --port "$STARTTLS_PORT" --tls --helo client.test.example \
    --from c@client.test.example --to w@mx.test.example --header "Subject: swaks over TLS" 2>&1) ||
    fail "swaks --tls exited $?: $out"
assert_contains "$out" "<-  220 2.0.0 ready to start TLS" "swaks"
assert_contains "$out" "TLS started with cipher" "swaks"
assert_match "$out" "<~  250 2.0.0 message accepted, queued as" "swaks"

step "openssl s_client -starttls smtp"
out=$(printf 'EHLO client.test.example\nMAIL FROM:<d@client.test.example>\nRCPT TO:<x@mx.test.example>\nDATA\nSubject: s_client\n\nhello\n.\nQUIT\n' |
    timeout 20 openssl s_client -starttls smtp -crlf -quiet -connect "127.0.0.1:$STARTTLS_PORT" 2>&1) || true
assert_contains "$out" "250 2.1.0 sender OK" "s_client"
assert_match "$out" "250 2.0.0 message accepted, queued as" "s_client"
assert_contains "$out" "221 2.0.0 mx.test.example closing connection" "s_client"

step "TLS 1.1 is refused, TLS 1.2 accepted, renegotiation refused (openssl s_client)"
# SECLEVEL=0 lets the client offer TLS 1.1 at all: the refusal is the server's.
out=$(printf 'QUIT\n' | timeout 20 openssl s_client -starttls smtp -crlf -tls1_1 -cipher 'DEFAULT:@SECLEVEL=0' \
    -connect "127.0.0.1:$STARTTLS_PORT" 2>&1) || true
assert_contains "$out" "alert protocol version" "s_client -tls1_1"
out=$( (sleep 1; printf 'R\n'; sleep 1) | timeout 20 openssl s_client -starttls smtp -crlf -tls1_2 \
    -connect "127.0.0.1:$STARTTLS_PORT" 2>&1) || true
assert_contains "$out" "Protocol  : TLSv1.2" "s_client -tls1_2"
assert_contains "$out" "RENEGOTIATING" "s_client -tls1_2"
assert_contains "$out" "no renegotiation" "s_client -tls1_2 (the server's answer to R)"

step "curl --ssl-reqd (STARTTLS) and smtps:// (implicit)"
printf 'Subject: curl\r\n\r\nbody\r\n' >"$TEST_TMP/mail.txt"
curl -sS --ssl-reqd -k --max-time 20 "smtp://127.0.0.1:$STARTTLS_PORT/client.test.example" \
    --mail-from e@client.test.example --mail-rcpt y@mx.test.example -T "$TEST_TMP/mail.txt" ||
    fail "curl --ssl-reqd exited $?"
curl -sS -k --max-time 20 "smtps://127.0.0.1:$IMPLICIT_PORT/client.test.example" \
    --mail-from f@client.test.example --mail-rcpt z@mx.test.example -T "$TEST_TMP/mail.txt" ||
    fail "curl smtps:// exited $?"
assert_eq 6 "$(count_entries "$SPOOL/queue")" "messages queued so far"

step "plaintext after STARTTLS is discarded, never answered; a failed handshake stores nothing"
STARTTLS_PORT=$STARTTLS_PORT SPOOL=$SPOOL python3 - <<'PY'
import os, socket, ssl
from e2elib import *

port = int(os.environ["STARTTLS_PORT"])
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE

def read_reply(f):
    lines = []
    while True:
        line = f.readline()
        if not line:
            raise Failure(f"connection closed after {lines!r}")
        lines.append(line)
        if line[3:4] == b" ":
            return b"".join(lines)

def main():
    s = socket.create_connection(("127.0.0.1", port), timeout=20)
    f = s.makefile("rb")
    read_reply(f)
    s.sendall(b"EHLO client.test.example\r\n")
    read_reply(f)
    injected = b"RSET\r\nMAIL FROM:<evil@client.test.example>\r\nRCPT TO:<u@mx.test.example>\r\n"
    s.sendall(b"STARTTLS\r\n" + injected)
    expect_eq(b"220 2.0.0 ready to start TLS\r\n", read_reply(f), "reply to STARTTLS")
    t = ctx.wrap_socket(s, server_hostname="mx.test.example")
    tf = t.makefile("rb")
    # Inside TLS the client starts over; had the injected commands been
    # answered, their replies would come first.
    t.sendall(b"MAIL FROM:<a@client.test.example>\r\n")
    expect_eq(b"503 5.5.1 bad sequence of commands: send HELO or EHLO first\r\n", read_reply(tf),
              "first reply inside TLS (no transaction carried over)")
    t.sendall(b"QUIT\r\n")
    expect_eq(b"221 2.0.0 mx.test.example closing connection\r\n", read_reply(tf), "QUIT")
    t.close()

    # A client that says STARTTLS and then speaks plaintext: the handshake fails.
    before = len(queue_ids(os.environ["SPOOL"]))
    s = socket.create_connection(("127.0.0.1", port), timeout=20)
    f = s.makefile("rb")
    read_reply(f)
    s.sendall(b"EHLO client.test.example\r\n")
    read_reply(f)
    s.sendall(b"STARTTLS\r\n")
    read_reply(f)
    s.sendall(b"MAIL FROM:<a@client.test.example>\r\nRCPT TO:<u@mx.test.example>\r\nDATA\r\n")
    try:
        rest = f.read()  # a TLS alert, or nothing
    except ConnectionResetError:
        rest = b""  # closed with our plaintext unread
    expect(not rest.startswith(b"250") and not rest.startswith(b"354"), "after a failed handshake",
           "no SMTP reply in the clear", rest)
    expect_eq(before, len(queue_ids(os.environ["SPOOL"])), "messages queued after the failed handshake")

run(main)
PY

step "the log tells"
log=$(cat "$TEST_TMP/starttls.log")
injected_octets=$(printf 'RSET\r\nMAIL FROM:<evil@client.test.example>\r\nRCPT TO:<u@mx.test.example>\r\n' | wc -c)
assert_contains "$log" "event=tls-plaintext-discarded octets=$injected_octets" "log"
assert_match "$log" "event=tls-error reason=\"TLS handshake failed: " "log"
assert_contains "$log" "event=disconnect reason=tls-failed" "log"
assert_match "$log" "event=tls version=TLSv1\.[23] cipher=" "log"
assert_contains "$log" "event=tls-error reason=\"TLS handshake failed: error:0A000102:SSL routines::unsupported protocol\"" "log (TLS 1.1)"
assert_contains "$log" "event=mail result=refused reason=tls-required" "log"
assert_not_contains "$log" "evil@client.test.example" "log (the injected MAIL was never read)"

step "a certificate that cannot be loaded: STARTTLS gets 454 and the session goes on; with --require-tls no service"
PORT=$(free_port)
start_bg "$TEST_TMP/missing.log" tcpserver -R -H -l 0 127.0.0.1 "$PORT" "$SMTPSPOOL_BIN" --spool "$SPOOL" \
    --hostname mx.test.example --relay-client 127.0.0.0/8 --log stderr --tls-cert "$TEST_TMP/missing.pem" --tls-key "$KEY"
wait_for_port "$PORT" "$BG_PID" "$TEST_TMP/missing.log"
PORT=$PORT python3 - <<'PY'
import os, smtplib
from e2elib import *

def main():
    c = smtplib.SMTP("127.0.0.1", int(os.environ["PORT"]), local_hostname="client.test.example", timeout=20)
    c.ehlo()
    expect(c.has_extn("starttls"), "EHLO keywords", "STARTTLS (the certificate is read only when asked for)",
           c.esmtp_features)
    expect_eq((454, b"4.7.0 TLS not available due to temporary reason"), c.docmd("STARTTLS"), "STARTTLS")
    expect_eq(250, c.mail("a@client.test.example")[0], "MAIL in the clear after the 454")
    c.quit()

run(main)
PY
assert_contains "$(cat "$TEST_TMP/missing.log")" "event=tls-error reason=\"cannot load the TLS certificate $TEST_TMP/missing.pem" "log"
set +e
"$SMTPSPOOL_BIN" --spool "$SPOOL" --hostname mx.test.example --log stderr --require-tls \
    --tls-cert "$CERT" --tls-key "$CERT" </dev/null >"$TEST_TMP/out" 2>"$TEST_TMP/err"
code=$?
set -e
assert_eq 78 "$code" "exit status with an unusable key and --require-tls"
assert_contains "$(cat "$TEST_TMP/err")" "cannot load the TLS key $CERT" "error message"

step "check-config loads the certificate and key as serve does"
out=$("$SMTPSPOOL_BIN" check-config --spool "$SPOOL" --tls-cert "$CERT" --tls-key "$KEY") ||
    fail "check-config with a good certificate exited $?"
assert_contains "$out" "tls-cert = $CERT" "check-config"
set +e
err=$("$SMTPSPOOL_BIN" check-config --spool "$SPOOL" --tls-cert "$CERT" --tls-key "$TEST_TMP/missing.pem" 2>&1)
code=$?
set -e
assert_eq 78 "$code" "check-config exit status with a missing key"
assert_contains "$err" "configuration error: cannot load the TLS key $TEST_TMP/missing.pem" "check-config"
