"""A milter for the end-to-end tests, on python3-milter (libmilter): what it
answers depends on what it is shown, and it records every event (with the
macros it was sent) as a JSON line in a file.

    testmilter.py SOCKET RECORD [MODEFILE]

SOCKET is a path (a UNIX-domain socket) or libmilter's inet:PORT@HOST or
inet6:PORT@HOST.

At connect it reads MODEFILE, if any, for the connection's verdict
("reject", "tempfail", "accept", "custom" or "continue"). HELO names
starting "reject.", "tempfail." decide HELO. At MAIL and RCPT the local part
decides: reject, tempfail, discard, accept, custom (a reply code of its
own), continue; a sender "reject-data", "tempfail-data", "discard-data"
decides at DATA. The end of a message adds a header field, changes the
Subject, adds and deletes recipients and quarantines, as the Subject says
(for the tests of the changes)."""

import json
import os
import sys
import threading

import Milter

SOCKET, RECORD = sys.argv[1], sys.argv[2]
MODEFILE = sys.argv[3] if len(sys.argv) > 3 else None
LOCK = threading.Lock()

VERDICTS = {"reject": Milter.REJECT, "tempfail": Milter.TEMPFAIL, "discard": Milter.DISCARD,
            "accept": Milter.ACCEPT, "continue": Milter.CONTINUE}


def local_part(address):
    a = address.strip("<>")
    return a.split("@", 1)[0].lower()


class TestMilter(Milter.Base):
    def __init__(self):
        self.sender = ""
        self.subject = ""

    def record(self, event, **fields):
        fields["event"] = event
        with LOCK, open(RECORD, "a") as f:
            f.write(json.dumps(fields) + "\n")

    def macros(self, *names):
        return {n: self.getsymval(n) for n in names if self.getsymval(n) is not None}

    def decide(self, word, stage):
        if word == "custom":
            if stage == "rcpt":
                self.setreply("450", "4.2.9", "custom later for this one")
                return Milter.TEMPFAIL
            self.setreply("553", "5.7.9", "custom refusal at " + stage)
            return Milter.REJECT
        return VERDICTS.get(word, Milter.CONTINUE)

    def connect(self, hostname, family, hostaddr):
        self.record("connect", hostname=hostname, family=int(family), hostaddr=str(hostaddr),
                    macros=self.macros("j", "_", "{daemon_name}", "{client_addr}", "{client_port}",
                                       "{client_name}"))
        mode = "continue"
        if MODEFILE and os.path.exists(MODEFILE):
            with open(MODEFILE) as f:
                mode = f.read().strip()
        return self.decide(mode, "connect")

    def hello(self, heloname):
        self.record("helo", name=heloname)
        return self.decide(heloname.split(".", 1)[0], "helo")

    def envfrom(self, f, *params):
        self.sender = local_part(f)
        self.record("mail", sender=f, params=list(params),
                    macros=self.macros("i", "{mail_addr}", "{auth_type}", "{auth_authen}"))
        return self.decide(self.sender.split("-", 1)[0] if not self.sender.endswith("-data") else "", "mail")

    def envrcpt(self, to, *params):
        self.record("rcpt", rcpt=to, params=list(params), macros=self.macros("{rcpt_addr}"))
        return self.decide(local_part(to), "rcpt")

    def data(self):
        self.record("data", macros=self.macros("i"))
        if self.sender.endswith("-data"):
            return self.decide(self.sender[:-len("-data")], "data")
        return Milter.CONTINUE

    def header(self, name, value):
        self.record("header", name=name, value=value)
        if name.lower() == "subject":
            self.subject = value
        return Milter.CONTINUE

    def eoh(self):
        self.record("eoh")
        return Milter.CONTINUE

    def body(self, chunk):
        self.record("body", size=len(chunk))
        return Milter.CONTINUE

    def eom(self):
        self.record("eom", macros=self.macros("i"))
        words = self.subject.split()
        if "add-header" in words:
            self.addheader("X-Milter", "added")
        if "change-subject" in words:
            self.chgheader("Subject", 1, "changed by the milter")
        if "add-rcpt" in words:
            self.addrcpt("<added@mx.test.example>")
        if "del-rcpt" in words:
            self.delrcpt("<gone@mx.test.example>")
        if "change-from" in words:
            self.chgfrom("<new-sender@client.test.example>")
        if "replace-body" in words:
            self.replacebody(b"replaced body\r\n")
        if "quarantine" in words:
            self.quarantine("held by the test milter")
        if "reject-eom" in words:
            return Milter.REJECT
        if "discard-eom" in words:
            return Milter.DISCARD
        return Milter.ACCEPT

    def abort(self):
        self.record("abort")
        return Milter.CONTINUE

    def close(self):
        self.record("close")
        return Milter.CONTINUE


def main():
    Milter.factory = TestMilter
    Milter.set_flags(Milter.ADDHDRS | Milter.CHGHDRS | Milter.ADDRCPT | Milter.DELRCPT | Milter.CHGFROM |
                     Milter.CHGBODY | Milter.QUARANTINE)
    where = SOCKET if SOCKET.startswith(("inet:", "inet6:")) else "unix:" + SOCKET
    Milter.runmilter("testmilter", where, timeout=60)


if __name__ == "__main__":
    main()
