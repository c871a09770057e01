"""CPU used by an idle dashboard showing 10,000 VMs, between two refreshes.

    .venv/bin/python bench/idle_cpu.py

Target: under 3 % of one core. The app runs headless (`run_test`, 160x50) over 10 libvirt
test-driver hosts x 1,000 VMs polled every 60 s, so no poll falls inside the measurement.
Once the estate is on screen, the process's CPU time (every thread: the UI, libvirt's
event thread and the workers) is read over windows of wall time. Baseline: a bare Textual
app with a Header, an empty DataTable and a Footer, measured the same way in the same run.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from pathlib import Path
from typing import Any

from _common import SIZE, bench_app_class, header, median, row, settle, title, verdict, write_estate

from ovmtui.app import OvmApp
from ovmtui.config import EstateConfig, HostConfig, PoolConfig

WINDOWS = 5
WINDOW_S = 2.0
LOAD_TIMEOUT_S = 90.0


async def idle_percent(pilot: Any) -> list[float]:
    """% of one core used in each of `WINDOWS` windows of `WINDOW_S` seconds."""
    await asyncio.sleep(2.0)  # let whatever the load started die down
    shares = []
    for _ in range(WINDOWS):
        cpu, wall = time.process_time(), time.perf_counter()
        await asyncio.sleep(WINDOW_S)
        shares.append(100 * (time.process_time() - cpu) / (time.perf_counter() - wall))
    return shares


async def bare() -> list[float]:
    from textual.app import App, ComposeResult
    from textual.widgets import DataTable, Footer, Header

    class Bare(App[None]):
        def compose(self) -> ComposeResult:
            yield Header()
            yield DataTable()
            yield Footer()

    app = bench_app_class(Bare)()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        return await idle_percent(pilot)


async def dashboard(directory: Path) -> tuple[list[float], float]:
    hosts = write_estate(directory, 10, 1_000)
    estate = EstateConfig(
        pools=(
            PoolConfig(
                name="pool00",
                hosts=tuple(
                    HostConfig(pool=key.pool, name=key.name, libvirt=uri) for key, uri in hosts
                ),
            ),
        ),
        source="bench",
    )
    app = bench_app_class(OvmApp)(estate, interval_s=60.0)
    async with app.run_test(size=SIZE) as pilot:
        start = time.perf_counter()
        while time.perf_counter() - start < LOAD_TIMEOUT_S:
            snapshot = app.snapshot
            if all(h.taken_at is not None for h in snapshot.hosts) and (
                app.screen.table.row_count == 10_000
            ):
                break
            await asyncio.sleep(0.1)
        else:
            raise SystemExit("the estate did not load")
        loaded = time.perf_counter() - start
        await settle(pilot)
        return await idle_percent(pilot), loaded


async def main() -> None:
    header("idle_cpu", WINDOWS, f"windows of {WINDOW_S:g} s per app")
    base = await bare()
    with tempfile.TemporaryDirectory(prefix="ovmtui-bench-") as tmp:
        shares, loaded = await dashboard(Path(tmp))
    title("idle CPU, % of one core (headless 160x50)")
    row("bare Textual app: Header, empty DataTable", f"{median(base):.2f} %", "baseline")
    cost, floor = median(shares), median(base)
    ratio = f"{cost / floor:.0f}x" if floor > 0 else "n/a"
    row(
        "ovmtui, 10,000 VMs on 10 test-driver hosts",
        f"{cost:.2f} %",
        f"{ratio}, +{cost - floor:.2f} points over baseline",
    )
    row("  (first poll and load of the estate took)", f"{loaded:.1f} s", "info")
    verdict("(3) idle dashboard", cost < 3.0, f"{cost:.2f} % < 3 %")


if __name__ == "__main__":
    asyncio.run(main())
