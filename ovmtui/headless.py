"""Headless commands: the estate once, printed, then exit."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TextIO

from ovmtui import format as fmt
from ovmtui.config import EstateConfig
from ovmtui.errors import ActionRefused, ConsoleUnavailable, OvmError, RepositoryError
from ovmtui.model import EstateSnapshot, HostKey, HostStatus, PlacedVm, Vm, VmAction
from ovmtui.services.actions import ActionResult
from ovmtui.services.consoles import ConsoleRequest
from ovmtui.services.session import EstateSession, Notice, SessionEvents
from ovmtui.services.vm_facts import (
    DISK_COLUMNS,
    NIC_COLUMNS,
    disk_rows,
    nic_rows,
    summary_rows,
    vm_json,
    with_disk_sizes,
)
from ovmtui.store.backup import (
    create_backup,
    default_backup_dir,
    inspect_backup,
    list_backups,
)
from ovmtui.store.estate_file import EstateFile
from ovmtui.store.journal import Result
from ovmtui.store.reconcile import reconcile
from ovmtui.store.repository import Repository
from ovmtui.store.restore import describe_plan, plan_restore, record_restore, restore_repository
from ovmtui.store.schema import BUSY_TIMEOUT_MS, describe_error

HEADLESS_CONCURRENCY = 32


async def poll_estate_once(
    config: EstateConfig, repository: Path | None = None, warn: TextIO | None = None
) -> EstateSnapshot:
    """Poll the whole estate once; with a repository, record what was seen there."""
    async with session_for(config, repository, warn) as session:
        return await session.poll_once()


def session_for(
    config: EstateConfig,
    repository: Path | None,
    warn: TextIO | None,
    *,
    estate_file: EstateFile | None = None,
    read_only: bool = False,
) -> EstateSession:
    """The core, as a headless command uses it: every host at once, notices to ``warn``.
    ``estate_file``: what ``config`` was read from, for the commands that edit it."""

    def tell(notice: Notice) -> None:
        if warn is not None:
            warn.write(f"ovmtui: {notice.text}\n")

    # Many hosts at once: a command waits for every answer, and draws nothing meanwhile.
    return EstateSession(
        config,
        repository=repository,
        events=SessionEvents(notice=tell),
        max_concurrency=HEADLESS_CONCURRENCY,
        unwritable="raise",
        estate_file=estate_file,
        read_only=read_only,
    )


async def backup(repository: Path, directory: Path | None, keep: int, out: TextIO) -> int:
    target = directory if directory is not None else default_backup_dir(repository)
    # Read-only: a backup must work from a full or read-only disk to another one.
    repo = await Repository.open(repository, read_only=True)
    try:
        path = await create_backup(repo, target, keep=keep)
    finally:
        await repo.close()
    out.write(f"{path}\n")
    return 0


async def list_backups_report(
    repository: Path, directory: Path | None, out: TextIO, *, as_json: bool
) -> int:
    """Every backup in the folder, with whose it is (the folder may be shared)."""
    target = directory if directory is not None else default_backup_dir(repository)
    identity = await repository_identity(repository)
    infos = [await inspect_backup(path) for path in list_backups(target)]
    if as_json:
        rows = [
            {**dataclasses.asdict(info), "whose": info.whose(identity)}
            | {"own": identity is not None and info.repository_id == identity}
            for info in infos
        ]
        json.dump(rows, out, indent=2)
        out.write("\n")
        return 0
    if not infos:
        out.write(f"no backups in {target}\n")
    for info in infos:
        when = fmt.timestamp(info.time)
        state = "verified" if info.verified else f"NOT VERIFIED: {info.problem}"
        out.write(
            f"{when}  {info.size_bytes:>10} B  schema {info.schema_version}  "
            f"{info.hosts} hosts  {info.vms} VMs  {info.journal_records} journal records  "
            f"{state}  of {info.whose(identity)}  {info.path}\n"
        )
    return 0


async def repository_identity(repository: Path) -> str | None:
    """The repository's identity, read without writing; None when it cannot be read."""
    try:
        async with await Repository.open(repository, read_only=True) as repo:
            return repo.identity
    except RepositoryError:
        return None


