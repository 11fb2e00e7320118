#!/bin/bash
# smtpspool under tcpserver, started by examples/tcpserver/run with the rules
# of examples/tcpserver/tcp.smtp, only the port, the paths, the user and the
# example networks replaced: 192.0.2. (may relay) by 127.0.2., 198.51.100.
# (denied) by 127.0.3.; the script's variables set the port, the paths and
# the user. The test's smtpspool.conf lets only 127.0.0.1/32 relay, so
# relaying elsewhere comes from RELAYCLIENT in the rules:
#  - tcprulescheck: RELAYCLIENT for 127.0.0.1 and 127.0.2.9, deny for
#    127.0.3.9, allow without RELAYCLIENT for 127.0.4.1;
#  - mail from 127.0.0.1 and 127.0.2.9 is relayed, a stranger (127.0.4.1)
#    gets 550 5.7.1; client.address as connected; smtpspool runs as the user;
#  - a client of the denied network is closed without a greeting;
#  - CONCURRENCY (-c, 40 in the script): with 40 sessions, the 41st
#    connection waits (connected, no greeting) and is greeted as soon as one
#    session ends.
# shellcheck source=tests/integration/lib.sh
source "$(dirname "$0")/lib.sh"
need_package ucspi-tcp
need_tool tcpserver tcprules tcprulescheck python3

SPOOL=$TEST_TMP/spool
CONF=$TEST_TMP/smtpspool.conf
make_spool "$SPOOL"
make_config "$CONF" "$SPOOL" 127.0.0.1/32
RULES=$TEST_TMP/tcp.smtp.cdb

step "the rules"
substitute "$REPO_ROOT/examples/tcpserver/tcp.smtp" \
    's#^192\.0\.2\.:#127.0.2.:#' 's#^198\.51\.100\.:#127.0.3.:#' >"$TEST_TMP/tcp.smtp"
diff "$REPO_ROOT/examples/tcpserver/tcp.smtp" "$TEST_TMP/tcp.smtp" || true
compile_rules "$TEST_TMP/tcp.smtp" "$RULES"
for ip in 127.0.0.1 127.0.2.9; do
    out=$(TCPREMOTEIP=$ip tcprulescheck "$RULES")
    assert_contains "$out" "set environment variable RELAYCLIENT=" "rules for $ip"
    assert_contains "$out" "allow connection" "rules for $ip"
done
out=$(TCPREMOTEIP=127.0.3.9 tcprulescheck "$RULES")
assert_contains "$out" "deny connection" "rules for 127.0.3.9"
out=$(TCPREMOTEIP=127.0.4.1 tcprulescheck "$RULES")
assert_contains "$out" "allow connection" "rules for 127.0.4.1"
assert_not_contains "$out" "RELAYCLIENT" "rules for 127.0.4.1"

step "the run script"
RUN=$REPO_ROOT/examples/tcpserver/run
CONCURRENCY=$(sed -n 's/^CONCURRENCY=\${CONCURRENCY:-\([0-9]*\)}$/\1/p' "$RUN")
assert_match "$CONCURRENCY" '^[0-9]+$' "the script's CONCURRENCY"
PORT=$(free_port)
runas=$RUNAS
is_root || runas= # the script's way to keep the current user
start_bg "$TEST_TMP/run.log" env SMTPSPOOL="$BIN" CONFIG="$CONF" RULES="$RULES" IP=127.0.0.1 PORT="$PORT" \
    RUNAS="$runas" sh "$RUN"
SERVER_PID=$BG_PID
wait_for_port "$PORT" "$SERVER_PID" "$TEST_TMP/run.log"

step "mail from the relay networks and from a stranger"
PORT=$PORT SPOOL=$SPOOL python3 - <<'EOF2'
import os
from itlib import *
port, spool = int(os.environ["PORT"]), os.environ["SPOOL"]
def main():
    send(port, spool, "127.0.0.1", relay=True)
    send(port, spool, "127.0.2.9", relay=True)
    send(port, spool, "127.0.4.1", relay=False)
    c = Conn(port, "127.0.3.9")
    expect_eq("closed", c.state, "a client of the denied network")
run(main)
EOF2
for f in "$SPOOL"/queue/*/envelope.json; do
    check_owner "$f"
done
assert_contains "$(cat "$TEST_TMP/run.log")" "tcpserver: deny" "tcpserver's log"

step "CONCURRENCY=$CONCURRENCY: the next connection waits"
PORT=$PORT N=$CONCURRENCY python3 - <<'EOF2'
import os, time
from itlib import *
port, n = int(os.environ["PORT"]), int(os.environ["N"])
def main():
    conns = hold(port, [f"127.0.5.{i + 1}" for i in range(n)])
    expect_eq(["greeted"] * n, states(conns), f"{n} concurrent connections")
    extra = Conn(port, "127.0.6.1", wait=2.0)
    expect_eq("waiting", extra.state, f"connection {n + 1} (connected, no greeting for 2 s)")
    conns[0].close()
    expect_eq("greeted", extra.read_again(5.0), f"connection {n + 1} once a session ended")
    for c in conns[1:] + [extra]:
        c.close()
run(main)
EOF2
