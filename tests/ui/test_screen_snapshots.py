"""Snapshots of every screen but the dashboard's own (tests/ui/test_snapshots.py): the list
screens, the key panel and the dialogs, each at 80x24 and 200x50.

What would vary is fixed: the clock (the app's, the journal's and the backups' times, the
action service's), the time zone (times are shown in local time), the repositories'
identities (the backups screen says whose each backup is, and backup names carry the
identity), and the paths shown (repositories live in one fixed directory, as the demo's
node files do). Notices are cleared before each picture; they have tests of their own.
"""

from __future__ import annotations

import asyncio
import fcntl
import os
import shutil
import sqlite3
import time
import types
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot

from ovmtui.app import OvmApp
from ovmtui.model import EstateSnapshot, HostStatus, Vm, VmState
from ovmtui.screens.action_log import ActionLogScreen
from ovmtui.screens.backups import BackupsScreen
from ovmtui.screens.dialogs import ConfirmDialog
from ovmtui.screens.drift import DriftScreen
from ovmtui.screens.journal import JournalScreen
from ovmtui.screens.vm import VmScreen
from ovmtui.services import actions
from ovmtui.store.backup import create_backup
from ovmtui.store.repository import Repository
from tests.ui.conftest import FIXED_NOW, loaded, make_app, wait_until

SIZES = [pytest.param((80, 24), id="80x24"), pytest.param((200, 50), id="200x50")]

# Where the repositories of these pictures live: their paths are on screen (file names,
# restore commands), so not under a tmp_path that differs from run to run.
FIXED_DIR = Path("/tmp/ovmtui-test-snapshots")
FIXED_LOCK = Path("/tmp/ovmtui-test-snapshots.lock")
THIS_ID = "5eed0000-0000-4000-8000-000000000001"
OTHER_ID = "07be0000-0000-4000-8000-000000000002"

Run = Callable[[Pilot[Any]], Awaitable[None]]


