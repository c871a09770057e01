"""The pool's storage: what lies on its shared storage, and the library of resources.

Oracle VM's fixed layout under a pool's shared storage (``/OVS``): ``running_pool/<vm>/``
(VMs), ``seed_pool/<template>/`` (templates), ``iso_pool/<name>/<name>.iso`` (ISOs),
``sharedDisk/<disk>.img`` (disks several VMs share), ``publish_pool/`` (published VMs). A
``StorageEntry`` is one file or folder found there as a host listed it; a ``Resource`` is the
library's record of one (registered, imported, approved). "Used by" is computed from the
estate snapshot: which VMs are defined on an entry, which hold it as a disk.

Pure and immutable, like ``ovmtui.model``: no I/O, no backend library.
"""

from __future__ import annotations

import enum
import posixpath
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType

from ovmtui.model import EstateSnapshot, VmState


class ResourceKind(enum.StrEnum):
    """What an entry of the layout is, by the folder it lies in."""

    VM = "vm"
    TEMPLATE = "template"
    ISO = "iso"
    SHARED_DISK = "shared-disk"
    PUBLISHED = "published"

    @property
    def folder(self) -> str:
        """Its folder under the pool's shared storage."""
        return FOLDERS[self]

    @property
    def label(self) -> str:
        """Its name in the operator's words (a tab, a heading)."""
        return _TITLES[self]


FOLDERS: Mapping[ResourceKind, str] = MappingProxyType(
    {
        ResourceKind.VM: "running_pool",
        ResourceKind.TEMPLATE: "seed_pool",
        ResourceKind.ISO: "iso_pool",
        ResourceKind.SHARED_DISK: "sharedDisk",
        ResourceKind.PUBLISHED: "publish_pool",
    }
)
"""Each kind's folder of Oracle VM's layout, in the order the layout is listed."""

KIND_OF_FOLDER: Mapping[str, ResourceKind] = MappingProxyType(
    {folder: kind for kind, folder in FOLDERS.items()}
)

_TITLES = {
    ResourceKind.VM: "VMs",
    ResourceKind.TEMPLATE: "Templates",
    ResourceKind.ISO: "ISOs",
    ResourceKind.SHARED_DISK: "Shared disks",
    ResourceKind.PUBLISHED: "Published",
}


class DiskFormat(enum.StrEnum):
    """What an image's first bytes say it is, where that is cheap to tell."""

    RAW = "raw"
    QCOW2 = "qcow2"
    ISO = "iso"  # ISO 9660: "CD001" at byte 32769
    DIR = "dir"  # a folder (a template, a VM, an ISO's folder)


class ResourceStatus(enum.StrEnum):
    """A resource's place in the library: found, on its way in, waiting, usable, or not."""

    UNREGISTERED = "unregistered"  # on the storage, not in the library
    IMPORTING = "importing"
    PENDING = "pending"  # registered or imported, waiting for approval
    APPROVED = "approved"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class StorageEntry:
    """One file or folder of the layout, as the host that listed it saw it.

    ``name`` is its name in its kind's folder (a template's folder, a shared disk's file);
    ``path`` the absolute path on the host (libvirt: the volume's path). Sizes are bytes:
    ``size_bytes`` the apparent size (a sparse disk's full size), ``allocated_bytes`` what it
    takes on the disk; for a folder, the sum of its files. None: not reported.
    """

    kind: ResourceKind
    name: str
    path: str
    size_bytes: int | None = None
    allocated_bytes: int | None = None
    format: DiskFormat | None = None  # None: not told (not read, or no known signature)
    mtime: float | None = None  # epoch seconds
    is_dir: bool = False
    # Xen: a folder holding a vm.cfg (a VM's, a template's); None when the listing cannot tell.
    has_vm_cfg: bool | None = None


@dataclass(frozen=True, slots=True)
class StorageScan:
    """What a backend read of a pool's layout (``StorageLister.list_storage``)."""

    entries: tuple[StorageEntry, ...]
    missing_folders: tuple[str, ...] = ()  # folders of the layout that are not there
    warnings: tuple[str, ...] = ()  # what could not be told ("formats not told: …")
    commands: int = 1  # remote commands (or storage-pool listings) it took


@dataclass(frozen=True, slots=True)
class StorageListing:
    """One reading of a pool's layout through one host."""

    pool: str
    host: str  # the host the files were read through
    root: str  # the pool's shared storage
    entries: tuple[StorageEntry, ...]
    taken_at: float
    note: str | None = None  # "no utility host answered: read through h2"
    # Folders of the layout that are not there (a fresh storage): not an error.
    missing_folders: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()
    commands: int = 0  # remote commands (or storage-pool listings) the reading took


