#!/usr/bin/env python3
"""A webhook application for the http transport's tests (t-77), on http.server.

    webhook_app.py PORT DIR SECRET_FILE [CERT KEY]

Listens on 127.0.0.1:PORT (HTTPS with CERT and KEY) and answers by path:
  /ok     checks the signature with verify() below (the code smtpspool-runq(8)
          gives) and parses the multipart body: 200 and a record when both
          are right, 401 otherwise;
  /down   500; /busy  429 with Retry-After: 7200; /bad  400 with a body;
  /hang   reads the request and never answers.
Each request is appended to DIR/requests.jsonl (path, the client's port, the
headers that matter, whether the signature was right, the envelope part);
the message part of each /ok request goes to DIR/N.eml.
"""
import json
import os
import ssl
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

# --- verifier (smtpspool-runq(8), "The http and https transports") ---
import hashlib, hmac, time

def verify(secret, headers, body, tolerance=300):
    timestamp = headers["Smtpspool-Timestamp"]
    if abs(time.time() - int(timestamp)) > tolerance:
        return False
    signed = timestamp.encode() + b"." + body
    expected = "sha256=" + hmac.new(secret, signed, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, headers["Smtpspool-Signature"])
# --- end of the verifier ---

PORT, DIR, SECRET_FILE = int(sys.argv[1]), sys.argv[2], sys.argv[3]
SECRET = open(SECRET_FILE, "rb").read().rstrip(b"\r\n")
LOCK = threading.Lock()
COUNT = [0]


def parts(content_type, body):
    """name -> (headers text, octets) of a multipart/form-data body."""
    boundary = content_type.split("boundary=", 1)[1].encode()
    delimiter = b"\r\n--" + boundary
    assert body.startswith(b"--" + boundary + b"\r\n"), "no opening delimiter"
    assert body.endswith(delimiter + b"--\r\n"), "no closing delimiter"
    out = {}
    for chunk in (b"\r\n" + body[:-len(b"--\r\n")]).split(delimiter)[1:-1]:
        head, _, data = chunk[2:].partition(b"\r\n\r\n")
        name = head.split(b'name="', 1)[1].split(b'"', 1)[0].decode()
        out[name] = (head.decode(), data)
    return out


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def answer(self, status, body=b"", extra=()):
        self.send_response(status)
        for k, v in extra:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        record = {"path": self.path, "client_port": self.client_address[1],
                  "idempotency_key": self.headers.get("Idempotency-Key"),
                  "content_type": self.headers.get("Content-Type"),
                  "user_agent": self.headers.get("User-Agent")}
        try:
            record["signature_ok"] = verify(SECRET, self.headers, body)
            found = parts(self.headers["Content-Type"], body)
            record["envelope"] = json.loads(found["envelope"][1])
            record["envelope_part"] = found["envelope"][0]
            record["message_part"] = found["message"][0]
            message = found["message"][1]
        except Exception as e:  # a malformed request: recorded, refused
            record["error"] = repr(e)
            record["signature_ok"] = False
            message = b""
        with LOCK:
            COUNT[0] += 1
            n = COUNT[0]
            record["n"] = n
            with open(os.path.join(DIR, "requests.jsonl"), "a") as f:
                f.write(json.dumps(record) + "\n")
        if self.path == "/ok":
            if not record["signature_ok"] or "error" in record:
                self.answer(401, b"bad signature")
                return
            with open(os.path.join(DIR, "%d.eml" % n), "wb") as f:
                f.write(message)
            self.answer(200, b"stored")
        elif self.path == "/down":
            self.answer(500, b"")
        elif self.path == "/busy":
            self.answer(429, b"slow down", [("Retry-After", "7200")])
        elif self.path == "/bad":
            self.answer(400, b"unknown mailbox\r\n  for this application\n" + b"x" * 500)
        elif self.path == "/hang":
            time.sleep(3600)
        else:
            self.answer(404, b"no such hook")


server = ThreadingHTTPServer(("127.0.0.1", PORT), Handler)
server.daemon_threads = True
if len(sys.argv) > 5:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(sys.argv[4], sys.argv[5])
    server.socket = context.wrap_socket(server.socket, server_side=True)
print("listening", flush=True)
server.serve_forever()
