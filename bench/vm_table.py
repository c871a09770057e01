"""VM table: first load, 1%-changed refresh and repaint, at 1,000 / 10,000 / 50,000 VMs.

Run: .venv/bin/python bench/vm_table.py [--repeat N] [--sizes 1000,10000]

Every figure is a median over `--repeat` runs, in milliseconds, measured in one headless
app. "widget" figures time `apply_snapshot` plus rendering the lines the compositor would
ask for (`render_lines` over the viewport: only dirty lines are re-rendered, as in a real
frame). "app" figures time `apply_snapshot` plus `pilot.pause()`, which includes the
compositor's frame, in CPU time (the pause itself sleeps). The baseline is a repaint of
the whole viewport with nothing changed (what one scroll step costs), measured in the
same run, so ratios stay comparable across machines. Prints figures only; no assertions.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import gc
import random
import statistics
import time
from collections.abc import Awaitable, Callable, Iterator

from textual.app import App, ComposeResult
from textual.containers import Vertical
from textual.pilot import Pilot

from ovmtui.model import EstateDelta, EstateSnapshot, HostStatus, PlacedVm, Vm, VmState
from ovmtui.widgets.vm_table import VmTable

NOW = 1_700_000_000.0
VMS_PER_HOST = 50
SIZE = (160, 50)
STATES = (VmState.RUNNING,) * 6 + (VmState.SHUTOFF, VmState.PAUSED, VmState.CRASHED)


def build_estate(count: int, seed: int = 1) -> EstateSnapshot:
    rng = random.Random(seed)
    hosts = []
    for h in range(0, count, VMS_PER_HOST):
        vms = tuple(
            Vm(
                uuid=f"{n:08x}-0000-4000-8000-{n:012x}",
                name=f"{rng.choice(('web', 'db', 'app', 'cache'))}-{n:06d}",
                state=rng.choice(STATES),
                vcpus=rng.choice((1, 2, 4, 8)),
                memory_mib=rng.choice((512, 1024, 4096, 16384)),
                cpu_percent=round(rng.uniform(0, 100), 1),
                started_at=NOW - rng.uniform(0, 90 * 86400),
            )
            for n in range(h, min(h + VMS_PER_HOST, count))
        )
        pool = f"pool-{h // (VMS_PER_HOST * 16)}"
        hosts.append(
            HostStatus(pool=pool, name=f"host-{h // VMS_PER_HOST:04d}", address="-", vms=vms)
        )
    return EstateSnapshot(hosts=tuple(hosts), generation=1, taken_at=NOW)


def deltas(snapshot: EstateSnapshot, fraction: float, seed: int = 2) -> Iterator[EstateSnapshot]:
    """Endless successors of `snapshot`, each with `fraction` of the VMs' CPU % changed.

    Built by hand rather than by rebuilding every host, so producing the next snapshot
    costs little and the estate really is what the delta says.
    """
    rng = random.Random(seed)
    index = {p.uuid: p for p in snapshot.placed_vms()}
    uuids = list(index)
    generation = snapshot.generation
    while True:
        changed = []
        for uuid in rng.sample(uuids, max(1, int(len(uuids) * fraction))):
            old = index[uuid]
            vm = dataclasses.replace(old.vm, cpu_percent=round(rng.uniform(0, 100), 1))
            index[uuid] = PlacedVm(old.pool, old.host, vm)
            changed.append(index[uuid])
        delta = EstateDelta(since=generation, changed=tuple(changed))
        generation += 1
        # The hosts tuple is stale here on purpose: the table must not read it on this path.
        yield EstateSnapshot(hosts=snapshot.hosts, generation=generation, delta=delta)


class BenchApp(App[None]):
    def compose(self) -> ComposeResult:
        yield Vertical(id="host")


def median_ms(samples: list[float]) -> float:
    return statistics.median(samples) * 1000


async def timed(repeat: int, run: Callable[[], Awaitable[float]]) -> float:
    samples = []
    for _ in range(repeat):
        gc.collect()
        samples.append(await run())
    return median_ms(samples)


def paint(table: VmTable) -> None:
    # What the compositor does for one frame of this widget.
    table.render_lines(table.size.region)


async def bench_size(pilot: Pilot[None], count: int, repeat: int) -> dict[str, float]:
    app = pilot.app
    snapshot = build_estate(count)
    host = app.query_one("#host")
    figures: dict[str, float] = {}

    async def fresh_table() -> VmTable:
        for old in host.query(VmTable):
            await old.remove()
        table = VmTable(now=lambda: NOW)
        await host.mount(table)
        table.focus()
        await pilot.pause()
        return table

    tables: list[VmTable] = []

    async def first_load() -> float:
        table = await fresh_table()
        tables.append(table)
        start = time.perf_counter()
        table.apply_snapshot(snapshot)
        paint(table)
        return time.perf_counter() - start

    figures["first load (widget)"] = await timed(repeat, first_load)
    table = tables[-1]
    await pilot.pause()
    await pilot.press("pagedown", "pagedown")  # somewhere in the middle, as a user would be
    await pilot.pause()

    async def baseline() -> float:
        start = time.perf_counter()
        table.refresh()
        paint(table)
        return time.perf_counter() - start

    figures["baseline repaint (widget)"] = await timed(repeat * 3, baseline)

    for column in ("name", "cpu"):
        table.sort_by(column, reverse=column == "cpu")
        await pilot.pause()
        stream = deltas(snapshot, 0.01)
        # The generator continues from generation 1; the table must be on the same page.
        table.apply_snapshot(snapshot)
        await pilot.pause()
        prepared = [next(stream) for _ in range(repeat * 3 + repeat)]
        widget_runs, app_runs = prepared[: repeat * 3], prepared[repeat * 3 :]

        async def delta_widget(runs: list[EstateSnapshot] = widget_runs) -> float:
            step = runs.pop(0)
            start = time.perf_counter()
            table.apply_snapshot(step)
            paint(table)
            return time.perf_counter() - start

        async def delta_app(runs: list[EstateSnapshot] = app_runs) -> float:
            step = runs.pop(0)
            start = time.process_time()
            table.apply_snapshot(step)
            await pilot.pause()
            return time.process_time() - start

        label = f"1% delta, sorted by {column}"
        figures[f"{label} (widget)"] = await timed(repeat * 3, delta_widget)
        figures[f"{label} (app)"] = await timed(repeat, delta_app)

    async def idle_app() -> float:
        start = time.process_time()
        await pilot.pause()
        return time.process_time() - start

    figures["idle pause, no change (app)"] = await timed(repeat, idle_app)
    return figures


async def main(sizes: list[int], repeat: int) -> None:
    app = BenchApp()
    results: dict[int, dict[str, float]] = {}
    async with app.run_test(headless=True, size=SIZE) as pilot:
        for count in sizes:
            results[count] = await bench_size(pilot, count, repeat)
    labels = list(next(iter(results.values())))
    width = max(map(len, labels))
    print(f"VM table, median ms of {repeat}+ runs, viewport {SIZE[0]}x{SIZE[1]}")
    print(f"{'':{width}}" + "".join(f"{count:>12,}" for count in sizes))
    for label in labels:
        print(f"{label:{width}}" + "".join(f"{results[c][label]:12.2f}" for c in sizes))
    print()
    smallest, largest = sizes[0], sizes[-1]
    for count in sizes:
        base = results[count]["baseline repaint (widget)"]
        for column in ("name", "cpu"):
            value = results[count][f"1% delta, sorted by {column} (widget)"]
            print(f"{count:>7,} VMs: 1% delta sorted by {column} / baseline = {value / base:.2f}")
    for column in ("name", "cpu"):
        label = f"1% delta, sorted by {column} (widget)"
        ratio = results[largest][label] / results[smallest][label]
        print(f"{label}: {largest:,} / {smallest:,} VMs = {ratio:.2f}x")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--sizes", default="1000,10000,50000")
    args = parser.parse_args()
    asyncio.run(main([int(size) for size in args.sizes.split(",")], args.repeat))
