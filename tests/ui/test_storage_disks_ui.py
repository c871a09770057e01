"""Shared disks from the storage screen's "Shared disks" tab: create (``c``, a dialog), attach
to a VM (``+``) and detach from one (``-``) choosing the VM, delete (``d``) through the
pool's rules; the keys in the footer on that tab only; refusals told with their rule.

Create and delete run on the libvirt test driver through the real services (a raw volume of
the sharedDisk storage pool); attach and detach on the in-memory host of
test_shared_disk_ui (the test driver attaches nothing; the lab does it for real:
tests/e2e/lab/test_storage_lab.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot
from textual.widgets import Checkbox, Input, OptionList, Static

from ovmtui.app import OvmApp
from ovmtui.screens.dialogs import ConfirmDialog
from ovmtui.screens.disk_create import CreateDiskDialog
from ovmtui.screens.shared_disk import DiskVmDialog
from ovmtui.screens.storage import StorageScreen
from ovmtui.services.storage import StorageView
from ovmtui.storage_model import (
    DiskFormat,
    ResourceKind,
    StorageEntry,
    StorageRow,
    UsedBy,
    UseMode,
)
from tests.ui.conftest import FIXED_NOW, SIZE, fixed_demo_estate, loaded, make_app, wait_until
from tests.ui.test_shared_disk_ui import QUORUM, app_of, rows
from tests.ui.test_storage_ui import operations_of

SIZES = [pytest.param((80, 24), id="80x24"), pytest.param((200, 50), id="200x50")]
DISK_KEYS = ("c", "plus", "minus")


def quorum_view(app: OvmApp) -> StorageView:
    """The in-memory pool's storage: quorum.img, held as the snapshot says."""
    users = tuple(
        UsedBy(p.vm.name, p.uuid, UseMode.READ_WRITE, p.vm.state, p.host)
        for p in app.snapshot.placed_vms()
        if any(d.source == QUORUM for d in p.vm.disks)
    )
    entry = StorageEntry(
        ResourceKind.SHARED_DISK, "quorum.img", QUORUM, 1 << 30, 1 << 20, DiskFormat.RAW
    )
    row = StorageRow(ResourceKind.SHARED_DISK, "quorum.img", QUORUM, entry, None, users)
    return StorageView("prod", "/OVS", "ovs01", None, rows=(row,), commands=1, taken_at=FIXED_NOW)


async def storage_screen(pilot: Pilot[Any], app: OvmApp, *, shared_tab: bool) -> StorageScreen:
    app.push_screen(StorageScreen(app, "prod"))
    await wait_until(pilot, lambda: isinstance(app.screen, StorageScreen), what="the screen")
    screen = app.screen
    assert isinstance(screen, StorageScreen)
    await wait_until(pilot, lambda: screen.view is not None, what="the view")
    if shared_tab:
        await pilot.press("right", "right", "right")
        assert screen.kind is ResourceKind.SHARED_DISK
    await pilot.pause()
    return screen


async def in_memory(pilot: Pilot[Any], app: OvmApp) -> StorageScreen:
    """The in-memory estate's storage screen on its shared disks' tab."""
    await wait_until(pilot, lambda: rows(app) == 3, what="the first poll")

    async def view(_pool: str) -> StorageView:
        return quorum_view(app)

    app.session.storage.view = view  # type: ignore[method-assign]
    return await storage_screen(pilot, app, shared_tab=True)


async def chooser(pilot: Pilot[Any], app: OvmApp, key: str) -> DiskVmDialog:
    await pilot.press(key)
    await wait_until(pilot, lambda: isinstance(app.screen, DiskVmDialog), what="the VMs")
    await pilot.pause()
    screen = app.screen
    assert isinstance(screen, DiskVmDialog)
    return screen


def listed(dialog: DiskVmDialog) -> list[str]:
    options = dialog.query_one(OptionList)
    return [str(options.get_option_at_index(i).prompt) for i in range(options.option_count)]


def holders(app: OvmApp) -> int:
    return sum(1 for p in app.snapshot.placed_vms() for d in p.vm.disks if d.source == QUORUM)


def footer_keys(screen: StorageScreen) -> set[str]:
    return {key for key, active in screen.active_bindings.items() if active.enabled}


