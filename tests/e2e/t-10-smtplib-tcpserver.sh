#!/bin/bash
# Python smtplib against smtpspool under tcpserver, started by the example
# daemontools run script (examples/tcpserver/run) with the example rules
# (examples/tcpserver/tcp.smtp, unchanged) compiled by tcprules. The script's
# own variables set the address and port, the paths, the user, -H (no DNS
# lookup) and smtpspool's options; its configuration file names the spool. Three messages on one SMTP connection
# (smtplib's sendmail three times); then mailq --json and the spool files must
# show exactly what was sent.
#
# smtpspool gets --relay-client 198.51.100.0/24, so 127.0.0.1 may relay only
# because the rules set RELAYCLIENT for 127.0.0.1: the message to a stranger
# domain checks that the example rules really do.
# shellcheck source=tests/e2e/lib.sh
source "$(dirname "$0")/lib.sh"
need_tool tcpserver tcprules tcprulescheck python3

SPOOL=$TEST_TMP/spool
RULES_SRC=$REPO_ROOT/examples/tcpserver/tcp.smtp
RULES=$TEST_TMP/tcp.smtp.cdb

step "the example rules compile and say what they are meant to"
compile_rules "$RULES_SRC" "$RULES"
out=$(TCPREMOTEIP=127.0.0.1 tcprulescheck "$RULES")
assert_contains "$out" "set environment variable RELAYCLIENT=" "rules for 127.0.0.1"
assert_contains "$out" "allow connection" "rules for 127.0.0.1"
out=$(TCPREMOTEIP=203.0.113.9 tcprulescheck "$RULES")
assert_contains "$out" "allow connection" "rules for a stranger (default allow)"
assert_not_contains "$out" "RELAYCLIENT" "rules for a stranger"

step "start the example run script"
printf 'spool = %s\n' "$SPOOL" >"$TEST_TMP/smtpspool.conf"
PORT=$(free_port)
runas=
if [[ $(id -u) -eq 0 ]]; then
    runas=root # exercises the script's -u/-g path
fi
start_bg "$TEST_TMP/run.log" env \
    SMTPSPOOL="$SMTPSPOOL_BIN" CONFIG="$TEST_TMP/smtpspool.conf" RULES="$RULES" IP=127.0.0.1 PORT="$PORT" \
    RUNAS="$runas" LOOKUP=-H CONCURRENCY=10 \
    OPTIONS="--hostname mx.test.example --relay-client 198.51.100.0/24 --log stderr" \
    sh "$REPO_ROOT/examples/tcpserver/run"
SERVER_PID=$BG_PID
wait_for_port "$PORT" "$SERVER_PID" "$TEST_TMP/run.log"

step "three messages on one connection with smtplib"
PORT=$PORT SPOOL=$SPOOL python3 - <<'EOF'
import os, smtplib
from e2elib import *

port = int(os.environ["PORT"])
spool = os.environ["SPOOL"]

BODY1 = (b"From: Alice <alice@client.test.example>\r\n"
         b"To: Bob <bob@mx.test.example>\r\n"
         b"Subject: first of three\r\n"
         b"\r\n"
         b"Hello Bob.\r\n")
BODY2 = (b"Subject: second, from the null sender\r\n"
         b"\r\n"
         b"Two recipients: one local, one relayed.\r\n"
         b"\r\n"
         b"\r\n"
         b"Trailing spaces stay:   \r\n"
         b"\ttabs too\r\n")
BODY3 = (b"Subject: third, dots and a long line\r\n"
         b"\r\n"
         b".a line that starts with a dot (smtplib stuffs it)\r\n"
         b"..two dots\r\n"
         b". \r\n"
         + b"x" * 900 + b"\r\n"
         b"last line\r\n")
sent = [
    ("alice@client.test.example", ["bob@mx.test.example"], BODY1),
    ("", ["postmaster@mx.test.example", "carol@far-away.example"], BODY2),
    ("dave@client.test.example", ["erin@far-away.example"], BODY3),
]

class Client(smtplib.SMTP):
    """smtplib.SMTP that remembers the reply to each DATA."""
    def data(self, msg):
        r = super().data(msg)
        self.data_replies.append(r)
        return r

