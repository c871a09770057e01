"""Shared disks over libvirt: the ``sharedDisk`` folder as a ``dir`` storage pool, its raw
volumes, and disks attached to and detached from domains.

Split from ``libvirt.py``, which runs these functions on its connection's worker thread and
turns their ``libvirtError``s into ``ovmtui.errors``. The folder ``<shared_storage>/sharedDisk``
is the storage pool ``ovmtui-<pool>-sharedDisk`` (the name the storage screen uses too),
defined, built and started here when missing, refreshed before each look-up so a file made
by another host is seen. A volume is created with ``storageVolCreateXML`` (raw; allocated
when asked) and never over an existing one. A disk is attached with ``attachDeviceFlags``
to the domain's persistent config (and to the running guest for a hot-plug, asked for
explicitly); a shared one with ``<shareable/>`` and ``cache='none'``, which QEMU needs to
let two guests write the same file.
"""

from __future__ import annotations

import posixpath
import shlex
from typing import Any

import libvirt

from ovmtui.backend.libvirt_storage import pool_name as storage_pool_name
from ovmtui.backend.libvirt_storage import started_pool
from ovmtui.backend.libvirt_xml import xml_attr, xml_text
from ovmtui.errors import ActionFailed
from ovmtui.model import Disk
from ovmtui.storage_model import FOLDERS, ResourceKind


def pool_name(pool: str) -> str:
    """The storage pool of an ovmtui pool's ``sharedDisk`` folder."""
    return storage_pool_name(pool, FOLDERS[ResourceKind.SHARED_DISK])


def volume_xml(name: str, size_bytes: int, *, allocate: bool) -> str:
    allocation = size_bytes if allocate else 0
    return (
        f"<volume><name>{xml_text(name)}</name>"
        f"<capacity unit='bytes'>{size_bytes}</capacity>"
        f"<allocation unit='bytes'>{allocation}</allocation>"
        "<target><format type='raw'/></target></volume>"
    )


def disk_xml(disk: Disk) -> str:
    """The ``<disk>`` of a raw file; shareable: ``<shareable/>`` and ``cache='none'``."""
    cache = " cache='none'" if disk.shareable else ""
    mode = "<readonly/>" if disk.read_only else ("<shareable/>" if disk.shareable else "")
    bus = disk.bus or "virtio"
    return (
        "<disk type='file' device='disk'>"
        f"<driver name='qemu' type='raw'{cache}/>"
        f"<source file={xml_attr(disk.source or '')}/>"
        f"<target dev={xml_attr(disk.target)} bus={xml_attr(bus)}/>"
        f"{mode}</disk>"
    )


def disk_command(uri: str, vm: str, disk: Disk, *, attach: bool, live: bool) -> str:
    """``virsh attach-disk …`` / ``detach-disk …``, what the operator would type."""
    scope = ["--config", "--live"] if live else ["--config"]
    if not attach:
        return shlex.join(["virsh", "-c", uri, "detach-disk", vm, disk.target, *scope])
    argv = ["virsh", "-c", uri, "attach-disk", vm, disk.source or "", disk.target]
    argv += ["--driver", "qemu", "--subdriver", "raw", "--targetbus", disk.bus or "virtio"]
    if disk.read_only:
        argv += ["--mode", "readonly"]
    elif disk.shareable:
        argv += ["--mode", "shareable", "--cache", "none"]
    return shlex.join([*argv, *scope])


def create_command(uri: str, pool: str, path: str, size_bytes: int, *, allocate: bool) -> str:
    argv = ["virsh", "-c", uri, "vol-create-as", pool_name(pool), posixpath.basename(path)]
    argv += [str(size_bytes), "--format", "raw"]
    if not allocate:
        argv += ["--allocation", "0"]
    return shlex.join(argv)


def delete_command(uri: str, path: str) -> str:
    return shlex.join(["virsh", "-c", uri, "vol-delete", path])


# -- in the worker --------------------------------------------------------------------------


def storage_pool(conn: Any, pool: str, directory: str) -> Any:
    """The folder's storage pool, defined, built, started and refreshed as needed."""
    return started_pool(conn, pool_name(pool), directory, autostart=True)


def create_volume(conn: Any, pool: str, path: str, size_bytes: int, *, allocate: bool) -> str:
    directory, file_name = posixpath.split(path)
    storage = storage_pool(conn, pool, directory)
    if file_name in storage.listVolumes():
        raise ActionFailed(f"{path} exists already: not overwritten")
    volume = storage.createXML(volume_xml(file_name, size_bytes, allocate=allocate), 0)
    return str(volume.path())


def delete_volume(conn: Any, pool: str, path: str) -> None:
    directory, file_name = posixpath.split(path)
    storage = storage_pool(conn, pool, directory)
    if file_name not in storage.listVolumes():
        raise ActionFailed(f"{path} does not exist")
    storage.storageVolLookupByName(file_name).delete(0)


def change_disk(conn: Any, uuid: str, disk: Disk, *, attach: bool, live: bool) -> None:
    flags = libvirt.VIR_DOMAIN_AFFECT_CONFIG
    if live:
        flags |= libvirt.VIR_DOMAIN_AFFECT_LIVE
    domain = conn.lookupByUUIDString(uuid)
    if attach:
        domain.attachDeviceFlags(disk_xml(disk), flags)
    else:
        domain.detachDeviceFlags(disk_xml(disk), flags)
