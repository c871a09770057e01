"""The action log: every result of this session, newest first, live while open."""

from __future__ import annotations

from textual.widgets import DataTable

from ovmtui.model import VmAction
from ovmtui.screens.action_log import ActionLogScreen
from tests.ui.conftest import SIZE, make_app, table, wait_until


async def test_a_new_result_shows_while_the_log_is_open() -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: table(app).row_count == 64)
        await pilot.press("slash", *"kafka01", "enter", "p")
        await wait_until(pilot, lambda: len(app.action_log) == 1)
        await pilot.press("escape", "l")
        await wait_until(pilot, lambda: isinstance(app.screen, ActionLogScreen))
        log = app.screen.query_one(DataTable)
        assert log.row_count == 1
        assert log.get_row_at(0)[1:3] == ["Pause", "kafka01"]
        # While the log is open, another action finishes (a bulk run, a palette entry).
        kafka02 = next(p for p in app.snapshot.placed_vms() if p.vm.name == "kafka02")
        app.start_actions([kafka02], VmAction.PAUSE)
        await wait_until(pilot, lambda: log.row_count == 2, what="the new result listed")
        assert log.get_row_at(0)[1:5] == ["Pause", "kafka02", kafka02.host, "done"]
        assert log.get_row_at(log.cursor_row)[2] == "kafka01"  # the cursor stays on its row
        title = str(app.screen.query_one("#action-log-title").render())
        assert title == "Action log: 2 actions, 2 done, 0 failed"
        await pilot.press("escape")
        await wait_until(pilot, lambda: not isinstance(app.screen, ActionLogScreen))
        # Closed, it no longer listens: a third result reaches only the session's log.
        app.start_actions([kafka02], VmAction.RESUME)
        await wait_until(pilot, lambda: len(app.action_log) == 3)
        assert log.row_count == 2
