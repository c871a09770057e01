"""The repository's schema: migrations, and the checks that a file is one we may open.

Migrations are an ordered list applied by ``PRAGMA user_version``.
Migration ``i`` (0-based) brings a database from schema ``i`` to ``i + 1``. Never edit a
migration that has shipped: append a new one. Each is a tuple of single statements (not a
script: ``executescript`` would commit the migration transaction halfway).
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import urllib.parse
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import aiosqlite

from ovmtui.errors import RepositoryError
from ovmtui.space import file_system_full, no_space_left

BUSY_TIMEOUT_MS = 10_000
LEAVE_ALONE = "it was not changed"

# "OVMT": written to PRAGMA application_id so a foreign SQLite file is never mistaken for ours.
APPLICATION_ID = 0x4F564D54

SQLITE_MAGIC = b"SQLite format 3\x00"

_V1: tuple[str, ...] = (
    """
    CREATE TABLE pools (
        name TEXT PRIMARY KEY,
        shared_storage TEXT,
        position INTEGER NOT NULL DEFAULT 0
    )
    """,
    """
    CREATE TABLE hosts (
        pool TEXT NOT NULL REFERENCES pools(name) ON UPDATE CASCADE,
        name TEXT NOT NULL,
        address TEXT NOT NULL DEFAULT '',
        roles TEXT NOT NULL DEFAULT '',
        position INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (pool, name)
    )
    """,
    """
    CREATE TABLE host_state (
        pool TEXT NOT NULL,
        name TEXT NOT NULL,
        reachable INTEGER,
        error TEXT,
        taken_at REAL,
        failed_at REAL,
        facts TEXT,
        PRIMARY KEY (pool, name),
        FOREIGN KEY (pool, name) REFERENCES hosts(pool, name)
            ON UPDATE CASCADE ON DELETE CASCADE
    )
    """,
    """
    CREATE TABLE vm_state (
        uuid TEXT PRIMARY KEY,
        pool TEXT NOT NULL,
        host TEXT NOT NULL,
        name TEXT NOT NULL,
        state TEXT NOT NULL,
        vcpus INTEGER,
        memory_mib INTEGER,
        max_memory_mib INTEGER,
        domain_id INTEGER,
        started_at REAL,
        data TEXT NOT NULL DEFAULT '{}',
        seen_at REAL,
        FOREIGN KEY (pool, host) REFERENCES hosts(pool, name)
            ON UPDATE CASCADE ON DELETE CASCADE
    )
    """,
    "CREATE INDEX vm_state_host ON vm_state(pool, host)",
    """
    CREATE TABLE journal (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        at REAL NOT NULL,
        user TEXT NOT NULL,
        kind TEXT NOT NULL CHECK (kind IN ('started', 'finished')),
        ref INTEGER REFERENCES journal(id),
        pool TEXT,
        host TEXT,
        vm TEXT,
        uuid TEXT,
        operation TEXT NOT NULL,
        command TEXT,
        ok INTEGER,
        detail TEXT,
        prev_hash TEXT NOT NULL,
        hash TEXT NOT NULL
    )
    """,
    # One result per started record.
    "CREATE UNIQUE INDEX journal_ref ON journal(ref) WHERE ref IS NOT NULL",
    # Append-only against careless hand-editing; the hash chain catches a determined one.
    """
    CREATE TRIGGER journal_no_update BEFORE UPDATE ON journal
    BEGIN SELECT RAISE(ABORT, 'the audit journal is append-only'); END
    """,
    """
    CREATE TRIGGER journal_no_delete BEFORE DELETE ON journal
    BEGIN SELECT RAISE(ABORT, 'the audit journal is append-only'); END
    """,
    """
    CREATE TABLE jobs (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        kind TEXT NOT NULL,
        state TEXT NOT NULL,
        started_at REAL,
        finished_at REAL,
        detail TEXT
    )
    """,
)

_V2: tuple[str, ...] = (
    # State drift: set when a VM recorded as active is reported by no host that answered;
    # cleared when a host reports it again, or by a reconcile.
    "ALTER TABLE vm_state ADD COLUMN drift_since REAL",
    # Jobs (bulk actions, exports, reconciles): who ran them, and which process, so that a
    # job left "running" by a process that died can be told from one still running.
    "ALTER TABLE jobs ADD COLUMN user TEXT",
    "ALTER TABLE jobs ADD COLUMN owner TEXT",
)

_V3: tuple[str, ...] = (
    # The repository's identity, made once at creation (or at this migration) and carried by
    # its backups: so a backup is known as this repository's or another's, and so rotation in
    # a shared backups/ folder never touches another repository's files. archive_key signs
    # the definition archives this repository makes (HMAC-SHA256).
    "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    "INSERT INTO meta (key, value) VALUES ('repository_id', lower(hex(randomblob(16))))",
    "INSERT INTO meta (key, value) VALUES ('archive_key', lower(hex(randomblob(32))))",
)

_V4: tuple[str, ...] = (
    # The library of a pool's storage resources (templates, ISOs, shared disks …): files
    # registered or imported, waiting for approval or approved. One record per path of a
    # pool. A file gone from the storage keeps its record, flagged by missing_since.
    """
    CREATE TABLE resources (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        kind TEXT NOT NULL,
        pool TEXT NOT NULL,
        path TEXT NOT NULL,
        name TEXT NOT NULL,
        size INTEGER,
        sha256 TEXT,
        status TEXT NOT NULL,
        why TEXT,
        source_url TEXT,
        percent REAL,
        registered_by TEXT,
        registered_at REAL,
        imported_by TEXT,
        imported_at REAL,
        approved_by TEXT,
        approved_at REAL,
        missing_since REAL,
        UNIQUE (pool, path)
    )
    """,
)

_V_SHARED_DISKS: tuple[str, ...] = (
    # Shared disks ovmtui created, and whether each was made shareable (cluster disks that
    # several VMs write): what the one-writer rule asks of a disk no VM holds yet. A disk
    # of the storage that is not here is judged by how its holders hold it.
    """
    CREATE TABLE shared_disk (
        pool TEXT NOT NULL,
        name TEXT NOT NULL,
        path TEXT NOT NULL,
        shareable INTEGER NOT NULL,
        size_bytes INTEGER,
        created_by TEXT NOT NULL,
        created_at REAL NOT NULL,
        PRIMARY KEY (pool, name)
    )
    """,
)

_V_POOL_IDS: tuple[str, ...] = (
    # Each pool's id, written into the `.ovmtui-pool` marker on its shared storage so that a
    # connection test knows a host sees the same storage as the pool's other hosts (issue
    # 17). Given on first use (Repository.pool_id), so pools created later get one too.
    "ALTER TABLE pools ADD COLUMN pool_id TEXT",
)

_V_DEFINITIONS: tuple[str, ...] = (
    # Definitions kept (host restore, `ovmtui history`): a version each time a definition is
    # first seen or changes. A VM's versions follow its UUID wherever it goes; a network's
    # or storage pool's are its host's (each host has its own "default" network).
    """
    CREATE TABLE definition_versions (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        kind TEXT NOT NULL,
        uuid TEXT NOT NULL,
        pool TEXT NOT NULL,
        host TEXT NOT NULL,
        name TEXT NOT NULL,
        sha256 TEXT NOT NULL,
        at REAL NOT NULL,
        text TEXT NOT NULL
    )
    """,
    "CREATE INDEX definition_versions_uuid ON definition_versions(kind, uuid, id)",
    # Where each was last seen and how (VMs: active or not; networks, pools: running), with
    # the version it had there, since when: what a host restore defines again. A VM has one
    # row (it is on one host), kept when its host stops reporting it: that is what a restore
    # is for.
    """
    CREATE TABLE definition_places (
        kind TEXT NOT NULL,
        uuid TEXT NOT NULL,
        pool TEXT NOT NULL,
        host TEXT NOT NULL,
        name TEXT NOT NULL,
        sha256 TEXT,
        active INTEGER NOT NULL DEFAULT 0,
        since REAL NOT NULL,
        PRIMARY KEY (kind, uuid, pool, host)
    )
    """,
    "CREATE INDEX definition_places_host ON definition_places(pool, host)",
)

MIGRATIONS: tuple[tuple[str, ...], ...] = (
    _V1,
    _V2,
    _V3,
    _V4,
    _V_SHARED_DISKS,
    _V_POOL_IDS,
    _V_DEFINITIONS,
)

SCHEMA_VERSION = len(MIGRATIONS)


def sqlite_uri(path: Path, query: str) -> str:
    """A ``file:`` URI for ``path``: quoted, so a ``?``, ``#`` or ``%`` in it stays a name."""
    return f"file:{urllib.parse.quote(str(path.absolute()))}?{query}"


