"""Shared disks from the VM screen (a / A) and the palette: the dialog, the plan shown with
its vm.cfg diff, the run; refusals told with their rule; snapshots at 80x24 and 200x50.

The host is in memory (a FakeBackend that attaches by editing its VM's disks): what these
tests check is the screens' part. The real hosts' part is tested on the fake dom0
(tests/backend/test_xen_ssh_disks.py) and on the lab (tests/e2e/lab/test_shared_disks.py)."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from textual.css.query import NoMatches
from textual.pilot import Pilot
from textual.widgets import Checkbox, OptionList, Static

from ovmtui.app import OvmApp
from ovmtui.backend.base import DiskChange
from ovmtui.config import EstateConfig, HostConfig, PoolConfig
from ovmtui.model import Capability, Disk, Vm, VmState
from ovmtui.screens.dialogs import ConfirmDialog
from ovmtui.screens.shared_disk import SharedDiskDialog
from ovmtui.screens.vm import VmScreen
from tests.services.fakes import CAPABILITIES, FakeBackend
from tests.ui.conftest import SIZE, make_app, table, wait_until

QUORUM = "/OVS/sharedDisk/quorum.img"
SIZES = [pytest.param((80, 24), id="80x24"), pytest.param((200, 50), id="200x50")]


class DiskBackend(FakeBackend):
    """An in-memory host whose VMs' vm.cfg is their disk list."""

    def __init__(self, vms: list[Vm], hot_plug: str | None = None) -> None:
        super().__init__("prod", "ovs01", vms)
        self.capabilities = CAPABILITIES | {Capability.ATTACH_DISK}
        self._hot_plug = hot_plug
        self.applied: list[DiskChange] = []

    @property
    def hot_plug(self) -> str | None:
        return self._hot_plug

    async def plan_disk_change(self, vm: Vm, disk: Disk, *, attach: bool, live: bool) -> DiskChange:
        config = f"/OVS/running_pool/{vm.name}/vm.cfg"
        entries = [f"'file:{d.source},{d.target},w'" for d in self.vms[vm.uuid].disks]
        before = f"name = '{vm.name}'\ndisk = [{', '.join(entries)}]\n"
        mode = "r" if disk.read_only else ("w!" if disk.shareable else "w")
        new = f"'file:{disk.source},{disk.target},{mode}'"
        kept = [e for e in entries if disk.source not in e]
        after_entries = [*entries, new] if attach else kept
        after = f"name = '{vm.name}'\ndisk = [{', '.join(after_entries)}]\n"
        command = f"# {config}: disk list {'+=' if attach else '-='} {disk.source}"
        return DiskChange(vm, disk, attach, live, command, config, before, after)

    async def apply_disk_change(self, change: DiskChange) -> str:
        self.applied.append(change)
        vm = self.vms[change.vm.uuid]
        disks = [d for d in vm.disks if d.source != change.disk.source]
        if change.attach:
            disks.append(change.disk)
        self.vms[vm.uuid] = dataclasses.replace(vm, disks=tuple(disks))
        return f"{change.disk.source} {'attached' if change.attach else 'detached'}"


def estate(*, shared: bool = True) -> tuple[EstateConfig, DiskBackend]:
    boot = Disk("vda", "/OVS/running_pool/x/System.img")
    db1 = Vm("u-db1", "db1", VmState.SHUTOFF, disks=(boot, Disk("vdb", QUORUM, shareable=shared)))
    db2 = Vm("u-db2", "db2", VmState.SHUTOFF, disks=(boot,))
    web = Vm("u-web", "web", VmState.RUNNING, disks=(boot,))
    backend = DiskBackend([db1, db2, web])
    host = HostConfig("prod", "ovs01", libvirt="test:///default")
    return EstateConfig((PoolConfig("prod", (host,), "/OVS"),), "test"), backend


def app_of(*, shared: bool = True) -> tuple[OvmApp, DiskBackend]:
    config, backend = estate(shared=shared)
    return make_app(config, backends=[backend], interval_s=3600.0), backend


def rows(app: OvmApp) -> int:
    """The VM table's rows, 0 while the dashboard is not composed yet."""
    try:
        return table(app).row_count
    except NoMatches:
        return 0


async def vm_screen(pilot: Pilot[Any], app: OvmApp, name: str) -> VmScreen:
    await wait_until(pilot, lambda: rows(app) == 3, what="the first poll")
    placed = next(p for p in app.snapshot.placed_vms() if p.vm.name == name)
    app.push_screen(VmScreen(app, placed))
    await wait_until(pilot, lambda: isinstance(app.screen, VmScreen))
    await pilot.pause()
    screen = app.screen
    assert isinstance(screen, VmScreen)
    return screen


async def dialog(pilot: Pilot[Any], app: OvmApp, key: str) -> SharedDiskDialog:
    await pilot.press(key)
    await wait_until(pilot, lambda: isinstance(app.screen, SharedDiskDialog), what="the dialog")
    await pilot.pause()
    screen = app.screen
    assert isinstance(screen, SharedDiskDialog)
    return screen