async def restore(
    repository: Path,
    candidate: Path,
    out: TextIO,
    *,
    confirm: Callable[[str], bool],
    user: str,
    from_other_repository: bool = False,
) -> int:
    """Verify, ask, back the current repository up, replace it. Refusals raise (exit 2)."""
    try:
        plan = await plan_restore(
            repository, candidate, from_other_repository=from_other_repository
        )
    except RepositoryError as exc:
        await record_restore(repository, candidate, user, ok=False, detail=exc.message)
        raise
    question = describe_plan(plan)
    if not confirm(question):
        out.write("restore cancelled: nothing was changed\n")
        return 1

    def progress(step: str) -> None:
        out.write(f"restore: {step}\n")
        out.flush()

    outcome = await restore_repository(
        plan, backup_dir=default_backup_dir(repository), user=user, progress=progress
    )
    if outcome.previous is not None:
        out.write(f"the previous repository is saved as {outcome.previous}\n")
    out.write(f"{repository} restored from {candidate}\n")
    return 0


async def check_repository(repository: Path) -> str | None:
    """Can the TUI record in this repository? None if it can, else why not: the TUI then
    runs read-only on it. Raises RepositoryError when it cannot even be read."""
    try:
        repo = await Repository.open(repository)
    except RepositoryError as exc:
        refused = exc
    else:
        await repo.close()
        problem = await _in_daemon_thread(_write_refused, repository)
        if problem is None:
            return None
        refused = RepositoryError(f"{repository}: {problem}")
    try:
        repo = await Repository.open(repository, read_only=True)
    except RepositoryError as unreadable:
        # Why it could not be created says more than "there is none".
        exists = await asyncio.to_thread(repository.exists)
        raise (unreadable if exists else refused) from None
    await repo.close()
    return refused.message


async def _in_daemon_thread(probe: Callable[[Path], str | None], path: Path) -> str | None:
    """``probe(path)`` in a thread that does not hold the process up at exit.

    The probe may wait up to SQLite's busy timeout for another process's write lock: an
    operator who gives up with Ctrl+C must not wait for it (asyncio's own threads are
    joined at exit).
    """
    loop = asyncio.get_running_loop()
    answer: asyncio.Future[str | None] = loop.create_future()

    def run() -> None:
        result = probe(path)

        def deliver() -> None:
            if not answer.done():  # cancelled meanwhile
                answer.set_result(result)

        with contextlib.suppress(RuntimeError):  # the loop is gone: nobody waits any more
            loop.call_soon_threadsafe(deliver)

    threading.Thread(target=run, name="ovmtui-write-probe", daemon=True).start()
    return await answer


def _write_refused(path: Path) -> str | None:
    """Why a write fails there, or None; the write is rolled back: the file stays as it was.

    Opening is not enough to know: SQLite opens a file the process may not write, for
    reading, and says so only at the first write.
    """
    try:
        db = sqlite3.connect(path, isolation_level=None, timeout=BUSY_TIMEOUT_MS / 1000)
    except sqlite3.Error as exc:
        return describe_error(exc, path)
    try:
        db.execute("BEGIN IMMEDIATE")
        db.execute("CREATE TABLE ovmtui_write_probe (x)")
    except sqlite3.Error as exc:
        return describe_error(exc, path)
    finally:
        if db.in_transaction:
            db.execute("ROLLBACK")
        db.close()
    return None


async def audit(
    repository: Path,
    out: TextIO,
    *,
    as_json: bool,
    host: str | None = None,
    vm: str | None = None,
    user: str | None = None,
    result: Result | None = None,
) -> int:
    # Read-only commands open the repository read-only: they work on a full disk.
    repo = await Repository.open(repository, read_only=True)
    try:
        entries = await repo.journal_entries(host=host, vm=vm, user=user, result=result)
    finally:
        await repo.close()
    if as_json:
        json.dump([dataclasses.asdict(e) for e in entries], out, indent=2)
        out.write("\n")
        return 0
    for e in entries:
        when = fmt.timestamp(e.at)
        if e.ok is None:
            outcome = "STARTED, NO RESULT"
        elif e.ok:
            outcome = "ok"
        else:
            outcome = f"FAILED: {e.detail}"
        target = "" if e.host is None else f"{e.pool}/{e.host} {e.vm or ''}".rstrip() + ": "
        out.write(f"{e.id:>6} {when} {e.user:<10} {target}{e.command}  -> {outcome}\n")
    return 0


