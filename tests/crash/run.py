#!/usr/bin/env python3
"""Crash consistency and fault injection: kill smtpspool with SIGKILL at every
file-system step of receiving and committing (LD_PRELOAD fault_shim.so), and
of a queue run, then check the spool invariants; then make each step fail
instead (EIO, ENOSPC) and check the replies, the log and the same invariants.

Usage: run.py BINARY SHIM

serve: every message answered 250 is complete in queue/; queue/ holds nothing
else, except at most the one message whose commit finished just before the
kill (durable but not yet acknowledged: the client will send it again); every
envelope in queue/ parses and its size matches message.eml.
runq: no recipient is lost (each is delivered, in the pipe's log, or still
pending in a parsable envelope); only recipients of the message being
delivered at the moment of the kill may be delivered twice (its envelope is
rewritten once per run, after all its recipients were tried).
serve with a failing step: the message being stored gets the documented 4xx
(452 4.3.1 for ENOSPC, 451 4.3.0 for EIO) and nothing of it stays in queue/ or
tmp/; the session goes on and the other message is accepted; the log names
the error; a spool whose directories cannot be made gets 421 and exit 75.
runq with a failing step: no recipient lost, every envelope parses, and a
later run delivers everything.
hold and bounce, killed at each step or with each step failing: every
envelope parses; hold loses no recipient and a second hold holds every
message; bounce loses no recipient (each is pending in its message or reported
in a notice in the queue), and a second bounce leaves only notices that
report every recipient.
"""
import errno
import re
import json
import os
import subprocess
import sys
import tempfile

BIN, SHIM = os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2])
failures = []

SESSION = (b"EHLO c.example\r\n"
           b"MAIL FROM:<a@b.example>\r\nRCPT TO:<u@localhost>\r\nDATA\r\nSubject: one\r\n\r\n" + b"x" * 70000 +
           b"\r\n.\r\n"
           b"MAIL FROM:<a@b.example>\r\nRCPT TO:<v@localhost>\r\nRCPT TO:<w@localhost>\r\nDATA\r\nSubject: two\r\n\r\n"
           b"short\r\n.\r\nQUIT\r\n")


MESSAGES = [["u@localhost"], ["v@localhost", "w@localhost"]]


def check_queue(spool, where):
    q = os.path.join(spool, "queue")
    ids = sorted(os.listdir(q)) if os.path.isdir(q) else []
    envs = {}
    for i in ids:
        d = os.path.join(q, i)
        names = sorted(n for n in os.listdir(d) if n != "envelope.json.new")
        if names != ["envelope.json", "message.eml"]:
            failures.append(f"{where}: queue/{i} holds {names}")
            continue
        try:
            with open(os.path.join(d, "envelope.json")) as f:
                env = json.load(f)
        except ValueError as e:
            failures.append(f"{where}: queue/{i}/envelope.json does not parse: {e}")
            continue
        if env["size"] != os.path.getsize(os.path.join(d, "message.eml")):
            failures.append(f"{where}: queue/{i} size {env['size']} != message.eml")
        envs[i] = env
    return envs


def run(args, stdin, env, cwd=None):
    full = dict(os.environ)
    full.update(env)
    p = subprocess.run(args, input=stdin, capture_output=True, env=full, timeout=60, cwd=cwd)
    return p.returncode, p.stdout, p.stderr


