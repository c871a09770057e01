"""Restoring the repository from a backup, all or nothing.

The order of the steps is what makes a killed restore harmless:

1. verify the candidate (integrity, ovmtui's application id, schema, journal chain);
2. copy it beside the repository as ``NAME.restoring`` (same file system, so the final rename
   is atomic) and check the copy;
3. back the current repository up with the online backup API;
4. take the current repository out of WAL mode: SQLite checkpoints and deletes its ``-wal``,
   and refuses while another process has it open, which is how a restore under a running
   ovmtui elsewhere is detected. A ``-wal`` left beside the new file would be replayed into
   it, so nothing is renamed while one exists;
5. ``rename(NAME.restoring, NAME)`` and fsync the directory.

Killed before step 5, the old repository is whole (at worst out of WAL mode, which the next
open restores); killed after, the new one is. A stale ``.restoring`` is removed by the next
restore.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import os
import shlex
import shutil
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ovmtui.errors import RepositoryError
from ovmtui.files import fsync_directory, fsync_file
from ovmtui.store.backup import BackupInfo, create_backup, inspect_backup
from ovmtui.store.repository import Repository

Progress = Callable[[str], None]


@dataclass(frozen=True, slots=True)
class RestorePlan:
    """What a restore would do; shown to the operator before asking."""

    repository: Path
    candidate: BackupInfo
    current: BackupInfo | None  # None: no repository there yet


@dataclass(frozen=True, slots=True)
class RestoreOutcome:
    plan: RestorePlan
    previous: Path | None  # where the replaced repository was saved


def describe_plan(plan: RestorePlan) -> str:
    """The restore's question, in words: what goes, what comes."""

    def holds(info: BackupInfo) -> str:
        when = datetime.datetime.fromtimestamp(info.time).strftime("%Y-%m-%d %H:%M:%S")
        return (
            f"{info.path} ({when}, schema {info.schema_version}, {info.hosts} hosts, "
            f"{info.vms} VMs, {info.journal_records} journal records)"
        )

    now = "nothing yet" if plan.current is None else holds(plan.current)
    if plan.current is not None and not plan.current.verified:
        now = f"{plan.current.path} (does not verify: {plan.current.problem})"
    return f"Replace the repository\n  {now}\nwith the backup\n  {holds(plan.candidate)}"


def staging_path(repository: Path) -> Path:
    return repository.with_name(repository.name + ".restoring")


async def plan_restore(repository: Path, candidate: Path) -> RestorePlan:
    """Verify the candidate; raises ``RepositoryError`` (nothing changed) when it is refused."""
    candidate = await asyncio.to_thread(candidate.absolute)
    exists = await asyncio.to_thread(_check_paths, repository, candidate)
    info = await inspect_backup(candidate)
    if not info.verified:
        raise RepositoryError(
            f"{candidate}: refused, {info.problem}; the repository was not changed"
        )
    current = await inspect_backup(repository) if exists else None
    return RestorePlan(repository, info, current)


def _check_paths(repository: Path, candidate: Path) -> bool:
    """Whether a repository exists yet; refuses a candidate that cannot be one."""
    if not candidate.is_file():
        raise RepositoryError(f"{candidate}: no such backup file; nothing was changed")
    exists = repository.exists()
    if exists and os.path.samefile(repository, candidate):
        raise RepositoryError(f"{candidate}: that is the repository itself; nothing was changed")
    return exists


async def restore_repository(
    plan: RestorePlan,
    *,
    backup_dir: Path,
    user: str,
    progress: Progress | None = None,
    clock: Callable[[], float] = time.time,
) -> RestoreOutcome:
    """Replace the repository with the plan's candidate (see the module's docstring).

    The caller must have closed its own connections to the repository. Raises
    ``RepositoryError`` with the repository unchanged when any step before the rename fails.
    The restore is journaled with its result: in the restored repository when it worked, in
    the current one when it did not.
    """
    candidate = Path(plan.candidate.path)
    try:
        outcome = await _restore(plan, backup_dir=backup_dir, progress=progress, clock=clock)
    except RepositoryError as exc:
        await record_restore(plan.repository, candidate, user, ok=False, detail=exc.message)
        raise
    saved = f"; the previous repository was saved as {outcome.previous}" if outcome.previous else ""
    await record_restore(
        plan.repository, candidate, user, ok=True, detail=f"restored {candidate}{saved}"
    )
    return outcome