@dataclass(frozen=True, slots=True)
class Resource:
    """The library's record of one resource of a pool (``resources`` table)."""

    kind: ResourceKind
    pool: str
    path: str
    name: str
    status: ResourceStatus
    size_bytes: int | None = None
    sha256: str | None = None
    why: str | None = None  # a failure's reason, in the operator's words
    percent: float | None = None  # an import's progress, 0 to 100
    source_url: str | None = None
    registered_by: str | None = None
    registered_at: float | None = None
    imported_by: str | None = None
    imported_at: float | None = None
    approved_by: str | None = None
    approved_at: float | None = None
    # Since when the storage no longer shows it: flagged, never dropped.
    missing_since: float | None = None
    id: int | None = None

    @property
    def missing(self) -> bool:
        return self.missing_since is not None

    @property
    def status_text(self) -> str:
        """``importing 42 %``, ``failed: why``, ``pending`` …, ``(missing)`` when gone."""
        text = self.status.value
        if self.status is ResourceStatus.IMPORTING and self.percent is not None:
            text = f"importing {self.percent:.0f} %"
        elif self.status is ResourceStatus.FAILED and self.why:
            text = f"failed: {self.why}"
        return f"{text} (missing)" if self.missing else text

    @property
    def by(self) -> tuple[str | None, float | None]:
        """Who last brought it forward and when: approved, else imported, else registered."""
        if self.approved_by is not None:
            return self.approved_by, self.approved_at
        if self.imported_by is not None:
            return self.imported_by, self.imported_at
        return self.registered_by, self.registered_at


class UseMode(enum.StrEnum):
    READ_ONLY = "ro"
    READ_WRITE = "rw"
    DEFINED = "defined"  # the VM's own folder (its vm.cfg), not a disk it holds


@dataclass(frozen=True, slots=True)
class UsedBy:
    """A VM that uses an entry: defined on it, or holding it as a disk."""

    vm: str
    uuid: str
    mode: UseMode
    state: VmState
    host: str


@dataclass(frozen=True, slots=True)
class StorageRow:
    """An entry with its library record and its users: a row of the storage screen and of
    ``ovmtui storage``. An entry of the library gone from storage has ``entry`` None."""

    kind: ResourceKind
    name: str
    path: str
    entry: StorageEntry | None
    resource: Resource | None
    used_by: tuple[UsedBy, ...] = ()

    @property
    def status(self) -> ResourceStatus:
        return ResourceStatus.UNREGISTERED if self.resource is None else self.resource.status

    @property
    def status_text(self) -> str:
        if self.resource is None:
            return ResourceStatus.UNREGISTERED.value
        return self.resource.status_text

    @property
    def size_bytes(self) -> int | None:
        if self.entry is not None:
            return self.entry.size_bytes
        return None if self.resource is None else self.resource.size_bytes


def shown(text: str) -> str:
    """A name or path as it can be shown and recorded: bytes that are not UTF-8 (kept as
    surrogates to address the file) written as ``\\xe9``."""
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def is_utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _inside(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder.rstrip("/") + "/")


def used_by(
    snapshot: EstateSnapshot, pool: str, entries: Iterable[StorageEntry]
) -> dict[str, tuple[UsedBy, ...]]:
    """Each entry's users by its path, from the pool's VMs as last polled.

    A VM uses an entry when its ``vm.cfg`` lies in it (defined on it) or when one of its
    disks' sources is the entry or lies in it (a VM's folder holds its disks). A VM listed
    by two hosts (during a migration) counts once, by UUID.
    """
    paths = {posixpath.normpath(entry.path): entry for entry in entries}
    found: dict[str, dict[str, UsedBy]] = {}
    for host in snapshot.hosts:
        if host.pool != pool:
            continue
        for vm in host.vms:
            uses: list[tuple[str, UseMode]] = []
            if vm.config_path:
                folder = posixpath.dirname(posixpath.normpath(vm.config_path))
                uses.append((folder, UseMode.DEFINED))
            for disk in vm.disks:
                if disk.source and disk.source.startswith("/"):
                    mode = UseMode.READ_ONLY if disk.read_only else UseMode.READ_WRITE
                    uses.append((posixpath.normpath(disk.source), mode))
            for used_path, mode in uses:
                for path in _holders(used_path, paths):
                    users = found.setdefault(path, {})
                    previous = users.get(vm.uuid)
                    # A disk held rw outranks the folder it is defined in, ro below rw.
                    if previous is None or _RANK[mode] > _RANK[previous.mode]:
                        users[vm.uuid] = UsedBy(vm.name, vm.uuid, mode, vm.state, host.name)
    return {
        path: tuple(sorted(users.values(), key=lambda u: (u.vm, u.uuid)))
        for path, users in found.items()
    }


_RANK = {UseMode.DEFINED: 0, UseMode.READ_ONLY: 1, UseMode.READ_WRITE: 2}


def _holders(used: str, paths: Mapping[str, StorageEntry]) -> Iterable[str]:
    """The entries' paths that ``used`` is or lies in (walking up its folders)."""
    current = used
    while True:
        if current in paths:
            yield current
        parent = posixpath.dirname(current)
        if parent == current:
            return
        current = parent


def storage_rows(
    snapshot: EstateSnapshot,
    pool: str,
    entries: Iterable[StorageEntry],
    resources: Iterable[Resource],
) -> tuple[StorageRow, ...]:
    """The entries folded with the library: each entry with its record (by path) and its
    users; the library's records of files no longer on the storage after them. Ordered by
    kind (layout order), then name."""
    entry_list = list(entries)
    by_path = {r.path: r for r in resources if r.pool == pool}
    users = used_by(snapshot, pool, entry_list)
    rows = [
        StorageRow(
            e.kind,
            e.name,
            e.path,
            e,
            by_path.pop(e.path, None),
            users.get(posixpath.normpath(e.path), ()),
        )
        for e in entry_list
    ]
    rows.extend(StorageRow(r.kind, r.name, r.path, None, r) for r in by_path.values())
    order = {kind: index for index, kind in enumerate(FOLDERS)}
    rows.sort(key=lambda row: (order[row.kind], row.name, row.path))
    return tuple(rows)
