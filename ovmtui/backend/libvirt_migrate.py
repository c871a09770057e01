"""Migration over libvirt: what a move needs (read on the source) and the move itself.

Split from ``libvirt.py`` (the connection, polls, actions), which owns the connections and
hands this module their ``virConnect`` objects; like it, this module keeps every libvirt
object inside: ``libvirt.py`` turns the ``libvirtError``s raised here into ``ovmtui.errors``.
A target's answers to what a move needs are ``libvirt_answers.py``'s.

Which API. ``dom.migrate3(target_conn, …)``, libvirt's managed direct migration: ovmtui
holds both connections and drives the phases (begin on the source, prepare on the target,
perform, finish, confirm); the memory itself flows between the two hypervisors directly.
Peer-to-peer (``migrateToURI3`` with ``VIR_MIGRATE_PEER2PEER``) would have the source's
libvirtd open its own connection to the target, by a URI valid *from the source host*:
the operator's URI (``qemu+ssh://root@127.0.0.1:22202/…`` on the lab, a jump host
elsewhere) is valid from ovmtui's machine, not necessarily from there, and the source would
need credentials to the target. ``migrate3`` needs neither, uses the target backend's
connection as it is, and matches ``virsh migrate`` without ``--p2p``: the command shown.
Its cost: ovmtui must stay connected until the migration ends (a lost client fails it and
the VM stays on the source).

Threads. ``migrate3`` blocks for the whole move, so it runs on a thread of its own, not on
the connection's worker: the source's polls go on meanwhile (the table shows the VM
migrating), bounded by their own timeout, never by the migration's length. A second
thread reads ``jobStats()`` every ``STATS_INTERVAL_S`` and the loop hands each reading to
``progress``; on cancel it calls ``abortJob()``. Both are libvirt calls on connections other
threads use: libvirt's connections are thread-safe and run concurrent calls.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import time
from collections.abc import Callable, Mapping
from typing import Any

import libvirt

from ovmtui.backend._worker import DaemonWorker
from ovmtui.backend.libvirt_errors import code
from ovmtui.backend.libvirt_xml import migration_needs
from ovmtui.model import MigrationNeeds, MigrationProgress

STATS_INTERVAL_S = 0.5
_FIRST_READING_S = 0.1
# After a cancel: how often to retry an abort that came before the job began, and how long
# to wait for migrate3 to give up once aborted (it takes ~0.1 s on the lab).
_ABORT_RETRY_S = 0.2
_ABORT_WAIT_S = 60.0

# Every migration: the VM is defined where it runs, and only there (without these the
# target's domain is transient and the source keeps a definition of a VM running elsewhere,
# which a start there would run twice on the same disks).
_DEFINED_WHERE_IT_RUNS: int = libvirt.VIR_MIGRATE_PERSIST_DEST | libvirt.VIR_MIGRATE_UNDEFINE_SOURCE
# UNSAFE: libvirt refuses a live migration whose disks use the host's page cache unless it
# recognises their file system as shared (NFS, OCFS2, GFS2, Ceph…): "Unsafe migration:
# Migration without shared storage is unsafe". The lab's shared directory (.lab/ovs, OVM's
# /OVS there) is a plain local directory both hosts see, which libvirt cannot recognise as
# shared. ovmtui's own pre-flight checks what libvirt's check stands for: every disk on the
# pool's declared shared storage (PoolConfig.shared_storage) and visible on the target.
_UNSAFE: int = libvirt.VIR_MIGRATE_UNSAFE

_LIVE: int = libvirt.VIR_MIGRATE_LIVE
_OFFLINE: int = libvirt.VIR_MIGRATE_OFFLINE

# --------------------------------------------------------------------------- pure helpers


def migration_flags(*, live: bool, running: bool) -> int:
    """libvirt's flags for a move: live (the guest runs throughout), paused (``live`` off,
    a running guest: it stops while its memory is copied) or offline (a shut-off guest:
    its definition alone moves)."""
    flags = _DEFINED_WHERE_IT_RUNS | _UNSAFE
    if not running:
        return flags | _OFFLINE
    return flags | _LIVE if live else flags


def migration_argv(
    source_uri: str, target_uri: str, name: str, *, live: bool, running: bool
) -> list[str]:
    """``virsh migrate`` doing what ``migration_flags`` asks, the same way (not ``--p2p``)."""
    argv = ["virsh", "-c", source_uri, "migrate"]
    if not running:
        argv.append("--offline")
    elif live:
        argv.append("--live")
    # Named, not positional: a name or URI that starts with "-" stays a value.
    argv += [
        "--persistent",
        "--undefinesource",
        "--unsafe",
        "--domain",
        name,
        "--desturi",
        target_uri,
    ]
    return argv


def progress_from_stats(stats: Mapping[str, Any], elapsed_s: float) -> MigrationProgress | None:
    """One reading from ``jobStats()``, or None when no job runs (before the migration job
    begins and after it ends, libvirt reports ``type`` NONE and nothing else)."""
    if stats.get("type", libvirt.VIR_DOMAIN_JOB_NONE) == libvirt.VIR_DOMAIN_JOB_NONE:
        return None

    def number(*keys: str) -> int | None:
        for key in keys:
            value = stats.get(key)
            if isinstance(value, int):
                return value
        return None

    bps = number("memory_bps")
    dirty = number("memory_dirty_rate")
    libvirt_ms = number("time_elapsed")
    return MigrationProgress(
        elapsed_s=libvirt_ms / 1000 if libvirt_ms is not None else elapsed_s,
        # Memory only: with shared storage no disk is copied (data_* adds the disks).
        processed_bytes=number("memory_processed", "data_processed"),
        remaining_bytes=number("memory_remaining", "data_remaining"),
        total_bytes=number("memory_total", "data_total"),
        bytes_per_s=float(bps) if bps is not None else None,
        dirty_pages_per_s=float(dirty) if dirty is not None else None,
    )


# --------------------------------------------------------------------------- on the source


def read_needs(conn: Any, uuid: str) -> MigrationNeeds:
    """On the source connection's worker: the domain's XML (the live one when it runs, which
    names a host-model guest's expanded CPU) and the host's capabilities (its CPU, for a
    guest whose CPU is the host's). Raises ``libvirtError``, ``ParseError``."""
    xml = str(conn.lookupByUUIDString(uuid).XMLDesc(0))
    return migration_needs(xml, str(conn.getCapabilities()))


# --------------------------------------------------------------------------- the move


async def run_migration(
    source_conn: Any,
    target_conn: Any,
    uuid: str,
    *,
    live: bool,
    progress: Callable[[MigrationProgress], None] | None,
    label: str,
    started: Callable[[concurrent.futures.Future[None]], None],
) -> None:
    """Move the domain ``uuid`` from ``source_conn``'s host to ``target_conn``'s.

    ``started`` is told of the thread's future as soon as ``migrate3`` is submitted (the
    backend keeps both connections open until it is done). Cancelled: ``abortJob()``, then
    wait for ``migrate3`` to give up (the guest goes on running on the source), then the
    cancellation goes on. An abort that comes too late (the move had finished) leaves the
    VM on the target. Raises ``libvirtError`` with the host's words.
    """
    loop = asyncio.get_running_loop()
    mover = DaemonWorker(f"migrate-{label}")
    watcher = DaemonWorker(f"migrate-stats-{label}")
    began = time.monotonic()

    def move() -> None:
        dom = source_conn.lookupByUUIDString(uuid)
        dom.migrate3(target_conn, {}, migration_flags(live=live, running=bool(dom.isActive())))

    submitted = mover.submit(move)
    started(submitted)
    moved = asyncio.wrap_future(submitted, loop=loop)
    watching = (
        loop.create_task(_watch(watcher, source_conn, uuid, progress, began))
        if progress is not None
        else None
    )
    try:
        try:
            await asyncio.shield(moved)
        except asyncio.CancelledError:
            if not moved.done():
                await _abort(watcher, source_conn, uuid, moved)
            raise
    finally:
        failure = await _stop(watching)
        mover.shutdown(wait=False)
        watcher.shutdown(wait=False)
    if failure is not None:
        raise failure  # the progress callback's own error, once the move is done


async def _watch(
    watcher: DaemonWorker,
    conn: Any,
    uuid: str,
    progress: Callable[[MigrationProgress], None],
    began: float,
) -> None:
    """Every ``STATS_INTERVAL_S``: one ``jobStats()`` on the watcher thread, its reading
    handed to ``progress`` here, on the loop."""
    dom = await asyncio.wrap_future(watcher.submit(conn.lookupByUUIDString, uuid))
    seen = False
    while True:
        # Asked after a pause, never as the move begins: the first reading would only say
        # there is no job yet, and the call then competes with migrate3's own start.
        await asyncio.sleep(STATS_INTERVAL_S if seen else _FIRST_READING_S)
        try:
            stats = await asyncio.wrap_future(watcher.submit(dom.jobStats))
        except libvirt.libvirtError:
            stats = {}  # between phases, or gone: migrate3 says what happened
        reading = progress_from_stats(stats, time.monotonic() - began)
        if reading is not None:
            progress(reading)
            seen = True


async def _abort(watcher: DaemonWorker, conn: Any, uuid: str, moved: asyncio.Future[None]) -> None:
    deadline = time.monotonic() + _ABORT_WAIT_S

    def abort() -> bool:
        """True once the job is aborted; False while there is none (yet or any more)."""
        try:
            conn.lookupByUUIDString(uuid).abortJob()
        except libvirt.libvirtError as exc:
            if code(exc) in (libvirt.VIR_ERR_OPERATION_INVALID, libvirt.VIR_ERR_NO_DOMAIN):
                return False
            raise
        return True

    while not moved.done() and time.monotonic() < deadline:
        try:
            if await asyncio.wrap_future(watcher.submit(abort)):
                break
        except libvirt.libvirtError:
            break  # the abort itself failed: nothing more to try, migrate3 ends as it may
        # No job yet (migrate3 still in its begin phase) or none any more: try again.
        await asyncio.wait([moved], timeout=_ABORT_RETRY_S)
    await asyncio.wait([moved], timeout=max(0.0, deadline - time.monotonic()))
    if moved.done() and not moved.cancelled():
        moved.exception()  # "canceled by client": expected, retrieved so it is not logged


async def _stop(task: asyncio.Task[None] | None) -> BaseException | None:
    if task is None:
        return None
    task.cancel()
    results = await asyncio.gather(task, return_exceptions=True)
    result = results[0]
    return None if isinstance(result, asyncio.CancelledError) else result
