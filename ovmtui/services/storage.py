"""The pool's storage and its library: read through the utility host, folded with the
repository's records and the estate's VMs; register, approve, delete on the record.

One service for both faces (``session.storage``): the storage screen and ``ovmtui storage``
/ ``ovmtui resource`` call the same methods. Every change goes through ``Operations``
(read-only refuses, "started" before, the result after); the rules are in ``storage_rules``.
"""

from __future__ import annotations

import dataclasses
import posixpath
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from ovmtui import format as fmt
from ovmtui.backend.base import Backend, StorageLister, StoragePoolDefiner
from ovmtui.errors import ActionRefused, OvmError
from ovmtui.model import Capability, EstateSnapshot, HostKey
from ovmtui.operations import Operation, Operations
from ovmtui.services.storage_rules import (
    REGISTERABLE,
    VM_CFG_MAX_BYTES,
    approve_refusal,
    delete_refusal,
    register_refusal,
)
from ovmtui.services.utility_host import pick_utility_host
from ovmtui.storage_model import (
    Resource,
    ResourceKind,
    ResourceStatus,
    StorageRow,
    StorageScan,
    shown,
    storage_rows,
)
from ovmtui.store.repository import Repository


class NoSuchResource(OvmError):
    """A name or path that names no entry (or several): bad input, not a rule's refusal."""

    title = "No such resource"


NEEDS_SHARED_STORAGE = "the storage screen needs the pool's shared_storage in the estate file"


@dataclass(frozen=True, slots=True)
class StorageView:
    """A pool's storage as last read: its rows, through which host, and what is amiss."""

    pool: str
    root: str | None
    host: str | None = None
    note: str | None = None  # "no utility host answered: read through h2"
    problem: str | None = None  # why nothing could be listed
    rows: tuple[StorageRow, ...] = ()
    command: str | None = None
    missing_folders: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()
    commands: int = 0
    taken_at: float | None = None

    def rows_of(self, kind: ResourceKind) -> tuple[StorageRow, ...]:
        return tuple(row for row in self.rows if row.kind is kind)

    def find(self, name: str) -> StorageRow:
        """The row named ``name`` (or whose path it is). Raises ``ActionRefused`` when none
        is, or several are (a name in two folders: give the path)."""
        path = posixpath.normpath(name) if name.startswith("/") else None
        matches = [row for row in self.rows if name == row.name or path == row.path]
        if not matches:
            raise NoSuchResource(f"no resource {shown(name)!r} in pool {self.pool}'s storage")
        if len(matches) > 1:
            paths = ", ".join(shown(row.path) for row in matches)
            raise NoSuchResource(f"{name!r} names several entries ({paths}): give the path")
        return matches[0]


COLUMNS = ("NAME", "SIZE", "ALLOCATED", "FORMAT", "STATUS", "USED BY", "BY")


def row_cells(row: StorageRow) -> list[str]:
    """A row as the screen and ``ovmtui storage`` show it, in ``COLUMNS``' order."""
    entry = row.entry
    by, at = row.resource.by if row.resource is not None else (None, None)
    when = f" {fmt.timestamp(at)}" if at is not None else ""
    return [
        shown(row.name).replace("\n", "\\n"),
        fmt.size(row.size_bytes),
        fmt.size(entry.allocated_bytes) if entry is not None else fmt.UNKNOWN,
        entry.format.value if entry is not None and entry.format else fmt.UNKNOWN,
        row.status_text,
        ", ".join(f"{u.vm} ({u.mode.value}, {u.state.value})" for u in row.used_by),
        f"{by}{when}" if by else "",
    ]


def header_lines(view: StorageView) -> list[str]:
    """Through which host the files were read, and what is amiss."""
    if view.host is not None:
        lines = [f"pool {view.pool}: {view.root}, read through {view.host}"]
    else:
        lines = [f"pool {view.pool}: {view.root or 'no shared storage'}"]
    if view.note:
        lines.append(f"note: {view.note}")
    if view.problem:
        lines.append(f"cannot list: {view.problem}")
    if view.missing_folders:
        lines.append(f"not there: {', '.join(view.missing_folders)}")
    lines.extend(f"warning: {w}" for w in view.warnings)
    return lines


