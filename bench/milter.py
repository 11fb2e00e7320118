#!/usr/bin/env python3
"""Cost of the milter protocol: messages per second through `smtpspool serve`
with one python3-milter (libmilter) milter that lets everything through
(every callback answers continue), against the same without a milter.

    python3 bench/milter.py [--binary build/smtpspool] [-n 500] [-m 200] [--runs 3]

Two workloads, each run --runs times with and without the milter (median):
one session of N messages (EHLO once, then MAIL, RCPT, DATA of a 4 KiB
message with ten header fields, N times; the events of a transaction), and M
sessions of one message each (the connection, the negotiation and QUIT on
top). The sessions are piped into the binary as a network client
(TCPREMOTEIP), with --log none; the milter listens on a UNIX-domain socket.
Every run is checked: each message must be queued. The ratio printed is
with / without. Not part of make check.
"""

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

MILTER = r'''
import sys, Milter
class Pass(Milter.Base):
    def connect(self, *a): return Milter.CONTINUE
    def hello(self, *a): return Milter.CONTINUE
    def envfrom(self, *a): return Milter.CONTINUE
    def envrcpt(self, *a): return Milter.CONTINUE
    def data(self): return Milter.CONTINUE
    def header(self, *a): return Milter.CONTINUE
    def eoh(self): return Milter.CONTINUE
    def body(self, *a): return Milter.CONTINUE
    def eom(self): return Milter.CONTINUE
    def abort(self): return Milter.CONTINUE
Milter.factory = Pass
Milter.runmilter("bench", "unix:" + sys.argv[1], timeout=60)
'''

HEADERS = "".join(f"X-Bench-{i}: value {i} of the header section\r\n" for i in range(9))
MESSAGE = "Subject: milter bench\r\n" + HEADERS + "\r\n" + ("x" * 76 + "\r\n") * 52


def transaction(i):
    return (f"MAIL FROM:<sender{i}@bench.example>\r\nRCPT TO:<rcpt@mx.bench.example>\r\nDATA\r\n"
            + MESSAGE + ".\r\n")


def run_session(binary, spool, options, messages):
    script = "EHLO client.bench.example\r\n" + "".join(transaction(i) for i in range(messages)) + "QUIT\r\n"
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "TCPREMOTEIP": "192.0.2.7", "TCPREMOTEPORT": "40000"}
    p = subprocess.run([binary, "serve", "--spool", spool, "--hostname", "mx.bench.example", "--local-domain",
                        "mx.bench.example", "--log", "none", *options], input=script.encode(),
                       capture_output=True, env=env, timeout=600)
    queued = p.stdout.count(b"queued as")
    if queued != messages:
        sys.exit(f"expected {messages} messages queued, got {queued}: {p.stdout[-300:]!r}")


def measure(binary, root, options, sessions, per_session):
    spool = os.path.join(root, "spool")
    shutil.rmtree(spool, ignore_errors=True)
    t0 = time.monotonic()
    for _ in range(sessions):
        run_session(binary, spool, options, per_session)
    elapsed = time.monotonic() - t0
    return sessions * per_session / elapsed


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--binary", default="build/smtpspool")
    ap.add_argument("-n", type=int, default=500, help="messages in the one-session workload")
    ap.add_argument("-m", type=int, default=200, help="sessions in the many-sessions workload")
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    binary = os.path.abspath(args.binary)
    with tempfile.TemporaryDirectory(prefix="smtpspool-milter-bench-") as root:
        sock = os.path.join(root, "milter.sock")
        script = os.path.join(root, "pass_milter.py")
        with open(script, "w") as f:
            f.write(MILTER)
        milter = subprocess.Popen(["/usr/bin/python3", script, sock], stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL)
        try:
            for _ in range(200):
                if os.path.exists(sock):
                    break
                time.sleep(0.05)
            else:
                sys.exit("the milter made no socket (is python3-milter installed?)")
            with_milter = ["--milter", "unix:" + sock]
            print("| workload | without milter (msg/s) | with one milter (msg/s) | with / without |")
            print("|---|---|---|---|")
            for name, sessions, per in ((f"one session, {args.n} messages", 1, args.n),
                                        (f"{args.m} sessions, one message each", args.m, 1)):
                plain = statistics.median(measure(binary, root, [], sessions, per) for _ in range(args.runs))
                milt = statistics.median(measure(binary, root, with_milter, sessions, per) for _ in range(args.runs))
                print(f"| {name} | {plain:.0f} | {milt:.0f} | {milt / plain:.2f} |", flush=True)
        finally:
            milter.kill()
            milter.wait()


if __name__ == "__main__":
    main()
