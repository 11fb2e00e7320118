#!/bin/bash
# Milter changes at the end of a message, with a python3-milter (libmilter)
# milter that changes what the Subject says; what is queued is what it
# decided:
#  - a header field added at the end, the Subject changed, the body
#    replaced, a recipient added and one deleted, the sender changed: the
#    stored message and envelope (content and size of the new octets);
#  - Authentication-Results: fields claiming our authserv-id are gone before
#    the milter sees the message, another authserv-id's stays;
#  - quarantine: queued held, mailq says so, runq passes it over;
#  - every recipient deleted, discard and reject at the end: nothing queued.
# shellcheck source=tests/e2e/lib.sh
source "$(dirname "$0")/lib.sh"
if ! /usr/bin/python3 -c 'import Milter' 2>/dev/null; then
    skip_test "python3-milter is not installed (make deps installs it)"
fi

TEST_TMP=$TEST_TMP python3 - <<'PYEOF'
import os, subprocess
from e2elib import *
from milterlib import *

tmp = os.environ["TEST_TMP"]
sock, record = f"{tmp}/milter.sock", f"{tmp}/record"
milter = start_milter("testmilter.py", record, socket_path=sock)
n = [0]


def transaction(subject, rcpts, extra_header=""):
    open(record, "w").close()
    n[0] += 1
    sp = f"{tmp}/spool{n[0]}"
    msg = (f"Authentication-Results: mx.test.example; dkim=pass header.d=forged.example\r\n"
           f"Authentication-Results: upstream.example; spf=pass\r\n{extra_header}"
           f"Subject: {subject}\r\nX-Client: kept\r\n\r\nthe client's body\r\n")
    steps = ["EHLO client.test.example", "MAIL FROM:<sender@client.test.example>"]
    steps += [f"RCPT TO:<{r}@mx.test.example>" for r in rcpts] + [("DATA", msg), "QUIT"]
    replies, log = session(sp, ["--milter", "unix:" + sock], steps)
    return sp, replies, log


def header_events():
    return [(e["name"], e["value"]) for e in recorded(record) if e["event"] == "header"]


def main():
    try:
        sp, r, log = transaction("add-header change-subject add-rcpt del-rcpt change-from replace-body",
                                 ["gone", "keep"])
        expect_eq(["220", "250", "250", "250", "250", "354", "250", "221"], codes(r), "a message with every change")
        q = queued(sp)
        expect_eq(1, len(q), "queued")
        qid, env, data = q[0]
        head, _, body = data.partition(b"\r\n\r\n")
        fields = head.split(b"\r\n")
        expect(fields[0].startswith(b"Received: from client.test.example"), "our Received: first", fields[0])
        expect_eq([b"Authentication-Results: upstream.example; spf=pass",
                   b"Subject: changed by the milter", b"X-Client: kept", b"X-Milter: added"],
                  [f for f in fields[1:] if not f.startswith((b"\t", b" "))], "the header section after the changes")
        expect_eq(b"replaced body\r\n", body, "the body the milter gave")
        expect_eq(["keep@mx.test.example", "added@mx.test.example"], [x["address"] for x in env["recipients"]],
                  "recipients: one deleted, one added")
        expect_eq("new-sender@client.test.example", env["mail_from"], "the sender the milter set")
        expect_eq(len(data), env["size"], "the envelope's size is the new message's")
        expect_eq("7bit", env["content"], "content of the new octets")
        expect(not env.get("held", False), "not held", False, env.get("held"))
        # The milter saw neither the forged field nor anything but the rest.
        names = [h[0] for h in header_events()]
        expect_eq(["Received", "Authentication-Results", "Subject", "X-Client"], names,
                  "the fields the milter was shown (ours taken out before)")
        expect("event=authentication-results-removed" in log and "fields=1" in log,
               "the removal logged", "authentication-results-removed fields=1", log)
        expect("event=filter stage=eom" in log and "added=1 deleted=1" in log,
               "the changes logged", "filter stage=eom ... added=1 deleted=1", log)

        # Quarantine: queued held; mailq says so; runq leaves it.
        sp, r, log = transaction("quarantine add-header", ["keep"])
        expect_eq("250", codes(r)[-2], "a quarantined message is answered 250")
        q = queued(sp)
        expect_eq(1, len(q), "quarantined: queued")
        expect_eq(True, q[0][1].get("held"), "quarantined: held")
        expect(b"X-Milter: added\r\n" in q[0][2], "quarantined with its changes", "X-Milter: added", q[0][2][:300])
        expect("held=yes" in log, "held=yes on the queued line", "held=yes", log)
        mq = subprocess.run([binary(), "mailq", "--spool", sp], capture_output=True, text=True, env=clean_env())
        expect("held" in mq.stdout, "mailq shows it held", "held", mq.stdout)
        rq = subprocess.run([binary(), "runq", "--spool", sp, "--route", "*=maildir:" + tmp + "/mail/%u",
                             "--log", "stderr"], capture_output=True, text=True, env=clean_env())
        expect_eq(1, len(queued(sp)), "runq leaves a held message in the queue")
        expect(not os.path.exists(tmp + "/mail/keep"), "nothing delivered", "no maildir", os.listdir(tmp))

        # Every recipient deleted: 250 and nothing queued.
        sp, r, log = transaction("del-rcpt", ["gone"])
        expect_eq("250", codes(r)[-2], "every recipient deleted: 250")
        expect_eq([], queued(sp), "every recipient deleted: nothing queued")
        expect("event=discarded" in log and "reason=no-recipients" in log, "logged as discarded",
               "discarded reason=no-recipients", log)

        # Discard and reject at the end of the message.
        sp, r, log = transaction("discard-eom add-header", ["keep"])
        expect_eq("250", codes(r)[-2], "discard at the end: 250")
        expect_eq([], queued(sp), "discard at the end: nothing queued")
        sp, r, log = transaction("reject-eom", ["keep"])
        expect(r[-2].startswith("554 5.7.1"), "reject at the end: 554 5.7.1", "554 5.7.1", r[-2])
        expect_eq([], queued(sp), "reject at the end: nothing queued")
        expect_eq([], os.listdir(sp + "/tmp"), "nothing left in tmp/")
    finally:
        milter.kill()
        milter.wait(timeout=10)

run(main)
PYEOF