def main():
    c = Client("127.0.0.1", port, local_hostname="client.test.example", timeout=20)
    c.data_replies = []
    code, banner = c.ehlo()
    expect_eq(250, code, "EHLO reply code")
    expect(c.has_extn("pipelining") and c.has_extn("size") and c.has_extn("8bitmime"),
           "EHLO extensions", "PIPELINING, SIZE, 8BITMIME", banner)
    source_port = c.sock.getsockname()[1]
    for frm, to, body in sent:
        refused = c.sendmail(frm, to, body)
        expect_eq({}, refused, f"recipients refused for {to}")
    c.quit()
    expect_eq(3, len(c.data_replies), "DATA replies")
    ids = []
    for code, text in c.data_replies:
        expect_eq(250, code, "DATA reply code")
        text = text.decode()
        expect(text.startswith("2.0.0 message accepted, queued as "), "DATA reply", "2.0.0 ... queued as ID", text)
        ids.append(queued_id(text, "DATA reply"))
    expect_eq(3, len(set(ids)), "distinct queue IDs")
    expect_eq(sorted(ids), ids, "queue IDs sortable by arrival")

    listed = mailq_json(spool)
    expect_eq(ids, [e["id"] for e in listed], "IDs listed by mailq --json")
    expect_eq(ids, queue_ids(spool), "directories under queue/")
    expect_eq([], tmp_entries(spool), "entries left in tmp/")

    for qid, entry, (frm, to, body) in zip(ids, listed, sent):
        env, msg = load(spool, qid)
        check_envelope(env, qid, msg)
        expect_eq(env, entry, f"{qid}: mailq --json entry against envelope.json")
        cl = env["client"]
        expect_eq("127.0.0.1", cl["address"], f"{qid}: client.address")
        expect_eq(source_port, cl["port"], f"{qid}: client.port (the client's source port)")
        expect_eq(None, cl["hostname"], f"{qid}: client.hostname (tcpserver -H)")
        expect_eq(None, cl["ident"], f"{qid}: client.ident (tcpserver -R)")
        expect_eq("client.test.example", cl["helo"], f"{qid}: client.helo")
        expect_eq("ESMTP", cl["protocol"], f"{qid}: client.protocol")
        expect_eq("mx.test.example", env["hostname"], f"{qid}: hostname")
        expect_eq(frm, env["mail_from"], f"{qid}: mail_from")
        expect_eq(to, [r["address"] for r in env["recipients"]], f"{qid}: recipients")
        expect_eq("7BIT", env["body"], f"{qid}: body")
        expect_eq(False, env["smtputf8"], f"{qid}: smtputf8")

        header, rest = split_received(msg, qid)
        expect_eq(body, rest, f"{qid}: message.eml after the Received: header (byte-exact)")
        expect_crlf_only(msg, f"{qid}: message.eml")
        h = header.decode()
        expect(h.startswith("Received: from client.test.example ([127.0.0.1])\r\n"),
               f"{qid}: Received: first line", "from client.test.example ([127.0.0.1])", h)
        expect(f"by mx.test.example (smtpspool) with ESMTP id {qid}" in h,
               f"{qid}: Received: header", "by mx.test.example (smtpspool) with ESMTP id ID", h)
        if len(to) == 1:
            expect(f"for <{to[0]}>;" in h, f"{qid}: Received: header", f"for <{to[0]}>", h)
        else:
            expect("for <" not in h, f"{qid}: Received: header", "no 'for' clause (2 recipients)", h)

run(main)
EOF

step "the session was logged through the run script's stderr"
log=$(cat "$TEST_TMP/run.log")
assert_eq 3 "$(grep -c 'event=queued' <<<"$log")" "event=queued lines in the log"
assert_contains "$log" "event=connect client=127.0.0.1" "log"
assert_contains "$log" "relay=yes" "log (RELAYCLIENT from the rules)"

step "mailq lists the three messages"
out=$("$SMTPSPOOL_BIN" mailq --spool "$SPOOL")
assert_match "$out" "in 3 messages" "mailq summary"
assert_contains "$out" "<erin@far-away.example> pending" "mailq"
