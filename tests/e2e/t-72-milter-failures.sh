#!/bin/bash
# Milters that fail, and --milter-default-action (tempfail, accept, reject)
# with --milter-timeout 1s:
#  - one that never answers MAIL: after the timeout MAIL gets 451 4.7.1,
#    250 (the message is queued without it) or 554 5.7.1, and the log says
#    why;
#  - one that is down (no socket): 421 at the greeting, the session as if
#    there were none, or a denied client's 554;
#  - one that answers the negotiation with garbage, one that announces a
#    packet over the bound, one that closes at MAIL, and one that answers
#    MAIL with a reply code that is no refusal (250): each the default
#    action, nothing queued when that refuses.
# shellcheck source=tests/e2e/lib.sh
source "$(dirname "$0")/lib.sh"
need_tool python3

TEST_TMP=$TEST_TMP python3 - <<'PYEOF'
import os, time
from e2elib import *
from milterlib import *

tmp = os.environ["TEST_TMP"]
procs = []
n = [0]

def spool():
    n[0] += 1
    return f"{tmp}/spool{n[0]}"

def raw(mode):
    path = f"{tmp}/{mode}.sock"
    procs.append(start_milter("rawmilter.py", mode, socket_path=path))
    return "unix:" + path

MSG = "Subject: failing milters\r\n\r\nbody\r\n"
STEPS = ["EHLO client.test.example", "MAIL FROM:<a@client.test.example>", "RCPT TO:<u@mx.test.example>",
         ("DATA", MSG), "QUIT"]
DEFAULTS = {"tempfail": ["220", "250", "451"], "accept": ["220", "250", "250", "250", "354", "250", "221"],
            "reject": ["220", "250", "554"]}

def check(spec, action, at_connect, what):
    sp = spool()
    t0 = time.monotonic()
    r, log = session(sp, ["--milter", spec, "--milter-default-action", action, "--milter-timeout", "1s"], STEPS)
    elapsed = time.monotonic() - t0
    if at_connect:
        expected = {"tempfail": ["421"], "accept": DEFAULTS["accept"], "reject": ["554", "503", "503", "503", "503", "221"]}[action]
    else:
        expected = DEFAULTS[action]
        if action != "accept":
            expected = expected + ["503", "503", "221"]  # RCPT and DATA without MAIL, QUIT
    got = codes(r)
    if action == "tempfail" and at_connect:
        got = got[:1]
    expect_eq(expected, got, f"{what}, default {action}")
    if action == "tempfail" and not at_connect:
        expect(r[2].startswith("451 4.7.1"), f"{what}: our tempfail reply", "451 4.7.1", r[2])
    if action == "reject" and not at_connect:
        expect(r[2].startswith("554 5.7.1"), f"{what}: our reject reply", "554 5.7.1", r[2])
    expect_eq(1 if action == "accept" else 0, len(queued(sp)), f"{what}, default {action}: messages queued")
    expect(f"event=milter milter={spec} " in log and f"action={action}" in log, f"{what}: the failure is logged",
           f"event=milter milter={spec} ... action={action}", log)
    return log, elapsed

def main():
    try:
        hang = raw("hang-mail")
        for action in ("tempfail", "accept", "reject"):
            log, elapsed = check(hang, action, False, "a milter that never answers MAIL")
            expect("reason=\"timed out\"" in log, "the time-out is the reason", "reason=\"timed out\"", log)
            expect(elapsed < 10, "the wait is bounded by --milter-timeout", "under 10 s", elapsed)

        down = "unix:" + f"{tmp}/nobody-listens.sock"
        for action in ("tempfail", "accept", "reject"):
            log, _ = check(down, action, True, "a milter that is down")
            expect("stage=connect" in log, "down: at connect", "stage=connect", log)

        garbage = raw("garbage")
        for action in ("tempfail", "accept", "reject"):
            log, _ = check(garbage, action, True, "a milter that answers with garbage")
            expect("reason=\"protocol: packet of" in log, "garbage: a protocol error", "protocol: packet of", log)

        for mode, why in (("bad-reply-mail", "invalid reply code"), ("oversize-mail", "packet of 2097152 octets"),
                          ("close-mail", "connection closed")):
            spec = raw(mode)
            for action in ("tempfail", "accept", "reject"):
                log, _ = check(spec, action, False, f"a milter that does {mode}")
                expect(why in log, f"{mode}: the reason", why, log)
    finally:
        for p in procs:
            p.kill()
            p.wait(timeout=10)

run(main)
PYEOF
