"""Shared disks: create, attach, detach and delete, each planned, shown, then run on the record.

``SharedDiskService`` (``session.disks``) gathers the facts the rules (``disk_rules``) judge:
the disk's holders from the estate snapshot, whether it was made shareable (the repository's
``shared_disk`` table, else how its holders hold it), the VM's state and its host's hot-plug.
Each action is two steps, the same for the TUI and the headless commands:

1. ``plan_*``: the rules first (``RuleRefused`` names the one that refuses), then the host
   is asked what it would do, nothing changed: the equivalent command (``xm block-attach …``,
   ``virsh attach-disk …``) or the ``vm.cfg`` diff, shown to the operator, who confirms;
2. ``run(plan)``: one audited operation (``Operations``: read-only refuses, "started" is
   written first, the rules checked again on the snapshot of that moment, the result
   written). While a VM's disks change no other action is offered on it.

The file work (create, delete) runs on the pool's utility host: the first host with that
role that answers, else any host that answers, and the plan says so.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Literal, Protocol

from ovmtui.backend.base import Backend, CommandRunner, DiskAttacher, DiskChange, DiskStorage
from ovmtui.errors import ActionRefused, OvmError
from ovmtui.model import Capability, Disk, EstateSnapshot, HostKey, HostRole, PlacedVm
from ovmtui.operations import Done, Operation, Operations
from ovmtui.services.disk_rules import (
    SHARED_DISK_DIR,
    Refusal,
    Rule,
    SharedDisk,
    attach_refusal,
    attachment,
    delete_refusal,
    detach_refusal,
    disk_path,
    holders_of,
)

DiskAction = Literal["create", "attach", "detach", "delete"]


class RuleRefused(ActionRefused):
    """An action the pool's rules refuse; ``rule`` says which."""

    title = "Refused by the pool's rules"

    def __init__(self, refusal: Refusal) -> None:
        super().__init__(str(refusal))
        self.rule: Rule = refusal.rule


class SharedDiskMarks(Protocol):
    """Where the shared disks ovmtui created are remembered (the repository)."""

    async def shared_disk_marks(self, pool: str) -> dict[str, bool]: ...

    async def record_shared_disk(
        self, pool: str, name: str, path: str, *, shareable: bool, size_bytes: int, user: str
    ) -> None: ...

    async def forget_shared_disk(self, pool: str, name: str) -> None: ...


class InMemoryMarks:
    """The marks of a run without a repository (tests, benchmarks)."""

    def __init__(self) -> None:
        self.marks: dict[tuple[str, str], bool] = {}

    async def shared_disk_marks(self, pool: str) -> dict[str, bool]:
        return {name: mark for (p, name), mark in self.marks.items() if p == pool}

    async def record_shared_disk(
        self, pool: str, name: str, path: str, *, shareable: bool, size_bytes: int, user: str
    ) -> None:
        self.marks[(pool, name)] = shareable

    async def forget_shared_disk(self, pool: str, name: str) -> None:
        self.marks.pop((pool, name), None)


@dataclass(frozen=True, slots=True)
class DiskPlan:
    """An action on a shared disk as it will run: where, and the command it amounts to."""

    action: DiskAction
    disk: SharedDisk
    host: HostKey  # where it runs: the utility host, or the VM's host
    command: str
    note: str | None = None  # why this host (no utility host answers)
    diff: str | None = None  # the vm.cfg diff of a Xen attach or detach
    placed: PlacedVm | None = None
    change: DiskChange | None = None
    size_bytes: int | None = None
    allocate: bool = False

    @property
    def shown(self) -> str:
        """What the operator reads before saying yes: the command, the diff, the note."""
        parts = [self.command]
        if self.diff:
            parts.append(self.diff.rstrip("\n"))
        if self.note:
            parts.append(f"# {self.note}")
        return "\n".join(parts)


