#!/bin/bash
# TLS toward mail exchangers (--route '*=mx') is for the MX host name, not
# the address: a DNS server (dnslib) on 127.0.0.1 sends tls.test to
# mx.tls.test and implicit.test (no MX) to itself, both at 127.0.0.3 (127.0.0.1 is
# an address of this host, a mail loop), where an
# aiosmtpd server offers STARTTLS with a certificate for those two names,
# signed by a test CA made here by openssl:
#  - --smtp-tls verify --smtp-tls-ca: delivered, verified=yes in the log,
#    SNI mx.tls.test; the implicit MX the same with SNI implicit.test;
#  - an address literal (u@[127.0.0.3]) keeps the address: verify fails on the
#    name (IP address mismatch), no SNI;
#  - --smtp-tls-policy mx.tls.test=verify (the global level may) with another
#    CA: the entry applies, deferred as not verified.
# shellcheck source=tests/e2e/lib.sh
source "$(dirname "$0")/lib.sh"
# shellcheck source=tests/e2e/deliverylib.sh
source "$E2E_DIR/deliverylib.sh"
need_aiosmtpd
need_dnslib
need_tool openssl

PKI=$TEST_TMP/pki
mkdir -p "$PKI"
step "a test CA, a certificate for mx.tls.test and implicit.test signed by it, and another CA"
(
    cd "$PKI"
    openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 2 -subj /CN=test-ca \
        -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign >/dev/null 2>&1
    openssl req -x509 -newkey rsa:2048 -nodes -keyout other.key -out other-ca.pem -days 2 -subj /CN=other-ca \
        -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign >/dev/null 2>&1
    openssl req -newkey rsa:2048 -nodes -keyout server.key -out server.csr -subj /CN=mx.tls.test >/dev/null 2>&1
    printf 'subjectAltName=DNS:mx.tls.test,DNS:implicit.test\nextendedKeyUsage=serverAuth\n' >ext.cnf
    openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out server.pem -days 2 \
        -extfile ext.cnf >/dev/null 2>&1
) || fail "openssl could not make the test CA"

step "start the name server and the mail exchanger"
ZONE=$TEST_TMP/zone.json
cat >"$ZONE" <<'EOF'
{"tls.test": {"MX": [[10, "mx.tls.test"]]},
 "mx.tls.test": {"A": ["127.0.0.3"]},
 "implicit.test": {"A": ["127.0.0.3"]}}
EOF
start_dns_server "$ZONE"
PORT=$(free_port)
start_bg "$TEST_TMP/mx.log" "$AIOSMTPD_PYTHON" "$E2E_DIR/tlssmarthost.py" "$PORT" "$TEST_TMP/mx" \
    "$PKI/server.pem" "$PKI/server.key" '{"address": "127.0.0.3"}'
wait_for_address 127.0.0.3 "$PORT" "$BG_PID" "$TEST_TMP/mx.log"

# try NAME RCPT RUNQ_ARGS...: queue one message to RCPT in spool NAME, run
# runq (the mx route) with the arguments, log into NAME.runq.log; sets ID.
try()
{
    local name=$1 rcpt=$2
    shift 2
    mkdir -p "$TEST_TMP/s-$name"
    ID=$(printf 'EHLO c.test\r\nMAIL FROM:<s@client.test>\r\nRCPT TO:<%s>\r\nDATA\r\nSubject: %s\r\n\r\nbody\r\n.\r\nQUIT\r\n' \
        "$rcpt" "$name" | queue_session "$TEST_TMP/s-$name")
    [[ -n "$ID" ]] || fail "$name: nothing queued"
    local status=0
    runq_logged "$TEST_TMP/$name.runq.log" --spool "$TEST_TMP/s-$name" --hostname relay.test --smtp-timeout 10s \
        --route '*=mx' --dns-server "127.0.0.1:$DNS_PORT" --mx-port "$PORT" "$@" || status=$?
    cat "$TEST_TMP/$name.runq.log"
    assert_eq 0 "$status" "$name: exit status of runq"
}
recipient_field() # NAME PYTHON-EXPRESSION on r, the envelope's first recipient
{
    SPOOL=$TEST_TMP/s-$1 QID=$ID python3 -c '
import json, os, sys
e = json.load(open(os.path.join(os.environ["SPOOL"], "queue", os.environ["QID"], "envelope.json")))
r = e["recipients"][0]
print(eval(sys.argv[1]))' "$2"
}
last_sni() # the server name of the mail exchanger's last handshake
{
    python3 -c 'import json,sys; print(json.loads(open(sys.argv[1]).readlines()[-1])["server_name"])' \
        "$TEST_TMP/mx/sni.jsonl"
}

step "verify toward an MX host: the certificate is checked against mx.tls.test"
try mx-verify u@tls.test --smtp-tls verify --smtp-tls-ca "$PKI/ca.pem"
assert_match "$(cat "$TEST_TMP/mx-verify.runq.log")" \
    "to=u@tls.test via=mx result=delivered tls=TLSv1\.[23] cipher=[^ ]+ verified=yes .*hop=mx.tls.test\[127.0.0.3\]:$PORT" \
    "verify toward the MX: log"
assert_eq mx.tls.test "$(last_sni)" "SNI toward the MX"

step "verify toward an implicit MX: the domain's name"
try implicit-verify u@implicit.test --smtp-tls verify --smtp-tls-ca "$PKI/ca.pem"
assert_match "$(cat "$TEST_TMP/implicit-verify.runq.log")" 'to=u@implicit.test via=mx result=delivered .*verified=yes' \
    "verify toward the implicit MX: log"
assert_eq implicit.test "$(last_sni)" "SNI toward the implicit MX"

step "an address literal keeps the address: no SNI, the name check fails"
try literal-verify 'u@[127.0.0.3]' --smtp-tls verify --smtp-tls-ca "$PKI/ca.pem"
assert_contains "$(recipient_field literal-verify 'r["last_error"]')" \
    "not verified (--smtp-tls verify): IP address mismatch" "address literal: last_error"
assert_eq None "$(last_sni)" "no SNI toward an address literal"

step "a policy entry for the MX host name applies (verify, with another CA: deferred)"
try mx-policy u@tls.test --smtp-tls-ca "$PKI/other-ca.pem" --smtp-tls-policy mx.tls.test=verify
assert_eq pending "$(recipient_field mx-policy 'r["status"]')" "policy for the MX: status"
assert_contains "$(recipient_field mx-policy 'r["last_error"]')" "not verified (--smtp-tls verify)" \
    "policy for the MX: last_error"
assert_eq "TLSv1.3 False" "$(recipient_field mx-policy 'r["last_tls"]["version"], r["last_tls"]["verified"]' | tr -d "(',)")" \
    "policy for the MX: last_tls of the deferred attempt"
