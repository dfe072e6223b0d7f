"""A TCP proxy in front of a server that can go silent, as a dropped link or a frozen host looks
to its clients: while it is dark, connections stay open (no reset, no close) and nothing
reaches either side; bytes sent meanwhile arrive once it is light again, as TCP's
retransmissions would deliver them. New connections are accepted and then hear nothing.

It can also sever the connections open now, as a firewall or NAT that forgot them (or a
failover of the server's address) does: they stay open and carry nothing, ever; connections
made afterwards work.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading

from tests.stack import free_port

CHUNK = 1 << 16


class Blackhole:
    def __init__(self, target_port: int, host: str = "127.0.0.1") -> None:
        self.host = host
        self.target_port = target_port
        self.port = free_port()
        self._loop = asyncio.new_event_loop()
        self._light = asyncio.Event()
        # Live connections, by the event that severs them.
        self._open: set[asyncio.Event] = set()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name="blackhole", daemon=True)

    def start(self) -> None:
        self._thread.start()
        self._ready.wait(10)

    def stop(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    def dark(self) -> None:
        """Stop passing anything on, both ways."""
        self._loop.call_soon_threadsafe(self._light.clear)

    def light(self) -> None:
        self._loop.call_soon_threadsafe(self._light.set)

    def sever(self) -> None:
        """The connections open now carry nothing more (and are never closed by us)."""
        self._loop.call_soon_threadsafe(self._sever)

    def _sever(self) -> None:
        for cut in self._open:
            cut.set()

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._light.set()
        server = self._loop.run_until_complete(
            asyncio.start_server(self._serve, self.host, self.port)
        )
        self._ready.set()
        try:
            self._loop.run_forever()
        finally:
            server.close()
            # Close every connection (each pump closes its side) and the loop itself.
            tasks = asyncio.all_tasks(self._loop)
            for task in tasks:
                task.cancel()
            self._loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
            self._loop.run_until_complete(server.wait_closed())
            # Closing transports finish on the loop's next turns.
            self._loop.run_until_complete(asyncio.sleep(0.2))
            self._loop.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_writer: asyncio.StreamWriter | None = None
        cut = asyncio.Event()
        try:
            await self._light.wait()
            up_reader, up_writer = await asyncio.open_connection(self.host, self.target_port)
            self._open.add(cut)
            await asyncio.gather(
                self._pump(reader, up_writer, cut),
                self._pump(up_reader, writer, cut),
                return_exceptions=True,
            )
        except OSError:
            pass  # the server is down: the client sees its connection closed
        finally:
            self._open.discard(cut)
            for w in (writer, up_writer):
                if w is not None:
                    with contextlib.suppress(Exception):
                        w.close()

    async def _pump(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, cut: asyncio.Event
    ) -> None:
        try:
            while data := await reader.read(CHUNK):
                await self._light.wait()
                if cut.is_set():
                    await asyncio.Event().wait()  # swallowed; held open until we stop
                writer.write(data)
                await writer.drain()
        finally:
            with contextlib.suppress(Exception):
                writer.close()
