"""Backups of the repository: online copies, named and kept per repository, listed with whose
each is, what it holds and whether it verifies.

A backup's name says whose it is: ``<repository file stem>-<first 12 hex digits of the
repository's identity>-<UTC time>.sqlite``; inside, ``meta`` carries the full identity and
the path it was taken from. Several repositories may share one ``backups/`` folder (the
demo's and the real one under ``$XDG_DATA_HOME/ovmtui/``): rotation only ever touches files
named for the repository being backed up.

A backup is written as ``NAME.partial``, locked by its writer (``files.claimed``) and renamed
only once complete, so a failure (a full disk) leaves no half-written backup that could later
pass for a good one, and a killed backup's ``.partial`` is told from one being written by
its lock: the next backup into the folder removes only the unlocked ones.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import errno
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ovmtui.errors import RepositoryError
from ovmtui.files import claimed, publish, remove_debris
from ovmtui.space import no_space_left
from ovmtui.store.journal import JournalRecord, verify_chain
from ovmtui.store.repository import SELECT_RECORD, Repository
from ovmtui.store.schema import APPLICATION_ID, SCHEMA_VERSION, sqlite_uri

KEEP_DEFAULT = 30
_SUFFIX = ".sqlite"
PARTIAL = ".partial"
_STAMP = "%Y%m%dT%H%M%S%fZ"
_ID_DIGITS = 12


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
    # Whose it is: the identity of the repository it was taken from (None: an ovmtui older
    # than repository identities made it, so whose it is cannot be told), and that
    # repository's path at the time.
    repository_id: str | None = None
    source: str | None = None
    pools: tuple[str, ...] = ()
    host_names: tuple[str, ...] = ()

    def whose(self, identity: str | None) -> str:
        """Whose backup this is, said to the owner of repository ``identity``."""
        if self.repository_id is None:
            return "origin unknown (made before repositories had an identity)"
        if identity is not None and self.repository_id == identity:
            return "this repository"
        where = f" at {self.source}" if self.source else ""
        return f"another repository ({self.repository_id[:_ID_DIGITS]}{where})"


def default_backup_dir(repository: Path) -> Path:
    return repository.parent / "backups"


def backup_prefix(repository: Repository) -> str:
    """The start of the names of ``repository``'s backups: rotation touches no other."""
    return f"{repository.path.stem}-{repository.identity[:_ID_DIGITS]}-"


async def create_backup(
    repository: Repository,
    directory: Path,
    *,
    keep: int = KEEP_DEFAULT,
    clock: Callable[[], float] = time.time,
) -> Path:
    """Back ``repository`` up into ``directory``; keep its newest ``keep`` backups there."""
    stamp = datetime.datetime.fromtimestamp(clock(), datetime.UTC).strftime(_STAMP)
    prefix = backup_prefix(repository)
    final = directory / f"{prefix}{stamp}{_SUFFIX}"
    partial = final.with_name(final.name + PARTIAL)
    try:
        await asyncio.to_thread(directory.mkdir, parents=True, exist_ok=True)
        await asyncio.to_thread(remove_debris, directory, PARTIAL)
        with claimed(partial):
            await repository.backup_to(partial)
            await asyncio.to_thread(_label, partial, repository.path)
            await asyncio.to_thread(publish, partial, final)
    except (OSError, sqlite3.Error) as exc:
        with contextlib.suppress(OSError):
            await asyncio.to_thread(partial.unlink, missing_ok=True)
        raise RepositoryError(
            f"backup to {directory} failed: {_why(exc, directory)}; the repository was not "
            "changed and no partial backup was left"
        ) from None
    await asyncio.to_thread(_prune, directory, prefix, keep)
    return final


def _why(exc: OSError | sqlite3.Error, directory: Path) -> str:
    full = isinstance(exc, OSError) and exc.errno == errno.ENOSPC
    full = full or (isinstance(exc, sqlite3.Error) and "disk is full" in str(exc))
    return no_space_left(directory) if full else str(exc)


def _label(partial: Path, source: Path) -> None:
    """Write into the copy where it came from (its identity came with the copy)."""
    db = sqlite3.connect(partial)
    try:
        with db:
            db.execute(
                "INSERT OR REPLACE INTO meta (key, value) VALUES ('backup_of', ?)",
                (str(source.absolute()),),
            )
    finally:
        db.close()


def _prune(directory: Path, prefix: str, keep: int) -> None:
    own = [path for path in list_backups(directory) if path.name.startswith(prefix)]
    for old in own[: -keep if keep > 0 else 0]:
        with contextlib.suppress(OSError):
            old.unlink()


