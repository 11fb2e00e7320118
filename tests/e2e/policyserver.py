"""A small policy service for the e2e tests (Postfix's policy delegation
protocol): name=value lines, an empty line, then "action=..." and an empty
line back; several requests per connection.

What it answers depends on the request: the recipient's local part (at RCPT)
or the sender's (at END-OF-MESSAGE) is a list of words split by '+', and
service number N (0 first) answers the N-th word (DUNNO when there is none):

  ok dunno reject defer dip dir reply5 reply4 bad prepend hold discard warn info
  noaction (an answer without action=)  close (OK, then the connection is closed)
  slow (no answer until the client goes away)

It counts connections and keeps every request (a dict of its attributes, with
"_conn", the connection's number, and "_raw", the octets).
"""

import socket
import socketserver
import threading

ACTIONS = {
    "ok": "OK",
    "dunno": "DUNNO",
    "reject": "REJECT no thanks",
    "defer": "DEFER later please",
    "dip": "DEFER_IF_PERMIT 4.2.0 Greylisted",
    "dir": "DEFER_IF_REJECT maybe later",
    "reply5": "554 5.7.2 go away",
    "reply4": "452 4.2.2 mailbox full",
    "bad": "250 fine",
    "prepend": "PREPEND X-Policy: checked by service",
    "hold": "HOLD quarantine",
    "discard": "DISCARD drop it",
    "warn": "WARN look at this",
    "info": "INFO noted",
    "close": "OK",
}


class PolicyService:
    def __init__(self, path, index=0):
        self.index = index
        self.connections = 0
        self.requests = []
        self.lock = threading.Lock()
        self.stop = threading.Event()
        service = self

        class Handler(socketserver.StreamRequestHandler):
            def handle(self):
                with service.lock:
                    service.connections += 1
                    conn = service.connections
                while True:
                    raw = b""
                    attrs = {}
                    while True:
                        line = self.rfile.readline()
                        if not line:
                            return
                        raw += line
                        if line == b"\n":
                            break
                        name, _, value = line.decode("utf-8", "replace").rstrip("\n").partition("=")
                        attrs.setdefault(name, value)
                    attrs["_conn"] = conn
                    attrs["_raw"] = raw
                    with service.lock:
                        service.requests.append(attrs)
                    word = service.word(attrs)
                    if word == "slow":
                        # No answer: wait until the client gives up (or the test ends).
                        self.request.settimeout(0.2)
                        while not service.stop.is_set():
                            try:
                                if not self.request.recv(1):
                                    return
                            except socket.timeout:
                                continue
                        return
                    if word == "noaction":
                        self.wfile.write(b"reason=none\n\n")
                    else:
                        self.wfile.write(f"action={ACTIONS.get(word, 'DUNNO')}\n\n".encode())
                    self.wfile.flush()
                    if word == "close":
                        return

        socketserver.ThreadingUnixStreamServer.daemon_threads = True
        self.server = socketserver.ThreadingUnixStreamServer(path, Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def word(self, attrs):
        if attrs.get("protocol_state") == "RCPT":
            local = attrs.get("recipient", "").split("@")[0]
        else:
            local = attrs.get("sender", "").split("@")[0]
        words = local.split("+")
        return words[self.index] if self.index < len(words) else "dunno"

    def close(self):
        self.stop.set()
        self.server.shutdown()
        self.server.server_close()
