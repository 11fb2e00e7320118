"""A smarthost for the delivery tests: aiosmtpd on 127.0.0.1 (or the address
in $SMARTHOST_ADDRESS) with a handler whose replies a test can change while
it runs.

    python3 smarthost.py PORT DIR [RULES]

Every accepted message is written to DIR/N.eml (N = 1, 2, ... in order of
arrival; the octets aiosmtpd hands over after undoing the dot-stuffing), then
one JSON line describing it is appended to DIR/transactions.jsonl, and only
then is the end of data answered. So once the client has its reply, the files
are complete. A transaction refused at the end of data is recorded too (with
its reply, and no file). Every RCPT is appended to DIR/rcpts.jsonl with its reply.

RULES (a JSON file, read again at every command, so a test changes the
behaviour by renaming a new file over it; missing = accept everything):

    {"rcpt": {"ADDRESS": "451 4.3.0 try later", ...},  reply to RCPT TO:<ADDRESS>
     "data_for": {"ADDRESS": "451 4.3.0 ...", ...},     reply to the end of data
                                                        when ADDRESS was accepted
     "data": "250 2.0.0 OK",                            reply to the end of data otherwise
     "data_delay": 0,                                   seconds to wait before it
     "dsn": true,                                       offer DSN (RFC 3461) in the EHLO reply
                                                        and take its parameters
     "no_8bitmime": true}                               leave 8BITMIME out of the EHLO reply

aiosmtpd itself refuses every MAIL and RCPT parameter it does not know. With
"dsn", RET= and ENVID= are taken out of MAIL, NOTIFY= and ORCPT= out of RCPT,
before aiosmtpd sees the rest; they are recorded as sent: "dsn" (a list of
the words) in the RCPT's line of rcpts.jsonl and "dsn_mail" in the
transaction's line of transactions.jsonl (empty lists when none were sent).

The null sender is recorded as "". Addresses are compared as the client sent them, in lower case. The process
runs until it is killed (SIGTERM from the test's cleanup).
"""

import asyncio
import json
import os
import signal
import sys

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP


def split_words(arg, names):
    """(arg without the words starting with one of names, those words)."""
    words = (arg or "").split(" ")
    taken = [w for w in words if w.upper().startswith(names)]
    return " ".join(w for w in words if not w.upper().startswith(names)), taken


class DsnSMTP(SMTP):
    async def smtp_MAIL(self, arg):
        taken = []
        if self.event_handler.rules().get("dsn"):
            arg, taken = split_words(arg, ("RET=", "ENVID="))
        self.envelope.dsn_mail = taken
        await super().smtp_MAIL(arg)

    async def smtp_RCPT(self, arg):
        self.dsn_rcpt = []
        if self.event_handler.rules().get("dsn"):
            arg, self.dsn_rcpt = split_words(arg, ("NOTIFY=", "ORCPT="))
        await super().smtp_RCPT(arg)


class DsnController(Controller):
    def factory(self):
        return DsnSMTP(self.handler, **self.SMTP_kwargs)


class Handler:
    def __init__(self, directory, rules_path):
        self.dir = directory
        self.rules_path = rules_path
        self.count = 0

    def rules(self):
        if not self.rules_path:
            return {}
        try:
            with open(self.rules_path) as f:
                return json.load(f)
        except FileNotFoundError:
            return {}

    def record(self, name, entry):
        with open(os.path.join(self.dir, name), "a") as f:
            f.write(json.dumps(entry) + "\n")

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        session.host_name = hostname
        if self.rules().get("dsn"):
            responses.insert(len(responses) - 1, "250-DSN")
        if self.rules().get("no_8bitmime"):
            responses = [r for r in responses if r[4:].upper() != "8BITMIME"]
        return responses

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        reply = self.rules().get("rcpt", {}).get(address.lower(), "250 2.1.5 OK")
        mail_from = "" if envelope.mail_from == "<>" else envelope.mail_from  # aiosmtpd keeps "<>"
        self.record("rcpts.jsonl", {"peer": list(session.peer[:2]), "mail_from": mail_from,
                                    "rcpt": address, "reply": reply, "dsn": getattr(server, "dsn_rcpt", [])})
        if reply.startswith("2"):
            envelope.rcpt_tos.append(address)
        return reply

    async def handle_DATA(self, server, session, envelope):
        rules = self.rules()
        delay = rules.get("data_delay", 0)
        if delay:
            await asyncio.sleep(delay)
        reply = rules.get("data", "250 2.0.0 OK")
        for address in envelope.rcpt_tos:
            reply = rules.get("data_for", {}).get(address.lower(), reply)
        entry = {
            "peer": list(session.peer[:2]),
            "helo": session.host_name,
            "mail_from": "" if envelope.mail_from == "<>" else envelope.mail_from,  # aiosmtpd keeps "<>"
            "mail_options": envelope.mail_options,
            "dsn_mail": getattr(envelope, "dsn_mail", []),
            "rcpt_tos": envelope.rcpt_tos,
            "reply": reply,
            "file": None,
        }
        if reply.startswith("2"):
            self.count += 1
            name = f"{self.count}.eml"
            with open(os.path.join(self.dir, name), "wb") as f:
                f.write(envelope.original_content)
            entry["file"] = name
        self.record("transactions.jsonl", entry)
        return reply


def main():
    port, directory = int(sys.argv[1]), sys.argv[2]
    rules = sys.argv[3] if len(sys.argv) > 3 else None
    os.makedirs(directory, exist_ok=True)
    address = os.environ.get("SMARTHOST_ADDRESS", "127.0.0.1")
    controller = DsnController(Handler(directory, rules), hostname=address, port=port,
                            server_hostname="smarthost.test")
    controller.start()
    print(f"listening on {address}:{port}", flush=True)
    while True:
        signal.pause()


main()