def list_backups(directory: Path) -> list[Path]:
    """Every backup in ``directory``, whoever's, oldest first; never work in progress."""
    if not directory.is_dir():
        return []
    found = [
        path
        for path in directory.iterdir()
        if path.name.endswith(_SUFFIX) and path.is_file() and not path.name.startswith(".")
    ]
    return sorted(found, key=lambda path: (backup_time(path), path.name))


def backup_time(path: Path) -> float:
    stamp = path.name[: -len(_SUFFIX)].rsplit("-", 1)[-1]
    try:
        moment = datetime.datetime.strptime(stamp, _STAMP).replace(tzinfo=datetime.UTC)
    except ValueError:
        try:
            return path.stat().st_mtime
        except OSError:
            return 0.0
    return moment.timestamp()


async def inspect_backup(path: Path, *, live: bool = False) -> BackupInfo:
    """What ``path`` holds. ``live``: a repository in use, read with its write-ahead log."""
    return await asyncio.to_thread(_inspect, path, live)


def _connect(path: Path, live: bool) -> sqlite3.Connection:
    if live:
        # A repository another process has open keeps its latest transactions in the -wal;
        # the main file alone shows an old state. Reading it still changes nothing.
        with contextlib.suppress(sqlite3.Error):
            db = sqlite3.connect(sqlite_uri(path, "mode=ro"), uri=True)
            try:
                db.execute("SELECT count(*) FROM sqlite_master").fetchone()
            except sqlite3.Error:
                db.close()
                raise
            return db
    # Read-only and immutable: looking at a backup must never change it.
    return sqlite3.connect(sqlite_uri(path, "mode=ro&immutable=1"), uri=True)


def _inspect(path: Path, live: bool = False) -> BackupInfo:
    size = path.stat().st_size
    when = path.stat().st_mtime if live else backup_time(path)
    known: dict[str, object] = {}

    def info(verified: bool, problem: str | None = None) -> BackupInfo:
        def number(key: str) -> int | None:
            value = known.get(key)
            return value if isinstance(value, int) else None

        def text(key: str) -> str | None:
            value = known.get(key)
            return value if isinstance(value, str) else None

        names = known.get("names")
        pools, hosts = names if isinstance(names, tuple) else ((), ())
        return BackupInfo(
            str(path),
            when,
            size,
            number("schema"),
            number("hosts"),
            number("vms"),
            number("records"),
            verified,
            problem,
            text("id"),
            text("source"),
            pools,
            hosts,
        )

    try:
        db = _connect(path, live)
    except sqlite3.Error as exc:
        return info(False, f"cannot open: {exc}")
    try:
        check = [str(row[0]) for row in db.execute("PRAGMA integrity_check")]
        if check != ["ok"]:
            return info(False, "integrity check failed: " + "; ".join(check[:3]))
        if int(db.execute("PRAGMA application_id").fetchone()[0]) != APPLICATION_ID:
            return info(False, "not an ovmtui repository")
        schema = known["schema"] = int(db.execute("PRAGMA user_version").fetchone()[0])
        if schema > SCHEMA_VERSION:
            return info(False, f"schema {schema} is newer than this ovmtui ({SCHEMA_VERSION})")
        if schema >= 3:
            meta = dict(db.execute("SELECT key, value FROM meta").fetchall())
            known["id"], known["source"] = meta.get("repository_id"), meta.get("backup_of")
        known["hosts"] = int(db.execute("SELECT count(*) FROM hosts").fetchone()[0])
        known["vms"] = int(db.execute("SELECT count(*) FROM vm_state").fetchone()[0])
        known["names"] = (
            tuple(str(r[0]) for r in db.execute("SELECT name FROM pools ORDER BY position, name")),
            tuple(
                f"{r[0]}/{r[1]}"
                for r in db.execute("SELECT pool, name FROM hosts ORDER BY pool, position, name")
            ),
        )
        rows = db.execute(f"{SELECT_RECORD} ORDER BY id").fetchall()
        seq = db.execute("SELECT seq FROM sqlite_sequence WHERE name = 'journal'").fetchone()
        verdict = verify_chain(
            (JournalRecord.from_row(row) for row in rows), None if seq is None else int(seq[0])
        )
        known["records"] = verdict.records
        if not verdict.ok:
            return info(
                False, f"journal chain broken at record {verdict.first_broken}: {verdict.reason}"
            )
        return info(True)
    except sqlite3.Error as exc:
        return info(False, f"unreadable: {exc}")
    finally:
        db.close()
