"""Imports of resources (ISOs, templates, disk images) from URLs into a pool's storage.

``ImportService`` hangs off the session (``session.imports``), the same for the TUI and
``ovmtui resource import``: it checks the request (``import_plan``), picks the pool's
utility host (the first reachable host with the ``utility`` role, else any reachable one,
and says so), and runs the import there as an audited operation and a job (``ovmtui jobs``
lists it), reporting its progress and taking a cancel, which removes what it wrote.
"""

from __future__ import annotations

import asyncio
import itertools
import shlex
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from ovmtui.backend.base import Backend, CommandRunner, LongChannelOpener, VolumeImporter
from ovmtui.config import EstateConfig
from ovmtui.errors import ActionFailed, ActionRefused, OvmError
from ovmtui.import_plan import BadImport, Imported, ImportPlan, flat_plan, plan_import
from ovmtui.import_progress import ImportProgress, describe
from ovmtui.model import EstateSnapshot, HostKey
from ovmtui.operations import JobRecorder, Operation, Operations
from ovmtui.services.import_library import ImportRecords, Library
from ovmtui.services.utility_host import pick_utility_host

if TYPE_CHECKING:
    from ovmtui.backend.ssh_import import ImportHost
    from ovmtui.backend.ssh_import_scripts import Tool

IMPORT_JOB = "import-resource"


class ImportCancelled(ActionFailed):
    """The operator cancelled an import; what it wrote is gone."""

    title = "Import cancelled"


@dataclass(frozen=True, slots=True)
class UtilityHost:
    """The host that does a pool's file work, and why it is that one when it is not a
    utility host."""

    key: HostKey
    note: str | None = None


def utility_host(snapshot: EstateSnapshot, pool: str) -> UtilityHost:
    """The pool's utility host (``services.utility_host``), or ``ActionRefused`` saying why
    none can do the file work."""
    choice = pick_utility_host(snapshot, pool)
    if choice.host is None:
        raise ActionRefused(choice.note or f"no host of {pool} answers")
    return UtilityHost(choice.host.key, choice.note)


@dataclass(frozen=True, slots=True)
class Importing:
    """An import under way, as the faces show it."""

    id: int
    pool: str
    host: str
    plan: ImportPlan
    progress: ImportProgress
    note: str | None = None

    @property
    def line(self) -> str:
        """``el5 (iso) on xen-u: downloading 45 % …``"""
        return f"{self.plan.name} ({self.plan.kind}) on {self.host}: {describe(self.progress)}"


@dataclass(frozen=True, slots=True)
class ImportOutcome:
    """How an import ended."""

    pool: str
    host: str
    plan: ImportPlan
    ok: bool
    detail: str
    imported: Imported | None = None
    cancelled: bool = False
    note: str | None = None


def import_command(pool: str, plan: ImportPlan) -> str:
    """The equivalent headless command, the journal's record of what was asked."""
    argv = ["ovmtui", "resource", "import", plan.url, "--kind", plan.kind, "--name", plan.name]
    argv += ["--pool", pool]
    if plan.sha256:
        argv += ["--sha256", plan.sha256]
    return shlex.join(argv)


