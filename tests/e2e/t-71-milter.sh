#!/bin/bash
# Milters: a python3-milter (libmilter) milter answers each stage as the
# session's words tell it; the replies and the spool are checked after each:
#  - what it is shown: the connection (host, family, macros j, _,
#    {daemon_name}, {client_*}), HELO, MAIL with its parameters and
#    {mail_addr}, each RCPT with {rcpt_addr}, DATA with the queue id (i), each
#    header field (our Received: first, the space after the colon left out, a
#    fold as a line feed), the end of the headers, the body, and the abort;
#  - reject, tempfail, discard, accept and a reply code of its own at
#    connect, HELO, MAIL, RCPT and DATA: the command's reply, and what is
#    queued (nothing after a reject, tempfail or discard; a discarded
#    recipient left out of the envelope);
#  - two milters in a chain: the first refusal decides;
#  - milters on TCP: inet: on 127.0.0.1 and inet6: on [::1].
# shellcheck source=tests/e2e/lib.sh
source "$(dirname "$0")/lib.sh"
if ! /usr/bin/python3 -c 'import Milter' 2>/dev/null; then
    skip_test "python3-milter is not installed (make deps installs it)"
fi

TEST_TMP=$TEST_TMP python3 - <<'PYEOF'
import os, socket, time
from e2elib import *
from milterlib import *

tmp = os.environ["TEST_TMP"]
sock, record, mode = f"{tmp}/milter.sock", f"{tmp}/record", f"{tmp}/mode"
sock2, record2 = f"{tmp}/milter2.sock", f"{tmp}/record2"
milters = [start_milter("testmilter.py", record, mode, socket_path=sock),
           start_milter("testmilter.py", record2, socket_path=sock2)]
n = [0]

def spool():
    n[0] += 1
    return f"{tmp}/spool{n[0]}"

MSG = "Subject: a test\r\nX-Folded: one\r\n\ttwo\r\n\r\nbody line\r\n"
HEAD = ["EHLO client.test.example"]

def run_session(steps, options=(), sp=None):
    open(record, "w").close()
    sp = sp or spool()
    replies, log = session(sp, ["--milter", "unix:" + sock, *options], steps)
    return sp, replies, log

def events(name):
    return [e for e in recorded(record) if e["event"] == name]

def wait_for(cond, what):
    for _ in range(100):
        if cond():
            return
        time.sleep(0.05)
    raise Failure(f"{what}: not seen")

