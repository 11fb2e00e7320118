#!/bin/bash
# The units of examples/systemd, with only the port (ListenStream=), the
# paths and the user replaced:
#  - systemd-socket-activate stands in for smtpspool.socket: it listens on
#    the unit's ListenStream=, with --accept for Accept=yes and --inetd for
#    StandardInput=socket/StandardOutput=socket, runs the service's
#    ExecStart= as the service's User=, one process per connection;
#  - mail from 127.0.0.1 (a relay client of the test's smtpspool.conf) is
#    relayed and spooled with client.address 127.0.0.1; a stranger
#    (127.0.0.2) gets 550 5.7.1;
#  - the stand-in has no MaxConnections=: 41 concurrent sessions are all
#    greeted (what systemd does over MaxConnections= is not tested here:
#    no systemd runs in this container; see README);
#  - systemd-analyze verify accepts all four units, with no warning, and the
#    man pages they name (Documentation=) are found.
# shellcheck source=tests/integration/lib.sh
source "$(dirname "$0")/lib.sh"
need_package systemd
need_tool systemd-socket-activate systemd-analyze python3

SPOOL=$TEST_TMP/spool
CONF=$TEST_TMP/smtpspool.conf
make_spool "$SPOOL"
make_config "$CONF" "$SPOOL" 127.0.0.1/32
EX=$REPO_ROOT/examples/systemd
UNITS=$TEST_TMP/units
mkdir -p "$UNITS"

step "the units, substituted"
PORT=$(free_port)
substitute "$EX/smtpspool.socket" "s#^ListenStream=25\$#ListenStream=127.0.0.1:$PORT#" >"$UNITS/smtpspool.socket"
for u in smtpspool@.service smtpspool-runq.service; do
    substitute "$EX/$u" "s#/usr/local/sbin/smtpspool#$BIN#" "s#/etc/smtpspool.conf#$CONF#" \
        "s#^User=smtpspool\$#User=$RUNAS#" "s#^Group=smtpspool\$#Group=$(id -gn "$RUNAS")#" \
        "s#/var/spool/smtpspool#$SPOOL#" >"$UNITS/$u"
done
cp "$EX/smtpspool-runq.timer" "$UNITS/"
for u in smtpspool.socket smtpspool@.service; do
    diff "$EX/$u" "$UNITS/$u" || true
done

# key UNIT KEY: the value of KEY= in UNIT (the last one).
key()
{
    sed -n "s/^$2=//p" "$UNITS/$1" | tail -1
}
assert_eq yes "$(key smtpspool.socket Accept)" "Accept="
assert_eq socket "$(key smtpspool@.service StandardInput)" "StandardInput="
assert_eq socket "$(key smtpspool@.service StandardOutput)" "StandardOutput="
listen=$(key smtpspool.socket ListenStream)
read -r -a exec_start <<<"$(key smtpspool@.service ExecStart)"
user=$(key smtpspool@.service User)

step "systemd-socket-activate --accept --inetd -l $listen, as $user"
run_as=()
if is_root; then
    run_as=(setpriv --reuid="$user" --regid="$(id -g "$user")" --init-groups --)
fi
start_bg "$TEST_TMP/activate.log" "${run_as[@]}" systemd-socket-activate --accept --inetd -l "$listen" "${exec_start[@]}"
ACT_PID=$BG_PID
wait_for_port "$PORT" "$ACT_PID" "$TEST_TMP/activate.log"

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

step "concurrent sessions: the stand-in has no limit"
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
stop_bg "$ACT_PID"

step "systemd-analyze verify"
# The man pages the units name, where man finds them.
mkdir -p "$TEST_TMP/man/man8" "$TEST_TMP/man/man5"
cp "$REPO_ROOT"/man/*.8 "$TEST_TMP/man/man8/"
cp "$REPO_ROOT"/man/*.5 "$TEST_TMP/man/man5/"
# The user as in the examples: verify warns about nobody ("not safe").
VERIFY=$TEST_TMP/verify
mkdir -p "$VERIFY"
cp "$UNITS/smtpspool.socket" "$UNITS/smtpspool-runq.timer" "$EX/smtpspool-stats.timer" "$VERIFY/"
for u in smtpspool@.service smtpspool-runq.service; do
    substitute "$EX/$u" "s#/usr/local/sbin/smtpspool#$BIN#" "s#/etc/smtpspool.conf#$CONF#" \
        "s#/var/spool/smtpspool#$SPOOL#" >"$VERIFY/$u"
done
substitute "$EX/smtpspool-stats.service" "s#/usr/local/sbin/smtpspool#$BIN#" "s#/etc/smtpspool.conf#$CONF#" \
    >"$VERIFY/smtpspool-stats.service"
set +e
out=$(cd "$VERIFY" && MANPATH=$TEST_TMP/man systemd-analyze verify \
    ./smtpspool.socket ./smtpspool@.service ./smtpspool-runq.service ./smtpspool-runq.timer \
    ./smtpspool-stats.service ./smtpspool-stats.timer 2>&1)
status=$?
set -e
echo "$out"
assert_eq 0 "$status" "systemd-analyze verify exit status"
assert_eq "" "$out" "systemd-analyze verify output"
