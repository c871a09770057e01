"""The repository: one SQLite file holding pools, hosts, last-known state and the audit journal.

Opened once by the app (``Repository.open``), shared with other ovmtui processes through WAL
and a busy timeout. Opening refuses, without touching the file, anything that is not an
ovmtui repository this version can use: a non-SQLite file, a damaged database, a database of
another program, or one written by a newer ovmtui. Methods take and return domain objects.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import os
import random
import socket
import sqlite3
import time
import uuid
from collections.abc import AsyncIterator, Callable, Collection, Iterable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Literal

import aiosqlite

from ovmtui.config import EstateConfig
from ovmtui.errors import RepositoryError
from ovmtui.model import (
    DefinitionKind,
    Disk,
    EstateSnapshot,
    HostFacts,
    HostKey,
    HostRole,
    HostStatus,
    Nic,
    Vm,
    VmState,
)
from ovmtui.storage_model import Resource, ResourceKind, ResourceStatus
from ovmtui.store import definitions
from ovmtui.store import resources as _resources
from ovmtui.store.definitions import (
    DefinitionChanges,
    DefinitionIndex,
    DefinitionPlace,
    DefinitionVersion,
)
from ovmtui.store.drift import DriftedVm
from ovmtui.store.journal import (
    FIELDS,
    JournalEntry,
    JournalRecord,
    JournalVerdict,
    Result,
    verify_chain,
)
from ovmtui.store.schema import (
    BUSY_TIMEOUT_MS,
    SQLITE_CANTOPEN,
    SQLITE_FULL,
    SQLITE_IOERR,
    SQLITE_READONLY,
    check_database,
    check_file,
    describe_error,
    fetch_rows,
    fetch_value,
    migrate,
    sqlite_code,
    sqlite_uri,
)

_UPSERT_HOST_STATE = """
INSERT INTO host_state (pool, name, reachable, error, taken_at, failed_at, facts)
VALUES (?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (pool, name) DO UPDATE SET
    reachable = excluded.reachable,
    error = excluded.error,
    failed_at = excluded.failed_at,
    taken_at = COALESCE(excluded.taken_at, host_state.taken_at),
    facts = COALESCE(excluded.facts, host_state.facts)
"""

_UPSERT_VM = """
INSERT INTO vm_state (uuid, pool, host, name, state, vcpus, memory_mib, max_memory_mib,
                      domain_id, started_at, data, seen_at)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (uuid) DO UPDATE SET
    pool = excluded.pool, host = excluded.host, name = excluded.name, state = excluded.state,
    vcpus = excluded.vcpus, memory_mib = excluded.memory_mib,
    max_memory_mib = excluded.max_memory_mib, domain_id = excluded.domain_id,
    started_at = excluded.started_at, data = excluded.data, seen_at = excluded.seen_at,
    drift_since = NULL
"""

# Recorded as active, reported by no host now: kept and flagged, not deleted (see drifted()).
_MARK_DRIFT = """
UPDATE vm_state SET drift_since = coalesce(drift_since, ?) WHERE uuid = ? AND state IN ({})
""".format(", ".join(f"'{state.value}'" for state in VmState if state.is_active))

SELECT_RECORD = f"SELECT {', '.join(FIELDS)} FROM journal"  # noqa: S608 (constant columns)


class Repository:
    """An open repository. Create with ``await Repository.open(path)``; ``await close()``."""

    def __init__(
        self, path: Path, db: aiosqlite.Connection, identity: str, *, read_only: bool = False
    ) -> None:
        self.path = path
        # Made once when the repository was created; carried by its backups (see schema _V3).
        self.identity = identity
        # Opened for reading only: every write raises RepositoryError instead of happening.
        self.read_only = read_only
        self._db = db
        self._lock = asyncio.Lock()  # one transaction at a time on this connection
        self._saved_generation: int | None = None
        # VMs this process saw on a host: when one goes, the host said so; that is a change,
        # not drift. Drift is what was recorded before (another run, a restore) and is
        # reported by no host now.
        self._seen_live: set[str] = set()
        self._closed = False

    # -- opening and closing ----------------------------------------------------------------

    @classmethod
    async def open(cls, path: Path, *, read_only: bool = False) -> Repository:
        """Open (creating or migrating it when needed), or with ``read_only`` only read it.

        A read-only open writes nothing at all, not even SQLite's WAL index when the
        directory allows it not: it is what read-only commands use, so that they work on a
        full disk or a file the process may not write.
        """
        path = Path(path)
        if read_only:
            try:
                return await cls._open_read_only(path)
            except _NeedsUpgrade as exc:
                # Written by an older ovmtui: upgrade it once (this writes), then only read.
                try:
                    upgraded = await cls.open(path)
                except RepositoryError as why:
                    raise RepositoryError(f"{exc}: {why}") from None
                upgraded.read_only = True
                return upgraded
        await asyncio.to_thread(check_file, path)
        deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
        while True:
            try:
                return await cls._open_once(path)
            except sqlite3.OperationalError as exc:
                # Two processes creating the same file (or switching it to WAL) at once can
                # deadlock on SQLite's locks, and SQLite then answers "locked" at once
                # instead of waiting: start again after a short, random pause.
                if not _is_locked(exc) or time.monotonic() > deadline:
                    raise RepositoryError(f"{path}: {describe_error(exc, path)}") from None
                await asyncio.sleep(random.uniform(0.02, 0.1))

    @classmethod
    async def _open_once(cls, path: Path) -> Repository:
        try:
            db = await aiosqlite.connect(str(path), isolation_level=None)
        except sqlite3.Error as exc:
            raise RepositoryError(f"{path}: cannot open it: {exc}") from None
        try:
            await db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            current = await check_database(db, path)
            # Nothing is written before this line: a refused file stays byte-identical.
            mode = await fetch_value(db, "PRAGMA journal_mode")
            if str(mode).lower() != "wal":
                mode = await fetch_value(db, "PRAGMA journal_mode = WAL")
            if str(mode).lower() != "wal":
                raise RepositoryError(f"{path}: cannot switch it to WAL mode (it stays {mode})")
            await db.execute("PRAGMA foreign_keys = ON")
            if not current:
                await migrate(db, path)
            identity = await _identity(db)
        except sqlite3.OperationalError as exc:
            await db.close()
            if _is_locked(exc):
                raise
            raise RepositoryError(f"{path}: {describe_error(exc, path)}") from None
        except sqlite3.Error as exc:
            await db.close()
            raise RepositoryError(f"{path}: {describe_error(exc, path)}") from None
        except BaseException:
            await db.close()
            raise
        return cls(path, db, identity)

    @classmethod
    async def _open_read_only(cls, path: Path) -> Repository:
        if not await asyncio.to_thread(path.is_file):
            raise RepositoryError(f"{path}: no repository there (nothing recorded yet)")
        await asyncio.to_thread(check_file, path)
        try:
            return await cls._read_only_once(path, "mode=ro")
        except sqlite3.Error as exc:
            code = sqlite_code(exc)
            if code in (SQLITE_READONLY, SQLITE_CANTOPEN) and not await asyncio.to_thread(
                _has_wal, path
            ):
                # A folder it may not write: SQLite cannot make the -shm index it reads a
                # WAL database through. With no -wal, the main file is the whole database
                # and can be read as an unchanging file.
                try:
                    return await cls._read_only_once(path, "mode=ro&immutable=1")
                except sqlite3.Error as again:
                    raise RepositoryError(f"{path}: {describe_error(again, path)}") from None
            if code not in (SQLITE_IOERR, SQLITE_FULL):
                raise RepositoryError(f"{path}: {describe_error(exc, path)}") from None
        # A full disk: SQLite could not size the shared-memory index (-shm) it reads a WAL
        # database through. Told to open the -shm read-only, and finding no live writer
        # behind it, SQLite keeps the index in its own memory: reading needs no space.
        await asyncio.to_thread(_make_shm_file, path)
        try:
            return await cls._read_only_once(path, "mode=ro&readonly_shm=1")
        except sqlite3.Error as exc:
            raise RepositoryError(f"{path}: {describe_error(exc, path)}") from None

    @classmethod
    async def _read_only_once(cls, path: Path, query: str) -> Repository:
        try:
            db = await aiosqlite.connect(sqlite_uri(path, query), uri=True, isolation_level=None)
        except sqlite3.Error as exc:
            raise RepositoryError(f"{path}: cannot open it: {describe_error(exc, path)}") from None
        try:
            await db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            if not await check_database(db, path):
                raise _NeedsUpgrade(
                    f"{path}: its schema needs an upgrade, which a read-only open cannot "
                    "write; open it once with write access (any ovmtui command that records)"
                )
            identity = await _identity(db)
        except BaseException:
            await db.close()
            raise
        return cls(path, db, identity, read_only=True)

    async def archive_key(self) -> bytes:
        """The secret that signs this repository's definition archives (HMAC-SHA256)."""
        async with self._lock:
            value = await fetch_value(self._db, "SELECT value FROM meta WHERE key = 'archive_key'")
        if value is None:
            raise RepositoryError(f"{self.path}: the repository has no archive key")
        return bytes.fromhex(str(value))

    async def adopt_identity(self, other: Repository) -> None:
        """Take ``other``'s identity and archive key (a restore keeps the place's identity)."""
        key = (await other.archive_key()).hex()
        async with self._transaction() as db:
            await db.executemany(
                "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)",
                [("repository_id", other.identity), ("archive_key", key)],
            )
        self.identity = other.identity

    async def backup_to(self, target: Path) -> None:
        """An online copy with SQLite's backup API: consistent while others keep writing."""
        copy = await asyncio.to_thread(sqlite3.connect, str(target), check_same_thread=False)
        try:
            async with self._lock:
                await self._db.backup(copy)
            # A backup is a single file: no -wal beside it, readable on its own.
            await asyncio.to_thread(copy.execute, "PRAGMA journal_mode = DELETE")
        finally:
            await asyncio.to_thread(copy.close)

    async def close(self) -> None:
        if not self._closed:
            self._closed = True
            async with self._lock:
                await self._db.close()

    async def __aenter__(self) -> Repository:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    @contextlib.asynccontextmanager
    async def _transaction(
        self, mode: Literal["IMMEDIATE", "DEFERRED"] = "IMMEDIATE"
    ) -> AsyncIterator[aiosqlite.Connection]:
        """One transaction; IMMEDIATE takes the write lock at once (serialises processes)."""
        if self._closed:
            raise RepositoryError(f"{self.path}: the repository is closed")
        if self.read_only and mode == "IMMEDIATE":
            raise RepositoryError(
                f"{self.path}: opened read-only; nothing can be recorded", title="Read-only"
            )
        async with self._lock:
            try:
                await self._db.execute(f"BEGIN {mode}")
            except sqlite3.Error as exc:
                raise RepositoryError(f"{self.path}: {describe_error(exc, self.path)}") from None
            try:
                yield self._db
                await self._db.execute("COMMIT")
            except sqlite3.Error as exc:
                # Disk full, a lock held too long, a damaged page: nothing of it was written.
                await self._rollback()
                raise RepositoryError(f"{self.path}: {describe_error(exc, self.path)}") from exc
            except BaseException:
                await self._rollback()
                raise

    async def _rollback(self) -> None:
        with contextlib.suppress(sqlite3.Error, ValueError):
            await self._db.execute("ROLLBACK")

    # -- pools and hosts ------------------------------------------------------------------

    async def import_estate(self, estate: EstateConfig) -> list[str]:
        """Take pools and hosts from the estate file (it wins); say what differed.

        Hosts that left the file are kept with their last-known state, and reported. A
        repository that had no pools yet reports nothing.
        """
        lines: list[str] = []
        async with self._transaction() as db:
            pools: dict[str, str | None] = {
                row[0]: row[1]
                for row in await fetch_rows(
                    db, "SELECT name, shared_storage FROM pools ORDER BY rowid"
                )
            }
            hosts: dict[tuple[str, str], tuple[str, str]] = {
                (row[0], row[1]): (row[2], row[3])
                for row in await fetch_rows(
                    db, "SELECT pool, name, address, roles FROM hosts ORDER BY rowid"
                )
            }
            fresh = not pools and not hosts
            for pool in estate.pools:
                if pool.name not in pools:
                    if not fresh:
                        lines.append(f"pool {pool.name} added")
                elif pools[pool.name] != pool.shared_storage:
                    lines.append(
                        f"pool {pool.name}: shared storage changed from "
                        f"{_show(pools[pool.name])} to {_show(pool.shared_storage)}"
                    )
            await db.executemany(
                "INSERT INTO pools (name, shared_storage, position) VALUES (?, ?, ?) "
                "ON CONFLICT (name) DO UPDATE SET "
                "shared_storage = excluded.shared_storage, position = excluded.position",
                [(p.name, p.shared_storage, i) for i, p in enumerate(estate.pools)],
            )
            in_file = {(h.pool, h.name) for h in estate.hosts}
            rows: list[tuple[str, str, str, str, int]] = []
            for position, host in enumerate(estate.hosts):
                key = (host.pool, host.name)
                roles = _roles_text(host.roles)
                old = hosts.get(key)
                if old is None:
                    elsewhere = [k for k in hosts if k[1] == host.name and k not in in_file]
                    if len(elsewhere) == 1:
                        # The same host under another pool: move it with its state.
                        lines.append(
                            f"host {host.name}: moved from pool {elsewhere[0][0]} "
                            f"to pool {host.pool}"
                        )
                        await db.execute(
                            "UPDATE hosts SET pool = ? WHERE pool = ? AND name = ?",
                            (host.pool, *elsewhere[0]),
                        )
                        old = hosts.pop(elsewhere[0])
                        hosts[key] = old
                    elif not fresh:
                        lines.append(f"host {host.name} added to pool {host.pool}")
                if old is not None:
                    if old[0] != host.address:
                        lines.append(
                            f"host {host.name}: address changed from "
                            f"{_show(old[0])} to {_show(host.address)}"
                        )
                    if old[1] != roles:
                        lines.append(
                            f"host {host.name}: roles changed from "
                            f"{_show_roles(old[1])} to {_show_roles(roles)}"
                        )
                rows.append((host.pool, host.name, host.address, roles, position))
            await db.executemany(
                "INSERT INTO hosts (pool, name, address, roles, position) VALUES (?, ?, ?, ?, ?) "
                "ON CONFLICT (pool, name) DO UPDATE SET address = excluded.address, "
                "roles = excluded.roles, position = excluded.position",
                rows,
            )
            for pool_name, name in hosts:
                if (pool_name, name) not in in_file:
                    lines.append(
                        f"host {name} (pool {pool_name}) is in the repository but no longer in "
                        "the estate file; its last-known state is kept"
                    )
            file_pools = {p.name for p in estate.pools}
            for pool_name in pools:
                if pool_name not in file_pools:
                    lines.append(
                        f"pool {pool_name} is in the repository but no longer in the estate file"
                    )
        return lines

    # -- last-known state -----------------------------------------------------------------

    async def pool_id(self, pool: str) -> str | None:
        """The pool's id (a UUID), given on first use and kept; None for a pool the
        repository does not hold (not imported from the estate file yet), or one without an
        id yet in a repository opened read-only."""
        async with self._transaction("DEFERRED" if self.read_only else "IMMEDIATE") as db:
            rows = await fetch_rows(db, "SELECT pool_id FROM pools WHERE name = ?", (pool,))
            if not rows:
                return None
            if rows[0][0]:
                return str(rows[0][0])
            if self.read_only:
                return None
            given = str(uuid.uuid4())
            await db.execute("UPDATE pools SET pool_id = ? WHERE name = ?", (given, pool))
            return given

    async def save_snapshot(self, snapshot: EstateSnapshot) -> None:
        """Record what the snapshot knows; unreachable hosts keep their last-known data.

        With a delta that continues the last snapshot saved here, only the changed and removed
        VMs are written; otherwise the VMs of every reachable host are replaced.
        """
        delta = snapshot.delta
        use_delta = (
            delta is not None
            and self._saved_generation is not None
            and delta.since == self._saved_generation
        )
        pool_names = list(dict.fromkeys((*snapshot.pools, *(h.pool for h in snapshot.hosts))))
        async with self._transaction() as db:
            # Hosts the estate file never declared (a demo estate): known from now on.
            await db.executemany(
                "INSERT INTO pools (name, position) VALUES (?, ?) ON CONFLICT DO NOTHING",
                [(name, i) for i, name in enumerate(pool_names)],
            )
            await db.executemany(
                "INSERT INTO hosts (pool, name, address, roles, position) VALUES (?, ?, ?, ?, ?) "
                "ON CONFLICT DO NOTHING",
                [
                    (h.pool, h.name, h.address, _roles_text(h.roles), i)
                    for i, h in enumerate(snapshot.hosts)
                ],
            )
            await db.executemany(
                _UPSERT_HOST_STATE,
                [
                    (
                        h.pool,
                        h.name,
                        int(h.reachable),
                        h.error,
                        h.taken_at,
                        h.failed_at,
                        None if h.facts is None else _facts_json(h.facts),
                    )
                    for h in snapshot.hosts
                    if h.reachable is not None
                ],
            )
            if delta is not None and use_delta:
                await self._forget(db, delta.removed, snapshot.taken_at)
                rows = []
                for placed in delta.changed:
                    status = snapshot.host(HostKey(placed.pool, placed.host))
                    seen = status.taken_at if status is not None else None
                    rows.append(_vm_row(placed.pool, placed.host, placed.vm, seen))
                await db.executemany(_UPSERT_VM, rows)
                self._seen_live.update(placed.uuid for placed in delta.changed)
            else:
                live = [h for h in snapshot.hosts if h.reachable is True and not h.stale]
                reported = {vm.uuid for h in live for vm in h.vms}
                gone: list[str] = []
                for h in live:
                    recorded = await fetch_rows(
                        db,
                        "SELECT uuid FROM vm_state WHERE pool = ? AND host = ?",
                        (h.pool, h.name),
                    )
                    gone.extend(row[0] for row in recorded if row[0] not in reported)
                await self._forget(db, gone, snapshot.taken_at)
                await db.executemany(
                    _UPSERT_VM,
                    [
                        _vm_row(h.pool, h.name, vm, h.taken_at or snapshot.taken_at)
                        for h in live
                        for vm in h.vms
                    ],
                )
                self._seen_live.update(reported)
        self._saved_generation = snapshot.generation

    async def _forget(self, db: aiosqlite.Connection, uuids: Sequence[str], now: float) -> None:
        """VMs no host reports any more: seen going in this run, deleted; else drift."""
        observed = [(uuid,) for uuid in uuids if uuid in self._seen_live]
        unexplained = [(now, uuid) for uuid in uuids if uuid not in self._seen_live]
        await db.executemany("DELETE FROM vm_state WHERE uuid = ?", observed)
        self._seen_live.difference_update(row[0] for row in observed)
        await db.executemany(_MARK_DRIFT, unexplained)
        # Recorded as shut off (or unknown): its going away contradicts nothing.
        await db.executemany(
            "DELETE FROM vm_state WHERE uuid = ? AND drift_since IS NULL",
            [(uuid,) for _, uuid in unexplained],
        )

    async def load_snapshot(self) -> EstateSnapshot | None:
        """The last-known estate, every host marked stale; None if nothing was recorded."""
        async with self._transaction("DEFERRED") as db:
            recorded = await fetch_value(
                db,
                "SELECT EXISTS (SELECT 1 FROM host_state) OR EXISTS (SELECT 1 FROM vm_state)",
            )
            if not recorded:
                return None
            pool_rows = await fetch_rows(db, "SELECT name FROM pools ORDER BY position, rowid")
            pools = [row[0] for row in pool_rows]
            host_rows = await fetch_rows(
                db,
                """
                SELECT h.pool, h.name, h.address, h.roles,
                       s.reachable, s.error, s.taken_at, s.failed_at, s.facts
                FROM hosts h
                JOIN pools p ON p.name = h.pool
                LEFT JOIN host_state s ON s.pool = h.pool AND s.name = h.name
                ORDER BY p.position, p.rowid, h.position, h.name
                """,
            )
            vm_rows = await fetch_rows(
                db,
                """
                SELECT pool, host, uuid, name, state, vcpus, memory_mib, max_memory_mib,
                       domain_id, started_at, data
                FROM vm_state ORDER BY name, uuid
                """,
            )
        vms: dict[tuple[str, str], list[Vm]] = {}
        for row in vm_rows:
            vms.setdefault((row[0], row[1]), []).append(_vm_from_row(row[2:]))
        hosts: list[HostStatus] = []
        for pool, name, address, roles, reachable, error, taken_at, failed_at, facts in host_rows:
            hosts.append(
                HostStatus(
                    pool=pool,
                    name=name,
                    address=address,
                    roles=_roles_from_text(roles),
                    facts=None if facts is None else _facts_from_json(facts),
                    vms=tuple(vms.get((pool, name), ())),
                    taken_at=taken_at,
                    reachable=None if reachable is None else bool(reachable),
                    error=error,
                    failed_at=failed_at,
                    stale=True,
                )
            )
        times = [t for h in hosts for t in (h.taken_at, h.failed_at) if t is not None]
        return EstateSnapshot(
            hosts=tuple(hosts), taken_at=max(times, default=0.0), pools=tuple(pools)
        )

    # -- kept definitions (store/definitions.py) -------------------------------------------

    async def save_definitions(self, changes: DefinitionChanges) -> None:
        """Write what a poll changed (new versions, places): one transaction."""
        async with self._transaction() as db:
            await definitions.write_changes(db, changes)

    async def definition_index(self) -> DefinitionIndex:
        async with self._transaction("DEFERRED") as db:
            return await definitions.read_index(db)

    async def definition_versions(self, kind: DefinitionKind, uuid: str) -> list[DefinitionVersion]:
        """Every version of one definition, oldest first."""
        async with self._transaction("DEFERRED") as db:
            return await definitions.versions_of(db, kind, uuid)

    async def vms_with_definitions(self, text: str) -> list[tuple[str, str]]:
        """(UUID, latest name) of the VMs whose UUID or latest name is ``text``."""
        async with self._transaction("DEFERRED") as db:
            return await definitions.domains_named(db, text)

    async def definitions_on(self, pool: str, host: str) -> list[DefinitionPlace]:
        """What was last seen on this host (networks, storage pools, VMs)."""
        async with self._transaction("DEFERRED") as db:
            return await definitions.places_on(db, pool, host)

    async def definition_version(
        self, kind: DefinitionKind, uuid: str, sha256: str
    ) -> DefinitionVersion | None:
        async with self._transaction("DEFERRED") as db:
            return await definitions.version_with(db, kind, uuid, sha256)

    # -- jobs -----------------------------------------------------------------------------

    async def job_started(self, kind: str, detail: str, *, user: str) -> int:
        async with self._transaction() as db:
            cursor = await db.execute(
                "INSERT INTO jobs (kind, state, started_at, detail, user, owner) "
                "VALUES (?, 'running', ?, ?, ?, ?)",
                (kind, time.time(), detail, user, this_process()),
            )
            return int(cursor.lastrowid or 0)

    async def job_finished(self, job_id: int, *, ok: bool, detail: str) -> None:
        async with self._transaction() as db:
            await db.execute(
                "UPDATE jobs SET state = ?, finished_at = ?, detail = ? WHERE id = ?",
                ("done" if ok else "failed", time.time(), detail, job_id),
            )

    async def jobs(self, limit: int = 500) -> list[Job]:
        """Newest first. A job left running by a process that is gone reads "interrupted"."""
        async with self._transaction("DEFERRED") as db:
            rows = await fetch_rows(
                db,
                "SELECT id, kind, state, user, owner, started_at, finished_at, detail "
                "FROM jobs ORDER BY id DESC LIMIT ?",
                (limit,),
            )
        jobs = [Job(*row) for row in rows]
        return [
            dataclasses.replace(job, state="interrupted")
            if job.state == "running" and job.owner and not owner_alive(job.owner)
            else job
            for job in jobs
        ]

    # -- the library of storage resources --------------------------------------------------

    async def resources(self, pool: str | None = None) -> list[Resource]:
        """The library (of ``pool``, or every pool's), by pool, kind and name."""
        async with self._transaction("DEFERRED") as db:
            return await _resources.list_resources(db, pool)

    async def resource(self, pool: str, path: str) -> Resource | None:
        async with self._transaction("DEFERRED") as db:
            return await _resources.get_resource(db, pool, path)

    async def upsert_resource(self, resource: Resource) -> Resource:
        """Write the record of (pool, path) as given (new, or replacing it); returns it as
        stored (with its id)."""
        async with self._transaction() as db:
            return await _resources.upsert_resource(db, resource)

    async def set_resource_status(
        self,
        pool: str,
        path: str,
        status: ResourceStatus,
        *,
        why: str | None = None,
        percent: float | None = None,
        by: str | None = None,
        at: float | None = None,
    ) -> Resource:
        """A new status (an import's progress, a failure with why, an approval by ``by``).
        Raises ``RepositoryError`` when the path is not in the library."""
        async with self._transaction() as db:
            return await _resources.set_status(
                db,
                pool,
                path,
                status,
                why=why,
                percent=percent,
                by=by,
                at=time.time() if at is None else at,
            )

    async def flag_missing_resources(
        self,
        pool: str,
        present: Collection[str],
        *,
        kinds: Collection[ResourceKind] = tuple(ResourceKind),
        at: float | None = None,
    ) -> tuple[list[Resource], list[Resource]]:
        """After a reading of the storage (``present``: the paths it found, of ``kinds``):
        records no longer there flagged missing (never dropped), those back unflagged.
        Returns (newly missing, back)."""
        async with self._transaction() as db:
            return await _resources.flag_missing(
                db, pool, present, kinds=kinds, at=time.time() if at is None else at
            )

    async def delete_resource(self, pool: str, path: str) -> bool:
        """Forget the record (its file deleted); False when there was none."""
        async with self._transaction() as db:
            return await _resources.delete_resource(db, pool, path)

    # -- shared disks ---------------------------------------------------------------------

    async def shared_disk_marks(self, pool: str) -> dict[str, bool]:
        """Each shared disk ovmtui created in ``pool``: whether it was made shareable."""
        async with self._transaction("DEFERRED") as db:
            rows = await fetch_rows(
                db, "SELECT name, shareable FROM shared_disk WHERE pool = ?", (pool,)
            )
        return {str(name): bool(shareable) for name, shareable in rows}

    async def record_shared_disk(
        self, pool: str, name: str, path: str, *, shareable: bool, size_bytes: int, user: str
    ) -> None:
        async with self._transaction() as db:
            await db.execute(
                "INSERT OR REPLACE INTO shared_disk "
                "(pool, name, path, shareable, size_bytes, created_by, created_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                (pool, name, path, int(shareable), size_bytes, user, time.time()),
            )

    async def forget_shared_disk(self, pool: str, name: str) -> None:
        async with self._transaction() as db:
            await db.execute("DELETE FROM shared_disk WHERE pool = ? AND name = ?", (pool, name))

    # -- state drift ----------------------------------------------------------------------

    async def drifted(self) -> list[DriftedVm]:
        """VMs recorded as active that no host reports: what needs a reconcile."""
        async with self._transaction("DEFERRED") as db:
            rows = await fetch_rows(
                db,
                """
                SELECT pool, host, uuid, name, state, seen_at, drift_since FROM vm_state
                WHERE drift_since IS NOT NULL ORDER BY pool, host, name, uuid
                """,
            )
        return [_drifted(row) for row in rows]

    async def forget_drifted(
        self,
        started: Mapping[str, int],
        *,
        detail: Callable[[DriftedVm], str],
        kept: str,
    ) -> list[DriftedVm]:
        """Delete the records of ``started``'s UUIDs that are still in drift, and complete
        each one's journal record (``started`` maps a UUID to it) in the same transaction:
        killed at any moment, a forgotten record never lacks its result. ``detail`` says what
        was forgotten; ``kept`` why a record was left (a host reports it again). Returns
        those deleted."""
        async with self._transaction() as db:
            rows = await fetch_rows(
                db,
                "SELECT pool, host, uuid, name, state, seen_at, drift_since FROM vm_state "
                "WHERE drift_since IS NOT NULL",
            )
            gone = [_drifted(row) for row in rows if row[2] in started]
            await db.executemany(
                "DELETE FROM vm_state WHERE uuid = ? AND drift_since IS NOT NULL",
                [(vm.uuid,) for vm in gone],
            )
            details = {vm.uuid: detail(vm) for vm in gone}
            for uuid, record in started.items():
                done = uuid in details
                await self._finish(db, record, ok=done, detail=details.get(uuid, kept))
        return gone

    # -- the audit journal ----------------------------------------------------------------

    async def journal_started(
        self,
        *,
        user: str,
        pool: str | None,
        host: str | None,
        vm: str | None,
        uuid: str | None,
        operation: str,
        command: str,
        at: float | None = None,
    ) -> int:
        """Record an action before it runs; returns the record id for ``journal_finished``."""
        async with self._transaction() as db:
            return await _append(
                db,
                JournalRecord(
                    id=0,
                    at=time.time() if at is None else at,
                    user=user,
                    kind="started",
                    ref=None,
                    pool=pool,
                    host=host,
                    vm=vm,
                    uuid=uuid,
                    operation=operation,
                    command=command,
                    ok=None,
                    detail=None,
                    prev_hash="",
                ),
            )

    async def journal_finished(
        self, started_id: int, *, ok: bool, detail: str | None, at: float | None = None
    ) -> int:
        """Complete the action recorded as ``started_id`` with its result."""
        async with self._transaction() as db:
            return await self._finish(db, started_id, ok=ok, detail=detail, at=at)

    async def _finish(
        self,
        db: aiosqlite.Connection,
        started_id: int,
        *,
        ok: bool,
        detail: str | None,
        at: float | None = None,
    ) -> int:
        found = await fetch_rows(db, f"{SELECT_RECORD} WHERE id = ?", (started_id,))
        if not found or found[0][FIELDS.index("kind")] != "started":
            raise RepositoryError(
                f"{self.path}: journal record {started_id} is not a started action"
            )
        started = JournalRecord.from_row(found[0])
        if await fetch_value(
            db, "SELECT EXISTS (SELECT 1 FROM journal WHERE ref = ?)", (started_id,)
        ):
            raise RepositoryError(f"{self.path}: journal record {started_id} already has a result")
        return await _append(
            db,
            dataclasses.replace(
                started,
                at=time.time() if at is None else at,
                kind="finished",
                ref=started_id,
                command=None,
                ok=ok,
                detail=detail,
            ),
        )

    async def journal_entries(
        self,
        *,
        host: str | None = None,
        vm: str | None = None,
        user: str | None = None,
        result: Result | None = None,
        limit: int | None = None,
    ) -> list[JournalEntry]:
        """Actions, oldest first; with ``limit``, the most recent ``limit`` of them.

        ``vm`` matches a VM's name or UUID; ``result`` is "ok", "failed" or "unfinished".
        """
        where = ["s.kind = 'started'"]
        params: list[Any] = []
        if host is not None:
            where.append("s.host = ?")
            params.append(host)
        if vm is not None:
            where.append("(s.vm = ? OR s.uuid = ?)")
            params += [vm, vm]
        if user is not None:
            where.append("s.user = ?")
            params.append(user)
        if result is not None:
            conditions = {"ok": "f.ok = 1", "failed": "f.ok = 0", "unfinished": "f.id IS NULL"}
            if result not in conditions:
                raise ValueError(f"result must be ok, failed or unfinished, not {result!r}")
            where.append(conditions[result])
        sql = (
            "SELECT s.id, s.at, s.user, s.pool, s.host, s.vm, s.uuid, s.operation, s.command, "  # noqa: S608
            "f.at, f.ok, f.detail FROM journal s "
            "LEFT JOIN journal f ON f.ref = s.id AND f.kind = 'finished' "
            f"WHERE {' AND '.join(where)} ORDER BY s.id DESC"
        )
        if limit is not None:
            sql += " LIMIT ?"
            params.append(limit)
        async with self._transaction("DEFERRED") as db:
            rows = await fetch_rows(db, sql, params)
        return [
            JournalEntry(
                id=row[0],
                at=row[1],
                user=row[2],
                pool=row[3],
                host=row[4],
                vm=row[5],
                uuid=row[6],
                operation=row[7],
                command=row[8],
                finished_at=row[9],
                ok=None if row[10] is None else bool(row[10]),
                detail=row[11],
            )
            for row in reversed(rows)
        ]

    async def verify_journal(self) -> JournalVerdict:
        """Recompute the hash chain; name the first record that does not fit."""
        async with self._transaction("DEFERRED") as db:
            rows = await fetch_rows(db, f"{SELECT_RECORD} ORDER BY id")
            last_id = await fetch_value(
                db, "SELECT seq FROM sqlite_sequence WHERE name = 'journal'"
            )
        return verify_chain(
            (JournalRecord.from_row(row) for row in rows),
            None if last_id is None else int(last_id),
        )


class _NeedsUpgrade(RepositoryError):
    """A read-only open found an older schema."""


async def _identity(db: aiosqlite.Connection) -> str:
    value = await fetch_value(db, "SELECT value FROM meta WHERE key = 'repository_id'")
    if value is None:
        raise RepositoryError("the repository has lost its identity (meta.repository_id)")
    return str(value)


def _has_wal(path: Path) -> bool:
    try:
        return Path(f"{path}-wal").stat().st_size > 0
    except OSError:
        return False


def _make_shm_file(path: Path) -> None:
    """An empty -shm beside ``path`` if there is none: a file without a block of data."""
    # Never truncated or written: a live writer's index stays as it is.
    with contextlib.suppress(OSError):
        mode = path.stat().st_mode & 0o666
        os.close(os.open(f"{path}-shm", os.O_RDONLY | os.O_CREAT, mode))


def _is_locked(exc: sqlite3.Error) -> bool:
    text = str(exc).lower()
    return "locked" in text or "busy" in text


# -- journal rows ---------------------------------------------------------------------------


async def _journal_tail(db: aiosqlite.Connection) -> tuple[int, str]:
    """The next record id and the hash of the last record ("" for the first)."""
    last = await fetch_rows(db, "SELECT id, hash FROM journal ORDER BY id DESC LIMIT 1")
    seq = await fetch_value(db, "SELECT seq FROM sqlite_sequence WHERE name = 'journal'")
    last_id = int(last[0][0]) if last else 0
    return max(last_id, int(seq or 0)) + 1, str(last[0][1]) if last else ""


async def _append(db: aiosqlite.Connection, draft: JournalRecord) -> int:
    """Chain ``draft`` to the last record (its id and prev_hash are set here), seal, insert."""
    next_id, prev_hash = await _journal_tail(db)
    record = dataclasses.replace(draft, id=next_id, prev_hash=prev_hash, hash="").sealed()
    await _insert_record(db, record)
    return record.id


async def _insert_record(db: aiosqlite.Connection, record: JournalRecord) -> None:
    values = (
        record.id,
        record.at,
        record.user,
        record.kind,
        record.ref,
        record.pool,
        record.host,
        record.vm,
        record.uuid,
        record.operation,
        record.command,
        None if record.ok is None else int(record.ok),
        record.detail,
        record.prev_hash,
        record.hash,
    )
    placeholders = ", ".join("?" * len(FIELDS))
    await db.execute(
        f"INSERT INTO journal ({', '.join(FIELDS)}) VALUES ({placeholders})",  # noqa: S608
        values,
    )


def _show(value: str | None) -> str:
    return value or "(none)"


def _roles_text(roles: Iterable[HostRole]) -> str:
    return ",".join(role.value for role in roles)


def _roles_from_text(text: str) -> tuple[HostRole, ...]:
    known = {role.value for role in HostRole}
    return tuple(HostRole(part) for part in text.split(",") if part in known)


def _show_roles(text: str) -> str:
    return text.replace(",", ", ") if text else "(none)"


def _facts_json(facts: HostFacts) -> str:
    return json.dumps(
        {
            "hostname": facts.hostname,
            "cpu_model": facts.cpu_model,
            "cpus": facts.cpus,
            "sockets": facts.sockets,
            "cores_per_socket": facts.cores_per_socket,
            "threads_per_core": facts.threads_per_core,
            "mhz": facts.mhz,
            "memory_mib": facts.memory_mib,
            "free_memory_mib": facts.free_memory_mib,
            "hypervisor": facts.hypervisor,
            "hypervisor_version": facts.hypervisor_version,
            "cpu_flags": list(facts.cpu_flags),
        },
        separators=(",", ":"),
    )


def _facts_from_json(text: str) -> HostFacts:
    data = json.loads(text)
    return HostFacts(
        hostname=data.get("hostname"),
        cpu_model=data.get("cpu_model"),
        cpus=data.get("cpus"),
        sockets=data.get("sockets"),
        cores_per_socket=data.get("cores_per_socket"),
        threads_per_core=data.get("threads_per_core"),
        mhz=data.get("mhz"),
        memory_mib=data.get("memory_mib"),
        free_memory_mib=data.get("free_memory_mib"),
        hypervisor=data.get("hypervisor"),
        hypervisor_version=data.get("hypervisor_version"),
        cpu_flags=tuple(data.get("cpu_flags") or ()),
    )


def _vm_row(pool: str, host: str, vm: Vm, seen_at: float | None) -> tuple[Any, ...]:
    data = {
        "persistent": vm.persistent,
        "os_type": vm.os_type,
        "config_path": vm.config_path,
        "cpu_time_ns": vm.cpu_time_ns,
        "cpu_percent": vm.cpu_percent,
        # format, bus and size were added later: rows without them still read (_disk_of).
        "disks": [
            [d.target, d.source, d.device, d.read_only, d.shareable, d.format, d.bus, d.size_bytes]
            for d in vm.disks
        ],
        "nics": [[n.mac, n.network, n.model] for n in vm.nics],
    }
    return (
        vm.uuid,
        pool,
        host,
        vm.name,
        vm.state.value,
        vm.vcpus,
        vm.memory_mib,
        vm.max_memory_mib,
        vm.domain_id,
        vm.started_at,
        json.dumps(data, separators=(",", ":")),
        seen_at,
    )


@dataclasses.dataclass(frozen=True, slots=True)
class Job:
    id: int
    kind: str  # "bulk-action", "export-definitions", "reconcile" …
    state: str  # running | done | failed | interrupted
    user: str | None
    owner: str | None  # pid@hostname of the process that ran it
    started_at: float | None
    finished_at: float | None
    detail: str | None


def this_process() -> str:
    return f"{os.getpid()}@{socket.gethostname()}"


def owner_alive(owner: str) -> bool:
    """Whether the process that owns a job still runs; unknowable on another machine: yes."""
    pid_text, _, host = owner.partition("@")
    if host != socket.gethostname() or not pid_text.isdigit():
        return True
    try:
        os.kill(int(pid_text), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _drifted(row: Sequence[Any]) -> DriftedVm:
    pool, host, uuid, name, state, seen_at, drift_since = row
    return DriftedVm(pool, host, uuid, name, _state(state), seen_at, drift_since)


def _state(text: str) -> VmState:
    try:
        return VmState(text)
    except ValueError:
        return VmState.UNKNOWN


def _vm_from_row(row: Sequence[Any]) -> Vm:
    uuid, name, state, vcpus, memory, max_memory, domain_id, started_at, data_text = row
    data = json.loads(data_text) if data_text else {}
    vm_state = _state(state)
    return Vm(
        uuid=uuid,
        name=name,
        state=vm_state,
        vcpus=vcpus,
        memory_mib=memory,
        max_memory_mib=max_memory,
        cpu_time_ns=data.get("cpu_time_ns"),
        cpu_percent=data.get("cpu_percent"),
        started_at=started_at,
        domain_id=domain_id,
        persistent=data.get("persistent"),
        disks=tuple(_disk_of(fields) for fields in data.get("disks") or ()),
        nics=tuple(Nic(mac, network, model) for mac, network, model in data.get("nics") or ()),
        os_type=data.get("os_type"),
        config_path=data.get("config_path"),
    )


def _disk_of(fields: Sequence[Any]) -> Disk:
    """A disk as ``_vm_row`` stored it: five fields before format, bus and size were kept."""
    target, source, device, read_only, shareable, *later = fields
    disk_format, bus, size_bytes = (*later, None, None, None)[:3]
    return Disk(
        target, source, device, bool(read_only), bool(shareable), disk_format, bus, size_bytes
    )