def main():
    try:
        # What the milter sees of a whole session.
        sp, r, log = run_session(HEAD + ["MAIL FROM:<plain@client.test.example> SIZE=100",
                                         "RCPT TO:<u@mx.test.example> NOTIFY=NEVER", ("DATA", MSG), "QUIT"])
        expect_eq(["220", "250", "250", "250", "354", "250", "221"], codes(r), "a session through the milter")
        q = queued(sp)
        expect_eq(1, len(q), "messages queued")
        qid = q[0][0]
        c = events("connect")[0]
        expect_eq("[192.0.2.7]", c["hostname"], "connect host name (no verified name)")
        expect_eq({"j": "mx.test.example", "{daemon_name}": "mx.test.example", "{client_addr}": "192.0.2.7",
                   "{client_port}": "41000", "{client_name}": "unknown", "_": "unknown [192.0.2.7]"},
                  c["macros"], "connect macros")
        expect_eq("client.test.example", events("helo")[0]["name"], "HELO")
        m = events("mail")[0]
        expect_eq("<plain@client.test.example>", m["sender"], "MAIL sender")
        expect_eq(["SIZE=100"], m["params"], "MAIL parameters")
        expect_eq("plain@client.test.example", m["macros"].get("{mail_addr}"), "{mail_addr}")
        rc = events("rcpt")[0]
        expect_eq(("<u@mx.test.example>", ["NOTIFY=NEVER"], "u@mx.test.example"),
                  (rc["rcpt"], rc["params"], rc["macros"].get("{rcpt_addr}")), "RCPT")
        expect_eq(qid, events("data")[0]["macros"].get("i"), "DATA: macro i is the queue id")
        headers = [(e["name"], e["value"]) for e in events("header")]
        expect_eq("Received", headers[0][0], "our Received: comes first")
        expect_eq([("Subject", "a test"), ("X-Folded", "one\n\ttwo")], headers[1:], "the client's header fields")
        expect_eq(1, len(events("eoh")), "end of headers")
        wait_for(lambda: events("abort") or events("close"), "abort or close at the end")

        # Refusals at each stage, the milter's own reply codes, and the spool after each.
        for word, code in (("reject", "554"), ("tempfail", "451"), ("custom", "553")):
            sp, r, log = run_session(HEAD + [f"MAIL FROM:<{word}-mail@client.test.example>", "QUIT"])
            expect_eq(["220", "250", code, "221"], codes(r), f"MAIL, milter says {word}")
            if word == "custom":
                expect_eq("553 5.7.9 custom refusal at mail", r[2], "the milter's own reply at MAIL")
            expect_eq([], queued(sp), f"nothing queued after {word} at MAIL")
            expect(f"event=milter milter=unix:{sock} stage=mail action={'reject' if word == 'custom' else word}" in log,
                   "milter event logged", "event=milter ... stage=mail", log)

        sp, r, log = run_session(HEAD + ["MAIL FROM:<a@client.test.example>", "RCPT TO:<reject@mx.test.example>",
                                         "RCPT TO:<tempfail@mx.test.example>", "RCPT TO:<custom@mx.test.example>",
                                         "RCPT TO:<discard@mx.test.example>", "RCPT TO:<u@mx.test.example>",
                                         ("DATA", MSG), "QUIT"])
        expect_eq(["220", "250", "250", "554", "451", "450", "250", "250", "354", "250", "221"], codes(r),
                  "RCPT: reject, tempfail, custom, discard, continue")
        expect_eq("450 4.2.9 custom later for this one", r[5], "the milter's own reply at RCPT")
        q = queued(sp)
        expect_eq(1, len(q), "the message is queued")
        expect_eq(["u@mx.test.example"], [x["address"] for x in q[0][1]["recipients"]],
                  "only the recipient the milter let through (the discarded one dropped)")
        expect("result=discarded" in log, "the discarded recipient is logged", "result=discarded", log)

        for word, code in (("reject", "554"), ("tempfail", "451"), ("custom", "553")):
            sp, r, log = run_session(HEAD + [f"MAIL FROM:<{word}-data@client.test.example>",
                                             "RCPT TO:<u@mx.test.example>", ("DATA", MSG), ("DATA", MSG), "RSET",
                                             "MAIL FROM:<plain@client.test.example>", "RCPT TO:<u@mx.test.example>",
                                             ("DATA", MSG), "QUIT"])
            expect_eq(["220", "250", "250", "250", code, code, "250", "250", "250", "354", "250", "221"], codes(r),
                      f"DATA, milter says {word}: refused again until RSET, then a message goes through")
            expect_eq(1, len(queued(sp)), f"only the message after RSET is queued ({word} at DATA)")

        sp, r, log = run_session(HEAD + ["MAIL FROM:<discard-data@client.test.example>",
                                         "RCPT TO:<u@mx.test.example>", ("DATA", MSG), "QUIT"])
        expect_eq(["220", "250", "250", "250", "354", "250", "221"], codes(r), "DATA discarded: the client hears 250")
        expect_eq([], queued(sp), "a discarded message is not queued")
        expect("event=discarded" in log, "discarded logged", "event=discarded", log)
        sp, r, log = run_session(HEAD + ["MAIL FROM:<discard-mail@client.test.example>",
                                         "RCPT TO:<u@mx.test.example>", ("DATA", MSG), "QUIT"])
        expect_eq(["220", "250", "250", "250", "354", "250", "221"], codes(r), "MAIL discarded: the client hears 250")
        expect_eq([], queued(sp), "a message discarded at MAIL is not queued")
        expect_eq([], events("rcpt"), "after a discard at MAIL the milter is asked no more")

        # Accept at MAIL: no more events for the transaction, the message is queued.
        sp, r, log = run_session(HEAD + ["MAIL FROM:<accept-mail@client.test.example>",
                                         "RCPT TO:<u@mx.test.example>", ("DATA", MSG), "QUIT"])
        expect_eq(["220", "250", "250", "250", "354", "250", "221"], codes(r), "MAIL accepted")
        expect_eq(1, len(queued(sp)), "accepted at MAIL: queued")
        expect_eq([], events("rcpt") + events("header"), "accepted at MAIL: no RCPT or header events")

        # HELO.
        sp, r, log = run_session(["EHLO reject.client.test", "EHLO tempfail.client.test", "HELO custom.client.test",
                                  "EHLO fine.client.test", "QUIT"])
        expect_eq(["220", "554", "451", "553", "250", "221"], codes(r), "HELO: reject, tempfail, custom, continue")

        # Connect.
        for word, greeting, after in (("reject", "554", ["503", "503", "221"]),
                                      ("custom", "553", ["503", "503", "221"]),
                                      ("tempfail", "421", []), ("accept", "220", ["250", "250", "221"])):
            with open(mode, "w") as f:
                f.write(word)
            sp, r, log = run_session(HEAD + ["MAIL FROM:<reject-mail@client.test.example>", "QUIT"])
            expect_eq([greeting] + after, codes(r), f"connect, milter says {word}")
            if word == "accept":
                expect_eq([], events("helo") + events("mail"), "accepted at connect: no more events")
            if word == "tempfail":
                expect("4.7.1" in r[0], "421 at the greeting", "4.7.1", r[0])
        os.unlink(mode)

        # Two milters: the first one's refusal decides; the second is not asked.
        open(record2, "w").close()
        sp = spool()
        open(record, "w").close()
        r, log = session(sp, ["--milter", "unix:" + sock, "--milter", "unix:" + sock2],
                         HEAD + ["MAIL FROM:<plain@client.test.example>", "RCPT TO:<reject@mx.test.example>",
                                 "RCPT TO:<u@mx.test.example>", "QUIT"])
        expect_eq(["220", "250", "250", "554", "250", "221"], codes(r), "a chain of two milters")
        rc2 = [e["rcpt"] for e in recorded(record2) if e["event"] == "rcpt"]
        expect_eq(["<u@mx.test.example>"], rc2, "the second milter hears only what the first let through")
        expect_eq(2, len([e for e in recorded(record2) if e["event"] == "connect"]) +
                  len([e for e in recorded(record) if e["event"] == "connect"]), "each milter saw the connection")

        # Milters on TCP, IPv4 and IPv6.
        for kind, host, spec_host in (("inet", "127.0.0.1", "127.0.0.1"), ("inet6", "::1", "[::1]")):
            port = free_port(socket.AF_INET6 if kind == "inet6" else socket.AF_INET, host)
            rec = f"{tmp}/record-{kind}"
            milters.append(start_milter("testmilter.py", rec, socket_path=f"{kind}:{port}@{host}"))
            sp = spool()
            r, log = session(sp, ["--milter", f"{kind}:{spec_host}:{port}"],
                             HEAD + ["MAIL FROM:<plain@client.test.example>", "RCPT TO:<reject@mx.test.example>",
                                     "RCPT TO:<u@mx.test.example>", ("DATA", MSG), "QUIT"])
            expect_eq(["220", "250", "250", "554", "250", "354", "250", "221"], codes(r), f"a milter on {kind}:")
            expect_eq(1, len(queued(sp)), f"{kind}: the message is queued")
            expect_eq(["<reject@mx.test.example>", "<u@mx.test.example>"],
                      [e["rcpt"] for e in recorded(rec) if e["event"] == "rcpt"], f"{kind}: what the milter saw")
    finally:
        for p in milters:
            p.kill()
            p.wait(timeout=10)

run(main)
PYEOF
