#!/bin/bash
# smtpspool under the real openbsd-inetd (inetd -d -i: debug output, in the
# foreground) with the line of examples/inetd.conf, only the port (smtp ->
# 127.0.0.1:PORT), the paths and the user replaced. As the example says:
#  - mail from 127.0.0.1 (a relay client of the test's smtpspool.conf) is
#    relayed and spooled with client.address 127.0.0.1 and the client's port,
#    by smtpspool running as the user of the line;
#  - a stranger (127.0.0.2) gets 550 5.7.1 for another domain, and its mail
#    to postmaster@localhost is spooled with client.address 127.0.0.2;
#  - no limit on concurrent sessions: 41 at once are all greeted;
#  - nowait.N is a rate: in a minute, N-1 sessions start and the Nth
#    connection is closed without a greeting; on a port below 1024 (a fresh
#    inetd) later connections are then refused, on a port of 1024 or above
#    (the first inetd) they are closed without a greeting too.
# shellcheck source=tests/integration/lib.sh
source "$(dirname "$0")/lib.sh"
need_root "inetd runs smtpspool as another user"
need_package openbsd-inetd
INETD=$PKG_ROOT/usr/sbin/inetd
[[ -x "$INETD" ]] || fail "no $INETD in the package"
need_tool python3
# Debian's inetd writes /run/inetd.pid even in the foreground.
if [[ -f /run/inetd.pid ]] && kill -0 "$(cat /run/inetd.pid)" 2>/dev/null; then
    skip_test "an inetd is running here (pid $(cat /run/inetd.pid)); a second one would take over /run/inetd.pid"
fi

SPOOL=$TEST_TMP/spool
CONF=$TEST_TMP/smtpspool.conf
make_spool "$SPOOL"
make_config "$CONF" "$SPOOL" 127.0.0.1/32
EXAMPLE=$REPO_ROOT/examples/inetd.conf

# inetd_conf PORT: the example with the port, paths and user replaced.
inetd_conf()
{
    substitute "$EXAMPLE" \
        "s#^smtp\t#127.0.0.1:$1\t#" \
        "s#\tsmtpspool\t/usr/local/sbin/smtpspool\t#\t$RUNAS\t$BIN\t#" \
        "s#/etc/smtpspool.conf#$CONF#"
}

step "the example line"
line=$(grep -v '^#' "$EXAMPLE" | grep .)
read -r -a f <<<"$line"
assert_eq 1 "$(grep -c . <<<"$line")" "service lines in examples/inetd.conf"
assert_match "${f[3]}" '^nowait\.[0-9]+$' "the wait field (nowait.N)"
N=${f[3]#nowait.}
echo "$line"

step "inetd on a test port"
PORT=$(free_port)
inetd_conf "$PORT" >"$TEST_TMP/inetd.conf"
diff "$EXAMPLE" "$TEST_TMP/inetd.conf" || true
start_bg "$TEST_TMP/inetd.log" "$INETD" -d -i "$TEST_TMP/inetd.conf"
INETD_PID=$BG_PID
wait_for_port "$PORT" "$INETD_PID" "$TEST_TMP/inetd.log"

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

step "no limit on concurrent sessions: 41 at once"
PORT=$PORT python3 - <<'EOF2'
import os
from itlib import *
port = int(os.environ["PORT"])
def main():
    conns = hold(port, ["127.0.0.1"] * 41)
    expect_eq(["greeted"] * 41, states(conns), "41 concurrent connections")
    for c in conns:
        c.close()
run(main)
EOF2
stop_bg "$INETD_PID"

# rate_check PORT BELOW1024: a fresh inetd: N-1 sessions, the Nth closed
# without a greeting, and then the next one refused (below 1024) or closed.
rate_check()
{
    PORT=$1 N=$N LOW=$2 python3 - <<'EOF2'
import os, time
from itlib import *
port, n, low = int(os.environ["PORT"]), int(os.environ["N"]), os.environ["LOW"] == "yes"
def main():
    first = wait_listening(port)
    seen = [first.state]
    first.close()
    while len(seen) < n + 5 and seen[-1] == "greeted":
        c = Conn(port)
        seen.append(c.state)
        c.close()
    greeted = seen.count("greeted")
    expect_eq(n - 1, greeted, f"sessions started before the first one refused (nowait.{n}); states {seen[-3:]}")
    expect_eq("closed", seen[-1], f"connection {n}")
    # A connection made before inetd handled the Nth would be in the
    # backlog of the socket it closes: give it a moment.
    time.sleep(0.5)
    after = [Conn(port).state for _ in range(3)]
    expect_eq(["refused"] * 3 if low else ["closed"] * 3, after, "the connections after it")
    print(f"nowait.{n}: {greeted} sessions, connection {n} closed, then {after}")
run(main)
EOF2
}

step "nowait.$N on port 1024 or above"
PORT=$(free_port)
inetd_conf "$PORT" >"$TEST_TMP/inetd.conf"
start_bg "$TEST_TMP/inetd2.log" "$INETD" -d -i "$TEST_TMP/inetd.conf"
rate_check "$PORT" no
stop_bg "$BG_PID"

step "nowait.$N on a port below 1024, as port 25"
LOW_PORT=$(python3 - <<'EOF2'
import random, socket
for _ in range(200):
    port = random.randint(600, 1023)
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", port))
    except OSError:
        continue
    finally:
        s.close()
    print(port)
    break
else:
    raise SystemExit("no free port below 1024")
EOF2
)
inetd_conf "$LOW_PORT" >"$TEST_TMP/inetd.conf"
start_bg "$TEST_TMP/inetd3.log" "$INETD" -d -i "$TEST_TMP/inetd.conf"
rate_check "$LOW_PORT" yes
stop_bg "$BG_PID"
echo "queue: $(count_entries "$SPOOL/queue") messages"
