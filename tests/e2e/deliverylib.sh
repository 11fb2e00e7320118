# deliverylib.sh: helpers of the delivery tests (t-90 and up), sourced after
# lib.sh. Messages are put in a spool by piping a session into smtpspool (a
# local client may relay); runq then delivers them to an aiosmtpd smarthost
# (smarthost.py), a maildir or a pipe command.

# need_aiosmtpd: sets AIOSMTPD_PYTHON to a python3 that can import aiosmtpd,
# or skips the test. Debian's python3-aiosmtpd serves /usr/bin/python3, which
# need not be the first python3 on PATH (pyenv and the like).
need_aiosmtpd()
{
    local p
    for p in python3 /usr/bin/python3; do
        if command -v "$p" >/dev/null 2>&1 && "$p" -c 'import aiosmtpd' 2>/dev/null; then
            AIOSMTPD_PYTHON=$(command -v "$p")
            export AIOSMTPD_PYTHON
            return 0
        fi
    done
    skip_test "aiosmtpd is not installed (make deps installs python3-aiosmtpd)"
}

# start_smarthost DIR [RULES]: tests/e2e/smarthost.py on 127.0.0.1 and a free
# port, recording into DIR, replying as the JSON file RULES says (see
# smarthost.py); sets SMARTHOST_PORT and SMARTHOST_PID, logs to DIR.log.
start_smarthost()
{
    local dir=$1 rules=${2:-}
    need_aiosmtpd
    mkdir -p "$dir"
    SMARTHOST_PORT=$(free_port)
    start_bg "$dir.log" "$AIOSMTPD_PYTHON" "$E2E_DIR/smarthost.py" "$SMARTHOST_PORT" "$dir" ${rules:+"$rules"}
    SMARTHOST_PID=$BG_PID
    wait_for_port "$SMARTHOST_PORT" "$SMARTHOST_PID" "$dir.log"
}

# set_rules FILE JSON: replace the smarthost's rules at once (rename).
set_rules()
{
    printf '%s\n' "$2" >"$1.new"
    mv -f "$1.new" "$1"
}

# queue_session SPOOL: pipes the SMTP session on stdin into smtpspool as a
# local client (hostname a.test) and prints the queued IDs, one per line.
queue_session()
{
    local spool=$1 out
    out=$("$SMTPSPOOL_BIN" --spool "$spool" --hostname a.test --log none) ||
        fail "smtpspool (serve) exited $? while queueing; it said: $out"
    grep -o 'queued as [A-Za-z0-9_-]*' <<<"$out" | cut -d' ' -f3
}

# runq_logged LOG ARGS...: `smtpspool runq ARGS` with its log lines
# (--log stderr) appended to LOG; returns runq's exit status.
runq_logged()
{
    local log=$1
    shift
    "$SMTPSPOOL_BIN" runq --log stderr "$@" 2>>"$log"
}

# ---- the mx transport (t-85) ------------------------------------------------

# need_dnslib: sets DNSLIB_PYTHON to a python3 that can import dnslib (Debian's
# python3-dnslib), or skips the test.
need_dnslib()
{
    [[ -n "${DNSLIB_PYTHON:-}" ]] && return 0
    local p
    for p in python3 /usr/bin/python3; do
        if command -v "$p" >/dev/null 2>&1 && "$p" -c 'import dnslib' 2>/dev/null; then
            DNSLIB_PYTHON=$(command -v "$p")
            export DNSLIB_PYTHON
            return 0
        fi
    done
    skip_test "dnslib is not installed (make deps installs python3-dnslib)"
}

# wait_for_address ADDRESS PORT PID LOG: wait until ADDRESS:PORT accepts a
# connection (at most 10 s); fail at once if PID died, showing its LOG.
wait_for_address()
{
    local address=$1 port=$2 pid=$3 log=$4
    local deadline=$((SECONDS + 10))
    while ((SECONDS <= deadline)); do
        if ! kill -0 "$pid" 2>/dev/null; then
            cat "$log" >&2 || true
            fail "the server (pid $pid) exited before listening on $address:$port"
        fi
        if python3 -c '
import socket, sys
s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=0.5)
s.close()
' "$address" "$port" 2>/dev/null; then
            return 0
        fi
        sleep 0.1
    done
    cat "$log" >&2 || true
    fail "nothing listens on $address:$port after 10s"
}

# start_dns_server ZONE: tests/e2e/dns_server.py on 127.0.0.1 and a free port
# (UDP and TCP), answering from the JSON file ZONE; sets DNS_PORT. Its
# queries are logged to ZONE.log.
start_dns_server()
{
    local zone=$1
    need_dnslib
    DNS_PORT=$(free_port)
    start_bg "$zone.server.log" "$DNSLIB_PYTHON" "$E2E_DIR/dns_server.py" "$DNS_PORT" "$zone"
    wait_for_address 127.0.0.1 "$DNS_PORT" "$BG_PID" "$zone.server.log"
}

# start_sink ADDRESS PORT DIR [RULES]: smarthost.py on ADDRESS:PORT (a
# loopback address), recording into DIR.
start_sink()
{
    local address=$1 port=$2 dir=$3 rules=${4:-}
    need_aiosmtpd
    mkdir -p "$dir"
    SMARTHOST_ADDRESS=$address start_bg "$dir.log" "$AIOSMTPD_PYTHON" "$E2E_DIR/smarthost.py" "$port" "$dir" \
        ${rules:+"$rules"}
    wait_for_address "$address" "$port" "$BG_PID" "$dir.log"
}
