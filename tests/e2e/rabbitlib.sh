# shellcheck shell=bash
# rabbitlib.sh: a RabbitMQ broker of the test's own (sourced after lib.sh), for
# the amqp transport's tests (t-78, tests/fleet). The broker is Debian's
# rabbitmq-server, run from its scripts as the user running the test, with
# every file in $TEST_TMP/rabbit: its own node name, Erlang cookie (HOME),
# port mapper (epmd on a free port, in the foreground, so the test's cleanup
# stops it), AMQP and distribution ports on 127.0.0.1. amqp_tool.py (pika)
# declares, lists and consumes.

RABBIT_BIN=/usr/lib/rabbitmq/bin

# need_rabbitmq: skip the test unless rabbitmq-server and pika are installed;
# sets PIKA_PYTHON (Debian's python3-pika serves /usr/bin/python3).
need_rabbitmq()
{
    [[ -x $RABBIT_BIN/rabbitmq-server && -x $RABBIT_BIN/rabbitmqctl ]] ||
        skip_test "rabbitmq-server is not installed (make deps installs it)"
    command -v epmd >/dev/null 2>&1 || skip_test "epmd (erlang-base) is not installed"
    local p
    for p in python3 /usr/bin/python3; do
        if command -v "$p" >/dev/null 2>&1 && "$p" -c 'import pika' 2>/dev/null; then
            PIKA_PYTHON=$(command -v "$p")
            export PIKA_PYTHON
            return 0
        fi
    done
    skip_test "pika is not installed (make deps installs python3-pika)"
}

# rabbitmqctl ARGS...: the CLI against the test's node.
rabbitmqctl()
{
    HOME=$RABBIT_DIR/home ERL_EPMD_PORT=$RABBIT_EPMD_PORT "$RABBIT_BIN/rabbitmqctl" -n "$RABBIT_NODE" "$@"
}

# start_rabbitmq: start the broker and wait (at most 60 s) until it runs; sets
# AMQP_PORT, RABBIT_PID and RABBIT_STARTUP_SECONDS (how long it took). Its
# user for the tests: mailer, password $RABBIT_PASSWORD, every permission on
# the virtual host /.
start_rabbitmq()
{
    need_rabbitmq
    RABBIT_DIR=$TEST_TMP/rabbit
    mkdir -p "$RABBIT_DIR/home" "$RABBIT_DIR/mnesia" "$RABBIT_DIR/log"
    # A cookie of its own: no other node, nor the packaged one, can talk to it.
    head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$RABBIT_DIR/home/.erlang.cookie"
    chmod 400 "$RABBIT_DIR/home/.erlang.cookie"
    AMQP_PORT=$(free_port)
    RABBIT_EPMD_PORT=$(free_port)
    local dist_port
    dist_port=$(free_port)
    RABBIT_NODE=smtpspool-test-$$@localhost
    RABBIT_PASSWORD=pw-$RANDOM$RANDOM
    # The user comes with the definitions the broker loads at boot: each
    # rabbitmqctl call would start an Erlang VM of its own (about a second).
    python3 - "$RABBIT_PASSWORD" >"$RABBIT_DIR/definitions.json" <<'EOP'
import base64, hashlib, json, os, sys
salt = os.urandom(4)  # rabbit_password_hashing_sha256: base64(salt + SHA-256(salt + password))
digest = base64.b64encode(salt + hashlib.sha256(salt + sys.argv[1].encode()).digest()).decode()
print(json.dumps({"users": [{"name": "mailer", "password_hash": digest, "tags": [],
                             "hashing_algorithm": "rabbit_password_hashing_sha256"}],
                  "vhosts": [{"name": "/"}],
                  "permissions": [{"user": "mailer", "vhost": "/", "configure": ".*", "write": ".*", "read": ".*"}]}))
EOP
    cat >"$RABBIT_DIR/rabbitmq.conf" <<EOC
listeners.tcp.1 = 127.0.0.1:$AMQP_PORT
log.console = false
log.file.level = info
load_definitions = $RABBIT_DIR/definitions.json
EOC
    echo '[].' >"$RABBIT_DIR/enabled_plugins"
    start_bg "$RABBIT_DIR/epmd.log" env HOME="$RABBIT_DIR/home" epmd -port "$RABBIT_EPMD_PORT" -address 127.0.0.1
    wait_for_port "$RABBIT_EPMD_PORT" "$BG_PID" "$RABBIT_DIR/epmd.log"
    local t0=$EPOCHREALTIME
    start_bg "$RABBIT_DIR/server.log" env HOME="$RABBIT_DIR/home" ERL_EPMD_PORT="$RABBIT_EPMD_PORT" \
        RABBITMQ_NODENAME="$RABBIT_NODE" RABBITMQ_NODE_IP_ADDRESS=127.0.0.1 RABBITMQ_NODE_PORT="$AMQP_PORT" \
        RABBITMQ_DIST_PORT="$dist_port" RABBITMQ_MNESIA_BASE="$RABBIT_DIR/mnesia" \
        RABBITMQ_LOG_BASE="$RABBIT_DIR/log" RABBITMQ_CONFIG_FILE="$RABBIT_DIR/rabbitmq" \
        RABBITMQ_ENABLED_PLUGINS_FILE="$RABBIT_DIR/enabled_plugins" RABBITMQ_PID_FILE="$RABBIT_DIR/pid" \
        "$RABBIT_BIN/rabbitmq-server"
    RABBIT_PID=$BG_PID
    if ! timeout 90 bash -c "$(declare -f rabbitmqctl); RABBIT_DIR='$RABBIT_DIR' RABBIT_EPMD_PORT=$RABBIT_EPMD_PORT \
            RABBIT_NODE='$RABBIT_NODE' RABBIT_BIN='$RABBIT_BIN' rabbitmqctl wait --pid $RABBIT_PID --timeout 60" \
            >"$RABBIT_DIR/wait.log" 2>&1; then
        cat "$RABBIT_DIR/wait.log" "$RABBIT_DIR/server.log" >&2
        fail "rabbitmq-server did not start within 60 s"
    fi
    # shellcheck disable=SC2034 # the tests print it
    RABBIT_STARTUP_SECONDS=$(python3 -c "import sys; print(round(float(sys.argv[2]) - float(sys.argv[1]), 1))" \
        "$t0" "$EPOCHREALTIME")
    export AMQP_PORT RABBIT_PASSWORD
}

# stop_rabbitmq: stop the broker now (SIGTERM: the Erlang VM shuts down
# in order; then its processes, as at the end of the test).
stop_rabbitmq()
{
    stop_bg "$RABBIT_PID"
}

# amqp_tool ARGS...: tests/e2e/amqp_tool.py against the broker as mailer.
amqp_tool()
{
    "$PIKA_PYTHON" "$E2E_DIR/amqp_tool.py" "$AMQP_PORT" mailer "$RABBIT_PASSWORD" "$@"
}
