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
        assert backups.get_row_at(0)[1] == "this repository"
        assert backups.get_row_at(0)[7] == "yes"
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


async def test_restore_from_another_manager_is_reconciled_by_the_next_poll(
    tmp_path: Path,
) -> None:
    """A backup made elsewhere, same host names: live facts win, contradictions are drift."""
    import dataclasses

    from ovmtui.model import EstateSnapshot, HostStatus, Vm
    from ovmtui.store.backup import create_backup

    path = tmp_path / "repository.sqlite"
    app = make_app(repository=path)
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: table(app).row_count == 64)
        live = next(p for p in app.snapshot.placed_vms() if p.host == "ovs01")
        # The other manager had this VM paused on ovs02, and a VM no host here knows.
        elsewhere = tmp_path / "other" / "repository.sqlite"
        ghost = Vm("0badc0de-0000-4000-8000-000000000001", "ghost02", VmState.RUNNING)
        async with await Repository.open(elsewhere) as other:
            hosts = (
                HostStatus("prod", "ovs01", "x", vms=(ghost,), taken_at=5.0, reachable=True),
                HostStatus(
                    "prod",
                    "ovs02",
                    "x",
                    vms=(dataclasses.replace(live.vm, state=VmState.PAUSED),),
                    taken_at=5.0,
                    reachable=True,
                ),
            )
            await other.save_snapshot(EstateSnapshot(hosts, generation=1, taken_at=5.0))
            backup = await create_backup(other, tmp_path / "other" / "backups")
        await app.restore(await app.plan_restore(backup, from_other_repository=True))
        await wait_until(pilot, lambda: [d.name for d in app.drifted] == ["ghost02"])
        assert app.repository is not None
        known = await app.repository.load_snapshot()
        assert known is not None
        placed = [p for p in known.placed_vms() if p.uuid == live.uuid]
        assert [(p.host, p.vm.state) for p in placed] == [("ovs01", live.vm.state)]
        assert sum(1 for _ in known.placed_vms()) == 64 + 1  # the live estate and the ghost


async def test_a_backup_of_another_repository_is_asked_about_twice(tmp_path: Path) -> None:
    """In the shared backups/ folder, another repository's backup is listed as such, and
    restoring it takes a second, explicit question that says what it brings in."""
    from ovmtui.model import EstateSnapshot, HostStatus
    from ovmtui.store.backup import create_backup

    path = tmp_path / "repository.sqlite"
    async with await Repository.open(tmp_path / "demo-repository.sqlite") as other:
        status = HostStatus("lab", "made-up01", "x", taken_at=5.0, reachable=True)
        await other.save_snapshot(EstateSnapshot((status,), generation=1, taken_at=5.0))
        await create_backup(other, tmp_path / "backups")
    app = make_app(repository=path)
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: table(app).row_count == 64)
        first_repository = app.repository
        await pilot.press("b")
        await wait_until(pilot, lambda: isinstance(app.screen, BackupsScreen))
        backups = app.screen.query_one(DataTable)
        await wait_until(pilot, lambda: backups.row_count == 1)
        assert str(backups.get_row_at(0)[1]).startswith("another repository")
        await pilot.press("R")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmDialog), what="a question")
        dialog = app.screen
        assert isinstance(dialog, ConfirmDialog)
        warning = str(dialog.query_one("#dialog-warning").render())
        assert "another repository" in warning and "lab" in warning
        await pilot.press("n")
        await wait_until(pilot, lambda: isinstance(app.screen, BackupsScreen))
        assert app.repository is first_repository  # declined: nothing changed
        await pilot.press("R")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmDialog))
        await pilot.press("y")  # yes, another repository's
        await wait_until(
            pilot,
            lambda: isinstance(app.screen, ConfirmDialog) and app.screen is not dialog,
            what="the restore's own question",
        )
        question = str(app.screen.query_one("#dialog-warning").render())
        assert "pools not in this repository: lab" in question
        await pilot.press("y")
        await wait_until(
            pilot,
            lambda: app.repository is not None and app.repository is not first_repository,
            what="the restored repository in use",
        )
        repo = app.repository
        assert repo is not None
        (entry,) = [e for e in await repo.journal_entries() if e.operation == "restore"]
        assert entry.ok and "--from-other-repository" in (entry.command or "")


async def test_export_definitions_from_the_dashboard(tmp_path: Path) -> None:
    from ovmtui.services.definitions import list_archives, read_archive

    app = make_app(repository=tmp_path / "repository.sqlite")
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: table(app).row_count == 64)
        await pilot.press("E")
        await wait_until(
            pilot,
            lambda: any(n.title == "Definitions exported" for n in app._notifications),
            what="the export",
        )
        assert app.repository is not None
        jobs = await app.repository.jobs()
        assert [(j.kind, j.state) for j in jobs] == [("export-definitions", "done")]
    archives = list_archives(tmp_path / "definitions")
    assert len(archives) == 1
    assert len(read_archive(archives[0]).entries) == 64
