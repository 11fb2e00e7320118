#!/usr/bin/env python3
"""Writes the seed corpora of the fuzz targets into tests/fuzz/corpus/ from
the session transcripts and a few hand-made inputs. Run from the top of the
tree; the output is committed."""
import hashlib
import os
import struct
import sys

sys.path.insert(0, "tests/sessions")
import run as transcripts  # noqa: E402

OUT = "tests/fuzz/corpus"


def put(target, data):
    d = os.path.join(OUT, target)
    os.makedirs(d, exist_ok=True)
    name = hashlib.sha1(data).hexdigest()[:16]
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


for name in sorted(os.listdir("tests/sessions")):
    if not name.endswith(".txt"):
        continue
    t = transcripts.parse(os.path.join("tests/sessions", name))
    for mode_byte in (b"\x00", b"\x01", b"\x0a"):
        put("session", mode_byte + t["input"])
    for line in t["input"].split(b"\r\n"):
        if line[:5].upper() in (b"MAIL ", b"RCPT "):
            put("address", line[5:])
            put("address", line[line.find(b"<"):] if b"<" in line else line)

for data in (b"hello\r\n.\r\n", b"..a\r\n.\r\n", b"a\n.\n", b"a\r.\r\n.\r\n", b"x\r\n\x00.\r\n.\r\n"):
    for mode in (b"\x00\x03", b"\x01\x05", b"\x02\x03", b"\x03\x07"):  # bit 1: BDAT chunks are BINARYMIME
        put("data", mode + data)

# Policy service answers (fuzz_policy_service: the first byte the chunk size).
for answer in (b"action=OK\n\n", b"action=DUNNO\n\n", b"action=REJECT no thanks\n\n",
               b"action=DEFER_IF_PERMIT 4.2.0 Greylisted, see http://postgrey.example/\n\n",
               b"action=DEFER_IF_REJECT maybe\n\naction=554 5.7.1 no\n\n",
               b"action=PREPEND X-Greylist: delayed 61 seconds by postgrey-1.37\n\naction=HOLD\n\naction=OK\n\n",
               b"reason=x\r\naction=452 4.2.2 full\r\n\r\n", b"action=DISCARD\n\naction=WARN odd\n\n",
               b"action=INFO x\naction=OK\n\n", b"nonsense\n\n", b"unix:/run/postgrey/socket",
               b"inet:[::1]:10023"):
    for step in (b"\x00", b"\x03"):
        put("policy_service", step + answer)

put("envelope", open("tests/fuzz/seed-envelope.json", "rb").read())
put("envelope", open("tests/fuzz/seed-envelope-dsn.json", "rb").read())
put("envelope", open("tests/fuzz/seed-envelope-limited.json", "rb").read())

# Policy files and header sections (fuzz_policy: first byte 0 aliases, 1
# lists, 2 header check with the flags in the second byte).
for name in ("aliases",):
    put("policy", b"\x00\x00" + open(f"tests/sessions/policy/{name}", "rb").read())
for name in ("sender-deny", "local-users"):
    put("policy", b"\x01\x00" + open(f"tests/sessions/policy/{name}", "rb").read())
for flags in (0, 1, 3, 7, 255):
    put("policy", bytes([2, flags]) + b"Received: a\r\nReceived: b\r\nSubject: x\r\n folded\r\n\r\nbody\r\n")
    put("policy", bytes([2, flags]) + b"Subject: x\r\nno colon\r\n\xc3\xa9: y\r\n\r\n")

for data in (b"220 mx ESMTP\r\n", b"250-mx\r\n250-PIPELINING\r\n250 SIZE 1000\r\n", b"550 5.1.1 no\n",
             b"421-a\r\n421 b\r\n354 go\r\n", b".leading\r\nx\r\r\n.\r\nend"):
    put("client", b"\x03" + data)

# Config files (fuzz_config): the examples, and every settings line of the
# option reference alone.
for name in ("examples/smtpspool.conf", "examples/smarthost.conf"):
    put("config", open(name, "rb").read())
for data in (b"spool = /tmp/s\nroute = example.org=maildir:/var/mail/%u\nroute = *=smtp:[192.0.2.1]:25\n",
             b"retry-schedule = 1m,2h,3d\nmax-queue-time = 4d\nhook-timeout = 30s\nsmtp-timeout = 5m\n",
             b"local-domain = [192.0.2.7]\nrelay-client = 10.0.0.0/8\nrelay-client = 2001:db8::/32\n",
             b"# comment\n\nrfc821 = yes\nlog = none\ndeliver-now = no\nmail-hook = /bin/true %s\n"):
    put("config", data)

# Header sections with Authentication-Results: fields (fuzz_auth_results: the
# first byte sets the chunk size, the second the limit on a held field).
for data in (b"Authentication-Results: mx.test; spf=pass\r\nSubject: x\r\n\r\nbody\r\n",
             b"authentication-results : (c (d)) MX.TEST;\r\n\tdkim=pass\r\nA: b\r\n\r\n",
             b"Authentication-Results: other.test; x\r\nAuthentication-Results: \"mx.test\"; y\n\nbody",
             b"\r\rA: b\r\n \r\nAuthentication-Results: mx.test"):
    for limits in (b"\x03\x00", b"\x01\x40", b"\x07\xff"):
        put("auth_results", limits + data)

