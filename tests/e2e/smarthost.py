"""A smarthost for the delivery tests: aiosmtpd on 127.0.0.1 with a handler
whose replies a test can change while it runs.

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
     "data_delay": 0}                                   seconds to wait before it

The null sender is recorded as "". Addresses are compared as the client sent them, in lower case. The process
runs until it is killed (SIGTERM from the test's cleanup).
"""

import asyncio
import json
import os
import signal
import sys

from aiosmtpd.controller import Controller


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

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        reply = self.rules().get("rcpt", {}).get(address.lower(), "250 2.1.5 OK")
        mail_from = "" if envelope.mail_from == "<>" else envelope.mail_from  # aiosmtpd keeps "<>"
        self.record("rcpts.jsonl", {"peer": list(session.peer[:2]), "mail_from": mail_from,
                                    "rcpt": address, "reply": reply})
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
    controller = Controller(Handler(directory, rules), hostname="127.0.0.1", port=port,
                            server_hostname="smarthost.test")
    controller.start()
    print(f"listening on 127.0.0.1:{port}", flush=True)
    while True:
        signal.pause()


main()
