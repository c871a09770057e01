"""Every action of this session with its per-VM result."""

from __future__ import annotations

import datetime
from collections.abc import Sequence

from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Static

from ovmtui.services.actions import ActionResult


class ActionLogScreen(Screen[None]):
    BINDINGS = [Binding("escape,q,l", "app.pop_screen", "Back", id="action-log-close")]

    def __init__(self, results: Sequence[ActionResult]) -> None:
        super().__init__()
        self._results = list(results)

    def compose(self) -> ComposeResult:
        ok = sum(1 for r in self._results if r.ok)
        yield Static(
            f"Action log: {len(self._results)} actions, {ok} done, "
            f"{len(self._results) - ok} failed",
            id="action-log-title",
        )
        yield DataTable(id="action-log", cursor_type="row", zebra_stripes=True)
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        table.add_columns("time", "action", "VM", "host", "result", "command")
        for result in reversed(self._results):
            when = datetime.datetime.fromtimestamp(result.started_at).strftime("%H:%M:%S")
            table.add_row(
                when,
                result.action.label,
                result.placed.vm.name,
                result.placed.host,
                "done" if result.ok else f"FAILED: {result.error}",
                result.command,
            )
        table.focus()
