#!/usr/bin/python3
"""Parallel delivery: `smtpspool runq` one message at a time against
`runq --concurrency`, and exim's queue run, to next hops that answer slowly.

    python3 bench/parallel.py [--binary build/smtpspool] [-n 1000] [--hops 10]
                              [--delay 0.02] [--runs 3] [--results bench/RESULTS.md]

Queues N messages of about 1 KiB, each to one recipient at one of HOPS
domains (d0.bench ... d9.bench, in turn), once for smtpspool and once for
exim (-bs -odq, queue_only), and delivers the queue, from a fresh copy each
time, with:
  1. runq --concurrency 1 (serial: one message after the other, one
     connection per next hop, reused);
  2. runq with its defaults (--concurrency 10 --concurrency-per-host 2);
  3. exim -qff (one queue runner; it forks a delivery process per message);
  4. HOPS exim -qff at once (exim's parallelism: queue runners skip the
     messages another one has locked, as a daemon with queue_run_max=HOPS
     would run them).
Each next hop is a route (--route dN.bench=smtp:127.0.0.1:PORT, and a
manualroute router for exim) to one port of the sink: aiosmtpd, one
process listening on HOPS ports, that waits DELAY seconds before it answers
the end of each message's data (a slow remote server) and counts, per port,
the messages and the most connections open at once. Each run must deliver
every message exactly once (the sinks' counts) and leave the queue empty;
otherwise no figure is printed and the exit status is 1.

With --results FILE, the section "Parallel delivery" in FILE is written (or
replaced). run.py runs this as its workload "parallel".
"""

import argparse
import json
import os
import pwd
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))

SINK = r"""
import asyncio, json, signal, sys
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP

delay, out, ports = float(sys.argv[1]), sys.argv[2], [int(p) for p in sys.argv[3:]]
stats = {p: {"messages": 0, "open": 0, "most_open": 0, "connections": 0} for p in ports}

class Counting(SMTP):
    def connection_made(self, transport):
        s = stats[self.event_handler.port]
        s["open"] += 1
        s["connections"] += 1
        s["most_open"] = max(s["most_open"], s["open"])
        super().connection_made(transport)
    def connection_lost(self, exc):
        stats[self.event_handler.port]["open"] -= 1
        super().connection_lost(exc)

class Slow:
    def __init__(self, port):
        self.port = port
    async def handle_DATA(self, server, session, envelope):
        await asyncio.sleep(delay)
        stats[self.port]["messages"] += 1
        return "250 2.0.0 accepted slowly"

class C(Controller):
    def factory(self):
        return Counting(self.handler, **self.SMTP_kwargs)

controllers = [C(Slow(p), hostname="127.0.0.1", port=p, server_hostname="sink.bench") for p in ports]
for c in controllers:
    c.start()

def dump(*_):
    with open(out + ".new", "w") as f:
        json.dump({str(p): dict(s) for p, s in stats.items()}, f)
    import os
    os.replace(out + ".new", out)
    for s in stats.values():  # the next report: the most open since this one
        s["most_open"] = s["open"]

signal.signal(signal.SIGUSR1, dump)
print("ready", flush=True)
while True:
    signal.pause()
"""

EXIM_CONF = """# written by bench/parallel.py: queue-only reception, manualroute per domain
primary_hostname = bench.invalid
spool_directory = {spool}
log_file_path = {spool}/log/%slog
queue_only = true
host_lookup =
rfc1413_hosts =
acl_smtp_rcpt = acl_rcpt

begin acl
acl_rcpt:
  accept

begin routers
to_sink:
  driver = manualroute
  route_list = {routes}
  self = send
  transport = to_sink

begin transports
to_sink:
  driver = smtp
  allow_localhost
  hosts_avoid_tls = *
"""


def aiosmtpd_python():
    for p in (sys.executable, "/usr/bin/python3"):
        if p and os.path.exists(p) and subprocess.run([p, "-c", "import aiosmtpd"],
                                                     capture_output=True).returncode == 0:
            return p
    sys.exit("aiosmtpd is not installed (apt-get install python3-aiosmtpd, or make deps)")


def free_ports(n):
    socks, ports = [], []
    for _ in range(n):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        socks.append(s)
        ports.append(s.getsockname()[1])
    for s in socks:
        s.close()
    return ports


def session(n, hops):
    body = b"".join(b"line %05d of the benchmark message, padding padding padding\r\n" % i for i in range(15))
    out = [b"EHLO bench.client\r\n"]
    for i in range(n):
        out.append(b"MAIL FROM:<sender%d@client.bench>\r\nRCPT TO:<rcpt%d@d%d.bench>\r\nDATA\r\n" % (i, i, i % hops))
        out.append(b"Subject: bench %d\r\n\r\n" % i + body + b".\r\n")
    out.append(b"QUIT\r\n")
    return b"".join(out)


