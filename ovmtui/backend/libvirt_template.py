"""A template's archive into a libvirt host's storage, where no folder can be renamed into
place and no file can be written but a volume: ovmtui fetches the archive into a private
temporary file (hashed on the way), checks every member before anything is made on the host,
then makes ``seed_pool/<name>/`` as a transient ``dir`` storage pool (built: the folder
created, never over an existing one) and streams each file of the template into a volume of
it with ``storageVolUpload``. A failure or a cancel deletes the volumes it made and the
folder. The folder of an existing template is deleted the same way (``delete_folder``): a
``dir`` volume is removed with ``rmdir``, which wants it empty.

The checks are those of an import over SSH (``ssh_import_scripts.archive_refusal``): no
absolute path or ``..``, no link, no device, a ``vm.cfg`` at the top or in the one folder
(stripped). A storage pool holds plain files, so a template with folders of its own is
refused too, saying so.

The libvirt calls here run on the backend's worker thread (``call``), each bounded by its
timeout; so does the reading of the temporary file, a piece at a time.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import posixpath
import tarfile
import tempfile
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import IO, Any, TypeVar

import libvirt

from ovmtui import format as fmt
from ovmtui.backend.libvirt_import import send
from ovmtui.backend.libvirt_storage import pool_name, pool_xml, started_pool
from ovmtui.backend.libvirt_xml import xml_text
from ovmtui.backend.url_fetch import fetch
from ovmtui.errors import ActionRefused
from ovmtui.import_plan import (
    Imported,
    ImportFailed,
    ImportPlan,
    bad_member,
    strip_prefix,
)
from ovmtui.import_progress import Phase, RateMeter
from ovmtui.storage_model import FOLDERS, ResourceKind

_T = TypeVar("_T")
Call = Callable[[Callable[[], _T]], Awaitable[_T]]
Report = Callable[[Phase, int, int | None, float | None], None]

PIECE = 1024 * 1024
REPORT_S = 0.5


@dataclass(frozen=True, slots=True)
class Member:
    """A file of the template: its name in the template's folder, its size, the archive's
    member it comes from."""

    name: str
    size: int
    info: tarfile.TarInfo


def template_members(archive: tarfile.TarFile) -> list[Member]:
    """The files a template archive puts in ``seed_pool/<name>/``; ``ImportFailed`` says why
    it is not unpacked (see the module docstring)."""
    infos = archive.getmembers()
    if not infos:
        raise ImportFailed("the archive is empty")
    for info in infos:
        why = bad_member(info.name)
        if why is not None:
            raise ImportFailed(f"the archive's member {why}")
    strip = strip_prefix([info.name for info in infos])
    files: list[Member] = []
    for info in infos:
        parts = info.name.removeprefix("./").strip("/").split("/")
        parts = [p for p in parts if p not in ("", ".")]
        name = "/".join(parts[strip:])
        if info.issym() or info.islnk():
            raise ImportFailed(
                f"the archive's member {info.name!r} is a link: libvirt's storage holds plain "
                "files only"
            )
        if info.isdir():
            if name:
                raise ImportFailed(
                    f"the archive's folder {info.name!r}: libvirt's storage holds plain files, "
                    "so a template with folders of its own cannot be made there"
                )
            continue
        if not info.isfile():
            raise ImportFailed(f"the archive's member {info.name!r} is a device or a pipe")
        if "/" in name:
            raise ImportFailed(
                f"the archive's member {info.name!r} is in a folder of its own: libvirt's "
                "storage holds plain files, so it cannot be made there"
            )
        if any(m.name == name for m in files):
            raise ImportFailed(f"the archive holds {name!r} twice")
        files.append(Member(name, info.size, info))
    if not any(m.name == "vm.cfg" for m in files):
        raise ImportFailed(
            "the archive holds no vm.cfg (at its top or in its one folder): not a template"
        )
    return files


def folder_pool_name(pool: str, folder: str) -> str:
    """The transient storage pool over a template's folder (``libvirt_storage``'s name)."""
    return pool_name(pool, f"{FOLDERS[ResourceKind.TEMPLATE]}-{posixpath.basename(folder)}")


# -- worker calls ------------------------------------------------------------------------------


def seed_pool(conn: Any, pool: str, root: str) -> Any:
    """The started, refreshed storage pool of ``seed_pool`` (defined, built where missing)."""
    folder = FOLDERS[ResourceKind.TEMPLATE]
    return started_pool(conn, pool_name(pool, folder), posixpath.join(root, folder))


def check_free(seed: Any, plan: ImportPlan, size: int | None) -> None:
    """The template's name free in ``seed_pool``, ``size`` (when known) within its free space."""
    name = posixpath.basename(plan.final)
    try:
        seed.storageVolLookupByName(name)
    except libvirt.libvirtError:
        pass
    else:
        raise ActionRefused(f"{plan.final} exists already: delete it or import under another name")
    available = int(seed.info()[3])
    if size is not None and size > available:
        raise ImportFailed(
            f"the template is {fmt.size(size)} ({size} bytes); the storage has "
            f"{fmt.size(available)} free in {posixpath.dirname(plan.final)}"
        )


def make_folder(conn: Any, seed: Any, pool: str, plan: ImportPlan) -> Any:
    """The template's folder made as a transient storage pool (built: created). Checked
    free again in the same call first: a folder that exists is never taken over (libvirt's
    no-overwrite build applies to formatted devices, not to a ``dir`` pool)."""
    seed.refresh(0)
    check_free(seed, plan, None)
    xml = pool_xml(folder_pool_name(pool, plan.final), plan.final)
    return conn.storagePoolCreateXML(xml, libvirt.VIR_STORAGE_POOL_CREATE_WITH_BUILD)


