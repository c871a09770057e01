"""The libvirt side of a connection test: open the URI, then ``getCapabilities``,
``getInfo`` and the versions, one call at a time so that each is its own check.

Its own connection, on its own daemon thread (a test must neither wait behind the polls nor
disturb them), opened as the backend opens its own (``_open_uri``: ssh never prompts) and
closed at the end. Every call is bounded by a timeout; a call still stuck then is abandoned
with its thread, which never holds up ovmtui's exit.
"""

from __future__ import annotations

import asyncio
import contextlib
import xml.etree.ElementTree as ET
from collections.abc import Callable
from typing import Any, TypeVar

import libvirt

from ovmtui import format as fmt
from ovmtui.backend._worker import DaemonWorker
from ovmtui.backend.libvirt import _ensure_libvirt_runtime, _open_uri
from ovmtui.backend.libvirt_errors import message
from ovmtui.backend.libvirt_xml import host_cpu
from ovmtui.errors import HostTimeout, HostUnreachable, OvmError

_T = TypeVar("_T")

CALL_TIMEOUT_S = 20.0


class LibvirtProbe:
    """One test connection to ``uri``. Use ``open`` first; ``close`` always (never raises)."""

    def __init__(self, uri: str, *, timeout_s: float = CALL_TIMEOUT_S) -> None:
        self.uri = uri
        self._timeout_s = timeout_s
        self._worker = DaemonWorker(f"libvirt-test-{uri}")
        self._conn: Any = None

    async def open(self) -> str:
        """Open the connection; returns what it is (driver, host name)."""

        def open_now() -> str:
            _ensure_libvirt_runtime()
            conn = libvirt.open(_open_uri(self.uri))
            if conn is None:
                raise HostUnreachable(f"{self.uri}: the connection could not be opened")
            self._conn = conn
            driver = str(conn.getType())
            hostname = None
            with contextlib.suppress(libvirt.libvirtError):
                hostname = str(conn.getHostname())
            return f"driver {driver}" + (f", host {hostname}" if hostname else "")

        return await self._call(open_now)

    async def capabilities(self) -> str:
        """``getCapabilities``: the host's CPU and the guests it can run."""

        def read() -> str:
            text = str(self._connection().getCapabilities())
            model, flags = host_cpu(text)
            root = ET.fromstring(text)  # noqa: S314 - from our own libvirt connection
            arch = root.findtext("host/cpu/arch") or "?"
            guests = sorted(
                {
                    f"{guest.findtext('os_type') or '?'}/{arch_elem.get('name') or '?'}"
                    for guest in root.iterfind("guest")
                    for arch_elem in guest.iterfind("arch")
                }
            )
            cpu = f"{arch} {model}" if model else arch
            shown = ", ".join(guests[:4]) + (", …" if len(guests) > 4 else "")
            return f"{cpu}, {len(flags)} CPU flags; guests: {shown or 'none'}"

        return await self._call(read)

    async def info(self) -> str:
        """``getInfo``: CPUs and memory."""

        def read() -> str:
            arch, memory_mib, cpus, mhz, *_rest = self._connection().getInfo()
            speed = f" at {mhz} MHz" if mhz else ""
            return f"{arch}, {cpus} CPUs{speed}, {fmt.mib(memory_mib)}"

        return await self._call(read)

    async def version(self) -> str:
        """The hypervisor's and libvirt's versions."""

        def read() -> str:
            conn = self._connection()
            driver = str(conn.getType())
            parts = [f"{driver} {_version(conn.getVersion)}"]
            with contextlib.suppress(libvirt.libvirtError):
                parts.append(f"libvirt {_version(conn.getLibVersion)}")
            return ", ".join(parts)

        return await self._call(read)

    async def close(self) -> None:
        conn, self._conn = self._conn, None

        def close_now() -> None:
            if conn is not None:
                with contextlib.suppress(Exception):
                    conn.close()

        with contextlib.suppress(Exception):
            await asyncio.wait_for(
                asyncio.get_running_loop().run_in_executor(self._worker, close_now), 5.0
            )
        self._worker.shutdown(wait=False, cancel_futures=True)

    def _connection(self) -> Any:
        if self._conn is None:
            raise HostUnreachable(f"{self.uri}: not connected")
        return self._conn

    async def _call(self, fn: Callable[[], _T]) -> _T:
        def guarded() -> _T:
            try:
                return fn()
            except libvirt.libvirtError as exc:
                raise HostUnreachable(f"{self.uri}: {message(exc)}") from None
            except ET.ParseError as exc:
                raise OvmError(f"{self.uri}: unreadable answer: {exc}") from None

        future = asyncio.get_running_loop().run_in_executor(self._worker, guarded)
        try:
            return await asyncio.wait_for(future, self._timeout_s)
        except TimeoutError:
            raise HostTimeout(f"{self.uri}: no answer within {self._timeout_s:g} s") from None


def _version(getter: Callable[[], int]) -> str:
    number = int(getter())
    return f"{number // 1_000_000}.{number // 1000 % 1000}.{number % 1000}"
