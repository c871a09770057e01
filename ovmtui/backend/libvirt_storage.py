"""A pool's shared storage through libvirt's storage API: a ``dir`` storage pool per folder
of Oracle VM's layout (``ovmtui-<pool>-<folder>``), its volumes listed, one deleted.

Every function here is called on the backend's worker thread with its open connection
(blocking libvirt calls, like the rest of ``backend/libvirt.py``) and raises libvirt's own
errors; the backend translates them. Defining the storage pools is a change apart
(``define_pools``), which the storage service journals before it runs; listing defines
nothing.
"""

from __future__ import annotations

import contextlib
import posixpath
import re
import shlex
import xml.etree.ElementTree as ET
from typing import Any

import libvirt

from ovmtui.backend.libvirt_errors import code
from ovmtui.backend.libvirt_xml import xml_text
from ovmtui.storage_model import FOLDERS, DiskFormat, ResourceKind, StorageEntry, StorageScan

_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]")

_FORMATS = {
    "raw": DiskFormat.RAW,
    "qcow2": DiskFormat.QCOW2,
    "iso": DiskFormat.ISO,
    "dir": DiskFormat.DIR,
}


def pool_name(pool: str, folder: str) -> str:
    """The libvirt storage pool of ``folder`` of ovmtui's ``pool``: ``ovmtui-<pool>-<folder>``
    (characters libvirt's names or a shell would trip on become ``_``)."""
    return f"ovmtui-{_UNSAFE.sub('_', pool)}-{folder}"


def pool_xml(name: str, path: str) -> str:
    return (
        f"<pool type='dir'><name>{xml_text(name)}</name>"
        f"<target><path>{xml_text(path)}</path></target></pool>"
    )


def started_pool(conn: Any, name: str, path: str, *, autostart: bool = False) -> Any:
    """The ``dir`` storage pool ``name`` over ``path``, started and refreshed: defined where
    missing (``autostart``: started with libvirtd from then on), its folder made where
    missing (a dir pool starts only on a folder that exists; build makes it, nothing else)."""
    try:
        found = conn.storagePoolLookupByName(name)
    except libvirt.libvirtError as exc:
        if code(exc) != libvirt.VIR_ERR_NO_STORAGE_POOL:
            raise
        found = conn.storagePoolDefineXML(pool_xml(name, path), 0)
        if autostart:
            found.setAutostart(1)
    if not found.isActive():
        with contextlib.suppress(libvirt.libvirtError):
            found.build(libvirt.VIR_STORAGE_POOL_BUILD_NO_OVERWRITE)
        found.create(0)
    found.refresh(0)
    return found


def define_command(uri: str, pool: str, root: str, folders: list[str]) -> str:
    """The equivalent ``virsh`` commands of ``define_pools``, shown and journaled."""
    commands = []
    for folder in folders:
        name = pool_name(pool, folder)
        path = posixpath.join(root, folder)
        commands.append(
            shlex.join(["virsh", "-c", uri, "pool-define-as", name, "dir", "--target", path])
        )
        commands.append(shlex.join(["virsh", "-c", uri, "pool-start", name]))
    return " && ".join(commands)


def pools_to_define(conn: Any, pool: str) -> list[str]:
    """The layout's folders that have no storage pool on this host yet, or an inactive one."""
    known = {p.name(): p for p in conn.listAllStoragePools(0)}
    folders = []
    for folder in FOLDERS.values():
        found = known.get(pool_name(pool, folder))
        if found is None or not found.isActive():
            folders.append(folder)
    return folders


def define_pools(conn: Any, pool: str, root: str, folders: list[str]) -> list[str]:
    """Define (and start) a ``dir`` pool for each folder; returns what could not be started,
    with why (a folder that is not there: libvirt does not create it)."""
    failed = []
    for folder in folders:
        name = pool_name(pool, folder)
        try:
            found = conn.storagePoolLookupByName(name)
        except libvirt.libvirtError:
            found = conn.storagePoolDefineXML(pool_xml(name, posixpath.join(root, folder)), 0)
        if not found.isActive():
            try:
                found.create(0)
            except libvirt.libvirtError as exc:
                failed.append(f"{folder}: {exc.get_error_message() or exc}")
    return failed


