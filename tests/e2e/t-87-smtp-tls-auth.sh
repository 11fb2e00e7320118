#!/bin/bash
# The SMTP client's TLS and AUTH against aiosmtpd servers on 127.0.0.1, with
# a test CA made here by openssl (the server's certificate names localhost
# only, so 127.0.0.1 is a host-name mismatch):
#  - may (the default): STARTTLS when offered; the log line and the server
#    say TLS; the certificate is not trusted (no --smtp-tls-ca): verified=no;
#  - verify with --smtp-tls-ca and the name localhost: delivered, verified=yes;
#    verify with another CA, or by 127.0.0.1 (name mismatch): deferred, the
#    reason in last_error and last_tls in the envelope with verified false;
#  - may toward a server without STARTTLS: clear text, delivered, no last_tls;
#    encrypt toward it: deferred with the reason;
#  - SNI: the name for localhost, none for 127.0.0.1;
#  - --smtp-tls-cert and --smtp-tls-key: the server sees the client's
#    certificate (signed by the test CA);
#  - smtps: (implicit TLS, RFC 8314) delivered over TLS;
#  - AUTH PLAIN offered only after STARTTLS: delivered as the user; a
#    recording proxy in between sees neither the password nor the PLAIN
#    message nor the user in clear text;
#  - AUTH LOGIN (the only mechanism) after a STARTTLS whose 220 came with an
#    injected "250 injected" line: the line is discarded, EHLO asked again,
#    delivered as the user;
#  - a wrong password: 535, both messages deferred with last_error naming the
#    refusal, one AUTH attempt at the server and one log line per run;
#  - an auth file readable by others: runq exits 78; check-config says so,
#    and warns about a host no route reaches.
# shellcheck source=tests/e2e/lib.sh
source "$(dirname "$0")/lib.sh"
# shellcheck source=tests/e2e/deliverylib.sh
source "$E2E_DIR/deliverylib.sh"
need_aiosmtpd
need_tool openssl

PKI=$TEST_TMP/pki
mkdir -p "$PKI"
step "a test CA, a certificate for localhost signed by it, and another CA"
(
    cd "$PKI"
    openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 2 -subj /CN=test-ca \
        -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign >/dev/null 2>&1
    openssl req -x509 -newkey rsa:2048 -nodes -keyout other.key -out other-ca.pem -days 2 -subj /CN=other-ca \
        -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign >/dev/null 2>&1
    openssl req -newkey rsa:2048 -nodes -keyout server.key -out server.csr -subj /CN=localhost >/dev/null 2>&1
    printf 'subjectAltName=DNS:localhost\nextendedKeyUsage=serverAuth\n' >ext.cnf
    openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out server.pem -days 2 \
        -extfile ext.cnf >/dev/null 2>&1
    openssl req -newkey rsa:2048 -nodes -keyout client.key -out client.csr -subj /CN=relay.test >/dev/null 2>&1
    printf 'extendedKeyUsage=clientAuth\n' >client.cnf
    openssl x509 -req -in client.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out client.pem -days 2 \
        -extfile client.cnf >/dev/null 2>&1
) || fail "openssl could not make the test CA"

start_tls_server() # NAME OPTIONS_JSON: sets PORT_<NAME>
{
    local name=$1 port
    port=$(free_port)
    start_bg "$TEST_TMP/$name.log" "$AIOSMTPD_PYTHON" "$E2E_DIR/tlssmarthost.py" "$port" "$TEST_TMP/$name" \
        "$PKI/server.pem" "$PKI/server.key" "$2"
    wait_for_port "$port" "$BG_PID" "$TEST_TMP/$name.log"
    printf -v "PORT_$name" '%s' "$port"
}

