#!/usr/bin/python3
"""amqp_tool.py PORT USER PASSWORD COMMAND...: the broker side of the amqp
tests, with pika (Debian's python3-pika), on 127.0.0.1.

  declare EXCHANGE QUEUE KEY   a durable direct exchange and a quorum queue
                               bound to it with KEY
  declare-full EXCHANGE QUEUE KEY  the same with a classic queue that holds
                               one message and refuses (nacks) more
  drain QUEUE                  consume every message (acked), one JSON object
                               a line: message_id, delivery_mode,
                               content_type, app_id, headers (the envelope
                               header parsed), body (latin-1 text)
  count QUEUE                  the number of messages ready in QUEUE
"""
import json
import sys

import pika


def connect(port, user, password):
    params = pika.ConnectionParameters(host="127.0.0.1", port=port,
                                       credentials=pika.PlainCredentials(user, password),
                                       blocked_connection_timeout=30, socket_timeout=10)
    return pika.BlockingConnection(params)


def text(v):
    return v.decode("utf-8", "surrogateescape") if isinstance(v, bytes) else v


def main():
    port, user, password, command, *args = sys.argv[1:]
    conn = connect(int(port), user, password)
    ch = conn.channel()
    if command == "declare":
        exchange, queue, key = args
        ch.exchange_declare(exchange, exchange_type="direct", durable=True)
        ch.queue_declare(queue, durable=True, arguments={"x-queue-type": "quorum"})
        ch.queue_bind(queue, exchange, routing_key=key)
    elif command == "declare-full":
        # A classic queue that holds one message and refuses more: the broker
        # nacks a publication it would route there.
        exchange, queue, key = args
        ch.exchange_declare(exchange, exchange_type="direct", durable=True)
        ch.queue_declare(queue, durable=True, arguments={"x-max-length": 1, "x-overflow": "reject-publish"})
        ch.queue_bind(queue, exchange, routing_key=key)
    elif command == "count":
        print(ch.queue_declare(args[0], passive=True).method.message_count)
    elif command == "drain":
        queue = args[0]
        while True:
            method, props, body = ch.basic_get(queue, auto_ack=False)
            if method is None:
                break
            headers = {k: ([text(x) for x in v] if isinstance(v, list) else text(v))
                       for k, v in (props.headers or {}).items()}
            if "smtpspool-envelope" in headers:
                headers["smtpspool-envelope"] = json.loads(headers["smtpspool-envelope"])
            print(json.dumps({"message_id": props.message_id, "delivery_mode": props.delivery_mode,
                              "content_type": props.content_type, "app_id": props.app_id,
                              "headers": headers, "body": body.decode("latin-1")}))
            ch.basic_ack(method.delivery_tag)
    else:
        raise SystemExit(f"unknown command {command}")
    conn.close()


if __name__ == "__main__":
    main()