async def test_the_disk_keys_are_in_the_footer_on_the_shared_disks_tab_only() -> None:
    app, _backend = app_of()
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: rows(app) == 3, what="the first poll")

        async def view(_pool: str) -> StorageView:
            return quorum_view(app)

        app.session.storage.view = view  # type: ignore[method-assign]
        screen = await storage_screen(pilot, app, shared_tab=False)
        assert screen.kind is ResourceKind.VM
        assert not any(screen.check_action(a, ()) for a in ("create_disk", "hold_disk"))
        assert not set(DISK_KEYS) & footer_keys(screen)
        await pilot.press("c")  # a hidden key does nothing
        await pilot.pause()
        assert app.screen is screen
        await pilot.press("right", "right", "right")
        await pilot.pause()
        assert set(DISK_KEYS) <= footer_keys(screen)
        await pilot.press("right")  # published: gone again
        await pilot.pause()
        assert not set(DISK_KEYS) & footer_keys(screen)


async def test_attach_chooses_the_vm_shows_the_plan_and_runs_then_detach() -> None:
    app, backend = app_of()
    async with app.run_test(size=SIZE) as pilot:
        await in_memory(pilot, app)
        dialog = await chooser(pilot, app, "plus")
        # The pool's VMs that do not hold it yet, by name; db1 holds it.
        assert listed(dialog) == ["db2  shutoff  on ovs01", "web  running  on ovs01"]
        assert "shareable" in str(dialog.query_one("#disk-title").render())
        # db2 is powered off: no hot-plug; web runs on a host that hot-plugs: offered.
        live = dialog.query_one("#disk-live", Checkbox)
        assert live.disabled
        await pilot.press("down")
        assert not live.disabled
        assert "Without hot-plug" in str(dialog.query_one("#disk-note", Static).render())
        await pilot.press("up", "enter")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmDialog), what="the plan")
        details = str(app.screen.query_one("#dialog-details", Static).render())
        assert f"'file:{QUORUM},vdb,w!'" in details
        await pilot.press("y")
        await wait_until(pilot, lambda: len(backend.applied) == 1, what="the attach")
        change = backend.applied[0]
        assert change.attach and change.vm.name == "db2" and change.disk.shareable
        assert not change.live

        await wait_until(
            pilot,
            lambda: any(d.source == QUORUM for d in backend.vms["u-db2"].disks),
            what="held",
        )
        app.refresh_now()
        await wait_until(
            pilot,
            lambda: holders(app) == 2,
            what="the snapshot",
        )  # fmt: skip
        dialog = await chooser(pilot, app, "minus")
        # Detach lists the holders, and has no read-only switch.
        assert listed(dialog) == [
            "db1  shutoff  on ovs01  holds it rw shared",
            "db2  shutoff  on ovs01  holds it rw shared",
        ]
        assert not dialog.query("#disk-read-only")
        await pilot.press("down", "enter")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmDialog), what="the plan")
        await pilot.press("y")
        await wait_until(pilot, lambda: len(backend.applied) == 2, what="the detach")
        assert not backend.applied[1].attach and backend.applied[1].vm.name == "db2"


async def test_a_second_writer_of_a_single_writer_disk_is_refused_with_its_rule(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    told: list[str] = []
    monkeypatch.setattr(OvmApp, "notify", lambda _self, text, **_kw: told.append(str(text)))
    app, backend = app_of(shared=False)  # db1 holds it read-write, not shareable
    async with app.run_test(size=SIZE) as pilot:
        screen = await in_memory(pilot, app)
        await chooser(pilot, app, "plus")
        await pilot.press("enter")  # db2
        await wait_until(pilot, lambda: bool(told), what="the refusal")
        assert "one read-write holder unless the disk is shareable" in told[-1]
        assert backend.applied == [] and app.screen is screen
        # Nobody to detach it from but its holder; a file that is no NAME.img is refused.
        told.clear()
        dialog = await chooser(pilot, app, "minus")
        assert [line.split()[0] for line in listed(dialog)] == ["db1"]
        await pilot.press("escape")
        await wait_until(pilot, lambda: app.screen is screen)
        assert backend.applied == []


async def test_delete_of_a_held_disk_is_refused_naming_the_rule(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    told: list[str] = []
    monkeypatch.setattr(OvmApp, "notify", lambda _self, text, **_kw: told.append(str(text)))
    app, _backend = app_of()
    async with app.run_test(size=SIZE) as pilot:
        screen = await in_memory(pilot, app)
        await pilot.press("d")
        await wait_until(pilot, lambda: bool(told), what="the refusal")
        assert "no deletion while a VM holds the disk" in told[-1] and "db1" in told[-1]
        assert app.screen is screen


async def test_create_then_delete_on_the_test_driver(tmp_path: Path) -> None:
    app: OvmApp = make_app(
        fixed_demo_estate(bare_storage=True), repository=tmp_path / "r.sqlite", interval_s=3600.0
    )
    async with app.run_test(size=(160, 40)) as pilot:
        await loaded(pilot, app)
        screen = await storage_screen(pilot, app, shared_tab=True)
        await pilot.press("c")
        await wait_until(pilot, lambda: isinstance(app.screen, CreateDiskDialog), what="dialog")
        dialog = app.screen
        # Bad input is said in the dialog, which stays.
        await pilot.press(*"x;y", "tab", *"10x", "enter")
        error = dialog.query_one("#disk-create-error", Static)
        assert "is not a disk name" in str(error.render())
        dialog.query_one("#disk-create-name", Input).value = "quorum"
        await pilot.press("enter")
        assert "is not a size" in str(error.render())
        dialog.query_one("#disk-create-size", Input).value = "16M"
        await pilot.press("tab", "space")  # shareable
        assert dialog.query_one("#disk-create-shareable", Checkbox).value
        dialog.query_one("#disk-create-size", Input).focus()
        await pilot.press("enter")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmDialog), what="the plan")
        command = str(app.screen.query_one("#dialog-commands Static", Static).render())
        assert "vol-create-as ovmtui-prod-sharedDisk quorum.img" in command
        assert "Create quorum (shareable)?" in str(app.screen.query_one("#dialog-title").render())
        await pilot.press("y")
        await wait_until(
            pilot,
            lambda: app.screen is screen
            and screen.selected is not None
            and screen.selected.name == "quorum.img",
            what="the new disk's row",
        )  # fmt: skip
        disk = await app.shared_disk("prod", "quorum")
        assert disk.shareable  # remembered in the repository

        await pilot.press("d")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmDialog), what="asked")
        command = str(app.screen.query_one("#dialog-commands Static", Static).render())
        assert "vol-delete" in command and "quorum.img" in command
        await pilot.press("y")
        await wait_until(pilot, lambda: bool(screen.view and not screen.view.rows), what="deleted")
        assert await operations_of(app) == [
            ("define-storage-pools", True),
            ("shared-disk-create", True),
            ("shared-disk-delete", True),
        ]