class ImportService:
    """Runs imports; see the module docstring."""

    def __init__(
        self,
        *,
        estate: EstateConfig,
        backend_for: Callable[[HostKey], Backend | None],
        snapshot: Callable[[], EstateSnapshot],
        operations: Operations,
        jobs: Callable[[], JobRecorder | None],
        on_change: Callable[[tuple[Importing, ...]], object] = lambda _imports: None,
        library: Callable[[], Library | None] = lambda: None,
    ) -> None:
        self._estate = estate
        self._backend_for = backend_for
        self._snapshot = snapshot
        self._operations = operations
        self._jobs = jobs
        self.on_change = on_change
        self._library = library
        self._ids = itertools.count(1)
        self._imports: dict[int, Importing] = {}
        self._tasks: dict[int, asyncio.Future[Imported]] = {}
        self._tools: dict[HostKey, tuple[Tool | None, bool]] = {}  # probed once a host

    @property
    def imports(self) -> tuple[Importing, ...]:
        """The imports under way, oldest first."""
        return tuple(self._imports.values())

    def plan(
        self,
        url: str,
        kind: str,
        *,
        pool: str | None = None,
        name: str | None = None,
        sha256: str | None = None,
    ) -> tuple[str, ImportPlan]:
        """The pool (``pool``, or the estate's one pool with shared storage) and the plan;
        ``BadImport`` says what is wrong with the request."""
        pools: Mapping[str, str | None] = {p.name: p.shared_storage for p in self._estate.pools}
        if pool is None:
            with_storage = [p for p, storage in pools.items() if storage]
            if len(with_storage) != 1:
                raise BadImport(
                    "which pool? --pool one of " + ", ".join(with_storage)
                    if with_storage
                    else "no pool has shared_storage in the estate file: nowhere to import to"
                )
            pool = with_storage[0]
        if pool not in pools:
            raise BadImport(f"no pool {pool!r} in the estate (pools: {', '.join(pools)})")
        plan = plan_import(url, kind, pools[pool], name=name, sha256=sha256)
        for running in self._imports.values():
            if running.plan.final == plan.final:
                raise ActionRefused(f"{plan.name} is being imported already (into {plan.final})")
        return pool, plan

    def host_for(self, pool: str, plan: ImportPlan) -> tuple[UtilityHost, ImportPlan]:
        """The host that runs ``pool``'s import of ``plan``, and the plan as that host runs
        it (a libvirt host holds files only: ``import_plan.flat_plan``; a template's folder
        is a storage pool of its own there); ``ActionRefused`` when none can."""
        chosen = utility_host(self._snapshot(), pool)
        backend = self._backend_for(chosen.key)
        if isinstance(backend, CommandRunner) and isinstance(backend, LongChannelOpener):
            return chosen, plan
        if isinstance(backend, VolumeImporter):
            return chosen, flat_plan(plan)
        raise ActionRefused(f"{chosen.key.name} cannot run an import")

    async def run(
        self,
        pool: str,
        plan: ImportPlan,
        *,
        progress: Callable[[Importing], object] | None = None,
    ) -> ImportOutcome:
        """Run ``plan`` on ``pool``'s utility host, on the record and as a job. Raises
        ``ActionRefused`` when it cannot start (read-only, no journal, no host); a failure
        or a cancel is in the outcome (and the journal, and the job)."""
        chosen, plan = self.host_for(pool, plan)
        backend = self._backend_for(chosen.key)
        import_id = next(self._ids)
        operation = Operation(
            "import-resource", import_command(pool, plan), pool=pool, host=chosen.key.name
        )
        self._imports[import_id] = Importing(
            import_id, pool, chosen.key.name, plan, ImportProgress("checking", 0.0), chosen.note
        )
        self.on_change(self.imports)
        records = ImportRecords(self._library(), pool, plan, user=self._operations.user)

        def report(reading: ImportProgress) -> None:
            current = self._imports.get(import_id)
            if current is None:
                return
            self._imports[import_id] = replace(current, progress=reading)
            records.progress(reading)
            if progress is not None:
                progress(self._imports[import_id])

        job_detail = f"{plan.kind} {plan.name} from {plan.url} on {chosen.key.name}"

        async def work() -> Imported:
            await records.begin()  # after the "started" record: a refusal leaves no trace
            return await self._import(import_id, chosen.key, pool, backend, plan, report)

        try:
            done = await self._operations.run(
                operation,
                work,
                outcome=lambda imported: (True, _summary(imported)),
                job=(self._jobs(), IMPORT_JOB, job_detail),
            )
        except ActionRefused as refused:
            await records.failed(refused.message)
            return ImportOutcome(
                pool, chosen.key.name, plan, False, refused.message, note=chosen.note
            )
        except ImportCancelled as cancelled:
            await records.failed(cancelled.message)
            return ImportOutcome(
                pool,
                chosen.key.name,
                plan,
                False,
                cancelled.message,
                cancelled=True,
                note=chosen.note,
            )
        except OvmError as exc:
            await records.failed(exc.message)
            return ImportOutcome(pool, chosen.key.name, plan, False, exc.message, note=chosen.note)
        except asyncio.CancelledError:
            await records.failed("interrupted: ovmtui ended while it ran; nothing was left")
            raise
        finally:
            self._imports.pop(import_id, None)
            self._tasks.pop(import_id, None)
            self.on_change(self.imports)
        await records.done(done.value)
        detail = _summary(done.value)
        if done.unrecorded:
            detail += f"; not in the journal: {done.unrecorded}"
        if records.unrecorded:
            detail += f"; not in the library: {records.unrecorded}"
        return ImportOutcome(
            pool, chosen.key.name, plan, True, detail, done.value, note=chosen.note
        )

    def cancel(self, import_id: int) -> bool:
        """Cancel an import under way (its download stops, what it wrote is removed); False
        when none is."""
        task = self._tasks.get(import_id)
        if task is None or task.done():
            return False
        task.cancel()
        return True

    async def _import(
        self,
        import_id: int,
        key: HostKey,
        pool: str,
        backend: Backend | None,
        plan: ImportPlan,
        report: Callable[[ImportProgress], None],
    ) -> Imported:
        started = time.monotonic()
        if isinstance(backend, VolumeImporter):
            work = asyncio.ensure_future(backend.import_volume(pool, plan, progress=report))
        elif isinstance(backend, CommandRunner) and isinstance(backend, LongChannelOpener):
            # Imported here, when an import runs: its scripts cost every start-up ~3 ms.
            from ovmtui.backend.ssh_import import host_tools, import_over_ssh

            host: ImportHost = backend
            tools = self._tools.get(key)
            if tools is None or tools[0] is None:
                tools = self._tools[key] = await host_tools(host)
            work = asyncio.ensure_future(import_over_ssh(host, plan, tools=tools, progress=report))
        else:
            raise ActionRefused(f"{key.name} cannot run an import")
        self._tasks[import_id] = work
        try:
            return await asyncio.shield(work)
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if current is not None and current.cancelling():
                work.cancel()  # ovmtui itself ends: the import cleans up as it stops
                raise
            if not work.cancelled():
                raise
            elapsed = time.monotonic() - started
            raise ImportCancelled(
                f"cancelled by the operator after {elapsed:.1f} s; nothing of {plan.name} "
                "was left on the storage"
            ) from None


def _summary(imported: Imported) -> str:
    checked = f", SHA-256 {imported.sha256} checked" if imported.sha256 else ""
    return f"{imported.path}: {imported.size_bytes} bytes by {imported.tool}{checked}"
