#!/usr/bin/env python3
"""Delivery throughput of `smtpspool runq` to a local SMTP sink.

    python3 bench/delivery.py [--binary build/smtpspool] [-n 1000] [--size 1000]

Queues N small messages (one piped session, as a local client), copies the
spool, and delivers each copy to the same sink on 127.0.0.1:
  1. one `runq` for the whole queue: one SMTP connection, reused (RSET
     between messages);
  2. N `runq ID` invocations, one after the other: a process and an SMTP
     connection per message.
Prints delivered messages per second for both and their ratio. The sink is
aiosmtpd with a handler that accepts and discards everything (Debian's
python3-aiosmtpd; `make deps` installs it), run by the first python3 that can
import it. Every run must end with the queue empty and runq reporting N
deliveries, otherwise the figures are not printed and the exit status is 1.
"""

import argparse
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time

SINK = r"""
import signal, sys
from aiosmtpd.controller import Controller

class Discard:
    async def handle_DATA(self, server, session, envelope):
        return "250 2.0.0 discarded"

c = Controller(Discard(), hostname="127.0.0.1", port=int(sys.argv[1]), server_hostname="sink.bench")
c.start()
print("ready", flush=True)
while True:
    signal.pause()
"""


def aiosmtpd_python():
    for p in (sys.executable, "/usr/bin/python3"):
        if p and os.path.exists(p) and subprocess.run([p, "-c", "import aiosmtpd"],
                                                     capture_output=True).returncode == 0:
            return p
    sys.exit("aiosmtpd is not installed (apt-get install python3-aiosmtpd, or make deps)")


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def queue(binary, spool, n, size):
    body = b"".join(b"line %05d of the benchmark message, padding padding padding\r\n" % i
                    for i in range(max(1, size // 64)))
    session = [b"EHLO bench.client\r\n"]
    for i in range(n):
        session.append(b"MAIL FROM:<sender%d@client.bench>\r\nRCPT TO:<rcpt%d@far.bench>\r\nDATA\r\n" % (i, i))
        session.append(b"Subject: bench %d\r\n\r\n" % i + body + b".\r\n")
    session.append(b"QUIT\r\n")
    p = subprocess.run([binary, "--spool", spool, "--hostname", "a.bench", "--log", "none"],
                       input=b"".join(session), capture_output=True, check=True)
    ids = re.findall(rb"queued as ([A-Za-z0-9_-]+)", p.stdout)
    if len(ids) != n:
        sys.exit(f"queued {len(ids)} messages, not {n}: {p.stdout[-300:]!r}")
    return [i.decode() for i in ids]


def delivered(log):
    return sum(int(m) for m in re.findall(r"event=runq-done .*? delivered=(\d+)", log))


def check(spool, log, n, what):
    left = os.listdir(os.path.join(spool, "queue"))
    got = delivered(log)
    if left or got != n:
        sys.exit(f"{what}: {got} delivered, {len(left)} left in the queue (expected {n} and 0); "
                 f"log tail: {log[-500:]}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--binary", default="build/smtpspool")
    ap.add_argument("-n", type=int, default=1000, help="messages (default 1000)")
    ap.add_argument("--size", type=int, default=1000, help="approximate body octets (default 1000)")
    args = ap.parse_args()
    binary = os.path.abspath(args.binary)
    work = tempfile.mkdtemp(prefix="smtpspool-bench-")
    port = free_port()
    sink = subprocess.Popen([aiosmtpd_python(), "-c", SINK, str(port)], stdout=subprocess.PIPE)
    try:
        if sink.stdout.readline().strip() != b"ready":
            sys.exit("the sink did not start")
        spool = os.path.join(work, "spool")
        t = time.monotonic()
        ids = queue(binary, spool, args.n, args.size)
        queued = time.monotonic() - t
        one, each = os.path.join(work, "one"), os.path.join(work, "each")
        shutil.copytree(spool, one)
        shutil.copytree(spool, each)
        runq = [binary, "runq", "--hostname", "relay.bench", "--smarthost", f"127.0.0.1:{port}",
                "--log", "stderr"]

        t = time.monotonic()
        p = subprocess.run(runq + ["--spool", one], capture_output=True, text=True)
        t_one = time.monotonic() - t
        if p.returncode != 0:
            sys.exit(f"runq exited {p.returncode}: {p.stderr[-500:]}")
        check(one, p.stderr, args.n, "one runq")

        logs = []
        t = time.monotonic()
        for qid in ids:
            p = subprocess.run(runq + ["--spool", each, qid], capture_output=True, text=True)
            if p.returncode != 0:
                sys.exit(f"runq {qid} exited {p.returncode}: {p.stderr[-500:]}")
            logs.append(p.stderr)
        t_each = time.monotonic() - t
        check(each, "".join(logs), args.n, "runq per message")

        size = os.path.getsize(os.path.join(spool, "queue", ids[0], "message.eml"))
        r_one, r_each = args.n / t_one, args.n / t_each
        print(f"{args.n} messages of {size} octets, queued in {queued:.2f} s; sink: aiosmtpd on 127.0.0.1:{port}")
        print(f"one runq (one connection, reused):      {t_one:7.2f} s  {r_one:8.1f} messages/s")
        print(f"{args.n} runq ID (a process and a connection each): {t_each:7.2f} s  {r_each:8.1f} messages/s")
        print(f"ratio: {r_one / r_each:.1f}x")
    finally:
        sink.kill()
        sink.wait()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":  # bench/webhook.py imports the sink and the queueing
    main()
