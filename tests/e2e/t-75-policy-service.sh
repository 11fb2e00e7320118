#!/bin/bash
# Policy delegation against a policy service started here (policyserver.py,
# Postfix's protocol on a UNIX-domain socket): every action and what the
# session does with it (the reply, the header on top of the stored message,
# the held envelope, the discarded message, the log lines); the attributes
# of the request at RCPT and at END-OF-MESSAGE; several services in order
# (DEFER_IF_REJECT before a REJECT, a PREPEND before a REJECT); a service
# that is down, silent past --policy-timeout or answers without an action:
# 451 4.3.5, and accepted with --policy-default-action dunno; one
# connection per session, opened again once when the service closed it.
# shellcheck source=tests/e2e/lib.sh
source "$(dirname "$0")/lib.sh"
need_tool python3

step "every action, the attributes, the connection kept, two services, down and slow services"
python3 - <<'EOF'
import json, os, re, subprocess
from e2elib import *
from policyserver import PolicyService

tmp = os.environ["TEST_TMP"]
spool = os.path.join(tmp, "spool")
sock1, sock2 = os.path.join(tmp, "policy1.sock"), os.path.join(tmp, "policy2.sock")
env = {k: v for k, v in os.environ.items() if not k.startswith("TCP") and k not in ("PROTO", "RELAYCLIENT")}
# A network client that may not relay; its host name tries to add a line to the request.
stranger = dict(env, PROTO="TCP", TCPREMOTEIP="203.0.113.5", TCPREMOTEPORT="41000",
                TCPREMOTEHOST="host.example\nrecipient=injected@example.com", TCPLOCALIP="192.0.2.1",
                TCPLOCALPORT="25")
BASE = [binary(), "--spool", spool, "--hostname", "mx.example.com", "--local-domain", "example.com", "--log", "stderr"]


def session(commands, *options):
    """Runs one session; returns (final reply lines, one per command, after the greeting; the log)."""
    data = b"".join(c.encode() + b"\r\n" for c in commands)
    p = subprocess.run(BASE + list(options), input=data, capture_output=True, timeout=60, env=stranger)
    expect_eq(0, p.returncode, "exit status of the session")
    replies = [l for l in p.stdout.decode().split("\r\n") if re.match(r"^\d{3} ", l)]
    expect_eq(len(commands) + 1, len(replies), f"replies of {commands} ({p.stdout!r})")
    return replies[1:], p.stderr.decode()


def message(subject):
    return ["DATA", f"Subject: {subject}\r\n\r\nbody\r\n."]


def queued(reply):
    m = re.match(r"^250 2\.0\.0 .*queued as ([A-Za-z0-9_-]+)$", reply)
    expect(m is not None, "the reply to the data", "250 queued as ID", reply)
    return m.group(1)


def envelope(qid):
    with open(os.path.join(spool, "queue", qid, "envelope.json")) as f:
        return json.load(f)


def stored(qid):
    with open(os.path.join(spool, "queue", qid, "message.eml"), "rb") as f:
        return f.read()


def main():
    s1 = PolicyService(sock1, 0)
    s2 = PolicyService(sock2, 1)
    try:
        actions(s1)
        at_data(s1)
        two_services(s1, s2)
        failures(s1)
    finally:
        s1.close()
        s2.close()