step "start the servers"
start_tls_server starttls '{"users": {"relay-user": "s3cret:with:colons"}, "client_ca": "'"$PKI/ca.pem"'"}'
start_tls_server clear '{"starttls": false}'
start_tls_server implicit '{"implicit": true}'
start_tls_server login '{"users": {"login-user": "pass word"}, "mechanisms": ["LOGIN"], "inject": true}'
PROXY_PORT=$(free_port)
start_bg "$TEST_TMP/proxy.log" python3 "$E2E_DIR/recordproxy.py" "$PROXY_PORT" "$PORT_starttls" "$TEST_TMP/wire"
wait_for_port "$PROXY_PORT" "$BG_PID" "$TEST_TMP/proxy.log"

# try NAME RUNQ_ARGS...: queue one message to NAME@far.test in spool NAME,
# run runq with the arguments, log into NAME.runq.log; sets ID.
try()
{
    local name=$1
    shift
    mkdir -p "$TEST_TMP/s-$name"
    ID=$(printf 'EHLO c.test\r\nMAIL FROM:<s@client.test>\r\nRCPT TO:<%s@far.test>\r\nDATA\r\nSubject: %s\r\n\r\nbody\r\n.\r\nQUIT\r\n' \
        "$name" "$name" | queue_session "$TEST_TMP/s-$name")
    [[ -n "$ID" ]] || fail "$name: nothing queued"
    local status=0
    runq_logged "$TEST_TMP/$name.runq.log" --spool "$TEST_TMP/s-$name" --hostname relay.test --smtp-timeout 10s \
        "$@" || status=$?
    cat "$TEST_TMP/$name.runq.log"
    assert_eq 0 "$status" "$name: exit status of runq"
}

# envelope_field NAME JSON-PATH (python expression on e, the envelope)
envelope_field()
{
    SPOOL=$TEST_TMP/s-$1 QID=$ID python3 -c '
import json, os, sys
e = json.load(open(os.path.join(os.environ["SPOOL"], "queue", os.environ["QID"], "envelope.json")))
print(eval(sys.argv[1]))' "$2"
}

step "may (the default): STARTTLS when offered, certificate not verified"
try may --smarthost "localhost:$PORT_starttls"
log=$(cat "$TEST_TMP/may.runq.log")
assert_match "$log" 'event=delivery .*result=delivered tls=TLSv1\.[23] cipher=[A-Z0-9_-]+ verified=no' "may: log"
last_transaction() # SERVER KEY: the key of the server's last transaction
{
    python3 -c 'import json,sys; print(json.loads(open(sys.argv[1]).readlines()[-1])[sys.argv[2]])' \
        "$TEST_TMP/$1/transactions.jsonl" "$2"
}
last_sni() # SERVER: the server name of its last handshake
{
    python3 -c 'import json,sys; print(json.loads(open(sys.argv[1]).readlines()[-1])["server_name"])' \
        "$TEST_TMP/$1/sni.jsonl"
}
assert_eq True "$(last_transaction starttls tls)" "may: the server saw TLS"
assert_eq None "$(last_transaction starttls client_cert)" "may: no client certificate"
assert_eq localhost "$(last_sni starttls)" "may: SNI"

step "verify with --smtp-tls-ca and the name in the certificate: delivered, verified"
try verify-ok --smarthost "localhost:$PORT_starttls" --smtp-tls verify --smtp-tls-ca "$PKI/ca.pem"
assert_match "$(cat "$TEST_TMP/verify-ok.runq.log")" 'result=delivered tls=TLSv1\.[23] cipher=[^ ]+ verified=yes' "verify: log"

step "verify with another CA: deferred, the reason in last_error, last_tls recorded"
try verify-ca --smarthost "localhost:$PORT_starttls" --smtp-tls verify --smtp-tls-ca "$PKI/other-ca.pem"
assert_match "$(cat "$TEST_TMP/verify-ca.runq.log")" 'result=deferred tls=TLSv1\.[23] .*verified=no' "wrong CA: log"
last=$(envelope_field verify-ca 'e["recipients"][0]["last_error"]')
assert_match "$last" \
    'not verified \(--smtp-tls verify\): (unable to get local issuer certificate|self-signed certificate in certificate chain)$' \
    "wrong CA: last_error"
