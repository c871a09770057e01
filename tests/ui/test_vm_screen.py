"""A VM's own screen: opened by enter (or the palette), its facts follow each refresh, its
keys are the dashboard's (same dimming, questions and commands), escape goes back; on
libvirt's test driver and on the fake Xen dom0 of tests/sshfake."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from textual.widgets import DataTable, Static, TabbedContent, TextArea

from ovmtui.app import OvmApp
from ovmtui.config import EstateConfig, HostConfig, PoolConfig
from ovmtui.model import VmState
from ovmtui.screens.dashboard import DashboardScreen
from ovmtui.screens.dialogs import ConfirmDialog
from ovmtui.screens.vm import GONE, VmScreen
from tests.sshfake.fixtures import fake_xen_servers
from tests.sshfake.sshd import FakeXenHost, HostSpec
from tests.sshfake.xenstate import make_domain, render_vm_cfg
from tests.ui.conftest import SIZE, fixed_demo_estate, loaded, make_app, state_of, table, wait_until

__all__ = ["fake_xen_servers"]  # a pytest fixture


def vm_screen(app: OvmApp) -> VmScreen:
    screen = app.screen
    assert isinstance(screen, VmScreen), screen
    return screen


def title(app: OvmApp) -> str:
    return str(vm_screen(app).query_one("#vm-title", Static).render())


def binding(app: OvmApp, key: str) -> Any:
    return app.screen.active_bindings[key]


async def open_vm(pilot: Any, app: OvmApp, name: str) -> VmScreen:
    # The filter may match more (db01 also matches dev-db01): the name sorts first.
    await pilot.press("slash", *name, "enter", "home", "enter")
    await wait_until(pilot, lambda: isinstance(app.screen, VmScreen), what=f"{name}'s screen")
    await pilot.pause()
    return vm_screen(app)


async def test_enter_opens_the_vm_under_the_cursor_and_escape_goes_back() -> None:
    app = make_app(interval_s=3600.0)
    async with app.run_test(size=SIZE) as pilot:
        await loaded(pilot, app)
        # The key is advertised now that it does something.
        enter = binding(app, "enter")
        assert enter.binding.description == "Open" and enter.binding.show and enter.enabled
        screen = await open_vm(pilot, app, "app-erp01")
        assert screen.placed.vm.name == "app-erp01" and not screen.gone
        assert title(app) == "app-erp01: running on prod/ovs01"
        facts = str(screen.query_one("#vm-facts", Static).render())
        assert "0004fb00-0006-0000-b8f4-81766bcaf896" in facts
        assert "16.0 GiB / 16.0 GiB" in facts
        disks = screen.query_one("#vm-disks", DataTable)
        assert [disks.get_row_at(i)[:3] for i in range(disks.row_count)] == [
            ["xvda", "disk", "/OVS/running_pool/app-erp01/System.img"],
            ["xvdb", "disk", "/OVS/running_pool/app-erp01/Data01.img"],
        ]
        # The size as the host measures it (libvirt's blockInfo: the test driver answers
        # 1 TiB for every disk); bus from <target bus=…>; no <driver type=…>: unknown.
        await wait_until(pilot, lambda: disks.get_row_at(0)[3] != "—", what="the sizes")
        # On the pool's shared storage: running_pool lies under /OVS as much as sharedDisk.
        assert disks.get_row_at(0)[3:] == ["1.0 TiB", "—", "xen", "rw", "yes"]
        nics = screen.query_one("#vm-nics", DataTable)
        assert nics.get_row_at(0) == ["00:16:3e:11:05:00", "xenbr0", "netfront"]
        # The definition, as the host holds it, read-only.
        area = screen.query_one("#vm-definition", TextArea)
        await wait_until(pilot, lambda: area.display, what="the definition")
        assert area.read_only and area.text.startswith("<domain type='test'")
        assert "<name>app-erp01</name>" in area.text
        await pilot.press("escape")
        await wait_until(pilot, lambda: isinstance(app.screen, DashboardScreen))
        cursor = table(app).cursor_vm
        assert cursor is not None and cursor.vm.name == "app-erp01"


async def test_a_shared_disk_is_said_to_lie_on_the_pools_shared_storage() -> None:
    # A pool whose shared storage is its shared disks' folder only: the VMs' own disks in
    # running_pool are then local to their host.
    demo = fixed_demo_estate()
    pools = tuple(dataclasses.replace(p, shared_storage="/OVS/sharedDisk") for p in demo.pools)
    app = make_app(dataclasses.replace(demo, pools=pools), interval_s=3600.0)
    async with app.run_test(size=SIZE) as pilot:
        await loaded(pilot, app)
        screen = await open_vm(pilot, app, "db01")  # a RAC node: shared ASM disks
        disks = screen.query_one("#vm-disks", DataTable)
        rows = [disks.get_row_at(i) for i in range(disks.row_count)]
        shared = [row for row in rows if row[2].startswith("/OVS/sharedDisk/")]
        local = [row for row in rows if row[2].startswith("/OVS/running_pool/")]
        assert shared and local
        assert {row[-1] for row in shared} == {"yes"} and {row[-1] for row in local} == {"no"}
        assert any("shareable" in row[6] for row in shared)


async def test_lifecycle_keys_act_on_this_vm_and_its_facts_follow(tmp_path: Path) -> None:
    app = make_app(repository=tmp_path / "r.sqlite", interval_s=3600.0)
    async with app.run_test(size=SIZE) as pilot:
        await loaded(pilot, app)
        screen = await open_vm(pilot, app, "kafka01")
        # Running: start and resume are dimmed with the reason the dashboard gives.
        start = binding(app, "s")
        assert not start.enabled and start.tooltip == "cannot start a VM that is running"
        assert not binding(app, "u").enabled
        # The test driver gives no console: c is dimmed with the host's reason.
        console = binding(app, "c")
        assert not console.enabled and "no consoles" in console.tooltip
        # As on the table: the test driver withholds migration, and says why.
        migrate = binding(app, "m")
        assert not migrate.enabled and migrate.tooltip.startswith("ovs03: ")
        assert "no migration" in migrate.tooltip
        await pilot.press("s")  # dimmed: does nothing
        await pilot.pause(0.2)
        assert state_of(app, "kafka01") is VmState.RUNNING
        await pilot.press("p")  # no question, as on the table
        await wait_until(pilot, lambda: "paused" in title(app), what="the title to follow")
        assert state_of(app, "kafka01") is VmState.PAUSED
        assert binding(app, "u").enabled and not binding(app, "p").enabled
        # The journal tab lists the pause once it is recorded.
        await pilot.press("j")
        assert screen.query_one("#vm-tabs", TabbedContent).active == "vm-journal-tab"
        journal = screen.query_one("#vm-journal", DataTable)
        await wait_until(pilot, lambda: journal.row_count == 1, what="the journal entry")
        assert journal.get_row_at(0)[2:4] == ["pause", "ok"]
        await pilot.press("u")
        await wait_until(pilot, lambda: "running" in title(app))
        await wait_until(pilot, lambda: journal.row_count == 2)


async def test_force_off_asks_first_with_the_command() -> None:
    app = make_app(interval_s=3600.0)
    async with app.run_test(size=SIZE) as pilot:
        await loaded(pilot, app)
        await open_vm(pilot, app, "kafka02")
        await pilot.press("K")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmDialog))
        shown = str(app.screen.query_one("#dialog-commands Static", Static).render())
        assert "destroy kafka02" in shown
        await pilot.press("n")
        await wait_until(pilot, lambda: isinstance(app.screen, VmScreen))
        assert state_of(app, "kafka02") is VmState.RUNNING
        await pilot.press("K")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmDialog))
        await pilot.press("y")
        await wait_until(pilot, lambda: isinstance(app.screen, VmScreen))
        await wait_until(pilot, lambda: "shutoff" in title(app))


async def test_read_only_hides_the_lifecycle_keys() -> None:
    app = make_app(interval_s=3600.0, read_only=True)
    async with app.run_test(size=SIZE) as pilot:
        await loaded(pilot, app)
        await open_vm(pilot, app, "kafka01")
        assert all(key not in app.screen.active_bindings for key in "sxrpuK")
        await pilot.press("p")
        await pilot.pause(0.2)
        assert state_of(app, "kafka01") is VmState.RUNNING


async def test_the_palette_opens_a_vm_by_name() -> None:
    from ovmtui.commands import EstateCommands

    app = make_app(interval_s=3600.0)
    async with app.run_test(size=SIZE) as pilot:
        await loaded(pilot, app)
        dashboard = app.screen
        assert isinstance(dashboard, DashboardScreen)
        commands = {c.text: c for c in EstateCommands(dashboard)._commands(dashboard)}
        commands["Open VM mail01"].callback()
        await wait_until(pilot, lambda: isinstance(app.screen, VmScreen))
        assert vm_screen(app).placed.vm.name == "mail01"


async def test_the_definition_tab_scrolls_with_the_keys() -> None:
    app = make_app(interval_s=3600.0)
    async with app.run_test(size=(80, 24)) as pilot:
        await loaded(pilot, app)
        screen = await open_vm(pilot, app, "app-erp01")
        area = screen.query_one("#vm-definition", TextArea)
        await wait_until(pilot, lambda: area.display)
        await pilot.press("d")
        assert app.focused is area
        await pilot.press("pagedown", "pagedown")
        await pilot.pause()
        assert area.scroll_y > 0
        await pilot.press("o")
        assert screen.query_one("#vm-tabs", TabbedContent).active == "vm-overview-tab"


# -- Xen over SSH (the fake dom0) -----------------------------------------------------------

XEN_UUID = "0004fb00-0006-0000-2222-000000000001"


def xen_estate(xen: FakeXenHost, storage: Path) -> EstateConfig:
    host = HostConfig(
        "prod",
        "ovs07",
        ssh=xen.ssh_target,
        identity=str(xen.client_key),
        known_hosts=str(xen.known_hosts),
        toolstack="xm",
        shared_storage=str(storage),  # as the estate file's loader copies it from the pool
    )
    return EstateConfig((PoolConfig("prod", (host,), str(storage)),), "xen")


def start_xen(fake_xen_servers: Any, storage: Path, *, managed: bool = True) -> FakeXenHost:
    """xenweb01 runs from a vm.cfg in the pool's shared storage (unmanaged: from one kept
    elsewhere, which the backend does not find), with one disk there and one on a local
    volume."""
    where = storage if managed else storage.parent / "elsewhere"
    config = where / "running_pool" / "xenweb01" / "vm.cfg"
    config.parent.mkdir(parents=True)
    domain = make_domain(
        "xenweb01",
        uuid=XEN_UUID,
        domid=3,
        disks=[
            {
                "uname": f"file:{storage}/running_pool/xenweb01/System.img",
                "dev": "xvda",
                "mode": "w",
            },
            {"uname": "phy:/dev/vg0/scratch", "dev": "xvdb", "mode": "r"},
        ],
        vifs=[{"mac": "00:16:3e:22:00:01", "bridge": "xenbr1"}],
        config=str(config),
        managed=managed,
    )
    config.write_text(render_vm_cfg(domain))
    server = fake_xen_servers([HostSpec("ovs07", toolstack="xm", domains=[domain])])
    host: FakeXenHost = server.hosts[0]
    return host


async def test_a_xen_vm_shows_its_vm_cfg_and_its_keys_run_xm(
    fake_xen_servers: Any, tmp_path: Path
) -> None:
    storage = tmp_path / "OVS"
    xen = start_xen(fake_xen_servers, storage)
    app = make_app(xen_estate(xen, storage), interval_s=3600.0)
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: table(app).row_count == 1, what="the Xen VM")
        screen = await open_vm(pilot, app, "xenweb01")
        disks = screen.query_one("#vm-disks", DataTable)
        rows = [disks.get_row_at(i) for i in range(disks.row_count)]
        assert [(r[0], r[2], r[6], r[7]) for r in rows] == [
            ("xvda", f"{storage}/running_pool/xenweb01/System.img", "rw", "yes"),
            ("xvdb", "/dev/vg0/scratch", "ro", "no"),
        ]
        assert screen.query_one("#vm-nics", DataTable).get_row_at(0)[:2] == [
            "00:16:3e:22:00:01",
            "xenbr1",
        ]
        area = screen.query_one("#vm-definition", TextArea)
        await wait_until(pilot, lambda: area.display, what="the vm.cfg")
        assert area.text.startswith("name = 'xenweb01'") and f"uuid = '{XEN_UUID}'" in area.text
        xen.clear_argv_log()
        await pilot.press("p")
        await wait_until(pilot, lambda: "paused" in title(app))
        assert ["xm", "pause", "xenweb01"] in xen.argv_log()
        # m: the migration screen of this VM, as from the table (Xen over SSH migrates).
        from ovmtui.screens.migrate import MigrateScreen

        assert binding(app, "m").enabled
        await pilot.press("m")
        await wait_until(pilot, lambda: isinstance(app.screen, MigrateScreen))
        await pilot.press("escape")
        await wait_until(pilot, lambda: app.screen is screen)


async def test_the_screen_says_so_when_its_vm_leaves_the_estate(
    fake_xen_servers: Any, tmp_path: Path
) -> None:
    storage = tmp_path / "OVS"
    # Unmanaged (started with plain `xm create`): destroyed, it vanishes from `xm list`.
    xen = start_xen(fake_xen_servers, storage, managed=False)
    app = make_app(xen_estate(xen, storage), interval_s=3600.0)
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: table(app).row_count == 1, what="the Xen VM")
        screen = await open_vm(pilot, app, "xenweb01")
        await pilot.press("K")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmDialog))
        await pilot.press("y")
        await wait_until(pilot, lambda: isinstance(app.screen, VmScreen))
        await wait_until(pilot, lambda: screen.gone, what="the VM to leave the estate")
        assert title(app).startswith(f"xenweb01: {GONE}")
        assert screen.query_one("#vm-title").has_class("-gone")
        # Every key is dimmed with that reason: nothing is left to act on.
        for key in "sxrpuKcm":
            assert not binding(app, key).enabled and binding(app, key).tooltip == GONE
        # What was last known stays on screen.
        assert screen.query_one("#vm-disks", DataTable).row_count == 2
