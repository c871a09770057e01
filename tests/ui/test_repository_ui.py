"""The dashboard with a real repository: last-known state at start-up, actions journaled."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from ovmtui.config import EstateConfig, HostConfig, PoolConfig
from ovmtui.model import HostKey, VmState
from tests.ui.conftest import SIZE, fixed_demo_estate, make_app, state_of, table, wait_until


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ovmtui", *args], capture_output=True, text=True, timeout=60
    )


def one_host_estate(uri: str) -> EstateConfig:
    host = fixed_demo_estate().pools[0].hosts[0]
    return EstateConfig((PoolConfig("prod", (HostConfig("prod", host.name, libvirt=uri),)),), "t")


async def test_last_known_state_shown_stale_when_the_host_is_gone(tmp_path: Path) -> None:
    repo = tmp_path / "repository.sqlite"
    good_uri = fixed_demo_estate().pools[0].hosts[0].address
    app = make_app(one_host_estate(good_uri), repository=repo)
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: table(app).row_count == 13, what="first poll")
    # Later, from a jump host that cannot reach it: same host, now unreachable.
    app = make_app(one_host_estate("qemu+tcp://127.0.0.1:1/system"), repository=repo)
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: table(app).row_count == 13, what="last-known VMs")
        await wait_until(
            pilot,
            lambda: app.snapshot.host(HostKey("prod", "ovs01")).reachable is False,  # type: ignore[union-attr]
            what="the poll to fail",
        )
        host = app.snapshot.host(HostKey("prod", "ovs01"))
        assert host is not None and host.stale and host.taken_at is not None
        assert state_of(app, "web01") is VmState.RUNNING  # what was last seen
        notes = " ".join(n.message for n in app._notifications)
        assert "address" in notes  # the estate file and the repository disagree: said


async def test_actions_are_journaled_and_the_chain_verifies(tmp_path: Path) -> None:
    repo = tmp_path / "repository.sqlite"
    app = make_app(repository=repo)
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: table(app).row_count == 64)
        await pilot.press("slash", *"kafka01", "enter", "p")
        await wait_until(pilot, lambda: state_of(app, "kafka01") is VmState.PAUSED)
        await wait_until(pilot, lambda: len(app.action_log) == 1)
    proc = run_cli("audit", "--repository", str(repo), "--json")
    assert proc.returncode == 0, proc.stderr
    entries = json.loads(proc.stdout)
    assert [(e["vm"], e["operation"], e["ok"]) for e in entries] == [("kafka01", "pause", True)]
    assert "suspend kafka01" in entries[0]["command"]
    proc = run_cli("audit", "verify", "--repository", str(repo))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "intact" in proc.stdout


def test_unusable_repository_refused_before_the_ui(tmp_path: Path) -> None:
    bad = tmp_path / "repository.sqlite"
    bad.write_bytes(b"this is not a database\n" * 100)
    before = bad.read_bytes()
    proc = run_cli("--demo", "--repository", str(bad))
    assert proc.returncode == 2
    assert str(bad) in proc.stderr
    assert bad.read_bytes() == before


async def test_journal_screen_lists_and_filters_actions(tmp_path: Path) -> None:
    from textual.widgets import DataTable

    from ovmtui.screens.journal import JournalScreen

    app = make_app(repository=tmp_path / "repository.sqlite")
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: table(app).row_count == 64)
        await pilot.press("slash", *"kafka01", "enter", "p")
        await wait_until(pilot, lambda: len(app.action_log) == 1)
        await pilot.press("escape", "slash", *"kafka02", "enter", "x")
        await wait_until(pilot, lambda: len(app.action_log) == 2)
        await pilot.press("escape", "j")
        await wait_until(pilot, lambda: isinstance(app.screen, JournalScreen))
        journal = app.screen.query_one(DataTable)
        await wait_until(pilot, lambda: journal.row_count == 2, what="two journaled actions")
        newest = journal.get_row_at(0)
        assert newest[4] == "kafka02" and newest[5] == "shutdown" and newest[6] == "ok"
        await pilot.press("slash", *"pause")
        await wait_until(pilot, lambda: journal.row_count == 1)
        assert journal.get_row_at(0)[4] == "kafka01"
        await pilot.press("enter", "escape")
        await wait_until(pilot, lambda: not isinstance(app.screen, JournalScreen))


async def test_journal_screen_without_repository_says_so() -> None:
    from textual.widgets import Static

    from ovmtui.screens.journal import JournalScreen

    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: table(app).row_count == 64)
        await pilot.press("j")
        await wait_until(pilot, lambda: isinstance(app.screen, JournalScreen))
        title = app.screen.query_one("#journal-title", Static)
        await wait_until(pilot, lambda: "no repository" in str(title.render()))


async def test_journal_reload_keeps_the_cursor_on_its_record(tmp_path: Path) -> None:
    """A reload lists a new action on top; the cursor stays on the record it was on."""
    from textual.widgets import DataTable

    from ovmtui.model import VmAction
    from ovmtui.screens.journal import JournalScreen

    app = make_app(repository=tmp_path / "repository.sqlite")
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: table(app).row_count == 64)
        await pilot.press("slash", *"kafka01", "enter", "p")
        await wait_until(pilot, lambda: len(app.action_log) == 1)
        await pilot.press("escape", "slash", *"kafka02", "enter", "p")
        await wait_until(pilot, lambda: len(app.action_log) == 2)
        await pilot.press("escape", "j")
        await wait_until(pilot, lambda: isinstance(app.screen, JournalScreen))
        journal = app.screen.query_one(DataTable)
        await wait_until(pilot, lambda: journal.row_count == 2)
        await pilot.press("down")
        assert journal.get_row_at(journal.cursor_row)[4] == "kafka01"
        kafka03 = next(p for p in app.snapshot.placed_vms() if p.vm.name == "kafka03")
        app.start_actions([kafka03], VmAction.PAUSE)
        await wait_until(pilot, lambda: len(app.action_log) == 3)
        await pilot.press("ctrl+r")
        await wait_until(pilot, lambda: journal.row_count == 3, what="the reload")
        assert [journal.get_row_at(i)[4] for i in range(3)] == ["kafka03", "kafka02", "kafka01"]
        assert journal.get_row_at(journal.cursor_row)[4] == "kafka01"
