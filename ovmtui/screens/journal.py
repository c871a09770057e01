"""The audit journal: every action ever journaled in the repository, filterable."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Sequence

from textual import work
from textual.binding import Binding
from textual.widget import Widget
from textual.widgets import Input

from ovmtui.errors import OvmError
from ovmtui.format import timestamp
from ovmtui.screens._list_screen import Cells, ListScreen
from ovmtui.store.journal import JournalEntry

LoadJournal = Callable[[], Awaitable[Sequence[JournalEntry]]]


class JournalScreen(ListScreen[JournalEntry]):
    """Newest first. The filter matches host, VM, user, operation or result."""

    BINDINGS = [
        Binding("escape,q", "app.pop_screen", "Back", id="journal-close"),
        Binding("slash", "filter", "Filter", id="journal-filter", priority=True),
        Binding("ctrl+r", "reload", "Reload", id="journal-reload"),
    ]
    TABLE_ID = "journal"
    COLUMNS = ("#", "time", "user", "host", "VM", "operation", "result", "command")
    INITIAL_TITLE = "Audit journal: loading…"

    def __init__(self, load: LoadJournal) -> None:
        super().__init__()
        self._load = load
        self._entries: Sequence[JournalEntry] = ()

    def compose_above_table(self) -> Iterable[Widget]:
        yield Input(
            placeholder="filter: host, VM, user, operation, ok / failed / unfinished",
            id="journal-filter-box",
        )

    def key_of(self, item: JournalEntry) -> str:
        return str(item.id)

    def cells_of(self, item: JournalEntry) -> Cells:
        return (
            str(item.id),
            timestamp(item.at),
            item.user,
            "" if item.host is None else f"{item.pool}/{item.host}",
            item.vm or "",
            item.operation,
            result_text(item),
            item.command or "",
        )

    def title_of(self, items: Sequence[JournalEntry]) -> str:
        return f"Audit journal: {len(items)} of {len(self._entries)} actions"

    def on_mount(self) -> None:
        self.action_reload()

    @work(exclusive=True, group="journal")
    async def action_reload(self) -> None:
        try:
            self._entries = await self._load()
        except OvmError as exc:
            self.say(f"Audit journal: {exc}")
            return
        self._filter()

    def action_filter(self) -> None:
        self.set_focus(self.query_one(Input))

    def on_input_changed(self, event: Input.Changed) -> None:
        self._filter()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.set_focus(self.table)

    def _filter(self) -> None:
        needle = self.query_one(Input).value.strip().lower()
        shown = [
            entry
            for entry in reversed(self._entries)
            if not needle or any(needle in cell.lower() for cell in self.cells_of(entry)[2:7])
        ]
        self.show(shown)


def result_text(entry: JournalEntry) -> str:
    """A journal entry's outcome as the journal screens show it."""
    if entry.ok is None:
        return "unfinished"
    return "ok" if entry.ok else f"failed: {entry.detail}"
