"""CPU used by the idle TUI watching one libvirt host polled at the default interval (5 s).

    .venv/bin/python bench/idle_cpu.py [--runs N] [--windows N] [--window-s S] [--shapes 10000,1000]

Target: ovmtui's own share of a core under 0.5 % at 10,000 VMs. ovmtui: the whole app
headless (`run_test`, 160x50), its real poller at the default interval, over one libvirt
test-driver host of 10,000 VMs (and, second shape, 1,000). Baseline, in the same run: a bare
Textual app (Header, empty DataTable, Footer) whose worker thread makes the very call a poll
makes of the host, `getAllDomainStats` with the same stat groups and flags, on a connection of
its own to the same node at the same interval. Idle is read once the estate is on screen: the
process's CPU time (every thread: the UI, libvirt's event thread, the workers, and the test
driver, which runs in-process) over windows of wall time, each three intervals long so that
every window holds whole polls. ovmtui's own share is its idle minus the baseline's: what the
poller, the backend and the UI add to what libvirt itself costs. The two are measured in turn,
`--runs` times, and the medians of the per-run figures are reported (the machine is shared).

Run with the process settings of the TUI (`tune_process_for_ui()`), as `ovmtui` starts it. No
repository: every published snapshot would also be written to SQLite (`--repository` adds it,
as information).
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from _common import SIZE, bench_app_class, header, median, row, settle, title, verdict, write_estate

from ovmtui.app import OvmApp, tune_process_for_ui
from ovmtui.config import EstateConfig, HostConfig, PoolConfig

INTERVAL_S = 5.0  # EstatePoller's and the TUI's default
LOAD_TIMEOUT_S = 120.0
TARGET = 0.5  # % of a core, ovmtui's own share at 10,000 VMs


async def idle_percent(windows: int, window_s: float) -> list[float]:
    """% of one core used by the whole process in each of `windows` windows."""
    shares = []
    for _ in range(windows):
        cpu, wall = time.process_time(), time.perf_counter()
        await asyncio.sleep(window_s)
        shares.append(100 * (time.process_time() - cpu) / (time.perf_counter() - wall))
    return shares


async def bare(uri: str, windows: int, window_s: float) -> list[float]:
    """A bare Textual app and a bare loop of the poll's host call at the same interval."""
    import libvirt
    from textual.app import App, ComposeResult
    from textual.widgets import DataTable, Footer, Header

    from ovmtui.backend.libvirt import _STATS_GROUPS, _STATS_NOWAIT, _ensure_libvirt_runtime

    class Bare(App[None]):
        def compose(self) -> ComposeResult:
            yield Header()
            yield DataTable()
            yield Footer()

    _ensure_libvirt_runtime()  # as for ovmtui: its event thread, its error handler
    worker = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="bare-stats")
    loop = asyncio.get_running_loop()
    conn = await loop.run_in_executor(worker, libvirt.open, uri)
    calls = [0]

    def stats() -> int:
        calls[0] += 1
        return len(conn.getAllDomainStats(_STATS_GROUPS, _STATS_NOWAIT))

    async def poll_forever() -> None:
        while True:
            await loop.run_in_executor(worker, stats)
            await asyncio.sleep(INTERVAL_S)

    app = bench_app_class(Bare)()
    try:
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot)
            task = asyncio.create_task(poll_forever())
            await _steady(lambda: calls[0] >= 2)
            shares = await idle_percent(windows, window_s)
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
    finally:
        await loop.run_in_executor(worker, conn.close)
        worker.shutdown()
    return shares


async def ovmtui(
    uri: str, vms: int, windows: int, window_s: float, repository: Path | None
) -> tuple[list[float], float]:
    estate = EstateConfig(
        pools=(
            PoolConfig(
                name="pool00", hosts=(HostConfig(pool="pool00", name="host000", libvirt=uri),)
            ),
        ),
        source="bench",
    )
    app = bench_app_class(OvmApp)(estate, interval_s=INTERVAL_S, repository=repository)
    async with app.run_test(size=SIZE) as pilot:
        start = time.perf_counter()
        while time.perf_counter() - start < LOAD_TIMEOUT_S:
            (host,) = app.snapshot.hosts
            if host.taken_at is not None and app.screen.table.row_count == vms:
                break
            await asyncio.sleep(0.1)
        else:
            raise SystemExit("the estate did not load")
        loaded = time.perf_counter() - start
        await settle(pilot)
        generation = app.snapshot.generation
        await _steady(lambda: app.snapshot.generation >= generation + 1)  # a steady poll
        return await idle_percent(windows, window_s), loaded


async def _steady(polled: Callable[[], bool]) -> None:
    """Until the first steady-state poll is in (what the load started has died down)."""
    start = time.perf_counter()
    while not polled():
        if time.perf_counter() - start > 3 * INTERVAL_S:
            raise SystemExit("no steady poll came")
        await asyncio.sleep(0.1)
    await asyncio.sleep(1.0)


def parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3, help="baseline/ovmtui pairs per shape")
    parser.add_argument("--windows", type=int, default=3, help="windows per measurement")
    parser.add_argument("--window-s", type=float, default=3 * INTERVAL_S)
    parser.add_argument("--shapes", default="10000,1000", help="VMs on the one host")
    parser.add_argument("--repository", action="store_true", help="also with a repository")
    return parser.parse_args()


async def main() -> None:
    args = parse()
    tune_process_for_ui()  # as `ovmtui` does before it starts the TUI
    header(
        "idle_cpu",
        args.runs,
        f"runs, each the median of {args.windows} windows of {args.window_s:g} s per app",
    )
    with tempfile.TemporaryDirectory(prefix="ovmtui-bench-") as tmp:
        for vms in (int(text) for text in args.shapes.split(",")):
            shape = Path(tmp) / str(vms)
            shape.mkdir()
            ((_key, uri),) = write_estate(shape, 1, vms)
            base, own, total, loads, stored = [], [], [], [], []
            for run in range(args.runs):
                b = median(await bare(uri, args.windows, args.window_s))
                o, loaded = await ovmtui(uri, vms, args.windows, args.window_s, None)
                o = median(o)
                base.append(b)
                total.append(o)
                own.append(o - b)
                loads.append(loaded)
                print(f"  run {run + 1}: baseline {b:.2f} %, ovmtui {o:.2f} %, own {o - b:.2f} %")
                if args.repository:
                    r, _ = await ovmtui(
                        uri, vms, args.windows, args.window_s, Path(tmp) / f"repo{vms}-{run}.db"
                    )
                    stored.append(median(r) - b)
                    print(f"         with a repository: own {stored[-1]:.2f} %")
            title(f"idle CPU, % of one core: one test-driver host of {vms:,} VMs, polled every 5 s")
            row("bare app + bare getAllDomainStats loop", f"{median(base):.2f} %", "baseline")
            row("ovmtui (headless 160x50)", f"{median(total):.2f} %")
            spread = f"runs {min(own):.2f} to {max(own):.2f}"
            row("ovmtui's own share (ovmtui - baseline)", f"{median(own):.2f} %", spread)
            if stored:
                row("  info: own share with a repository", f"{median(stored):.2f} %")
            row("  info: first poll and load of the estate", f"{median(loads):.1f} s")
            if vms == 10_000:
                ok = median(own) < TARGET
                verdict("idle at 10,000 VMs", ok, f"own share {median(own):.2f} % < {TARGET} %")


if __name__ == "__main__":
    asyncio.run(main())