async def record_restore(
    repository: Path, candidate: Path, user: str, *, ok: bool, detail: str
) -> None:
    """Journal a restore (or its refusal) in the repository, if there is a usable one."""
    if not await asyncio.to_thread(repository.exists):
        return
    command = f"ovmtui restore {shlex.quote(str(candidate))}"
    with contextlib.suppress(RepositoryError):
        async with await Repository.open(repository) as repo:
            started = await repo.journal_started(
                user=user,
                pool=None,
                host=None,
                vm=None,
                uuid=None,
                operation="restore",
                command=command,
            )
            await repo.journal_finished(started, ok=ok, detail=detail)


async def _restore(
    plan: RestorePlan,
    *,
    backup_dir: Path,
    progress: Progress | None,
    clock: Callable[[], float],
) -> RestoreOutcome:
    say = progress if progress is not None else (lambda _step: None)
    repository, candidate = plan.repository, Path(plan.candidate.path)
    staged = staging_path(repository)
    await asyncio.to_thread(staged.unlink, missing_ok=True)  # a killed restore's leftover
    try:
        say(f"copying {candidate} to {staged}")
        await asyncio.to_thread(_stage, candidate, staged)
        # Again, on the copy: the file may have changed while the operator was asked.
        staged_info = await inspect_backup(staged)
        if not staged_info.verified:
            raise RepositoryError(
                f"{candidate}: refused, {staged_info.problem}; the repository was not changed"
            )
        previous = None
        if await asyncio.to_thread(repository.exists):
            say(f"backing up the current repository to {backup_dir}")
            previous = await _save_current(repository, backup_dir, clock)
            say(f"saved the current repository as {previous}")
        say(f"replacing {repository}")
        await asyncio.to_thread(_swap, staged, repository)
    except BaseException:
        with contextlib.suppress(OSError):
            staged.unlink(missing_ok=True)
        raise
    say("restored")
    return RestoreOutcome(plan, previous)


def _stage(candidate: Path, staged: Path) -> None:
    try:
        source = sqlite3.connect(f"file:{candidate}?mode=ro&immutable=1", uri=True)
        try:
            copy = sqlite3.connect(staged)
            try:
                source.backup(copy)
                copy.execute("PRAGMA journal_mode = DELETE")
                check = copy.execute("PRAGMA quick_check").fetchone()[0]
            finally:
                copy.close()
        finally:
            source.close()
        if check != "ok":
            raise RepositoryError(f"{staged}: the copy does not verify ({check})")
        fsync_file(staged)
    except (OSError, sqlite3.Error) as exc:
        raise RepositoryError(
            f"cannot copy {candidate} beside the repository: {exc}; nothing was changed"
        ) from None


async def _save_current(repository: Path, backup_dir: Path, clock: Callable[[], float]) -> Path:
    try:
        current = await Repository.open(repository)
    except RepositoryError:
        # A damaged repository cannot be backed up through SQLite; keep its bytes instead.
        return await asyncio.to_thread(_copy_raw, repository, backup_dir, clock())
    try:
        # keep=0: pruning now could delete the very backup being restored.
        return await create_backup(current, backup_dir, keep=0, clock=clock)
    finally:
        await current.close()


def _copy_raw(repository: Path, backup_dir: Path, now: float) -> Path:
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(now))
    target = backup_dir / f"unreadable-{repository.name}-{stamp}"
    try:
        backup_dir.mkdir(parents=True, exist_ok=True)
        for suffix in ("", "-wal"):
            source = repository.with_name(repository.name + suffix)
            if source.exists():
                shutil.copy2(source, target.with_name(target.name + suffix))
    except OSError as exc:
        raise RepositoryError(
            f"cannot save the current repository to {backup_dir}: {exc}; nothing was changed"
        ) from None
    return target


def _swap(staged: Path, repository: Path) -> None:
    wal = repository.with_name(repository.name + "-wal")
    try:
        db = sqlite3.connect(repository, timeout=0.5, isolation_level=None)
    except sqlite3.Error as exc:
        raise RepositoryError(f"{repository}: {exc}; nothing was changed") from None
    try:
        try:
            mode = db.execute("PRAGMA journal_mode = DELETE").fetchone()[0]
        except sqlite3.OperationalError as exc:
            raise RepositoryError(
                f"{repository} is in use by another process ({exc}): close the other ovmtui "
                "first; nothing was changed"
            ) from None
        if str(mode).lower() != "delete" or (wal.exists() and wal.stat().st_size > 0):
            raise RepositoryError(
                f"{repository}: could not checkpoint its write-ahead log; nothing was changed"
            )
        with contextlib.suppress(sqlite3.Error):
            # Held across the rename: nobody writes into the old file as it goes.
            db.execute("BEGIN EXCLUSIVE")
        os.replace(staged, repository)
        fsync_directory(repository.parent)
    finally:
        db.close()
