#!/usr/bin/python3
"""bench/run.py - the smtpspool benchmark suite (`make bench`).

Runs every workload against build/smtpspool and, side by side and in the same
sitting, against exim -bs in queue-only mode, the durability floor
(bench/floor.c: the same durable commit per message, no SMTP) and the C stdio
sink (bench/stdio-sink.c: SMTP, no storage). Writes bench/RESULTS.md (medians
over RUNS runs with min-max, ratios, machine, load) and bench/results.jsonl.

    make bench                          # as root: installs what is missing
    RUNS=7 bench/run.py --binary build/smtpspool

Workloads: (1) one session, 1000 pipelined 4 KiB messages; (2) one 100 MiB
message, spool on disk and on tmpfs (MiB/s, peak RSS), plus the DATA reader
alone (input from a file, spool on tmpfs); (3) 500 sequential one-message
sessions through tcpserver, and start-up time to the 220 greeting; (4) 20
parallel clients, 2000 messages through tcpserver; (5) delivery by runq to a
local sink (bench/delivery.py) and exim's queue run to the same kind of sink;
(6) the queue's gauges and shape (smtpspool stats, mailq --summary, --shape)
on a spool of QUEUE_N messages (bench/queue_stats.py); (7) runq serial and
with --concurrency, and exim -qff alone and ten at once, 1000 messages to
ten slow next hops (bench/parallel.py, its own section).
Also: callgrind instructions per message and user CPU per 4 KiB message.

Environment: RUNS (5), WARMUP (1), BENCH_WORK (/var/tmp/smtpspool-bench, on
the disk), BENCH_TMPFS (/dev/shm/smtpspool-bench), N (1000), BIG (100M),
M_SESS (500), M_CONC (2000), CONC (20), DELIVERY_N (500), QUEUE_N (100000).
"""
import argparse
import json
import os
import platform
import pwd
import re
import shutil
import socket
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
PY = "/usr/bin/python3"
ENV = os.environ
RUNS = int(ENV.get("RUNS", 5))
WARMUP = int(ENV.get("WARMUP", 1))
W = ENV.get("BENCH_WORK", "/var/tmp/smtpspool-bench")
T = ENV.get("BENCH_TMPFS", "/dev/shm/smtpspool-bench")
N = int(ENV.get("N", 1000))
BIG = ENV.get("BIG", "100M")
M_SESS = int(ENV.get("M_SESS", 500))
M_CONC = int(ENV.get("M_CONC", 2000))
CONC = int(ENV.get("CONC", 20))
DELIVERY_N = int(ENV.get("DELIVERY_N", 500))
QUEUE_N = int(ENV.get("QUEUE_N", 100000))
SIZE = 4096
PFX = os.path.join(W, "pfx")
JSONL = os.path.join(HERE, "results.jsonl")
DEBS = ["exim4-daemon-light", "ucspi-tcp", "time", "valgrind", "python3-aiosmtpd", "gcc", "libc6-dev"]

results = {}   # key -> summary dict
notes = []


def log(*a):
    print("[bench]", *a, file=sys.stderr, flush=True)


def sh(cmd, **kw):
    return subprocess.run(cmd, shell=isinstance(cmd, str), check=True, **kw)


def loadavg():
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


# ---------------------------------------------------------------- setup

def install():
    missing = [p for p in DEBS if subprocess.run(
        ["dpkg-query", "-W", "-f=${Status}", p], capture_output=True, text=True).stdout != "install ok installed"]
    if missing:
        if os.getuid() != 0:
            sys.exit("missing Debian packages; as root: apt-get install " + " ".join(missing))
        log("installing:", *missing)
        sh("apt-get update -qq")
        sh(["apt-get", "install", "-y", "-qq", "--no-install-recommends"] + missing,
           env=dict(ENV, DEBIAN_FRONTEND="noninteractive"), stdout=subprocess.DEVNULL)
    # Postfix's smtp-source/smtp-sink, unpacked privately (postfix conflicts with exim as the MTA).
    if not os.path.exists(os.path.join(PFX, "usr/sbin/smtp-source")) and os.getuid() == 0:
        d = os.path.join(W, "deb")
        os.makedirs(d, exist_ok=True)
        sh("apt-get download postfix", cwd=d, stdout=subprocess.DEVNULL)
        deb = [f for f in os.listdir(d) if f.startswith("postfix_") and f.endswith(".deb")][0]
        sh(["dpkg", "-x", os.path.join(d, deb), PFX])


def build_helpers():
    for src in ("floor", "stdio-sink", "greet"):
        sh(["cc", "-O2", "-o", os.path.join(W, src), os.path.join(HERE, src + ".c")])


def setup_exim(port):
    """exim.conf in W: queue-only reception; a queue run delivers to 127.0.0.1:port."""
    spool = os.path.join(W, "exim-spool")
    os.makedirs(spool, exist_ok=True)
    u = pwd.getpwnam("Debian-exim")
    os.chown(spool, u.pw_uid, u.pw_gid)
    with open(os.path.join(HERE, "exim-bench.conf")) as f:
        conf = f.read().replace("@SPOOL@", spool).replace("@SINKPORT@", str(port))
    path = os.path.join(W, "exim.conf")
    with open(path, "w") as f:
        f.write(conf)
    os.chmod(path, 0o644)
    return ["/usr/sbin/exim4", "-C", path, "-bs", "-odq"], path, spool


