"""An import into a libvirt host's storage: a new volume in the ``dir`` storage pool of its
folder (``ovmtui-<pool>-<folder>``, as the storage listing names them; defined and started
when missing), filled with ``storageVolUpload`` through a libvirt stream.

Every function here runs on the backend's worker thread with its open connection (blocking
libvirt calls, like the rest of ``backend/libvirt.py``) and raises libvirt's own errors or
``ImportFailed``; the backend translates the former.
"""

from __future__ import annotations

import contextlib
import posixpath
from typing import Any

import libvirt

from ovmtui import format as fmt
from ovmtui.backend.libvirt_storage import pool_name, started_pool
from ovmtui.backend.libvirt_xml import xml_text
from ovmtui.errors import ActionRefused
from ovmtui.import_plan import ImportFailed, ImportPlan


def storage_pool(conn: Any, pool: str, plan: ImportPlan) -> Any:
    """The started ``dir`` storage pool of the plan's folder, defined when missing."""
    return started_pool(conn, pool_name(pool, posixpath.basename(plan.folder)), plan.folder)


def create_volume(conn: Any, pool: str, plan: ImportPlan, size: int) -> tuple[Any, Any]:
    """A new raw volume of ``size`` bytes under the plan's final name, after the checks:
    the name free, the size within the pool's free space. Returns (pool, volume)."""
    found = storage_pool(conn, pool, plan)
    volume = posixpath.basename(plan.final)
    try:
        found.storageVolLookupByName(volume)
    except libvirt.libvirtError:
        pass  # not there: the name is free
    else:
        raise ActionRefused(f"{plan.final} exists already: delete it or import under another name")
    available = int(found.info()[3])
    if size > available:
        raise ImportFailed(
            f"{plan.url} is {fmt.size(size)} ({size} bytes); the storage has "
            f"{fmt.size(available)} free in {plan.folder}"
        )
    xml = (
        f"<volume><name>{xml_text(volume)}</name><capacity unit='bytes'>{size}</capacity>"
        "<allocation unit='bytes'>0</allocation><target><format type='raw'/></target></volume>"
    )
    return found, found.createXML(xml, 0)


def open_upload(conn: Any, volume: Any, size: int) -> Any:
    stream = conn.newStream(0)
    volume.upload(stream, 0, size, 0)
    return stream


def send(stream: Any, data: bytes) -> None:
    view = memoryview(data)
    while view:
        sent = stream.send(bytes(view))
        if sent < 0:
            raise ImportFailed("libvirt's stream refused the data")
        view = view[sent:]


def finish(stream: Any) -> None:
    stream.finish()


def discard(stream: Any | None, volume: Any | None) -> None:
    """After a failure or a cancel: the stream aborted, the volume deleted (never raises)."""
    if stream is not None:
        with contextlib.suppress(libvirt.libvirtError):
            stream.abort()
    if volume is not None:
        with contextlib.suppress(libvirt.libvirtError):
            volume.delete(0)
