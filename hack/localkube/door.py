"""The API server's door on the host link: a TCP relay from the pod network to loopback.

The test control planes listen on 127.0.0.1 only, which no other network namespace
reaches. Pods reach their API server at the `kubernetes` Service's address; the
Service rules lead that to this door (HOST_ADDR:port on the host), which relays each
connection to the API server's loopback port. TLS passes through untouched.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading


class ApiDoor:
    def __init__(self, *, listen_host: str, target_host: str, target_port: int) -> None:
        self.listen_host = listen_host
        self.target = (target_host, target_port)
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name="api-door", daemon=True)

    def start(self) -> str:
        self._thread.start()
        self._ready.wait(10)
        return f"{self.listen_host}:{self.port}"

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        server = self._loop.run_until_complete(
            asyncio.start_server(self._relay, self.listen_host, 0)
        )
        self.port = server.sockets[0].getsockname()[1]
        self._ready.set()
        self._loop.run_forever()
        server.close()
        self._loop.run_until_complete(server.wait_closed())

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.close()
            return

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(OSError, asyncio.CancelledError):
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            with contextlib.suppress(OSError):
                dst.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))

    def stop(self) -> None:
        if self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=5)
