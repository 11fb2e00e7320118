#!/usr/bin/env python3
"""Runs the session transcripts in this directory against the real binary.

Usage: run.py [-j JOBS] [--hold-factor F] BINARY DIR [NAME...]

-j: JOBS transcripts at a time. --hold-factor: "! hold" times F, for a slow
binary (valgrind): a hold ends as soon as the binary exits, so a longer one
costs only when the binary fails to end the session itself.

Each transcript is sent through a pipe to `BINARY --spool TMP --hostname
mx.test --log stderr`, as a local client (with --log-format logfmt) and, with
the UCSPI variables of tcpserver set, as a network client (--log-format json),
unless "! mode" limits it. Its replies, every line of its log (parsed in its
format: smtpspool(8), LOGGING) and the spool it leaves are then checked. The
format is in tests/sessions/README.
"""
import concurrent.futures
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from testlib import clean_env, parse_log, queued  # noqa: E402

# The log format of each mode: the whole tier's logs are read in both.
LOG_FORMAT = {"local": "logfmt", "network": "json"}
NETWORK_ENV = {"TCPREMOTEIP": "192.0.2.7", "TCPREMOTEPORT": "41000", "TCPLOCALIP": "192.0.2.1",
               "TCPLOCALPORT": "25", "PROTO": "TCP"}


def unescape(text):
    return text.encode("utf-8").decode("unicode_escape").encode("latin-1")


class Failure(Exception):
    pass


def parse(path):
    t = {"modes": ["local", "network"], "options": [], "env": {}, "input": b"", "expect": [],
         "checks": [], "hold": 0.0, "status": 0}
    with open(path, encoding="utf-8") as f:
        for lineno, raw in enumerate(f, 1):
            line = raw.rstrip("\n")
            if not line.strip() or line.startswith("#"):
                continue
            op, _, arg = line.partition(" ")
            where = f"{os.path.basename(path)}:{lineno}"
            if op == "!":
                key, _, value = arg.partition(" ")
                if key == "mode":
                    t["modes"] = ["local", "network"] if value == "both" else [value]
                elif key == "option":
                    here = os.path.dirname(os.path.abspath(path))
                    t["options"].append(value.replace("{here}", here))
                elif key == "env":
                    name, _, v = value.partition("=")
                    t["env"][name] = v
                elif key == "hold":
                    t["hold"] = float(value)
                elif key == "status":
                    t["status"] = int(value)
                else:
                    raise SystemExit(f"{where}: unknown directive {key}")
            elif op == "->":
                t["input"] += arg.encode("utf-8") + b"\r\n"
            elif op == "~>":
                t["input"] += unescape(arg)
            elif op == "*>":
                count, _, text = arg.partition(" ")
                raw = unescape(text)
                t["input"] += b"".join(raw.replace(b"{n}", str(i).encode()) for i in range(int(count)))
            elif op == "<=":
                count, _, text = arg.partition(" ")
                t["expect"].extend([("<-", text, f"{os.path.basename(path)}:{lineno}")] * int(count))
            elif op in ("<-", "<~", "<*"):
                t["expect"].append((op, arg, where))
            elif op == "=":
                t["checks"].append((arg, where))
            else:
                raise SystemExit(f"{where}: unknown line {line!r}")
    return t


def run(binary, t, mode, spool):
    env = clean_env()
    if mode == "network":
        env.update(NETWORK_ENV)
    env.update(t["env"])
    args = [binary, "--spool", spool, "--hostname", "mx.test", "--log", "stderr",
            "--log-format", LOG_FORMAT[mode]] + t["options"]
    proc = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    out, err = [], []

    def feed():
        # Written from a thread while replies are read, so that neither side
        # can fill a pipe and wait for the other (pipelining at any volume).
        try:
            proc.stdin.write(t["input"])
            proc.stdin.flush()
        except BrokenPipeError:
            pass
        if t["hold"]:
            deadline = time.monotonic() + t["hold"]
            while proc.poll() is None and time.monotonic() < deadline:
                time.sleep(0.05)
        try:
            proc.stdin.close()
        except BrokenPipeError:
            pass

    threads = [threading.Thread(target=feed),
               threading.Thread(target=lambda: out.append(proc.stdout.read())),
               threading.Thread(target=lambda: err.append(proc.stderr.read()))]
    for th in threads:
        th.start()
    for th in threads:
        th.join(timeout=120)
    proc.wait(timeout=30)
    return proc.returncode, out[0] if out else b"", err[0] if err else b""


def pointer(doc, path):
    for part in path.strip("/").split("/"):
        if part == "":
            continue
        doc = doc[int(part)] if isinstance(doc, list) else doc[part]
    return doc