async def test_attach_shows_the_diff_then_runs_on_the_record() -> None:
    app, backend = app_of()
    async with app.run_test(size=SIZE) as pilot:
        await vm_screen(pilot, app, "db2")
        chooser = await dialog(pilot, app, "a")
        options = chooser.query_one(OptionList)
        assert options.option_count == 1
        assert "quorum  [shareable]  held by db1 (rw shared)" in str(
            options.get_option_at_index(0).prompt
        )
        # A powered-off VM: no hot-plug offered.
        assert chooser.query_one("#disk-live", Checkbox).disabled
        await pilot.press("enter")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmDialog), what="the plan")
        details = str(app.screen.query_one("#dialog-details", Static).render())
        assert (
            f"+disk = ['file:/OVS/running_pool/x/System.img,vda,w', 'file:{QUORUM},vdb,w!']"
            in details
        )
        await pilot.press("y")
        await wait_until(pilot, lambda: len(backend.applied) == 1, what="the attach")
        change = backend.applied[0]
        assert change.attach and change.disk.shareable and change.disk.target == "vdb"
        assert not change.live


async def test_read_only_switch_and_detach() -> None:
    app, backend = app_of()
    async with app.run_test(size=SIZE) as pilot:
        await vm_screen(pilot, app, "db2")
        chooser = await dialog(pilot, app, "a")
        await pilot.press("o")
        assert chooser.query_one("#disk-read-only", Checkbox).value
        await pilot.press("enter")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmDialog))
        await pilot.press("y")
        await wait_until(pilot, lambda: len(backend.applied) == 1)
        assert backend.applied[0].disk.read_only and not backend.applied[0].disk.shareable
        app.refresh_now()
        await wait_until(
            pilot, lambda: any(d.source == QUORUM for d in app.snapshot.find_vm("u-db2").vm.disks)
        )  # type: ignore[union-attr]
        await pilot.press("escape")
        placed = app.snapshot.find_vm("u-db2")
        assert placed is not None
        app.push_screen(VmScreen(app, placed))
        await wait_until(pilot, lambda: isinstance(app.screen, VmScreen))
        chooser = await dialog(pilot, app, "A")
        # Detach lists what the VM holds, and has no read-only switch.
        assert chooser.query_one(OptionList).option_count == 1
        assert not chooser.query("#disk-read-only")
        await pilot.press("enter")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmDialog))
        await pilot.press("y")
        await wait_until(pilot, lambda: len(backend.applied) == 2)
        assert not backend.applied[1].attach


async def test_a_rule_refusal_is_told_and_nothing_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    told: list[str] = []
    monkeypatch.setattr(OvmApp, "notify", lambda _self, text, **_kw: told.append(str(text)))
    app, backend = app_of(shared=False)  # db1 holds it read-write, not shareable
    async with app.run_test(size=SIZE) as pilot:
        await vm_screen(pilot, app, "db2")
        await dialog(pilot, app, "a")
        await pilot.press("enter")
        await wait_until(pilot, lambda: bool(told), what="the refusal")
        assert "not shareable" in told[-1] and "one read-write holder" in told[-1]
        assert backend.applied == [] and isinstance(app.screen, VmScreen)


async def test_hot_plug_is_offered_for_a_running_vm_only_where_the_host_can() -> None:
    app, _backend = app_of()
    async with app.run_test(size=SIZE) as pilot:
        await vm_screen(pilot, app, "web")
        chooser = await dialog(pilot, app, "a")
        live = chooser.query_one("#disk-live", Checkbox)
        assert not live.disabled and not live.value
        await pilot.press("l")
        assert live.value
        await pilot.press("escape")
        await wait_until(pilot, lambda: isinstance(app.screen, VmScreen))


async def test_keys_are_dimmed_in_read_only_mode() -> None:
    config, backend = estate()
    app = make_app(config, backends=[backend], interval_s=3600.0, read_only=True)
    async with app.run_test(size=SIZE) as pilot:
        screen = await vm_screen(pilot, app, "db2")
        assert not screen.active_bindings["a"].enabled
        assert screen.disk_refusal() == "read-only mode"


@pytest.mark.parametrize("size", SIZES)
def test_dialog_snapshot(snap_compare: Any, size: tuple[int, int]) -> None:
    app, _backend = app_of()

    async def run(pilot: Pilot[Any]) -> None:
        await vm_screen(pilot, app, "db2")
        await dialog(pilot, app, "a")

    assert snap_compare(app, terminal_size=size, run_before=run)


@pytest.mark.parametrize("size", SIZES)
def test_plan_snapshot(snap_compare: Any, size: tuple[int, int]) -> None:
    app, _backend = app_of()

    async def run(pilot: Pilot[Any]) -> None:
        await vm_screen(pilot, app, "db2")
        await dialog(pilot, app, "a")
        await pilot.press("enter")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmDialog))
        await pilot.pause()

    assert snap_compare(app, terminal_size=size, run_before=run)