def serve_crashes(options=(), header=None):
    step, tested = 1, 0
    while True:
        with tempfile.TemporaryDirectory(prefix="smtpspool-crash-") as tmp:
            spool = os.path.join(tmp, "spool")
            count = os.path.join(tmp, "count")
            code, out, _ = run([BIN, "--spool", spool, "--hostname", "mx.test", "--log", "none", *options], SESSION,
                               {"LD_PRELOAD": SHIM, "SMTPSPOOL_CRASH_AT": str(step), "SMTPSPOOL_CRASH_COUNT": count})
            acked = [l.rsplit(b" ", 1)[1].decode() for l in out.split(b"\r\n") if b"queued as" in l]
            envs = check_queue(spool, f"serve crash at step {step}")
            extra = set(envs) - set(acked)
            missing = set(acked) - set(envs)
            if missing:
                failures.append(f"serve crash at step {step}: acknowledged but not queued: {missing}")
            if len(extra) > 1:
                failures.append(f"serve crash at step {step}: queued without 250: {extra}")
            for i in envs:
                with open(os.path.join(spool, "queue", i, "message.eml"), "rb") as f:
                    if header is not None and not f.read().startswith(header):
                        failures.append(f"serve crash at step {step}: queue/{i} lacks the data hook's {header!r}")
            if code != -9:
                if len(acked) != 2 or extra:
                    failures.append(f"serve without a crash (step {step}, exit {code}): {acked}, extra {extra}")
                return tested, step - 1
            tested += 1
            step += 1


REPLY = re.compile(rb"^[2-5][0-9][0-9][ -][^\r\n]*$")
FAULTS = {errno.EIO: (b"451 4.3.0 ", "Input/output error"), errno.ENOSPC: (b"452 4.3.1 ", "No space left on device")}


def serve_faults(errnum):
    prefix, text = FAULTS[errnum]
    step, failed_steps, total = 0, 0, None  # step 0: no fault, the baseline and the count
    while True:
        with tempfile.TemporaryDirectory(prefix="smtpspool-fault-") as tmp:
            spool = os.path.join(tmp, "spool")
            count = os.path.join(tmp, "count")
            code, out, err = run([BIN, "--spool", spool, "--hostname", "mx.test", "--log", "stderr"], SESSION,
                                 {"LD_PRELOAD": SHIM, "SMTPSPOOL_FAIL_AT": str(step), "SMTPSPOOL_FAIL_ERRNO":
                                  str(errnum), "SMTPSPOOL_CRASH_COUNT": count})
            where = f"serve, step {step} fails with {errno.errorcode[errnum]}"
            lines = out.split(b"\r\n")
            if lines[-1] != b"" or not all(REPLY.match(l) for l in lines[:-1]):
                failures.append(f"{where}: malformed replies {out[:300]!r}")
            acked = [l.rsplit(b" ", 1)[1].decode() for l in lines if b"queued as" in l]
            local = [l for l in lines if l.startswith(prefix)]
            envs = check_queue(spool, where)
            if set(envs) != set(acked):
                failures.append(f"{where}: queue/ holds {sorted(envs)}, acknowledged {acked}")
            tmp_dir = os.path.join(spool, "tmp")
            if os.path.isdir(tmp_dir) and os.listdir(tmp_dir):
                failures.append(f"{where}: left in tmp/: {os.listdir(tmp_dir)}")
            if code == 75:
                # The spool's directories could not be made: refused at the greeting.
                if lines[0] != b"421 4.3.0 mx.test local error, closing connection" or acked:
                    failures.append(f"{where}: exit 75 with {lines[:2]}")
                if text not in err.decode():
                    failures.append(f"{where}: the log does not say why: {err!r}")
                failed_steps += 1
            elif code != 0:
                failures.append(f"{where}: exit status {code}")
            elif local:
                if len(local) != 1 or len(acked) != 1 or lines[-2] != b"221 2.0.0 mx.test closing connection":
                    failures.append(f"{where}: {len(local)} local errors, {len(acked)} accepted, last {lines[-2]!r}")
                if text not in err.decode() or "error" not in err.decode():
                    failures.append(f"{where}: the log does not say why: {err!r}")
                failed_steps += 1
            elif len(acked) != 2:
                failures.append(f"{where}: no local error, yet accepted {acked}: {out[-300:]!r}")
            if total is None:
                total = int(open(count).read())
            if step >= total:
                return failed_steps, total
            step += 1