# -- opening: checks that never write -------------------------------------------------------


def check_file(path: Path) -> None:
    """Create the directory; refuse a file that is plainly not an SQLite database."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise RepositoryError(
            f"{path}: cannot create its directory: {exc.strerror or exc}"
        ) from None
    try:
        with path.open("rb") as file:
            header = file.read(100)
    except FileNotFoundError:
        # A new repository: readable by its owner only, since it holds the key that signs
        # the definition archives (SQLite gives its -wal and -shm the same mode).
        try:
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        except FileExistsError:
            pass  # another process created it meanwhile
        except OSError as exc:
            raise RepositoryError(f"{path}: cannot create it: {exc.strerror or exc}") from None
        return
    except IsADirectoryError:
        raise RepositoryError(f"{path}: is a directory, not a repository file") from None
    except OSError as exc:
        raise RepositoryError(f"{path}: cannot read it: {exc.strerror or exc}") from None
    if not header:
        return  # an empty file is a new repository
    if not header.startswith(SQLITE_MAGIC):
        if SQLITE_MAGIC.startswith(header):
            raise RepositoryError(f"{path}: the database is truncated; {LEAVE_ALONE}")
        raise RepositoryError(
            f"{path}: not an SQLite database, so not an ovmtui repository; {LEAVE_ALONE}. "
            "Move it away or pass another --repository path."
        )
    if len(header) < 100:
        raise RepositoryError(f"{path}: the database is truncated; {LEAVE_ALONE}")


async def check_database(db: aiosqlite.Connection, path: Path) -> bool:
    """Refuse a damaged, foreign or newer database; True when it needs no migration."""
    # One read transaction, so every question below sees the same version of the file:
    # read one by one, a second process creating the repository could commit in between,
    # and its tables would be seen without the marker it wrote with them.
    await db.execute("BEGIN")
    try:
        current = await _check_snapshot(db, path)
    except BaseException:
        with contextlib.suppress(sqlite3.Error):
            await db.execute("ROLLBACK")
        raise
    await db.execute("COMMIT")
    return current


async def _check_snapshot(db: aiosqlite.Connection, path: Path) -> bool:
    problems = [str(row[0]) for row in await fetch_rows(db, "PRAGMA quick_check")]
    if problems != ["ok"]:
        shown = "; ".join(problems[:3]) + ("; …" if len(problems) > 3 else "")
        raise RepositoryError(
            f"{path}: the database is damaged (truncated or corrupt): {shown}. "
            f"{LEAVE_ALONE.capitalize()}; restore a backup or move it away."
        )
    app_id = int(await fetch_value(db, "PRAGMA application_id"))
    version = int(await fetch_value(db, "PRAGMA user_version"))
    if app_id == APPLICATION_ID:
        if version > SCHEMA_VERSION:
            raise _newer(path, version)
        return version == SCHEMA_VERSION
    if app_id != 0:
        raise RepositoryError(
            f"{path}: an SQLite database of another application (application_id "
            f"{app_id & 0xFFFFFFFF:#010x}), not an ovmtui repository; {LEAVE_ALONE}"
        )
    tables = [
        str(row[0])
        for row in await fetch_rows(
            db, "SELECT name FROM sqlite_master WHERE name NOT LIKE 'sqlite_%' ORDER BY name"
        )
    ]
    if tables or version != 0:
        listed = ", ".join(tables[:5]) + (", …" if len(tables) > 5 else "")
        raise RepositoryError(
            f"{path}: an SQLite database without the ovmtui marker"
            + (f" (it has tables: {listed})" if tables else "")
            + f", so not an ovmtui repository; {LEAVE_ALONE}. "
            "Pass another --repository path."
        )
    return False


def _newer(path: Path, version: int) -> RepositoryError:
    return RepositoryError(
        f"{path}: written by a newer ovmtui: schema {version}, this version knows "
        f"{SCHEMA_VERSION}. Upgrade ovmtui; {LEAVE_ALONE}."
    )


async def migrate(db: aiosqlite.Connection, path: Path) -> None:
    await db.execute("BEGIN IMMEDIATE")
    try:
        # Read again under the write lock: another process may have migrated meanwhile.
        version = int(await fetch_value(db, "PRAGMA user_version"))
        app_id = int(await fetch_value(db, "PRAGMA application_id"))
        if app_id not in (0, APPLICATION_ID):
            raise RepositoryError(f"{path}: another application took the file over")
        if version > SCHEMA_VERSION:
            raise _newer(path, version)
        for statements in MIGRATIONS[version:]:
            for statement in statements:
                await db.execute(statement)
        await db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        await db.execute(f"PRAGMA application_id = {APPLICATION_ID}")
    except BaseException:
        with contextlib.suppress(sqlite3.Error):
            await db.execute("ROLLBACK")
        raise
    await db.execute("COMMIT")


# SQLite's primary result codes (the low byte of an extended code such as SQLITE_IOERR_SHMSIZE).
SQLITE_READONLY = 8
SQLITE_IOERR = 10
SQLITE_FULL = 13
SQLITE_CANTOPEN = 14


def sqlite_code(exc: sqlite3.Error) -> int | None:
    """SQLite's primary result code of an error, when Python kept it (3.11 does)."""
    code = getattr(exc, "sqlite_errorcode", None)
    return code & 0xFF if isinstance(code, int) else None


