#!/bin/bash
# fleet.sh BINARY: the fleet on one machine (make fleet; tests/README.md).
# HAProxy (Debian's) on 127.0.0.1 sends the PROXY protocol (v2 to one
# receiver, v1 to the other) to two receivers, each tcpserver on its own
# loopback address (127.0.0.2, 127.0.0.3) running smtpspool with its own
# spool and its own `runq --interval 1s`, both delivering by the amqp
# transport into one RabbitMQ quorum queue. fleet.py drives it: clients on
# their own source addresses (127.0.0.10-13 may relay, 127.0.0.20 floods,
# 127.0.0.30 is a stranger), the second receiver killed with SIGKILL in the
# middle and brought back, and the count at the end.
# shellcheck source=tests/e2e/lib.sh
source "$(dirname "$0")/../e2e/lib.sh"
# shellcheck source=tests/e2e/rabbitlib.sh
source "$E2E_DIR/rabbitlib.sh"
need_rabbitmq
need_tool tcpserver haproxy
start=$EPOCHREALTIME

step "start rabbitmq-server"
start_rabbitmq
echo "rabbitmq-server started in ${RABBIT_STARTUP_SECONDS}s"
amqp_tool declare mail inbox smtp

R1_PORT=$(free_port)
R2_PORT=$(free_port)
HAPROXY_PORT=$(free_port)
HAPROXY_STATS=$TEST_TMP/haproxy.sock
cat >"$TEST_TMP/haproxy.cfg" <<EOF
global
    maxconn 500
    stats socket $HAPROXY_STATS mode 600 level admin

defaults
    mode tcp
    timeout connect 2s
    timeout client 30s
    timeout server 30s
    # A connection the receiver refuses (down, not yet marked down) goes to
    # the other one.
    retries 3
    option redispatch

frontend smtp
    bind 127.0.0.1:$HAPROXY_PORT
    default_backend receivers

backend receivers
    balance roundrobin
    server r1 127.0.0.2:$R1_PORT send-proxy-v2 check inter 300ms fall 1 rise 2
    server r2 127.0.0.3:$R2_PORT send-proxy check inter 300ms fall 1 rise 2
EOF
haproxy -c -q -f "$TEST_TMP/haproxy.cfg" || fail "haproxy refuses its configuration"

step "start haproxy"
start_bg "$TEST_TMP/haproxy.log" haproxy -db -f "$TEST_TMP/haproxy.cfg"
wait_for_port "$HAPROXY_PORT" "$BG_PID" "$TEST_TMP/haproxy.log"

CREDS=$TEST_TMP/amqp-credentials
printf '127.0.0.1:%s mailer:%s\n' "$AMQP_PORT" "$RABBIT_PASSWORD" >"$CREDS"
chmod 600 "$CREDS"

step "run the fleet"
# In the background, so that the cleanup of an interrupted test stops it and
# the receivers it started (its children).
start_bg "$TEST_TMP/fleet.out" env TEST_TMP="$TEST_TMP" AMQP_PORT="$AMQP_PORT" CREDS="$CREDS" \
    HAPROXY_PORT="$HAPROXY_PORT" HAPROXY_STATS="$HAPROXY_STATS" R1_PORT="$R1_PORT" R2_PORT="$R2_PORT" \
    PIKA_PYTHON="$PIKA_PYTHON" RABBIT_PASSWORD="$RABBIT_PASSWORD" FLEET_MESSAGES="${FLEET_MESSAGES:-200}" \
    python3 "$REPO_ROOT/tests/fleet/fleet.py"
status=0
wait "$BG_PID" || status=$?
cat "$TEST_TMP/fleet.out"
if ((status != 0)); then
    echo "--- haproxy.log"
    tail -30 "$TEST_TMP/haproxy.log"
    fail "fleet.py exited $status"
fi
stop_rabbitmq
echo "fleet: passed in $(python3 -c "import sys; print(round(float(sys.argv[2]) - float(sys.argv[1]), 1))" \
    "$start" "$EPOCHREALTIME") s"
