"""The audit journal: every action ever journaled in the repository, filterable."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Input, Static

from ovmtui.errors import OvmError
from ovmtui.format import timestamp
from ovmtui.store.journal import JournalEntry

LoadJournal = Callable[[], Awaitable[Sequence[JournalEntry]]]


class JournalScreen(Screen[None]):
    """Newest first. The filter matches host, VM, user, operation or result."""

    BINDINGS = [
        Binding("escape,q", "app.pop_screen", "Back", id="journal-close"),
        Binding("slash", "filter", "Filter", id="journal-filter", priority=True),
        Binding("ctrl+r", "reload", "Reload", id="journal-reload"),
    ]

    def __init__(self, load: LoadJournal) -> None:
        super().__init__()
        self._load = load
        self._entries: Sequence[JournalEntry] = ()

    def compose(self) -> ComposeResult:
        yield Static("Audit journal: loading…", id="journal-title")
        yield Input(
            placeholder="filter: host, VM, user, operation, ok / failed / unfinished",
            id="journal-filter-box",
        )
        yield DataTable(id="journal", cursor_type="row", zebra_stripes=True)
        yield Footer()

    def on_mount(self) -> None:
        self.query_one(DataTable).add_columns(
            "#", "time", "user", "host", "VM", "operation", "result", "command"
        )
        self.query_one(DataTable).focus()
        self.action_reload()

    @work(exclusive=True, group="journal")
    async def action_reload(self) -> None:
        try:
            self._entries = await self._load()
        except OvmError as exc:
            self.query_one("#journal-title", Static).update(f"Audit journal: {exc}")
            return
        self._show()

    def action_filter(self) -> None:
        self.set_focus(self.query_one(Input))

    def on_input_changed(self, event: Input.Changed) -> None:
        self._show()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.set_focus(self.query_one(DataTable))

    def _show(self) -> None:
        needle = self.query_one(Input).value.strip().lower()
        table = self.query_one(DataTable)
        table.clear()
        shown = 0
        for entry in reversed(self._entries):
            result = _result(entry)
            cells = (
                str(entry.id),
                timestamp(entry.at),
                entry.user,
                "" if entry.host is None else f"{entry.pool}/{entry.host}",
                entry.vm or "",
                entry.operation,
                result,
                entry.command or "",
            )
            if needle and not any(needle in cell.lower() for cell in cells[2:7]):
                continue
            table.add_row(*cells)
            shown += 1
        self.query_one("#journal-title", Static).update(
            f"Audit journal: {shown} of {len(self._entries)} actions"
        )


def _result(entry: JournalEntry) -> str:
    if entry.ok is None:
        return "unfinished"
    return "ok" if entry.ok else f"failed: {entry.detail}"
