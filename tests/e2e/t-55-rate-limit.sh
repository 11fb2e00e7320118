#!/bin/bash
# Connection rate limits across processes: 50 parallel connections through
# tcpserver (-c 60) against --max-connections-per-minute 30: exactly 30 hear
# 220 and 20 hear 421 4.7.0 and are closed, and the log says why. Then a fresh
# spool with --max-connections-per-client-per-minute 5: the sixth connection
# from 127.0.0.1 is refused while 127.0.0.2 is still served; and the state
# file keeps its size.
# shellcheck source=tests/e2e/lib.sh
source "$(dirname "$0")/lib.sh"
need_tool tcpserver tcprules python3

# The limit is per minute (a sliding window over two): start well inside a
# minute, so that the whole burst counts in one.
while ((10#$(date +%S) > 40)); do sleep 1; done

compile_rules "$REPO_ROOT/examples/tcpserver/tcp.smtp" "$TEST_TMP/tcp.smtp.cdb"

step "50 parallel connections, 30 a minute for the whole server"
SPOOL=$TEST_TMP/spool-server
start_tcpserver "$TEST_TMP/tcp.smtp.cdb" 60 --spool "$SPOOL" --hostname mx.test.example --log stderr \
    --max-connections-per-minute 30
# wait_for_port's probe was a connection too; it counts toward the limit.
sleep 0.3
probes=$(grep -c 'event=connect ' "$TEST_TMP/tcpserver.log" || true)
PORT=$PORT PROBES=$probes python3 - <<'EOF'
import os, socket, threading
from e2elib import *

port = int(os.environ["PORT"])
probes = int(os.environ["PROBES"])
N = 50
greetings, errors = [], []
start = threading.Barrier(N)

def client(i):
    try:
        start.wait(timeout=30)
        s = socket.create_connection(("127.0.0.1", port), timeout=30)
        f = s.makefile("rb")
        line = f.readline().decode()
        if line.startswith("220"):
            s.sendall(b"QUIT\r\n")
            reply = f.readline()
            expect(reply.startswith(b"221"), f"client {i}: QUIT", "221", reply)
        else:
            # Refused at the greeting: the server closes at once.
            expect_eq(b"", f.read(), f"client {i}: nothing after the 421")
        greetings.append(line)
        s.close()
    except Exception as e:  # noqa: BLE001 - reported below
        errors.append(f"client {i}: {type(e).__name__}: {e}")

def main():
    threads = [threading.Thread(target=client, args=(i,)) for i in range(N)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    expect_eq([], errors, "client errors")
    ok = [g for g in greetings if g.startswith("220 ")]
    refused = [g for g in greetings if g.startswith("421 4.7.0 mx.test.example too many connections")]
    expect_eq(30 - probes, len(ok), "connections greeted with 220")
    expect_eq(20 + probes, len(refused), "connections refused with 421 4.7.0")

run(main)
EOF
stop_bg "$SERVER_PID"
log=$(cat "$TEST_TMP/tcpserver.log")
assert_eq $((20 + probes)) "$(grep -c 'event=rate-limited client=127.0.0.1 limit=server-limit' <<<"$log")" \
    "event=rate-limited lines"
assert_eq 30 "$(grep -c 'event=connect ' <<<"$log")" "event=connect lines (refused ones start no session)"
size=$(stat -c %s "$SPOOL/state/connections")
assert_eq 600 "$(stat -c %a "$SPOOL/state/connections")" "state file mode"

step "5 a minute per client: 127.0.0.1 is cut off, 127.0.0.2 is not"
SPOOL=$TEST_TMP/spool-client
start_tcpserver "$TEST_TMP/tcp.smtp.cdb" 60 --spool "$SPOOL" --hostname mx.test.example --log stderr \
    --max-connections-per-client-per-minute 5
sleep 0.3
probes=$(grep -c 'event=connect ' "$TEST_TMP/tcpserver.log" || true)
PORT=$PORT PROBES=$probes python3 - <<'EOF'
import os, socket
from e2elib import *

port = int(os.environ["PORT"])
probes = int(os.environ["PROBES"])

def greeting(source):
    s = socket.create_connection(("127.0.0.1", port), timeout=30, source_address=(source, 0))
    line = s.makefile("rb").readline().decode()
    s.close()
    return line[:9]

def main():
    first = [greeting("127.0.0.1") for _ in range(7 - probes)]
    expect_eq(["220 mx.te"] * (5 - probes) + ["421 4.7.0"] * 2, first, "greetings to 127.0.0.1")
    expect_eq("220 mx.te", greeting("127.0.0.2"), "greeting to 127.0.0.2")

run(main)
EOF
stop_bg "$SERVER_PID"
assert_eq 2 "$(grep -c 'event=rate-limited client=127.0.0.1 limit=client-limit' "$TEST_TMP/tcpserver.log")" \
    "client-limit log lines"
assert_eq "$size" "$(stat -c %s "$SPOOL/state/connections")" "state file size (fixed)"
