"""A smarthost with TLS and AUTH for the SMTP client's tests: aiosmtpd on
127.0.0.1 (or another loopback address), offering STARTTLS or speaking TLS from the first octet.

    python3 tlssmarthost.py PORT DIR CERT KEY [OPTIONS_JSON]

OPTIONS_JSON (all optional):
    {"implicit": true,          TLS from the first octet (RFC 8314), no STARTTLS
     "starttls": false,         do not offer STARTTLS (clear text only)
     "users": {"u": "p"},       offer AUTH PLAIN LOGIN and take these
     "auth_require_tls": true,  offer AUTH only inside TLS (aiosmtpd's default)
     "mechanisms": ["LOGIN"],   offer only these mechanisms
     "auth_required": false,    refuse MAIL before AUTH (530)
     "inject": false,           after "220 Ready to start TLS", send
                                "250 injected" in clear text in the same
                                write (a response injection; RFC 3207 §5)
     "client_ca": "FILE",       ask for a client certificate (optional),
                                checked against FILE
     "address": "127.0.0.3"}    listen there instead of 127.0.0.1

Every accepted message is recorded as one JSON line in DIR/transactions.jsonl
with "tls" (true when the session was encrypted), "auth" (the user who
authenticated, or null), "client_cert" (the commonName of the client's
certificate, or null), the sender and recipients. Every TLS handshake's
server name (SNI, null without it) is a line of DIR/sni.jsonl. Every AUTH attempt is a
line of DIR/auth.jsonl: mechanism, user, success. Runs until killed.
"""

import json
import os
import signal
import ssl
import sys

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword


class Smtp(SMTP):
    async def smtp_STARTTLS(self, arg):
        self._inject = self.options.get("inject", False)
        await super().smtp_STARTTLS(arg)

    async def push(self, status):
        if getattr(self, "_inject", False) and str(status).startswith("220 Ready"):
            self._inject = False
            status = status + "\r\n250 injected"
        await super().push(status)


class Handler:
    def __init__(self, directory, options):
        self.dir = directory
        self.options = options

    def record(self, name, entry):
        with open(os.path.join(self.dir, name), "a") as f:
            f.write(json.dumps(entry) + "\n")

    async def handle_DATA(self, server, session, envelope):
        peercert = (session.ssl or {}).get("peercert") if isinstance(session.ssl, dict) else None
        common_name = None
        for rdn in (peercert or {}).get("subject", ()):
            for key, value in rdn:
                if key == "commonName":
                    common_name = value
        self.record("transactions.jsonl", {
            "client_cert": common_name,
            "tls": session.ssl is not None or bool(self.options.get("implicit")),
            "auth": session.auth_data.login.decode() if session.authenticated else None,
            "mail_from": envelope.mail_from,
            "rcpt_tos": envelope.rcpt_tos,
            "content": envelope.original_content.decode("utf-8", "replace"),
        })
        return "250 2.0.0 OK"


def main():
    port, directory, cert, key = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
    options = json.loads(sys.argv[5]) if len(sys.argv) > 5 else {}
    os.makedirs(directory, exist_ok=True)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    handler = Handler(directory, options)
    if options.get("client_ca"):
        context.load_verify_locations(options["client_ca"])
        context.verify_mode = ssl.CERT_OPTIONAL

    def sni(ssl_object, server_name, ssl_context):
        handler.record("sni.jsonl", {"server_name": server_name})
    context.sni_callback = sni
    users = options.get("users", {})

    def authenticator(server, session, envelope, mechanism, auth_data):
        ok = isinstance(auth_data, LoginPassword) and users.get(auth_data.login.decode()) == auth_data.password.decode()
        handler.record("auth.jsonl", {"mechanism": mechanism,
                                      "user": auth_data.login.decode() if isinstance(auth_data, LoginPassword) else None,
                                      "success": ok})
        return AuthResult(success=ok, handled=False, auth_data=auth_data)

    exclude = None
    if "mechanisms" in options:
        exclude = [m for m in ("PLAIN", "LOGIN") if m not in options["mechanisms"]]
    kwargs = dict(hostname=options.get("address", "127.0.0.1"), port=port, server_hostname="tls-smarthost.test",
                  auth_require_tls=options.get("auth_require_tls", True),
                  auth_required=options.get("auth_required", False),
                  authenticator=authenticator if users else None,
                  auth_exclude_mechanism=exclude)
    if options.get("implicit"):
        kwargs["ssl_context"] = context
    elif options.get("starttls", True):
        kwargs["tls_context"] = context

    class TlsController(Controller):
        def factory(self):
            s = Smtp(self.handler, **self.SMTP_kwargs)
            s.options = options
            return s

    controller = TlsController(handler, **kwargs)
    controller.start()
    print(f"listening on 127.0.0.1:{port}", flush=True)
    while True:
        signal.pause()


main()
