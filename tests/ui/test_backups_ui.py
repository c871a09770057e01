"""The Backups screen: back up, list, restore under the running app (confirmed)."""

from __future__ import annotations

from pathlib import Path

from textual.widgets import DataTable

from ovmtui.model import VmState
from ovmtui.screens.backups import BackupsScreen
from ovmtui.screens.dialogs import ConfirmDialog
from ovmtui.store.backup import list_backups
from ovmtui.store.repository import Repository
from tests.ui.conftest import SIZE, make_app, state_of, table, wait_until


async def recorded_state(path: Path, name: str) -> VmState | None:
    async with await Repository.open(path) as repo:
        snapshot = await repo.load_snapshot()
    assert snapshot is not None
    for placed in snapshot.placed_vms():
        if placed.vm.name == name:
            return placed.vm.state
    return None


async def test_back_up_then_restore_without_restarting(tmp_path: Path) -> None:
    path = tmp_path / "repository.sqlite"
    app = make_app(repository=path)
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: table(app).row_count == 64)
        await pilot.press("b")
        await wait_until(pilot, lambda: isinstance(app.screen, BackupsScreen))
        backups = app.screen.query_one(DataTable)
        await pilot.press("b")
        await wait_until(pilot, lambda: backups.row_count == 1, what="the new backup listed")
        assert backups.get_row_at(0)[6] == "yes"
        # After the backup: an action, journaled in the live repository only.
        await pilot.press("escape", "slash", *"kafka01", "enter", "p")
        await wait_until(pilot, lambda: state_of(app, "kafka01") is VmState.PAUSED)
        await wait_until(pilot, lambda: len(app.action_log) == 1)
        first_repository = app.repository
        await pilot.press("escape", "b")
        await wait_until(pilot, lambda: isinstance(app.screen, BackupsScreen))
        backups = app.screen.query_one(DataTable)
        await wait_until(pilot, lambda: backups.row_count == 1)
        await pilot.press("R")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmDialog), what="the question")
        await pilot.press("y")
        await wait_until(
            pilot,
            lambda: app.repository is not None and app.repository is not first_repository,
            what="the restored repository in use",
        )
        await wait_until(pilot, lambda: backups.row_count == 2, what="the pre-restore backup")
        assert any("Restored" in (n.title or "") for n in app._notifications)
        repo = app.repository
        assert repo is not None
        entries = await repo.journal_entries()
        # The pause came after the backup: not in the restored journal; the restore is.
        assert [(e.operation, e.ok) for e in entries] == [("restore", True)]
        # The app carries on with it: the next poll records what the host says now.
        app.refresh_now()
        await wait_until(pilot, lambda: app.snapshot.generation > 0)
    assert await recorded_state(path, "kafka01") is VmState.PAUSED
    saved = list_backups(tmp_path / "backups")
    async with await Repository.open(saved[-1]) as previous:
        operations = [e.operation for e in await previous.journal_entries()]
    assert operations == ["pause"]  # the replaced journal lives on in its backup


async def test_restore_is_refused_in_read_only_mode(tmp_path: Path) -> None:
    path = tmp_path / "repository.sqlite"
    app = make_app(repository=path, read_only=True)
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: table(app).row_count == 64)
        await pilot.press("b")
        await wait_until(pilot, lambda: isinstance(app.screen, BackupsScreen))
        backups = app.screen.query_one(DataTable)
        await pilot.press("b")  # a backup changes nothing: allowed
        await wait_until(pilot, lambda: backups.row_count == 1)
        await pilot.press("R")
        await wait_until(pilot, lambda: any("Read-only" in n.message for n in app._notifications))
        assert isinstance(app.screen, BackupsScreen)
    assert len(list_backups(tmp_path / "backups")) == 1
