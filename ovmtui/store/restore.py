"""Restoring the repository from a backup, all or nothing, journaled in the same step.

The order of the steps is what makes a killed restore harmless:

1. verify the candidate (integrity, ovmtui's application id, schema, journal chain) and
   whose it is: a backup of another repository (or of unknown origin) is refused unless
   asked for explicitly;
2. claim ``NAME.restoring`` beside the repository (same file system, so the final rename is
   atomic) with a lock held for the whole restore: a second restore is refused while it
   runs, and a killed restore's leftover is removed by the next one because nobody holds it;
   copy the candidate into it and check the copy;
3. back the current repository up with the online backup API;
4. bring the copy to this schema, give it the current repository's identity (a restore
   changes what the place holds, not whose backups are whose), and append the restore's
   journal record to it: which file, whose backup, where the old repository was saved;
5. take the current repository out of WAL mode: SQLite checkpoints and deletes its ``-wal``,
   and refuses while another process has it open, which is how a restore under a running
   ovmtui elsewhere is detected. A ``-wal`` left beside the new file would be replayed into
   it, so nothing is renamed while one exists;
6. ``rename(NAME.restoring, NAME)`` and fsync the directory.

Killed before step 6, the old repository is whole, without a record of the restore (at worst
out of WAL mode, which the next open restores); killed after, the new one is, with it.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shlex
import shutil
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ovmtui.errors import ForeignBackup, RepositoryError
from ovmtui.files import FileInUse, claimed, fsync_directory, fsync_file, remove_debris
from ovmtui.format import timestamp
from ovmtui.operations import Operation, Operations
from ovmtui.store.backup import BackupInfo, create_backup, inspect_backup
from ovmtui.store.repository import Repository
from ovmtui.store.schema import sqlite_uri

Progress = Callable[[str], None]

RESTORING = ".restoring"


@dataclass(frozen=True, slots=True)
class RestorePlan:
    """What a restore would do; shown to the operator before asking."""

    repository: Path
    candidate: BackupInfo
    current: BackupInfo | None  # None: no repository there yet
    # The candidate is not known as this repository's backup, and the operator said to go on.
    from_other: bool = False


@dataclass(frozen=True, slots=True)
class RestoreOutcome:
    plan: RestorePlan
    previous: Path | None  # where the replaced repository was saved


def describe_plan(plan: RestorePlan) -> str:
    """The restore's question, in words: what goes, what comes."""

    def holds(info: BackupInfo) -> str:
        when = timestamp(info.time)
        return (
            f"{info.path} ({when}, schema {info.schema_version}, {info.hosts} hosts, "
            f"{info.vms} VMs, {info.journal_records} journal records)"
        )

    now = "nothing yet" if plan.current is None else holds(plan.current)
    if plan.current is not None and not plan.current.verified:
        now = f"{plan.current.path} (does not verify: {plan.current.problem})"
    text = f"Replace the repository\n  {now}\nwith the backup\n  {holds(plan.candidate)}"
    if plan.from_other:
        text += "\n" + brings_in(plan)
    return text


def brings_in(plan: RestorePlan) -> str:
    """What a backup of another repository brings: whose it is, and pools and hosts new here."""
    current = plan.current
    whose = plan.candidate.whose(None if current is None else current.repository_id)
    pools = [p for p in plan.candidate.pools if current is None or p not in current.pools]
    hosts = [h for h in plan.candidate.host_names if current is None or h not in current.host_names]
    lines = [f"It is a backup of {whose}; it brings in"]
    lines.append(f"  pools not in this repository: {', '.join(pools) or 'none'}")
    lines.append(f"  hosts not in this repository: {', '.join(hosts) or 'none'}")
    if current is not None:
        gone = [h for h in current.host_names if h not in plan.candidate.host_names]
        lines.append(f"  and drops the hosts it does not have: {', '.join(gone) or 'none'}")
    return "\n".join(lines)


