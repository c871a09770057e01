"""The consoles open now: which VM, where, in what state, how much came in, and the log."""

from __future__ import annotations

from collections.abc import Sequence

from textual.binding import Binding

from ovmtui.context import AppContext
from ovmtui.format import size
from ovmtui.screens._list_screen import Cells, ListScreen
from ovmtui.screens.console import show_console
from ovmtui.services.consoles import ConsoleSession, ConsoleStatus


class ConsolesScreen(ListScreen[ConsoleStatus]):
    BINDINGS = [
        Binding("enter", "show", "Show", id="consoles-show", priority=True),
        Binding("x", "close_console", "Close console", id="consoles-close"),
        Binding("escape,q,C", "app.pop_screen", "Back", id="consoles-back"),
    ]
    TABLE_ID = "consoles"
    COLUMNS = ("VM", "host", "state", "in", "command", "log", "detail")

    def __init__(self, context: AppContext) -> None:
        super().__init__()
        self.context = context

    def key_of(self, item: ConsoleStatus) -> str:
        return item.uuid

    def cells_of(self, item: ConsoleStatus) -> Cells:
        state = item.state.value + (" (view-only)" if item.view_only else "")
        return (
            item.vm,
            item.host,
            state,
            size(item.bytes_in),
            item.command,
            str(item.log_path or "none"),
            item.detail or "",
        )

    def title_of(self, items: Sequence[ConsoleStatus]) -> str:
        if not items:
            return "Consoles: none open (c on a VM opens its console)"
        return f"Consoles: {len(items)} open (enter shows one, x closes it)"

    def on_mount(self) -> None:
        self._update()
        # A console's bytes and state change under the list; once a second is enough to read.
        self.set_interval(1.0, self._update)

    def _update(self) -> None:
        self.show([console.status for console in self.context.consoles])

    def _selected_console(self) -> ConsoleSession | None:
        selected = self.selected
        if selected is None:
            return None
        return next((c for c in self.context.consoles if c.key == selected.uuid), None)

    def action_show(self) -> None:
        console = self._selected_console()
        if console is not None:
            self.app.pop_screen()
            show_console(self.app, console, context=self.context)

    def action_close_console(self) -> None:
        console = self._selected_console()
        if console is not None:
            console.close()
            self.notify(f"Closing the console of {console.status.vm}.", markup=False)