def new_volume(folder_pool: Any, name: str, size: int) -> Any:
    xml = (
        f"<volume><name>{xml_text(name)}</name><capacity unit='bytes'>{size}</capacity>"
        "<allocation unit='bytes'>0</allocation><target><format type='raw'/></target></volume>"
    )
    return folder_pool.createXML(xml, 0)


def send_piece(stream: Any, source: IO[bytes]) -> int:
    """One piece of ``source`` into ``stream``; its length (0: the end)."""
    data = source.read(PIECE)
    if data:
        send(stream, data)
    return len(data)


def remove_folder(conn: Any, pool: str, folder: str, folder_pool: Any) -> None:
    """The files the import made in ``folder``, then the folder (never raises: a clean-up)."""
    with contextlib.suppress(libvirt.libvirtError):
        folder_pool.refresh(0)
        for volume in folder_pool.listAllVolumes(0):
            with contextlib.suppress(libvirt.libvirtError):
                volume.delete(0)
    with contextlib.suppress(libvirt.libvirtError):
        folder_pool.destroy()
    with contextlib.suppress(libvirt.libvirtError):
        seed = conn.storagePoolLookupByName(pool_name(pool, FOLDERS[ResourceKind.TEMPLATE]))
        seed.refresh(0)
        seed.storageVolLookupByName(posixpath.basename(folder)).delete(0)


# -- the import --------------------------------------------------------------------------------


async def import_template(
    conn: Any,
    call: Call[Any],
    pool: str,
    plan: ImportPlan,
    report: Report,
    clock: Callable[[], float],
) -> Imported:
    """``plan`` (a template's archive) into ``seed_pool/<name>/`` of the host of ``conn``;
    see the module docstring. Raises ``ImportFailed``, ``ActionRefused``, libvirt's errors."""
    report("checking", 0, None, None)
    seed = await call(lambda: seed_pool(conn, pool, plan.storage))
    await call(lambda: check_free(seed, plan, None))
    with tempfile.TemporaryDirectory(prefix="ovmtui-template-") as scratch:
        local = Path(scratch) / "archive"
        size, digest = await _download(plan, local, report, clock, seed, call)
        if plan.sha256 is not None and digest != plan.sha256:
            raise ImportFailed(
                f"checksum mismatch: {plan.url} has SHA-256 {digest}, not {plan.sha256} as given"
            )
        report("verifying", size, size, None)
        archive = await asyncio.to_thread(_open_archive, local, plan.url)
        try:
            members = await asyncio.to_thread(template_members, archive)
            total = sum(m.size for m in members)
            await call(lambda: check_free(seed, plan, total))
            await _unpack(conn, call, seed, pool, plan, archive, members, total, report, clock)
        finally:
            archive.close()
    report("done", size, size, None)
    return Imported(plan.final, size, digest, "ovmtui")


def _open_archive(path: Path, url: str) -> tarfile.TarFile:
    try:
        return tarfile.open(path, "r:*")
    except (tarfile.TarError, OSError) as exc:
        raise ImportFailed(f"{url} is not an archive tar can read: {exc}") from None


async def _download(
    plan: ImportPlan,
    local: Path,
    report: Report,
    clock: Callable[[], float],
    seed: Any,
    call: Call[Any],
) -> tuple[int, str]:
    digest = hashlib.sha256()
    meter = RateMeter()
    done = 0
    last = float("-inf")
    async with fetch(plan.url) as download:
        if download.size is not None:
            await call(lambda: check_free(seed, plan, download.size))
        with local.open("wb") as out:
            async for chunk in download.chunks():
                digest.update(chunk)
                await asyncio.to_thread(out.write, chunk)
                done += len(chunk)
                now = clock()
                if now - last >= REPORT_S:
                    last = now
                    report("downloading", done, download.size, meter.add(now, done))
    if download.size is not None and done != download.size:
        raise ImportFailed(f"{plan.url}: {done} bytes came of the {download.size} announced")
    return done, digest.hexdigest()


async def _unpack(
    conn: Any,
    call: Call[Any],
    seed: Any,
    pool: str,
    plan: ImportPlan,
    archive: tarfile.TarFile,
    members: list[Member],
    total: int,
    report: Report,
    clock: Callable[[], float],
) -> None:
    folder_pool: Any = None
    stream: Any = None
    written = 0
    meter = RateMeter()
    last = float("-inf")
    try:
        folder_pool = await call(lambda: make_folder(conn, seed, pool, plan))
        for member in members:
            volume = await call(partial(new_volume, folder_pool, member.name, member.size))
            if member.size == 0:
                continue
            source = archive.extractfile(member.info)
            assert source is not None  # a regular file (template_members)
            stream = await call(partial(_open_upload, conn, volume, member.size))
            while sent := await call(partial(send_piece, stream, source)):
                written += sent
                now = clock()
                if now - last >= REPORT_S:
                    last = now
                    report("unpacking", written, total, meter.add(now, written))
            await call(stream.finish)
            stream = None
        report("placing", written, total, None)
        await call(lambda: folder_pool.destroy())  # the files stay: a transient pool's end
    except BaseException:
        with contextlib.suppress(Exception, asyncio.CancelledError):
            await call(lambda: _abort(stream))
        if folder_pool is not None:  # else nothing was made: an existing folder is not ours
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await call(lambda: remove_folder(conn, pool, plan.final, folder_pool))
        raise


def _open_upload(conn: Any, volume: Any, size: int) -> Any:
    stream = conn.newStream(0)
    volume.upload(stream, 0, size, 0)
    return stream


def _abort(stream: Any | None) -> None:
    if stream is not None:
        with contextlib.suppress(libvirt.libvirtError):
            stream.abort()
