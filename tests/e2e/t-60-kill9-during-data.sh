#!/bin/bash
# kill -9 of smtpspool in the middle of DATA must leave nothing in the queue
# (at most the message's own directory under tmp/, which nothing lists), and
# the next session must deliver normally.
#  1. through a pipe: smtpspool is our child; 200 kB of body are sent, we wait
#     until they reach SPOOL/tmp, then SIGKILL;
#  2. through tcpserver: the smtpspool serving our connection (found by its
#     TCPREMOTEPORT) is killed; the client must see the connection close
#     without a 250;
#  3. a client that disconnects during DATA (no kill): its partial message is
#     deleted from tmp/ (smtpspool(8)), nothing is queued;
#  4. a new session through the same tcpserver delivers a message normally.
# shellcheck source=tests/e2e/lib.sh
source "$(dirname "$0")/lib.sh"
need_tool tcpserver tcprules python3

SPOOL=$TEST_TMP/spool

step "1. kill -9 a piped session during DATA"
SPOOL=$SPOOL LOG=$TEST_TMP/piped.log python3 - <<'EOF'
import os, signal, subprocess, time
from e2elib import *

spool = os.environ["SPOOL"]

def reply(out):
    """One SMTP reply (all its lines) from a binary stream."""
    lines = []
    while True:
        line = out.readline()
        expect(line != b"", "a reply from smtpspool", "a line", "end of output")
        lines.append(line)
        if line[3:4] != b"-":
            return b"".join(lines)

def main():
    with open(os.environ["LOG"], "wb") as log:
        p = subprocess.Popen([binary(), "--spool", spool, "--hostname", "mx.test.example", "--log", "stderr"],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log)
    try:
        expect(reply(p.stdout).startswith(b"220 "), "greeting", "220", None)
        for cmd, code in ((b"EHLO pipe.test.example", b"250"), (b"MAIL FROM:<a@client.test.example>", b"250"),
                          (b"RCPT TO:<b@mx.test.example>", b"250"), (b"DATA", b"354")):
            p.stdin.write(cmd + b"\r\n")
            p.stdin.flush()
            r = reply(p.stdout)
            expect(r.startswith(code), f"reply to {cmd!r}", code, r)
        p.stdin.write(b"Subject: never queued\r\n\r\n" + b"partial body line\r\n" * 12000)  # ~216 kB
        p.stdin.flush()
        # Wait until the spool writer has written some of it.
        deadline = time.time() + 10
        written = 0
        while time.time() < deadline:
            for entry in tmp_entries(spool):
                f = os.path.join(spool, "tmp", entry, "message.eml")
                if os.path.exists(f):
                    written = os.path.getsize(f)
            if written > 0:
                break
            time.sleep(0.02)
        expect(written > 0, "tmp/ID/message.eml during DATA", "some octets written", written)
        expect_eq([], queue_ids(spool), "queue/ during DATA")
        os.kill(p.pid, signal.SIGKILL)
        expect_eq(-signal.SIGKILL, p.wait(timeout=10), "smtpspool's end (killed by SIGKILL)")
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    expect_eq([], queue_ids(spool), "queue/ after kill -9")
    left = tmp_entries(spool)
    expect(len(left) <= 1, "tmp/ after kill -9", "at most the one message directory", left)
    for entry in left:
        expect("envelope.json" not in os.listdir(os.path.join(spool, "tmp", entry)), f"tmp/{entry}",
               "no envelope.json (the message was never committed)", os.listdir(os.path.join(spool, "tmp", entry)))
    expect_eq([], mailq_json(spool), "mailq --json after kill -9")

run(main)
EOF
out=$("$SMTPSPOOL_BIN" mailq --spool "$SPOOL")
assert_eq "Mail queue is empty" "$out" "mailq after kill -9"

step "2. kill -9 the smtpspool serving a TCP connection during DATA"
compile_rules "$REPO_ROOT/examples/tcpserver/tcp.smtp" "$TEST_TMP/tcp.smtp.cdb"
start_tcpserver "$TEST_TMP/tcp.smtp.cdb" 10 --spool "$SPOOL" --hostname mx.test.example --log stderr
PORT=$PORT SPOOL=$SPOOL SERVER_PID=$SERVER_PID python3 - <<'EOF'
import os, signal, socket, time
from e2elib import *

port, spool, server = int(os.environ["PORT"]), os.environ["SPOOL"], os.environ["SERVER_PID"]

def session_pid(client_port):
    """The child of tcpserver whose TCPREMOTEPORT is our source port."""
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/stat") as f:
                ppid = f.read().rsplit(")", 1)[1].split()[1]
            with open(f"/proc/{pid}/environ", "rb") as f:
                environ = f.read().split(b"\0")
        except OSError:
            continue
        if ppid == server and f"TCPREMOTEPORT={client_port}".encode() in environ:
            return int(pid)
    return None