def queue_and_run(tmp, env, where):
    """Queues SESSION's 3 recipients, then runs runq (delivering through a pipe
    into a log) with env, and checks that no recipient was lost: each is
    delivered or pending in a parsable envelope. Returns what a second run needs."""
    spool = os.path.join(tmp, "spool")
    log = os.path.join(tmp, "delivered")
    run([BIN, "--spool", spool, "--hostname", "mx.test", "--log", "none"], SESSION, {})
    route = f"localhost=pipe:cat >/dev/null; echo \"$RECIPIENT\" >> {log}"
    # --concurrency 1: the steps are those of one process (a forked worker
    # would count its own, from the count at the fork).
    code, _, _ = run([BIN, "runq", "--spool", spool, "--hostname", "mx.test", "--log", "none", "--concurrency", "1",
                      "--route", route], b"", env)
    envs = check_queue(spool, where)
    pending = {r["address"] for e in envs.values() for r in e["recipients"] if r["status"] == "pending"}
    if (set(delivered(log)) | pending) != RECIPIENTS:
        failures.append(f"{where}: lost recipients: delivered {delivered(log)}, pending {pending}")
    # The run after this one finishes the work.
    run([BIN, "runq", "--spool", spool, "--hostname", "mx.test", "--log", "none", "--route", route, *envs.keys()],
        b"", {})
    return spool, log, code


def delivered(log):
    return open(log).read().split() if os.path.exists(log) else []


RECIPIENTS = {"u@localhost", "v@localhost", "w@localhost"}


def runq_faults(errnum):
    step, total = 0, None  # step 0: no fault
    while True:
        with tempfile.TemporaryDirectory(prefix="smtpspool-fault-") as tmp:
            count = os.path.join(tmp, "count")
            where = f"runq, step {step} fails with {errno.errorcode[errnum]}"
            spool, log, code = queue_and_run(tmp, {"LD_PRELOAD": SHIM, "SMTPSPOOL_FAIL_AT": str(step),
                                                   "SMTPSPOOL_FAIL_ERRNO": str(errnum),
                                                   "SMTPSPOOL_CRASH_COUNT": count}, where)
            if code < 0:
                failures.append(f"{where}: killed by signal {-code}")
            done = delivered(log)
            if set(done) != RECIPIENTS or check_queue(spool, where + ", after a new run"):
                failures.append(f"{where}: after a new run delivered {done}")
            if total is None:
                total = int(open(count).read())
            if step >= total:
                return total
            step += 1


def runq_crashes():
    step, tested = 1, 0
    while True:
        with tempfile.TemporaryDirectory(prefix="smtpspool-crash-") as tmp:
            where = f"runq crash at step {step}"
            spool, log, code = queue_and_run(tmp, {"LD_PRELOAD": SHIM, "SMTPSPOOL_CRASH_AT": str(step)}, where)
            # One recipient may come twice: the one being delivered at the kill.
            done = delivered(log)
            repeated = {r for r in done if done.count(r) > 1}
            if set(done) != RECIPIENTS or any(done.count(r) > 2 for r in done) or \
                    not any(repeated <= set(group) for group in MESSAGES):
                failures.append(f"{where}: after a new run delivered {done}")
            if check_queue(spool, where + ", after a new run"):
                failures.append(f"{where}: queue not empty after a new run")
            if code != -9:
                return tested, step - 1
            tested += 1
            step += 1


def reported(spool, envs):
    """The recipients that the notices in the queue report."""
    out = set()
    for i, e in envs.items():
        if e["mail_from"] == "":
            text = open(os.path.join(spool, "queue", i, "message.eml"), "rb").read().decode()
            out |= set(re.findall(r"^Final-Recipient: rfc822; (\S+)\r$", text, re.M))
    return out


