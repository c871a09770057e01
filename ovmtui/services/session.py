"""The core: one estate session, the same for the TUI and the headless commands.

``EstateSession`` wires what every face of ovmtui needs: the poller, the VM actions, the
repository (last-known state, journal, jobs), the writer that records every snapshot, drift,
backups, exports, reconciles and restores. It knows nothing of Textual: the app is its face
on a screen (bindings, screens, notices), ``headless`` its face in a shell. It reports
through ``SessionEvents`` callbacks, called on the event loop's thread.

Started and stopped as an async context::

    async with EstateSession(estate, repository=path) as session:
        await session.poll_once()        # a headless command
        await session.run()              # or the TUI: polls until cancelled
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Literal

from ovmtui.backend.base import (
    Backend,
    ConsoleTransport,
    DefinitionSource,
    DiskSizer,
    KeepsDefinitions,
    KeySender,
    SysRqSender,
)
from ovmtui.backend.factory import backend_for
from ovmtui.backend.pacing import WAIT_SLOTS
from ovmtui.config import EstateConfig
from ovmtui.errors import ActionRefused, ConsoleUnavailable, OvmError, RepositoryError
from ovmtui.identity import current_user
from ovmtui.model import (
    Capability,
    EstateSnapshot,
    HostKey,
    HostPoll,
    PlacedVm,
    VmAction,
    console_refusal,
)
from ovmtui.operations import Operation, run_as_job
from ovmtui.services.actions import (
    READ_ONLY,
    ActionResult,
    ActionService,
    InMemoryJournal,
    summarize,
)
from ovmtui.services.connection_test import ConnectionTests
from ovmtui.services.consoles import ConsoleSession, default_console_log_dir
from ovmtui.services.definition_keeper import DefinitionKeeper
from ovmtui.services.definitions import (
    ArchiveKey,
    ExportResult,
    default_definitions_dir,
    export_definitions,
)
from ovmtui.services.estate_edits import EstateEditor
from ovmtui.services.flight_plan import DEFAULT_OVERHEAD_MIB
from ovmtui.services.host_restore import HostRestoreService
from ovmtui.services.imports import Importing, ImportService
from ovmtui.services.jobs import EXPORT_KIND, export_outcome
from ovmtui.services.migration import MigrationService, Moving
from ovmtui.services.poller import EstatePoller, PolledHost
from ovmtui.services.shared_disks import SharedDiskService
from ovmtui.services.storage import StorageService
from ovmtui.store.backup import (
    BackupInfo,
    create_backup,
    default_backup_dir,
    inspect_backup,
    list_backups,
)
from ovmtui.store.definitions import DefinitionChanges
from ovmtui.store.drift import DriftedVm
from ovmtui.store.estate_file import EstateFile
from ovmtui.store.journal import JournalEntry
from ovmtui.store.reconcile import ReconcileOutcome, reconcile
from ovmtui.store.repository import Repository
from ovmtui.store.restore import RestoreOutcome, RestorePlan, plan_restore, restore_repository

MAX_LOG = 5000
# The journal entries a VM's screen and `ovmtui show` list: its latest.
VM_JOURNAL_LIMIT = 20
STORE_DRAIN_S = 10.0
# At the end, how long running actions have to write their "interrupted" record.
ACTIONS_DRAIN_S = 5.0

Severity = Literal["information", "warning", "error"]


@dataclass(frozen=True, slots=True)
class Notice:
    """Something the operator should be told (a face shows it as it can)."""

    text: str
    title: str = ""
    severity: Severity = "information"
    lasting: bool = False  # stays until dismissed (a reason that holds for the whole run)


def _ignore(_value: object) -> None:
    return None


@dataclass(frozen=True, slots=True)
class SessionEvents:
    """What a face hears of the session; every callback is optional."""

    estate: Callable[[EstateSnapshot], object] = _ignore
    drift: Callable[[tuple[DriftedVm, ...]], object] = _ignore
    action: Callable[[ActionResult], object] = _ignore
    notice: Callable[[Notice], object] = _ignore
    # The session turned read-only while running (its repository stopped taking writes).
    read_only: Callable[[str], object] = _ignore
    # The migrations under way, each time one starts or ends.
    migrations: Callable[[tuple[Moving, ...]], object] = _ignore
    # The imports under way, each time one starts, moves on or ends.
    imports: Callable[[tuple[Importing, ...]], object] = _ignore


class EstateSession:
    """Owns the services of one estate; see the module docstring."""

    def __init__(
        self,
        estate: EstateConfig,
        *,
        repository: Path | None = None,
        interval_s: float = 5.0,
        read_only: bool = False,
        read_only_reason: str | None = None,
        backends: Sequence[Backend] | None = None,
        events: SessionEvents | None = None,
        clock: Callable[[], float] | None = None,
        max_concurrency: int | None = None,
        max_waiting: int | None = None,
        user: str | None = None,
        unwritable: Literal["raise", "read-only"] = "read-only",
        console_log_dir: Path | None = None,
        keep_definitions: bool = True,
        estate_file: EstateFile | None = None,
    ) -> None:
        """``estate_file``: the file ``estate`` was read from, for edits and reloads (None:
        the demo's, or a test's, built in). ``read_only_reason``: why the repository
        cannot be written (the session then only reads it). Without a ``repository``
        (tests, benchmarks) actions are journaled in memory. ``unwritable``: what a
        repository that fails to open for writing does to the session: turn it read-only
        (the TUI: watching matters more), or raise (a headless command: it was asked to
        record, and says it cannot). ``keep_definitions``: False keeps no definition in
        the repository (benches compare)."""
        self.estate = estate
        self.events = events if events is not None else SessionEvents()
        self.user = user or current_user()
        self._read_only = read_only or read_only_reason is not None
        self.read_only_reason = read_only_reason
        if backends is None:
            backends = [backend_for(host) for host in estate.hosts]
        roles = {host.key: host.roles for host in estate.hosts}
        self.poller = EstatePoller(
            [PolledHost(b, roles.get(b.host, ())) for b in backends],
            pools=[pool.name for pool in estate.pools],
            on_snapshot=self._published,
            interval_s=interval_s,
            max_concurrency=max_concurrency,
            max_waiting=max_waiting or estate.max_waiting or WAIT_SLOTS,
            clock=clock or time.time,
            on_definitions=self._definitions_read,
        )
        # Definitions kept in the repository (history, host restore): what changed only.
        self.definitions = DefinitionKeeper(clock or time.time)
        self.definition_writes = 0  # transactions the kept definitions took (benches count)
        self._keep_definitions_wanted = keep_definitions
        self.actions = ActionService(
            self.poller.backend,
            refresh=self.poller.refresh,
            read_only=self._read_only,
            user=self.user,
        )
        self.migrations = MigrationService(
            backend_for=self.poller.backend,
            snapshot=lambda: self.snapshot,
            shared_storage=self.shared_storage,  # the estate's of now: it may be edited
            operations=self.actions.operations,
            busy=self.actions.busy,
            repoll=self.poller.repoll,
            on_change=lambda moves: self.events.migrations(moves),
            overhead_mib=(
                estate.migration_overhead_mib
                if estate.migration_overhead_mib is not None
                else DEFAULT_OVERHEAD_MIB
            ),
        )
        self.imports = ImportService(
            estate=estate,
            backend_for=self.poller.backend,
            snapshot=lambda: self.snapshot,
            operations=self.actions.operations,
            jobs=self._job_recorder,
            on_change=lambda imports: self.events.imports(imports),
            library=self._job_recorder,  # the writable repository
        )
        self.storage = StorageService(
            backend_for=self.poller.backend,
            snapshot=lambda: self.snapshot,
            shared_storage=self.shared_storage,
            operations=self.actions.operations,
            repository=lambda: self.repository,
            read_only=lambda: self._read_only,
        )
        self.disks = SharedDiskService(
            backend_for=self.poller.backend,
            snapshot=lambda: self.snapshot,
            shared_storage=self.shared_storage,
            operations=self.actions.operations,
            busy=self.actions.busy,
            marks=lambda: self.repository,
            refresh=self.poller.refresh,
        )
        self.host_restores = HostRestoreService(
            backend_for=self.poller.backend,
            snapshot=lambda: self.snapshot,
            repository=self.open_repository,
            operations=self.actions.operations,
            jobs=lambda: (
                None if self.repository is None or self.repository.read_only else self.repository
            ),
            repoll=self.poller.repoll,
        )
        if repository is None:
            self.actions.journal = InMemoryJournal()
        else:
            self.actions.no_journal = read_only_reason or "the repository is not open yet"
        self.connection_tests = ConnectionTests(
            operations=self.actions.operations, pool_id=self._pool_id
        )
        self.repository_path = repository
        self.repository: Repository | None = None
        self._unwritable = unwritable
        self._snapshot = self.poller.snapshot
        self._results: list[ActionResult] = []
        self._to_store: asyncio.Queue[EstateSnapshot | DefinitionChanges | None] = asyncio.Queue()
        self._store_task: asyncio.Task[None] | None = None
        self._drifted: tuple[DriftedVm, ...] = ()
        self._action_tasks: set[asyncio.Task[object]] = set()
        self._consoles: dict[str, ConsoleSession] = {}
        self.console_log_dir = console_log_dir or default_console_log_dir()
        self.estate_edits = EstateEditor(
            estate_file,
            operations=self.actions.operations,
            snapshot=lambda: self.snapshot,
            apply=self.apply_estate,
            tell=lambda text, error: self._tell(
                Notice(text, "Estate file", "error" if error else "information")
            ),
        )

    # -- state --------------------------------------------------------------------------

    @property
    def snapshot(self) -> EstateSnapshot:
        """The latest snapshot (the faces' copy may lag by one message)."""
        return self._snapshot

    @property
    def read_only(self) -> bool:
        return self._read_only

    @property
    def action_log(self) -> Sequence[ActionResult]:
        return tuple(self._results)

    @property
    def drifted(self) -> tuple[DriftedVm, ...]:
        return self._drifted

    @property
    def backup_dir(self) -> Path | None:
        if self.repository_path is None:
            return None
        return default_backup_dir(self.repository_path)

    def _job_recorder(self) -> Repository | None:
        """Where jobs are recorded: the repository, unless it only reads."""
        repo = self.repository
        return None if repo is None or repo.read_only else repo

    def open_repository(self) -> Repository:
        if self.repository is None:
            raise RepositoryError("no repository is open: nothing is recorded in this run")
        return self.repository

    # -- lifecycle ----------------------------------------------------------------------

    async def __aenter__(self) -> EstateSession:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def start(self) -> None:
        """Open the repository (the last-known estate is published at once, marked stale)."""
        if self.repository_path is not None:
            await self._open_repository(self.repository_path)

    async def run(self) -> None:
        """Poll until cancelled; an estate file changed on disk is reloaded meanwhile."""
        watch = asyncio.create_task(self._watch_estate_file(), name="estate file")
        try:
            await self.poller.run()
        finally:
            watch.cancel()
            await asyncio.gather(watch, return_exceptions=True)

    async def _watch_estate_file(self) -> None:
        # On the refresh tick: a stat each time, a read only when the file changed.
        while True:
            await asyncio.sleep(max(1.0, self.poller.interval_s))
            try:
                await self.estate_edits.check_file()
            except OvmError as exc:
                self._tell(Notice(exc.message, exc.title, "error"))

    async def apply_estate(self, new: EstateConfig) -> tuple[str, ...]:
        """Carry on with ``new`` (the estate file was edited): hosts gone are no longer
        polled (their backends closed), new ones are polled at once, hosts whose connection
        changed are reconnected, roles follow; the repository takes the new estate as at
        start-up. Returns what the repository saw change."""
        old = {host.key: host for host in self.estate.hosts}
        current = {key: self.poller.backend(key) for key in old}
        hosts: list[PolledHost] = []
        for host in new.hosts:
            before = old.get(host.key)
            backend = current.get(host.key)
            same = before is not None and dataclasses.replace(before, roles=()) == (
                dataclasses.replace(host, roles=())
            )
            if backend is None or not same:
                backend = backend_for(host)
            hosts.append(PolledHost(backend, host.roles))
        self.estate = dataclasses.replace(
            new,
            # Not re-read while running: these were settled at start-up.
            max_waiting=self.estate.max_waiting,
            migration_overhead_mib=self.estate.migration_overhead_mib,
        )
        await self.poller.set_hosts(hosts, [pool.name for pool in new.pools])
        self._snapshot = self.poller.snapshot
        differences: list[str] = []
        repo = self.repository
        if repo is not None and not repo.read_only:
            try:
                differences = await repo.import_estate(self.estate)
            except OvmError as exc:
                self._tell(Notice(exc.message, exc.title, "error"))
        return tuple(differences)

    async def poll_once(self) -> EstateSnapshot:
        """Every host once (a headless command); recorded like the TUI's polls (by the
        writer, drained when the session closes)."""
        return await self.poller.poll_once()

    async def close(self) -> None:
        await self.interrupt_actions()
        await self.close_consoles()
        await self.poller.close()
        await self._detach_repository()

    async def interrupt_actions(self) -> None:
        """Actions still running are cancelled; each writes its "interrupted" record first."""
        running = [task for task in self._action_tasks if not task.done()]
        for task in running:
            task.cancel()  # the face may have done so already: once more changes nothing
        if running:
            await asyncio.wait(running, timeout=ACTIONS_DRAIN_S)

    # -- consoles -----------------------------------------------------------------------

    @property
    def consoles(self) -> tuple[ConsoleSession, ...]:
        """The consoles open now, oldest first."""
        return tuple(self._consoles.values())

    def console_refusal(self, placed: PlacedVm) -> str | None:
        host = self.snapshot.host(placed.host_key)
        if host is None:
            return f"{placed.host} is not in the estate"
        return console_refusal(
            placed,
            host.capabilities,
            reachable=host.reachable,
            withheld=host.why_not(Capability.CONSOLE),
        )

    def open_console(
        self,
        placed: PlacedVm,
        *,
        view_only: bool = False,
        force: bool = False,
        size: tuple[int, int] = (80, 24),
    ) -> ConsoleSession:
        """The VM's console, started (the one already open, if any: one per VM). Raises
        ``ConsoleUnavailable`` when its host or state gives none; the rest (a host that
        refuses) comes through the console's own status as it runs."""
        existing = self._consoles.get(placed.uuid)
        if existing is not None:
            return existing
        refusal = self.console_refusal(placed)
        if refusal is not None:
            raise ConsoleUnavailable(refusal)
        console = ConsoleSession(
            placed,
            transport_for=self._console_transport,
            locate=lambda uuid: self.snapshot.find_vm(uuid),
            operations=self.actions.operations,
            log_dir=self.console_log_dir,
            view_only=view_only or self.read_only,
            force=force,
            size=size,
        )
        self._consoles[placed.uuid] = console
        console.start().add_done_callback(lambda _task: self._forget_console(console))
        return console

    async def close_consoles(self) -> None:
        """Close every console and wait until each is on the record."""
        tasks = [console.start() for console in self.consoles]
        for console in self.consoles:
            console.close("ovmtui ended")
        if tasks:
            # One still opening (a host slow to answer) has no attachment to leave: it is
            # cancelled, and its record says "interrupted".
            _done, pending = await asyncio.wait(tasks, timeout=ACTIONS_DRAIN_S)
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.wait(pending, timeout=ACTIONS_DRAIN_S)

    def _forget_console(self, console: ConsoleSession) -> None:
        if self._consoles.get(console.key) is console:
            del self._consoles[console.key]

    def _console_transport(self, key: HostKey) -> ConsoleTransport | None:
        backend = self.poller.backend(key)
        if backend is None or Capability.CONSOLE not in backend.capabilities:
            return None
        return backend if isinstance(backend, ConsoleTransport) else None

    # -- one VM ---------------------------------------------------------------------------

    async def _pool_id(self, pool: str) -> str | None:
        """The pool's id in the repository (what its storage's marker holds), or None
        without a repository: a test then cannot tell whose storage it sees."""
        repository = self.repository
        if repository is None:
            return None
        try:
            return await repository.pool_id(pool)
        except RepositoryError:
            return None

    def shared_storage(self, pool: str) -> str | None:
        """The pool's shared storage as the estate file names it (None: not configured)."""
        return next((p.shared_storage for p in self.estate.pools if p.name == pool), None)

    async def vm_definition(self, placed: PlacedVm) -> str:
        """The VM's definition as its host holds it (domain XML, ``vm.cfg``). Raises
        ``ActionRefused`` when the host cannot give definitions or does not answer, and the
        backend's ``OvmError`` when it fails to."""
        host = self.snapshot.host(placed.host_key)
        backend = self.poller.backend(placed.host_key)
        if host is None or backend is None:
            raise ActionRefused(f"{placed.host} is not in the estate", title="No definition")
        if Capability.DEFINITION not in backend.capabilities or not isinstance(
            backend, DefinitionSource
        ):
            raise ActionRefused(
                f"{placed.host} cannot report VM definitions", title="No definition"
            )
        if host.reachable is False:
            raise ActionRefused(f"{placed.host} does not answer", title="No definition")
        return await backend.definition(placed.vm)

    async def vm_disk_sizes(self, placed: PlacedVm) -> Mapping[str, int | None]:
        """Each of the VM's disks' size by target, as its host measures them; empty where the
        host cannot (its backend does not measure, or it does not answer)."""
        host = self.snapshot.host(placed.host_key)
        backend = self.poller.backend(placed.host_key)
        if host is None or host.reachable is False or not isinstance(backend, DiskSizer):
            return {}
        return await backend.disk_sizes(placed.vm)

    async def vm_journal(
        self, placed: PlacedVm, limit: int = VM_JOURNAL_LIMIT
    ) -> Sequence[JournalEntry]:
        """The VM's latest journal entries (by UUID: a name may be held twice), oldest first.
        Raises ``RepositoryError`` when no repository is open."""
        return await self.open_repository().journal_entries(vm=placed.uuid, limit=limit)

    # -- keys on the guest's keyboard ------------------------------------------------------
    # Ctrl+Alt+Del (capability SEND_KEYS) and Magic SysRq (SYSRQ): refused and recorded
    # alike, through the one audited path.

    def ctrl_alt_del_command(self, placed: PlacedVm) -> str:
        backend = self.poller.backend(placed.host_key)
        if not isinstance(backend, KeySender):
            return f"# {_no_keyboard(placed)}"
        return backend.ctrl_alt_del_command(placed.vm)

    def ctrl_alt_del_refusal(self, placed: PlacedVm) -> str | None:
        """Why Ctrl+Alt+Del cannot be sent to this VM now, or None."""
        return self._keys_refusal(placed, Capability.SEND_KEYS, _no_keyboard(placed))

    async def send_ctrl_alt_del(self, placed: PlacedVm) -> str | None:
        """Ctrl+Alt+Del on the VM's keyboard, on the record. Returns why its result is not
        in the journal, or None; raises ``OvmError`` (refused, or the host's failure)."""
        backend = self.poller.backend(placed.host_key)
        if not isinstance(backend, KeySender):
            raise ActionRefused(_no_keyboard(placed))
        return await self._keys_on_record(
            placed,
            Operation("ctrl-alt-del", backend.ctrl_alt_del_command(placed.vm)),
            lambda: backend.send_ctrl_alt_del(placed.vm),
            lambda: self.ctrl_alt_del_refusal(placed),
        )

    def sysrq_command(self, placed: PlacedVm, key: str) -> str:
        backend = self.poller.backend(placed.host_key)
        if not isinstance(backend, SysRqSender):
            return f"# {_no_sysrq(placed)}"
        try:
            return backend.sysrq_command(placed.vm, key)
        except OvmError as exc:
            return f"# {exc.message}"

    def sysrq_refusal(self, placed: PlacedVm) -> str | None:
        """Why no SysRq key can be sent to this VM now, or None."""
        return self._keys_refusal(placed, Capability.SYSRQ, _no_sysrq(placed))

    async def send_sysrq(self, placed: PlacedVm, key: str) -> str | None:
        """SysRq ``key`` to the VM's kernel, on the record. Returns why its result is not in
        the journal, or None; raises ``OvmError`` (refused, or the host's failure)."""
        backend = self.poller.backend(placed.host_key)
        if not isinstance(backend, SysRqSender):
            raise ActionRefused(_no_sysrq(placed))
        return await self._keys_on_record(
            placed,
            Operation(f"sysrq-{key}", backend.sysrq_command(placed.vm, key)),
            lambda: backend.send_sysrq(placed.vm, key),
            lambda: self.sysrq_refusal(placed),
        )

    def _keys_refusal(self, placed: PlacedVm, capability: Capability, cannot: str) -> str | None:
        if self.read_only:
            return READ_ONLY
        busy = self.actions.busy.get(placed.uuid)
        if busy is not None:
            return busy
        host = self.snapshot.host(placed.host_key)
        if host is None or capability not in host.capabilities:
            return cannot
        if not placed.vm.state.is_active:
            return f"the VM is {placed.vm.state.value}"
        return None

    async def _keys_on_record(
        self,
        placed: PlacedVm,
        operation: Operation,
        send: Callable[[], Awaitable[None]],
        refusal: Callable[[], str | None],
    ) -> str | None:
        """``send`` as one audited operation on ``placed``; ``refusal`` is checked after the
        "started" record, so that a refusal is recorded too."""

        def check() -> None:
            why = refusal()
            if why is not None:
                raise ActionRefused(why)

        where = dataclasses.replace(
            operation, pool=placed.pool, host=placed.host, vm=placed.vm.name, uuid=placed.uuid
        )
        done = await self.actions.operations.run(where, send, check=check)
        self.poller.refresh(placed.host_key)
        return done.unrecorded

    # -- actions ------------------------------------------------------------------------

    def command_for(self, placed: PlacedVm, action: VmAction) -> str:
        try:
            return self.actions.command_for(placed, action)
        except OvmError as exc:
            return f"# {exc.message}"

    def refusal(self, placed: PlacedVm, action: VmAction) -> str | None:
        try:
            self.actions.check(placed, action)
        except OvmError as exc:
            return exc.message
        return None

    async def run_actions(
        self, targets: Sequence[PlacedVm], action: VmAction
    ) -> tuple[ActionResult, ...]:
        """Run ``action`` on every target (a job when there are several); each result is
        told to ``events.action`` as it comes. Cancelled, each running one is journaled as
        interrupted."""
        # A task of its own, known to the session: closing the session interrupts it (each
        # running action journaled as interrupted); the caller cancelled cancels it too.
        task = asyncio.ensure_future(self._run_actions(targets, action))
        self._action_tasks.add(task)
        task.add_done_callback(self._action_tasks.discard)
        return await task

    async def _run_actions(
        self, targets: Sequence[PlacedVm], action: VmAction
    ) -> tuple[ActionResult, ...]:
        async def run() -> list[ActionResult]:
            return await self.actions.run_many(targets, action, on_result=self._acted)

        def listed(results: list[ActionResult]) -> tuple[bool, str]:
            ok, failed = summarize(results)
            return failed == 0, f"{ok} done, {failed} failed"

        if len(targets) > 1 and self.repository is not None and not self.repository.read_only:
            results = await run_as_job(
                self.repository,
                "bulk-action",
                f"{action.value} on {len(targets)} VMs",
                run,
                outcome=listed,
                user=self.user,
                unrecorded=lambda text: self._tell(Notice(text, "Job not recorded", "warning")),
            )
        else:
            results = await run()
        return tuple(results)

    def _acted(self, result: ActionResult) -> None:
        self._results.append(result)
        del self._results[:-MAX_LOG]
        self.events.action(result)

    # -- the repository's contents ------------------------------------------------------

    async def journal_entries(self) -> Sequence[JournalEntry]:
        return await self.open_repository().journal_entries()

    async def backups(self) -> Sequence[BackupInfo]:
        """Newest first."""
        directory = self.backup_dir
        if directory is None:
            raise RepositoryError("no repository in this run: no backups")
        paths = await asyncio.to_thread(list_backups, directory)
        return [await inspect_backup(path) for path in reversed(paths)]

    async def back_up_now(self) -> Path:
        directory = self.backup_dir
        if directory is None:
            raise RepositoryError("no repository in this run: nothing to back up")
        return await create_backup(self.open_repository(), directory)

    async def export_definitions(self, directory: Path | None = None) -> ExportResult:
        """Every VM's definition into one archive signed by this repository; a job."""
        if self.repository_path is None:
            raise RepositoryError("no repository in this run: nowhere to put the archive")
        target = directory or default_definitions_dir(self.repository_path)
        snapshot = self._snapshot

        async def export() -> ExportResult:
            # Signed with the repository's key, so that it imports later as its own.
            key = await ArchiveKey.of(self.open_repository())
            return await export_definitions(snapshot, self.poller.backend, target, key=key)

        # The same job from the TUI and from a shell: `ovmtui jobs` lists both.
        repo = self.repository
        return await run_as_job(
            None if repo is None or repo.read_only else repo,
            EXPORT_KIND,
            str(target),
            export,
            outcome=export_outcome,
            user=self.user,
            unrecorded=lambda text: self._tell(Notice(text, "Job not recorded", "warning")),
        )

    async def reconcile(self, drifted: Sequence[DriftedVm]) -> ReconcileOutcome:
        if self._read_only:
            raise ActionRefused("read-only mode: a reconcile changes the repository")
        repo, directory = self.open_repository(), self.backup_dir
        assert directory is not None  # a repository is open
        outcome = await reconcile(
            repo, [vm.uuid for vm in drifted], backup_dir=directory, user=self.user
        )
        await self._check_drift(repo)
        return outcome

    async def plan_restore(
        self, backup: Path, *, from_other_repository: bool = False
    ) -> RestorePlan:
        if self.repository_path is None:
            raise RepositoryError("no repository in this run: nothing to restore into")
        return await plan_restore(
            self.repository_path, backup, from_other_repository=from_other_repository
        )

    async def restore(self, plan: RestorePlan) -> RestoreOutcome:
        """Swap the repository under the running session, then carry on with the restored
        one (the old one if the restore was refused)."""
        if self._read_only:
            raise ActionRefused("read-only mode: a restore changes the repository")
        if any(not task.done() for task in self._action_tasks):
            raise ActionRefused("actions are still running: restore once they have finished")
        directory = self.backup_dir
        assert directory is not None  # plan_restore refused already
        self.actions.hold = "the repository is being restored: try again in a moment"
        await self._detach_repository()
        try:
            return await restore_repository(plan, backup_dir=directory, user=self.user)
        finally:
            await self._open_repository(plan.repository, restored=True)
            self.actions.hold = None
            self.poller.refresh()

    # -- the repository: open, record, close --------------------------------------------

    async def _open_repository(self, path: Path, *, restored: bool = False) -> None:
        if self.read_only_reason is not None:
            await self._open_for_reading(path)
            return
        repo: Repository | None = None
        try:
            repo = await Repository.open(path)
            differences = await repo.import_estate(self.estate)
            known = await repo.load_snapshot()
        except OvmError as exc:
            if repo is not None:
                # Closed, or its aiosqlite thread (not a daemon) keeps the process alive at
                # exit: quitting would hang for good.
                await repo.close()
            if self._unwritable == "raise":
                raise
            # Writable a moment ago (checked before start-up), not now: nothing may run
            # unrecorded, so carry on read-only, watching the estate, and say why.
            self._go_read_only(f"{path}: cannot be written: {exc.message}")
            await self._open_for_reading(path)
            return
        except BaseException:
            # Cancelled halfway (a SIGHUP or a quit while it opens): closed here, or nothing
            # else would, and its aiosqlite thread would keep the process from ending.
            if repo is not None:
                await repo.close()
            raise
        self.repository = repo
        self.actions.journal = repo
        await self._keep_definitions(repo)
        for line in differences:
            self._tell(Notice(line, "Estate file differs from the repository", "warning"))
        if known is not None and restored:
            self.poller.adopt(known)
        elif known is not None:
            # Last-known state at once, marked stale, before the first poll answers.
            self.poller.seed(known)
            self._snapshot = self.poller.snapshot
            self.events.estate(self._snapshot)
        # A task of our own: a save cancelled halfway would leave its transaction open; this
        # one is drained at the end instead.
        self._store_task = asyncio.create_task(self._store_snapshots(repo))

    async def _keep_definitions(self, repo: Repository) -> None:
        """Start from the repository's kept definitions; from now on polls read theirs."""
        if not self._keep_definitions_wanted:
            return
        try:
            self.definitions.load(await repo.definition_index())
        except OvmError as exc:
            self._tell(Notice(str(exc), "Definitions are not kept in this run", "warning"))
            return
        for key in self.poller.hosts:
            backend = self.poller.backend(key)
            if isinstance(backend, KeepsDefinitions):
                backend.keep_definitions(True)

    def _definitions_read(self, key: HostKey, poll: HostPoll) -> None:
        if self._store_task is None or not self.definitions.loaded:
            return
        changes = self.definitions.offered(key, poll)
        if changes:
            self._to_store.put_nowait(changes)

    def _go_read_only(self, reason: str) -> None:
        self.read_only_reason = reason
        self._read_only = self.actions.read_only = True
        self.actions.no_journal = reason
        self.events.read_only(reason)

    async def _open_for_reading(self, path: Path) -> None:
        """The last-known state and the journal, to read: nothing is written, nothing runs."""
        repo: Repository | None = None
        try:
            repo = await Repository.open(path, read_only=True)
            known = await repo.load_snapshot()
            drifted = tuple(await repo.drifted())
        except OvmError as exc:
            if repo is not None:
                await repo.close()
            self._tell(
                Notice(
                    f"{exc}\nNo last-known state: only what the hosts answer now is shown.",
                    "The repository cannot be read either",
                    "error",
                    lasting=True,
                )
            )
            return
        except BaseException:
            if repo is not None:  # cancelled halfway: see _open_repository
                await repo.close()
            raise
        self.repository = repo
        if known is not None:
            self.poller.seed(known)
            self._snapshot = self.poller.snapshot
            self.events.estate(self._snapshot)
        if drifted:
            self._drifted = drifted
            self.events.drift(drifted)

    async def _store_snapshots(self, repo: Repository) -> None:
        """Record every published snapshot, in order (their deltas build on each other)."""
        failed = False
        while (snapshot := await self._to_store.get()) is not None:
            if isinstance(snapshot, DefinitionChanges):
                await self._store_definitions(repo, snapshot)
                continue
            try:
                await repo.save_snapshot(snapshot)
                await self._check_drift(repo)
                failed = False
            except OvmError as exc:
                if not failed:  # once, not at every refresh
                    self._tell(Notice(str(exc), exc.title, "error"))
                failed = True

    async def _store_definitions(self, repo: Repository, changes: DefinitionChanges) -> None:
        try:
            await repo.save_definitions(changes)
            self.definition_writes += 1
        except OvmError as exc:
            # Offered again when next read (the next event about it, or the next start).
            self.definitions.forget(changes)
            self._tell(Notice(str(exc), "Definitions not kept", "warning"))

    async def _check_drift(self, repo: Repository) -> None:
        drifted = tuple(await repo.drifted())
        if drifted != self._drifted:
            self._drifted = drifted
            self.events.drift(drifted)

    async def _detach_repository(self) -> None:
        """Save what is queued, then close: nothing seen is lost, nothing half-written."""
        repo, self.repository = self.repository, None
        self.actions.journal = None
        self.actions.no_journal = "the repository is closed"
        if self._store_task is not None:
            self._to_store.put_nowait(None)  # save what is queued, then stop
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._store_task, STORE_DRAIN_S)
            self._store_task = None
        if repo is not None and not repo.read_only:
            with contextlib.suppress(OvmError):
                # In full: deltas still queued when the writer stopped are not lost.
                await repo.save_snapshot(dataclasses.replace(self._snapshot, delta=None))
        if repo is not None:
            await repo.close()

    def _published(self, snapshot: EstateSnapshot) -> None:
        self._snapshot = snapshot
        if self._store_task is not None:  # none for a repository opened only to read
            self._to_store.put_nowait(snapshot)
        self.events.estate(snapshot)

    def _tell(self, notice: Notice) -> None:
        self.events.notice(notice)


def _no_keyboard(placed: PlacedVm) -> str:
    return f"{placed.host} cannot press keys on its guests' keyboards"


def _no_sysrq(placed: PlacedVm) -> str:
    return f"{placed.host} cannot send SysRq keys"