@dataclass(frozen=True, slots=True)
class Registered:
    """One entry's registration: its record, or why it was refused."""

    row: StorageRow
    resource: Resource | None
    refused: str | None = None


class StorageService:
    """See the module docstring."""

    def __init__(
        self,
        *,
        backend_for: Callable[[HostKey], Backend | None],
        snapshot: Callable[[], EstateSnapshot],
        shared_storage: Callable[[str], str | None],
        operations: Operations,
        repository: Callable[[], Repository | None],
        read_only: Callable[[], bool],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._backend_for = backend_for
        self._snapshot = snapshot
        self._shared_storage = shared_storage
        self._operations = operations
        self._repository = repository
        self._read_only = read_only
        self._clock = clock

    # -- reading ---------------------------------------------------------------------------

    def _lister(self, pool: str) -> tuple[StorageLister | None, StorageView]:
        """The backend to read ``pool``'s storage through, with the view's header; no
        backend: the view says why."""
        root = self._shared_storage(pool)
        if not root:
            return None, StorageView(pool, None, problem=NEEDS_SHARED_STORAGE)
        choice = pick_utility_host(self._snapshot(), pool)
        if choice.host is None:
            return None, StorageView(pool, root, problem=choice.note)
        backend = self._backend_for(choice.host.key)
        if (
            backend is None
            or Capability.STORAGE_SCAN not in backend.capabilities
            or not isinstance(backend, StorageLister)
        ):
            why = f"{choice.host.name} cannot read the pool's storage"
            return None, StorageView(pool, root, choice.host.name, choice.note, why)
        view = StorageView(
            pool, root, choice.host.name, choice.note, command=backend.storage_command(root)
        )
        return backend, view

    async def view(self, pool: str) -> StorageView:
        """Read the pool's storage now and fold it with the library and the estate. Never
        raises for the host's failures: the view's ``problem`` says them."""
        lister, view = self._lister(pool)
        if lister is None or view.root is None:
            return view
        warnings: list[str] = []
        try:
            if isinstance(lister, StoragePoolDefiner):
                warnings += await self._define_pools(lister, view)
            scan = await lister.list_storage(pool, view.root)
        except OvmError as exc:
            return _replace(view, problem=exc.message, taken_at=self._clock())
        resources = await self._reconcile_library(pool, scan)
        rows = storage_rows(self._snapshot(), pool, scan.entries, resources)
        return _replace(
            view,
            rows=rows,
            missing_folders=scan.missing_folders,
            warnings=(*warnings, *scan.warnings),
            commands=scan.commands,
            taken_at=self._clock(),
        )

    async def _define_pools(self, definer: StoragePoolDefiner, view: StorageView) -> list[str]:
        """libvirt: a storage pool for each folder that has none, defined on the record."""
        assert view.root is not None
        missing = await definer.storage_pools_missing(view.pool)
        if not missing:
            return []
        if self._read_only():
            return [f"no storage pool for {', '.join(missing)} (read-only: none defined)"]
        command = definer.define_storage_pools_command(view.pool, view.root, missing)
        root = view.root
        done = await self._operations.run(
            Operation("define-storage-pools", command, pool=view.pool, host=view.host),
            lambda: definer.define_storage_pools(view.pool, root, missing),
            outcome=lambda failed: (not failed, "; ".join(failed) or None),
        )
        return list(done.value)

    async def _reconcile_library(self, pool: str, scan: StorageScan) -> list[Resource]:
        """The library's records of the pool, flagged missing where the storage no longer
        shows them (of the folders that were read); unflagged when they are back."""
        repo = self._repository()
        if repo is None:
            return []
        read = [k for k in ResourceKind if k.folder not in scan.missing_folders]
        if not repo.read_only:
            await repo.flag_missing_resources(
                pool, {e.path for e in scan.entries}, kinds=read, at=self._clock()
            )
        return await repo.resources(pool)

    # -- changing ----------------------------------------------------------------------------

    def _writable(self) -> Repository:
        repo = self._repository()
        if repo is None or repo.read_only:
            raise ActionRefused("the library lives in the repository, and none is open to write")
        return repo

    async def register(self, view: StorageView, names: Sequence[str]) -> list[Registered]:
        """Register each named entry (``names`` empty: every unregistered one of the kinds
        that can be); each one on the record, its refusal too. Raises ``ActionRefused``
        when a name is unknown; a rule's refusal is in its ``Registered``."""
        if names:
            rows = [view.find(name) for name in names]
        else:
            rows = [
                row
                for row in view.rows
                if row.kind in REGISTERABLE and row.entry is not None and row.resource is None
            ]
        return [await self._register_one(view, row) for row in rows]

    async def _register_one(self, view: StorageView, row: StorageRow) -> Registered:
        refusal = register_refusal(row) if row.kind is not ResourceKind.TEMPLATE else None

        async def work() -> Resource:
            why = refusal
            if why is None and row.kind is ResourceKind.TEMPLATE:
                why = register_refusal(row, await self._vm_cfg(view, row))
            if why is not None:
                raise ActionRefused(why, title="Not registered")
            repo = self._writable()
            entry = row.entry
            assert entry is not None  # register_refusal said so
            old = row.resource
            return await repo.upsert_resource(
                Resource(
                    row.kind,
                    view.pool,
                    row.path,
                    row.name,
                    ResourceStatus.PENDING,
                    size_bytes=entry.size_bytes,
                    sha256=old.sha256 if old else None,
                    source_url=old.source_url if old else None,
                    registered_by=self._operations.user,
                    registered_at=self._clock(),
                )
            )

        operation = Operation(
            "register-resource", f"register {shown(row.path)}", pool=view.pool, host=view.host
        )
        try:
            done = await self._operations.run(operation, work)
        except ActionRefused as refused:
            return Registered(row, None, refused.message)
        return Registered(row, done.value)

    async def _vm_cfg(self, view: StorageView, row: StorageRow) -> bytes | None:
        lister, _ = self._lister(view.pool)
        if lister is None:
            raise ActionRefused(view.problem or "the pool's storage cannot be read now")
        return await lister.read_storage_file(posixpath.join(row.path, "vm.cfg"), VM_CFG_MAX_BYTES)

    async def approve(self, view: StorageView, name: str) -> Resource:
        """Approve a pending resource, on the record with the OS user (a role will gate it
        once there are users). Raises ``ActionRefused`` with the rule that refuses."""
        row = view.find(name)

        def check() -> None:
            why = approve_refusal(row)
            if why is not None:
                raise ActionRefused(why, title="Not approved")

        async def work() -> Resource:
            return await self._writable().set_resource_status(
                view.pool,
                row.path,
                ResourceStatus.APPROVED,
                by=self._operations.user,
                at=self._clock(),
            )

        operation = Operation("approve-resource", f"approve {shown(row.path)}", pool=view.pool)
        return (await self._operations.run(operation, work, check=check)).value

    def delete_command(self, view: StorageView, row: StorageRow) -> str:
        lister, _ = self._lister(view.pool)
        if lister is None or row.entry is None:
            return f"# forget {shown(row.path)} (the library's record only)"
        return shown(lister.delete_command(view.pool, row.entry))

    async def delete(self, view: StorageView, name: str) -> StorageRow:
        """Delete the resource's file or folder through the utility host, and its record.
        Refused while anything uses it. One the storage no longer has: its record only."""
        row = view.find(name)

        def check() -> None:
            why = delete_refusal(row)
            if why is not None:
                raise ActionRefused(why, title="Not deleted")

        async def work() -> None:
            entry = row.entry
            if entry is not None:
                lister, fresh = self._lister(view.pool)
                if lister is None or fresh.root is None:
                    raise ActionRefused(fresh.problem or "the pool's storage cannot be changed")
                await lister.delete_entry(view.pool, fresh.root, entry)
            repo = self._repository()
            if row.resource is not None and repo is not None:
                await self._writable().delete_resource(view.pool, row.path)

        operation = Operation(
            "delete-resource", self.delete_command(view, row), pool=view.pool, host=view.host
        )
        await self._operations.run(operation, work, check=check)
        return row


def _replace(view: StorageView, **changes: object) -> StorageView:
    return dataclasses.replace(view, **changes)  # type: ignore[arg-type]
