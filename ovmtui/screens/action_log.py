"""Every action of this session with its per-VM result, live while the screen is open."""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from dataclasses import dataclass

from textual.binding import Binding

from ovmtui.context import AppContext
from ovmtui.screens._list_screen import Cells, ListScreen
from ovmtui.services.actions import ActionResult
from ovmtui.services.session import MAX_LOG


@dataclass(frozen=True, slots=True)
class LoggedAction:
    """A result and its place in this screen's log: the session's log drops its oldest
    results past MAX_LOG, so an index into it would not name the same result for long."""

    seq: int
    result: ActionResult


class ActionLogScreen(ListScreen[LoggedAction]):
    BINDINGS = [Binding("escape,q,l", "app.pop_screen", "Back", id="action-log-close")]
    TABLE_ID = "action-log"
    COLUMNS = ("time", "action", "VM", "host", "result", "command")

    def __init__(self, context: AppContext) -> None:
        super().__init__()
        self.context = context
        self._log: list[LoggedAction] = []

    def key_of(self, item: LoggedAction) -> str:
        return str(item.seq)

    def cells_of(self, item: LoggedAction) -> Cells:
        result = item.result
        return (
            datetime.datetime.fromtimestamp(result.started_at).strftime("%H:%M:%S"),
            result.action.label,
            result.placed.vm.name,
            result.placed.host,
            "done" if result.ok else f"FAILED: {result.error}",
            result.command,
        )

    def title_of(self, items: Sequence[LoggedAction]) -> str:
        ok = sum(1 for item in items if item.result.ok)
        return f"Action log: {len(items)} actions, {ok} done, {len(items) - ok} failed"

    def on_mount(self) -> None:
        # Subscribed before the log is read: a result comes either in the log or after it.
        self.context.action_signal.subscribe(self, self.add_result)
        self._log = [LoggedAction(seq, r) for seq, r in enumerate(self.context.action_log)]
        self.show(self._log[::-1])

    def on_unmount(self) -> None:
        self.context.action_signal.unsubscribe(self)

    def add_result(self, result: ActionResult) -> None:
        seq = self._log[-1].seq + 1 if self._log else 0
        self._log.append(LoggedAction(seq, result))
        del self._log[:-MAX_LOG]
        self.show(self._log[::-1])
