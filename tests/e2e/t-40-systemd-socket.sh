#!/bin/bash
# smtpspool under systemd-socket-activate --accept --inetd (what systemd does
# for smtpspool.socket with Accept=yes), with a Python smtplib client:
#  - without REMOTE_ADDR the peer comes from getpeername(2): 127.0.0.1 and the
#    client's own source port are recorded in the envelope;
#  - with REMOTE_ADDR/REMOTE_PORT set (as systemd itself sets them), those are
#    recorded, and a client outside --relay-client may not relay.
# Then `systemd-analyze verify` on examples/systemd (paths substituted), when
# systemd-analyze can run here.
# shellcheck source=tests/e2e/lib.sh
source "$(dirname "$0")/lib.sh"
need_tool systemd-socket-activate python3

SPOOL=$TEST_TMP/spool

# start_activator LOG EXTRA-ARGS...: sets PORT and BG_PID.
start_activator()
{
    local log=$1
    shift
    PORT=$(free_port)
    start_bg "$log" systemd-socket-activate --accept --inetd -l "127.0.0.1:$PORT" "$@" \
        "$SMTPSPOOL_BIN" --spool "$SPOOL" --hostname mx.test.example --relay-client 127.0.0.0/8 --log stderr
    wait_for_port "$PORT" "$BG_PID" "$log"
}

step "peer from getpeername(2)"
start_activator "$TEST_TMP/activate1.log"
PORT=$PORT SPOOL=$SPOOL python3 - <<'EOF'
import os, smtplib
from e2elib import *

port, spool = int(os.environ["PORT"]), os.environ["SPOOL"]
body = b"Subject: via socket activation\r\n\r\nbody line 1\r\n.dot line\r\n"

def main():
    c = smtplib.SMTP("127.0.0.1", port, local_hostname="sa-client.test.example", timeout=20)
    c.ehlo()
    source_port = c.sock.getsockname()[1]
    c.mail("sa@client.test.example")
    code, text = c.rcpt("someone@far-away.example")
    expect_eq(250, code, f"RCPT to a stranger domain from 127.0.0.1 (a relay client): {text!r}")
    code, text = c.data(body)
    expect_eq(250, code, f"DATA reply ({text!r})")
    qid = queued_id(text.decode(), "DATA reply")
    c.quit()
    expect_eq([qid], queue_ids(spool), "the queue")
    env, msg = load(spool, qid)
    check_envelope(env, qid, msg)
    expect_eq("127.0.0.1", env["client"]["address"], "client.address")
    expect_eq(source_port, env["client"]["port"], "client.port (the client's source port)")
    expect_eq("sa-client.test.example", env["client"]["helo"], "client.helo")
    expect_eq(["someone@far-away.example"], [r["address"] for r in env["recipients"]], "recipients")
    header, rest = split_received(msg, qid)
    expect_eq(body, rest, "message after Received:")
    expect(b"([127.0.0.1])" in header, "Received:", "([127.0.0.1])", header)
    expect_eq([qid], [e["id"] for e in mailq_json(spool)], "mailq --json")

run(main)
EOF
assert_contains "$(cat "$TEST_TMP/activate1.log")" "event=connect client=127.0.0.1" "smtpspool log"
stop_bg "$BG_PID"
rm -rf "$SPOOL"

step "peer from REMOTE_ADDR and REMOTE_PORT"
start_activator "$TEST_TMP/activate2.log" -E REMOTE_ADDR=192.0.2.7 -E REMOTE_PORT=4242
PORT=$PORT SPOOL=$SPOOL python3 - <<'EOF'
import os, smtplib
from e2elib import *

port, spool = int(os.environ["PORT"]), os.environ["SPOOL"]

