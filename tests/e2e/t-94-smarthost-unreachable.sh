#!/bin/bash
# Smarthosts that cannot take the message: every case is temporary, the
# message stays queued with its recipient pending, attempts 1 and a
# last_error that says what happened, and message.eml untouched; runq exits 0.
#  1. a closed port: "connection ... refused", at once;
#  2. a server that accepts the connection and never says a word: with
#     --smtp-timeout 2s, runq gives up after about 2 s ("timeout waiting for
#     greeting ... after 2 s"), not after RFC 5321's 5 minutes;
#  3. a server that closes the connection at once: "closed while waiting";
#  4. a server that greets and then never answers EHLO: timeout after 2 s;
#  5. aiosmtpd taking the whole message and never answering the end of data:
#     timeout after 2 s, still temporary (the message may be sent twice, it
#     is never lost).
# shellcheck source=tests/e2e/lib.sh
source "$(dirname "$0")/lib.sh"
# shellcheck source=tests/e2e/deliverylib.sh
source "$E2E_DIR/deliverylib.sh"
need_aiosmtpd

# mute_server MODE PORT: accept connections on 127.0.0.1:PORT and, by MODE,
# keep them open without a word (silent), close them (close), or send a
# greeting and then nothing more (greet).
cat >"$TEST_TMP/mute.py" <<'EOF'
import socket, sys, time
mode, port = sys.argv[1], int(sys.argv[2])
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", port))
s.listen(16)
held = []
while True:
    c, _ = s.accept()
    if mode == "close":
        c.close()
        continue
    if mode == "greet":
        c.sendall(b"220 mute.test ESMTP\r\n")
    held.append(c)  # never read, never answered, never closed
EOF

# one_case NAME PORT MIN_MS MAX_MS TEXT: queue a message, runq to 127.0.0.1:PORT
# with --smtp-timeout 2s, check the time it took and the deferral.
one_case()
{
    local name=$1 port=$2 min_ms=$3 max_ms=$4 text=$5 spool=$TEST_TMP/spool-$1 id t0 ms status=0
    id=$(printf 'EHLO c\nMAIL FROM:<a@client.test>\nRCPT TO:<b@far.test>\nDATA\nSubject: %s\n\nbody\n.\nQUIT\n' "$name" |
        queue_session "$spool")
    cp "$spool/queue/$id/message.eml" "$TEST_TMP/$name.eml"
    t0=$EPOCHREALTIME
    runq_logged "$TEST_TMP/runq-$name.log" --spool "$spool" --hostname relay.test \
        --smarthost "127.0.0.1:$port" --smtp-timeout 2s --retry-schedule 5m || status=$?
    ms=$(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%d", (b - a) * 1000 }')
    echo "$name: runq took $ms ms: $(grep 'event=delivery' "$TEST_TMP/runq-$name.log")"
    assert_eq 0 "$status" "$name: exit status of runq"
    ((ms >= min_ms && ms <= max_ms)) || fail "$name: runq took $ms ms, expected $min_ms to $max_ms ms"
    SPOOL=$spool ID=$id TEXT=$text NAME=$name python3 - <<'EOF'
import os
from e2elib import *
from deliverylib import *

spool, qid, text, name = os.environ["SPOOL"], os.environ["ID"], os.environ["TEXT"], os.environ["NAME"]

def main():
    expect_eq([qid], queue_ids(spool), f"{name}: queue/ after runq")
    env = envelope(spool, qid)
    status, attempts, error = recipients(env)["b@far.test"]
    expect_eq(("pending", 1), (status, attempts), f"{name}: recipient status and attempts")
    expect(error is not None and text in error, f"{name}: last_error", text, error)
    expect_eq(1, env["attempts"], f"{name}: attempts of the message")
    expect(env["next_attempt"] is not None, f"{name}: next_attempt", "set", env["next_attempt"])
    with open(os.path.join(os.environ["TEST_TMP"], name + ".eml"), "rb") as f:
        expect_eq(f.read(), message(spool, qid), f"{name}: message.eml after runq")
    expect_eq([], tmp_entries(spool), f"{name}: tmp/ (no bounce being written)")

run(main)
EOF
    assert_contains "$(cat "$TEST_TMP/runq-$name.log")" "deferred=1 failed=0 bounces=0 removed=0" "$name: runq log"
}

step "1. a closed port"
closed=$(free_port)
one_case closed "$closed" 0 1500 "connection to 127.0.0.1:$closed refused"

step "2. a server that never says a word"
port=$(free_port)
start_bg "$TEST_TMP/silent.log" python3 "$TEST_TMP/mute.py" silent "$port"
wait_for_port "$port" "$BG_PID" "$TEST_TMP/silent.log"
one_case silent "$port" 1900 4500 "timeout waiting for greeting from 127.0.0.1:$port after 2 s"

step "3. a server that closes the connection at once"
port=$(free_port)
start_bg "$TEST_TMP/close.log" python3 "$TEST_TMP/mute.py" close "$port"
wait_for_port "$port" "$BG_PID" "$TEST_TMP/close.log"
one_case close "$port" 0 1500 "connection to 127.0.0.1:$port closed while waiting for greeting"

step "4. a server that greets, then never answers EHLO"
port=$(free_port)
start_bg "$TEST_TMP/greet.log" python3 "$TEST_TMP/mute.py" greet "$port"
wait_for_port "$port" "$BG_PID" "$TEST_TMP/greet.log"
one_case greet "$port" 1900 4500 "timeout waiting for reply to EHLO from 127.0.0.1:$port after 2 s"

step "5. aiosmtpd takes the message and never answers the end of data"
set_rules "$TEST_TMP/rules.json" '{"data_delay": 60}'
start_smarthost "$TEST_TMP/sink" "$TEST_TMP/rules.json"
one_case stall-data "$SMARTHOST_PORT" 1900 4500 \
    "timeout waiting for reply to the end of data from 127.0.0.1:$SMARTHOST_PORT after 2 s"
