#!/usr/bin/env python3
"""Delivery throughput of `smtpspool runq`: the http transport to a local
endpoint against the smtp transport to a local sink.

    python3 bench/webhook.py [--binary build/smtpspool] [-n 1000] [--size 1000] [--runs 3]

Queues N messages (one piped session, as a local client), copies the spool,
and delivers each copy with one `runq` (its default workers):
  1. smtp: --smarthost to aiosmtpd on 127.0.0.1, accepting and discarding
     (bench/delivery.py's sink);
  2. http: --route '*=http://127.0.0.1:PORT/hook' to a Python http.server
     application (HTTP/1.1, connections kept) that reads each request and
     answers 204; each request is signed (two reads of the message).
Prints, per transport, the median (min-max) of messages per second and of
runq's CPU time (user + system) per message over the runs. Every run must end
with the queue empty and every message delivered (the http endpoint counts
its requests), otherwise the exit status is 1. Needs Debian's
python3-aiosmtpd (make deps), run by the first python3 that can import it.
"""

import argparse
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from delivery import SINK, aiosmtpd_python, free_port, queue  # noqa: E402

ENDPOINT = r"""
import sys, threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
count = [0]
lock = threading.Lock()
class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def log_message(self, *args):
        pass
    def do_POST(self):
        self.rfile.read(int(self.headers["Content-Length"]))
        ok = self.headers.get("Smtpspool-Signature", "").startswith("sha256=")
        with lock:
            count[0] += ok
        self.send_response(204 if ok else 400)
        self.send_header("Content-Length", "0")
        self.end_headers()
    def do_GET(self):  # the count so far
        body = str(count[0]).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
server = ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler)
server.daemon_threads = True
print("ready", flush=True)
server.serve_forever()
"""


def delivered(log):
    return sum(int(m) for m in re.findall(r"event=runq-done .*? delivered=(\d+)", log))


def run(binary, spool, args, n, what):
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.monotonic()
    p = subprocess.run([binary, "runq", "--spool", spool, "--hostname", "relay.bench", "--log", "stderr"] + args,
                       capture_output=True, text=True)
    elapsed = time.monotonic() - t
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    left = os.listdir(os.path.join(spool, "queue"))
    if p.returncode != 0 or left or delivered(p.stderr) != n:
        sys.exit(f"{what}: exit {p.returncode}, {delivered(p.stderr)} delivered, {len(left)} left "
                 f"(expected {n} and 0); log tail: {p.stderr[-500:]}")
    return n / elapsed, cpu / n * 1e6


def spread(values, fmt):
    return f"{fmt.format(statistics.median(values))} ({fmt.format(min(values))}-{fmt.format(max(values))})"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--binary", default="build/smtpspool")
    ap.add_argument("-n", type=int, default=1000, help="messages (default 1000)")
    ap.add_argument("--size", type=int, default=1000, help="approximate body octets (default 1000)")
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    binary = os.path.abspath(args.binary)
    work = tempfile.mkdtemp(prefix="smtpspool-bench-webhook-")
    py = aiosmtpd_python()
    smtp_port, http_port = free_port(), free_port()
    sink = subprocess.Popen([py, "-c", SINK, str(smtp_port)], stdout=subprocess.PIPE)
    endpoint = subprocess.Popen([py, "-c", ENDPOINT, str(http_port)], stdout=subprocess.PIPE)
    try:
        if sink.stdout.readline().strip() != b"ready" or endpoint.stdout.readline().strip() != b"ready":
            sys.exit("the sink or the endpoint did not start")
        secret = os.path.join(work, "secret")
        with open(secret, "w") as f:
            f.write("bench secret\n")
        os.chmod(secret, 0o600)
        spool = os.path.join(work, "spool")
        queue(binary, spool, args.n, args.size)
        size = os.path.getsize(os.path.join(spool, "queue", os.listdir(os.path.join(spool, "queue"))[0],
                                            "message.eml"))
        transports = {
            "smtp": ["--smarthost", f"127.0.0.1:{smtp_port}"],
            "http": ["--route", f"*=http://127.0.0.1:{http_port}/hook", "--http-secret-file", secret],
        }
        rates = {k: [] for k in transports}
        cpus = {k: [] for k in transports}
        for i in range(args.runs):
            for name, extra in transports.items():  # interleaved, so that both see the same load
                copy = os.path.join(work, f"{name}-{i}")
                shutil.copytree(spool, copy)
                rate, cpu = run(binary, copy, extra, args.n, name)
                rates[name].append(rate)
                cpus[name].append(cpu)
                shutil.rmtree(copy)
        import urllib.request
        posted = int(urllib.request.urlopen(f"http://127.0.0.1:{http_port}/").read())
        if posted != args.n * args.runs:
            sys.exit(f"the endpoint counted {posted} signed requests, not {args.n * args.runs}")
        print(f"{args.n} messages of {size} octets, {args.runs} runs, load {os.getloadavg()[0]:.2f}")
        for name, label in (("smtp", "smtp to aiosmtpd (--smarthost)"), ("http", "http to http.server (webhook)")):
            print(f"{label:32s} {spread(rates[name], '{:.1f}'):>26s} messages/s   "
                  f"runq CPU {spread(cpus[name], '{:.0f}')} us/message")
        print(f"ratio http/smtp: {statistics.median(rates['http']) / statistics.median(rates['smtp']):.2f}")
    finally:
        for p in (sink, endpoint):
            p.kill()
            p.wait()
        shutil.rmtree(work, ignore_errors=True)


main()