def actions(s1):
    rcpts = ["ok", "reject", "defer", "dip", "dir", "reply5", "reply4", "bad", "noaction", "prepend", "warn", "info"]
    cmds = ["EHLO client.example", "MAIL FROM:<someone@sender.example> SIZE=1234"]
    cmds += [f"RCPT TO:<{r}@example.com>" for r in rcpts] + message("one")
    cmds += ["MAIL FROM:<someone@sender.example>", "RCPT TO:<hold@example.com>"] + message("two")
    cmds += ["MAIL FROM:<someone@sender.example>", "RCPT TO:<discard@example.com>", "RCPT TO:<ok@example.com>"]
    cmds += message("three") + ["QUIT"]
    before = len(queue_ids(spool))
    replies, log = session(cmds, "--policy-service", "unix:" + sock1)
    got = dict(zip(rcpts, replies[2:2 + len(rcpts)]))
    expect_eq({
        "ok": "250 2.1.5 recipient OK",
        "reject": "550 5.7.1 no thanks",
        "defer": "450 4.7.1 later please",
        "dip": "450 4.2.0 Greylisted",
        "dir": "250 2.1.5 recipient OK",
        "reply5": "554 5.7.2 go away",
        "reply4": "452 4.2.2 mailbox full",
        "bad": "451 4.3.5 policy service unavailable, try again later",
        "noaction": "451 4.3.5 policy service unavailable, try again later",
        "prepend": "250 2.1.5 recipient OK",
        "warn": "250 2.1.5 recipient OK",
        "info": "250 2.1.5 recipient OK",
    }, {k: re.sub(r" <[^>]*>", "", v) for k, v in got.items()}, "the replies to each action")
    i = 2 + len(rcpts) + 1  # after DATA's 354
    first = queued(replies[i])
    held = queued(replies[i + 4])
    discarded = queued(replies[i + 9])
    expect_eq(before + 2, len(queue_ids(spool)), "messages stored (the discarded one is not)")
    expect(discarded not in queue_ids(spool), "the discarded message", "not in the queue", queue_ids(spool))
    e = envelope(first)
    expect_eq(["ok@example.com", "dir@example.com", "prepend@example.com", "warn@example.com", "info@example.com"],
              [r["address"] for r in e["recipients"]], "the first message's recipients")
    expect(not e.get("held", False), "the first message", "not held", e.get("held"))
    msg = stored(first)
    expect(msg.startswith(b"X-Policy: checked by service\r\nReceived: from client.example"), "the first message",
           "the PREPEND field on top, then our Received:", msg[:120])
    expect_eq(True, envelope(held).get("held"), "the HOLD message is held")
    expect(b"X-Policy" not in stored(held), "the held message", "no header of the other transaction", stored(held)[:200])
    assert_log(log, r"event=policy-service service=unix:\S+ stage=rcpt to=warn@example.com action=warn text=\"look at this\"")
    assert_log(log, r"event=policy-service service=unix:\S+ stage=rcpt to=info@example.com action=info text=noted")
    assert_log(log, r"event=policy-service service=unix:\S+ stage=rcpt to=bad@example.com result=failed reason=.*default=tempfail")
    assert_log(log, rf"event=discarded id={discarded} ")
    assert_log(log, rf"event=queued id={held} .*held=yes")

    # The requests: one connection for the whole session, the attributes Postfix sends.
    expect_eq(1, s1.connections, "connections to the service in one session")
    reqs = [r for r in s1.requests if r.get("protocol_state") == "RCPT"]
    expect_eq(len(rcpts) + 3, len(reqs), "requests at RCPT")
    r = reqs[0]
    for k, v in {"request": "smtpd_access_policy", "protocol_state": "RCPT", "protocol_name": "ESMTP",
                 "helo_name": "client.example", "queue_id": "", "sender": "someone@sender.example",
                 "recipient": "ok@example.com", "recipient_count": "0", "client_address": "203.0.113.5",
                 "client_name": "host.example?recipient=injected@example.com", "size": "1234",
                 "client_port": "41000", "server_address": "192.0.2.1", "server_port": "25",
                 "sasl_username": "", "encryption_protocol": "", "encryption_cipher": ""}.items():
        expect_eq(v, r.get(k), f"attribute {k}")
    expect(all(req["_raw"].count(b"\nrecipient=") == 1 for req in reqs), "each request", "one recipient line",
           [req["_raw"] for req in reqs if req["_raw"].count(b"\nrecipient=") != 1][:1])
    inst = [req["instance"] for req in reqs]
    expect(len(set(inst[:len(rcpts)])) == 1, "the instance", "one per transaction", inst)
    expect(len(set(inst)) == 3, "the instance", "a new one for each transaction", inst)
    s1.requests.clear()
    s1.connections = 0


def at_data(s1):
    cmds = ["HELO client.example", "MAIL FROM:<reject@sender.example>", "RCPT TO:<ok@example.com>"] + message("x")
    cmds += ["MAIL FROM:<prepend@sender.example>", "RCPT TO:<dunno@example.com>"] + message("y") + ["QUIT"]
    replies, log = session(cmds, "--policy-service", "unix:" + sock1, "--policy-at-data", "yes")
    expect_eq("550 5.7.1 no thanks", replies[4], "END-OF-MESSAGE REJECT")
    qid = queued(replies[8])
    expect(stored(qid).startswith(b"X-Policy: checked by service\r\n"), "the message", "the END-OF-MESSAGE PREPEND",
           stored(qid)[:80])
    eom = [r for r in s1.requests if r.get("protocol_state") == "END-OF-MESSAGE"]
    expect_eq(2, len(eom), "requests at END-OF-MESSAGE")
    r = eom[1]
    expect_eq(qid, r["queue_id"], "queue_id at END-OF-MESSAGE")
    expect_eq("1", r["recipient_count"], "recipient_count at END-OF-MESSAGE")
    expect_eq("dunno@example.com", r["recipient"], "the one recipient at END-OF-MESSAGE")
    expect_eq("SMTP", r["protocol_name"], "protocol_name after HELO")
    size = int(r["size"])
    expect(size > 0, "size at END-OF-MESSAGE", "the message's size", size)
    expect_eq(r["instance"], [q for q in s1.requests if q.get("recipient") == "dunno@example.com"][0]["instance"],
              "the same instance at RCPT and END-OF-MESSAGE")
    expect_eq(1, s1.connections, "connections in the second session")
    s1.requests.clear()
    s1.connections = 0