# ---------------------------------------------------------------- runners

def bench_py(key, workload, args, cmd, label):
    """One row through bench/bench.py (verified runs, medians); returns its summary."""
    argv = [PY, os.path.join(HERE, "bench.py"), workload] + args + [
        "-r", str(RUNS), "--warmup", str(WARMUP), "--out", JSONL, "--label", label, "--keep-going"]
    if cmd:
        argv += ["--"] + cmd
    log(key, ":", label, f"(load {loadavg()})")
    p = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                       env=dict(ENV, PFX_ROOT=PFX, BENCH_CACHE=os.path.join(W, "cache")))
    if p.returncode != 0:
        log(p.stderr[-1500:])
    with open(JSONL) as f:
        rec = json.loads(f.read().splitlines()[-1])
    s = rec["summary"]
    s["label"] = label
    s["load"] = loadavg()
    s["client"] = rec["client"]
    results[key] = s
    return s


def floor(key, args, label, spool):
    """The floor program RUNS times (after WARMUP); medians of its own timing."""
    vals = []
    log(key, ":", label, f"(load {loadavg()})")
    for i in range(WARMUP + RUNS):
        shutil.rmtree(spool, ignore_errors=True)
        out = subprocess.run([os.path.join(W, "floor")] + args + [spool], capture_output=True, text=True,
                             check=True).stdout.split()
        if i >= WARMUP:
            vals.append((float(out[2]), float(out[3]), float(out[4])))
    shutil.rmtree(spool, ignore_errors=True)
    results[key] = {"label": label, "elapsed_s": stat([v[0] for v in vals]),
                    "msgs_per_s": stat([v[1] for v in vals]), "MiB_per_s": stat([v[2] for v in vals]),
                    "ok_runs": len(vals), "runs": len(vals), "load": loadavg(),
                    "client": "floor " + " ".join(args)}
    return results[key]


def stat(vals):
    vals = [v for v in vals if v is not None]
    if not vals:
        return None
    return {"median": statistics.median(vals), "min": min(vals), "max": max(vals), "n": len(vals)}


def timed(argv, stdin_path, key, label, spool=None, per=1):
    """Run argv < stdin_path > /dev/null RUNS times: wall, user, sys (wait4), peak RSS (GNU time).
    With a spool, every run must leave exactly `per` messages in its queue."""
    log(key, ":", label, f"(load {loadavg()})")
    walls, users, syss, rss = [], [], [], []
    for i in range(WARMUP + RUNS):
        if spool:
            shutil.rmtree(spool, ignore_errors=True)
        tf = os.path.join(W, "time.out")
        with open(stdin_path, "rb") as fin:
            t0 = time.perf_counter()
            p = subprocess.Popen(["/usr/bin/time", "-q", "-o", tf, "-f", "%M"] + argv, stdin=fin,
                                 stdout=subprocess.DEVNULL)
            _, status, ru = os.wait4(p.pid, 0)
            wall = time.perf_counter() - t0
        if status != 0:
            sys.exit(f"{label}: exit status {status}")
        if spool:
            queued = len([e for e in os.listdir(os.path.join(spool, "queue"))
                          if os.path.isfile(os.path.join(spool, "queue", e, "envelope.json"))])
            if queued != per:
                sys.exit(f"{label}: {queued} messages queued, not {per}")
        if i >= WARMUP:
            walls.append(wall)
            users.append(ru.ru_utime)
            syss.append(ru.ru_stime)
            with open(tf) as f:
                rss.append(int(f.read().split()[-1]))
    results[key] = {"label": label, "elapsed_s": stat(walls), "user_s": stat(users), "sys_s": stat(syss),
                    "server_maxrss_kib": stat(rss), "msgs_per_s": stat([per / w for w in walls]),
                    "ok_runs": len(walls), "runs": len(walls), "load": loadavg(),
                    "client": f"{' '.join(argv)} < {os.path.basename(stdin_path)}"}
    return results[key]


def session_file(n, size):
    d = os.path.join(W, "cache")
    os.makedirs(d, exist_ok=True)
    path = os.path.join(d, f"sess-n{n}-s{size}.smtp")
    if not os.path.exists(path):
        sh([PY, os.path.join(HERE, "gen-session.py"), "-n", str(n), "-s", str(size), "-o", path],
           stderr=subprocess.DEVNULL)
    return path


def parse_size(s):
    s = s.upper()
    for suf, m in (("M", 1 << 20), ("K", 1 << 10), ("G", 1 << 30)):
        if s.endswith(suf):
            return int(float(s[:-1]) * m)
    return int(s)


def greet(key, cmd, label, count=200):
    log(key, ":", label, f"(load {loadavg()})")
    meds, mins, maxs = [], [], []
    for i in range(WARMUP + RUNS):
        out = subprocess.run([os.path.join(W, "greet"), str(count)] + cmd, capture_output=True, text=True,
                             check=True).stdout.split()
        if i >= WARMUP:
            meds.append(float(out[0]))
            mins.append(float(out[1]))
            maxs.append(float(out[2]))
    results[key] = {"label": label, "greet_ms": {"median": statistics.median(meds), "min": min(mins),
                                                 "max": max(maxs), "n": len(meds)},
                    "greet_run_medians_ms": meds, "load": loadavg(),
                    "client": f"greet {count} {' '.join(cmd)}"}
    return results[key]


