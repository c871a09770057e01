"""A VM's serial console over libvirt: one ``virStream`` opened with ``openConsole``.

Split from ``libvirt.py`` (the connection, polls and actions), which opens the stream and
says why it ended; this module moves the bytes. Like ``libvirt.py`` it keeps every libvirt
object and exception inside: callers see a ``ConsoleChannel`` and ``ovmtui.errors``.

Threads. The stream is non-blocking. Its events (readable, writable, error, hang-up) come on
libvirt's event thread, where the callback drains what libvirt has already received
(``recv`` on a non-blocking stream reads libvirt's buffer, never the network) and hands it
to the asyncio loop with ``call_soon_threadsafe``: a few microseconds of Python a chunk, so
it takes no Python turn (docs/latency.md), which would put a console's output behind a big
poll. Sends and the final ``finish`` go to the host, so they run on the channel's own writer
thread: keys never wait behind the connection's polls, nor polls behind keys.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Awaitable, Callable
from typing import Any

import libvirt

from ovmtui.backend._worker import DaemonWorker
from ovmtui.errors import HostUnreachable

_READ_EVENTS: int = (
    libvirt.VIR_STREAM_EVENT_READABLE
    | libvirt.VIR_STREAM_EVENT_ERROR
    | libvirt.VIR_STREAM_EVENT_HANGUP
)
_WRITABLE: int = libvirt.VIR_STREAM_EVENT_WRITABLE
_CHUNK = 65536
_CLOSE_WAIT_S = 3.0


class _End:
    """A marker in the queue: the stream ended (``failed``: with an error, not an EOF)."""

    def __init__(self, failed: bool, detail: str = "") -> None:
        self.failed = failed
        self.detail = detail


class _Lost:
    """A marker in the queue: the connection under the stream is gone."""

    def __init__(self, message: str) -> None:
        self.message = message


_CLOSED = object()  # a marker in the queue: close() was called

EndProbe = Callable[[bool], Awaitable[str | None]]
"""Asked once the stream ended (``True``: with an error): why, in the operator's words.
Raises ``HostUnreachable`` when the connection is gone."""


def _message(exc: Any) -> str:
    try:
        text = exc.get_error_message()
    except Exception:
        text = None
    return " ".join(str(text or exc or "unknown libvirt error").split())


class LibvirtConsole:
    """``ConsoleChannel`` over one libvirt console stream (see the module's docstring).

    Made on the loop, then ``attach``ed to its stream on the connection's worker once
    ``openConsole`` has succeeded.
    """

    def __init__(
        self,
        label: str,
        loop: asyncio.AbstractEventLoop,
        probe: EndProbe,
        on_close: Callable[[LibvirtConsole], None],
    ) -> None:
        self._label = label
        self._loop = loop
        self._probe = probe
        self._on_close = on_close
        self._queue: asyncio.Queue[bytes | _End | _Lost | object] = asyncio.Queue()
        self._pending = b""  # what a read left over (it asked for fewer bytes)
        self._writable = asyncio.Event()
        self._write_lock = asyncio.Lock()
        self._writer = DaemonWorker(f"console-{label}")
        self._stream: Any = None
        # Guards the stream's callback registration, touched from three threads.
        self._events_lock = threading.Lock()
        self._events_on = False
        self._abandoned = False
        self._closed = False
        self._end_reason: str | None = None
        self._ended = False
        self._lost: str | None = None

    # ------------------------------------------------------------ the contract

    @property
    def exit_status(self) -> int | None:
        """Always ``None``: a console runs no command of its own."""
        return None

    @property
    def end_reason(self) -> str | None:
        return self._end_reason

    async def read(self, max_bytes: int = 65536) -> bytes:
        if self._pending:
            return self._take(max_bytes)
        if self._lost is not None:
            raise HostUnreachable(self._lost)
        if self._closed or self._ended:
            return b""
        item = await self._queue.get()
        if isinstance(item, bytes):
            self._pending = item
            return self._take(max_bytes)
        if isinstance(item, _Lost):
            self._lost = item.message
            self._ended = True
            raise HostUnreachable(item.message)
        if isinstance(item, _End):
            self._ended = True
            try:
                self._end_reason = await self._probe(item.failed)
            except HostUnreachable as exc:
                self._lost = str(exc)
                raise
            return b""
        return b""  # _CLOSED

    async def write(self, data: bytes) -> None:
        async with self._write_lock:
            view = memoryview(data)
            while view:
                self._check_open()
                self._writable.clear()  # before the send: a WRITABLE event after it counts
                chunk = bytes(view[:_CHUNK])
                try:
                    sent = await self._loop.run_in_executor(self._writer, self._send, chunk)
                except RuntimeError:  # the writer was shut down: closed meanwhile
                    self._check_open()
                    raise
                if sent == -2:  # libvirt's buffer is full: wait until it takes more
                    await self._writable.wait()
                    continue
                view = view[sent:]

    def write_eof(self) -> None:
        """Nothing: a serial line has no end of input (``close`` leaves the console)."""

    def resize(self, columns: int, rows: int) -> None:
        """Nothing: a serial line carries no terminal size (the guest keeps its own, e.g.
        from ``stty`` or ``resize``)."""

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._queue.put_nowait(_CLOSED)
        self._writable.set()
        self._on_close(self)
        stream = self._detach()
        if stream is not None:
            # finish() tells the host we are done; on a stream that already ended it
            # fails, and abort() then only frees our side.
            def end() -> None:
                try:
                    stream.finish()
                except Exception:
                    with contextlib.suppress(Exception):
                        stream.abort()

            with contextlib.suppress(Exception):
                future = self._loop.run_in_executor(self._writer, end)
                await asyncio.wait_for(future, _CLOSE_WAIT_S)
        self._writer.shutdown(wait=False)

    # ------------------------------------------------------------ for the backend

    def attach(self, stream: Any) -> None:
        """On the worker, once the console is open: listen to ``stream``. A channel whose
        opening was given up meanwhile (a timeout, a cancel) aborts it instead."""
        with self._events_lock:
            if not self._abandoned:
                self._stream = stream
                stream.eventAddCallback(_READ_EVENTS, self._on_event, None)
                self._events_on = True
                return
        with contextlib.suppress(Exception):
            stream.abort()

    def abandon(self) -> None:
        """The open failed or was given up: nothing will be read or closed."""
        with self._events_lock:
            self._abandoned = True
        self._closed = True
        self._on_close(self)
        self._writer.shutdown(wait=False)

    def connection_lost(self, message: str) -> None:
        """On the loop: the connection went (its close callback, a reconnect, ``close``):
        libvirt may never report it on the stream."""
        if not self._closed and not self._ended:
            self._queue.put_nowait(_Lost(message))
            self._writable.set()

    # ------------------------------------------------------------ internals

    def _take(self, max_bytes: int) -> bytes:
        data, self._pending = self._pending[:max_bytes], self._pending[max_bytes:]
        return data

    def _check_open(self) -> None:
        if self._lost is not None:
            raise HostUnreachable(self._lost)
        if self._closed or self._ended:
            raise HostUnreachable(f"{self._label}: the console is closed")

    def _send(self, data: bytes) -> int:
        """On the writer thread: what the stream took, or -2 (full: WRITABLE is awaited)."""
        stream = self._stream
        if stream is None:
            raise HostUnreachable(f"{self._label}: the console is closed")
        try:
            sent = int(stream.send(data))
        except libvirt.libvirtError as exc:
            raise HostUnreachable(f"{self._label}: {_message(exc)}") from None
        if sent == -2:
            with self._events_lock:
                if self._events_on:
                    stream.eventUpdateCallback(_READ_EVENTS | _WRITABLE)
        elif sent < 0:
            raise HostUnreachable(f"{self._label}: the console stream failed")
        return sent

    def _detach(self) -> Any:
        """Stop the stream's events (any thread); returns the stream, once."""
        with self._events_lock:
            stream, self._stream = self._stream, None
            if self._events_on:
                self._events_on = False
                with contextlib.suppress(Exception):
                    stream.eventRemoveCallback()
        return stream

    def _post(self, item: bytes | _End) -> None:
        with contextlib.suppress(RuntimeError):  # the loop is closed: nobody reads
            self._loop.call_soon_threadsafe(self._deliver, item)

    def _deliver(self, item: bytes | _End | object) -> None:
        if isinstance(item, _Writable):
            self._writable.set()
        elif not self._closed:
            self._queue.put_nowait(item)
            if isinstance(item, _End):
                self._writable.set()  # a writer waiting for room learns of the end

    def _on_event(self, stream: Any, events: int, _opaque: object) -> None:
        """On libvirt's event thread: anything raised here would be printed on stderr."""
        try:
            if events & _WRITABLE:
                with self._events_lock:
                    if self._events_on:
                        stream.eventUpdateCallback(_READ_EVENTS)
                with contextlib.suppress(RuntimeError):
                    self._loop.call_soon_threadsafe(self._deliver, _WRITABLE_MARK)
            if events & _READ_EVENTS:
                self._drain(stream, events)
        except Exception as exc:
            self._stop_after(_End(True, str(exc)))

    def _drain(self, stream: Any, events: int) -> None:
        chunks: list[bytes] = []
        end: _End | None = None
        while True:
            try:
                data = stream.recv(_CHUNK)
            except libvirt.libvirtError as exc:
                end = _End(True, _message(exc))
                break
            if data == -2:  # all read for now
                if events & (libvirt.VIR_STREAM_EVENT_ERROR | libvirt.VIR_STREAM_EVENT_HANGUP):
                    end = _End(True, "the stream reported an error")
                break
            if not data:
                end = _End(False)
                break
            chunks.append(data)
        if chunks:
            self._post(b"".join(chunks))
        if end is not None:
            self._stop_after(end)

    def _stop_after(self, end: _End) -> None:
        with self._events_lock:
            if self._events_on:
                self._events_on = False
                with contextlib.suppress(Exception):
                    self._stream.eventRemoveCallback()
        self._post(end)


class _Writable:
    """A marker for the loop: the stream takes data again."""


_WRITABLE_MARK = _Writable()
