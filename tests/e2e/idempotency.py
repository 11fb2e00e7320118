"""The idempotency key of smtpspool-runq(8) (the amqp transport's message id,
the webhook's Idempotency-Key), computed independently of
src/delivery/idempotency.cpp: the queue id, a dot, and the first 32 hex
digits of the SHA-256 of the envelope's hostname and the sorted recipient
addresses, each followed by LF."""

import hashlib


def idempotency_key(hostname, queue_id, recipients):
    data = hostname.encode() + b"\n" + b"".join(a + b"\n" for a in sorted(r.encode() for r in recipients))
    return f"{queue_id}.{hashlib.sha256(data).hexdigest()[:32]}"
