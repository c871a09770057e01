"""State drift in the dashboard: flagged in the header, listed, reconciled with a backup."""

from __future__ import annotations

from pathlib import Path

from textual.widgets import DataTable

from ovmtui.model import EstateSnapshot, HostStatus, Vm, VmState
from ovmtui.screens.dialogs import ConfirmDialog
from ovmtui.screens.drift import DriftScreen
from ovmtui.store.backup import list_backups
from ovmtui.store.drift import DriftedVm
from ovmtui.store.repository import Repository
from ovmtui.widgets.estate_header import EstateHeader
from tests.ui.conftest import SIZE, make_app, table, wait_until

GHOST = Vm("6f1c0000-0000-4000-8000-00000000dead", "ghost01", VmState.SHUTTING_DOWN)


async def record_ghost(path: Path) -> None:
    """An earlier run (or a restored repository) saw ghost01 shutting down on ovs01."""
    async with await Repository.open(path) as repo:
        host = HostStatus("prod", "ovs01", "test:///x", vms=(GHOST,), taken_at=5.0, reachable=True)
        await repo.save_snapshot(EstateSnapshot((host,), generation=1, taken_at=5.0))


async def test_drift_is_flagged_listed_and_reconciled(tmp_path: Path) -> None:
    path = tmp_path / "repository.sqlite"
    await record_ghost(path)
    app = make_app(repository=path)
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: table(app).row_count == 64, what="the live estate")
        await wait_until(pilot, lambda: len(app.drifted) == 1, what="the drift found")
        header = app.screen.query_one(EstateHeader)
        await wait_until(pilot, lambda: "1 in drift (D)" in str(header.render_line_content()))
        assert any(n.title == "State drift" for n in app._notifications)
        # ghost01 is not in the VM table: no host runs it.
        assert not any(p.vm.name == "ghost01" for p in app.snapshot.placed_vms())
        await pilot.press("D")
        await wait_until(pilot, lambda: isinstance(app.screen, DriftScreen))
        rows = app.screen.query_one(DataTable)
        assert rows.row_count == 1
        assert rows.get_row_at(0)[:3] == ["ghost01", "shutting-down", "prod/ovs01"]
        await pilot.press("R")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmDialog))
        await pilot.press("y")
        await wait_until(pilot, lambda: not app.drifted, what="the reconcile")
        await wait_until(pilot, lambda: rows.row_count == 0)
        await wait_until(pilot, lambda: "in drift" not in str(header.render_line_content()))
        repo = app.repository
        assert repo is not None
        entries = await repo.journal_entries()
        assert [(e.vm, e.operation, e.ok) for e in entries] == [("ghost01", "reconcile", True)]
    backups = list_backups(tmp_path / "backups")
    assert len(backups) == 1  # taken before the change
    async with await Repository.open(backups[0]) as before:
        assert [d.name for d in await before.drifted()] == ["ghost01"]
    async with await Repository.open(path) as after:
        assert await after.drifted() == []


async def test_reconcile_refused_in_read_only_mode(tmp_path: Path) -> None:
    path = tmp_path / "repository.sqlite"
    await record_ghost(path)
    app = make_app(repository=path, read_only=True)
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: len(app.drifted) == 1, what="the drift found")
        await pilot.press("D")
        await wait_until(pilot, lambda: isinstance(app.screen, DriftScreen))
        await pilot.press("R")
        await wait_until(pilot, lambda: any("Read-only" in n.message for n in app._notifications))
        assert len(app.drifted) == 1
    assert not (tmp_path / "backups").exists()


def drifted(*names: str, state: VmState = VmState.RUNNING) -> tuple[DriftedVm, ...]:
    return tuple(
        DriftedVm(
            "prod", "ovs01", f"6f1c0000-0000-4000-8000-0000000000{n:02d}", name, state, 5.0, 6.0
        )
        for n, name in enumerate(names)
    )


async def test_the_cursor_stays_on_its_vm_when_the_drift_list_changes() -> None:
    """The list is updated in place: a VM before the cursor gone, the cursor stays put."""
    app = make_app(interval_s=3600.0)
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: table(app).row_count == 64)
        await pilot.press("D")
        await wait_until(pilot, lambda: isinstance(app.screen, DriftScreen))
        screen = app.screen
        rows = screen.query_one(DataTable)
        ghosts = drifted("ghost00", "ghost01", "ghost02", "ghost03")
        app.session.events.drift(ghosts)  # as the session reports a new drift list
        await wait_until(pilot, lambda: rows.row_count == 4)
        await pilot.press("down", "down")
        assert rows.get_row_at(rows.cursor_row)[0] == "ghost02"
        app.session.events.drift(ghosts[1:])  # ghost00, above the cursor, is live again
        await wait_until(pilot, lambda: rows.row_count == 3)
        assert rows.get_row_at(rows.cursor_row)[0] == "ghost02"
        assert rows.cursor_row == 1
        assert isinstance(screen, DriftScreen) and screen.selected == ghosts[2]
        # Recorded differently now: the row changes in place and the cursor stays.
        paused = drifted("ghost00", "ghost01", "ghost02", "ghost03", state=VmState.PAUSED)
        app.session.events.drift(paused[1:])
        await wait_until(pilot, lambda: rows.get_row_at(1)[1] == "paused")
        assert screen.selected == paused[2] and rows.cursor_row == 1
