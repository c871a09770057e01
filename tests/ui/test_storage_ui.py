"""The storage screen (``S`` on the dashboard, the palette): its pictures at 80x24 and
200x50, and its keys on the libvirt test driver through the real storage service: the
storage pools defined on the record, a volume registered, approved, refused deletion while
used, deleted after confirmation; tabs switched with the arrow keys."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot

from ovmtui.app import OvmApp
from ovmtui.backend.libvirt import LibvirtBackend
from ovmtui.backend.libvirt_storage import pool_name
from ovmtui.model import HostKey, VmState
from ovmtui.screens.dialogs import ConfirmDialog
from ovmtui.screens.storage import StorageScreen
from ovmtui.services.storage import StorageView
from ovmtui.storage_model import (
    DiskFormat,
    Resource,
    ResourceKind,
    ResourceStatus,
    StorageEntry,
    StorageRow,
    UsedBy,
    UseMode,
)
from tests.ui.conftest import FIXED_NOW, fixed_demo_estate, loaded, make_app, wait_until

SIZES = [pytest.param((80, 24), id="80x24"), pytest.param((200, 50), id="200x50")]
ROOT = "/OVS/sharedDisk"  # the demo pools' shared storage


@pytest.fixture(autouse=True)
def fixed_time_zone(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def _row(
    kind: ResourceKind,
    name: str,
    size: int,
    fmt: DiskFormat,
    resource: Resource | None = None,
    users: tuple[UsedBy, ...] = (),
) -> StorageRow:
    path = f"/OVS/{kind.folder}/{name}"
    entry = StorageEntry(
        kind, name, path, size, size // 2, fmt, FIXED_NOW, is_dir=fmt is DiskFormat.DIR
    )
    return StorageRow(kind, name, path, entry, resource, users)


def fixed_view() -> StorageView:
    approved = Resource(
        ResourceKind.SHARED_DISK,
        "prod",
        "/OVS/sharedDisk/quorum.img",
        "quorum.img",
        ResourceStatus.APPROVED,
        registered_by="alice",
        registered_at=FIXED_NOW,
        approved_by="bob",
        approved_at=FIXED_NOW + 60,
    )
    users = (
        UsedBy("db01", "u1", UseMode.READ_WRITE, VmState.RUNNING, "ovs01"),
        UsedBy("db02", "u2", UseMode.READ_ONLY, VmState.SHUTOFF, "ovs02"),
    )
    rows = (
        _row(ResourceKind.SHARED_DISK, "quorum.img", 1 << 30, DiskFormat.RAW, approved, users),
        _row(ResourceKind.SHARED_DISK, "scratch.qcow2", 10 << 30, DiskFormat.QCOW2),
        _row(ResourceKind.SHARED_DISK, "x; touch pwned", 3, DiskFormat.RAW),
    )
    return StorageView(
        "prod",
        "/OVS",
        "ovs02",
        "no utility host answered (ovs01): read through ovs02",
        rows=rows,
        missing_folders=("publish_pool",),
        commands=1,
        taken_at=FIXED_NOW,
    )


async def operations_of(app: OvmApp) -> list[tuple[str, bool | None]]:
    """The operations on the record, in order, with their results."""
    repo = app.session.repository
    assert repo is not None
    return [(e.operation, e.ok) for e in await repo.journal_entries()]


def test_storage_screen_picture(snap_compare: Any, size: tuple[int, int]) -> None:
    app = make_app()

    async def run(pilot: Pilot[Any]) -> None:
        await loaded(pilot, app)

        async def view(_pool: str) -> StorageView:
            return fixed_view()

        app.session.storage.view = view  # type: ignore[method-assign]
        await pilot.press("S")
        await wait_until(pilot, lambda: isinstance(app.screen, StorageScreen), what="S")
        screen = app.screen
        assert isinstance(screen, StorageScreen)
        await wait_until(pilot, lambda: screen.view is not None, what="the view")
        await pilot.press("right", "right", "right")  # to the shared disks' tab
        await pilot.pause()
        app.clear_notifications()

    assert snap_compare(app, terminal_size=size, run_before=run)


test_storage_screen_picture = pytest.mark.parametrize("size", SIZES)(test_storage_screen_picture)


async def test_keys_register_approve_delete_on_the_test_driver(tmp_path: Path) -> None:
    app: OvmApp = make_app(
        fixed_demo_estate(bare_storage=True), repository=tmp_path / "r.sqlite", interval_s=3600.0
    )
    async with app.run_test(size=(160, 40)) as pilot:
        await loaded(pilot, app)
        await pilot.press("S")
        await wait_until(pilot, lambda: isinstance(app.screen, StorageScreen), what="S")
        screen = app.screen
        assert isinstance(screen, StorageScreen) and screen.pool == "prod"
        await wait_until(pilot, lambda: screen.view is not None, what="the first reading")
        assert screen.view is not None and screen.view.host == "ovs01"  # the utility host
        assert screen.view.problem is None and screen.view.commands == 5
        assert await operations_of(app) == [("define-storage-pools", True)]

        backend = app.session.poller.backend(HostKey("prod", "ovs01"))
        assert isinstance(backend, LibvirtBackend) and backend._session is not None
        session = backend._session

        def make_volume() -> None:
            disks = session.conn.storagePoolLookupByName(pool_name("prod", "sharedDisk"))
            disks.createXML(
                "<volume><name>quorum.img</name><capacity>1048576</capacity>"
                "<target><format type='raw'/></target></volume>",
                0,
            )

        await backend._call(session, make_volume)
        await pilot.press("ctrl+r")
        await wait_until(pilot, lambda: bool(screen.view and screen.view.rows), what="refresh")
        await pilot.press("right", "right", "right")
        assert screen.kind is ResourceKind.SHARED_DISK
        assert screen.selected is not None and screen.selected.name == "quorum.img"

        await pilot.press("r")
        await wait_until(
            pilot,
            lambda: bool(screen.selected and screen.selected.resource),
            what="registered",
        )
        assert screen.selected is not None and screen.selected.status is ResourceStatus.PENDING
        await pilot.press("a")
        await wait_until(
            pilot,
            lambda: bool(screen.selected and screen.selected.status is ResourceStatus.APPROVED),
            what="approved",
        )
        await pilot.press("d")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmDialog), what="dialog")
        await pilot.press("n")  # not confirmed: nothing happens
        await wait_until(pilot, lambda: app.screen is screen, what="back")
        assert screen.selected is not None and screen.selected.name == "quorum.img"
        await pilot.press("d")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmDialog), what="dialog")
        await pilot.press("y")
        await wait_until(pilot, lambda: bool(screen.view and not screen.view.rows), what="deleted")
        assert await operations_of(app) == [
            ("define-storage-pools", True),
            ("register-resource", True),
            ("approve-resource", True),
            # A shared disk is deleted through the pool's rules, then its record forgotten.
            ("shared-disk-delete", True),
            ("delete-resource", True),
        ]
        await pilot.press("escape")
        await wait_until(pilot, lambda: not isinstance(app.screen, StorageScreen), what="back")