def list_pools(conn: Any, pool: str, root: str) -> StorageScan:
    """The volumes of every folder's storage pool (refreshed first): one listing a folder."""
    known = {p.name(): p for p in conn.listAllStoragePools(0)}
    entries: list[StorageEntry] = []
    missing: list[str] = []
    warnings: list[str] = []
    listings = 0
    for kind, folder in FOLDERS.items():
        found = known.get(pool_name(pool, folder))
        if found is None or not found.isActive():
            missing.append(folder)
            continue
        found.refresh(0)
        listings += 1
        for volume in found.listAllVolumes(0):
            try:
                entries.append(_entry(kind, volume))
            except (libvirt.libvirtError, ET.ParseError, ValueError) as exc:
                warnings.append(f"{folder}/{volume.name()}: {exc}")
    return StorageScan(tuple(entries), tuple(missing), tuple(warnings), commands=listings)


def _entry(kind: ResourceKind, volume: Any) -> StorageEntry:
    # One call a volume: the XML has capacity, allocation, format and times.
    root = ET.fromstring(volume.XMLDesc(0))  # noqa: S314 - from our own libvirt connection
    vol_type = root.get("type")
    capacity = _int(root.findtext("capacity"))
    allocation = _int(root.findtext("allocation"))
    fmt_el = root.find("target/format")
    fmt = _FORMATS.get(fmt_el.get("type", "")) if fmt_el is not None else None
    mtime_text = root.findtext("target/timestamps/mtime")
    path = root.findtext("target/path") or volume.path()
    is_dir = vol_type == "dir" or fmt is DiskFormat.DIR
    return StorageEntry(
        kind,
        root.findtext("name") or volume.name(),
        path,
        capacity,
        allocation,
        DiskFormat.DIR if is_dir else fmt,
        float(mtime_text) if mtime_text else None,
        is_dir=is_dir,
    )


def _int(text: str | None) -> int | None:
    return int(text) if text and text.strip().isdigit() else None


def delete_volume(conn: Any, pool: str, entry: StorageEntry) -> None:
    folder = entry.kind.folder
    storage_pool = conn.storagePoolLookupByName(pool_name(pool, folder))
    storage_pool.refresh(0)
    volume = storage_pool.storageVolLookupByName(posixpath.basename(entry.path.rstrip("/")))
    if entry.is_dir:
        _empty_folder(conn, pool, entry)
    volume.delete(0)


def folder_pool_name(pool: str, entry: StorageEntry) -> str:
    """The transient storage pool over one folder of the layout (a template's):
    ``ovmtui-<pool>-<folder>-<name>``."""
    return pool_name(pool, f"{entry.kind.folder}-{posixpath.basename(entry.path.rstrip('/'))}")


def _empty_folder(conn: Any, pool: str, entry: StorageEntry) -> None:
    """The files of a folder volume (libvirt removes a ``dir`` volume with ``rmdir``, which
    wants it empty), through a transient storage pool over it. A folder holding folders is
    refused, nothing of it removed."""
    path = entry.path.rstrip("/")
    inner = conn.storagePoolCreateXML(pool_xml(folder_pool_name(pool, entry), path), 0)
    try:
        inner.refresh(0)
        volumes = inner.listAllVolumes(0)
        if any(v.info()[0] == libvirt.VIR_STORAGE_VOL_DIR for v in volumes):
            raise libvirt.libvirtError(f"{path} holds folders of its own: remove it by hand")
        for volume in volumes:
            volume.delete(0)
    finally:
        inner.destroy()


def delete_command(uri: str, pool: str, entry: StorageEntry) -> str:
    name = posixpath.basename(entry.path.rstrip("/"))
    delete = ["virsh", "-c", uri, "vol-delete", "--pool", pool_name(pool, entry.kind.folder), name]
    if not entry.is_dir:
        return shlex.join(delete)
    # A folder: its files first, through a transient pool over it (see _empty_folder).
    inner = folder_pool_name(pool, entry)
    path = entry.path.rstrip("/")
    return " && ".join(
        [
            shlex.join(["virsh", "-c", uri, "pool-create-as", inner, "dir", "--target", path]),
            f"for v in $({shlex.join(['virsh', '-c', uri, 'vol-list', '--name', inner])}); "
            f'do {shlex.join(["virsh", "-c", uri, "vol-delete", "--pool", inner])} "$v"; done',
            shlex.join(["virsh", "-c", uri, "pool-destroy", inner]),
            shlex.join(delete),
        ]
    )
