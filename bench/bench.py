#!/usr/bin/python3
"""bench.py - run one SMTP receiver workload several times; report medians.

Called by bench/run.py (make bench) once per row; usable alone as well:

    bench/bench.py WORKLOAD [options] -- CMD [ARGS...]   stdio server (inetd style)
    bench/bench.py WORKLOAD [options] --tcp HOST:PORT    already-listening TCP server

Workloads (defaults in brackets):
  stdio-pipelined  one session: EHLO, N x (MAIL/RCPT/DATA/body/.), QUIT
                   -n N [1000]  -s SIZE [4096]  --mode blast|pipeline|lockstep [blast]
  big-message      one session, one message of SIZE
                   -s SIZE [100M]  --mode [pipeline]
  sessions         M sequential sessions of one message each
                   -m M [500]  -s SIZE [4096]  --client smtp-source|smtp-drive [smtp-source]
  concurrent       M messages over C parallel sessions, one message per session
                   -m M [2000]  -c C [20]  -s SIZE [4096]  --client ...

For sessions/concurrent a stdio CMD is put behind
`tcpserver -q -R -H -D -l localhost 127.0.0.1 PORT CMD...` (ucspi-tcp), i.e.
one process per connection, exactly like inetd.

Each run: empty --spool DIR, run --prepare, run the client, check that
every message was accepted (client replies) and, with --spool, that
exactly as many files match --count GLOB under DIR as messages were sent.
"""
import argparse
import glob
import json
import os
import platform
import shlex
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
PY = os.environ.get("BENCH_PYTHON", "/usr/bin/python3")
CACHE = os.environ.get("BENCH_CACHE", os.path.join(os.environ.get("TMPDIR", "/tmp"), "smtp-bench-cache"))
PFX_ROOT = os.environ.get("PFX_ROOT", "/opt/pfx")

DEFAULTS = {
    "stdio-pipelined": dict(n=1000, size="4096", mode="blast"),
    "big-message": dict(n=1, size="100M", mode="pipeline"),
    "sessions": dict(m=500, size="4096", c=1),
    "concurrent": dict(m=2000, size="4096", c=20),
}


def parse_size(s):
    s = str(s).strip().upper()
    mult = 1
    for suf, m in (("KIB", 1 << 10), ("MIB", 1 << 20), ("GIB", 1 << 30),
                   ("K", 1 << 10), ("M", 1 << 20), ("G", 1 << 30)):
        if s.endswith(suf):
            s, mult = s[: -len(suf)], m
            break
    return int(float(s) * mult)


def log(*a):
    print("[bench]", *a, file=sys.stderr, flush=True)


def session_file(n, size):
    os.makedirs(CACHE, exist_ok=True)
    path = os.path.join(CACHE, f"sess-n{n}-s{size}.smtp")
    if not os.path.exists(path):
        subprocess.run([PY, os.path.join(HERE, "gen-session.py"), "-n", str(n), "-s", str(size),
                        "-o", path], check=True)
    return path


