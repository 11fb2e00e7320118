"""Python helpers for the integration tests: a mail from a given source
address (relay allowed or refused), checked in the spool, and the states of
many concurrent connections. Uses tests/e2e/e2elib.py for the spool."""

import os
import smtplib
import socket
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "e2e"))
from e2elib import Failure, check_envelope, expect, expect_eq, load, queued_id, run, split_received  # noqa: E402,F401

STRANGER_DOMAIN = "far-away.example"


def send(port, spool, source, relay, host="127.0.0.1"):
    """One message from SOURCE (a local address to connect from) to a stranger
    domain: RELAY says whether the superserver's setup lets SOURCE relay (250)
    or not (550 5.7.1, then the message goes to postmaster@localhost instead).
    Checks the envelope: client.address SOURCE, client.port our source port.
    Returns the queue ID."""
    c = smtplib.SMTP(host, port, local_hostname="client.test.example", timeout=20, source_address=(source, 0))
    code, _ = c.ehlo()
    expect_eq(250, code, f"EHLO reply from {source}")
    source_port = c.sock.getsockname()[1]
    c.mail(f"sender@{source}.client.example")
    code, text = c.rcpt(f"someone@{STRANGER_DOMAIN}")
    if relay:
        expect_eq(250, code, f"RCPT to a stranger domain from {source} (may relay): {text!r}")
        rcpt = f"someone@{STRANGER_DOMAIN}"
    else:
        expect_eq((550, b"5.7.1 relaying denied"), (code, text), f"RCPT to a stranger domain from {source}")
        rcpt = "postmaster@localhost"
        code, text = c.rcpt(rcpt)
        expect_eq(250, code, f"RCPT to postmaster@localhost from {source}: {text!r}")
    body = f"Subject: from {source}\r\n\r\nhello from {source}\r\n".encode()
    code, text = c.data(body)
    expect_eq(250, code, f"DATA reply from {source}: {text!r}")
    qid = queued_id(text.decode(), "DATA reply")
    code, _ = c.docmd("QUIT")
    expect_eq(221, code, "QUIT reply")
    c.close()
    env, msg = load(spool, qid)
    check_envelope(env, qid, msg)
    expect_eq(source, env["client"]["address"], f"{qid}: client.address")
    expect_eq(source_port, env["client"]["port"], f"{qid}: client.port (our source port)")
    expect_eq([rcpt], [r["address"] for r in env["recipients"]], f"{qid}: recipients")
    _, rest = split_received(msg, qid)
    expect_eq(body, rest, f"{qid}: the message")
    print(f"{source}: queued as {qid}, relay {'allowed' if relay else 'refused'}")
    return qid


class Conn:
    """One connection from SOURCE and what happened to it: "greeted" (a 220
    line came), "closed" (EOF before any greeting), "waiting" (connected,
    nothing within WAIT seconds), "refused" (ECONNREFUSED)."""

    def __init__(self, port, source="127.0.0.1", wait=3.0, host="127.0.0.1"):
        self.source = source
        self.sock = socket.socket()
        self.sock.bind((source, 0))
        self.sock.settimeout(wait)
        self.data = b""
        try:
            self.sock.connect((host, port))
        except ConnectionRefusedError:
            self.state = "refused"
            return
        self.state = self._read()

    def _read(self):
        try:
            while not self.data.endswith(b"\r\n"):
                d = self.sock.recv(4096)
                if not d:
                    return "closed" if not self.data else "greeted?"
                self.data += d
        except socket.timeout:
            return "waiting"
        except ConnectionResetError:
            return "closed"
        return "greeted" if self.data.startswith(b"220 ") else "other"

    def read_again(self, wait):
        """After "waiting": wait up to WAIT seconds more for the greeting."""
        self.sock.settimeout(wait)
        self.state = self._read()
        return self.state

    def close(self):
        self.sock.close()


def hold(port, sources, wait=3.0, gap=0.03):
    """Opens one connection per entry of SOURCES, in order, keeping them all
    open; returns the Conns."""
    conns = []
    for s in sources:
        conns.append(Conn(port, s, wait))
        time.sleep(gap)
    return conns


def states(conns):
    return [c.state for c in conns]


def wait_listening(port, seconds=10, host="127.0.0.1"):
    """Waits until HOST:PORT accepts a connection, without counting refused
    attempts; returns that first connection (a Conn)."""
    deadline = time.time() + seconds
    while True:
        c = Conn(port, "127.0.0.1", 5.0, host)
        if c.state != "refused" or time.time() > deadline:
            return c
        c.close()
        time.sleep(0.05)
