"""Helpers of the milter end-to-end tests: start a milter, run one SMTP
session of `smtpspool serve` as a network client, read what the milter
recorded."""

import json
import os
import socket
import subprocess
import time

from e2elib import binary, clean_env, expect
from testlib import queued  # noqa: F401 (for the tests)

MILTER_PYTHON = os.environ.get("MILTER_PYTHON", "/usr/bin/python3")
HERE = os.path.dirname(os.path.abspath(__file__))
NETWORK = {"TCPREMOTEIP": "192.0.2.7", "TCPREMOTEPORT": "41000", "TCPLOCALIP": "192.0.2.1",
           "TCPLOCALPORT": "25", "PROTO": "TCP"}


def free_port(family=socket.AF_INET, host="127.0.0.1"):
    with socket.socket(family) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def listening(socket_path):
    """True when the milter takes connections: a path, or libmilter's
    inet[6]:PORT@HOST. The path alone is not enough: it is there between
    bind() and listen(), when a connection is still refused."""
    try:
        if not socket_path.startswith(("inet:", "inet6:")):
            with socket.socket(socket.AF_UNIX) as s:
                s.connect(socket_path)
            return True
        kind, rest = socket_path.split(":", 1)
        port, host = rest.split("@", 1)
        with socket.socket(socket.AF_INET6 if kind == "inet6" else socket.AF_INET) as s:
            s.connect((host, int(port)))
        return True
    except OSError:
        return False


def start_milter(script, *args, socket_path):
    """Starts tests/e2e/SCRIPT with ARGS; returns the process once its socket is there."""
    p = subprocess.Popen([MILTER_PYTHON, os.path.join(HERE, script), socket_path, *args],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(200):
        if listening(socket_path):
            return p
        expect(p.poll() is None, f"{script} is running", "running", p.returncode)
        time.sleep(0.05)
    raise AssertionError(f"{script} made no socket")


def session(spool, options, steps, env_extra=None):
    """Runs one session; steps are command lines (a DATA is followed by the
    message when given as ("DATA", message)). Returns (replies, log): each
    reply as its last line (str), the greeting first."""
    t0 = time.time()
    env = clean_env(NETWORK)
    env.update(env_extra or {})
    p = subprocess.Popen([binary(), "serve", "--spool", spool, "--hostname", "mx.test.example",
                          "--local-domain", "mx.test.example", "--log", "stderr", *options],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)

    def reply():
        while True:
            line = p.stdout.readline().decode()
            if not line or line[3:4] != "-":
                return line.rstrip("\r\n")

    replies = [reply()]
    try:
        for step in steps:
            if not replies[-1] or replies[-1].startswith("421"):
                break
            if isinstance(step, tuple):
                p.stdin.write(step[0].encode() + b"\r\n")
                p.stdin.flush()
                replies.append(reply())
                if replies[-1].startswith("354"):
                    p.stdin.write(step[1].encode() + b".\r\n")
                    p.stdin.flush()
                    replies.append(reply())
                continue
            p.stdin.write(step.encode() + b"\r\n")
            p.stdin.flush()
            replies.append(reply())
        p.stdin.close()
    except BrokenPipeError:
        pass
    p.stdout.read()
    log = p.stderr.read().decode()
    p.wait(timeout=30)
    if os.environ.get("MILTER_TIMING"):
        print(f"session {time.time() - t0:.2f}s {steps[:2]}", flush=True)
    return replies, log


def codes(replies):
    return [r[:3] for r in replies]


def recorded(path):
    """The events the test milter recorded, in order."""
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return [json.loads(line) for line in f]
