#!/bin/bash
# smtpspool under the real xinetd (xinetd -dontfork -f FILE) with
# examples/xinetd.d/smtpspool, only the port, the address (bind), the paths
# and the user replaced, included from a minimal defaults file (which sends
# the service log to a file). As the example says:
#  - mail from 127.0.0.1 (a relay client of the test's smtpspool.conf) is
#    relayed and spooled with client.address 127.0.0.1, by smtpspool running
#    as the user of the file; a stranger (127.0.0.2) gets 550 5.7.1;
#  - per_source = 10: the 11th concurrent connection from one address is
#    closed without a greeting ("FAIL: smtp per_source_limit");
#  - instances = 40: with 40 sessions from four addresses, the 41st
#    connection is closed without a greeting ("FAIL: smtp service_limit");
#    once a session ends, a new one is served;
#  - cps = 50 10, on fresh xinetds: a burst at start: the 51st connection
#    in the first second is closed, then connections are refused for 10
#    seconds, then served again; a burst 3 seconds after a first connection
#    gets more than 100 sessions (xinetd averages over the seconds since the
#    first connection).
# shellcheck source=tests/integration/lib.sh
source "$(dirname "$0")/lib.sh"
need_root "xinetd runs smtpspool as another user"
need_package xinetd
XINETD=$PKG_ROOT/usr/sbin/xinetd
[[ -x "$XINETD" ]] || fail "no $XINETD in the package"
need_tool python3

SPOOL=$TEST_TMP/spool
CONF=$TEST_TMP/smtpspool.conf
make_spool "$SPOOL"
make_config "$CONF" "$SPOOL" 127.0.0.1/32
EXAMPLE=$REPO_ROOT/examples/xinetd.d/smtpspool

step "the service file, the defaults file"
PORT=$(free_port)
mkdir "$TEST_TMP/xinetd.d"
# A name without a dot: includedir skips those with one.
substitute "$EXAMPLE" \
    "s#^\(\tport\t*= \)25\$#\1$PORT#" \
    "s#^\(\tbind\t*= \)0.0.0.0\$#\1127.0.0.1#" \
    "s#^\(\tuser\t*= \)smtpspool\$#\1$RUNAS#" \
    "s#/usr/local/sbin/smtpspool#$BIN#" \
    "s#/etc/smtpspool.conf#$CONF#" >"$TEST_TMP/xinetd.d/smtpspool"
diff "$EXAMPLE" "$TEST_TMP/xinetd.d/smtpspool" || true
SERVICE_LOG=$TEST_TMP/service.log
cat >"$TEST_TMP/xinetd.conf" <<EOF2
defaults
{
	log_type = FILE $SERVICE_LOG
}
includedir $TEST_TMP/xinetd.d
EOF2

step "xinetd -dontfork"
start_bg "$TEST_TMP/xinetd.out" "$XINETD" -dontfork -f "$TEST_TMP/xinetd.conf" \
    -filelog "$TEST_TMP/xinetd.log" -pidfile "$TEST_TMP/xinetd.pid"
XINETD_PID=$BG_PID
deadline=$((SECONDS + 10))
until grep -q 'Started working' "$TEST_TMP/xinetd.log" 2>/dev/null; do
    ((SECONDS < deadline)) || fail "xinetd did not start: $(cat "$TEST_TMP/xinetd.out" "$TEST_TMP/xinetd.log" 2>&1)"
    sleep 0.1
done
assert_contains "$(cat "$TEST_TMP/xinetd.log")" "Started working: 1 available service" "xinetd's log"
wait_for_port "$PORT" "$XINETD_PID" "$TEST_TMP/xinetd.log"