async def jobs_report(repository: Path, out: TextIO, *, as_json: bool) -> int:
    repo = await Repository.open(repository, read_only=True)
    try:
        jobs = await repo.jobs()
    finally:
        await repo.close()
    if as_json:
        json.dump([dataclasses.asdict(job) for job in jobs], out, indent=2)
        out.write("\n")
        return 0
    if not jobs:
        out.write("no jobs recorded\n")
    for job in jobs:
        when = "?" if job.started_at is None else fmt.timestamp(job.started_at)
        out.write(
            f"{job.id:>5} {when} {job.state:<11} {job.kind:<20} {job.user or '?':<10} "
            f"{job.detail or ''}\n"
        )
    return 0


async def drift_report(repository: Path, out: TextIO, *, as_json: bool) -> int:
    """VMs in drift as last recorded; 1 when there are any (a script can act on it)."""
    async with await Repository.open(repository, read_only=True) as repo:
        drifted = await repo.drifted()
    if as_json:
        json.dump([dataclasses.asdict(vm) for vm in drifted], out, indent=2)
        out.write("\n")
    elif not drifted:
        out.write("no drift: the repository agrees with every host that answered\n")
    for vm in [] if as_json else drifted:
        out.write(f"{vm.uuid}  {vm.describe()}\n")
    return 1 if drifted else 0


async def reconcile_report(
    repository: Path,
    uuids: Sequence[str],
    out: TextIO,
    *,
    confirm: Callable[[str], bool],
    user: str,
) -> int:
    """Forget the drifted records (all, or those named), after a backup; journaled."""
    async with await Repository.open(repository) as repo:
        drifted = await repo.drifted()
        wanted = set(uuids)
        unknown = wanted - {vm.uuid for vm in drifted}
        if unknown:
            raise ActionRefused(
                f"not in drift: {', '.join(sorted(unknown))} (see ovmtui drift)",
                title="Nothing to reconcile",
            )
        targets = [vm for vm in drifted if not wanted or vm.uuid in wanted]
        if not targets:
            out.write("no drift: nothing to reconcile\n")
            return 0
        if not confirm("\n".join(vm.change for vm in targets)):
            out.write("reconcile cancelled: nothing was changed\n")
            return 1
        outcome = await reconcile(
            repo,
            [vm.uuid for vm in targets],
            backup_dir=default_backup_dir(repository),
            user=user,
        )
    out.write(f"the repository was backed up to {outcome.backup}\n")
    for vm in outcome.forgotten:
        out.write(f"reconciled: {vm.change}\n")
    return 0


async def audit_verify(repository: Path, out: TextIO) -> int:
    repo = await Repository.open(repository, read_only=True)
    try:
        verdict = await repo.verify_journal()
    finally:
        await repo.close()
    if verdict.ok:
        out.write(f"journal intact: {verdict.records} records, hash chain verified\n")
        return 0
    out.write(f"journal BROKEN at record {verdict.first_broken}: {verdict.reason}\n")
    return 1


def inventory_json(snapshot: EstateSnapshot) -> dict[str, Any]:
    return {
        "hosts": [_host_json(host) for host in snapshot.hosts],
        "vms": [
            _vm_json(host, vm)
            for host in snapshot.hosts
            for vm in sorted(host.vms, key=lambda vm: (vm.name, vm.uuid))
        ],
    }


def _host_json(host: HostStatus) -> dict[str, Any]:
    facts = host.facts
    return {
        "pool": host.pool,
        "name": host.name,
        "reachable": bool(host.reachable),
        "error": host.error,
        "hypervisor": facts.hypervisor if facts else None,
        "memory_mib": facts.memory_mib if facts else None,
        "free_memory_mib": facts.free_memory_mib if facts else None,
        "cpus": facts.cpus if facts else None,
        "warnings": list(host.warnings),
    }