def two_services(s1, s2):
    both = ["--policy-service", "unix:" + sock1, "--policy-service", "unix:" + sock2]
    rcpts = ["dunno+reject", "dir+reject", "prepend+reject", "prepend+ok", "ok+reject", "dip+ok", "dip+reject",
             "warn+defer"]
    cmds = ["EHLO client.example", "MAIL FROM:<a@sender.example>"] + [f"RCPT TO:<{r}@example.com>" for r in rcpts]
    cmds += message("z") + ["QUIT"]
    replies, log = session(cmds, *both)
    got = dict(zip(rcpts, [r.split(" ")[0] + " " + r.split(" ")[1] for r in replies[2:2 + len(rcpts)]]))
    expect_eq({"dunno+reject": "550 5.7.1", "dir+reject": "450 4.7.1", "prepend+reject": "550 5.7.1",
               "prepend+ok": "250 2.1.5", "ok+reject": "250 2.1.5", "dip+ok": "450 4.2.0", "dip+reject": "550 5.7.1",
               "warn+defer": "450 4.7.1"}, got, "the replies of two services")
    qid = queued(replies[-2])
    expect_eq(["prepend+ok@example.com", "ok+reject@example.com"],
              [r["address"] for r in envelope(qid)["recipients"]], "recipients of two services")
    expect_eq(1, stored(qid).count(b"X-Policy:"), "PREPEND fields: the accepted recipient's only")
    asked2 = [r["recipient"].split("@")[0] for r in s2.requests]
    expect("ok+reject" not in asked2, "the second service", "not asked after the first said OK", asked2)
    s1.requests.clear()
    s1.connections = 0


def failures(s1):
    down = "unix:" + os.path.join(tmp, "nobody-listens.sock")
    cmds = ["EHLO client.example", "MAIL FROM:<a@sender.example>", "RCPT TO:<x@example.com>", "QUIT"]
    replies, log = session(cmds, "--policy-service", down)
    expect_eq("451 4.3.5 policy service unavailable, try again later", replies[2], "a service that is down")
    assert_log(log, r"event=policy-service service=unix:\S+ stage=rcpt to=x@example.com result=failed reason=.*default=tempfail")
    replies, log = session(cmds, "--policy-service", down, "--policy-default-action", "dunno")
    expect_eq("250 2.1.5 recipient OK", replies[2], "a service that is down, default dunno")

    slow = ["EHLO client.example", "MAIL FROM:<a@sender.example>", "RCPT TO:<slow@example.com>",
            "RCPT TO:<ok@example.com>", "QUIT"]
    replies, log = session(slow, "--policy-service", "unix:" + sock1, "--policy-timeout", "1s")
    expect_eq("451 4.3.5", replies[2][:9], "a silent service")
    expect_eq("250 2.1.5", replies[3][:9], "the next recipient, on a new connection")
    assert_log(log, r"stage=rcpt to=slow@example.com result=failed reason=\"timeout waiting for the answer\"")
    replies, log = session(slow, "--policy-service", "unix:" + sock1, "--policy-timeout", "1s",
                           "--policy-default-action", "dunno")
    expect_eq("250 2.1.5", replies[2][:9], "a silent service, default dunno")

    # The service closes the connection after its answer: the next question
    # finds it closed and opens another, once.
    s1.connections = 0
    cmds = ["EHLO client.example", "MAIL FROM:<a@sender.example>", "RCPT TO:<close@example.com>",
            "RCPT TO:<ok@example.com>", "RCPT TO:<reject@example.com>", "QUIT"]
    replies, log = session(cmds, "--policy-service", "unix:" + sock1)
    expect_eq(["250", "250", "550"], [r[:3] for r in replies[2:5]], "replies around a closed connection")
    expect_eq(2, s1.connections, "connections: the first, and one after it was closed")


def assert_log(log, pattern):
    expect(re.search(pattern, log) is not None, "the log", pattern, log[-3000:])


run(main)
EOF
