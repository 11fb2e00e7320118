"""A misbehaving milter for the end-to-end tests, speaking the wire protocol
by hand on a UNIX-domain socket:

    rawmilter.py SOCKET MODE

MODE: hang-mail (negotiates, answers continue, then never answers MAIL),
garbage (answers the negotiation with text that is no packet), bad-reply-mail
(answers MAIL with a reply code that is no refusal: "250"), oversize-mail
(announces a 2 MiB packet at MAIL), close-mail (closes the connection at
MAIL), progress-eom (at the end of a message: progress replies, 0.4 s
apart, longer in all than a 1 s time-out, then a header field to add and
continue), change-early (a header field to add in answer to MAIL),
unnegotiated-eom (a header field to add at the end of a message, the action
not negotiated), skip-body (answers the first body chunk with skip, counts
the chunks and adds a header field "X-Chunks: N" at the end), flood-headers-eom
(at the end of a message: 1100 header fields of 1000 octets to add, more
than 1 MiB in all), flood-rcpt-eom (at the end of a message: 10001
recipients to add)."""

import socket
import socketserver
import struct
import sys
import time

SOCKET, MODE = sys.argv[1], sys.argv[2]


def packet(cmd, data=b""):
    return struct.pack(">I", len(data) + 1) + cmd + data


class Handler(socketserver.BaseRequestHandler):
    def read(self, n):
        data = b""
        while len(data) < n:
            chunk = self.request.recv(n - len(data))
            if not chunk:
                raise EOFError
            data += chunk
        return data

    def handle(self):
        try:
            while True:
                (length,) = struct.unpack(">I", self.read(4))
                body = self.read(length)
                cmd = body[:1]
                if cmd == b"O":
                    if MODE == "garbage":
                        self.request.sendall(b"HELLO, this is not a milter\r\n")
                        continue
                    actions = 0 if MODE == "unnegotiated-eom" else 1 | 4  # SMFIF_ADDHDRS, SMFIF_ADDRCPT
                    steps = 1 << 10 if MODE == "skip-body" else 0     # SMFIP_SKIP
                    self.request.sendall(packet(b"O", struct.pack(">III", 6, actions, steps)))
                    chunks = 0
                elif cmd == b"B" and MODE == "skip-body":
                    chunks += 1
                    self.request.sendall(packet(b"s"))
                elif cmd == b"E" and MODE == "skip-body":
                    self.request.sendall(packet(b"h", b"X-Chunks\0%d\0" % chunks) + packet(b"c"))
                elif cmd == b"E" and MODE == "progress-eom":
                    for _ in range(4):
                        self.request.sendall(packet(b"p"))
                        time.sleep(0.4)
                    self.request.sendall(packet(b"h", b"X-Slow\0yes\0") + packet(b"c"))
                elif cmd == b"E" and MODE == "flood-headers-eom":
                    field = packet(b"h", b"X-Flood\0" + b"x" * 1000 + b"\0")
                    self.request.sendall(field * 1100 + packet(b"c"))
                elif cmd == b"E" and MODE == "flood-rcpt-eom":
                    rcpts = b"".join(packet(b"+", b"<r%d@third.example>\0" % i) for i in range(10001))
                    self.request.sendall(rcpts + packet(b"c"))
                elif cmd == b"E" and MODE == "unnegotiated-eom":
                    self.request.sendall(packet(b"h", b"X-Not\0allowed\0") + packet(b"c"))
                elif cmd == b"M" and MODE == "change-early":
                    self.request.sendall(packet(b"h", b"X-Early\0no\0") + packet(b"c"))
                elif cmd in (b"D", b"A"):
                    continue  # macros and abort: no reply
                elif cmd == b"Q":
                    return
                elif cmd == b"M" and MODE == "hang-mail":
                    continue  # never answered
                elif cmd == b"M" and MODE == "bad-reply-mail":
                    self.request.sendall(packet(b"y", b"250 2.0.0 fine\0"))
                elif cmd == b"M" and MODE == "oversize-mail":
                    self.request.sendall(struct.pack(">I", 2 << 20) + b"h")
                elif cmd == b"M" and MODE == "close-mail":
                    return
                else:
                    self.request.sendall(packet(b"c"))
        except (EOFError, ConnectionError):
            return


class Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True


if __name__ == "__main__":
    Server(SOCKET, Handler).serve_forever()
