#!/bin/bash
# Line ends over a real TCP connection (tcpserver), where the client is a
# network client and only CRLF ends a line:
#  - the SMTP-smuggling attempt (a bare LF before ".CRLF" followed by a second,
#    smuggled transaction) sent pipelined in one write: DATA ends only at the
#    real CRLF.CRLF, the message is refused with 550 5.5.2, the smuggled
#    commands are data and not executed, nothing is spooled;
#  - a bare CR inside the data: 550 5.5.2 as well;
#  - the session stays in step: the next message on the same connection is
#    accepted, and every pipelined command gets its reply, in order.
# shellcheck source=tests/e2e/lib.sh
source "$(dirname "$0")/lib.sh"
need_tool tcpserver tcprules python3

SPOOL=$TEST_TMP/spool
compile_rules "$REPO_ROOT/examples/tcpserver/tcp.smtp" "$TEST_TMP/tcp.smtp.cdb"
start_tcpserver "$TEST_TMP/tcp.smtp.cdb" 5 --spool "$SPOOL" --hostname mx.test.example --log stderr

PORT=$PORT SPOOL=$SPOOL python3 - <<'EOF'
import os, socket
from e2elib import *

port, spool = int(os.environ["PORT"]), os.environ["SPOOL"]

def main():
    s = socket.create_connection(("127.0.0.1", port), timeout=20)
    f = s.makefile("rb")
    def reply():
        lines = []
        while True:
            line = f.readline()
            expect(line.endswith(b"\r\n"), "a reply line", "a line ending in CRLF", line)
            lines.append(line)
            if line[3:4] != b"-":
                return b"".join(lines)
    expect(reply().startswith(b"220 "), "greeting", "220", None)
    s.sendall(b"EHLO smuggler.test.example\r\n")
    expect(b"PIPELINING" in reply(), "EHLO reply", "PIPELINING", None)

    # Everything at once, as a pipelining client (and an attacker) would send it.
    s.sendall(b"MAIL FROM:<a@client.test.example>\r\n"
              b"RCPT TO:<victim@mx.test.example>\r\n"
              b"DATA\r\n"
              b"Subject: smuggling\r\n\r\nfirst part\n.\r\n"
              b"MAIL FROM:<admin@mx.test.example>\r\n"
              b"RCPT TO:<smuggled@mx.test.example>\r\n"
              b"DATA\r\n"
              b"Subject: smuggled\r\n\r\nshould never be a message\r\n"
              b".\r\n"
              b"NOOP\r\n")
    expected = [b"250 2.1.0", b"250 2.1.5", b"354 ",
                b"550 5.5.2 message refused: bare CR or LF in data", b"250 2.0.0 OK"]
    for want in expected:
        got = reply()
        expect(got.startswith(want), "pipelined replies, in order", want, got)

    s.sendall(b"MAIL FROM:<a@client.test.example>\r\nRCPT TO:<victim@mx.test.example>\r\nDATA\r\n"
              b"Subject: bare CR\r\n\r\nbefore\rafter\r\n.\r\n")
    for want in (b"250 2.1.0", b"250 2.1.5", b"354 ", b"550 5.5.2 "):
        got = reply()
        expect(got.startswith(want), "replies for a bare CR in the data", want, got)
    expect_eq([], queue_ids(spool), "the queue after the refused messages")
    expect_eq([], tmp_entries(spool), "tmp/ after the refused messages")

    body = b"Subject: clean\r\n\r\nafter the refusals\r\n"
    s.sendall(b"MAIL FROM:<a@client.test.example>\r\nRCPT TO:<victim@mx.test.example>\r\nDATA\r\n" + body
              + b".\r\nQUIT\r\n")
    got = [reply() for _ in range(5)]
    for want, g in zip((b"250 2.1.0", b"250 2.1.5", b"354 ", b"250 2.0.0 message accepted", b"221 "), got):
        expect(g.startswith(want), "replies for a clean message", want, g)
    qid = queued_id(got[3].decode().strip(), "DATA reply")
    expect_eq(b"", f.read(), "anything after 221")
    s.close()
    expect_eq([qid], queue_ids(spool), "the queue")
    env, msg = load(spool, qid)
    check_envelope(env, qid, msg)
    expect_eq(["victim@mx.test.example"], [r["address"] for r in env["recipients"]], "recipients")
    _, rest = split_received(msg, qid)
    expect_eq(body, rest, "the clean message")

run(main)
EOF

step "the log"
log=$(cat "$TEST_TMP/tcpserver.log")
assert_eq 2 "$(grep -c 'event=rejected reason=bare-line-end' <<<"$log")" "event=rejected reason=bare-line-end lines"
assert_not_contains "$log" "smuggled@" "log (the smuggled RCPT must not run)"