def admin(command, env, where):
    """Queues SESSION, runs `smtpspool COMMAND --all` with env, checks, runs it
    again without env, checks again. Returns the exit code of the first."""
    with tempfile.TemporaryDirectory(prefix="smtpspool-admin-") as tmp:
        spool = os.path.join(tmp, "spool")
        run([BIN, "--spool", spool, "--hostname", "mx.test", "--log", "none"], SESSION, {})
        args = [BIN, command, "--all", "--spool", spool, "--hostname", "mx.test", "--log", "none"]
        code, _, _ = run(args, b"", env)
        for attempt in (where, where + ", after a second " + command):
            envs = check_queue(spool, attempt)
            originals = [e for e in envs.values() if e["mail_from"] != ""]
            pending = {r["address"] for e in originals for r in e["recipients"] if r["status"] == "pending"}
            if command == "hold":
                if pending != RECIPIENTS:
                    failures.append(f"{attempt}: pending {pending}")
                if attempt != where and not all(e.get("held") is True for e in originals):
                    failures.append(f"{attempt}: not every message held")
            else:
                if pending | reported(spool, envs) != RECIPIENTS:
                    failures.append(f"{attempt}: lost: pending {pending}, reported {reported(spool, envs)}")
                if attempt != where and originals:
                    failures.append(f"{attempt}: {len(originals)} messages left")
            if attempt == where:
                # Not the notices (from <>), which a bounce would drop.
                run(args + ["--sender", "a@b.example"], b"", {})
        return code


def admin_crashes(command):
    step = 1
    while True:
        with tempfile.TemporaryDirectory(prefix="smtpspool-crash-") as tmp:
            code = admin(command, {"LD_PRELOAD": SHIM, "SMTPSPOOL_CRASH_AT": str(step)},
                         f"{command} crash at step {step}")
            if code != -9:
                return step - 1
            step += 1


def admin_faults(command, errnum):
    step, total = 0, None
    while True:
        with tempfile.TemporaryDirectory(prefix="smtpspool-fault-") as tmp:
            count = os.path.join(tmp, "count")
            where = f"{command}, step {step} fails with {errno.errorcode[errnum]}"
            code = admin(command, {"LD_PRELOAD": SHIM, "SMTPSPOOL_FAIL_AT": str(step),
                                   "SMTPSPOOL_FAIL_ERRNO": str(errnum), "SMTPSPOOL_CRASH_COUNT": count}, where)
            if code < 0:
                failures.append(f"{where}: killed by signal {-code}")
            if step == 0 and code != 0:
                failures.append(f"{where}: exit status {code} without a fault")
            if total is None:
                total = int(open(count).read())
            if step >= total:
                return total
            step += 1


serve_tested, serve_steps = serve_crashes()
# With a data hook that adds a header field, the message is copied behind it
# (SpoolWriter::prepend) before the commit: more steps, the same invariants.
hook_tested, hook_steps = serve_crashes(["--data-hook", "cat >/dev/null; echo X-Hooked: yes"], b"X-Hooked: yes\r\n")
runq_tested, runq_steps = runq_crashes()
faults = {e: serve_faults(e) for e in FAULTS}
runq_fault_steps = {e: runq_faults(e) for e in FAULTS}
admin_steps = {c: admin_crashes(c) for c in ("hold", "bounce")}
admin_fault_steps = {(c, e): admin_faults(c, e) for c in ("hold", "bounce") for e in FAULTS}
print(f"serve: killed at each of {serve_tested} steps ({serve_steps} file-system steps in a 2-message session)")
print(f"serve with a data hook: killed at each of {hook_tested} steps ({hook_steps} file-system steps)")
print(f"runq: killed at each of {runq_tested} steps ({runq_steps} file-system steps in a 3-recipient run)")
for e, (failed, total) in faults.items():
    print(f"serve: each of {total} steps failed with {errno.errorcode[e]} in turn ({failed} gave a 4xx)")
for e, total in runq_fault_steps.items():
    print(f"runq: each of {total} steps failed with {errno.errorcode[e]} in turn")
for c, n in admin_steps.items():
    print(f"{c} --all: killed at each of {n} steps")
for (c, e), total in admin_fault_steps.items():
    print(f"{c} --all: each of {total} steps failed with {errno.errorcode[e]} in turn")
for f in failures:
    print("FAIL", f)
print(f"crash tests: {'FAILED' if failures else 'passed'} ({len(failures)} violations)")
sys.exit(1 if failures else 0)