def callgrind(binary, spool_t, sess):
    """Instructions (Ir) per message: the 1000-message session minus a QUIT-only session."""
    def ir(stdin_path):
        shutil.rmtree(spool_t, ignore_errors=True)
        out = os.path.join(W, "callgrind.out")
        with open(stdin_path, "rb") as fin:
            p = subprocess.run(["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", binary,
                                "--spool", spool_t, "--log", "none", "--hostname", "bench.example"],
                               stdin=fin, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        m = re.search(r"Collected : (\d+)", p.stderr)
        return int(m.group(1))
    quit_path = os.path.join(W, "quit.smtp")
    with open(quit_path, "wb") as f:
        f.write(b"EHLO bench.example\r\nQUIT\r\n")
    log("callgrind", f"(load {loadavg()})")
    total, base = ir(sess), ir(quit_path)
    results["callgrind"] = {"total_Ir": total, "startup_Ir": base, "Ir_per_msg": (total - base) / N}


def delivery(binary):
    log("delivery: smtpspool runq", f"(load {loadavg()})")
    vals_one, vals_each = [], []
    for i in range(max(3, RUNS)):
        p = subprocess.run([PY, os.path.join(HERE, "delivery.py"), "--binary", binary, "-n", str(DELIVERY_N)],
                           capture_output=True, text=True)
        if p.returncode != 0:
            notes.append("delivery.py failed: " + p.stderr[-300:])
            return
        m1 = re.search(r"one runq .*?([\d.]+) messages/s", p.stdout)
        m2 = re.search(r"runq ID .*?([\d.]+) messages/s", p.stdout)
        vals_one.append(float(m1.group(1)))
        vals_each.append(float(m2.group(1)))
    results["deliv/ours-one"] = {"label": "smtpspool runq (one process, one connection)",
                                 "msgs_per_s": stat(vals_one), "load": loadavg()}
    results["deliv/ours-each"] = {"label": "smtpspool runq ID (a process and a connection per message)",
                                  "msgs_per_s": stat(vals_each), "load": loadavg()}
    # The amqp transport to a local RabbitMQ against the smtp transport to the
    # sink, both one runq with one connection (bench/amqp.py).
    if not os.path.exists("/usr/lib/rabbitmq/bin/rabbitmq-server"):
        notes.append("amqp.py not run: rabbitmq-server is not installed")
        return
    log("delivery: amqp.py", f"(load {loadavg()})")
    p = subprocess.run([PY, os.path.join(HERE, "amqp.py"), "--binary", binary, "-n", str(DELIVERY_N),
                        "--runs", str(max(3, RUNS))], capture_output=True, text=True)
    if p.returncode != 0:
        notes.append("amqp.py failed: " + p.stderr[-300:])
        return
    for key, pattern, label in (
            ("deliv/ours-amqp", r"^amqp, .*: ([\d.]+) \(([\d.]+)-([\d.]+)\)",
             "smtpspool runq --concurrency 1, amqp route to a local RabbitMQ quorum queue (a confirm per message)"),
            ("deliv/ours-smtp1", r"^smtp, .*: ([\d.]+) \(([\d.]+)-([\d.]+)\)",
             "smtpspool runq --concurrency 1, smtp route to the sink (the same runs)")):
        m = re.search(pattern, p.stdout, re.M)
        if m:
            med_, lo, hi = (float(x) for x in m.groups())
            results[key] = {"label": label, "msgs_per_s": {"median": med_, "min": lo, "max": hi},
                            "load": loadavg()}


def delivery_webhook(binary):
    """The http transport to a local endpoint against the smtp transport to a local sink (bench/webhook.py)."""
    log("delivery: webhook against smtp", f"(load {loadavg()})")
    p = subprocess.run([PY, os.path.join(HERE, "webhook.py"), "--binary", binary, "-n", str(DELIVERY_N),
                        "--runs", str(max(3, RUNS))], capture_output=True, text=True)
    if p.returncode != 0:
        notes.append("webhook.py failed: " + p.stderr[-300:])
        return
    results["deliv/webhook"] = {"lines": [l for l in p.stdout.splitlines() if "messages/s" in l],
                                "load": loadavg()}


def queue_gauges(binary):
    log("queue gauges: bench/queue_stats.py", f"(load {loadavg()})")
    p = subprocess.run([PY, os.path.join(HERE, "queue_stats.py"), "--binary", binary, "-n", str(QUEUE_N),
                        "--dir", W, "--runs", str(RUNS)], capture_output=True, text=True)
    if p.returncode != 0:
        notes.append("queue_stats.py failed: " + p.stderr[-300:])
        return
    results["queue"] = {"table": [l for l in p.stdout.splitlines() if l.startswith("|")], "load": loadavg()}


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


def delivery_exim(exim_cmd, exim_conf, exim_spool, sink_port):
    """exim: queue DELIVERY_N messages (-bs -odq), then one queue run (-qff) to the sink."""
    sess = session_file(DELIVERY_N, 1024)
    vals = []
    log("delivery: exim -qff", f"(load {loadavg()})")
    for i in range(max(3, RUNS)):
        for sub in ("input", "msglog", "db"):
            shutil.rmtree(os.path.join(exim_spool, sub), ignore_errors=True)
        with open(sess, "rb") as fin:
            sh(exim_cmd, stdin=fin, stdout=subprocess.DEVNULL)
        t0 = time.perf_counter()
        sh(["/usr/sbin/exim4", "-C", exim_conf, "-qff"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        # a queue run forks the deliveries; wait until the queue is empty
        inp = os.path.join(exim_spool, "input")
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            left = [f for f in os.listdir(inp) if f.endswith("-H")] if os.path.isdir(inp) else []
            if not left:
                break
            time.sleep(0.01)
        el = time.perf_counter() - t0
        if left:
            notes.append(f"exim queue run left {len(left)} messages")
            return
        vals.append(DELIVERY_N / el)
    results["deliv/exim"] = {"label": "exim -qff (one queue run)", "msgs_per_s": stat(vals), "load": loadavg()}


def delivery_sink(sink_port):
    """The ceiling: the same messages straight from a client to the sink, no queue."""
    sess = session_file(DELIVERY_N, 1024)
    vals = []
    for i in range(max(3, RUNS)):
        p = subprocess.run([PY, os.path.join(HERE, "smtp-drive"), "--session", sess, "--mode", "pipeline",
                            "--quiet", "--tcp", f"127.0.0.1:{sink_port}"], capture_output=True, text=True)
        j = json.loads(p.stdout.strip().splitlines()[-1])
        vals.append(j["msgs_per_s"])
    results["deliv/sink"] = {"label": "client straight to the sink (no queue, pipelined)",
                             "msgs_per_s": stat(vals), "load": loadavg()}


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


# ---------------------------------------------------------------- report

def med(key, field="msgs_per_s"):
    r = results.get(key)
    if not r or not r.get(field):
        return None
    return r[field]["median"]


def spread(s, fmt="{:.0f}"):
    if not s:
        return "-"
    return f"{fmt.format(s['median'])} ({fmt.format(s['min'])}-{fmt.format(s['max'])})"


def ratio(a, b):
    return f"{a / b:.2f}x" if a and b else "-"


def machine():
    cpu = "?"
    with open("/proc/cpuinfo") as f:
        for ln in f:
            if ln.startswith("model name"):
                cpu = ln.split(":", 1)[1].strip()
                break
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / (1 << 30)
    fs = subprocess.run(["findmnt", "-n", "-o", "FSTYPE,OPTIONS", "-T", W], capture_output=True,
                        text=True).stdout.strip()
    with open("/etc/debian_version") as f:
        deb = f.read().strip()
    ver = lambda p: subprocess.run(["dpkg-query", "-W", "-f=${Version}", p], capture_output=True,
                                   text=True).stdout or "?"
    return (f"{os.cpu_count()} vCPU ({cpu}), {mem:.0f} GiB RAM, Debian {deb}, Linux {platform.release()}; "
            f"disk spool in {W}: {fs}; tmpfs spool in {T}. exim {ver('exim4-daemon-light')}, "
            f"ucspi-tcp {ver('ucspi-tcp')}, smtp-source from the unpacked postfix .deb ({postfix_version()}), "
            f"valgrind {ver('valgrind')}, python3-aiosmtpd {ver('python3-aiosmtpd')}")


def postfix_version():
    d = os.path.join(W, "deb")
    debs = [f for f in os.listdir(d) if f.startswith("postfix_")] if os.path.isdir(d) else []
    return debs[0].split("_")[1] if debs else "?"


def write_results(started, load0, binary_desc, end_load, elapsed):
    L = []
    a = L.append
    a("# smtpspool benchmark results\n")
    a(f"Written by `make bench` (bench/run.py) on {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime(started))} (start of the run); "
      f"{RUNS} measured runs after {WARMUP} warm-up per row, medians with (min-max). Every server run is "
      "verified: every message answered 2xx and, where there is a spool, one queue entry per message.\n")
    a(f"**Machine.** {machine()}.\n")
    a(f"**Load** (1/5/15 min) at start: {load0}; at the end: {end_load}; the 1-minute load when each row "
      "started is printed on stderr. The machine is shared (2 cores): compare rows of one run only.\n")
    a(f"**Binary.** {binary_desc}\n")
    a("Servers: **ours** = build/smtpspool --log none --hostname bench.example (plus --max-message-size "
      "1000000000 for the big message); **floor** = bench/floor.c, "
      "the same durable commit per message (mkdir tmp/ID, message.eml + envelope.json each written and "
      "fdatasync'd, fsync tmp/ID, rename into queue/, fsync queue/) with no SMTP; **exim** = exim -bs -odq "
      "with queue_only (bench/exim-bench.conf: 2 files fsync'd + fsync of input/); **sink** = "
      "bench/stdio-sink.c, SMTP with no storage.\n")

    a("## 1. Small messages: one session, %d pipelined 4 KiB messages (blast, spool on disk)\n" % N)
    a("| server | msg/s median (min-max) | wall s | server user+sys CPU s | peak RSS KiB | ours / this |")
    a("|---|---|---|---|---|---|")
    ours = med("small/ours")
    for k in ("small/ours", "small/floor", "small/exim", "small/sink"):
        r = results.get(k)
        if not r:
            continue
        a(f"| {r['label']} | {spread(r['msgs_per_s'])} | {spread(r['elapsed_s'], '{:.3f}')} | "
          f"{spread(r.get('server_cpu_s'), '{:.2f}')} | {spread(r.get('server_maxrss_kib'))} | "
          f"{ratio(ours, med(k)) if k != 'small/ours' else '-'} |")
    a("")
    a("Same session with RFC 2920 pipelining (2 round trips per message) instead of blast:\n")
    a("| server | msg/s median (min-max) | ours / this |")
    a("|---|---|---|")
    for k in ("small-pipe/ours", "small-pipe/exim", "small-pipe/sink"):
        r = results.get(k)
        if r:
            a(f"| {r['label']} | {spread(r['msgs_per_s'])} | "
              f"{ratio(med('small-pipe/ours'), med(k)) if k != 'small-pipe/ours' else '-'} |")
    a("")
    cpu = results.get("cpu/disk"), results.get("cpu/tmpfs")
    cg = results.get("callgrind")
    a("**CPU per message** (same %d x 4 KiB session, stdin from a file, wait4 rusage):\n" % N)
    a("| measure | median (min-max) |")
    a("|---|---|")
    for k, what in (("cpu/disk", "spool on disk"), ("cpu/tmpfs", "spool on tmpfs")):
        r = results.get(k)
        if r:
            us = {x: r["user_s"][x] * 1e6 / N for x in ("median", "min", "max")}
            ss = {x: r["sys_s"][x] * 1e6 / N for x in ("median", "min", "max")}
            a(f"| user CPU per message, {what} | {spread(us, '{:.1f}')} us |")
            a(f"| system CPU per message, {what} | {spread(ss, '{:.1f}')} us |")
    if cg:
        a(f"| callgrind instructions per message (Ir, start-up subtracted) | {cg['Ir_per_msg']:.0f} |")
        a(f"| callgrind instructions of start-up + EHLO + QUIT | {cg['startup_Ir']} |")
    a("")

    a("## 2. One %s message\n" % BIG)
    a("| server | spool | MiB/s median (min-max) | wall s | peak RSS KiB | ours / this |")
    a("|---|---|---|---|---|---|")
    for k, sp in (("big/ours", "disk"), ("big/floor", "disk"), ("big/exim", "disk"), ("big/ours-t", "tmpfs"),
                  ("big/floor-t", "tmpfs"), ("big/sink", "none")):
        r = results.get(k)
        if not r:
            continue
        base = "big/ours-t" if sp == "tmpfs" else "big/ours"
        a(f"| {r['label']} | {sp} | {spread(r['MiB_per_s'])} | {spread(r['elapsed_s'], '{:.3f}')} | "
          f"{spread(r.get('server_maxrss_kib'))} | "
          f"{ratio(med(base, 'MiB_per_s'), med(k, 'MiB_per_s')) if k != base else '-'} |")
    a("")
    a("The rows above go through smtp-drive (a Python client writing into a pipe). The DATA reader alone, "
      "with the session read from a file in the page cache and the spool on tmpfs:\n")
    a("| server | MiB/s median (min-max) | wall s | user s | sys s | peak RSS KiB |")
    a("|---|---|---|---|---|---|")
    bigb = parse_size(BIG)
    for k in ("reader/ours", "reader/sink"):
        r = results.get(k)
        if r:
            mibs = {x: bigb / r["elapsed_s"][y] / (1 << 20) for x, y in (("median", "median"), ("min", "max"),
                                                                        ("max", "min"))}
            a(f"| {r['label']} | {spread(mibs)} | {spread(r['elapsed_s'], '{:.3f}')} | "
              f"{spread(r['user_s'], '{:.3f}')} | {spread(r['sys_s'], '{:.3f}')} | "
              f"{spread(r['server_maxrss_kib'])} |")
    a("")

    a("## 3. Connection cost: %d sequential one-message sessions through tcpserver\n" % M_SESS)
    a("| server | client | sessions/s median (min-max) | wall s | CPU s (all processes) | ours / this |")
    a("|---|---|---|---|---|---|")
    for k, base in (("sess/ours-src", None), ("sess/floor", "sess/ours-src"), ("sess/sink-src", "sess/ours-src"),
                    ("sess/ours-drive", None), ("sess/exim-drive", "sess/ours-drive"),
                    ("sess/sink-drive", "sess/ours-drive")):
        r = results.get(k)
        if not r:
            continue
        client = "smtp-source" if k.endswith("-src") else ("smtp-drive" if k.endswith("-drive") else
                                                           "posix_spawn")
        a(f"| {r['label']} | {client} | {spread(r['msgs_per_s'])} | {spread(r['elapsed_s'], '{:.3f}')} | "
          f"{spread(r.get('server_cpu_s'), '{:.2f}')} | {ratio(med(base), med(k)) if base else '-'} |")
    a("")
    a("Start-up time to the 220 greeting (bench/greet.c: posix_spawn with stdin/stdout on pipes until the "
      "first octet of the greeting; 200 starts per run; median of the run medians, (min-max) of all starts):\n")
    a("| server | ms to 220 | ours / this |")
    a("|---|---|---|")
    for k in ("greet/ours", "greet/ours-static", "greet/exim", "greet/sink"):
        r = results.get(k)
        if r:
            a(f"| {r['label']} | {spread(r['greet_ms'], '{:.3f}')} | "
              f"{ratio(med('greet/ours', 'greet_ms'), med(k, 'greet_ms')) if k != 'greet/ours' else '-'} |")
    a("")

    a("## 4. Concurrency: %d clients in parallel, %d one-message sessions through tcpserver\n" % (CONC, M_CONC))
    a("| server | client | msg/s median (min-max) | wall s | CPU s (all processes) | ours / this |")
    a("|---|---|---|---|---|---|")
    for k, base in (("conc/ours-src", None), ("conc/floor", "conc/ours-src"), ("conc/sink-src", "conc/ours-src"),
                    ("conc/ours-drive", None), ("conc/exim-drive", "conc/ours-drive"),
                    ("conc/sink-drive", "conc/ours-drive")):
        r = results.get(k)
        if not r:
            continue
        client = "smtp-source" if k.endswith("-src") else ("smtp-drive" if k.endswith("-drive") else
                                                           "posix_spawn")
        a(f"| {r['label']} | {client} | {spread(r['msgs_per_s'])} | {spread(r['elapsed_s'], '{:.3f}')} | "
          f"{spread(r.get('server_cpu_s'), '{:.2f}')} | {ratio(med(base), med(k)) if base else '-'} |")
    a("")

    a("## 5. Delivery: queued messages forwarded to a local sink (%d messages of ~1 KiB)\n" % DELIVERY_N)
    a("The sink is aiosmtpd accepting and discarding (bench/delivery.py). The floor is not defined for "
      "delivery; the ceiling is a client sending the same messages straight to the sink.\n")
    a("| sender | msg/s median (min-max) | ours(one runq) / this |")
    a("|---|---|---|")
    for k in ("deliv/ours-one", "deliv/ours-each", "deliv/exim", "deliv/sink", "deliv/ours-smtp1",
              "deliv/ours-amqp"):
        r = results.get(k)
        if r:
            a(f"| {r['label']} | {spread(r['msgs_per_s'], '{:.1f}')} | "
              f"{ratio(med('deliv/ours-one'), med(k)) if k != 'deliv/ours-one' else '-'} |")
    a("")
    r = results.get("deliv/webhook")
    if r:
        a("The same messages by the http transport to a local endpoint (Python http.server, HTTP/1.1, "
          "answering 204) against the smtp transport to the sink, one runq each, interleaved "
          "(bench/webhook.py):\n")
        a("```")
        for line in r["lines"]:
            a(line)
        a("```\n")

    r = results.get("queue")
    if r:
        a("## 6. The queue's gauges and shape: %d queued messages (bench/queue_stats.py)\n" % QUEUE_N)
        a("One process per command, reading every envelope once (page cache warm, as for a timer every "
          "minute); a tenth of the messages held, a third deferred, 1-3 recipients in five domains. CPU is "
          "the process's user + system time.\n")
        L.extend(r["table"])
        a("")

    # targets
    a("## Targets (issue 6)\n")
    a("| target | measured | met |")
    a("|---|---|---|")

    def row(what, val, ok):
        a(f"| {what} | {val} | {'yes' if ok else 'no'} |")
    o, f_, e = med("small/ours"), med("small/floor"), med("small/exim")
    if o and f_:
        row("small messages >= 0.9 x floor msg/s", f"{o:.0f} / {f_:.0f} = {o / f_:.2f}", o >= 0.9 * f_)
    if o and e:
        row("small messages >= 2 x exim -bs", f"{o:.0f} / {e:.0f} = {o / e:.2f}", o >= 2 * e)
    r = results.get("reader/ours")
    if r:
        g = bigb / r["elapsed_s"]["median"] / (1 << 30)
        row("big message >= 1 GiB/s through the DATA reader (tmpfs)", f"{g:.2f} GiB/s", g >= 1)
    rss = max([results[k]["server_maxrss_kib"]["max"] for k in ("big/ours", "big/ours-t", "reader/ours")
               if k in results and results[k].get("server_maxrss_kib")] or [0])
    if rss:
        row("peak RSS <= 8 MiB (100 MiB message)", f"{rss} KiB max", rss <= 8192)
    go, gs = med("greet/ours", "greet_ms"), med("greet/sink", "greet_ms")
    if go and gs:
        row("start-up to greeting <= 1 ms median", f"{go:.3f} ms", go <= 1)
        row("start-up <= 3 x the C sink's", f"{go:.3f} / {gs:.3f} = {go / gs:.2f}", go <= 3 * gs)
    c = results.get("cpu/disk")
    if c:
        u = c["user_s"]["median"] * 1e6 / N
        row("user CPU per 4 KiB message <= 20 us (spool on disk)", f"{u:.1f} us", u <= 20)
    a("")
    gst = med("greet/ours-static", "greet_ms")
    if go and go > 1 and gst:
        a(f"Start-up, measured: {go:.3f} ms as built against {gst:.3f} ms for the same objects linked with "
          "static libstdc++, libgcc and Boost: most of the difference is the dynamic loader mapping and "
          "relocating libstdc++ and libboost_program_options (LD_DEBUG=statistics: ~2200 relocations; "
          "callgrind: ~2.2 M of the ~2.7 M start-up instructions are in ld.so). That is a link-flag change "
          "in the Makefile's build rule, not a code change.\n")
    a("Load (1/5/15 min) when each row finished: " + "; ".join(
        f"{k} {v['load']}" for k, v in results.items() if isinstance(v, dict) and v.get("load")) + ".\n")
    if notes:
        a("## Notes from this run\n")
        for n_ in notes:
            a(f"- {n_}")
        a("")
    a(f"Total time of the suite: {elapsed:.0f} s. Per-run records: bench/results.jsonl "
      "(rows of bench.py) and the log on stderr.\n")
    with open(os.path.join(HERE, "RESULTS.md"), "w") as f:
        f.write("\n".join(L))
    log("wrote", os.path.join(HERE, "RESULTS.md"))


# ---------------------------------------------------------------- main

def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--binary", default=os.path.join(ROOT, "build", "smtpspool"))
    ap.add_argument("--only", default="small big sessions greet concurrent delivery cpu queue parallel",
                    help="space-separated subset of: small big sessions greet concurrent delivery cpu queue parallel")
    ap.add_argument("--report-only", action="store_true",
                    help="rewrite RESULTS.md from the last run's results (BENCH_WORK/results.json)")
    a = ap.parse_args()
    only = set(a.only.split())
    started, load0 = time.time(), loadavg()
    if a.report_only:
        with open(os.path.join(W, "results.json")) as f:
            saved = json.load(f)
        results.update(saved["results"])
        notes.extend(saved["notes"])
        write_results(saved["started"], saved["load0"], saved["binary_desc"], saved["end_load"],
                      saved["elapsed"])
        return
    binary = os.path.abspath(a.binary)
    for d in (W, T):
        os.makedirs(d, exist_ok=True)
        os.chmod(d, 0o755)
    install()
    build_helpers()
    if os.path.exists(JSONL):
        os.unlink(JSONL)
    sink_port = free_port()
    exim, exim_conf, exim_spool = setup_exim(sink_port)
    sinkbin = os.path.join(W, "stdio-sink")
    ours = lambda sp: [binary, "--spool", sp, "--log", "none", "--hostname", "bench.example"]
    # the default --max-message-size (20000000) would refuse the big message
    ours_big = lambda sp: ours(sp) + ["--max-message-size", "1000000000"]
    sp_d, sp_t = os.path.join(W, "spool"), os.path.join(T, "spool")
    cnt = ["--count", "queue/*/envelope.json"]
    ex = ["--spool", exim_spool, "--count", "input/*-H"]
    sess = session_file(N, SIZE)
    binary_desc = (f"{binary} ({subprocess.run(['git', '-C', ROOT, 'rev-parse', '--short', 'HEAD'], capture_output=True, text=True).stdout.strip() or '?'}"
                   f"{', uncommitted changes' if subprocess.run(['git', '-C', ROOT, 'status', '--porcelain', 'src'], capture_output=True, text=True).stdout.strip() else ''}), "
                   "built by `make` (-O2).")

    if "small" in only:
        bench_py("small/ours", "stdio-pipelined", ["-n", str(N), "-s", str(SIZE), "--mode", "blast",
                 "--spool", sp_d] + cnt, ours("{spool}"), "smtpspool")
        floor("small/floor", [str(N), str(SIZE)], "floor.c (durable commit, no SMTP)", sp_d)
        bench_py("small/exim", "stdio-pipelined", ["-n", str(N), "-s", str(SIZE), "--mode", "blast"] + ex,
                 exim, "exim -bs -odq")
        bench_py("small/sink", "stdio-pipelined", ["-n", str(N), "-s", str(SIZE), "--mode", "blast"],
                 [sinkbin], "stdio-sink.c (no storage)")
        bench_py("small-pipe/ours", "stdio-pipelined", ["-n", str(N), "-s", str(SIZE), "--mode", "pipeline",
                 "--spool", sp_d] + cnt, ours("{spool}"), "smtpspool")
        bench_py("small-pipe/exim", "stdio-pipelined", ["-n", str(N), "-s", str(SIZE), "--mode", "pipeline"] + ex,
                 exim, "exim -bs -odq")
        bench_py("small-pipe/sink", "stdio-pipelined", ["-n", str(N), "-s", str(SIZE), "--mode", "pipeline"],
                 [sinkbin], "stdio-sink.c (no storage)")
    if "cpu" in only:
        timed(ours(sp_d), sess, "cpu/disk", "smtpspool, spool on disk", spool=sp_d, per=N)
        timed(ours(sp_t), sess, "cpu/tmpfs", "smtpspool, spool on tmpfs", spool=sp_t, per=N)
        callgrind(binary, sp_t, sess)
    if "big" in only:
        big = ["-s", BIG]
        bigb = parse_size(BIG)
        bench_py("big/ours", "big-message", big + ["--spool", sp_d] + cnt, ours_big("{spool}"), "smtpspool")
        floor("big/floor", ["1", str(bigb)], "floor.c", sp_d)
        bench_py("big/exim", "big-message", big + ex, exim, "exim -bs -odq")
        bench_py("big/ours-t", "big-message", big + ["--spool", sp_t] + cnt, ours_big("{spool}"), "smtpspool")
        floor("big/floor-t", ["1", str(bigb)], "floor.c", sp_t)
        bench_py("big/sink", "big-message", big, [sinkbin], "stdio-sink.c (no storage)")
        bigsess = session_file(1, bigb)
        # the session file is read from the page cache; copy it to tmpfs so no disk read is timed
        tsess = os.path.join(T, "big.smtp")
        shutil.copyfile(bigsess, tsess)
        timed(ours_big(sp_t), tsess, "reader/ours", "smtpspool (stdin: file, spool: tmpfs)", spool=sp_t, per=1)
        timed([sinkbin], tsess, "reader/sink", "stdio-sink.c (stdin: file)")
        os.unlink(tsess)
    if "sessions" in only:
        m = ["-m", str(M_SESS), "-s", str(SIZE)]
        bench_py("sess/ours-src", "sessions", m + ["--client", "smtp-source", "--spool", sp_d] + cnt,
                 ours("{spool}"), "smtpspool")
        floor("sess/floor", ["-e", str(M_SESS), str(SIZE)], "floor.c -e (a process per message)", sp_d)
        bench_py("sess/sink-src", "sessions", m + ["--client", "smtp-source"], [sinkbin],
                 "stdio-sink.c (no storage)")
        bench_py("sess/ours-drive", "sessions", m + ["--client", "smtp-drive", "--spool", sp_d] + cnt,
                 ours("{spool}"), "smtpspool")
        bench_py("sess/exim-drive", "sessions", m + ["--client", "smtp-drive"] + ex, exim, "exim -bs -odq")
        bench_py("sess/sink-drive", "sessions", m + ["--client", "smtp-drive"], [sinkbin],
                 "stdio-sink.c (no storage)")
    if "greet" in only:
        greet("greet/ours", ours(sp_t), "smtpspool (as built)")
        static = os.path.join(W, "smtpspool-static-libs")
        r = subprocess.run(["g++", "-o", static, os.path.join(ROOT, "build/obj/main.o"),
                            os.path.join(ROOT, "build/libsmtpspool.a"), "-static-libstdc++", "-static-libgcc",
                            "-Wl,-Bstatic", "-lboost_program_options", "-Wl,-Bdynamic"], capture_output=True)
        if r.returncode == 0:
            greet("greet/ours-static", [static] + ours(sp_t)[1:],
                  "smtpspool linked with -static-libstdc++ -static-libgcc and static Boost (same objects)")
        greet("greet/exim", exim, "exim -bs -odq", count=50)
        greet("greet/sink", [sinkbin], "stdio-sink.c")
    if "concurrent" in only:
        m = ["-m", str(M_CONC), "-c", str(CONC), "-s", str(SIZE)]
        bench_py("conc/ours-src", "concurrent", m + ["--client", "smtp-source", "--spool", sp_d] + cnt,
                 ours("{spool}"), "smtpspool")
        floor("conc/floor", ["-p", str(CONC), "-e", str(M_CONC), str(SIZE)],
              f"floor.c -p {CONC} -e (a process per message)", sp_d)
        bench_py("conc/sink-src", "concurrent", m + ["--client", "smtp-source"], [sinkbin],
                 "stdio-sink.c (no storage)")
        bench_py("conc/ours-drive", "concurrent", m + ["--client", "smtp-drive", "--spool", sp_d] + cnt,
                 ours("{spool}"), "smtpspool")
        bench_py("conc/exim-drive", "concurrent", m + ["--client", "smtp-drive"] + ex, exim, "exim -bs -odq")
        bench_py("conc/sink-drive", "concurrent", m + ["--client", "smtp-drive"], [sinkbin],
                 "stdio-sink.c (no storage)")
    if "queue" in only:
        queue_gauges(binary)
    if "delivery" in only:
        delivery(binary)
        delivery_webhook(binary)
        sink = subprocess.Popen([PY, "-c", SINK, str(sink_port)], stdout=subprocess.PIPE)
        try:
            if sink.stdout.readline().strip() == b"ready":
                delivery_exim(exim, exim_conf, exim_spool, sink_port)
                delivery_sink(sink_port)
            else:
                notes.append("the aiosmtpd sink for exim did not start")
        finally:
            sink.kill()
            sink.wait()
    saved = {"results": results, "notes": notes, "started": started, "load0": load0,
             "binary_desc": binary_desc, "end_load": loadavg(), "elapsed": time.time() - started}
    with open(os.path.join(W, "results.json"), "w") as f:
        json.dump(saved, f, indent=1)
    write_results(started, load0, binary_desc, saved["end_load"], saved["elapsed"])
    shutil.rmtree(T, ignore_errors=True)
    if "parallel" in only:
        # Its own section of RESULTS.md (bench/parallel.py writes it).
        log("parallel: bench/parallel.py", f"(load {loadavg()})")
        p = subprocess.run([PY, os.path.join(HERE, "parallel.py"), "--binary", binary, "--runs", str(max(3, RUNS)),
                            "--results", os.path.join(HERE, "RESULTS.md")], capture_output=True, text=True)
        if p.returncode != 0:
            log("parallel.py failed:", p.stderr[-1500:])


if __name__ == "__main__":
    main()