step "mail from a relay client and from a stranger"
PORT=$PORT SPOOL=$SPOOL python3 - <<'EOF2'
import os
from itlib import *
port, spool = int(os.environ["PORT"]), os.environ["SPOOL"]
run(lambda: (send(port, spool, "127.0.0.1", relay=True), send(port, spool, "127.0.0.2", relay=False)))
EOF2
for f in "$SPOOL"/queue/*/envelope.json; do
    check_owner "$f"
done

step "per_source and instances"
PORT=$PORT python3 - <<'EOF2'
import os, time
from itlib import *
port = int(os.environ["PORT"])
def main():
    one = hold(port, ["127.0.0.1"] * 11)
    expect_eq(["greeted"] * 10 + ["closed"], states(one), "11 concurrent connections from 127.0.0.1 (per_source = 10)")
    one[-1].close()
    more = hold(port, [f"127.0.0.{a}" for a in (3, 4, 5) for _ in range(10)])
    expect_eq(["greeted"] * 30, states(more), "10 more from each of 127.0.0.3, .4 and .5")
    extra = Conn(port, "127.0.0.6")
    expect_eq("closed", extra.state, "the 41st concurrent connection (instances = 40)")
    one[0].close()
    time.sleep(0.5)  # xinetd reaps the session
    again = Conn(port, "127.0.0.6")
    expect_eq("greeted", again.state, "a connection once a session has ended")
    for c in one + more + [extra, again]:
        c.close()
run(main)
EOF2
log=$(cat "$SERVICE_LOG")
assert_contains "$log" "FAIL: smtp per_source_limit from=127.0.0.1" "xinetd's service log"
assert_contains "$log" "FAIL: smtp service_limit from=127.0.0.6" "xinetd's service log"

stop_bg "$XINETD_PID"

# start_xinetd NAME: another xinetd on a new port (PORT), logs NAME.*.
start_xinetd()
{
    PORT=$(free_port)
    sed -i "s#^\(\tport\t*= \)[0-9]*\$#\1$PORT#" "$TEST_TMP/xinetd.d/smtpspool"
    SERVICE_LOG=$TEST_TMP/$1.service.log
    sed -i "s#log_type = FILE .*#log_type = FILE $SERVICE_LOG#" "$TEST_TMP/xinetd.conf"
    start_bg "$TEST_TMP/$1.out" "$XINETD" -dontfork -f "$TEST_TMP/xinetd.conf" \
        -filelog "$TEST_TMP/$1.log" -pidfile "$TEST_TMP/xinetd.pid"
}

step "cps: a burst from the start"
start_xinetd cps1
PORT=$PORT python3 - <<'EOF2'
import os, time
from itlib import *
port = int(os.environ["PORT"])
def main():
    first = wait_listening(port)
    seen = [first.state]
    first.close()
    t0 = time.time()
    for i in range(60):
        c = Conn(port, f"127.0.1.{i + 1}")
        seen.append(c.state)
        c.close()
        if c.state != "greeted":
            break
    took = time.time() - t0
    expect_eq(["greeted"] * 50 + ["closed"], seen, f"connections in one burst ({took:.2f}s)")
    t1 = time.time()
    refused = Conn(port).state
    expect_eq("refused", refused, "a connection right after (the service is off)")
    while time.time() - t1 < 20:
        c = Conn(port)
        c.close()
        if c.state != "refused":
            break
        time.sleep(0.5)
    expect_eq("greeted", c.state, "a connection once the service is back")
    off = time.time() - t1
    expect(9 <= off <= 13, "the time the service was off", "10 seconds", f"{off:.1f}s")
    print(f"cps: 50 sessions, the 51st connection closed, then refused for {off:.1f}s")
run(main)
EOF2
log=$(cat "$SERVICE_LOG" "$TEST_TMP/cps1.log")
assert_contains "$log" "FAIL: smtp connections per second" "xinetd's logs"
assert_contains "$log" "Deactivating service smtp due to excessive incoming connections.  Restarting in 10 seconds." "xinetd's log"
stop_bg "$BG_PID"

step "cps: a burst three seconds after a first connection"
# xinetd divides the connections since the first one by the whole seconds
# since then: a later burst is cut only when that average exceeds 50.
start_xinetd cps2
PORT=$PORT python3 - <<'EOF2'
import os, time
from itlib import *
port = int(os.environ["PORT"])
def main():
    first = wait_listening(port)
    first.close()
    expect_eq("greeted", first.state, "the first connection")
    time.sleep(3)
    seen = ["greeted"]
    for i in range(400):
        c = Conn(port, f"127.0.{2 + i // 200}.{i % 200 + 1}")
        seen.append(c.state)
        c.close()
        if c.state != "greeted":
            break
    n = seen.count("greeted")
    expect(n > 100, "sessions before the burst is cut", "more than 100 (twice cps)", n)
    print(f"cps after 3 quiet seconds: {n} sessions, then {seen[-1]}")
run(main)
EOF2
stop_bg "$BG_PID"