def _vm_json(host: HostStatus, vm: Vm) -> dict[str, Any]:
    return {
        "pool": host.pool,
        "host": host.name,
        "name": vm.name,
        "uuid": vm.uuid,
        "state": vm.state.value,
        "vcpus": vm.vcpus,
        "memory_mib": vm.memory_mib,
    }


def print_inventory(snapshot: EstateSnapshot, out: TextIO, *, as_json: bool) -> int:
    """Print the estate; return 1 when any host failed, else 0."""
    failed = any(host.reachable is not True for host in snapshot.hosts)
    if as_json:
        json.dump(inventory_json(snapshot), out, indent=2)
        out.write("\n")
        return 1 if failed else 0
    for host in snapshot.hosts:
        facts = host.facts
        if host.reachable:
            mem = fmt.mib(facts.memory_mib, "?") if facts else "?"
            free = fmt.mib(facts.free_memory_mib, "?") if facts else "?"
            hyp = facts.hypervisor if facts and facts.hypervisor else "?"
            out.write(
                f"{host.pool}/{host.name}  up  {hyp}  {len(host.vms)} VMs  "
                f"memory {mem} (free {free})\n"
            )
        else:
            out.write(f"{host.pool}/{host.name}  UNREACHABLE  {host.error}\n")
        for vm in sorted(host.vms, key=lambda vm: (vm.name, vm.uuid)):
            vcpus = "?" if vm.vcpus is None else str(vm.vcpus)
            out.write(
                f"  {vm.name:<24} {vm.state.value:<14} {vcpus:>3} vCPU  "
                f"{fmt.mib(vm.memory_mib, '?'):>9}  {vm.uuid}\n"
            )
    return 1 if failed else 0


async def export_definitions_report(
    config: EstateConfig,
    repository: Path,
    directory: Path | None,
    out: TextIO,
    warn: TextIO | None = None,
) -> int:
    """Poll once, then save every VM's definition in one archive; 1 if anything is missing.

    The archive is signed with the repository's key: it imports later as this one's own.
    The export is a job of the repository, listed by ``ovmtui jobs`` like the TUI's.
    """
    async with session_for(config, repository, warn) as session:
        await session.poll_once()
        result = await session.export_definitions(directory)
    out.write(f"{result.path}\n")
    out.write(
        f"exported {result.exported} VM definitions from {result.hosts} hosts; "
        f"{len(result.failures)} failed, {len(result.unreachable)} hosts unreachable, "
        f"{len(result.skipped)} hosts skipped; signed by repository {result.signed_by}\n"
    )
    for problem in result.unreachable:
        out.write(f"UNREACHABLE {problem}\n")
    for problem in result.failures:
        out.write(f"FAILED {problem}\n")
    for problem in result.skipped:
        out.write(f"SKIPPED {problem}\n")
    return 0 if result.complete else 1


def host_key_for(config: EstateConfig, text: str) -> HostKey:
    """``name`` or ``pool/name`` of a host of the estate; raises ``ActionRefused``."""
    pool, _, name = text.rpartition("/")
    matches = [h.key for h in config.hosts if h.name == name and (not pool or h.pool == pool)]
    if len(matches) == 1:
        return matches[0]
    if matches:
        choices = ", ".join(str(key) for key in matches)
        raise ActionRefused(
            f"{len(matches)} hosts are named {name!r}: {choices}; give pool/name",
            title="Ambiguous host",
        )
    known = ", ".join(str(h.key) for h in config.hosts)
    raise ActionRefused(
        f"no host {text!r} in {config.source}; it has {known}", title="No such host"
    )