# Submitted messages (fuzz_sendmail: first byte sets the chunk size).
for data in (b"To: a@b.test, \"x y\" <c@d.test>\r\nSubject: hi\r\n folded\r\n\r\nbody\n",
             b"From: me\nBcc: team: a@x.test, b@x.test;\nCc: (c) d@x.test\n\n.\n",
             b"To: <@relay.test:f@x.test>\rSubject: cr\r\rbody\r",
             b"Subject: no end\nbody without blank line\n"):
    put("sendmail", b"\x03" + data)

# PROXY protocol headers (fuzz_proxy: first byte sets the chunk size).
SIGNATURE = b"\r\n\r\n\0\r\nQUIT\n"
IPV4 = bytes([192, 0, 2, 7, 198, 51, 100, 1]) + struct.pack(">HH", 40001, 25)
IPV6 = (bytes.fromhex("20010db8000000000000000000000007") + bytes.fromhex("20010db8000000000000000000000001")
        + struct.pack(">HH", 65535, 0))
for data in (b"PROXY TCP4 192.0.2.7 198.51.100.1 40001 25\r\nEHLO c.test\r\n",
             b"PROXY TCP6 2001:db8::7 2001:db8::1 65535 0\r\n",
             b"PROXY TCP6 ::ffff:192.0.2.7 ::1 1 2\r\n",
             b"PROXY UNKNOWN\r\n",
             b"PROXY UNKNOWN 192.0.2.7 x y z\r\n",
             b"PROXY TCP4 192.0.2.7 198.51.100.1 025 2\r\n",
             SIGNATURE + b"\x21\x11" + struct.pack(">H", 12) + IPV4 + b"EHLO c.test\r\n",
             SIGNATURE + b"\x21\x21" + struct.pack(">H", 36) + IPV6,
             SIGNATURE + b"\x21\x11" + struct.pack(">H", 18) + IPV4 + b"\x04\x00\x03abc",
             SIGNATURE + b"\x20\x00\x00\x00",
             SIGNATURE + b"\x21\x31" + struct.pack(">H", 216) + b"\0" * 216,
             SIGNATURE + b"\x21\x11" + struct.pack(">H", 1241)):
    for step in (b"\x00", b"\x04"):
        put("proxy", step + data)

# The 8-bit to 7-bit conversion: first octet = chunk size and flags (bit 7:
# 8-bit header fields allowed), then a message.
DOWNGRADE_SEEDS = [
    b"Subject: x\r\n\r\nGr\xc3\xbc\xc3\x9fe =  \r\n.dot\r\n",
    b"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b\"\r\n\r\npre \xe9\r\n--b\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\ncaf\xc3\xa9\r\n"
    b"--b\r\nContent-Type: application/octet-stream\r\n\r\n\x80\x81\xff\r\n--b--\r\nepi\r\n",
    b"Content-Type: multipart/signed; boundary=s\r\n\r\n--s\r\n\r\n\xe9\r\n--s--\r\n",
    b"Content-Type: message/rfc822\r\n\r\nSubject: in\r\n\r\n\xe9\r\n",
    b"Content-Type: multipart/digest; boundary=d\r\n\r\n--d\r\n\r\nSubject: d\r\n\r\n\xfc\r\n--d--\r\n",
    b"Subject: \xc3\xa9\r\n\r\nbody \xc3\xa9",
    b"Content-Transfer-Encoding: base64\r\n\r\nTWFu\r\n",
    b"X: " + b"a" * 5000 + b"\r\n\r\n" + b"\xe9" * 5000 + b"\r\n",
]
for data in DOWNGRADE_SEEDS:
    for mode in (b"\x00", b"\x06", b"\x86"):
        put("downgrade", mode + data)

# Milter replies (fuzz_milter): the answer to SMFIC_OPTNEG, then replies.
def mpkt(cmd, data=b""):
    return struct.pack(">I", len(data) + 1) + cmd + data


MILTER_NEG = mpkt(b"O", struct.pack(">III", 6, 0x1ff, 0x1fffff))
MILTER_NEG_LISTS = mpkt(b"O", struct.pack(">III", 6, 0x100, 0) + struct.pack(">I", 2) + b"{mail_addr} i\0"
                        + struct.pack(">I", 3) + b"{rcpt_addr}\0")
MILTER_REPLIES = [
    mpkt(b"c"), mpkt(b"a"), mpkt(b"r"), mpkt(b"t"), mpkt(b"d"), mpkt(b"p"), mpkt(b"s"), mpkt(b"f"),
    mpkt(b"y", b"554 5.7.1 Go away\0"), mpkt(b"y", b"451 4.7.0 Later\0"), mpkt(b"y", b"250 no\0"),
    mpkt(b"h", b"X-Spam\0yes\0"), mpkt(b"i", struct.pack(">I", 0) + b"X-First\0one\n\ttwo\0"),
    mpkt(b"m", struct.pack(">I", 1) + b"Subject\0\0"), mpkt(b"+", b"<new@example.test>\0"),
    mpkt(b"2", b"<p@example.test>\0NOTIFY=NEVER\0"), mpkt(b"-", b"old@example.test\0"),
    mpkt(b"e", b"<>\0"), mpkt(b"b", b"new body\r\n"), mpkt(b"q", b"looks bad\0"),
    struct.pack(">I", 0), struct.pack(">I", 0x7fffffff) + b"c",
]
put("milter", MILTER_NEG + b"".join(MILTER_REPLIES))
put("milter", MILTER_NEG_LISTS + b"".join(MILTER_REPLIES[:8]))
for r in MILTER_REPLIES:
    put("milter", MILTER_NEG + r)
