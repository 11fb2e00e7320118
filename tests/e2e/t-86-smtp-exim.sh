#!/bin/bash
# runq's SMTP client against exim (exim -bs under tcpserver on 127.0.0.1,
# a configuration of the test's own) as a smarthost that offers AUTH only
# inside TLS and takes mail for relaying only from an authenticated client:
#  - verify with --smtp-tls-ca (a CA made here) and AUTH PLAIN: exim logs
#    the message as received over TLS (X=) from the user (A=plain:...);
#  - a second exim offering LOGIN only: A=login:...;
#  - a wrong password: exim answers 535, the message is deferred with the
#    reply in last_error.
# shellcheck source=tests/e2e/lib.sh
source "$(dirname "$0")/lib.sh"
# shellcheck source=tests/e2e/deliverylib.sh
source "$E2E_DIR/deliverylib.sh"
need_tool exim
need_tool tcpserver
need_tool openssl

# exim gives up root for the exim user: it must reach its files.
chmod 755 "$TEST_TMP"
PKI=$TEST_TMP/pki
mkdir -p "$PKI"
step "a test CA and a certificate for localhost"
(
    cd "$PKI"
    openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 2 -subj /CN=test-ca \
        -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign >/dev/null 2>&1
    openssl req -newkey rsa:2048 -nodes -keyout server.key -out server.csr -subj /CN=localhost >/dev/null 2>&1
    printf 'subjectAltName=DNS:localhost\nextendedKeyUsage=serverAuth\n' >ext.cnf
    openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out server.pem -days 2 \
        -extfile ext.cnf >/dev/null 2>&1
    chmod 644 server.key
) || fail "openssl could not make the test CA"
chmod 755 "$PKI"

# start_exim NAME MECHANISMS...: exim -bs under tcpserver with its own spool;
# sets PORT_<NAME>.
start_exim()
{
    local name=$1 dir=$TEST_TMP/exim-$1 port mech
    shift
    mkdir -p "$dir/spool/log"
    {
        cat <<EOF
keep_environment =
primary_hostname = exim-$name.test
spool_directory = $dir/spool
log_file_path = $dir/spool/log/%slog
queue_only = true
host_lookup =
rfc1413_hosts =
tls_advertise_hosts = *
tls_certificate = $PKI/server.pem
tls_privatekey = $PKI/server.key
auth_advertise_hosts = \${if eq{\$tls_in_cipher}{}{}{*}}
acl_smtp_rcpt = acl_rcpt

begin acl
acl_rcpt:
  deny message = 5.7.1 authentication required
       !authenticated = *
  accept

begin authenticators
EOF
        for mech in "$@"; do
            if [[ $mech == PLAIN ]]; then
                cat <<'EOF'
plain:
  driver = plaintext
  public_name = PLAIN
  server_prompts = :
  server_condition = ${if and {{eq{$auth2}{exim-user}}{eq{$auth3}{exim pass:word}}}}
  server_set_id = $auth2
EOF
            else
                cat <<'EOF'
login:
  driver = plaintext
  public_name = LOGIN
  server_prompts = Username:: : Password::
  server_condition = ${if and {{eq{$auth1}{exim-user}}{eq{$auth2}{exim pass:word}}}}
  server_set_id = $auth1
EOF
            fi
        done
    } >"$dir/exim.conf"
    chmod 644 "$dir/exim.conf"
    chown -R Debian-exim: "$dir/spool" 2>/dev/null || chmod -R 777 "$dir/spool"
    port=$(free_port)
    start_bg "$dir/tcpserver.log" tcpserver -R -H -l 0 127.0.0.1 "$port" exim -C "$dir/exim.conf" -bs
    wait_for_port "$port" "$BG_PID" "$dir/tcpserver.log"
    printf -v "PORT_$name" '%s' "$port"
}

step "start two exims: PLAIN and LOGIN, and LOGIN only"
start_exim both PLAIN LOGIN
start_exim login LOGIN

AUTH=$TEST_TMP/auth
printf 'localhost exim-user:exim pass:word\n' >"$AUTH"
chmod 600 "$AUTH"

# deliver NAME PORT AUTHFILE: one message queued and run to localhost:PORT
# with verify and the auth file; its log in NAME.log.
deliver()
{
    local name=$1 port=$2 auth=$3 status=0
    mkdir -p "$TEST_TMP/s-$name"
    ID=$(printf 'EHLO c.test\r\nMAIL FROM:<s@client.test>\r\nRCPT TO:<%s@far.test>\r\nDATA\r\nSubject: %s\r\n\r\nbody\r\n.\r\nQUIT\r\n' \
        "$name" "$name" | queue_session "$TEST_TMP/s-$name")
    runq_logged "$TEST_TMP/$name.log" --spool "$TEST_TMP/s-$name" --hostname relay.test --smtp-timeout 10s \
        --smarthost "localhost:$port" --smtp-tls verify --smtp-tls-ca "$PKI/ca.pem" --smtp-auth-file "$auth" ||
        status=$?
    cat "$TEST_TMP/$name.log"
    assert_eq 0 "$status" "$name: exit status of runq"
}

step "verify and AUTH PLAIN to exim"
deliver plain "$PORT_both" "$AUTH"
assert_match "$(cat "$TEST_TMP/plain.log")" 'result=delivered tls=TLSv1\.[23] cipher=[^ ]+ verified=yes' "PLAIN: log"
assert_match "$(cat "$TEST_TMP/exim-both/spool/log/mainlog")" \
    '<= s@client\.test H=\(relay\.test\) \[127\.0\.0\.1\] P=esmtpsa X=TLS1\.[23]:[^ ]+ CV=no A=plain:exim-user ' \
    "exim's log: over TLS, AUTH PLAIN"

step "AUTH LOGIN to an exim that offers only LOGIN"
deliver login "$PORT_login" "$AUTH"
assert_contains "$(cat "$TEST_TMP/login.log")" "result=delivered" "LOGIN: log"
assert_match "$(cat "$TEST_TMP/exim-login/spool/log/mainlog")" 'P=esmtpsa X=TLS1\.[23]:[^ ]+ CV=no A=login:exim-user ' \
    "exim's log: over TLS, AUTH LOGIN"

step "a wrong password: 535, deferred"
BAD=$TEST_TMP/bad
printf 'localhost exim-user:not the password\n' >"$BAD"
chmod 600 "$BAD"
deliver bad "$PORT_both" "$BAD"
assert_contains "$(cat "$TEST_TMP/bad.log")" "result=deferred" "535: log"
assert_contains "$(cat "$TEST_TMP/bad.log")" "event=delivery-config-error" "535: log"
last=$(SPOOL=$TEST_TMP/s-bad QID=$ID python3 -c '
import json, os
print(json.load(open(os.path.join(os.environ["SPOOL"], "queue", os.environ["QID"], "envelope.json")))["recipients"][0]["last_error"])')
assert_contains "$last" "authentication as exim-user to localhost:$PORT_both by PLAIN refused: 535" "535: last_error"
assert_not_contains "$(cat "$TEST_TMP"/*.log "$TEST_TMP"/s-*/queue/*/envelope.json)" "not the password" "logs and envelopes"
