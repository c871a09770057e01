"""(c) of bench/console_throughput.py: a flood of time-stamped lines, keys pressed meanwhile.

A console screen holds the terminal and binds its leave key (Ctrl+], which the widget does not
type), as `ConsoleScreen` does; the app notes when each press reached its handler and, at
every paint, the age of the newest line on the terminal.
"""

from __future__ import annotations

import asyncio
import gc
import re
import time
from typing import Any

from _common import bench_app_class
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.screen import Screen

from ovmtui.widgets.terminal_view import TerminalView

SIZE = (200, 50)

_STAMP = re.compile(r"@(\d+\.\d{6})@")


class FloodScreen(Screen[None]):
    BINDINGS = [Binding("ctrl+right_square_bracket", "answered", "Leave", id="console-leave")]

    def compose(self) -> ComposeResult:
        yield TerminalView(id="term")

    def on_mount(self) -> None:
        self.query_one(TerminalView).focus()

    def action_answered(self) -> None:
        self.app.answered.append(time.perf_counter())  # type: ignore[attr-defined]


class FloodApp(App[None]):
    """A console screen, its leave key bound on the screen; each paint notes the age of the
    newest line on the terminal."""

    def __init__(self) -> None:
        super().__init__()
        self.answered: list[float] = []
        self.ages: list[float] = []

    def on_mount(self) -> None:
        gc.freeze()  # as OvmApp does once mounted (docs/latency.md, "gc.freeze() at start")
        self.push_screen(FloodScreen())

    def _display(self, screen: Any, renderable: Any) -> None:
        super()._display(screen, renderable)
        if renderable is None or not isinstance(screen, FloodScreen):
            return
        state = screen.query_one(TerminalView).screen_state
        newest = 0.0
        for y in (state.cursor.y - 1, state.cursor.y):  # the last whole line and the next
            line = state.row(y)
            found = _STAMP.search("".join(line[x].data for x in range(24) if x in line))
            if found:
                newest = max(newest, float(found.group(1)))
        if newest:
            self.ages.append(time.perf_counter() - newest)


async def flood(rate: int, seconds: float) -> dict[str, Any]:
    app = bench_app_class(FloodApp)()
    padding = " flood line of a guest that prints faster than any eye reads: " + "x" * 40
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        view = app.screen.query_one(TerminalView)
        offered = [0]

        async def feeder() -> None:
            start = time.perf_counter()
            while (now := time.perf_counter()) - start < seconds:
                due = int(rate * (now - start)) - offered[0]
                if due > 0:
                    stamp = f"@{time.perf_counter():.6f}@{padding}\r\n".encode()
                    data = stamp * (due // len(stamp) + 1)
                    view.feed(data)
                    offered[0] += len(data)
                await asyncio.sleep(0.005)

        gc.collect()
        task = asyncio.create_task(feeder())
        began = time.perf_counter()
        pressed: list[float] = []
        presses: list[asyncio.Task[None]] = []

        async def press() -> None:
            pressed.append(time.perf_counter())
            await pilot.press("ctrl+right_square_bracket")

        await asyncio.sleep(0.5)  # the flood is on
        # A key every 50 ms, each press on its own: `pilot.press` returns only once the app
        # is idle, which it is not until the flood ends.
        while not task.done():
            presses.append(asyncio.create_task(press()))
            await asyncio.sleep(0.05)
        await asyncio.gather(*presses)
        latencies = [done - sent for sent, done in zip(pressed, app.answered, strict=True)]
        elapsed = time.perf_counter() - began
        await task
        return {
            "offered": offered[0] / elapsed,
            "latencies": latencies,
            "ages": app.ages,
            "dropped": view.dropped_bytes,
            "total": offered[0],
        }
