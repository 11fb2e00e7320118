"""The idempotency key of smtpspool-runq(8) ("The amqp transport"), computed
independently of src/delivery/idempotency.cpp: the queue id, a dot, and two
SipHash-2-4 values of the sorted recipient set, keyed by the text
"smtpspool idempotency key v1" padded to 32 octets."""

_M = 0xFFFFFFFFFFFFFFFF


def _rotl(x, b):
    return ((x << b) | (x >> (64 - b))) & _M


def siphash24(k0, k1, data):
    v0, v1 = k0 ^ 0x736F6D6570736575, k1 ^ 0x646F72616E646F6D
    v2, v3 = k0 ^ 0x6C7967656E657261, k1 ^ 0x7465646279746573

    def rounds(n):
        nonlocal v0, v1, v2, v3
        for _ in range(n):
            v0 = (v0 + v1) & _M; v1 = _rotl(v1, 13) ^ v0; v0 = _rotl(v0, 32)
            v2 = (v2 + v3) & _M; v3 = _rotl(v3, 16) ^ v2
            v0 = (v0 + v3) & _M; v3 = _rotl(v3, 21) ^ v0
            v2 = (v2 + v1) & _M; v1 = _rotl(v1, 17) ^ v2; v2 = _rotl(v2, 32)

    whole = len(data) // 8 * 8
    for i in range(0, whole, 8):
        m = int.from_bytes(data[i:i + 8], "little")
        v3 ^= m; rounds(2); v0 ^= m
    m = ((len(data) & 0xFF) << 56) | int.from_bytes(data[whole:], "little")
    v3 ^= m; rounds(2); v0 ^= m
    v2 ^= 0xFF
    rounds(4)
    return v0 ^ v1 ^ v2 ^ v3


def idempotency_key(queue_id, recipients):
    seed = b"smtpspool idempotency key v1".ljust(32, b"\0")
    k = [int.from_bytes(seed[i:i + 8], "little") for i in range(0, 32, 8)]
    data = b"".join(r.encode() + b"\n" for r in sorted(set(recipients), key=lambda r: r.encode()))
    return "%s.%016x%016x" % (queue_id, siphash24(k[0], k[1], data), siphash24(k[2], k[3], data))