def main():
    before = set(tmp_entries(spool))
    s = socket.create_connection(("127.0.0.1", port), timeout=20)
    f = s.makefile("rb")
    def reply():
        lines = []
        while True:
            line = f.readline()
            expect(line != b"", "a reply", "a line", "end of connection")
            lines.append(line)
            if line[3:4] != b"-":
                return b"".join(lines)
    expect(reply().startswith(b"220 "), "greeting", "220", None)
    for cmd, code in ((b"EHLO tcp.test.example", b"250"), (b"MAIL FROM:<c@client.test.example>", b"250"),
                      (b"RCPT TO:<d@mx.test.example>", b"250"), (b"DATA", b"354")):
        s.sendall(cmd + b"\r\n")
        r = reply()
        expect(r.startswith(code), f"reply to {cmd!r}", code, r)
    s.sendall(b"Subject: never queued either\r\n\r\n" + b"partial\r\n" * 1000)
    pid = None
    deadline = time.time() + 10
    while pid is None and time.time() < deadline:
        pid = session_pid(s.getsockname()[1])
        time.sleep(0.02)
    expect(pid is not None, "the smtpspool process of our connection", "a child of tcpserver", None)
    # The message being received is in a new directory under tmp/.
    deadline = time.time() + 10
    while not set(tmp_entries(spool)) - before and time.time() < deadline:
        time.sleep(0.02)
    expect(len(set(tmp_entries(spool)) - before) == 1, "tmp/ during DATA", "one new message directory",
           tmp_entries(spool))
    os.kill(pid, signal.SIGKILL)
    # The client sees the connection end, and never a 250.
    rest = f.read()
    expect_eq(b"", rest, "what the client receives after the kill")
    s.close()
    expect_eq([], queue_ids(spool), "queue/ after the second kill -9")
    expect_eq([], mailq_json(spool), "mailq --json after the second kill -9")
    expect(len(tmp_entries(spool)) <= 2, "tmp/", "at most the two killed messages", tmp_entries(spool))

run(main)
EOF

step "3. a client that disconnects during DATA leaves nothing behind"
PORT=$PORT SPOOL=$SPOOL python3 - <<'EOF'
import os, socket, time
from e2elib import *

port, spool = int(os.environ["PORT"]), os.environ["SPOOL"]

def main():
    before = set(tmp_entries(spool))
    s = socket.create_connection(("127.0.0.1", port), timeout=20)
    f = s.makefile("rb")
    f.readline()
    s.sendall(b"HELO gone.test.example\r\nMAIL FROM:<g@client.test.example>\r\n"
              b"RCPT TO:<h@mx.test.example>\r\nDATA\r\n")
    replies = [f.readline() for _ in range(4)]
    expect(replies[3].startswith(b"354 "), "reply to DATA", "354", replies)
    s.sendall(b"Subject: cut off\r\n\r\n" + b"partial\r\n" * 1000)
    deadline = time.time() + 10
    while not set(tmp_entries(spool)) - before and time.time() < deadline:
        time.sleep(0.02)
    new = set(tmp_entries(spool)) - before
    expect_eq(1, len(new), "new directories in tmp/ during DATA")
    f.close()
    s.close()  # end of input in the middle of the data
    # smtpspool(8): "If the client disconnects during the data, the partial
    # message is deleted."
    deadline = time.time() + 10
    while set(tmp_entries(spool)) & new and time.time() < deadline:
        time.sleep(0.02)
    expect_eq(set(), set(tmp_entries(spool)) & new, "the partial message in tmp/ after the disconnect")
    expect_eq([], queue_ids(spool), "queue/ after the disconnect")

run(main)
EOF

step "4. the next session delivers normally"
PORT=$PORT SPOOL=$SPOOL python3 - <<'EOF'
import os, smtplib
from e2elib import *

port, spool = int(os.environ["PORT"]), os.environ["SPOOL"]
body = b"Subject: after the crash\r\n\r\ndelivered\r\n"

def main():
    c = smtplib.SMTP("127.0.0.1", port, local_hostname="after.test.example", timeout=20)
    c.ehlo()
    c.mail("after@client.test.example")
    c.rcpt("e@mx.test.example")
    code, text = c.data(body)
    expect_eq(250, code, f"DATA reply ({text!r})")
    qid = queued_id(text.decode(), "DATA reply")
    c.quit()
    expect_eq([qid], queue_ids(spool), "queue/")
    expect_eq([qid], [e["id"] for e in mailq_json(spool)], "mailq --json")
    env, msg = load(spool, qid)
    check_envelope(env, qid, msg)
    expect_eq("after@client.test.example", env["mail_from"], "mail_from")
    expect_eq(["e@mx.test.example"], [r["address"] for r in env["recipients"]], "recipients")
    _, rest = split_received(msg, qid)
    expect_eq(body, rest, "message after Received:")
    # The killed messages' directories may remain in tmp/, never in the queue.
    for entry in tmp_entries(spool):
        expect(entry != qid, "tmp/", "not the delivered message", entry)

run(main)
EOF