def main():
    c = smtplib.SMTP("127.0.0.1", port, local_hostname="remote.test.example", timeout=20)
    c.ehlo()
    c.mail("far@client.test.example")
    code, text = c.rcpt("someone@far-away.example")
    expect_eq((550, b"5.7.1 relaying denied"), (code, text), "RCPT to a stranger domain from 192.0.2.7")
    code, text = c.rcpt("user@mx.test.example")
    expect_eq(250, code, f"RCPT to the local domain ({text!r})")
    code, text = c.data(b"Subject: REMOTE_ADDR\r\n\r\nhello\r\n")
    expect_eq(250, code, f"DATA reply ({text!r})")
    qid = queued_id(text.decode(), "DATA reply")
    c.quit()
    env, msg = load(spool, qid)
    check_envelope(env, qid, msg)
    expect_eq("192.0.2.7", env["client"]["address"], "client.address (REMOTE_ADDR)")
    expect_eq(4242, env["client"]["port"], "client.port (REMOTE_PORT)")
    expect_eq(["user@mx.test.example"], [r["address"] for r in env["recipients"]], "recipients")
    header, _ = split_received(msg, qid)
    expect(header.startswith(b"Received: from remote.test.example ([192.0.2.7])"), "Received:",
           "from remote.test.example ([192.0.2.7])", header)

run(main)
EOF
stop_bg "$BG_PID"

step "the example unit files"
UNITS=$TEST_TMP/units
mkdir -p "$UNITS"
cp "$REPO_ROOT/examples/systemd/smtpspool.socket" "$REPO_ROOT/examples/systemd/smtpspool@.service" "$UNITS/"
for line in "ListenStream=25" "Accept=yes"; do
    assert_line "$UNITS/smtpspool.socket" "$line"
done
for line in "StandardInput=socket" "StandardOutput=socket" "StandardError=journal" "User=smtpspool" \
    "ProtectSystem=strict" "ReadWritePaths=/var/spool/smtpspool" "NoNewPrivileges=yes" \
    "ExecStart=/usr/local/sbin/smtpspool --config /etc/smtpspool.conf"; do
    assert_line "$UNITS/smtpspool@.service" "$line"
done
printf 'spool = %s\n' "$TEST_TMP/unit-spool" >"$TEST_TMP/smtpspool.conf"
sed -i -e "s#/usr/local/sbin/smtpspool#$SMTPSPOOL_BIN#g" -e "s#/var/spool/smtpspool#$TEST_TMP/unit-spool#g" \
    -e "s#/etc/smtpspool.conf#$TEST_TMP/smtpspool.conf#g" "$UNITS/smtpspool.socket" "$UNITS/smtpspool@.service"

step "the service's command line serves a session (piped, as a local client)"
exec_start=$(sed -n 's/^ExecStart=//p' "$UNITS/smtpspool@.service")
# shellcheck disable=SC2086
out=$(printf 'HELO pipe.test.example\nQUIT\n' | $exec_start --hostname mx.test.example)
assert_eq $'220 mx.test.example ESMTP smtpspool ready\r\n250 mx.test.example hello pipe.test.example\r\n221 2.0.0 mx.test.example closing connection\r' \
    "$out" "session through the ExecStart= command line"
[[ -d "$TEST_TMP/unit-spool/queue" ]] || fail "ExecStart= did not use the spool its configuration file names"

step "systemd-analyze verify"
if ! command -v systemd-analyze >/dev/null 2>&1; then
    skip_part systemd-analyze "systemd-analyze is not installed"
else
    # A unit known to be good tells whether systemd-analyze works here at all.
    PROBE=$TEST_TMP/probe
    mkdir -p "$PROBE"
    printf '[Unit]\nDescription=probe\n[Service]\nExecStart=/bin/true\n' >"$PROBE/e2e-probe.service"
    if ! probe=$(systemd-analyze verify --man=no "$PROBE/e2e-probe.service" 2>&1); then
        skip_part systemd-analyze "cannot verify even a trivial unit here: $(head -3 <<<"$probe" | tr '\n' ' ')"
    else
        set +e
        out=$(cd "$UNITS" && systemd-analyze verify --man=no ./smtpspool.socket ./smtpspool@.service 2>&1)
        status=$?
        set -e
        assert_eq 0 "$status" "systemd-analyze verify exit status (output: $out)"
        # Unknown or misspelt settings are only warnings: none is allowed.
        assert_eq "" "$out" "systemd-analyze verify output"
    fi
fi