def find_smtp_source():
    env = dict(os.environ)
    p = os.environ.get("SMTP_SOURCE") or shutil.which("smtp-source")
    if not p:
        cand = os.path.join(PFX_ROOT, "usr/sbin/smtp-source")
        if os.path.exists(cand):
            p = cand
            lib = os.path.join(PFX_ROOT, "usr/lib/postfix")
            env["LD_LIBRARY_PATH"] = lib + ((":" + env["LD_LIBRARY_PATH"]) if env.get("LD_LIBRARY_PATH") else "")
    if not p:
        sys.exit("smtp-source not found: set SMTP_SOURCE or PFX_ROOT (bench/run.py unpacks it)")
    return p, env


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_listening(port, pid=None, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pid is not None:
            try:
                wpid, _ = os.waitpid(pid, os.WNOHANG)
                if wpid:
                    sys.exit("tcpserver exited early")
            except ChildProcessError:
                pass
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    sys.exit(f"nothing listening on 127.0.0.1:{port}")


def proc_cpu(pid, children=True):
    """utime+stime (+ reaped children) of pid, in seconds."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        tck = os.sysconf("SC_CLK_TCK")
        ut, st, cut, cst = (int(fields[i]) for i in (11, 12, 13, 14))
        return (ut + st + ((cut + cst) if children else 0)) / tck
    except (OSError, IndexError, ValueError):
        return None


def wait_no_children(pid, timeout=10.0):
    deadline = time.monotonic() + timeout
    path = f"/proc/{pid}/task/{pid}/children"
    while time.monotonic() < deadline:
        try:
            with open(path) as f:
                if not f.read().strip():
                    return True
        except OSError:
            return False
        time.sleep(0.01)
    return False


def proc_hwm_kib(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for ln in f:
                if ln.startswith("VmHWM:"):
                    return int(ln.split()[1])
    except OSError:
        pass
    return None


def clean_spool(d):
    real = os.path.realpath(d)
    if real in ("/", os.path.realpath(os.path.expanduser("~")), "/tmp", "/var", "/usr", "/etc"):
        sys.exit(f"refusing to empty {real}")
    # Remove and recreate the directory itself (same owner and mode): emptying it
    # is not enough, an ext4 directory never shrinks and a spool dir that once held
    # many entries makes later runs measurably slower.
    if not os.path.isdir(d):
        os.makedirs(d)
        return
    st = os.stat(d)
    for attempt in range(20):  # a server process may still be finishing a write
        try:
            shutil.rmtree(d)
            break
        except OSError:
            if attempt == 19:
                raise
            time.sleep(0.1)
    os.mkdir(d)
    os.chown(d, st.st_uid, st.st_gid)
    os.chmod(d, st.st_mode & 0o7777)


def count_spool(d, pattern):
    return len([p for p in glob.glob(os.path.join(d, pattern)) if os.path.isfile(p)])


def stats(vals):
    vals = [v for v in vals if v is not None]
    if not vals:
        return None
    return {"median": statistics.median(vals), "min": min(vals), "max": max(vals), "n": len(vals)}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("workload", choices=sorted(DEFAULTS))
    ap.add_argument("-n", type=int, help="messages in the session (stdio-pipelined)")
    ap.add_argument("-m", type=int, help="messages = sessions (sessions, concurrent)")
    ap.add_argument("-c", type=int, help="parallel sessions (concurrent)")
    ap.add_argument("-s", "--size", help="message size: 4096, 4K, 100M ...")
    ap.add_argument("--mode", choices=("blast", "pipeline", "lockstep"),
                    help="smtp-drive mode (stdio-pipelined default blast; others pipeline)")
    ap.add_argument("--client", choices=("smtp-source", "smtp-drive"), default="smtp-source",
                    help="client for sessions/concurrent")
    ap.add_argument("-r", "--runs", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=1, help="unmeasured runs first")
    ap.add_argument("--spool", help="scratch spool dir: EMPTIED before every run; {spool} in CMD -> this")
    ap.add_argument("--count", default="*.json",
                    help="glob under --spool, one match per accepted message ['*.json'; exim: 'input/*-H']")
    ap.add_argument("--prepare", help="shell command run before every run (after emptying the spool)")
    ap.add_argument("--tcp", metavar="HOST:PORT", help="target an already-running TCP server")
    ap.add_argument("--server-pid", type=int, help="pid of that TCP server: report its CPU and VmHWM")
    ap.add_argument("--tcpserver-opts", default="-q -R -H -D -l localhost",
                    help="options for tcpserver wrapping a stdio CMD")
    ap.add_argument("--label", help="row name in results (default: basename of CMD or the tcp target)")
    ap.add_argument("--out", default=os.path.join(HERE, "results", "results.jsonl"),
                    help="append one JSON record here")
    ap.add_argument("--timeout", type=float, default=600)
    ap.add_argument("--keep-going", action="store_true", help="do not stop at the first failed run")
    argv = sys.argv[1:]
    cmd = []
    if "--" in argv:
        k = argv.index("--")
        argv, cmd = argv[:k], argv[k + 1:]
    a = ap.parse_args(argv)
    if bool(cmd) == bool(a.tcp):
        ap.error("give exactly one target: --tcp HOST:PORT or -- CMD ARGS")
    if a.tcp and a.tcp.rpartition(":")[0].strip("[]") not in ("127.0.0.1", "localhost", "::1"):
        ap.error("--tcp must be a loopback address")
    d = DEFAULTS[a.workload]
    size = parse_size(a.size or d["size"])
    wl = a.workload

    spool = a.spool
    if cmd and any("{spool}" in x for x in cmd) and not spool:
        import tempfile
        spool = tempfile.mkdtemp(prefix="smtp-bench-spool.")
    if spool:
        spool = os.path.abspath(spool)
        cmd = [x.replace("{spool}", spool) for x in cmd]
    count_glob = None if (not spool or a.count in ("", "none")) else a.count
    label = a.label or (os.path.basename(cmd[0]) if cmd else a.tcp)

    drive = [PY, os.path.join(HERE, "smtp-drive")]
    tcpserver_pid = None
    target_desc = " ".join(shlex.quote(x) for x in cmd) if cmd else a.tcp
    client_argv = None
    client_env = None
    nmsgs = None
    params = {}

    if wl in ("stdio-pipelined", "big-message"):
        n = a.n or d["n"] if wl == "stdio-pipelined" else 1
        mode = a.mode or d["mode"]
        sess = session_file(n, size)
        nmsgs = n
        params = {"n": n, "size": size, "mode": mode}
        client_argv = drive + ["--session", sess, "--mode", mode, "--quiet", "--timeout", str(a.timeout)]
        client_argv += (["--tcp", a.tcp] if a.tcp else ["--"] + cmd)
    else:
        m = a.m or d["m"]
        c = a.c or d["c"]
        if wl == "sessions" and a.c is None:
            c = 1
        nmsgs = m
        params = {"m": m, "c": c, "size": size, "client": a.client}
        if a.tcp:
            host, port = a.tcp.rpartition(":")[0].strip("[]"), int(a.tcp.rpartition(":")[2])
        else:
            host, port = "127.0.0.1", free_port()
            ts = ["tcpserver"] + shlex.split(a.tcpserver_opts) + ["-c", str(max(40, c + 5)), "-b", "256",
                                                                  host, str(port)] + cmd
            log("starting:", " ".join(shlex.quote(x) for x in ts))
            tsp = subprocess.Popen(ts)
            tcpserver_pid = tsp.pid
            wait_listening(port, tcpserver_pid)
            target_desc = " ".join(shlex.quote(x) for x in ts)
        if a.client == "smtp-source":
            src, client_env = find_smtp_source()
            client_argv = [src, "-s", str(c), "-m", str(m), "-l", str(size), "-M", "bench.example",
                           "-f", "sender@bench.example", "-t", "rcpt@bench.example", f"{host}:{port}"]
        else:
            mode = a.mode or "pipeline"
            params["mode"] = mode
            sess = session_file(1, size)
            client_argv = drive + ["--session", sess, "--mode", mode, "--quiet", "--timeout", str(a.timeout),
                                   "--sessions", str(m), "--parallel", str(c), "--tcp", f"{host}:{port}"]

    log(f"{wl} {params} target: {target_desc}")
    log("client:", " ".join(shlex.quote(x) for x in client_argv))
    runs = []
    failures = 0
    try:
        for i in range(a.warmup + a.runs):
            measured = i >= a.warmup
            if spool:
                clean_spool(spool)
            if a.prepare:
                subprocess.run(a.prepare, shell=True, check=True)
            cpu_pid = tcpserver_pid or a.server_pid
            cpu0 = proc_cpu(cpu_pid) if cpu_pid else None
            t0 = time.perf_counter()
            p = subprocess.run(client_argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               env=client_env, timeout=a.timeout + 30)
            wall = time.perf_counter() - t0
            if tcpserver_pid:
                wait_no_children(tcpserver_pid)  # all per-connection processes done and reaped
            elif cpu_pid:
                time.sleep(0.05)
            cpu1 = proc_cpu(cpu_pid) if cpu_pid else None
            rec = {"run": i, "warmup": not measured, "client_exit": p.returncode, "wall_s": round(wall, 6)}
            accepted = None
            if client_argv[:2] == drive:
                try:
                    j = json.loads(p.stdout.decode().strip().splitlines()[-1])
                except (ValueError, IndexError):
                    j = {}
                rec["elapsed_s"] = j.get("elapsed_s", wall)
                accepted = j.get("accepted")
                for k in ("server_user_s", "server_sys_s", "server_maxrss_kib", "greeting_s",
                          "driver_cpu_s", "mode_effective", "session_s_median", "errors"):
                    if k in j:
                        rec[k] = j[k]
            else:
                rec["elapsed_s"] = round(wall, 6)
                accepted = nmsgs if p.returncode == 0 else None
                if p.returncode != 0:
                    rec["errors"] = [p.stderr.decode(errors="replace").strip()[-300:]]
            if cpu0 is not None and cpu1 is not None:
                rec["server_cpu_s"] = round(cpu1 - cpu0, 3)
            if a.server_pid:
                rec["server_vmhwm_kib"] = proc_hwm_kib(a.server_pid)
            rec["accepted"] = accepted
            if count_glob:
                rec["spooled"] = count_spool(spool, count_glob)
            ok = p.returncode == 0 and accepted == nmsgs and (not count_glob or rec["spooled"] == nmsgs)
            rec["ok"] = ok
            el = rec["elapsed_s"]
            rec["msgs_per_s"] = round(nmsgs / el, 2) if el else None
            rec["MiB_per_s"] = round(nmsgs * size / el / (1 << 20), 3) if el else None
            extra = ""
            if "server_maxrss_kib" in rec:
                extra += f" rss={rec['server_maxrss_kib']}KiB"
            if "server_cpu_s" in rec or "server_user_s" in rec:
                scpu = rec.get("server_cpu_s", (rec.get("server_user_s", 0) + rec.get("server_sys_s", 0)))
                extra += f" server_cpu={scpu:.2f}s"
            log(f"{'run' if measured else 'warmup'} {i}: {el:.3f}s {rec['msgs_per_s']} msg/s "
                f"{rec['MiB_per_s']} MiB/s accepted={accepted}/{nmsgs}"
                + (f" spooled={rec['spooled']}" if count_glob else "") + extra
                + ("" if ok else f"  FAILED {rec.get('errors', '')} {p.stderr.decode(errors='replace')[-300:]}"))
            if not ok:
                failures += 1
                if not a.keep_going:
                    if measured:
                        runs.append(rec)
                    log("stopping at the first failed run (use --keep-going to continue)")
                    break
            if measured:
                runs.append(rec)
    finally:
        if tcpserver_pid:
            try:
                os.kill(tcpserver_pid, signal.SIGTERM)
                os.waitpid(tcpserver_pid, 0)
            except (ProcessLookupError, ChildProcessError):
                pass

    good = [r for r in runs if r["ok"]]
    summ = {
        "elapsed_s": stats([r["elapsed_s"] for r in good]),
        "msgs_per_s": stats([r["msgs_per_s"] for r in good]),
        "MiB_per_s": stats([r["MiB_per_s"] for r in good]),
        "server_cpu_s": stats([r.get("server_cpu_s", (r["server_user_s"] + r["server_sys_s"])
                                     if "server_user_s" in r else None) for r in good]),
        "server_maxrss_kib": stats([r.get("server_maxrss_kib") or r.get("server_vmhwm_kib") for r in good]),
        "ok_runs": len(good), "runs": len(runs), "failures_incl_warmup": failures,
    }
    repro = "bench/bench.py " + wl + " " + " ".join(
        shlex.quote(x) for x in sys.argv[2:])
    record = {
        "workload": wl, "label": label, "params": params, "target": target_desc,
        "client": " ".join(shlex.quote(x) for x in client_argv), "rerun": repro,
        "spool_count": count_glob, "summary": summ, "runs": runs,
        "host": {"nproc": os.cpu_count(), "kernel": platform.release()},
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    if a.out:
        os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
        with open(a.out, "a") as f:
            f.write(json.dumps(record) + "\n")
    e, r = summ["elapsed_s"], summ["msgs_per_s"]
    if e:
        print(f"{label}\t{wl}\t{params}\tmedian {e['median']:.3f}s (min {e['min']:.3f} max {e['max']:.3f}, "
              f"{e['n']} runs)\t{r['median']:.1f} msg/s\t{summ['MiB_per_s']['median']:.2f} MiB/s"
              + (f"\trss {summ['server_maxrss_kib']['median']} KiB" if summ["server_maxrss_kib"] else ""))
    else:
        print(f"{label}\t{wl}\tALL RUNS FAILED")
    sys.exit(0 if len(good) == len(runs) and runs else 1)


if __name__ == "__main__":
    main()
