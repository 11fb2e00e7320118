"""A DNS server for the MX delivery tests: dnslib on 127.0.0.1 (UDP and TCP),
answering from a zone given as JSON; on ::1 instead when $DNS_SERVER_ADDRESS
is ::1.

    python3 dns_server.py PORT ZONE.json

ZONE maps each name (lower case, no trailing dot) to its records:

    {"a.test": {"MX": [[10, "mx1.a.test"], [20, "mx2.a.test"]]},
     "mx1.a.test": {"A": ["127.0.0.2"], "AAAA": ["::ffff:127.0.0.5"]},
     "null.test": {"MX": [[0, "."]]},
     "broken.test": {"SERVFAIL": true},
     "sel._domainkey.a.test": {"TXT": ["v=DKIM1; k=rsa; p=MIGf..."]}}

A TXT record is one string, cut into pieces of 255 octets on the wire.

A name in ZONE without the type asked for: NOERROR and no answer (NODATA).
A name not in ZONE: NXDOMAIN. "SERVFAIL": true answers SERVFAIL to every
query for the name. Every query is appended to ZONE.log as "NAME TYPE".
Runs until it is killed.
"""

import json
import os
import signal
import sys

from dnslib import AAAA, TXT, A, MX, QTYPE, RCODE, RR
from dnslib.server import BaseResolver, DNSLogger, DNSServer


class ZoneResolver(BaseResolver):
    def __init__(self, zone_path):
        with open(zone_path) as f:
            self.zone = json.load(f)
        self.log_path = zone_path + ".log"

    def resolve(self, request, handler):
        reply = request.reply()
        name = str(request.q.qname).rstrip(".").lower()
        qtype = QTYPE[request.q.qtype]
        with open(self.log_path, "a") as f:
            f.write(f"{name} {qtype}\n")
        records = self.zone.get(name)
        if records is None:
            reply.header.rcode = RCODE.NXDOMAIN
            return reply
        if records.get("SERVFAIL"):
            reply.header.rcode = RCODE.SERVFAIL
            return reply
        for value in records.get(qtype, []):
            if qtype == "MX":
                rdata = MX(value[1] if value[1] != "." else ".", value[0])
            elif qtype == "A":
                rdata = A(value)
            elif qtype == "AAAA":
                rdata = AAAA(value)
            elif qtype == "TXT":
                octets = value.encode()
                rdata = TXT([octets[i:i + 255] for i in range(0, len(octets), 255)] or [b""])
            else:
                continue
            reply.add_answer(RR(request.q.qname, request.q.qtype, rdata=rdata, ttl=60))
        return reply


def main():
    port, zone = int(sys.argv[1]), sys.argv[2]
    resolver = ZoneResolver(zone)
    logger = DNSLogger(log="-request,-reply,-truncated,-error,-recv,-send,-data", prefix=False)
    address = os.environ.get("DNS_SERVER_ADDRESS", "127.0.0.1")
    servers = [DNSServer(resolver, address=address, port=port, tcp=tcp, logger=logger) for tcp in (False, True)]
    for s in servers:
        s.start_thread()
    print(f"listening on {address}:{port}", flush=True)
    while True:
        signal.pause()


main()