async def import_definition_report(
    config: EstateConfig,
    repository: Path,
    archive_path: Path,
    vm: str,
    host: str,
    out: TextIO,
    *,
    command: str,
    warn: TextIO | None = None,
    trust_archive: bool = False,
) -> int:
    """Define one VM again from an archive, after polling the estate once. Refusals raise.

    An archive that does not verify as this repository's is refused unless ``trust_archive``.
    """
    from ovmtui.services.definitions import ArchiveKey, import_definition, read_archive

    archive = await asyncio.to_thread(read_archive, archive_path)
    key = host_key_for(config, host)
    archive.find(vm)  # a VM the archive does not hold is said before polling anything
    async with session_for(config, repository, warn) as session:
        snapshot = await session.poll_once()
        repo = session.open_repository()
        result = await import_definition(
            archive,
            vm,
            key,
            snapshot,
            session.poller.backend,
            journal=repo,
            key=await ArchiveKey.of(repo),
            trust_archive=trust_archive,
            command=command,
            user=session.user,
        )
    entry = result.entry
    out.write(
        f"defined {entry.name} ({result.uuid}) on {key} from {archive_path}; "
        f"it was {entry.state} on {entry.pool}/{entry.host} at export and is not started\n"
    )
    out.write(f"{result.provenance.journal_detail()}\n")
    if not result.provenance.verified and warn is not None:
        warn.write(f"ovmtui: warning: {result.provenance.journal_detail()}\n")
    return 0


async def vm_action_report(
    config: EstateConfig,
    repository: Path,
    action: VmAction,
    names: Sequence[str],
    out: TextIO,
    *,
    host: str | None,
    confirm: Callable[[str], bool],
    as_json: bool,
    read_only: bool = False,
    warn: TextIO | None = None,
) -> int:
    """The TUI's VM actions from a shell, through the same core: the same checks, the same
    journal. Polls once, finds each VM (by name or UUID; a name held twice needs ``host``),
    shows the exact commands and asks, then runs them all; one result per VM. Refusals raise
    (exit 2); 0 only when every VM's action succeeded."""
    if read_only:
        raise ActionRefused(
            f"read-only mode: {action.label.lower()} changes a VM; nothing was done"
        )
    async with session_for(config, repository, warn) as session:
        snapshot = await session.poll_once()
        where = host_key_for(config, host) if host is not None else None
        targets = [find_vm(snapshot, name, where) for name in dict.fromkeys(names)]
        for placed in targets:
            # The one statement of what may be tried (state, capability, read-only, journal).
            refusal = session.refusal(placed, action)
            if refusal is not None:
                raise ActionRefused(
                    f"{placed.vm.name} on {placed.pool}/{placed.host}: {refusal}: "
                    f"{action.label.lower()} does not apply; nothing was done",
                    title="Not applicable",
                )
        commands = "\n".join(f"  $ {session.command_for(p, action)}" for p in targets)
        warning = (
            "\nThe guest loses what it had not written to disk." if action.loses_guest_state else ""
        )
        question = f"{action.label} {len(targets)} VM(s):\n{commands}{warning}"
        if not confirm(question):
            out.write(f"{action.label.lower()} cancelled: nothing was done\n")
            return 1
        results = await session.run_actions(targets, action)
    if as_json:
        json.dump([_result_json(result) for result in results], out, indent=2)
        out.write("\n")
    for result in [] if as_json else results:
        place = f"{result.placed.pool}/{result.placed.host}"
        state = "done" if result.ok else f"FAILED: {result.error}"
        out.write(f"{result.placed.vm.name} ({place}): {action.label.lower()} {state}\n")
    return 0 if all(result.ok for result in results) else 1


async def console_target(
    config: EstateConfig,
    repository: Path,
    name: str,
    *,
    host: str | None,
    force: bool,
    warn: TextIO | None = None,
) -> ConsoleRequest:
    """The VM whose console ``ovmtui console`` opens: found by name or UUID (a name held
    twice needs ``host``) in one poll, and able to give a console now; raises
    ``ActionRefused`` / ``ConsoleUnavailable`` with the reason otherwise."""
    async with session_for(config, repository, warn) as session:
        snapshot = await session.poll_once()
        where = host_key_for(config, host) if host is not None else None
        placed = find_vm(snapshot, name, where)
        refusal = session.console_refusal(placed)
        if refusal is not None:
            raise ConsoleUnavailable(f"{placed.vm.name} on {placed.pool}/{placed.host}: {refusal}")
    return ConsoleRequest(placed.uuid, placed.vm.name, force=force)