class SharedDiskService:
    def __init__(
        self,
        *,
        backend_for: Callable[[HostKey], Backend | None],
        snapshot: Callable[[], EstateSnapshot],
        shared_storage: Callable[[str], str | None],
        operations: Operations,
        busy: dict[str, str],
        marks: Callable[[], SharedDiskMarks | None],
        refresh: Callable[[HostKey], object] = lambda _key: None,
    ) -> None:
        self._backend_for = backend_for
        self._snapshot = snapshot
        self._shared_storage = shared_storage
        self._operations = operations
        self._busy = busy
        self._marks = marks
        self._memory = InMemoryMarks()
        self._refresh = refresh

    # -- facts ---------------------------------------------------------------------------

    def storage_of(self, pool: str) -> str:
        storage = self._shared_storage(pool)
        if not storage:
            raise ActionRefused(
                f"pool {pool} has no shared_storage in the estate file: shared disks live in "
                f"<shared_storage>/{SHARED_DISK_DIR}/ (Oracle VM's /OVS layout)"
            )
        return storage

    def _marks_store(self) -> SharedDiskMarks:
        return self._marks() or self._memory

    async def disk(self, pool: str, name: str) -> SharedDisk:
        """The disk ``name`` of ``pool``'s sharedDisk folder, its holders as the snapshot
        shows them."""
        path = disk_path(self.storage_of(pool), name)
        vms = [p for p in self._snapshot().placed_vms() if p.pool == pool]
        holders = holders_of(path, vms)
        marks = await self._read_marks(pool)
        shareable = marks.get(name, False) or any(h.shareable for h in holders if not h.read_only)
        return SharedDisk(name, pool, path, shareable=shareable, holders=holders)

    async def disks(self, pool: str) -> tuple[SharedDisk, ...]:
        """The shared disks of ``pool`` ovmtui knows: those it created and those VMs hold."""
        storage = self._shared_storage(pool)
        if not storage:
            return ()
        folder = disk_path(storage, "x").rsplit("/", 1)[0] + "/"
        names = set((await self._read_marks(pool)).keys())
        for placed in self._snapshot().placed_vms():
            if placed.pool != pool:
                continue
            for d in placed.vm.disks:
                if d.source and d.source.startswith(folder) and d.source.endswith(".img"):
                    names.add(d.source[len(folder) : -len(".img")])
        return tuple([await self.disk(pool, name) for name in sorted(names)])

    async def _read_marks(self, pool: str) -> dict[str, bool]:
        try:
            return await self._marks_store().shared_disk_marks(pool)
        except OvmError:
            return {}

    def utility_host(self, pool: str) -> tuple[HostKey, DiskStorage, str | None]:
        """The host that does the pool's file work, and a note when it is not a utility
        host."""
        hosts = [h for h in self._snapshot().hosts if h.pool == pool]
        answering = [h for h in hosts if h.reachable is True]
        for role_first in (True, False):
            for host in answering:
                if role_first and HostRole.UTILITY not in host.roles:
                    continue
                backend = self._backend_for(host.key)
                if isinstance(backend, DiskStorage):
                    if role_first:
                        return host.key, backend, None
                    has_role = any(HostRole.UTILITY in h.roles for h in hosts)
                    why = "does not answer" if has_role else "is named in the estate file"
                    return (
                        host.key,
                        backend,
                        f"no utility host of pool {pool} {why}: {host.name} does the file work",
                    )
        raise ActionRefused(f"no host of pool {pool} answers: nothing can do the file work now")

    def _attacher(self, placed: PlacedVm) -> DiskAttacher:
        backend = self._backend_for(placed.host_key)
        host = self._snapshot().host(placed.host_key)
        if backend is None or host is None:
            raise ActionRefused(f"{placed.host} is not in the estate")
        if not isinstance(backend, DiskAttacher):
            raise ActionRefused(f"{placed.host} cannot attach disks")
        if Capability.ATTACH_DISK not in backend.capabilities:
            raise ActionRefused(
                host.why_not(Capability.ATTACH_DISK) or f"{placed.host} cannot attach disks"
            )
        if host.reachable is False:
            raise ActionRefused(f"{placed.host} does not answer")
        return backend

    def hot_plug(self, placed: PlacedVm) -> str | None:
        """Why ``placed``'s host cannot hot-plug a disk now, or None when it can."""
        try:
            return self._attacher(placed).hot_plug
        except OvmError as exc:
            return exc.message

    # -- plans -----------------------------------------------------------------------------

    async def plan_create(
        self, pool: str, name: str, size_bytes: int, *, allocate: bool, shareable: bool
    ) -> DiskPlan:
        disk = await self.disk(pool, name)
        if disk.holders:
            raise ActionRefused(f"{disk.path} exists already: {disk.holders[0].vm} holds it")
        key, storage, note = self.utility_host(pool)
        command = storage.create_disk_command(disk.path, size_bytes, allocate=allocate)
        disk = replace(disk, shareable=shareable, size_bytes=size_bytes)
        return DiskPlan(
            "create", disk, key, command, note, size_bytes=size_bytes, allocate=allocate
        )

    async def plan_attach(
        self, pool: str, name: str, placed: PlacedVm, *, read_only: bool, live: bool
    ) -> DiskPlan:
        disk = await self.disk(pool, name)
        attacher = self._attacher(placed)
        _raise(
            attach_refusal(disk, placed, read_only=read_only, live=live, hot_plug=attacher.hot_plug)
        )
        prefix = "xvd" if isinstance(attacher, CommandRunner) else "vd"
        made = attachment(disk, placed, read_only=read_only, live=live, prefix=prefix)
        change = await attacher.plan_disk_change(
            placed.vm, made.as_disk(disk.path), attach=True, live=live
        )
        return self._vm_plan("attach", disk, placed, change)

    async def plan_detach(self, pool: str, name: str, placed: PlacedVm, *, live: bool) -> DiskPlan:
        disk = await self.disk(pool, name)
        attacher = self._attacher(placed)
        _raise(detach_refusal(disk, placed, live=live, hot_plug=attacher.hot_plug))
        held = disk.held_by(placed.uuid)
        assert held is not None  # the rules refused otherwise
        target = Disk(held.target, disk.path, read_only=held.read_only, shareable=held.shareable)
        source = next((d for d in placed.vm.disks if d.source == disk.path), None)
        if source is not None:
            target = replace(target, bus=source.bus, format=source.format)
        change = await attacher.plan_disk_change(placed.vm, target, attach=False, live=live)
        return self._vm_plan("detach", disk, placed, change)

    async def plan_delete(self, pool: str, name: str) -> DiskPlan:
        disk = await self.disk(pool, name)
        _raise(delete_refusal(disk, silent_hosts=self._silent_hosts(pool)))
        key, storage, note = self.utility_host(pool)
        return DiskPlan("delete", disk, key, storage.delete_disk_command(disk.path), note)

    def _vm_plan(
        self, action: DiskAction, disk: SharedDisk, placed: PlacedVm, change: DiskChange
    ) -> DiskPlan:
        diff = None
        if change.before is not None and change.after is not None and change.config_path:
            diff = "".join(
                difflib.unified_diff(
                    change.before.splitlines(keepends=True),
                    change.after.splitlines(keepends=True),
                    change.config_path,
                    change.config_path,
                )
            )
        return DiskPlan(
            action, disk, placed.host_key, change.command, diff=diff, placed=placed, change=change
        )

    def _silent_hosts(self, pool: str) -> list[str]:
        return [
            h.name for h in self._snapshot().hosts if h.pool == pool and h.reachable is not True
        ]

    # -- running ---------------------------------------------------------------------------

    async def run(self, plan: DiskPlan) -> Done[str]:
        """The plan as one audited operation; the rules are checked again first (on the
        snapshot of now). Raises ``OvmError`` (refused, or the host's failure)."""
        placed = plan.placed
        operation = Operation(
            f"shared-disk-{plan.action}",
            plan.command,
            plan.host.pool,
            plan.host.name,
            placed.vm.name if placed else None,
            placed.uuid if placed else None,
        )
        if placed is not None and placed.uuid in self._busy:
            raise ActionRefused(self._busy[placed.uuid])
        if placed is not None:
            self._busy[placed.uuid] = f"its disks are changing ({plan.action} {plan.disk.name})"
        try:
            return await self._operations.run(
                operation, lambda: self._work(plan), check=lambda: self._recheck(plan)
            )
        finally:
            if placed is not None:
                self._busy.pop(placed.uuid, None)
            self._refresh(plan.host)

    def _recheck(self, plan: DiskPlan) -> None:
        snapshot = self._snapshot()
        vms = [p for p in snapshot.placed_vms() if p.pool == plan.disk.pool]
        disk = replace(plan.disk, holders=holders_of(plan.disk.path, vms))
        if plan.action == "delete":
            _raise(delete_refusal(disk, silent_hosts=self._silent_hosts(disk.pool)))
            return
        if plan.placed is None or plan.change is None:
            return
        now = snapshot.find_vm(plan.placed.uuid) or plan.placed
        live = plan.change.live
        attacher = self._attacher(now)
        if plan.action == "attach":
            read_only = plan.change.disk.read_only
            _raise(
                attach_refusal(
                    disk, now, read_only=read_only, live=live, hot_plug=attacher.hot_plug
                )
            )
        else:
            _raise(detach_refusal(disk, now, live=live, hot_plug=attacher.hot_plug))

    async def _work(self, plan: DiskPlan) -> str:
        disk = plan.disk
        if plan.action in ("create", "delete"):
            backend = self._backend_for(plan.host)
            if not isinstance(backend, DiskStorage):
                raise ActionRefused(f"{plan.host.name} cannot do the storage's file work")
            if plan.action == "delete":
                await backend.delete_disk(disk.path)
                return f"{disk.path} deleted" + await self._forget(disk)
            assert plan.size_bytes is not None
            how = await backend.create_disk(disk.path, plan.size_bytes, allocate=plan.allocate)
            return f"{disk.path} created ({how})" + await self._remember(disk, plan.size_bytes)
        assert plan.placed is not None and plan.change is not None
        return await self._attacher(plan.placed).apply_disk_change(plan.change)

    async def _remember(self, disk: SharedDisk, size_bytes: int) -> str:
        try:
            await self._marks_store().record_shared_disk(
                disk.pool,
                disk.name,
                disk.path,
                shareable=disk.shareable,
                size_bytes=size_bytes,
                user=self._operations.user,
            )
        except OvmError as exc:
            return f"; not recorded as {'shareable' if disk.shareable else 'single-writer'}: {exc}"
        return "; shareable" if disk.shareable else ""

    async def _forget(self, disk: SharedDisk) -> str:
        try:
            await self._marks_store().forget_shared_disk(disk.pool, disk.name)
        except OvmError as exc:
            return f"; the repository still lists it: {exc}"
        return ""


def _raise(refusal: Refusal | None) -> None:
    if refusal is not None:
        raise RuleRefused(refusal)