def staging_path(repository: Path) -> Path:
    return repository.with_name(repository.name + RESTORING)


async def plan_restore(
    repository: Path, candidate: Path, *, from_other_repository: bool = False
) -> RestorePlan:
    """Verify the candidate; raises ``RepositoryError`` (nothing changed) when it is refused.

    A backup that is not known as this repository's (another identity, or none: made before
    repositories had one) is refused unless ``from_other_repository``.
    """
    candidate = await asyncio.to_thread(candidate.absolute)
    exists = await asyncio.to_thread(_check_paths, repository, candidate)
    info = await inspect_backup(candidate)
    if not info.verified:
        raise RepositoryError(
            f"{candidate}: refused, {info.problem}; the repository was not changed"
        )
    # The live state, write-ahead log included: a running ovmtui may have it open.
    current = await inspect_backup(repository, live=True) if exists else None
    foreign = current is not None and (
        info.repository_id is None or info.repository_id != current.repository_id
    )
    if current is not None and not current.verified and current.repository_id is None:
        # A damaged repository cannot say whose it is: restoring is what it needs.
        foreign = False
    plan = RestorePlan(repository, info, current, from_other=foreign)
    if foreign and not from_other_repository:
        assert current is not None
        raise ForeignBackup(
            f"{candidate}: refused, it is not a backup of {repository}: it is a backup of "
            f"{info.whose(current.repository_id)}. If bringing that repository's pools, "
            "hosts and journal in is what you want, ask for it with --from-other-repository; "
            f"the repository was not changed.\n{brings_in(plan)}"
        )
    return plan


def _check_paths(repository: Path, candidate: Path) -> bool:
    """Whether a repository exists yet; refuses a candidate that cannot be one."""
    if not candidate.is_file():
        raise RepositoryError(f"{candidate}: no such backup file; nothing was changed")
    wal = candidate.with_name(candidate.name + "-wal")
    if wal.exists() and wal.stat().st_size > 0:
        # A live repository, not a backup: its latest transactions are in the -wal, which
        # the copy would not see. A backup of it is one consistent file.
        raise RepositoryError(
            f"{candidate}: refused, it is a repository in use (it has a write-ahead log), not "
            f"a backup: back it up first (ovmtui backup --repository {candidate}) and restore "
            "that; nothing was changed"
        )
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
    The restore is journaled with its result: in the restored repository, written before the
    swap that makes it the repository; in the current one when the restore failed.
    """
    candidate = Path(plan.candidate.path)
    try:
        return await _restore(
            plan, backup_dir=backup_dir, user=user, progress=progress, clock=clock
        )
    except RepositoryError as exc:
        await record_restore(plan.repository, candidate, user, ok=False, detail=exc.message)
        raise


def _restore_command(candidate: Path, from_other: bool) -> str:
    words = ["ovmtui", "restore", str(candidate)]
    return shlex.join([*words, "--from-other-repository"] if from_other else words)


async def record_restore(
    repository: Path, candidate: Path, user: str, *, ok: bool, detail: str
) -> None:
    """Journal a restore (or its refusal) in the repository, if there is a usable one."""
    if not await asyncio.to_thread(repository.exists):
        return
    with contextlib.suppress(RepositoryError):
        async with await Repository.open(repository) as repo:
            await _journal(repo, _restore_command(candidate, False), user, ok=ok, detail=detail)


async def _journal(repo: Repository, command: str, user: str, *, ok: bool, detail: str) -> None:
    """The restore's record, in ``repo``: written whole, started and finished at once."""
    operations = Operations(user=user, journal=lambda: repo)
    record = await operations.begin(Operation("restore", command))
    await record.finish(ok=ok, detail=detail)