async def show_vm_report(
    config: EstateConfig,
    repository: Path,
    name: str,
    out: TextIO,
    *,
    host: str | None,
    as_json: bool,
    warn: TextIO | None = None,
    clock: Callable[[], float] = time.time,
) -> int:
    """One VM's facts, disks, NICs and definition, as its screen shows them, after one
    poll. The VM by name or UUID (a name held twice needs ``host``); an unknown one raises
    ``ActionRefused`` (exit 2). 1 when its host did not answer: the facts are then the
    last known ones, and the definition is missing."""
    async with session_for(config, repository, warn) as session:
        snapshot = await session.poll_once()
        where = host_key_for(config, host) if host is not None else None
        placed = find_vm(snapshot, name, where)
        status = snapshot.host(placed.host_key)
        answered = status is not None and status.reachable is True
        definition: str | None = None
        missing: str | None = None
        try:
            definition = await session.vm_definition(placed)
        except OvmError as exc:
            missing = exc.message
        with contextlib.suppress(OvmError):
            placed = placed._replace(
                vm=with_disk_sizes(placed.vm, await session.vm_disk_sizes(placed))
            )
        shared = session.shared_storage(placed.pool)
    now = clock()
    if as_json:
        json.dump(vm_json(placed, shared_storage=shared, definition=definition, now=now), out)
        out.write("\n")
        if missing is not None and warn is not None:
            warn.write(f"ovmtui: no definition of {placed.vm.name}: {missing}\n")
        return 0 if answered else 1
    vm = placed.vm
    stale = "" if answered else f"  (last known: {status.error if status else None})"
    out.write(f"{vm.name}{stale}\n")
    for label, value in summary_rows(placed, now):
        out.write(f"  {label + ':':<11} {value}\n")
    out.write(f"disks ({len(vm.disks)}, shared storage: {shared or fmt.UNKNOWN}):\n")
    write_table(out, DISK_COLUMNS, disk_rows(vm, shared))
    out.write(f"NICs ({len(vm.nics)}):\n")
    write_table(out, NIC_COLUMNS, nic_rows(vm))
    if definition is None:
        out.write(f"definition: none: {missing}\n")
    else:
        out.write("definition:\n")
        out.write(definition if definition.endswith("\n") else definition + "\n")
    return 0 if answered else 1


def write_table(out: TextIO, columns: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    """Columns padded to their widest cell, indented, the last one unpadded."""
    if not rows:
        out.write("  none\n")
        return
    widths = [max(len(cell) for cell in column) for column in zip(columns, *rows, strict=True)]
    for row in (columns, *rows):
        cells = [cell.ljust(width) for cell, width in zip(row, widths, strict=True)]
        out.write(("  " + "  ".join(cells)).rstrip() + "\n")


def find_vm(snapshot: EstateSnapshot, text: str, host: HostKey | None) -> PlacedVm:
    """The VM named (or with the UUID) ``text``, on ``host`` if given; raises ActionRefused."""
    wanted = text.lower()
    found = [
        placed
        for placed in snapshot.placed_vms()
        if (placed.vm.name == text or placed.uuid.lower() == wanted)
        and (host is None or placed.host_key == host)
    ]
    if len(found) == 1:
        return found[0]
    if found:
        where = ", ".join(f"{p.pool}/{p.host}" for p in found)
        raise ActionRefused(
            f"{len(found)} VMs are named {text!r}, on {where}: say which with --host; "
            "nothing was done",
            title="Ambiguous VM",
        )
    scope = f" on {host}" if host is not None else " in the estate"
    raise ActionRefused(f"no VM {text!r}{scope}; nothing was done", title="No such VM")


def _result_json(result: ActionResult) -> dict[str, Any]:
    return {
        "vm": result.placed.vm.name,
        "uuid": result.placed.uuid,
        "pool": result.placed.pool,
        "host": result.placed.host,
        "action": result.action.value,
        "command": result.command,
        "ok": result.ok,
        "error": result.error,
    }