@pytest.fixture(autouse=True)
def fixed_time_zone(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


@pytest.fixture(autouse=True)
def no_notices(monkeypatch: pytest.MonkeyPatch) -> None:
    """Notices come and go on their own timers (and are drawn on the screen under a
    dialog too): none in these pictures. Their text and placement have tests of their own."""
    monkeypatch.setattr(OvmApp, "notify", lambda *_args, **_kwargs: None)


@pytest.fixture
def place() -> Iterator[Path]:
    """An empty FIXED_DIR for this test's repositories, this test's alone: the directory is
    machine-wide, and a test run in another checkout at the same time would empty or fill it
    under this one (a lock beside it, held for the test)."""
    with FIXED_LOCK.open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        shutil.rmtree(FIXED_DIR, ignore_errors=True)
        FIXED_DIR.mkdir(parents=True)
        yield FIXED_DIR


@pytest.fixture
def fixed_action_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    """The action service stamps each result with time.time(): the action log shows it."""
    monkeypatch.setattr(actions, "time", types.SimpleNamespace(time=lambda: FIXED_NOW + 754))


async def open_with_identity(path: Path, identity: str) -> Repository:
    """A repository at ``path`` whose identity is ``identity`` (a new one gets a random one)."""
    repo = await Repository.open(path)
    await repo.close()
    db = sqlite3.connect(path)
    with db:
        db.execute("UPDATE meta SET value = ? WHERE key = 'repository_id'", (identity,))
    db.close()
    return await Repository.open(path)


def ghost(n: int, name: str, state: VmState = VmState.RUNNING) -> Vm:
    return Vm(f"6f1c0000-0000-4000-8000-0000000000{n:02d}", name, state)


async def record_ghosts(path: Path) -> None:
    """An earlier run saw these VMs on ovs01; no host reports them now: drift."""
    async with await open_with_identity(path, THIS_ID) as repo:
        vms = (ghost(1, "ghost01", VmState.SHUTTING_DOWN), ghost(2, "ghost02"))
        host = HostStatus("prod", "ovs01", "test:///x", vms=vms, taken_at=5.0, reachable=True)
        await repo.save_snapshot(EstateSnapshot((host,), generation=1, taken_at=5.0))


async def record_journal(path: Path) -> None:
    async with await open_with_identity(path, THIS_ID) as repo:
        done = (
            ("ovs01", "kafka01", "pause", True, None),
            ("ovs02", "db01", "force-off", False, "domain is not running"),
            ("ovs01", "web01", "reboot", True, None),
        )
        at = FIXED_NOW + 60
        for n, (host, vm, operation, ok, detail) in enumerate(done):
            started = await repo.journal_started(
                user="operator",
                pool="prod",
                host=host,
                vm=vm,
                uuid=f"00000000-0000-4000-8000-0000000000{n:02d}",
                operation=operation,
                command=f"virsh -c test:///demo/{host}.xml {operation} {vm}",
                at=at + 60 * n,
            )
            await repo.journal_finished(started, ok=ok, detail=detail, at=at + 60 * n + 2)
        await repo.journal_started(
            user="operator",
            pool="prod",
            host="ovs02",
            vm="kafka02",
            uuid="00000000-0000-4000-8000-000000000009",
            operation="shutdown",
            command="virsh -c test:///demo/ovs02.xml shutdown kafka02",
            at=at + 600,
        )


async def record_backups(path: Path) -> None:
    """Two backups of this repository and one of another kept in the same folder."""
    host = HostStatus("prod", "ovs01", "test:///x", vms=(ghost(3, "old01"),), taken_at=5.0)
    async with await open_with_identity(path, THIS_ID) as repo:
        await repo.save_snapshot(EstateSnapshot((host,), generation=1, taken_at=5.0))
        for n in range(2):
            await create_backup(repo, path.parent / "backups", clock=lambda n=n: FIXED_NOW + n)
    other = path.parent / "other" / "repository.sqlite"
    other.parent.mkdir()
    async with await open_with_identity(other, OTHER_ID) as repo:
        lab = HostStatus("lab", "lab01", "test:///y", taken_at=5.0, reachable=True)
        await repo.save_snapshot(EstateSnapshot((lab,), generation=1, taken_at=5.0))
        await create_backup(repo, path.parent / "backups", clock=lambda: FIXED_NOW - 3600)


def settled(*keys: str, until: Callable[[Any], bool] | None = None, then: Run | None = None) -> Run:
    """Run: the estate loaded, ``keys`` pressed, ``until`` the app is so, ``then``; notices
    the dialog's focus settled before the picture."""

    async def run_before(pilot: Pilot[Any]) -> None:
        app: Any = pilot.app
        await loaded(pilot, app)
        await pilot.press(*keys)
        if until is not None:
            await wait_until(pilot, lambda: until(app), what="the screen to show")
        if then is not None:
            await then(pilot)
        if isinstance(app.screen, ConfirmDialog):
            # The dialog focuses Cancel once mounted: wait for it, or the picture races it.
            await wait_until(pilot, lambda: app.focused is not None and app.focused.id == "cancel")
        await pilot.pause(0.1)

    return run_before


def rows_at_least(screen: type, count: int) -> Callable[[Any], bool]:
    def ready(app: Any) -> bool:
        if not isinstance(app.screen, screen):
            return False
        return bool(app.screen.table.row_count >= count)

    return ready


def dialog(app: Any) -> bool:
    return isinstance(app.screen, ConfirmDialog)


# -- the list screens -----------------------------------------------------------------------


@pytest.mark.parametrize("size", SIZES)
def test_journal(snap_compare: Any, place: Path, size: tuple[int, int]) -> None:
    path = place / "repository.sqlite"
    asyncio.run(record_journal(path))
    app = make_app(repository=path, interval_s=3600.0)
    run = settled("j", until=rows_at_least(JournalScreen, 4))
    assert snap_compare(app, terminal_size=size, run_before=run)


@pytest.mark.parametrize("size", SIZES)
def test_journal_filtered(snap_compare: Any, place: Path, size: tuple[int, int]) -> None:
    path = place / "repository.sqlite"
    asyncio.run(record_journal(path))
    app = make_app(repository=path, interval_s=3600.0)

    async def filtered(pilot: Pilot[Any]) -> None:
        await pilot.press("slash", *"kafka", "enter")
        await wait_until(pilot, lambda: pilot.app.screen.table.row_count == 2)

    run = settled("j", until=rows_at_least(JournalScreen, 4), then=filtered)
    assert snap_compare(app, terminal_size=size, run_before=run)


@pytest.mark.parametrize("size", SIZES)
def test_journal_without_repository(snap_compare: Any, size: tuple[int, int]) -> None:
    async def said(pilot: Pilot[Any]) -> None:
        title = pilot.app.screen.query_one("#journal-title")
        await wait_until(pilot, lambda: "no repository" in str(title.render()))

    run = settled("j", until=lambda app: isinstance(app.screen, JournalScreen), then=said)
    assert snap_compare(make_app(interval_s=3600.0), terminal_size=size, run_before=run)


@pytest.mark.parametrize("size", SIZES)
def test_drift(snap_compare: Any, place: Path, size: tuple[int, int]) -> None:
    path = place / "repository.sqlite"
    asyncio.run(record_ghosts(path))
    app = make_app(repository=path, interval_s=3600.0)
    run = settled(
        until=lambda app: len(app.drifted) == 2,
        then=lambda pilot: _open(pilot, "D", rows_at_least(DriftScreen, 2)),
    )
    assert snap_compare(app, terminal_size=size, run_before=run)


@pytest.mark.parametrize("size", SIZES)
def test_drift_none(snap_compare: Any, size: tuple[int, int]) -> None:
    run = settled("D", until=lambda app: isinstance(app.screen, DriftScreen))
    assert snap_compare(make_app(interval_s=3600.0), terminal_size=size, run_before=run)


@pytest.mark.parametrize("size", SIZES)
def test_backups(snap_compare: Any, place: Path, size: tuple[int, int]) -> None:
    path = place / "repository.sqlite"
    asyncio.run(record_backups(path))
    app = make_app(repository=path, interval_s=3600.0)
    run = settled("b", until=rows_at_least(BackupsScreen, 3))
    assert snap_compare(app, terminal_size=size, run_before=run)


@pytest.mark.parametrize("size", SIZES)
def test_action_log(snap_compare: Any, fixed_action_clock: None, size: tuple[int, int]) -> None:
    async def two_actions(pilot: Pilot[Any]) -> None:
        app: Any = pilot.app
        await pilot.press("slash", *"kafka01", "enter", "p")
        await wait_until(pilot, lambda: len(app.action_log) == 1)
        await pilot.press("escape", "slash", *"kafka02", "enter", "x")
        await wait_until(pilot, lambda: len(app.action_log) == 2)
        await _open(pilot, "escape", "l", rows_at_least(ActionLogScreen, 2))

    run = settled(then=two_actions)
    assert snap_compare(make_app(interval_s=3600.0), terminal_size=size, run_before=run)


@pytest.mark.parametrize("size", SIZES)
def test_key_panel(snap_compare: Any, size: tuple[int, int]) -> None:
    async def shown(pilot: Pilot[Any]) -> None:
        await wait_until(pilot, lambda: bool(pilot.app.screen.query("HelpPanel")))

    run = settled("question_mark", then=shown)
    assert snap_compare(make_app(interval_s=3600.0), terminal_size=size, run_before=run)


# -- a VM's own screen ---------------------------------------------------------------------

ERP01 = "0004fb00-0006-0000-b8f4-81766bcaf896"  # app-erp01 of the demo estate


async def record_vm_journal(path: Path) -> None:
    """Two actions on app-erp01 (one failed) and one on another VM, which is not listed."""
    async with await open_with_identity(path, THIS_ID) as repo:
        done = (
            ("app-erp01", ERP01, "reboot", True, None),
            ("web01", "00000000-0000-4000-8000-000000000001", "pause", True, None),
            ("app-erp01", ERP01, "shutdown", False, "guest did not answer ACPI"),
        )
        at = FIXED_NOW + 60
        for n, (vm, uuid, operation, ok, detail) in enumerate(done):
            started = await repo.journal_started(
                user="operator",
                pool="prod",
                host="ovs01",
                vm=vm,
                uuid=uuid,
                operation=operation,
                command=f"virsh -c test:///demo/ovs01.xml {operation} {vm}",
                at=at + 60 * n,
            )
            await repo.journal_finished(started, ok=ok, detail=detail, at=at + 60 * n + 2)


def vm_screen_of(name: str, tab: str, until: Callable[[Any], bool]) -> Run:
    """The dashboard loaded, ``name`` opened with enter, ``tab``'s key pressed, ``until``."""

    async def opened(pilot: Pilot[Any]) -> None:
        await _open(pilot, "slash", *name, "enter", "home", "enter", _vm_screen)
        screen = pilot.app.screen
        await wait_until(pilot, lambda: screen.definition.display, what="the definition")
        await _open(pilot, tab, until)

    return settled(then=opened)


def _vm_screen(app: Any) -> bool:
    return isinstance(app.screen, VmScreen)


@pytest.mark.parametrize("size", SIZES)
def test_vm_screen(snap_compare: Any, size: tuple[int, int]) -> None:
    run = vm_screen_of("app-erp01", "o", _vm_screen)
    assert snap_compare(make_app(interval_s=3600.0), terminal_size=size, run_before=run)


@pytest.mark.parametrize("size", SIZES)
def test_vm_screen_definition(snap_compare: Any, size: tuple[int, int]) -> None:
    run = vm_screen_of("app-erp01", "d", _vm_screen)
    assert snap_compare(make_app(interval_s=3600.0), terminal_size=size, run_before=run)


@pytest.mark.parametrize("size", SIZES)
def test_vm_screen_journal(snap_compare: Any, place: Path, size: tuple[int, int]) -> None:
    path = place / "repository.sqlite"
    asyncio.run(record_vm_journal(path))
    app = make_app(repository=path, interval_s=3600.0)
    run = vm_screen_of("app-erp01", "j", lambda app: app.screen.journal.row_count == 2)
    assert snap_compare(app, terminal_size=size, run_before=run)


# -- the dialogs ----------------------------------------------------------------------------


@pytest.mark.parametrize("size", SIZES)
def test_force_off_dialog(snap_compare: Any, size: tuple[int, int]) -> None:
    run = settled("slash", *"db01", "enter", "home", "K", until=dialog)
    assert snap_compare(make_app(interval_s=3600.0), terminal_size=size, run_before=run)


@pytest.mark.parametrize("size", SIZES)
def test_bulk_dialog(snap_compare: Any, size: tuple[int, int]) -> None:
    keys = ("slash", *"kafka", "enter", "asterisk", "x")
    run = settled(*keys, until=dialog)
    assert snap_compare(make_app(interval_s=3600.0), terminal_size=size, run_before=run)


@pytest.mark.parametrize("size", SIZES)
def test_reconcile_dialog(snap_compare: Any, place: Path, size: tuple[int, int]) -> None:
    path = place / "repository.sqlite"
    asyncio.run(record_ghosts(path))
    app = make_app(repository=path, interval_s=3600.0)

    async def asked(pilot: Pilot[Any]) -> None:
        await _open(pilot, "D", rows_at_least(DriftScreen, 2))
        await _open(pilot, "R", dialog)

    run = settled(until=lambda app: len(app.drifted) == 2, then=asked)
    assert snap_compare(app, terminal_size=size, run_before=run)


@pytest.mark.parametrize("size", SIZES)
def test_foreign_backup_dialog(snap_compare: Any, place: Path, size: tuple[int, int]) -> None:
    path = place / "repository.sqlite"
    asyncio.run(record_backups(path))
    app = make_app(repository=path, interval_s=3600.0)
    # The other repository's backup is the oldest: the last row.
    run = settled("b", until=rows_at_least(BackupsScreen, 3), then=_restore_last)
    assert snap_compare(app, terminal_size=size, run_before=run)


async def _restore_last(pilot: Pilot[Any]) -> None:
    await _open(pilot, "down", "down", "R", dialog)


@pytest.mark.parametrize("size", SIZES)
def test_restore_dialog(snap_compare: Any, place: Path, size: tuple[int, int]) -> None:
    path = place / "repository.sqlite"
    asyncio.run(record_backups(path))
    app = make_app(repository=path, interval_s=3600.0)

    async def asked(pilot: Pilot[Any]) -> None:
        # The question says when the live repository last changed (its file's time): once
        # the first poll is stored, that time is set, then nothing writes until the answer.
        await wait_until(pilot, lambda: stored_vms(path) == 64, what="the poll stored")
        os.utime(path, (FIXED_NOW + 3600, FIXED_NOW + 3600))
        await _open(pilot, "R", dialog)

    run = settled("b", until=rows_at_least(BackupsScreen, 3), then=asked)
    assert snap_compare(app, terminal_size=size, run_before=run)


def stored_vms(path: Path) -> int:
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return int(db.execute("SELECT count(*) FROM vm_state").fetchone()[0])
    finally:
        db.close()


async def _open(pilot: Pilot[Any], *keys_then: Any) -> None:
    """Press the keys, then wait for the last argument (a predicate on the app) to hold."""
    *keys, until = keys_then
    app: Any = pilot.app
    await pilot.press(*keys)
    await wait_until(pilot, lambda: until(app), what=f"after {keys}")