class Sink:
    def __init__(self, ports, delay, work):
        self.path = os.path.join(work, "sink.json")
        self.proc = subprocess.Popen([aiosmtpd_python(), "-c", SINK, str(delay), self.path] + [str(p) for p in ports],
                                     stdout=subprocess.PIPE)
        if self.proc.stdout.readline().strip() != b"ready":
            sys.exit("the sink did not start")

    def stats(self):
        if os.path.exists(self.path):
            os.unlink(self.path)
        self.proc.send_signal(signal.SIGUSR1)
        for _ in range(500):
            if os.path.exists(self.path):
                with open(self.path) as f:
                    return json.load(f)
            time.sleep(0.01)
        sys.exit("the sink did not report its counts")

    def stop(self):
        self.proc.kill()
        self.proc.wait()


def delta(before, after):
    return {p: {"messages": after[p]["messages"] - before[p]["messages"],
                "connections": after[p]["connections"] - before[p]["connections"],
                "most_open": after[p]["most_open"]} for p in after}


def exim_queue_left(spool):
    inp = os.path.join(spool, "input")
    return [f for f in os.listdir(inp) if f.endswith("-H")] if os.path.isdir(inp) else []


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--binary", default=os.path.join(os.path.dirname(HERE), "build", "smtpspool"))
    ap.add_argument("-n", type=int, default=1000, help="messages (default 1000)")
    ap.add_argument("--hops", type=int, default=10, help="next hops (default 10)")
    ap.add_argument("--delay", type=float, default=0.02, help="seconds each sink waits before its reply to the data")
    ap.add_argument("--runs", type=int, default=3, help="runs of each variant (median, min-max)")
    ap.add_argument("--no-exim", action="store_true")
    ap.add_argument("--results", help="write the section into this RESULTS.md")
    args = ap.parse_args()
    binary = os.path.abspath(args.binary)
    base = os.environ.get("BENCH_WORK", "/var/tmp/smtpspool-bench")
    os.makedirs(base, exist_ok=True)
    os.chmod(base, 0o755)
    work = tempfile.mkdtemp(prefix="parallel-", dir=base)
    os.chmod(work, 0o755)
    ports = free_ports(args.hops)
    sink = Sink(ports, args.delay, work)
    failures = []
    rows = {}
    sess = session(args.n, args.hops)
    started = time.time()
    load0 = open("/proc/loadavg").read().split()[:3]

    def verify(what, before, left):
        d = delta(before, sink.stats())
        got = sum(v["messages"] for v in d.values())
        if got != args.n or left:
            failures.append(f"{what}: the sinks got {got} messages, {left} left in the queue (expected {args.n}, 0)")
            return None
        per = [v["messages"] for v in d.values()]
        if min(per) != max(per):
            failures.append(f"{what}: messages per sink {per}")
        return d

    def record(key, label, secs, d):
        r = rows.setdefault(key, {"label": label, "secs": [], "most_open": 0, "connections": []})
        r["secs"].append(secs)
        r["most_open"] = max(r["most_open"], max(v["most_open"] for v in d.values()))
        r["connections"].append(sum(v["connections"] for v in d.values()))

    try:
        # smtpspool: one queue, copied for each run
        spool = os.path.join(work, "spool")
        p = subprocess.run([binary, "--spool", spool, "--hostname", "a.bench", "--log", "none"], input=sess,
                           capture_output=True)
        queued = len(re.findall(rb"queued as ", p.stdout))
        if queued != args.n:
            sys.exit(f"queued {queued} of {args.n}: {p.stdout[-300:]!r}")
        routes = []
        for h, port in enumerate(ports):
            routes += ["--route", f"d{h}.bench=smtp:127.0.0.1:{port}"]
        runq = [binary, "runq", "--hostname", "relay.bench", "--log", "stderr"] + routes
        variants = [("serial", "smtpspool runq --concurrency 1", ["--concurrency", "1"]),
                    ("parallel", "smtpspool runq (--concurrency 10 --concurrency-per-host 2)", [])]
        for run in range(args.runs):
            for key, label, extra in variants:
                copy = os.path.join(work, "copy")
                shutil.rmtree(copy, ignore_errors=True)
                shutil.copytree(spool, copy)
                before = sink.stats()
                t = time.monotonic()
                p = subprocess.run(runq + extra + ["--spool", copy], capture_output=True, text=True)
                secs = time.monotonic() - t
                if p.returncode != 0:
                    failures.append(f"{label}: exit status {p.returncode}: {p.stderr[-300:]}")
                    continue
                d = verify(label, before, len(os.listdir(os.path.join(copy, "queue"))))
                if d:
                    record(key, label, secs, d)
                print(f"[parallel] run {run + 1} {label}: {secs:.2f} s", file=sys.stderr, flush=True)

        # exim: reception with -bs -odq, then queue runs
        if not args.no_exim:
            espool = os.path.join(work, "exim-spool")
            os.makedirs(espool, exist_ok=True)
            u = pwd.getpwnam("Debian-exim")
            os.chown(espool, u.pw_uid, u.pw_gid)
            conf = os.path.join(work, "exim.conf")
            with open(conf, "w") as f:
                f.write(EXIM_CONF.format(spool=espool, routes=" ; ".join(
                    f"d{h}.bench 127.0.0.1::{port}" for h, port in enumerate(ports))))
            os.chmod(conf, 0o644)
            exim = ["/usr/sbin/exim4", "-C", conf]
            evariants = [("exim-serial", "exim -qff (one queue runner)", 1),
                         ("exim-parallel", f"{args.hops} x exim -qff at once", args.hops)]
            for run in range(args.runs):
                for key, label, runners in evariants:
                    for sub in ("input", "msglog", "db"):
                        shutil.rmtree(os.path.join(espool, sub), ignore_errors=True)
                    subprocess.run(exim + ["-bs", "-odq"], input=sess, stdout=subprocess.DEVNULL, check=True)
                    if len(exim_queue_left(espool)) != args.n:
                        failures.append(f"exim queued {len(exim_queue_left(espool))} of {args.n}")
                        break
                    before = sink.stats()
                    t = time.monotonic()
                    procs = [subprocess.Popen(exim + ["-qff"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                             for _ in range(runners)]
                    for q in procs:
                        q.wait()
                    # a queue runner may return before the last delivery process ends
                    deadline = time.monotonic() + 600
                    while exim_queue_left(espool) and time.monotonic() < deadline:
                        time.sleep(0.01)
                    secs = time.monotonic() - t
                    d = verify(label, before, len(exim_queue_left(espool)))
                    if d:
                        record(key, label, secs, d)
                    print(f"[parallel] run {run + 1} {label}: {secs:.2f} s", file=sys.stderr, flush=True)
    finally:
        sink.stop()
        shutil.rmtree(work, ignore_errors=True)

    if failures:
        for f in failures:
            print("FAIL:", f, file=sys.stderr)
        sys.exit(1)
    serial = statistics.median(rows["serial"]["secs"])
    lines = []
    a = lines.append
    a("## 7. Parallel delivery: %d messages to %d next hops that answer slowly\n" % (args.n, args.hops))
    a(f"Written by bench/parallel.py on {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime(started))}; "
      f"{args.runs} runs per row, medians with (min-max); load at the start {' '.join(load0)}, at the end "
      f"{' '.join(open('/proc/loadavg').read().split()[:3])}. Binary: {binary}.\n")
    a(f"Each message (~1 KiB) has one recipient at one of d0.bench ... d{args.hops - 1}.bench, "
      f"{args.n // args.hops} per domain; each domain is routed to its own port of the sink (aiosmtpd, "
      f"one process), which waits {args.delay * 1000:.0f} ms before it answers the end of each message's "
      "data. Every run delivered every message once (the sink's counts) and left the queue empty. "
      "\"Most at once\" is the most connections one port had open at the same time; \"connections\" "
      "is the total the sink accepted in a run.\n")
    a("| delivery | seconds median (min-max) | msg/s | most at once per host | connections | serial runq / this |")
    a("|---|---|---|---|---|---|")
    for key in ("serial", "parallel", "exim-serial", "exim-parallel"):
        r = rows.get(key)
        if not r:
            continue
        m = statistics.median(r["secs"])
        a(f"| {r['label']} | {m:.2f} ({min(r['secs']):.2f}-{max(r['secs']):.2f}) | {args.n / m:.0f} | "
          f"{r['most_open']} | {statistics.median(r['connections']):.0f} | "
          f"{serial / m:.1f}x |")
    a("")
    speedup = serial / statistics.median(rows["parallel"]["secs"])
    a(f"Target: the parallel runq at least 5 times faster than the serial one: {speedup:.1f}x, "
      f"{'met' if speedup >= 5 else 'NOT met'}.\n")
    text = "\n".join(lines)
    print(text)
    if args.results:
        with open(args.results) as f:
            old = f.read()
        start = old.find("## 7. Parallel delivery")
        if start >= 0:
            end = old.find("\n## ", start + 1)
            old = old[:start] + (old[end + 1:] if end >= 0 else "")
        # before "## Targets" when there is one, else at the end
        at = old.find("## Targets")
        new = old[:at] + text + "\n" + old[at:] if at >= 0 else old.rstrip("\n") + "\n\n" + text
        with open(args.results, "w") as f:
            f.write(new)


main()