def out_of_space(exc: sqlite3.Error, path: Path | None = None) -> bool:
    """Whether ``exc`` comes from a full disk: SQLite says so, or the disk under ``path`` is.

    A full disk often reads as "disk I/O error" (growing the -shm index failed) or "unable
    to open database file" (no inode left for it): those ask the file system.
    """
    code, text = sqlite_code(exc), str(exc)
    if code == SQLITE_FULL or "disk is full" in text:
        return True
    if code is None:
        io_failed = "disk I/O error" in text or "unable to open" in text
    else:
        io_failed = code in (SQLITE_IOERR, SQLITE_CANTOPEN)
    return io_failed and path is not None and file_system_full(path)


def describe_error(exc: sqlite3.Error, path: Path | None = None) -> str:
    """What went wrong, for the operator; ``path`` (the repository) lets a full disk be named."""
    text = str(exc)
    if out_of_space(exc, path):
        where = no_space_left(path) if path is not None else "no space left on its disk"
        return f"{where}; free some space there and try again (SQLite: {text})"
    if "malformed" in text or "not a database" in text:
        return (
            f"the database is damaged (truncated or corrupt): {text}. "
            f"{LEAVE_ALONE.capitalize()}; restore a backup or move it away."
        )
    if "locked" in text or "busy" in text:
        return f"locked by another process for more than {BUSY_TIMEOUT_MS // 1000} s: {text}"
    return text


# -- queries ---------------------------------------------------------------------------------


async def fetch_rows(
    db: aiosqlite.Connection, sql: str, params: Sequence[Any] = ()
) -> list[tuple[Any, ...]]:
    async with db.execute(sql, params) as cursor:
        return [tuple(row) for row in await cursor.fetchall()]


async def fetch_value(db: aiosqlite.Connection, sql: str, params: Sequence[Any] = ()) -> Any:
    async with db.execute(sql, params) as cursor:
        row = await cursor.fetchone()
    return None if row is None else row[0]
