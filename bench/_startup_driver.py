"""One launch for bench/startup.py: start an app headless, report when it painted, exit.

    python bench/_startup_driver.py bare|ovmtui

Prints `first <t>` when the app's main screen was first painted and, for ovmtui, `data <t>`
when the first poll's data was, where t is `time.monotonic()`: one clock for every process
of the machine, so the parent subtracts its own launch time. Kept apart from `_common` so a
launch imports nothing that the app itself would not.

A paint is caught in `App._display`, where Textual hands each finished frame to the
terminal; headless it skips turning the frame into escape sequences, so that is done here
(a real terminal pays for it). `call_after_refresh` was tried first, but it runs only once
the app is next idle: up to 250 ms after the paint while the first poll is in flight.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

SIZE = (160, 50)


def report(what: str) -> None:
    print(f"{what} {time.monotonic():.6f}", flush=True)


def painting(base: type[Any], screen_type: type[Any]) -> type[Any]:
    from textual._compositor import CompositorUpdate

    class Painting(base):  # type: ignore[misc, valid-type]
        data_shown = False  # set once the data to wait for is in the widgets
        reported: tuple[str, ...] = ()

        def _display(self, screen: Any, renderable: Any) -> None:
            super()._display(screen, renderable)
            if not isinstance(renderable, CompositorUpdate) or not isinstance(screen, screen_type):
                return
            renderable.render_segments(self.console)
            if "first" not in self.reported:
                self.reported += ("first",)
                report("first")
            if self.data_shown and "data" not in self.reported:
                self.reported += ("data",)
                report("data")
                self.call_later(self.exit)

    return Painting


def run_bare() -> None:
    from textual.app import App, ComposeResult
    from textual.screen import Screen
    from textual.widgets import DataTable, Footer, Header

    class Bare(App[None]):
        def compose(self) -> ComposeResult:
            yield Header()
            yield DataTable(cursor_type="row")
            yield Footer()

        def on_mount(self) -> None:
            table: DataTable[str] = self.query_one(DataTable)
            table.add_columns("Name", "State", "Host", "vCPUs", "Memory", "CPU %", "Uptime")
            table.add_rows(
                (f"vm-{i:04d}", "running", f"host{i % 5}", "2", "4.0 GiB", "1.5", "3d 02h")
                for i in range(200)
            )
            self.data_shown = True  # the rows are there before the first paint

    painting(Bare, Screen)().run(headless=True, size=SIZE)


def run_ovmtui() -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    # What `ovmtui --demo` does (ovmtui.cli.main), with its paints reported.
    from ovmtui.cli import build_parser, resolve_estate

    args = build_parser().parse_args(["--demo"])
    estate = resolve_estate(args)

    from ovmtui.app import OvmApp
    from ovmtui.messages import EstateUpdated
    from ovmtui.screens.dashboard import DashboardScreen

    class Demo(OvmApp):
        def on_estate_updated(self, message: EstateUpdated) -> None:
            super().on_estate_updated(message)
            hosts = message.snapshot.hosts
            if hosts and all(host.taken_at is not None for host in hosts):
                self.data_shown = True

    app = painting(Demo, DashboardScreen)(estate, interval_s=args.interval)
    app.run(headless=True, size=SIZE)


if __name__ == "__main__":
    {"bare": run_bare, "ovmtui": run_ovmtui}[sys.argv[1]]()
