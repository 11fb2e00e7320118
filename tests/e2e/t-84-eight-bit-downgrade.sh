#!/bin/bash
# runq delivers to a smarthost without 8BITMIME (aiosmtpd, tests/e2e/smarthost.py
# with "no_8bitmime"). Four messages queued through serve (so the envelope's
# "content" is what the spool writer saw):
#  1. BODY=8BITMIME, multipart/mixed: a text/plain part in UTF-8 (8bit), an
#     application/octet-stream part with 8-bit octets, a 7-bit part;
#  2. no BODY=, a plain 8-bit body without MIME header fields, and a UTF-8
#     Subject (sent as RFC 2047 encoded words);
#  3. BODY=8BITMIME but 7-bit octets only;
#  4. BODY=8BITMIME, multipart/signed with an 8-bit signed part.
# 1 and 2 must arrive converted: every octet below 0x80, every line at most
# 998 octets, and each part must decode to the part queued (the 8-bit text
# quoted-printable, the octets base64); MAIL carries no BODY=. 3 must arrive
# exactly as stored, without BODY=8BITMIME. 4 must not be sent: permanent
# "554 5.6.3 ... signed ..." and a bounce to its sender.
# shellcheck source=tests/e2e/lib.sh
source "$(dirname "$0")/lib.sh"
# shellcheck source=tests/e2e/deliverylib.sh
source "$E2E_DIR/deliverylib.sh"
need_aiosmtpd

SPOOL=$TEST_TMP/spool
SINK=$TEST_TMP/sink

step "start a smarthost without 8BITMIME"
set_rules "$TEST_TMP/rules.json" '{"no_8bitmime": true}'
start_smarthost "$SINK" "$TEST_TMP/rules.json"

step "queue four messages"
SPOOL=$SPOOL python3 - <<'EOF'
import json, os
from e2elib import *
from deliverylib import *

spool = os.environ["SPOOL"]
TEXT = "Grüße aus Köln — ☃ = snow =41 \r\n.leading dot\r\n".encode()
OCTETS = bytes(range(0x80, 0x100)) + b"\r\n\x7f mixed\r\n"
M1 = (b"From: alice@client.test\r\nSubject: parts\r\nMIME-Version: 1.0\r\n"
      b"Content-Type: multipart/mixed; boundary=\"==b\"\r\n\r\n"
      b"--==b\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n" + TEXT +
      b"\r\n--==b\r\nContent-Type: application/octet-stream\r\n\r\n" + OCTETS +
      b"\r\n--==b\r\nContent-Type: text/plain\r\n\r\nseven bits\r\n--==b--\r\n")
M2 = "From: alice@client.test\r\nSubject: plain Grüße ☃, and a longer text that needs a few words\r\n\r\n".encode() + TEXT
M3 = b"From: alice@client.test\r\nSubject: seven\r\n\r\nonly ASCII\r\n"
M4 = (b"From: alice@client.test\r\nSubject: signed\r\nMIME-Version: 1.0\r\n"
      b"Content-Type: multipart/signed; protocol=\"application/pgp-signature\"; boundary=s\r\n\r\n"
      b"--s\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n" + TEXT +
      b"\r\n--s\r\nContent-Type: application/pgp-signature\r\n\r\nsig\r\n--s--\r\n")

def main():
    ids = queue(spool, [("alice@client.test", ["bob@far.test"], M1, "BODY=8BITMIME"),
                        ("alice@client.test", ["bob@far.test"], M2),
                        ("alice@client.test", ["bob@far.test"], M3, "BODY=8BITMIME"),
                        ("alice@client.test", ["bob@far.test"], M4, "BODY=8BITMIME")])
    contents = [envelope(spool, i).get("content") for i in ids]
    expect_eq(["8bit", "8bit", "7bit", "8bit"], contents, "the envelopes' content")
    with open(os.path.join(os.environ["TEST_TMP"], "queued.json"), "w") as f:
        json.dump({"ids": ids, "messages": [message(spool, i).decode("latin-1") for i in ids]}, f)

run(main)
EOF

step "runq to the smarthost"
# --concurrency 1: the messages arrive in queue order, which the checks below follow.
runq_logged "$TEST_TMP/runq.log" --spool "$SPOOL" --hostname relay.test --smarthost "127.0.0.1:$SMARTHOST_PORT" \
    --smtp-timeout 10s --concurrency 1
cat "$TEST_TMP/runq.log"
log=$(cat "$TEST_TMP/runq.log")
assert_contains "$log" "554 5.6.3 not sent: 127.0.0.1:$SMARTHOST_PORT does not offer 8BITMIME, and the message cannot be converted to 7 bits: 8-bit content inside multipart/signed" "runq log"
assert_contains "$log" "delivered=3 deferred=0 failed=1 bounces=1" "runq log"

step "what arrived: converted, 7-bit, decoding to what was queued"
python3 - <<'EOF'
import email, email.policy, json, os
from e2elib import *
from deliverylib import *

tmp = os.environ["TEST_TMP"]
sink = os.path.join(tmp, "sink")

def leaves(raw):
    """(content type, decoded payload with LF line ends) of each leaf part."""
    msg = email.message_from_bytes(raw, policy=email.policy.compat32)
    out = []
    for part in msg.walk():
        if part.is_multipart():
            continue
        payload = part.get_payload(decode=True)
        out.append((part.get_content_type(), payload.replace(b"\r\n", b"\n")))
    return out

def main():
    with open(os.path.join(tmp, "queued.json")) as f:
        queued = json.load(f)
    stored = [m.encode("latin-1") for m in queued["messages"]]
    txs = transactions(sink)
    expect_eq(3, len(txs), "transactions at the smarthost")
    for tx in txs:
        expect_eq([], [o for o in tx["mail_options"] if o.upper().startswith("BODY")], "BODY= sent to it")
    arrived = []
    for tx in txs:
        with open(os.path.join(sink, tx["file"]), "rb") as f:
            arrived.append(f.read())
    for i in (0, 1):
        got = arrived[i]
        expect(all(b < 0x80 for b in got), f"message {i + 1} at the smarthost", "7-bit octets only", got[:200])
        longest = max(len(line) for line in got.split(b"\r\n"))
        expect(longest <= 998, f"message {i + 1}'s lines", "at most 998 octets", longest)
        expect_eq(leaves(stored[i]), leaves(got), f"message {i + 1}'s parts, decoded")
    expect(b"Content-Transfer-Encoding: quoted-printable\r\n" in arrived[0], "message 1", "a quoted-printable part", arrived[0])
    expect(b"Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n" in arrived[0],
           "message 1", "the octets in base64", arrived[0])
    expect(b"seven bits" in arrived[0], "message 1", "the 7-bit part as it was", arrived[0])
    expect(b"\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=unknown-8bit\r\n"
           b"Content-Transfer-Encoding: quoted-printable\r\n\r\n" in arrived[1],
           "message 2", "MIME header fields added", arrived[1])
    subject = email.message_from_bytes(arrived[1], policy=email.policy.default)["Subject"]
    expect_eq("plain Grüße ☃, and a longer text that needs a few words", str(subject),
              "message 2's Subject, decoded from its encoded words")
    expect(b"Subject: =?UTF-8?Q?" in arrived[1], "message 2", "an encoded Subject", arrived[1])
    expect_eq(stored[2], arrived[2], "message 3 (7-bit, declared 8BITMIME) as stored")

run(main)
EOF
