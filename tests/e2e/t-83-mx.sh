#!/bin/bash
# The mx transport (--route '*=mx') against a real DNS server (dnslib, on
# 127.0.0.1) and aiosmtpd sinks on other loopback addresses, all on one port
# (--mx-port). One message to a recipient in each case, one runq:
#   two.test    MX 10 -> 127.0.0.2 (refuses connections), MX 20 -> sink B,
#               MX 30 -> sink C: bob delivered at B; nobody refused 550 by B
#               and never offered to C (a 5xx to RCPT is final); later
#               refused 451 by B: deferred, not offered to C either
#   busy.test   MX 10 -> a server greeting 421, MX 20 -> C: delivered at C
#   aonly.test  no MX, A -> B: delivered at B (implicit MX)
#   dual.test   MX 10 host with AAAA ::ffff:127.0.0.5 (C) and A (B): at C
#   dual2.test  MX 10 host with AAAA (refuses) and A (B), MX 20 -> C: at B,
#               every address of a host before the next host
#   [127.0.0.3] an address literal: at B, nothing looked up
#   null.test   null MX: bounced, 556 5.1.10
#   nx.test     NXDOMAIN: bounced, 550 5.1.2
#   broken.test SERVFAIL: deferred, no hop
#   down.test   its only MX refuses: deferred, the hop in the envelope and mailq
#   self.test   MX 10 is our --hostname: bounced as a loop, 554 5.4.6
#   self6.test  MX 10 has AAAA ::1 (an address of this machine): a loop too
# Then a name server on ::1 (--dns-server [::1]:PORT) for another message.
# The bounce names the five failures with their codes.
# shellcheck source=tests/e2e/lib.sh
source "$(dirname "$0")/lib.sh"
# shellcheck source=tests/e2e/deliverylib.sh
source "$E2E_DIR/deliverylib.sh"
need_aiosmtpd
need_dnslib

SPOOL=$TEST_TMP/spool
ZONE=$TEST_TMP/zone.json
PORT=$(free_port)
cat >"$ZONE" <<'EOF'
{"two.test": {"MX": [[10, "mx1.two.test"], [20, "mx2.two.test"], [30, "mx3.two.test"]]},
 "mx1.two.test": {"A": ["127.0.0.2"]},
 "mx2.two.test": {"A": ["127.0.0.3"]},
 "mx3.two.test": {"A": ["127.0.0.5"]},
 "busy.test": {"MX": [[10, "greets421.busy.test"], [20, "mx3.two.test"]]},
 "greets421.busy.test": {"A": ["127.0.0.4"]},
 "aonly.test": {"A": ["127.0.0.3"]},
 "dual.test": {"MX": [[10, "mx.dual.test"]]},
 "mx.dual.test": {"AAAA": ["::ffff:7f00:5"], "A": ["127.0.0.3"]},
 "dual2.test": {"MX": [[10, "mx.dual2.test"], [20, "mx3.two.test"]]},
 "mx.dual2.test": {"AAAA": ["::ffff:7f00:7"], "A": ["127.0.0.3"]},
 "null.test": {"MX": [[0, "."]]},
 "broken.test": {"SERVFAIL": true},
 "down.test": {"MX": [[10, "mx.down.test"]]},
 "mx.down.test": {"A": ["127.0.0.7"]},
 "self.test": {"MX": [[10, "relay.test"], [20, "mx2.two.test"]]},
 "relay.test": {"A": ["127.0.0.9"]},
 "self6.test": {"MX": [[10, "me.self6.test"], [20, "mx2.two.test"]]},
 "me.self6.test": {"AAAA": ["::1"]}}
EOF
start_dns_server "$ZONE"
RULES=$TEST_TMP/rules.json
set_rules "$RULES" '{"rcpt": {"nobody@two.test": "550 5.1.1 <nobody@two.test>: no such user",
  "later@two.test": "451 4.2.1 <later@two.test>: try later"}}'
start_sink 127.0.0.3 "$PORT" "$TEST_TMP/sinkB" "$RULES"
start_sink 127.0.0.5 "$PORT" "$TEST_TMP/sinkC"
# A server that greets with 421 and hangs up.
start_bg "$TEST_TMP/busy.log" python3 -c '
import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.4", int(sys.argv[1])))
s.listen(8)
while True:
    c, _ = s.accept()
    c.sendall(b"421 4.3.2 too busy\r\n")
    c.close()