assert_eq "False" "$(envelope_field verify-ca 'e["recipients"][0]["last_tls"]["verified"]')" "wrong CA: last_tls.verified"
assert_match "$(envelope_field verify-ca 'e["recipients"][0]["last_tls"]["version"]')" '^TLSv1\.[23]$' "last_tls.version"

step "verify by 127.0.0.1 against a certificate for localhost: deferred (name mismatch)"
try verify-name --smarthost "127.0.0.1:$PORT_starttls" --smtp-tls verify --smtp-tls-ca "$PKI/ca.pem"
assert_contains "$(envelope_field verify-name 'e["recipients"][0]["last_error"]')" \
    "not verified (--smtp-tls verify): IP address mismatch" "name mismatch: last_error"
assert_eq None "$(last_sni starttls)" "no SNI for an address"

step "a client certificate (--smtp-tls-cert, --smtp-tls-key)"
try client-cert --smarthost "localhost:$PORT_starttls" --smtp-tls-cert "$PKI/client.pem" --smtp-tls-key "$PKI/client.key"
assert_eq relay.test "$(last_transaction starttls client_cert)" "the client certificate the server saw"

step "a per-host policy: verify for localhost only"
try policy --smarthost "127.0.0.1:$PORT_starttls" --smtp-tls-ca "$PKI/other-ca.pem" --smtp-tls-policy localhost=verify
assert_match "$(cat "$TEST_TMP/policy.runq.log")" 'result=delivered tls=.*verified=no' "policy for another host: may"

step "may toward a server without STARTTLS: clear text"
try may-clear --smarthost "127.0.0.1:$PORT_clear"
log=$(cat "$TEST_TMP/may-clear.runq.log")
assert_contains "$log" "result=delivered" "may without STARTTLS: log"
assert_not_contains "$log" "tls=" "may without STARTTLS: log"

step "encrypt toward a server without STARTTLS: deferred"
try encrypt --smarthost "127.0.0.1:$PORT_clear" --smtp-tls encrypt
assert_contains "$(envelope_field encrypt 'e["recipients"][0]["last_error"]')" \
    "does not offer STARTTLS, which --smtp-tls encrypt requires" "encrypt: last_error"
assert_eq "None" "$(envelope_field encrypt 'e["recipients"][0].get("last_tls")')" "encrypt: no last_tls"

step "smtps: implicit TLS"
try smtps --route "*=smtps:127.0.0.1:$PORT_implicit"
assert_match "$(cat "$TEST_TMP/smtps.runq.log")" 'via=smtps:127\.0\.0\.1:[0-9]+ result=delivered tls=TLSv1\.[23]' "smtps: log"
assert_eq 1 "$(wc -l <"$TEST_TMP/implicit/transactions.jsonl")" "smtps: messages at the server"

step "AUTH PLAIN after STARTTLS, through a recording proxy"
AUTH=$TEST_TMP/auth
printf '# smarthosts\nlocalhost:%s relay-user:s3cret:with:colons\n127.0.0.1:%s login-user:pass word\n' \
    "$PROXY_PORT" "$PORT_login" >"$AUTH"
chmod 600 "$AUTH"
try auth --smarthost "localhost:$PROXY_PORT" --smtp-auth-file "$AUTH"
assert_contains "$(cat "$TEST_TMP/auth.runq.log")" "result=delivered" "AUTH: log"
assert_eq "relay-user" "$(last_transaction starttls auth)" "AUTH: the user the server saw"
python3 - "$TEST_TMP/wire" <<'EOF'
import base64, sys
wire = open(sys.argv[1], "rb").read()
assert b"STARTTLS\r\n" in wire, "no STARTTLS on the wire: %r" % wire[:200]
for secret in (b"s3cret", b"relay-user", base64.b64encode(b"\0relay-user\0s3cret:with:colons"),
               base64.b64encode(b"s3cret:with:colons"), b"AUTH"):
    assert secret not in wire, "%r in clear text on the wire" % secret
print(f"{len(wire)} octets from the client recorded, no credentials among them")
EOF
assert_not_contains "$(cat "$TEST_TMP"/*.runq.log)" "s3cret" "the logs"

