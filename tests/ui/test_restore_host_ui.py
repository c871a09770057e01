"""The restore screen: `R` on a reinstalled host (or its pool) in the tree, the plan with what is
defined, skipped and refused, `s` to start the VMs that ran, `y` to confirm and restore, the
results as the next poll confirms them. Real libvirt test-driver hosts and a real repository:
a first session records h1 and h2, then the app runs with h2 "reinstalled" (an empty node).
Node files and UUIDs are fixed, and the recording clock too, so the pictures are stable."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot
from textual.widgets import Checkbox, DataTable

from ovmtui.app import OvmApp
from ovmtui.config import EstateConfig, HostConfig, PoolConfig
from ovmtui.model import HostKey, HostRole, VmState
from ovmtui.screens.dialogs import ConfirmDialog
from ovmtui.screens.restore_host import RestoreHostScreen
from ovmtui.services.session import EstateSession
from ovmtui.widgets.estate_tree import EstateTree
from tests.services.test_definitions import DEAD_URI, domain_xml
from tests.ui.conftest import fixed_clock, loaded, make_app, wait_until

SIZES = [pytest.param((80, 24), id="80x24"), pytest.param((200, 50), id="200x50")]
FIXED_DIR = Path("/tmp/ovmtui-test-restore")
U1 = "11111111-1111-4111-8111-111111111111"
U2 = "22222222-2222-4222-8222-222222222222"
U3 = "33333333-3333-4333-8333-333333333333"
U4 = "44444444-4444-4444-8444-444444444444"
H2 = HostKey("p", "h2")


def node(name: str, domains: list[tuple[str, str, bool]]) -> str:
    body = "\n".join(domain_xml(n, u, running=r) for n, u, r in domains)
    path = FIXED_DIR / name
    path.write_text(
        "<node><cpu><mhz>2400</mhz><model>x86_64</model><nodes>1</nodes><sockets>1</sockets>"
        f"<cores>4</cores><threads>1</threads></cpu><memory>16777216</memory>{body}</node>",
        encoding="utf-8",
    )
    return f"test://{path}"


def estate(h1: str, h2: str) -> EstateConfig:
    hosts = (
        HostConfig("p", "h1", libvirt=h1, roles=(HostRole.MASTER, HostRole.VM)),
        HostConfig("p", "h2", libvirt=h2, roles=(HostRole.VM,)),
    )
    return EstateConfig((PoolConfig("p", hosts),), "test")


@pytest.fixture
def repository(tmp_path: Path) -> Path:
    """h1 runs vm1; h2 had vm2 (shut off), vm3 and vm4 (running). Recorded, then h2 is
    reinstalled (empty) and h1 defines vm3 now (shut off)."""
    FIXED_DIR.mkdir(exist_ok=True)
    path = tmp_path / "repo.sqlite"
    before = estate(
        node("h1.xml", [("vm1", U1, True)]),
        node("h2.xml", [("vm2", U2, False), ("vm3", U3, True), ("vm4", U4, True)]),
    )

    async def record() -> None:
        async with EstateSession(before, repository=path, clock=fixed_clock) as session:
            await session.poll_once()

    asyncio.run(record())
    return path


def reinstalled_app(repository: Path, *, h2: str | None = None, **kw: Any) -> OvmApp:
    after = estate(
        node("h1-now.xml", [("vm1", U1, True), ("vm3", U3, False)]),
        h2 or node("h2-empty.xml", []),
    )
    return make_app(after, repository=repository, interval_s=3600.0, **kw)


async def open_restore(pilot: Pilot[Any], line: str = "h2") -> RestoreHostScreen:
    app = pilot.app
    assert isinstance(app, OvmApp)
    await loaded(pilot, app)
    await pilot.press("t")
    tree = app.screen.query_one(EstateTree)

    def at_line() -> bool:
        scope = tree._cursor.scope
        if line == "pool":
            return scope.pool is not None and scope.host is None
        return scope.host == line

    for _ in range(8):
        if at_line():
            break
        await pilot.press("down")
    assert at_line()
    await pilot.press("R")
    await wait_until(pilot, lambda: isinstance(app.screen, RestoreHostScreen))
    screen = app.screen
    assert isinstance(screen, RestoreHostScreen)
    await wait_until(pilot, lambda: screen.plans is not None, what="the plan")
    await pilot.pause()
    return screen


def cells(screen: RestoreHostScreen) -> dict[str, list[str]]:
    table = screen.query_one(DataTable)
    rows: dict[str, list[str]] = {}
    for key in table.rows:
        row = [str(cell) for cell in table.get_row(key)]
        rows[row[1]] = row
    return rows


# --------------------------------------------------------------------------- Pilot


async def test_r_on_a_reinstalled_host_shows_what_is_defined_and_refused(repository: Path) -> None:
    app = reinstalled_app(repository)
    async with app.run_test(size=(200, 50)) as pilot:
        screen = await open_restore(pilot)
        rows = cells(screen)
    assert screen.hosts == (H2,)
    assert rows["vm2"][2:4] == ["VM", "define"]
    assert rows["vm3"][3] == "refuse" and "p/h1 defines it now" in rows["vm3"][5]
    assert rows["vm4"][3] == "define" and "--start" in rows["vm4"][5]
    assert "vm1" not in rows


async def test_the_row_under_the_cursor_is_shown_whole(repository: Path) -> None:
    app = reinstalled_app(repository)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_restore(pilot)
        await pilot.press("down")  # vm3, refused
        await pilot.pause()
        text = str(screen.query_one("#restore-detail").render())
    assert "VM vm3 (" + U3 + ") on p/h2: refuse" in text
    assert "undefine it there first" in text


async def test_s_asks_for_the_vms_that_ran_to_be_started(repository: Path) -> None:
    app = reinstalled_app(repository)
    async with app.run_test(size=(200, 50)) as pilot:
        screen = await open_restore(pilot)
        await pilot.press("s")
        assert screen.query_one(Checkbox).value
        await wait_until(pilot, lambda: "started after" in cells(screen)["vm4"][5])
        assert all(p.start for p in screen.plans or ())


async def test_y_confirms_then_restores_and_the_poll_confirms(repository: Path) -> None:
    app = reinstalled_app(repository)
    async with app.run_test(size=(200, 50)) as pilot:
        screen = await open_restore(pilot)
        await pilot.press("s")
        await wait_until(pilot, lambda: "started after" in cells(screen)["vm4"][5])
        await pilot.press("y")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmDialog))
        await pilot.press("y")
        await wait_until(pilot, lambda: screen.summary is not None, what="the restore")
        rows = cells(screen)
        states = {vm.name: vm.state for vm in app.snapshot.host(H2).vms}  # type: ignore[union-attr]
        journal = await app.journal_entries()
    assert rows["vm2"][4] == "defined, confirmed"
    assert rows["vm4"][4] == "defined, confirmed (running)"
    assert rows["vm3"][4] == ""  # refused: never tried
    assert states == {"vm2": VmState.SHUTOFF, "vm4": VmState.RUNNING}
    assert [(e.vm, e.ok) for e in journal if e.operation == "restore-definition"] == [
        ("vm2", True),
        ("vm4", True),
    ]
    assert screen.summary == "defined 2 of 2; 2 confirmed by the next poll"


async def test_cancel_in_the_dialog_defines_nothing(repository: Path) -> None:
    app = reinstalled_app(repository)
    async with app.run_test(size=(200, 50)) as pilot:
        screen = await open_restore(pilot)
        await pilot.press("y")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmDialog))
        await pilot.press("n")
        await wait_until(pilot, lambda: app.screen is screen)
        await pilot.press("escape")
        await wait_until(pilot, lambda: not isinstance(app.screen, RestoreHostScreen))
        assert app.snapshot.host(H2).vms == ()  # type: ignore[union-attr]


async def test_r_on_the_pool_takes_the_master_first(repository: Path) -> None:
    app = reinstalled_app(repository)
    async with app.run_test(size=(200, 50)) as pilot:
        screen = await open_restore(pilot, "pool")
        rows = [[str(c) for c in screen.query_one(DataTable).get_row_at(i)] for i in range(5)]
    assert screen.hosts == (HostKey("p", "h1"), H2)
    # h1 (the master) first: it defines vm1 and vm3 already; then h2's three.
    assert [r[:4] for r in rows[:2]] == [["h1", "vm1", "VM", "skip"], ["h1", "vm3", "VM", "skip"]]
    assert [(r[0], r[1]) for r in rows[2:]] == [("h2", "vm2"), ("h2", "vm3"), ("h2", "vm4")]


async def test_read_only_offers_no_restore(repository: Path) -> None:
    app = reinstalled_app(repository, read_only=True)
    async with app.run_test(size=(200, 50)) as pilot:
        screen = await open_restore(pilot)
        await pilot.press("y")
        await pilot.pause()
        assert not isinstance(app.screen, ConfirmDialog) and screen.summary is None
        assert app.snapshot.host(H2).vms == ()  # type: ignore[union-attr]


async def test_an_unreachable_host_says_why_and_offers_nothing(repository: Path) -> None:
    app = reinstalled_app(repository, h2=DEAD_URI)
    async with app.run_test(size=(200, 50)) as pilot:
        await loaded(pilot, app, hosts=2)
        app.screen_stack[0].restore("p", H2)  # type: ignore[attr-defined]
        await wait_until(pilot, lambda: isinstance(app.screen, RestoreHostScreen))
        screen = app.screen
        assert isinstance(screen, RestoreHostScreen)
        await wait_until(pilot, lambda: screen.plans is not None)
        rows = cells(screen)
    assert rows["h2"][2:4] == ["host", "refused"] and "unreachable" in rows["h2"][5]


# --------------------------------------------------------------------------- snapshots


@pytest.fixture
def no_notices(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(OvmApp, "notify", lambda *_args, **_kwargs: None)


@pytest.mark.parametrize("size", SIZES)
def test_restore_plan_snapshot(
    snap_compare: Any, size: tuple[int, int], repository: Path, no_notices: None
) -> None:
    async def run(pilot: Pilot[Any]) -> None:
        await open_restore(pilot)

    assert snap_compare(reinstalled_app(repository), terminal_size=size, run_before=run)


@pytest.mark.parametrize("size", SIZES)
def test_restore_results_snapshot(
    snap_compare: Any, size: tuple[int, int], repository: Path, no_notices: None
) -> None:
    async def run(pilot: Pilot[Any]) -> None:
        screen = await open_restore(pilot)
        await pilot.press("s")
        await wait_until(pilot, lambda: "started after" in cells(screen)["vm4"][5])
        await pilot.press("y")
        await wait_until(pilot, lambda: isinstance(pilot.app.screen, ConfirmDialog))
        await pilot.press("y")
        await wait_until(pilot, lambda: screen.summary is not None)
        await pilot.pause()

    assert snap_compare(reinstalled_app(repository), terminal_size=size, run_before=run)
