#!/bin/bash
# Session transcripts (--transcript-dir) under tcpserver: a session with
# STARTTLS, AUTH PLAIN and LOGIN (smtplib), a message by DATA and one by
# BDAT. The transcript has each command and reply with timestamps and the
# TLS and AUTH events; the password, the base64 credentials and the message
# content never appear; its name sorts by time and carries both queue ids;
# `cat --transcript ID` prints it for either id. Then, on a pipe with
# tcpserver's variables: --transcript-client picks the clients, and
# --transcript-max-size ends a long transcript with its marker.
# shellcheck source=tests/e2e/lib.sh
source "$(dirname "$0")/lib.sh"
need_tool tcpserver openssl python3

SPOOL=$TEST_TMP/spool
TR=$TEST_TMP/transcripts
mkdir -p "$TR"
CERT=$TEST_TMP/cert.pem
KEY=$TEST_TMP/key.pem
make_certificate "$CERT" "$KEY"
printf 'alice:%s\n' "$(openssl passwd -6 's3cret word')" >"$TEST_TMP/passwd"

PORT=$(free_port)
start_bg "$TEST_TMP/server.log" tcpserver -R -H -l 0 127.0.0.1 "$PORT" "$SMTPSPOOL_BIN" --spool "$SPOOL" \
    --hostname mx.test.example --log stderr --tls-cert "$CERT" --tls-key "$KEY" \
    --auth-passwd "$TEST_TMP/passwd" --transcript-dir "$TR"
wait_for_port "$PORT" "$BG_PID" "$TEST_TMP/server.log"

step "a session with STARTTLS, AUTH, DATA and BDAT: its transcript"
PORT=$PORT SPOOL=$SPOOL TR=$TR python3 - <<'PY'
import base64, os, re, smtplib, ssl, stat, subprocess
from e2elib import *

ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
spool, tr = os.environ["SPOOL"], os.environ["TR"]

def main():
    c = smtplib.SMTP("127.0.0.1", int(os.environ["PORT"]), local_hostname="client.test.example", timeout=20)
    c.ehlo()
    c.starttls(context=ctx)
    c.ehlo()
    try:
        c.login("alice", "wrong password")
        raise Failure("a wrong password logged in")
    except smtplib.SMTPAuthenticationError:
        pass
    c.user, c.password = "alice", "s3cret word"
    expect_eq(235, c.auth("LOGIN", c.auth_login, initial_response_ok=False)[0], "AUTH LOGIN")
    c.sendmail("a@client.test.example", ["far@elsewhere.example"], b"Subject: by data\r\n\r\nTOP-SECRET-DATA\r\n")
    c.mail("a@client.test.example")
    c.rcpt("far@elsewhere.example")
    chunk = b"Subject: b\r\n\r\nTOP-SECRET-BDAT\r\n"
    c.send(b"BDAT %d LAST\r\n" % len(chunk) + chunk)
    code, text = c.getreply()
    expect_eq(250, code, f"BDAT LAST ({text})")
    c.quit()
    ids = queue_ids(spool)
    expect_eq(2, len(ids), "messages queued")
    # The server writes the file before it closes the connection: done once
    # the session's process has renamed it (the .open name is gone).
    # (wait_for_port's probe connection has a transcript too, without ids.)
    names = wait_for(lambda: [n for n in os.listdir(tr) if "+" in n and n.endswith(".txt")] or None,
                     "the renamed transcript")
    expect_eq(1, len(names), f"transcripts with ids ({os.listdir(tr)})")
    name = names[0]
    expect(re.fullmatch(r"\d{8}T\d{6}-\d{6}-\d+\+[-\w]+\+[-\w]+\.txt", name), "the name: time, pid, ids", found=name)
    expect(all(i in name for i in ids), "both queue ids in the name", ids, name)
    st = os.lstat(os.path.join(tr, name))
    expect_eq(0o640, stat.S_IMODE(st.st_mode), "the transcript's mode")
    text = open(os.path.join(tr, name), "rb").read()
    for secret in (b"s3cret", b"wrong password", base64.b64encode(b"s3cret word"), base64.b64encode(b"wrong password"),
                   base64.b64encode(b"\0alice\0wrong password"), b"TOP-SECRET", b"Subject:"):
        expect(secret not in text, f"{secret!r} is not in the transcript")
    lines = text.decode().splitlines()
    stamp = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z [<>*] ")
    expect(all(stamp.match(l) for l in lines), "every line: a timestamp and a direction", found=lines[:5])
    for want in ("> EHLO client.test.example", "< 220 2.0.0", "> STARTTLS", "* event=tls version=TLS",
                 "> [AUTH command, not recorded]", "> [AUTH response, not recorded]", "* event=auth mechanism=PLAIN",
                 "result=refused", "* event=auth mechanism=LOGIN user=alice result=ok", "< 235 2.7.0",
                 "> DATA", "> BDAT 31 LAST", "* event=queued id=" + ids[0], "* event=queued id=" + ids[1],
                 "chunks=1", "> QUIT", "< 221 "):
        expect(any(want.lower() in l.lower() for l in lines), f"a line with {want!r}", found="\n".join(lines))
    for qid in ids:
        p = subprocess.run([binary(), "cat", "--transcript", "--transcript-dir", tr, qid], capture_output=True)
        expect_eq((0, text), (p.returncode, p.stdout), f"cat --transcript {qid}")
    p = subprocess.run([binary(), "cat", "--transcript", "--transcript-dir", tr, "20200101T000000-000001-1-0"],
                       capture_output=True)
    expect_eq(66, p.returncode, f"cat --transcript of an unknown id ({p.stderr})")

