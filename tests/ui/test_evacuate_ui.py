"""Evacuating a host from the tree: `E` on a host shows the whole plan (a VM that fits
nowhere named with why), `y` asks and then moves the others one at a time, a summary ends
it; escape during the moves aborts the one in flight and starts no other."""

from __future__ import annotations

from textual.widgets import DataTable

from ovmtui.config import EstateConfig, HostConfig, PoolConfig
from ovmtui.model import Vm, VmState
from ovmtui.screens.dialogs import ConfirmDialog
from ovmtui.screens.evacuate import EvacuateScreen
from tests.services.test_migration import POOL, MigratingBackend
from tests.ui.conftest import SIZE, make_app, table, wait_until

VMS = [
    Vm(uuid="u-a", name="app01", state=VmState.RUNNING, memory_mib=1024),
    Vm(uuid="u-b", name="big01", state=VmState.RUNNING, memory_mib=60000),  # fits nowhere
    Vm(uuid="u-c", name="cache01", state=VmState.RUNNING, memory_mib=2048),
]


def estate_and_hosts() -> tuple[EstateConfig, list[MigratingBackend]]:
    h1, h2 = MigratingBackend("h1", list(VMS)), MigratingBackend("h2", free_mib=16384)
    h1.paths = h2.paths = {f"/OVS/running_pool/{vm.name}/System.img" for vm in VMS}
    hosts = tuple(HostConfig(POOL, b.host.name, libvirt="test:///default") for b in (h1, h2))
    return EstateConfig((PoolConfig(POOL, hosts, "/OVS"),), "test"), [h1, h2]


def states(screen: EvacuateScreen) -> dict[str, str]:
    rows = screen.query_one(DataTable)
    return {str(rows.get_row_at(i)[0]): str(rows.get_row_at(i)[3]) for i in range(rows.row_count)}


async def open_evacuation(pilot: object, app: object) -> EvacuateScreen:
    await wait_until(pilot, lambda: table(app).row_count == 3)  # type: ignore[arg-type]
    await pilot.press("t", "down", "down", "E")  # type: ignore[attr-defined]  # tree: h1
    await wait_until(pilot, lambda: isinstance(app.screen, EvacuateScreen))  # type: ignore[arg-type, attr-defined]
    screen = app.screen  # type: ignore[attr-defined]
    assert isinstance(screen, EvacuateScreen)
    await wait_until(pilot, lambda: screen.plan is not None, what="the plan")  # type: ignore[arg-type]
    return screen


async def test_the_plan_then_the_moves_then_a_summary() -> None:
    estate, (h1, h2) = estate_and_hosts()
    app = make_app(estate, backends=[h1, h2], interval_s=0.5)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_evacuation(pilot, app)
        assert screen.host.name == "h1"
        planned = states(screen)
        assert planned["app01"] == "to move" and planned["cache01"] == "to move"
        assert planned["big01"].startswith("stays: h2: memory")
        await pilot.press("y")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmDialog))
        await pilot.press("y")
        await wait_until(pilot, lambda: screen.summary is not None, what="the summary")
        assert screen.summary == "evacuated 2 of 3 VM(s) from h1; 0 failed"
        assert set(h2.vms) == {"u-a", "u-c"} and set(h1.vms) == {"u-b"}
        assert states(screen)["app01"].startswith("moved in")


async def test_escape_aborts_the_move_in_flight_and_starts_no_other() -> None:
    estate, (h1, h2) = estate_and_hosts()
    h1.release.clear()
    app = make_app(estate, backends=[h1, h2], interval_s=0.5)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_evacuation(pilot, app)
        await pilot.press("y")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmDialog))
        await pilot.press("y")
        await wait_until(pilot, lambda: bool(app.session.migrations.moving))
        await pilot.press("escape")
        await wait_until(pilot, lambda: screen.summary is not None, what="the summary")
        assert screen.summary is not None and screen.summary.endswith("cancelled")
        assert len(h1.aborted) == 1 and not h2.vms
        assert "not started (cancelled)" in states(screen).values()
