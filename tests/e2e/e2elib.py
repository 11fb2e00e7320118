"""Python helpers for the end-to-end tests: reading and checking the spool.

Failure, expect, expect_eq and run come from tests/lib/testlib.py (and are
re-exported for the tests' `from e2elib import *`): every check raises
Failure with what was expected and what was found; run() turns that into
"FAIL: ..." on stderr and exit status 1.
"""

import json
import os
import re
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from testlib import Failure, clean_env, expect, expect_eq, run  # noqa: E402,F401 (re-exported)

ID_RE = re.compile(r"^[A-Za-z0-9_-]{1,128}$")
RFC3339_UTC_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")


def binary():
    return os.environ["SMTPSPOOL_BIN"]


def queue_ids(spool):
    """The message directories under SPOOL/queue, sorted."""
    qdir = os.path.join(spool, "queue")
    if not os.path.isdir(qdir):
        return []
    return sorted(os.listdir(qdir))


def tmp_entries(spool):
    tdir = os.path.join(spool, "tmp")
    if not os.path.isdir(tdir):
        return []
    return sorted(os.listdir(tdir))


def mailq_json(spool):
    """`smtpspool mailq --json`: one JSON object per line, in queue order."""
    p = subprocess.run([binary(), "mailq", "--spool", spool, "--json"], capture_output=True, timeout=30)
    expect_eq(0, p.returncode, f"exit status of mailq --json (stderr {p.stderr!r})")
    out = []
    for line in p.stdout.decode().splitlines():
        try:
            out.append(json.loads(line))
        except ValueError:
            raise Failure(f"mailq --json printed a line that is not JSON: {line!r}")
    return out


def load(spool, qid):
    """(envelope dict, message.eml bytes) of one queued message."""
    d = os.path.join(spool, "queue", qid)
    expect(sorted(os.listdir(d)) == ["envelope.json", "message.eml"], f"files in queue/{qid}",
           ["envelope.json", "message.eml"], sorted(os.listdir(d)))
    with open(os.path.join(d, "envelope.json"), "rb") as f:
        raw = f.read()
    try:
        env = json.loads(raw)
    except ValueError:
        raise Failure(f"queue/{qid}/envelope.json is not JSON: {raw[:200]!r}")
    with open(os.path.join(d, "message.eml"), "rb") as f:
        msg = f.read()
    return env, msg


def check_envelope(env, qid, msg):
    """The fixed keys of PRODUCT.md, their types, and agreement with the files."""
    expect(isinstance(env, dict), "envelope", "a JSON object", type(env).__name__)
    for key in ("version", "id", "received_at", "hostname", "client", "mail_from", "body", "smtputf8", "size",
                "recipients"):
        expect(key in env, f"envelope of {qid}", f"key {key!r}", sorted(env))
    expect_eq(1, env["version"], f"{qid}: version")
    expect_eq(qid, env["id"], f"{qid}: id (the directory name)")
    expect(ID_RE.match(env["id"]) is not None, f"{qid}: id", "[A-Za-z0-9_-]+", env["id"])
    expect(isinstance(env["received_at"], str) and RFC3339_UTC_RE.match(env["received_at"]) is not None,
           f"{qid}: received_at", "an RFC 3339 UTC timestamp", env["received_at"])
    expect(isinstance(env["hostname"], str) and env["hostname"] != "", f"{qid}: hostname", "a name",
           env["hostname"])
    client = env["client"]
    expect(isinstance(client, dict), f"{qid}: client", "an object", client)
    for key in ("address", "port", "hostname", "ident", "helo", "protocol"):
        expect(key in client, f"{qid}: client", f"key {key!r}", sorted(client))
    expect(client["protocol"] in ("SMTP", "ESMTP"), f"{qid}: client.protocol", "SMTP or ESMTP", client["protocol"])
    expect(isinstance(env["mail_from"], str), f"{qid}: mail_from", "a string", env["mail_from"])
    expect(env["body"] in ("7BIT", "8BITMIME"), f"{qid}: body", "7BIT or 8BITMIME", env["body"])
    expect(isinstance(env["smtputf8"], bool), f"{qid}: smtputf8", "true or false", env["smtputf8"])
    expect_eq(len(msg), env["size"], f"{qid}: size (octets of message.eml)")
    rcpts = env["recipients"]
    expect(isinstance(rcpts, list) and len(rcpts) > 0, f"{qid}: recipients", "a non-empty list", rcpts)
    for r in rcpts:
        expect_eq({"address", "status", "attempts", "last_error"}, set(r), f"{qid}: recipient keys")
        expect_eq("pending", r["status"], f"{qid}: status of a new recipient")
        expect_eq(0, r["attempts"], f"{qid}: attempts of a new recipient")
        expect_eq(None, r["last_error"], f"{qid}: last_error of a new recipient")


def split_received(msg, qid):
    """(Received: header, the rest) of message.eml; checks the header's shape."""
    expect(msg.startswith(b"Received: "), f"{qid}: message.eml", "to start with 'Received: '", msg[:60])
    pos = 0
    while True:
        end = msg.find(b"\r\n", pos)
        expect(end >= 0, f"{qid}: Received: header", "lines ending with CRLF", msg[:300])
        pos = end + 2
        if msg[pos:pos + 1] not in (b" ", b"\t"):
            break
    header = msg[:pos]
    expect(b"\n" not in header.replace(b"\r\n", b""), f"{qid}: Received: header", "no bare LF", header)
    expect(f" id {qid}".encode() in header, f"{qid}: Received: header", f"'id {qid}'", header)
    return header, msg[pos:]


def expect_crlf_only(data, what):
    """Every LF is preceded by CR and every CR followed by LF."""
    bare_lf = re.search(rb"(?<!\r)\n", data)
    bare_cr = re.search(rb"\r(?!\n)", data)
    expect(bare_lf is None and bare_cr is None, what, "CRLF line ends only",
           data[max(0, (bare_lf or bare_cr).start() - 30):(bare_lf or bare_cr).start() + 30]
           if (bare_lf or bare_cr) else None)


def queued_id(reply_text, what):
    """The ID out of '2.0.0 message accepted, queued as ID'."""
    m = re.search(r"queued as ([A-Za-z0-9_-]+)\s*$", reply_text)
    expect(m is not None, what, "a reply '... queued as ID'", reply_text)
    return m.group(1)
