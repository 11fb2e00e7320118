"""fleet.py: the fleet test's driver, run by fleet.sh once RabbitMQ (a quorum
queue "inbox" behind the exchange "mail") and HAProxy run.

It starts the two receivers (each tcpserver running smtpspool with the PROXY
protocol, and `runq --interval 1s` delivering by the amqp transport, in one
process group of their own), then:

1. a client from 127.0.0.20 opens 50 connections: more than the receivers'
   --max-connections-per-client-per-minute 20 allows them together, so some
   get 421 at the greeting; a stranger from 127.0.0.30 (outside
   --relay-client 127.0.0.8/29, as HAProxy's 127.0.0.1 is) may not relay.
2. four clients from 127.0.0.10-13 (inside --relay-client) send
   FLEET_MESSAGES messages through HAProxy, five or more per session; when half are
   acknowledged the second receiver is killed (SIGKILL to its process group:
   tcpserver, its sessions and its runq); at three quarters the clients wait
   until it is back (started again, HAProxy's check says UP), and finish.
3. When both queues are empty, the quorum queue is drained and counted:
   every message answered 250 is there under exactly one idempotency key
   (repeats of one key count as once), a message never answered 250 under
   at most one; each key is the one computed from the queue id and the
   recipients the client gave; each envelope names the real client's
   address; no client but the flooder was ever refused by the rate limit.
"""

import json
import os
import signal
import smtplib
import socket
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "e2e"))
from e2elib import expect, expect_eq, run  # noqa: E402
from idempotency import idempotency_key  # noqa: E402

