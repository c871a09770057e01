"""The storage screen's shared-disk actions (its "Shared disks" tab): create (``c``), attach
to a VM of the pool (``+``), detach from a holder (``-``), delete (``d``) through the pool's
rules. Each asks the core (``session.disks``, through the context) for the plan, shows it and
asks (``shared_disk.confirm_and_run``), and runs it on the record; a refusal names its rule.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ovmtui.errors import OvmError
from ovmtui.model import PlacedVm
from ovmtui.screens.disk_create import CreateDiskDialog, CreateDiskRequest
from ovmtui.screens.shared_disk import DiskVmDialog, confirm_and_run
from ovmtui.services.disk_rules import DISK_SUFFIX, SHARED_DISK_DIR, SharedDisk
from ovmtui.storage_model import StorageRow, shown

if TYPE_CHECKING:
    from ovmtui.screens.storage import StorageScreen


def disk_name_of(screen: StorageScreen, row: StorageRow) -> str | None:
    """The shared disk of ``row`` (its file less ``.img``); None, said, when the file is
    not one (``sharedDisk/NAME.img`` only)."""
    if row.name.endswith(DISK_SUFFIX) and "/" not in row.name:
        return row.name[: -len(DISK_SUFFIX)]
    screen.say_refused(
        f"{shown(row.name)} is not a shared disk: they are {SHARED_DISK_DIR}/NAME.img files.",
        "Not a shared disk",
    )
    return None


async def create_disk(screen: StorageScreen) -> None:
    """A new shared disk of this pool: the dialog, the plan shown and asked, the run."""
    if screen.context.read_only:
        screen.say_refused("Read-only mode: no disk is created.", "Read-only")
        return
    storage = screen.context.shared_storage(screen.pool)
    if not storage:
        screen.say_refused(
            f"Pool {screen.pool} has no shared_storage: shared disks live in its "
            f"{SHARED_DISK_DIR}/ folder.",
            "New disk",
        )
        return
    folder = f"{storage.rstrip('/')}/{SHARED_DISK_DIR}"
    request: CreateDiskRequest | None = await screen.app.push_screen_wait(
        CreateDiskDialog(screen.pool, folder)
    )
    if request is None:
        return
    try:
        plan = await screen.context.plan_disk_create(
            screen.pool,
            request.name,
            request.size_bytes,
            allocate=request.allocate,
            shareable=request.shareable,
        )
    except OvmError as exc:
        screen.say_refused(exc.message, exc.title)
        return
    kind = "shareable" if request.shareable else "one writer"
    title = f"Create {request.name} ({kind})?"
    if await confirm_and_run(screen.app, screen.context, plan, title, "Create"):
        screen.action_reload()


async def hold_disk(screen: StorageScreen, *, attach: bool) -> None:
    """Attach the selected disk to a VM of the pool (``+``) or detach it from one of its
    holders (``-``): the VM chosen, the rules, the plan shown and asked, the run."""
    row = screen.row_or_say()
    name = disk_name_of(screen, row) if row is not None else None
    if name is None:
        return
    word = "Attach" if attach else "Detach"
    try:
        disk = await screen.context.shared_disk(screen.pool, name)
    except OvmError as exc:
        screen.say_refused(exc.message, f"{word}: {exc.title}")
        return
    vms = vms_for(screen, disk, attach=attach)
    if not vms:
        text = (
            f"Pool {screen.pool} has no VM {name} could be attached to."
            if attach
            else f"No VM holds {name}."
        )
        screen.say_refused(text, f"{word} {name}")
        return
    request = await screen.app.push_screen_wait(DiskVmDialog(disk, vms, attach=attach))
    placed = screen.context.snapshot.find_vm(request.vm) if request and request.vm else None
    if request is None:
        return
    if placed is None:
        screen.say_refused("The VM is no longer in the estate.", word)
        return
    try:
        plan = await screen.context.plan_disk(
            placed, name, attach=attach, read_only=request.read_only, live=request.live
        )
    except OvmError as exc:
        screen.say_refused(exc.message, exc.title)
        return
    title = f"{word} {name} {'to' if attach else 'from'} {placed.vm.name}?"
    if await confirm_and_run(screen.app, screen.context, plan, title, word):
        screen.context.refresh_now()
        screen.action_reload()


def vms_for(
    screen: StorageScreen, disk: SharedDisk, *, attach: bool
) -> list[tuple[PlacedVm, str | None]]:
    """The pool's VMs that do not hold ``disk`` (attach), or those that do (detach), each
    with why its host cannot hot-plug (None: it can)."""
    vms = [p for p in screen.context.snapshot.placed_vms() if p.pool == screen.pool]
    vms = [p for p in vms if (disk.held_by(p.uuid) is None) == attach]
    vms.sort(key=lambda p: p.vm.name)
    return [(p, screen.context.disk_hot_plug(p)) for p in vms]


async def delete_disk(screen: StorageScreen, row: StorageRow) -> None:
    """A shared disk deleted through the pool's rules (refused while a VM holds it), the
    command shown and asked; its library record, if any, forgotten after."""
    name = disk_name_of(screen, row)
    if name is None:
        return
    try:
        plan = await screen.context.plan_disk_delete(screen.pool, name)
    except OvmError as exc:
        screen.say_refused(exc.message, exc.title)
        return
    ran = await confirm_and_run(
        screen.app,
        screen.context,
        plan,
        f"Delete {name}?",
        "Delete",
        warning="The disk's data is removed from the pool's storage for good.",
    )
    if not ran:
        return
    if row.resource is not None:
        try:
            view = await screen.context.storage.view(screen.pool)
            await screen.context.storage.delete(view, row.path)
        except OvmError as exc:
            screen.say_refused(exc.message, "Still in the library")
    screen.action_reload()
