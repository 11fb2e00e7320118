"""Python helpers of the delivery tests (t-90 and up), beside e2elib.

queue() puts messages in a spool through a piped session; envelope() reads
one envelope.json whatever its delivery state; transactions() reads what the
smarthost (smarthost.py) recorded; check_bounce() checks an RFC 3464 report
queued by runq, part by part.
"""

import datetime
import email
import email.policy
import json
import os
import re
import subprocess

from e2elib import Failure, binary, expect, expect_eq, RFC3339_UTC_RE


def stuff(body):
    """The DATA form of a message given with CRLF line ends: dots doubled, '.' line."""
    expect(body.endswith(b"\r\n"), "a test message", "to end with CRLF", body[-20:])
    lines = body[:-2].split(b"\r\n")
    return b"".join((b"." + line if line.startswith(b".") else line) + b"\r\n" for line in lines) + b".\r\n"


def queue(spool, messages, hostname="a.test"):
    """Queues each (mail_from, [recipients], body[, MAIL parameters]) in one
    session piped into smtpspool (a local client, so it may relay); returns
    the queue IDs. A BODY=BINARYMIME message goes in one BDAT chunk, as it is."""
    session = [b"EHLO client.test\r\n"]
    for mail_from, rcpts, body, *params in messages:
        session.append(f"MAIL FROM:<{mail_from}>{''.join(' ' + p for p in params)}\r\n".encode())
        session += [f"RCPT TO:<{r}>\r\n".encode() for r in rcpts]
        if "BODY=BINARYMIME" in params:
            session.append(f"BDAT {len(body)} LAST\r\n".encode() + body)
        else:
            session.append(b"DATA\r\n")
            session.append(stuff(body))
    session.append(b"QUIT\r\n")
    p = subprocess.run([binary(), "--spool", spool, "--hostname", hostname, "--log", "none"],
                       input=b"".join(session), capture_output=True, timeout=60)
    expect_eq(0, p.returncode, f"exit status of the queueing session (stderr {p.stderr[-300:]!r})")
    ids = re.findall(rb"^250 2\.0\.0 message accepted, queued as ([A-Za-z0-9_-]+)\r$", p.stdout, re.M)
    expect_eq(len(messages), len(ids), f"messages queued (replies {p.stdout[-600:]!r})")
    return [i.decode() for i in ids]


def envelope(spool, qid):
    """envelope.json of one queued message, parsed, whatever its state."""
    path = os.path.join(spool, "queue", qid, "envelope.json")
    with open(path, "rb") as f:
        raw = f.read()
    try:
        return json.loads(raw)
    except ValueError:
        raise Failure(f"queue/{qid}/envelope.json is not JSON: {raw[:300]!r}")


def message(spool, qid):
    with open(os.path.join(spool, "queue", qid, "message.eml"), "rb") as f:
        return f.read()


def parse_time(text, what):
    expect(isinstance(text, str) and RFC3339_UTC_RE.match(text) is not None, what, "an RFC 3339 UTC time", text)
    return datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))


def recipients(env):
    """{address: (status, attempts, last_error)} of an envelope."""
    return {r["address"]: (r["status"], r["attempts"], r["last_error"]) for r in env["recipients"]}


def jsonl(path):
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def transactions(directory):
    """What smarthost.py recorded: one dict per end of data, in order."""
    return jsonl(os.path.join(directory, "transactions.jsonl"))


def received(directory, entry):
    """The octets the smarthost received in one accepted transaction."""
    with open(os.path.join(directory, entry["file"]), "rb") as f:
        return f.read()


def lf(data):
    return data.replace(b"\r\n", b"\n")


