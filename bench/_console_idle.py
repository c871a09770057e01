"""(d) of bench/console_throughput.py: the idle dashboard without and with a console open.

The host is libvirt's test driver (as in bench/idle_cpu.py), which has no consoles: the
backend here is the real `LibvirtBackend` for everything else and, for the console, an
in-process `ConsoleTransport` whose guest writes a heartbeat line every second (as the
lab's guests do once booted), injected through `OvmApp(backends=...)`.
"""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Mapping
from pathlib import Path

from _common import SIZE, bench_app_class, settle, write_estate

from ovmtui.app import OvmApp
from ovmtui.backend.libvirt import LibvirtBackend
from ovmtui.config import EstateConfig, HostConfig, PoolConfig
from ovmtui.model import Capability, PlacedVm, Vm, VmState
from ovmtui.screens.console import ConsoleScreen, show_console
from ovmtui.services.consoles import ConsoleState

INTERVAL_S = 5.0  # the TUI's default poll interval
HEARTBEAT_S = 1.0


class HeartbeatChannel:
    """A guest that is booted and idle: one line a second, as the lab's guests print."""

    def __init__(self) -> None:
        self.beats = 0

    async def read(self, max_bytes: int = 65536) -> bytes:
        await asyncio.sleep(HEARTBEAT_S)
        self.beats += 1
        return f"boot heartbeat {self.beats}\r\n".encode()

    async def write(self, data: bytes) -> None:
        return None

    def write_eof(self) -> None:
        return None

    def resize(self, columns: int, rows: int) -> None:
        return None

    async def close(self) -> None:
        return None


class HeartbeatBackend(LibvirtBackend):
    """The test-driver host, with consoles given by `HeartbeatChannel`."""

    channels: list[HeartbeatChannel]

    @property
    def withheld(self) -> Mapping[Capability, str]:
        return {}

    @contextlib.asynccontextmanager
    async def console(  # type: ignore[override]
        self, vm: Vm, *, term_type: str, term_size: tuple[int, int], force: bool = False
    ) -> AsyncIterator[HeartbeatChannel]:
        channel = HeartbeatChannel()
        self.channels = [*getattr(self, "channels", []), channel]
        yield channel


async def _windows(windows: int, window_s: float) -> list[float]:
    shares = []
    for _ in range(windows):
        cpu, wall = time.process_time(), time.perf_counter()
        await asyncio.sleep(window_s)
        shares.append(100 * (time.process_time() - cpu) / (time.perf_counter() - wall))
    return shares


async def _until(done: Callable[[], bool], limit_s: float, what: str) -> None:
    start = time.perf_counter()
    while not done():
        if time.perf_counter() - start > limit_s:
            raise SystemExit(f"(d): {what} did not happen")
        await asyncio.sleep(0.1)


async def idle_console(vms: int, windows: int, window_s: float) -> tuple[list[float], list[float]]:
    """% of a core per window: the idle dashboard, then with a console screen open."""
    with tempfile.TemporaryDirectory(prefix="ovmtui-bench-") as tmp:
        ((key, uri),) = write_estate(Path(tmp), 1, vms)
        estate = EstateConfig(
            pools=(
                PoolConfig(
                    name=key.pool, hosts=(HostConfig(pool=key.pool, name=key.name, libvirt=uri),)
                ),
            ),
            source="bench",
        )
        backend = HeartbeatBackend(key, uri)
        app = bench_app_class(OvmApp)(
            estate, interval_s=INTERVAL_S, backends=[backend], console_log_dir=Path(tmp)
        )
        async with app.run_test(size=SIZE) as pilot:
            await _until(lambda: app.screen.table.row_count == vms, 120, "the estate's load")
            generation = app.snapshot.generation
            await _until(lambda: app.snapshot.generation > generation, 3 * INTERVAL_S, "a poll")
            await settle(pilot)
            await asyncio.sleep(1.0)
            dashboard = await _windows(windows, window_s)
            (host,) = app.snapshot.hosts
            vm = next(v for v in host.vms if v.state is VmState.RUNNING)
            console = app.session.open_console(PlacedVm(key.pool, key.name, vm), size=(160, 48))
            show_console(app, console)
            await _until(lambda: isinstance(app.screen, ConsoleScreen), 10, "the console screen")
            await _until(lambda: console.status.state is ConsoleState.ATTACHED, 10, "attaching")
            await _until(lambda: backend.channels[-1].beats >= 2, 10, "a heartbeat")
            await settle(pilot)
            attached = await _windows(windows, window_s)
            assert console.status.state is ConsoleState.ATTACHED
            await app.session.close_consoles()
        return dashboard, attached