TMP = os.environ["TEST_TMP"]
BIN = os.environ["SMTPSPOOL_BIN"]
HAPROXY = ("127.0.0.1", int(os.environ["HAPROXY_PORT"]))
RECEIVERS = {1: ("127.0.0.2", int(os.environ["R1_PORT"])), 2: ("127.0.0.3", int(os.environ["R2_PORT"]))}
N = int(os.environ.get("FLEET_MESSAGES", "200"))
CLIENTS = ["127.0.0.10", "127.0.0.11", "127.0.0.12", "127.0.0.13"]
# Messages a session: at least 5, and enough that a client needs at most about
# 10 sessions, well under the 20 connections a minute each receiver allows it.
PER_SESSION = max(5, -(-N // (len(CLIENTS) * 10)))
DEADLINE = time.monotonic() + 300


def say(text):
    print(f"fleet: {text}", flush=True)


class Receiver:
    """tcpserver + smtpspool and runq --interval for one spool, one process group."""

    def __init__(self, n):
        self.n = n
        self.address, self.port = RECEIVERS[n]
        self.spool = os.path.join(TMP, f"spool{n}")
        self.procs = []
        self.starts = 0

    def start(self):
        self.starts += 1
        log = open(os.path.join(TMP, f"r{self.n}.{self.starts}.log"), "wb")
        hostname = f"r{self.n}.fleet.test"
        serve = [BIN, "--spool", self.spool, "--hostname", hostname, "--log", "stderr", "--proxy-protocol",
                 "--proxy-from", "127.0.0.1/32", "--relay-client", "127.0.0.8/29",
                 "--max-connections-per-client-per-minute", "20"]
        if not os.path.isdir(self.spool):
            # runq wants the spool to exist: a local session that only quits makes it.
            subprocess.run([BIN, "--spool", self.spool, "--log", "none"], input=b"QUIT\r\n", capture_output=True,
                           timeout=30, check=True)
        tcpserver = subprocess.Popen(["tcpserver", "-R", "-H", "-l", "0", "-c", "60", "-b", "100", self.address,
                                      str(self.port)] + serve, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                     process_group=0)
        self.procs = [tcpserver]
        route = f"*=amqp://mailer@127.0.0.1:{os.environ['AMQP_PORT']}/?exchange=mail&routing_key=smtp"
        runq = subprocess.Popen([BIN, "runq", "--spool", self.spool, "--hostname", hostname, "--log", "stderr",
                                 "--interval", "1s", "--retry-schedule", "1s", "--concurrency", "2",
                                 "--amqp-timeout", "10s", "--amqp-credentials-file", os.environ["CREDS"],
                                 "--route", route], stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                process_group=tcpserver.pid)
        self.procs = [tcpserver, runq]
        deadline = time.monotonic() + 10
        while True:
            expect(tcpserver.poll() is None, f"receiver {self.n}: tcpserver exited ({tcpserver.returncode})")
            try:
                socket.create_connection((self.address, self.port), timeout=1).close()
                return
            except OSError:
                expect(time.monotonic() < deadline, f"receiver {self.n}: not listening after 10 s")
                time.sleep(0.05)

    def kill(self):
        """SIGKILL to the whole process group: tcpserver, its sessions, runq and its workers."""
        if not self.procs:
            return
        try:
            os.killpg(self.procs[0].pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        for p in self.procs:
            p.wait()
        self.procs = []


def haproxy_status(server):
    """The state HAProxy's check gives a server of the backend (UP, DOWN, ...)."""
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(5)
    s.connect(os.environ["HAPROXY_STATS"])
    s.sendall(b"show stat\n")
    data = b""
    while chunk := s.recv(65536):
        data += chunk
    s.close()
    lines = data.decode().splitlines()
    head = lines[0].lstrip("# ").split(",")
    for line in lines[1:]:
        row = dict(zip(head, line.split(",")))
        if row.get("pxname") == "receivers" and row.get("svname") == server:
            return row.get("status", "")
    return ""


def wait_until(what, cond, seconds):
    deadline = time.monotonic() + seconds
    while not cond():
        expect(time.monotonic() < deadline, f"{what} within {seconds} s")
        time.sleep(0.1)


class Fleet:
    def __init__(self):
        self.lock = threading.Lock()
        self.acked = {}      # token -> (client, recipients, phase)
        self.unacked = {}    # token -> (client, recipients)
        self.refused = {}    # client -> greetings refused with 421
        self.phase = "before"  # before the kill, "down" while r2 is down, "after"
        self.back = threading.Event()
        self.half = threading.Event()
        self.three_quarters = threading.Event()
        self.errors = []

    def count_acked(self, token, client, rcpts):
        with self.lock:
            self.acked[token] = (client, rcpts, self.phase)
            n = len(self.acked)
        if n >= N // 2:
            self.half.set()
        if n >= 3 * N // 4:
            self.three_quarters.set()

    def client(self, address, count):
        sent = 0
        mine = 0
        while mine < count and time.monotonic() < DEADLINE:
            try:
                s = smtplib.SMTP(timeout=20, source_address=(address, 0))
                code, msg = s.connect(*HAPROXY)
                if code != 220:
                    # Never expected: the rate limit judged someone else. The
                    # client stops, and the count below fails.
                    s.close()
                    with self.lock:
                        self.refused[address] = self.refused.get(address, 0) + 1
                        self.errors.append(f"{address}: greeting {code} {msg!r}")
                    return
            except (OSError, smtplib.SMTPException) as e:
                with self.lock:
                    self.errors.append(f"{address}: connect: {e!r}")
                time.sleep(0.05)  # not an assertion: no busy loop while a receiver is down
                continue
            try:
                s.ehlo(f"client-{address}")
                for _ in range(PER_SESSION):
                    if mine >= count:
                        break
                    if self.three_quarters.is_set():
                        self.back.wait(120)
                    token = f"fleet-{address}-{sent}"
                    rcpts = [f"u{sent % 3}@fleet.example"] + ([f"V{sent % 2}@Other.Example"] if sent % 4 == 0 else [])
                    sent += 1
                    with self.lock:
                        self.unacked[token] = (address, rcpts)
                    body = (f"From: <c@{address}>\r\nTo: <{rcpts[0]}>\r\nSubject: {token}\r\n"
                            f"Message-ID: <{token}@fleet.test>\r\n\r\nbody of {token}\r\n")
                    code, msg = s.mail(f"c@client{address[-2:]}.example")
                    if code != 250:
                        raise smtplib.SMTPResponseException(code, msg)
                    for r in rcpts:
                        code, msg = s.rcpt(r)
                        if code != 250:
                            raise smtplib.SMTPResponseException(code, msg)
                    code, msg = s.data(body.encode())
                    if code == 250:
                        with self.lock:
                            del self.unacked[token]
                        self.count_acked(token, address, rcpts)
                        mine += 1
                    else:
                        raise smtplib.SMTPResponseException(code, msg)
                s.quit()
            except (OSError, smtplib.SMTPException) as e:
                # The receiver died under us (or refused): a new session, a new message.
                with self.lock:
                    self.errors.append(f"{address}: {e!r}")
                try:
                    s.close()
                except OSError:
                    pass

    def control(self, r2):
        self.half.wait(DEADLINE - time.monotonic())
        say(f"{len(self.acked)} acknowledged: SIGKILL to receiver 2")
        r2.kill()
        # Only now: a message receiver 2 answered before it died counts as before.
        with self.lock:
            self.phase = "down"
        self.three_quarters.wait(DEADLINE - time.monotonic())
        say(f"{len(self.acked)} acknowledged: receiver 2 started again")
        r2.start()
        wait_until("HAProxy's check finds receiver 2 up", lambda: haproxy_status("r2").startswith("UP"), 30)
        with self.lock:
            self.phase = "after"
        self.back.set()


def flood_and_stranger():
    refused = 0
    for _ in range(50):
        s = smtplib.SMTP(timeout=10, source_address=("127.0.0.20", 0))
        code, msg = s.connect(*HAPROXY)
        if code == 220:
            s.quit()
        else:
            expect(code == 421 and b"4.7.0" in msg, "the flooder's refusal", "421 4.7.0", (code, msg))
            s.close()
            refused += 1
    say(f"flooder: {refused} of 50 connections refused with 421")
    expect(refused >= 10, "connections of 127.0.0.20 refused (limit 20 a minute per receiver, 2 receivers)",
           "at least 10 of 50", refused)
    s = smtplib.SMTP(timeout=10, source_address=("127.0.0.30", 0))
    expect_eq(220, s.connect(*HAPROXY)[0], "the stranger's greeting")
    s.ehlo("stranger")
    expect_eq(250, s.mail("s@stranger.example")[0], "the stranger's MAIL")
    code, msg = s.rcpt("x@fleet.example")
    expect(code == 550 and b"5.7.1" in msg, "the stranger's RCPT to another domain", "550 5.7.1", (code, msg))
    s.quit()
    # And the relay check of a trusted client passes, though HAProxy (127.0.0.1)
    # is outside --relay-client.
    s = smtplib.SMTP(timeout=10, source_address=("127.0.0.10", 0))
    expect_eq(220, s.connect(*HAPROXY)[0], "a trusted client's greeting (after the flood from another address)")
    s.ehlo("trusted")
    s.mail("c@client.example")
    expect_eq(250, s.rcpt("x@fleet.example")[0], "a trusted client's RCPT to another domain")
    s.rset()
    s.quit()


def queued(spool):
    qdir = os.path.join(spool, "queue")
    return os.listdir(qdir) if os.path.isdir(qdir) else []


def main():
    # Stopped (fleet.sh's cleanup): the receivers go too (finally below).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    t0 = time.monotonic()
    receivers = {n: Receiver(n) for n in RECEIVERS}
    try:
        for r in receivers.values():
            r.start()
        wait_until("HAProxy's checks find both receivers up",
                   lambda: all(haproxy_status(f"r{n}").startswith("UP") for n in receivers), 30)
        flood_and_stranger()

        fleet = Fleet()
        control = threading.Thread(target=fleet.control, args=(receivers[2],))
        control.start()
        per_client = [N // len(CLIENTS) + (1 if i < N % len(CLIENTS) else 0) for i in range(len(CLIENTS))]
        threads = [threading.Thread(target=fleet.client, args=(a, c)) for a, c in zip(CLIENTS, per_client)]
        t1 = time.monotonic()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        control.join()
        t2 = time.monotonic()
        say(f"{len(fleet.acked)} messages acknowledged in {t2 - t1:.1f} s, {len(fleet.unacked)} not "
            f"({len(fleet.errors)} sessions broken or refused)")
        for e in fleet.errors[:10]:
            say(f"  {e}")
        expect_eq(N, len(fleet.acked), "messages acknowledged with 250")
        expect_eq({}, {a: n for a, n in fleet.refused.items()}, "greetings refused to the relaying clients (421)")

        wait_until("both receivers' queues empty", lambda: not any(queued(r.spool) for r in receivers.values()), 120)
        t3 = time.monotonic()
        say(f"queues empty {t3 - t2:.1f} s after the last message")
    finally:
        for r in receivers.values():
            r.kill()

    drained = subprocess.run([os.environ["PIKA_PYTHON"], os.path.join(os.path.dirname(__file__), "..", "e2e",
                                                                       "amqp_tool.py"),
                              os.environ["AMQP_PORT"], "mailer", os.environ["RABBIT_PASSWORD"], "drain", "inbox"],
                             capture_output=True, text=True, timeout=120, check=True).stdout
    messages = [json.loads(line) for line in drained.splitlines() if line]
    keys_of = {}   # token -> set of idempotency keys
    copies = 0
    by_host = {}
    for m in messages:
        env = m["headers"]["smtpspool-envelope"]
        token = next(line[len("Subject: "):] for line in m["body"].split("\r\n") if line.startswith("Subject: "))
        client = token.split("-")[1]
        expect_eq(client, env["client_address"], f"{token}: the client address in the envelope (not HAProxy's)")
        expect_eq(idempotency_key(env["hostname"], env["queue_id"], env["recipients"]), m["message_id"],
                  f"{token}: message id")
        keys_of.setdefault(token, set()).add(m["message_id"])
        copies += 1
        sent = fleet.acked.get(token) or fleet.unacked.get(token)
        expect(sent is not None, f"a message in the queue that no client sent: {token}")
        # The session stores the domain in lower case, the local part as given.
        given = sorted(r.rsplit("@", 1)[0] + "@" + r.rsplit("@", 1)[1].lower() for r in sent[1])
        expect_eq(given, sorted(env["recipients"]), f"{token}: recipients")
        if token in fleet.acked:
            by_host.setdefault((env["hostname"], fleet.acked[token][2]), set()).add(token)
    missing = [t for t in fleet.acked if t not in keys_of]
    expect_eq([], missing[:10], "acknowledged messages missing from the queue")
    twice = {t: k for t, k in keys_of.items() if len(k) > 1}
    expect_eq({}, dict(list(twice.items())[:5]), "messages in the queue under more than one idempotency key")
    repeats = copies - len(keys_of)
    say(f"queue: {copies} publications, {len(keys_of)} distinct messages ({repeats} repeats of a key, "
        f"counted once); acknowledged {len(fleet.acked)}, of which all present once; "
        f"unacknowledged present: {sum(1 for t in fleet.unacked if t in keys_of)} of {len(fleet.unacked)}")
    say("acknowledged, by receiver and phase: " +
        ", ".join(f"{h} {p}: {len(ts)}" for (h, p), ts in sorted(by_host.items())))
    expect(("r2.fleet.test", "down") not in by_host, "no message acknowledged by receiver 2 while it was down")
    expect(("r2.fleet.test", "after") in by_host, "receiver 2 took messages again after it was brought back")
    expect(("r1.fleet.test", "down") in by_host, "receiver 1 took the messages while receiver 2 was down")
    say(f"done in {time.monotonic() - t0:.1f} s")


run(main)
