"""A repository that cannot be written: read-only mode, saying why, and nothing runs."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from textual.widgets._footer import FooterKey

from ovmtui.app import OvmApp
from ovmtui.errors import RepositoryError
from ovmtui.headless import poll_estate_once
from ovmtui.model import VmAction, VmState
from ovmtui.store.repository import Repository
from tests.ui.conftest import SIZE, fixed_demo_estate, make_app, state_of, table, wait_until
from tests.ui.test_repository_ui import one_host_estate

UNREACHABLE = "qemu+tcp://127.0.0.1:1/system"  # nothing listens: refused at once
WHY = "repository.sqlite: attempt to write a readonly database"


async def recorded(tmp_path: Path) -> Path:
    """A repository holding one poll of the first demo host (13 VMs, web01 running)."""
    repo = tmp_path / "repository.sqlite"
    await poll_estate_once(one_host_estate(fixed_demo_estate().pools[0].hosts[0].address), repo)
    return repo


def aiosqlite_threads() -> list[threading.Thread]:
    """Connections left open. aiosqlite's worker thread is no daemon: one left keeps the
    process from exiting. A closed one's thread ends a moment after close() returns."""
    deadline = time.monotonic() + 2
    while True:
        left = [t for t in threading.enumerate() if "_connection_worker_thread" in t.name]
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.02)


def footer_keys(app: OvmApp) -> list[str]:
    return [key.description for key in app.screen.query(FooterKey)]


def notices(app: OvmApp) -> str:
    return "\n".join(f"{n.title}: {n.message}" for n in app._notifications)


async def journal_of(path: Path) -> list[object]:
    repo = await Repository.open(path, read_only=True)
    try:
        return list(await repo.journal_entries())
    finally:
        await repo.close()


async def test_unwritable_repository_runs_read_only_saying_why(tmp_path: Path) -> None:
    path = await recorded(tmp_path)
    before = path.read_bytes()
    # The host cannot be reached now: what shows comes from the repository.
    app = make_app(one_host_estate(UNREACHABLE), repository=path, read_only_reason=WHY)
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: table(app).row_count == 13, what="last-known VMs")
        assert app.read_only
        assert "READ-ONLY" in str(app.screen.query_one("EstateHeader").render())
        assert "cannot be written" in notices(app) and WHY in notices(app)
        await wait_until(pilot, lambda: "Quit" in footer_keys(app), what="the footer")
        assert "Pause" not in footer_keys(app) and "Force off" not in footer_keys(app)
        await pilot.press("slash", *"web01", "enter", "p")
        await pilot.pause(0.3)
        web01 = next(p for p in app.snapshot.placed_vms() if p.vm.name == "web01")
        result = await app.actions.run(web01, VmAction.PAUSE)
        assert not result.ok
        assert state_of(app, "web01") is VmState.RUNNING
    assert path.read_bytes() == before  # nothing written, not even last-known state
    assert await journal_of(path) == []
    assert aiosqlite_threads() == []


async def test_repository_failing_its_first_write_goes_read_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Writable when checked before start-up, then not (chmod, a full disk, a lock)."""
    path = await recorded(tmp_path)

    async def refuse(self: Repository, estate: object) -> list[str]:
        raise RepositoryError(WHY)

    monkeypatch.setattr(Repository, "import_estate", refuse)
    app = make_app(fixed_demo_estate(), repository=path)
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: table(app).row_count == 64, what="the first poll")
        await wait_until(pilot, lambda: WHY in notices(app), what="the reason")
        assert app.read_only
        await wait_until(pilot, lambda: "Pause" not in footer_keys(app), what="no action keys")
        await wait_until(
            pilot,
            lambda: "READ-ONLY" in str(app.screen.query_one("EstateHeader").render()),
            what="the header saying READ-ONLY",
        )
        await pilot.press("slash", *"kafka01", "enter", "p")
        await pilot.pause(0.3)
        kafka01 = next(p for p in app.snapshot.placed_vms() if p.vm.name == "kafka01")
        result = await app.actions.run(kafka01, VmAction.PAUSE)
        assert not result.ok and "read-only" in (result.error or "")
        await pilot.pause(0.3)
        assert state_of(app, "kafka01") is VmState.RUNNING  # nothing ran, unjournaled or not
    assert await journal_of(path) == []
    assert aiosqlite_threads() == []  # every connection closed: quitting ends the process
