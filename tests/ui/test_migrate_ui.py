"""The migrate screen: verdicts with their checks, a go target moved to after asking, a no-go
target only with the VM's name and a reason, a move cancelled with escape."""

from __future__ import annotations

from textual.widgets import DataTable, Input

from ovmtui.config import EstateConfig, HostConfig, PoolConfig
from ovmtui.model import Vm, VmAction, VmState
from ovmtui.screens.dashboard import DashboardScreen
from ovmtui.screens.dialogs import ConfirmDialog
from ovmtui.screens.migrate import MigrateScreen, OverrideDialog
from tests.services.test_migration import POOL, MigratingBackend
from tests.ui.conftest import SIZE, make_app, table, wait_until

WEB = Vm(uuid="u-web", name="web01", state=VmState.RUNNING, memory_mib=2048)


def estate_and_hosts() -> tuple[EstateConfig, list[MigratingBackend]]:
    h1 = MigratingBackend("h1", [WEB])
    h2 = MigratingBackend("h2", free_mib=8192)
    h3 = MigratingBackend("h3", free_mib=1024)  # too little memory: no go
    h2.paths = h3.paths = h1.paths
    hosts = tuple(HostConfig(POOL, b.host.name, libvirt="test:///default") for b in (h1, h2, h3))
    return EstateConfig((PoolConfig(POOL, hosts, "/OVS"),), "test"), [h1, h2, h3]


def host_of(app: object, uuid: str) -> str | None:
    placed = app.snapshot.find_vm(uuid)  # type: ignore[attr-defined]
    return None if placed is None else str(placed.host)


async def test_a_go_target_is_asked_about_then_moved_to() -> None:
    estate, backends = estate_and_hosts()
    app = make_app(estate, backends=backends, interval_s=0.5)
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: table(app).row_count == 1)
        await pilot.press("m")
        await wait_until(pilot, lambda: isinstance(app.screen, MigrateScreen))
        screen = app.screen
        assert isinstance(screen, MigrateScreen)
        await wait_until(pilot, lambda: screen.plan is not None, what="the plan")
        rows = screen.query_one(DataTable)
        assert [rows.get_row_at(i)[:2] for i in range(rows.row_count)] == [
            ["h2", "GO"],
            ["h3", "NO GO"],
        ]
        await pilot.press("enter")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmDialog))
        await pilot.press("y")
        await wait_until(pilot, lambda: screen.outcome is not None, what="the move")
        assert screen.outcome is not None and screen.outcome.ok
        await wait_until(pilot, lambda: host_of(app, "u-web") == "h2", what="web01 on h2")
        await pilot.press("escape")
        assert isinstance(app.screen, DashboardScreen)


async def test_a_no_go_target_needs_the_name_and_a_reason() -> None:
    estate, backends = estate_and_hosts()
    app = make_app(estate, backends=backends, interval_s=0.5)
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: table(app).row_count == 1)
        await pilot.press("m")
        await wait_until(pilot, lambda: isinstance(app.screen, MigrateScreen))
        screen = app.screen
        assert isinstance(screen, MigrateScreen)
        await wait_until(pilot, lambda: screen.plan is not None)
        await pilot.press("down", "enter")
        await wait_until(pilot, lambda: isinstance(app.screen, OverrideDialog))
        dialog = app.screen
        dialog.query_one("#override-name", Input).value = "web0"  # a typo: refused
        dialog.query_one("#override-why", Input).value = "ticket 4711"
        await pilot.press("enter")
        assert isinstance(app.screen, OverrideDialog)
        dialog.query_one("#override-name", Input).value = "web01"
        await pilot.press("enter")
        await wait_until(pilot, lambda: screen.outcome is not None, what="the move")
        assert screen.outcome is not None and screen.outcome.ok
        assert app.session.actions.journal is not None
        started = app.session.actions.journal.records[0]  # type: ignore[attr-defined]
        assert "OVERRIDE (ticket 4711)" in started[7] and "memory" in started[7]


async def test_escape_cancels_a_move_under_way() -> None:
    estate, backends = estate_and_hosts()
    backends[0].release.clear()  # the move runs until cancelled
    app = make_app(estate, backends=backends, interval_s=0.5)
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: table(app).row_count == 1)
        await pilot.press("m")
        await wait_until(pilot, lambda: isinstance(app.screen, MigrateScreen))
        screen = app.screen
        assert isinstance(screen, MigrateScreen)
        await wait_until(pilot, lambda: screen.plan is not None)
        await pilot.press("enter")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmDialog))
        await pilot.press("y")
        await wait_until(pilot, lambda: "u-web" in app.session.migrations.moving)
        # Under way: the dashboard names it with both hosts, and offers no other action.
        header = app.screen_stack[0].header  # type: ignore[attr-defined]
        await wait_until(
            pilot, lambda: "migrating: web01 h1→h2" in str(header.render_line_content())
        )
        placed = app.snapshot.find_vm("u-web")
        assert placed is not None
        # The VM's row says so too, on the dashboard under the migrate screen.
        vm_table = table(app)
        assert "migrating" in vm_table.render_line(1).text
        assert app.screen_stack[0].vm_refusal(placed, VmAction.PAUSE) == "migrating to h2"  # type: ignore[attr-defined]
        await pilot.press("escape")
        await wait_until(pilot, lambda: screen.outcome is not None, what="the cancel")
        assert screen.outcome is not None and screen.outcome.cancelled
        assert backends[0].aborted == ["web01"]
        assert host_of(app, "u-web") == "h1"
        assert "migrating" not in str(header.render_line_content())
        assert "migrating" not in vm_table.render_line(1).text
