#!/usr/bin/env python3
"""Cost of the queue's gauges on a large queue: `smtpspool stats` (and, for
comparison, `stats --json`, `mailq --summary` and `mailq --shape`) on a
spool of N messages (100,000 by default).

    python3 bench/queue_stats.py [--binary build/smtpspool] [-n 100000] [--dir /var/tmp] [--runs 5]

The spool is made once: one real message is queued by a piped session (a
local client) and its directory copied N times with its id, arrival time,
recipients and delivery state varied (a tenth held, a third deferred, five
recipient domains, arrivals spread over five days), envelope.json and
message.eml written directly, as the commit protocol leaves them. Each
command then runs --runs times after one warm-up (the page cache is warm,
as it is for a timer every minute); the median and range of wall, user and
system time (wait4 rusage) and the peak RSS are printed, as Markdown rows.
Every run is checked: stats must count N messages. Not part of make check.
"""

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time


def make_spool(binary, root, n):
    spool = os.path.join(root, "spool")
    session = (b"EHLO bench.example\r\nMAIL FROM:<sender@bench.example>\r\nRCPT TO:<a@one.example>\r\n"
               b"DATA\r\nSubject: queue bench\r\n\r\n" + b"x" * 1000 + b"\r\n.\r\nQUIT\r\n")
    p = subprocess.run([binary, "--spool", spool, "--hostname", "bench.example", "--log", "none"],
                       input=session, capture_output=True, check=True)
    qid = re.search(rb"queued as (\S+)", p.stdout).group(1).decode()
    queue = os.path.join(spool, "queue")
    with open(os.path.join(queue, qid, "envelope.json")) as f:
        template = json.load(f)
    with open(os.path.join(queue, qid, "message.eml"), "rb") as f:
        message = f.read()
    shutil.rmtree(os.path.join(queue, qid))
    domains = ["one.example", "two.example", "three.example", "four.example", "five.example"]
    now = time.time()
    for i in range(n):
        arrived = now - (i * 432000 // n)  # five days, newest last
        qid = time.strftime("%Y%m%dT%H%M%S", time.gmtime(arrived)) + f"-{i % 1000000:06d}-1-{i}"
        env = dict(template)
        env["id"] = qid
        env["received_at"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(arrived))
        env["recipients"] = [dict(template["recipients"][0], address=f"user{i % 97}@{domains[(i + k) % 5]}")
                             for k in range(1 + i % 3)]
        if i % 3 == 1:
            env["attempts"] = 2
            env["last_attempt"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now - 600))
            env["next_attempt"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now + 3600))
            env["recipients"][0]["attempts"] = 2
            env["recipients"][0]["last_error"] = "451 4.3.0 try again later"
        if i % 10 == 0:
            env["held"] = True
        d = os.path.join(queue, qid)
        os.mkdir(d, 0o700)
        with open(os.path.join(d, "message.eml"), "wb") as f:
            f.write(message)
        with open(os.path.join(d, "envelope.json"), "w") as f:
            json.dump(env, f, indent=2)
    return spool


def measure(argv, runs, check):
    samples = []
    for k in range(runs + 1):
        with tempfile.TemporaryFile() as out:
            t0 = time.monotonic()
            p = subprocess.Popen(argv, stdout=out, stderr=subprocess.DEVNULL)
            _, status, ru = os.wait4(p.pid, 0)
            wall = time.monotonic() - t0
            p.returncode = os.waitstatus_to_exitcode(status)
            out.seek(0)
            text = out.read()
        if p.returncode != 0 or not check(text):
            sys.exit(f"{argv}: exit {p.returncode}")
        if k > 0:  # the first run warms the page cache
            samples.append((wall, ru.ru_utime, ru.ru_stime, ru.ru_maxrss))
    return samples


def cell(values, fmt="{:.2f}"):
    return (fmt.format(statistics.median(values)) + " (" + fmt.format(min(values)) + "-" +
            fmt.format(max(values)) + ")")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", default="build/smtpspool")
    ap.add_argument("-n", type=int, default=100000)
    ap.add_argument("--dir", default="/var/tmp")
    ap.add_argument("--runs", type=int, default=5)
    a = ap.parse_args()
    binary = os.path.abspath(a.binary)
    root = tempfile.mkdtemp(prefix="smtpspool-queue-bench-", dir=a.dir)
    try:
        t0 = time.monotonic()
        spool = make_spool(binary, root, a.n)
        print(f"made a spool of {a.n} messages in {time.monotonic() - t0:.0f} s under {a.dir}", file=sys.stderr)
        total = re.compile(rb'smtpspool_queue_messages\{[^}]*state="(\w+)"\} (\d+)')

        def counts_all(out):
            return sum(int(v) for _, v in total.findall(out)) == a.n

        rows = [
            ("stats (Prometheus text)", [binary, "stats", "--spool", spool], counts_all),
            ("stats --json", [binary, "stats", "--json", "--spool", spool],
             lambda out: sum(json.loads(out)["messages"].values()) == a.n),
            ("mailq --summary", [binary, "mailq", "--summary", "--spool", spool], lambda out: b"TOTAL" in out),
            ("mailq --shape", [binary, "mailq", "--shape", "--spool", spool], lambda out: b"TOTAL" in out),
        ]
        print(f"| command ({a.n} messages) | wall s | user s | sys s | CPU us per message | peak RSS KiB |")
        print("|---|---|---|---|---|---|")
        for name, argv, check in rows:
            s = measure(argv, a.runs, check)
            cpu = [(u + y) / a.n * 1e6 for _, u, y, _ in s]
            print(f"| {name} | {cell([w for w, _, _, _ in s])} | {cell([u for _, u, _, _ in s])} | "
                  f"{cell([y for _, _, y, _ in s])} | {cell(cpu, '{:.1f}')} | {max(r for *_, r in s)} |", flush=True)
        print(f"load (1/5/15 min) at the end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