async def test_read_only_mode_creates_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    told: list[str] = []
    monkeypatch.setattr(OvmApp, "notify", lambda _self, text, **_kw: told.append(str(text)))
    app: OvmApp = make_app(fixed_demo_estate(bare_storage=True), interval_s=3600.0, read_only=True)
    async with app.run_test(size=SIZE) as pilot:
        await loaded(pilot, app)
        screen = await storage_screen(pilot, app, shared_tab=True)
        await pilot.press("c")
        await wait_until(pilot, lambda: bool(told), what="the refusal")
        assert "Read-only" in told[-1] and app.screen is screen


@pytest.mark.parametrize("size", SIZES)
def test_create_dialog_snapshot(snap_compare: Any, size: tuple[int, int]) -> None:
    app, _backend = app_of()

    async def run(pilot: Pilot[Any]) -> None:
        await in_memory(pilot, app)
        await pilot.press("c")
        await wait_until(pilot, lambda: isinstance(app.screen, CreateDiskDialog))
        await pilot.press(*"quorum", "tab", *"10G", "tab", "space")
        await pilot.pause()

    assert snap_compare(app, terminal_size=size, run_before=run)


@pytest.mark.parametrize("size", SIZES)
def test_vm_chooser_snapshot(snap_compare: Any, size: tuple[int, int]) -> None:
    app, _backend = app_of()

    async def run(pilot: Pilot[Any]) -> None:
        await in_memory(pilot, app)
        await chooser(pilot, app, "plus")

    assert snap_compare(app, terminal_size=size, run_before=run)


async def test_a_file_that_is_no_shared_disk_is_refused_saying_so(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    told: list[str] = []
    monkeypatch.setattr(OvmApp, "notify", lambda _self, text, **_kw: told.append(str(text)))
    app, backend = app_of()
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: rows(app) == 3, what="the first poll")
        path = "/OVS/sharedDisk/scratch.qcow2"
        entry = StorageEntry(ResourceKind.SHARED_DISK, "scratch.qcow2", path, 1 << 20)
        row = StorageRow(ResourceKind.SHARED_DISK, "scratch.qcow2", path, entry, None, ())

        async def view(_pool: str) -> StorageView:
            return StorageView("prod", "/OVS", "ovs01", None, rows=(row,), taken_at=FIXED_NOW)

        app.session.storage.view = view  # type: ignore[method-assign]
        screen = await storage_screen(pilot, app, shared_tab=True)
        for key in ("plus", "minus", "d"):
            told.clear()
            await pilot.press(key)
            await wait_until(pilot, lambda: bool(told), what=f"the refusal of {key}")
            assert "scratch.qcow2 is not a shared disk" in told[-1]
            assert app.screen is screen
        assert backend.applied == []
