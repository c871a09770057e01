"""A TCP proxy that delays every chunk by a fixed time each way: far hosts on loopback.

Each chunk read on one side is written to the other ``delay_s`` after it was read, in order
(a round trip through it costs ``2 * delay_s`` more). It listens on another loopback address
with the target's own port (``127.0.0.2:PORT`` -> ``127.0.0.1:PORT``), so a ``known_hosts``
for the proxy is the fake's with the address changed (``known_hosts_for``).

In a test: ``async with DelayProxy(targets, delay_s) as proxy`` on the test's loop. In a
bench, in a process of its own (the delays must not wait on the client's loop):
``python -m tests.sshfake.delayproxy DELAY_MS LISTEN_ADDR HOST:PORT...``; it prints
``ready`` once listening, and answers each line ``stats`` on its input with one line of JSON
(``{"open": n, "most_open": m, "accepted": k}``) and ``reset`` by zeroing ``most_open``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType

PROXY_ADDRESS = "127.0.0.2"


class DelayProxy:
    def __init__(
        self,
        targets: Sequence[tuple[str, int]],
        delay_s: float,
        *,
        listen_address: str = PROXY_ADDRESS,
    ) -> None:
        self.targets = list(targets)
        self.delay_s = delay_s
        self.listen_address = listen_address
        self.open = 0  # connections open now
        self.most_open = 0  # the most open at once
        self.accepted = 0
        self._servers: list[asyncio.Server] = []
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> DelayProxy:
        for host, port in self.targets:
            server = await asyncio.start_server(
                lambda r, w, h=host, p=port: self._serve(r, w, h, p),
                self.listen_address,
                port,
                backlog=1024,
            )
            self._servers.append(server)
        return self

    async def close(self) -> None:
        for server in self._servers:
            server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def __aenter__(self) -> DelayProxy:
        return await self.start()

    async def __aexit__(
        self, _t: type[BaseException] | None, _e: BaseException | None, _tb: TracebackType | None
    ) -> None:
        await self.close()

    def stats(self) -> dict[str, int]:
        return {"open": self.open, "most_open": self.most_open, "accepted": self.accepted}

    async def _serve(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, host: str, port: int
    ) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self.accepted += 1
        self.open += 1
        self.most_open = max(self.most_open, self.open)
        try:
            up_reader, up_writer = await asyncio.open_connection(host, port)
        except OSError:
            self.open -= 1
            writer.close()
            self._tasks.discard(task)
            return
        try:
            await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))
        finally:
            self.open -= 1
            for w in (writer, up_writer):
                with contextlib.suppress(Exception):
                    w.close()
            self._tasks.discard(task)

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Read as it comes; write each chunk ``delay_s`` after it was read, in order."""
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

        async def send() -> None:
            while True:
                due, data = await queue.get()
                wait = due - loop.time()
                if wait > 0:
                    await asyncio.sleep(wait)
                if not data:
                    with contextlib.suppress(Exception):
                        writer.write_eof()
                    return
                writer.write(data)
                await writer.drain()

        sender = asyncio.create_task(send())
        try:
            while True:
                data = await reader.read(65536)
                queue.put_nowait((loop.time() + self.delay_s, data))
                if not data:
                    break
            await sender
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            sender.cancel()
            with contextlib.suppress(BaseException):
                await sender
            with contextlib.suppress(Exception):
                writer.close()


def known_hosts_for(known_hosts: Path, out: Path, address: str = PROXY_ADDRESS) -> Path:
    """``known_hosts`` with every ``[127.0.0.1]:PORT`` entry for ``[address]:PORT``."""
    out.write_text(known_hosts.read_text().replace("[127.0.0.1]:", f"[{address}]:"))
    return out


async def _main(argv: Sequence[str]) -> None:
    delay_ms, address, *targets = argv
    pairs = [(t.rpartition(":")[0], int(t.rpartition(":")[2])) for t in targets]
    proxy = await DelayProxy(pairs, float(delay_ms) / 1000, listen_address=address).start()
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    print("ready", flush=True)
    while line := await reader.readline():
        command = line.decode().strip()
        if command == "stats":
            print(json.dumps(proxy.stats()), flush=True)
        elif command == "reset":
            proxy.most_open = proxy.open
            print("ok", flush=True)
    await proxy.close()


if __name__ == "__main__":
    asyncio.run(_main(sys.argv[1:]))