step "AUTH LOGIN after a STARTTLS reply with an injected line"
try login --smarthost "127.0.0.1:$PORT_login" --smtp-auth-file "$AUTH"
assert_contains "$(cat "$TEST_TMP/login.runq.log")" "result=delivered" "LOGIN: log"
assert_eq '{"mechanism": "LOGIN", "user": "login-user", "success": true}' "$(cat "$TEST_TMP/login/auth.jsonl")" \
    "LOGIN: the server's record"

step "a wrong password: 535, deferred, one attempt and one log line per run"
BAD=$TEST_TMP/bad-auth
printf 'localhost relay-user:wrong\n' >"$BAD"
chmod 600 "$BAD"
mkdir -p "$TEST_TMP/s-bad"
for i in 1 2; do
    printf 'EHLO c.test\r\nMAIL FROM:<s@client.test>\r\nRCPT TO:<bad%s@far.test>\r\nDATA\r\nSubject: bad\r\n\r\nbody\r\n.\r\nQUIT\r\n' "$i" |
        queue_session "$TEST_TMP/s-bad" >/dev/null
done
before=$(grep -c '"success": false' "$TEST_TMP/starttls/auth.jsonl" || true)
# One runner process: each worker keeps its own once-per-run memory.
runq_logged "$TEST_TMP/bad.runq.log" --spool "$TEST_TMP/s-bad" --hostname relay.test --smtp-timeout 10s \
    --concurrency 1 --smarthost "localhost:$PORT_starttls" --smtp-auth-file "$BAD" || fail "runq exited $?"
log=$(cat "$TEST_TMP/bad.runq.log")
echo "$log"
assert_eq 2 "$(grep -c 'event=delivery .*result=deferred' <<<"$log")" "535: deferred recipients"
assert_eq 1 "$(grep -c 'event=delivery-config-error' <<<"$log")" "535: config error lines"
assert_contains "$log" "refused: 535" "535: log"
after=$(grep -c '"success": false' "$TEST_TMP/starttls/auth.jsonl")
assert_eq 1 "$((after - before))" "535: AUTH attempts at the server"
SPOOL=$TEST_TMP/s-bad python3 - <<'EOF'
import json, os
spool = os.environ["SPOOL"]
for qid in os.listdir(os.path.join(spool, "queue")):
    e = json.load(open(os.path.join(spool, "queue", qid, "envelope.json")))
    r = e["recipients"][0]
    assert r["status"] == "pending", r
    assert "authentication as relay-user to localhost:" in r["last_error"] and "535" in r["last_error"], r
    assert "wrong" not in json.dumps(e), "the password in the envelope"
print("both envelopes pending with the 535 in last_error")
EOF

step "an auth file that others may read: configuration error"
chmod 644 "$BAD"
status=0
"$SMTPSPOOL_BIN" runq --log none --spool "$TEST_TMP/s-bad" --smarthost "localhost:$PORT_starttls" \
    --smtp-auth-file "$BAD" 2>"$TEST_TMP/perm.err" || status=$?
assert_eq 78 "$status" "runq with a world-readable auth file"
assert_contains "$(cat "$TEST_TMP/perm.err")" "group or others have permissions on it (mode 0644)" "runq's complaint"
status=0
"$SMTPSPOOL_BIN" check-config --config /dev/null --smarthost "localhost:$PORT_starttls" \
    --smtp-auth-file "$BAD" >/dev/null 2>"$TEST_TMP/check.err" || status=$?
assert_eq 78 "$status" "check-config with a world-readable auth file"
status=0
"$SMTPSPOOL_BIN" check-config --config /dev/null --hostname relay.test --smarthost "localhost:$PORT_starttls" \
    --smtp-auth-file "$AUTH" >/dev/null 2>"$TEST_TMP/check.err" || status=$?
assert_eq 0 "$status" "check-config with a good auth file"
assert_contains "$(cat "$TEST_TMP/check.err")" "line 3: 127.0.0.1:$PORT_login: no smtp or smtps route goes to this host" \
    "check-config's warning"