' "$PORT"
wait_for_address 127.0.0.4 "$PORT" "$BG_PID" "$TEST_TMP/busy.log"
RUNQ=(--spool "$SPOOL" --hostname relay.test --route '*=mx' --dns-server "127.0.0.1:$DNS_PORT" --mx-port "$PORT"
    --smtp-timeout 10s)

step "queue one message to a recipient of each case"
RCPTS=(bob@two.test nobody@two.test later@two.test erin@busy.test carol@aonly.test fay@dual.test dave@dual2.test
    "lit@[127.0.0.3]" n@null.test x@nx.test eve@broken.test gus@down.test loop@self.test loop6@self6.test)
SPOOL=$SPOOL RCPTS="${RCPTS[*]}" python3 - <<'EOF' >"$TEST_TMP/id"
import os, shutil
from e2elib import *
from deliverylib import *

def main():
    spool = os.environ["SPOOL"]
    [qid] = queue(spool, [("alice@client.test", os.environ["RCPTS"].split(),
                           b"From: alice@client.test\r\nSubject: mx\r\n\r\nbody\r\n")])
    shutil.copy(os.path.join(spool, "queue", qid, "envelope.json"), os.path.join(os.environ["TEST_TMP"], "orig.json"))
    print(qid)

run(main)
EOF
ID=$(cat "$TEST_TMP/id")

step "runq: deliveries, bounces and deferrals as the DNS says"
runq_logged "$TEST_TMP/runq.log" "${RUNQ[@]}" || fail "runq exited $?"
cat "$TEST_TMP/runq.log"
log=$(cat "$TEST_TMP/runq.log")
assert_contains "$log" "delivered=6 deferred=3 failed=5 bounces=1 removed=0" "runq log"
assert_contains "$log" "to=bob@two.test via=mx result=delivered detail=\"250 2.0.0 OK\" hop=mx2.two.test[127.0.0.3]:$PORT" "runq log"
assert_contains "$log" "to=erin@busy.test via=mx result=delivered detail=\"250 2.0.0 OK\" hop=mx3.two.test[127.0.0.5]:$PORT" "runq log"
assert_contains "$log" "to=fay@dual.test via=mx result=delivered detail=\"250 2.0.0 OK\" hop=mx.dual.test[::ffff:127.0.0.5]:$PORT" "runq log"
assert_contains "$log" "to=dave@dual2.test via=mx result=delivered detail=\"250 2.0.0 OK\" hop=mx.dual2.test[127.0.0.3]:$PORT" "runq log"

SPOOL=$SPOOL ID=$ID PORT=$PORT SINKB=$TEST_TMP/sinkB SINKC=$TEST_TMP/sinkC ZONE=$ZONE python3 - <<'EOF'
import json, os
from e2elib import *
from deliverylib import *

spool, qid, port = os.environ["SPOOL"], os.environ["ID"], os.environ["PORT"]