def wait_for(probe, what):
    import time
    for _ in range(200):
        got = probe()
        if got:
            return got
        time.sleep(0.05)
    raise Failure(f"never: {what}")

run(main)
PY

step "--transcript-client: only the clients in the networks; --transcript-max-size: the marker"
SPOOL=$SPOOL TR=$TEST_TMP python3 - <<'PY'
import os, subprocess
from e2elib import *

def serve(client, tr, *options, data=b"EHLO c.example\r\nQUIT\r\n"):
    os.makedirs(tr, exist_ok=True)
    env = {"PATH": os.environ["PATH"], "TCPREMOTEIP": client, "TCPREMOTEPORT": "4000", "PROTO": "TCP"}
    p = subprocess.run([binary(), "--spool", os.environ["SPOOL"], "--hostname", "mx.test", "--log", "none",
                        "--transcript-dir", tr, *options], input=data, capture_output=True, env=env)
    expect_eq(0, p.returncode, f"serve ({p.stderr})")
    return sorted(os.listdir(tr))

def main():
    base = os.environ["TR"]
    nets = ["--transcript-client", "192.0.2.0/24", "--transcript-client", "2001:db8::/32"]
    expect_eq(1, len(serve("192.0.2.7", base + "/a", *nets)), "a client in the first network")
    expect_eq(1, len(serve("2001:db8::5", base + "/b", *nets)), "a client in the second network")
    expect_eq(0, len(serve("198.51.100.1", base + "/c", *nets)), "a client in neither")
    many = b"EHLO c.example\r\n" + (b"NOOP " + b"x" * 400 + b"\r\n") * 50 + b"QUIT\r\n"
    names = serve("192.0.2.7", base + "/d", "--transcript-max-size", "4096", data=many)
    text = open(os.path.join(base, "d", names[0]), "rb").read()
    expect(len(text) <= 4096, "the transcript within its cap", "<= 4096", len(text))
    last = text.decode().splitlines()[-1]
    expect(last.endswith(" * [transcript truncated: at most 4096 octets]"), "the marker last", found=last)

run(main)
PY