async def _restore(
    plan: RestorePlan,
    *,
    backup_dir: Path,
    user: str,
    progress: Progress | None,
    clock: Callable[[], float],
) -> RestoreOutcome:
    say = progress if progress is not None else (lambda _step: None)
    repository, candidate = plan.repository, Path(plan.candidate.path)
    staged = staging_path(repository)
    # A killed restore's leftovers go; a restore still running keeps its lock, and this one
    # is refused below rather than pulling the file from under it.
    await asyncio.to_thread(remove_debris, repository.parent, RESTORING)
    try:
        with claimed(staged) as fd:
            os.ftruncate(fd, 0)
            try:
                say(f"copying {candidate} to {staged}")
                await asyncio.to_thread(_stage, candidate, staged)
                # Again, on the copy: the file may have changed while the operator was asked.
                staged_info = await inspect_backup(staged)
                if not staged_info.verified:
                    raise RepositoryError(
                        f"{candidate}: refused, {staged_info.problem}; the repository was not "
                        "changed"
                    )
                previous, current = None, None
                if await asyncio.to_thread(repository.exists):
                    say(f"backing up the current repository to {backup_dir}")
                    previous, current = await _save_current(repository, backup_dir, clock)
                    say(f"saved the current repository as {previous}")
                say(f"recording the restore in {staged}")
                await _prepare(staged, plan, current, previous, user)
                say(f"replacing {repository}")
                await asyncio.to_thread(_swap, staged, repository)
            except BaseException:
                with contextlib.suppress(OSError):
                    staged.unlink(missing_ok=True)
                raise
    except FileInUse:
        raise RepositoryError(
            f"another restore of {repository} is running ({staged} is held): wait for it; "
            "nothing was changed"
        ) from None
    except OSError as exc:
        raise RepositoryError(
            f"cannot restore beside {repository}: {exc}; nothing was changed"
        ) from None
    say("restored")
    return RestoreOutcome(plan, previous)


async def _prepare(
    staged: Path,
    plan: RestorePlan,
    current: Repository | None,
    previous: Path | None,
    user: str,
) -> None:
    """Make the staged copy the repository it will be: schema, identity, the restore's record."""
    candidate = Path(plan.candidate.path)
    try:
        async with await Repository.open(staged) as copy:
            if current is not None:
                await copy.adopt_identity(current)
            saved = f"; the previous repository was saved as {previous}" if previous else ""
            origin = ""
            if plan.from_other:
                origin = "; " + brings_in(plan).replace("\n  ", " ").replace("\n", " ")
            detail = f"restored {candidate}{saved}{origin}"
            await _journal(
                copy, _restore_command(candidate, plan.from_other), user, ok=True, detail=detail
            )
    finally:
        if current is not None:
            await current.close()
    await asyncio.to_thread(_settle, staged)


def _settle(staged: Path) -> None:
    """One self-contained file before the rename: no -wal or -shm to leave behind."""
    try:
        db = sqlite3.connect(staged, isolation_level=None)
        try:
            db.execute("PRAGMA journal_mode = DELETE")
        finally:
            db.close()
        fsync_file(staged)
    except (OSError, sqlite3.Error) as exc:
        raise RepositoryError(
            f"{staged}: cannot finish the copy: {exc}; nothing was changed"
        ) from None


def _stage(candidate: Path, staged: Path) -> None:
    try:
        source = sqlite3.connect(sqlite_uri(candidate, "mode=ro&immutable=1"), uri=True)
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


async def _save_current(
    repository: Path, backup_dir: Path, clock: Callable[[], float]
) -> tuple[Path, Repository | None]:
    """Back the current repository up; also return it, still open, for its identity."""
    try:
        current = await Repository.open(repository)
    except RepositoryError:
        # A damaged repository cannot be backed up through SQLite; keep its bytes instead.
        return await asyncio.to_thread(_copy_raw, repository, backup_dir, clock()), None
    try:
        # keep=0: pruning now could delete the very backup being restored.
        return await create_backup(current, backup_dir, keep=0, clock=clock), current
    except BaseException:
        await current.close()
        raise


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
