"""Backups of the repository: online copies, listed with what they hold and whether they verify.

A backup is written as ``NAME.partial`` and renamed only once complete, so a failure (a full
disk) leaves no half-written backup that could later pass for a good one.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ovmtui.errors import RepositoryError
from ovmtui.files import publish, stamped_files
from ovmtui.store.journal import JournalRecord, verify_chain
from ovmtui.store.repository import SELECT_RECORD, Repository
from ovmtui.store.schema import APPLICATION_ID, SCHEMA_VERSION

KEEP_DEFAULT = 30
_PREFIX = "repository-"
_SUFFIX = ".sqlite"
_STAMP = "%Y%m%dT%H%M%S%fZ"


@dataclass(frozen=True, slots=True)
class BackupInfo:
    path: str
    time: float  # when it was taken (from its name), epoch seconds
    size_bytes: int
    schema_version: int | None
    hosts: int | None
    vms: int | None
    journal_records: int | None
    verified: bool
    problem: str | None = None


def default_backup_dir(repository: Path) -> Path:
    return repository.parent / "backups"


async def create_backup(
    repository: Repository,
    directory: Path,
    *,
    keep: int = KEEP_DEFAULT,
    clock: Callable[[], float] = time.time,
) -> Path:
    """Back ``repository`` up into ``directory``; keep the newest ``keep`` backups there."""
    stamp = datetime.datetime.fromtimestamp(clock(), datetime.UTC).strftime(_STAMP)
    final = directory / f"{_PREFIX}{stamp}{_SUFFIX}"
    partial = final.with_name(final.name + ".partial")
    try:
        await asyncio.to_thread(directory.mkdir, parents=True, exist_ok=True)
        await repository.backup_to(partial)
        await asyncio.to_thread(publish, partial, final)
    except (OSError, sqlite3.Error) as exc:
        with contextlib.suppress(OSError):
            await asyncio.to_thread(partial.unlink, missing_ok=True)
        raise RepositoryError(
            f"backup to {directory} failed: {exc}; the repository was not changed and no "
            "partial backup was left"
        ) from None
    await asyncio.to_thread(_prune, directory, keep)
    return final


def _prune(directory: Path, keep: int) -> None:
    for old in list_backups(directory)[: -keep if keep > 0 else 0]:
        with contextlib.suppress(OSError):
            old.unlink()


def list_backups(directory: Path) -> list[Path]:
    """Oldest first (the names sort by time)."""
    return stamped_files(directory, _PREFIX, _SUFFIX)


def backup_time(path: Path) -> float:
    stamp = path.name[len(_PREFIX) : -len(_SUFFIX)]
    try:
        moment = datetime.datetime.strptime(stamp, _STAMP).replace(tzinfo=datetime.UTC)
    except ValueError:
        return path.stat().st_mtime
    return moment.timestamp()


async def inspect_backup(path: Path) -> BackupInfo:
    return await asyncio.to_thread(_inspect, path)


def _inspect(path: Path) -> BackupInfo:
    size = path.stat().st_size
    when = backup_time(path)

    def refused(problem: str, **known: int | None) -> BackupInfo:
        return BackupInfo(
            str(path),
            when,
            size,
            known.get("schema"),
            known.get("hosts"),
            known.get("vms"),
            known.get("records"),
            False,
            problem,
        )

    try:
        # Read-only and immutable: looking at a backup must never change it.
        db = sqlite3.connect(f"file:{path}?mode=ro&immutable=1", uri=True)
    except sqlite3.Error as exc:
        return refused(f"cannot open: {exc}")
    try:
        check = [str(row[0]) for row in db.execute("PRAGMA integrity_check")]
        if check != ["ok"]:
            return refused("integrity check failed: " + "; ".join(check[:3]))
        if int(db.execute("PRAGMA application_id").fetchone()[0]) != APPLICATION_ID:
            return refused("not an ovmtui repository")
        schema = int(db.execute("PRAGMA user_version").fetchone()[0])
        if schema > SCHEMA_VERSION:
            return refused(
                f"schema {schema} is newer than this ovmtui ({SCHEMA_VERSION})", schema=schema
            )
        hosts = int(db.execute("SELECT count(*) FROM hosts").fetchone()[0])
        vms = int(db.execute("SELECT count(*) FROM vm_state").fetchone()[0])
        rows = db.execute(f"{SELECT_RECORD} ORDER BY id").fetchall()
        seq = db.execute("SELECT seq FROM sqlite_sequence WHERE name = 'journal'").fetchone()
        verdict = verify_chain(
            (JournalRecord.from_row(row) for row in rows), None if seq is None else int(seq[0])
        )
        if not verdict.ok:
            return refused(
                f"journal chain broken at record {verdict.first_broken}: {verdict.reason}",
                schema=schema,
                hosts=hosts,
                vms=vms,
                records=verdict.records,
            )
        return BackupInfo(str(path), when, size, schema, hosts, vms, verdict.records, True)
    except sqlite3.Error as exc:
        return refused(f"unreadable: {exc}")
    finally:
        db.close()
