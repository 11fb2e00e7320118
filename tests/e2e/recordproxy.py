"""A TCP proxy that records what the client sends: every octet from the
client to the server is appended to FILE.

    python3 recordproxy.py LISTEN_PORT TARGET_PORT FILE

Listens on 127.0.0.1:LISTEN_PORT, connects each client to
127.0.0.1:TARGET_PORT. Runs until killed.
"""

import asyncio
import sys


async def pipe(reader, writer, record=None):
    try:
        while True:
            data = await reader.read(65536)
            if not data:
                break
            if record is not None:
                with open(record, "ab") as f:
                    f.write(data)
            writer.write(data)
            await writer.drain()
    except (ConnectionError, asyncio.CancelledError):
        pass
    finally:
        try:
            writer.close()
        except Exception:
            pass


async def main():
    listen, target, record = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]

    async def client(reader, writer):
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", target)
        except OSError:
            writer.close()
            return
        await asyncio.gather(pipe(reader, up_writer, record), pipe(up_reader, writer))

    server = await asyncio.start_server(client, "127.0.0.1", listen)
    print(f"listening on 127.0.0.1:{listen}", flush=True)
    async with server:
        await server.serve_forever()


asyncio.run(main())