def check_bounce(spool, bid, original, failures, original_head):
    """Checks the bounce `bid` queued for the message `original` (its envelope):
    the envelope (null sender, to the original sender), and message.eml as an
    RFC 3464 report: a text part naming each failed recipient, a
    message/delivery-status part with Reporting-MTA, one group per entry of
    `failures` ({address: (status regex, text in Diagnostic-Code)}) and
    nothing else, and the original header section `original_head` (bytes,
    CRLF) as text/rfc822-headers. Returns the parsed message."""
    env = envelope(spool, bid)
    expect_eq("", env["mail_from"], f"bounce {bid}: mail_from (the null sender)")
    expect_eq([original["mail_from"]], [r["address"] for r in env["recipients"]], f"bounce {bid}: recipients")
    expect_eq(["pending"], [r["status"] for r in env["recipients"]], f"bounce {bid}: status")
    raw = message(spool, bid)
    expect_eq(len(raw), env["size"], f"bounce {bid}: size")
    expect(b"\n" not in raw.replace(b"\r\n", b""), f"bounce {bid}: message.eml", "CRLF line ends only", raw[:200])
    msg = email.message_from_bytes(raw, policy=email.policy.compat32)
    expect_eq(f"<{original['mail_from']}>", msg["To"], f"bounce {bid}: To:")
    expect(msg["From"] is not None and "MAILER-DAEMON@" in msg["From"], f"bounce {bid}: From:",
           "MAILER-DAEMON@...", msg["From"])
    expect_eq("auto-replied", msg["Auto-Submitted"], f"bounce {bid}: Auto-Submitted: (RFC 3834)")
    expect_eq("multipart/report", msg.get_content_type(), f"bounce {bid}: Content-Type")
    expect_eq("delivery-status", msg.get_param("report-type"), f"bounce {bid}: report-type")
    expect(msg.defects == [], f"bounce {bid}: MIME structure", "no defects", msg.defects)
    parts = msg.get_payload()
    expect_eq(["text/plain", "message/delivery-status", "text/rfc822-headers"],
              [p.get_content_type() for p in parts], f"bounce {bid}: parts")
    text = parts[0].get_payload()
    expect(original["id"] in text, f"bounce {bid}: text part", f"the original id {original['id']}", text)
    for address in failures:
        expect(f"<{address}>" in text, f"bounce {bid}: text part", f"<{address}>", text)
    blocks = parts[1].get_payload()
    expect(len(blocks) == 1 + len(failures), f"bounce {bid}: delivery-status groups",
           f"one per-message group and {len(failures)} per-recipient", [b.items() for b in blocks])
    expect(blocks[0]["Reporting-MTA"] is not None and blocks[0]["Reporting-MTA"].startswith("dns; "),
           f"bounce {bid}: Reporting-MTA", "dns; NAME", blocks[0].items())
    seen = {}
    for b in blocks[1:]:
        final = b["Final-Recipient"]
        expect(final is not None and final.startswith("rfc822; "), f"bounce {bid}: Final-Recipient",
               "rfc822; ADDRESS", b.items())
        seen[final[len("rfc822; "):]] = b
    expect_eq(sorted(failures), sorted(seen), f"bounce {bid}: Final-Recipient addresses")
    for address, (status_re, diagnostic) in failures.items():
        b = seen[address]
        expect_eq("failed", b["Action"], f"bounce {bid}: Action for {address}")
        expect(re.fullmatch(status_re, b["Status"] or "") is not None, f"bounce {bid}: Status for {address}",
               status_re, b["Status"])
        expect(diagnostic in (b["Diagnostic-Code"] or ""), f"bounce {bid}: Diagnostic-Code for {address}",
               diagnostic, b["Diagnostic-Code"])
    headers = parts[2].get_payload(decode=True)
    expect_eq(original_head, headers.rstrip(b"\r\n") + b"\r\n", f"bounce {bid}: the original headers")
    return msg


def head_of(msg):
    """The header section of message octets (CRLF), up to its blank line."""
    end = msg.find(b"\r\n\r\n")
    expect(end >= 0, "a message", "a blank line after the headers", msg[:200])
    return msg[:end + 2]