def check(t, status, out, err, spool, mode):
    # Standard error holds nothing but log lines, each well-formed.
    try:
        events = parse_log(err, LOG_FORMAT[mode])
    except ValueError as e:
        raise Failure(f"log ({LOG_FORMAT[mode]}): {e}")
    if not events or events[0][0] not in ("connect", "proxy", "proxy-refused", "client-denied", "rate-limited"):
        if not (events and events[0][0] == "spool-error"):
            raise Failure(f"the log does not start with the session: {err[:300]!r}")
    lines = out.split(b"\r\n")
    if lines[-1] != b"":
        raise Failure(f"output does not end with CRLF: {out[-80:]!r}")
    lines = lines[:-1]
    for line in lines:
        if len(line) + 2 > 512 or not re.match(rb"^[2-5][0-9][0-9][ -]", line):
            raise Failure(f"malformed reply line {line!r}")
    pos = 0
    for op, arg, where in t["expect"]:
        want = arg.encode("utf-8")
        if op == "<*":
            while pos < len(lines) and lines[pos][3:4] == b"-":
                pos += 1
        if pos >= len(lines):
            raise Failure(f"{where}: expected {arg!r}, but the replies ended")
        got = lines[pos]
        ok = re.fullmatch(want, got) if op == "<~" else got.startswith(want)
        if not ok:
            raise Failure(f"{where}: expected {arg!r}, got {got.decode('utf-8', 'replace')!r}")
        pos += 1
    if pos != len(lines):
        raise Failure(f"unexpected further replies: {[l.decode('utf-8', 'replace') for l in lines[pos:]]}")
    if status != t["status"]:
        raise Failure(f"exit status {status}, expected {t['status']}")
    stored = queued(spool)
    for arg, where in t["checks"]:
        words = arg.split(" ", 3)
        kind = words[0]
        if kind == "spool-count":
            if len(stored) != int(words[1]):
                raise Failure(f"{where}: {len(stored)} messages in the queue, expected {words[1]}")
        elif kind == "tmp-empty":
            left = os.listdir(os.path.join(spool, "tmp"))
            if left:
                raise Failure(f"{where}: tmp/ holds {left}")
        elif kind == "envelope":
            n, path, value = int(words[1]), words[2], json.loads(words[3])
            if n >= len(stored):
                raise Failure(f"{where}: no message {n}")
            got = pointer(stored[n][1], path)
            if got != value:
                raise Failure(f"{where}: envelope {path} is {got!r}, expected {value!r}")
        elif kind == "absent":
            n, path = int(words[1]), words[2]
            if n >= len(stored):
                raise Failure(f"{where}: no message {n}")
            try:
                got = pointer(stored[n][1], path)
            except (KeyError, IndexError):
                continue
            raise Failure(f"{where}: envelope {path} is {got!r}, expected no such key")
        elif kind in ("contains", "lacks", "body-is"):
            n, text = int(words[1]), unescape(arg.split(" ", 2)[2])
            if n >= len(stored):
                raise Failure(f"{where}: no message {n}")
            body = stored[n][2]
            if kind == "contains" and text not in body:
                raise Failure(f"{where}: message {n} lacks {text!r}: {body[:300]!r}")
            if kind == "lacks" and text in body:
                raise Failure(f"{where}: message {n} contains {text!r}")
            if kind == "body-is":
                if not body.startswith(b"Received: "):
                    raise Failure(f"{where}: message {n} does not start with Received:")
                # The Received: header is the first header; its continuation lines start with a tab.
                rest = body.split(b"\r\n")
                k = 1
                while k < len(rest) and rest[k].startswith(b"\t"):
                    k += 1
                after = b"\r\n".join(rest[k:])
                if after != text:
                    raise Failure(f"{where}: message {n} after Received: is {after!r}, expected {text!r}")
            if stored[n][1]["size"] != len(body):
                raise Failure(f"{where}: envelope size {stored[n][1]['size']} != {len(body)}")
        else:
            raise Failure(f"{where}: unknown check {kind}")


def run_one(binary, directory, name, t, mode):
    """One transcript in one mode, in a fresh spool: (passed, lines to print)."""
    with tempfile.TemporaryDirectory(prefix="smtpspool-session-") as tmp:
        spool = os.path.join(tmp, "spool")
        out = b""
        try:
            status, out, err = run(binary, t, mode, spool)
            check(t, status, out, err, spool, mode)
            return True, [f"PASS {name} ({mode})"]
        except Failure as e:
            return False, ([f"FAIL {name} ({mode}): {e}", "     replies were:"] +
                           [f"       {line}" for line in out.decode("utf-8", "replace").splitlines()])


def main():
    args = sys.argv[1:]
    jobs, hold_factor = 1, 1.0
    while len(args) > 1 and args[0] in ("-j", "--hold-factor"):
        if args[0] == "-j":
            jobs = int(args[1])
        else:
            hold_factor = float(args[1])
        args = args[2:]
    if len(args) < 2:
        raise SystemExit(__doc__)
    binary, directory = os.path.abspath(args[0]), args[1]
    names = args[2:] or sorted(n for n in os.listdir(directory) if n.endswith(".txt"))
    runs = []
    for name in names:
        t = parse(os.path.join(directory, name))
        t["hold"] *= hold_factor
        runs += [(name, t, mode) for mode in t["modes"]]
    passed = failed = 0
    # Each run is its own process and spool: with -j N, N at a time (the
    # results are printed in order all the same).
    with concurrent.futures.ThreadPoolExecutor(max_workers=jobs) as pool:
        for ok, lines in pool.map(lambda r: run_one(binary, directory, *r), runs):
            passed += ok
            failed += not ok
            print("\n".join(lines), flush=True)
    print(f"session transcripts: {passed} passed, {failed} failed")
    sys.exit(1 if failed or not passed else 0)


if __name__ == "__main__":
    main()
