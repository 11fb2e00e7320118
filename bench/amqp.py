#!/usr/bin/env python3
"""Delivery throughput of the amqp transport against the smtp transport.

    python3 bench/amqp.py [--binary build/smtpspool] [-n 500] [--size 1000] [--runs 3]

Starts a RabbitMQ of its own (Debian's rabbitmq-server, every file in a
temporary directory, as tests/e2e/rabbitlib.sh does) with a quorum queue
behind a direct exchange, and an aiosmtpd sink that accepts and discards.
Queues N messages of about SIZE octets (one piped session, as a local client),
copies the spool, and delivers one copy with one `runq --concurrency 1` by an
amqp route (one connection, each message published persistent and confirmed
before the next) and the other with one `runq --concurrency 1` by an smtp
route to the sink (one connection, RSET between messages). Every run must end
with the queue empty, runq reporting N deliveries and, for amqp, N messages in
the quorum queue; otherwise nothing is printed and the exit status is 1.
Prints messages per second of each, median (min-max) over the runs.
"""

import argparse
import os
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
AMQP_TOOL = os.path.join(HERE, "..", "tests", "e2e", "amqp_tool.py")
RABBIT_BIN = "/usr/lib/rabbitmq/bin"

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


def python_with(module):
    for p in (sys.executable, "/usr/bin/python3"):
        if p and os.path.exists(p) and subprocess.run([p, "-c", f"import {module}"],
                                                     capture_output=True).returncode == 0:
            return p
    sys.exit(f"{module} is not installed (make deps installs it)")


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Broker:
    """A RabbitMQ node in DIR: its own cookie, epmd, ports; user bench."""

    def __init__(self, work):
        self.dir = os.path.join(work, "rabbit")
        for sub in ("home", "mnesia", "log"):
            os.makedirs(os.path.join(self.dir, sub))
        cookie = os.path.join(self.dir, "home", ".erlang.cookie")
        with open(cookie, "w") as f:
            f.write(os.urandom(16).hex())
        os.chmod(cookie, 0o400)
        self.port, self.epmd_port, dist = free_port(), free_port(), free_port()
        self.node = f"smtpspool-bench-{os.getpid()}@localhost"
        self.password = os.urandom(8).hex()
        with open(os.path.join(self.dir, "rabbitmq.conf"), "w") as f:
            f.write(f"listeners.tcp.1 = 127.0.0.1:{self.port}\nlog.console = false\n")
        with open(os.path.join(self.dir, "enabled_plugins"), "w") as f:
            f.write("[].\n")
        self.env = dict(os.environ, HOME=os.path.join(self.dir, "home"), ERL_EPMD_PORT=str(self.epmd_port))
        log = open(os.path.join(self.dir, "server.log"), "wb")
        self.epmd = subprocess.Popen(["epmd", "-port", str(self.epmd_port), "-address", "127.0.0.1"],
                                     env=self.env, stdout=log, stderr=log)
        self.server = None
        env = dict(self.env, RABBITMQ_NODENAME=self.node, RABBITMQ_NODE_IP_ADDRESS="127.0.0.1",
                   RABBITMQ_NODE_PORT=str(self.port), RABBITMQ_DIST_PORT=str(dist),
                   RABBITMQ_MNESIA_BASE=os.path.join(self.dir, "mnesia"),
                   RABBITMQ_LOG_BASE=os.path.join(self.dir, "log"),
                   RABBITMQ_CONFIG_FILE=os.path.join(self.dir, "rabbitmq"),
                   RABBITMQ_ENABLED_PLUGINS_FILE=os.path.join(self.dir, "enabled_plugins"),
                   RABBITMQ_PID_FILE=os.path.join(self.dir, "pid"))
        # Its own process group: stop() ends the scripts and the Erlang VM together.
        self.server = subprocess.Popen([os.path.join(RABBIT_BIN, "rabbitmq-server")], env=env, stdout=log,
                                       stderr=log, start_new_session=True)
        self.ctl("wait", "--pid", str(self.server.pid), "--timeout", "60")
        self.ctl("add_user", "bench", self.password)
        self.ctl("set_permissions", "-p", "/", "bench", ".*", ".*", ".*")

    def ctl(self, *args):
        p = subprocess.run([os.path.join(RABBIT_BIN, "rabbitmqctl"), "-n", self.node, *args], env=self.env,
                           capture_output=True, text=True, timeout=90)
        if p.returncode != 0:
            sys.exit(f"rabbitmqctl {' '.join(args)}: {p.stdout[-300:]} {p.stderr[-300:]}")
        return p.stdout

    def tool(self, *args):
        p = subprocess.run([python_with("pika"), AMQP_TOOL, str(self.port), "bench", self.password, *args],
                           capture_output=True, text=True, timeout=300)
        if p.returncode != 0:
            sys.exit(f"amqp_tool {' '.join(args)}: {p.stderr[-500:]}")
        return p.stdout

    def stop(self):
        if self.server is not None:
            subprocess.run([os.path.join(RABBIT_BIN, "rabbitmqctl"), "-n", self.node, "stop"], env=self.env,
                           capture_output=True, timeout=60)
            try:
                os.killpg(self.server.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.server.wait()
        self.epmd.kill()
        self.epmd.wait()


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


def timed_runq(binary, spool, n, route_args):
    t = time.monotonic()
    p = subprocess.run([binary, "runq", "--spool", spool, "--hostname", "relay.bench", "--log", "stderr",
                        "--concurrency", "1"] + route_args, capture_output=True, text=True)
    elapsed = time.monotonic() - t
    got = sum(int(m) for m in re.findall(r"event=runq-done .*? delivered=(\d+)", p.stderr))
    left = os.listdir(os.path.join(spool, "queue"))
    if p.returncode != 0 or got != n or left:
        sys.exit(f"runq {' '.join(route_args)}: exit {p.returncode}, {got} delivered, {len(left)} left; "
                 f"log tail: {p.stderr[-500:]}")
    return n / elapsed


def spread(values):
    return f"{statistics.median(values):.1f} ({min(values):.1f}-{max(values):.1f})"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--binary", default="build/smtpspool")
    ap.add_argument("-n", type=int, default=500, help="messages (default 500)")
    ap.add_argument("--size", type=int, default=1000, help="approximate body octets (default 1000)")
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    binary = os.path.abspath(args.binary)
    work = tempfile.mkdtemp(prefix="smtpspool-bench-amqp-")
    sink_port = free_port()
    sink = subprocess.Popen([python_with("aiosmtpd"), "-c", SINK, str(sink_port)], stdout=subprocess.PIPE)
    broker = None
    try:
        if sink.stdout.readline().strip() != b"ready":
            sys.exit("the sink did not start")
        t = time.monotonic()
        broker = Broker(work)
        started = time.monotonic() - t
        broker.tool("declare", "mail", "bench", "bench")
        creds = os.path.join(work, "credentials")
        with open(creds, "w") as f:
            f.write(f"127.0.0.1:{broker.port} bench:{broker.password}\n")
        os.chmod(creds, 0o600)
        amqp = ["--amqp-credentials-file", creds,
                "--route", f"*=amqp://bench@127.0.0.1:{broker.port}/?exchange=mail&routing_key=bench"]
        smtp = ["--smarthost", f"127.0.0.1:{sink_port}"]
        spool = os.path.join(work, "spool")
        queue(binary, spool, args.n, args.size)
        size = os.path.getsize(os.path.join(spool, "queue", os.listdir(os.path.join(spool, "queue"))[0],
                                            "message.eml"))
        rates = {"amqp": [], "smtp": []}
        for i in range(args.runs):
            for kind, route in (("amqp", amqp), ("smtp", smtp)):
                copy = os.path.join(work, f"{kind}{i}")
                shutil.copytree(spool, copy)
                rates[kind].append(timed_runq(binary, copy, args.n, route))
                shutil.rmtree(copy)
            count = int(broker.tool("count", "bench").strip())
            if count != args.n * (i + 1):
                sys.exit(f"the quorum queue holds {count} messages, not {args.n * (i + 1)}")
        print(f"{args.n} messages of {size} octets, {args.runs} runs; RabbitMQ started in {started:.1f} s")
        print(f"amqp, one runq, a quorum queue (one connection, a confirm per message): "
              f"{spread(rates['amqp'])} messages/s")
        print(f"smtp, one runq, the aiosmtpd sink (one connection): {spread(rates['smtp'])} messages/s")
        print(f"ratio smtp/amqp: {statistics.median(rates['smtp']) / statistics.median(rates['amqp']):.2f}x")
    finally:
        if broker is not None:
            broker.stop()
        sink.kill()
        sink.wait()
        shutil.rmtree(work, ignore_errors=True)


main()