def main():
    b = sorted(tuple(t["rcpt_tos"]) for t in transactions(os.environ["SINKB"]))
    expect_eq(sorted([("bob@two.test",), ("carol@aonly.test",), ("dave@dual2.test",), ("lit@[127.0.0.3]",)]), b,
              "transactions at sink B (127.0.0.3), one per domain")
    c = sorted(tuple(t["rcpt_tos"]) for t in transactions(os.environ["SINKC"]))
    expect_eq([("erin@busy.test",), ("fay@dual.test",)], c, "transactions at sink C (127.0.0.5)")
    offered_c = [r["rcpt"] for r in jsonl(os.path.join(os.environ["SINKC"], "rcpts.jsonl"))]
    expect("nobody@two.test" not in offered_c and "later@two.test" not in offered_c, "RCPTs at sink C",
           "neither nobody@two.test nor later@two.test (sink B answered for them)", offered_c)
    queries = open(os.environ["ZONE"] + ".log").read().split("\n")
    expect(not any(q.startswith("[") or "127.0.0.3" in q for q in queries), "DNS queries",
           "none for the address literal", queries)
    expect(queries.index("mx.dual.test AAAA") < queries.index("mx.dual.test A"), "DNS queries",
           "AAAA before A", queries)

    env = envelope(spool, qid)
    by = {r["address"]: r for r in env["recipients"]}
    for a in ("bob@two.test", "erin@busy.test", "carol@aonly.test", "fay@dual.test", "dave@dual2.test",
              "lit@[127.0.0.3]"):
        expect_eq("delivered", by[a]["status"], f"{a}: status")
    expect_eq(("failed", "550 5.1.1 <nobody@two.test>: no such user", f"mx2.two.test[127.0.0.3]:{port}"),
              (by["nobody@two.test"]["status"], by["nobody@two.test"]["last_error"],
               by["nobody@two.test"].get("last_hop")), "nobody@two.test")
    expect_eq(("pending", "451 4.2.1 <later@two.test>: try later", f"mx2.two.test[127.0.0.3]:{port}"),
              (by["later@two.test"]["status"], by["later@two.test"]["last_error"],
               by["later@two.test"].get("last_hop")), "later@two.test")
    failures = {
        "n@null.test": "556 5.1.10 null.test accepts no mail (null MX, RFC 7505)",
        "x@nx.test": "550 5.1.2 domain nx.test does not exist (DNS: NXDOMAIN)",
        "loop@self.test": "554 5.4.6 mail for self.test loops back to this host: relay.test is its best mail exchanger",
        "loop6@self6.test": "554 5.4.6 mail for self6.test loops back to this host: me.self6.test is its best mail exchanger",
    }
    for a, detail in failures.items():
        expect_eq(("failed", detail), (by[a]["status"], by[a]["last_error"]), a)
        expect("last_hop" not in by[a], f"{a}: last_hop", "none (no server tried)", by[a])
    eve = by["eve@broken.test"]
    expect_eq("pending", eve["status"], "eve@broken.test: status")
    expect(eve["last_error"].startswith("451 4.4.3 cannot look up the MX records of broken.test: "),
           "eve@broken.test: last_error", "451 4.4.3 ...", eve["last_error"])
    expect("last_hop" not in eve, "eve@broken.test: last_hop", "none", eve)
    gus = by["gus@down.test"]
    expect_eq(("pending", f"connection to 127.0.0.7:{port} refused", f"mx.down.test[127.0.0.7]:{port}"),
              (gus["status"], gus["last_error"], gus.get("last_hop")), "gus@down.test")

    with open(os.path.join(os.environ["TEST_TMP"], "orig.json")) as f:
        orig = json.load(f)
    [bid] = [q for q in queue_ids(spool) if q != qid]
    check_bounce(spool, bid, orig,
                 {"nobody@two.test": (r"5\.1\.1", "550 5.1.1 <nobody@two.test>: no such user"),
                  "n@null.test": (r"5\.1\.10", failures["n@null.test"]),
                  "x@nx.test": (r"5\.1\.2", failures["x@nx.test"]),
                  "loop@self.test": (r"5\.4\.6", failures["loop@self.test"]),
                  "loop6@self6.test": (r"5\.4\.6", failures["loop6@self6.test"])},
                 head_of(message(spool, qid)))

run(main)
EOF

step "mailq names the next hop tried last and why it failed"
out=$("$SMTPSPOOL_BIN" mailq --spool "$SPOOL")
echo "$out"
assert_contains "$out" "<gus@down.test> pending, 1 attempt: connection to 127.0.0.7:$PORT refused (last tried mx.down.test[127.0.0.7]:$PORT)" "mailq"
assert_match "$out" "<eve@broken.test> pending, 1 attempt: 451 4.4.3 cannot look up the MX records of broken.test" "mailq"

step "--dns-server on IPv6: [::1]:PORT"
if ! python3 -c 'import socket; socket.socket(socket.AF_INET6).bind(("::1", 0))' 2>/dev/null; then
    skip_part dns-server-ipv6 "no ::1 on this machine"
else
    DNS6_PORT=$(free_port)
    DNS_SERVER_ADDRESS=::1 start_bg "$TEST_TMP/dns6.log" "$DNSLIB_PYTHON" "$E2E_DIR/dns_server.py" "$DNS6_PORT" "$ZONE"
    wait_for_address ::1 "$DNS6_PORT" "$BG_PID" "$TEST_TMP/dns6.log"
    ID2=$(printf 'EHLO c\r\nMAIL FROM:<alice@client.test>\r\nRCPT TO:<v6@aonly.test>\r\nDATA\r\nSubject: v6\r\n\r\nx\r\n.\r\nQUIT\r\n' |
        queue_session "$SPOOL")
    runq_logged "$TEST_TMP/runq6.log" --spool "$SPOOL" --hostname relay.test --route '*=mx' \
        --dns-server "[::1]:$DNS6_PORT" --mx-port "$PORT" "$ID2" || fail "runq exited $?"
    assert_contains "$(cat "$TEST_TMP/runq6.log")" \
        "to=v6@aonly.test via=mx result=delivered detail=\"250 2.0.0 OK\" hop=aonly.test[127.0.0.3]:$PORT" "runq log"
fi
