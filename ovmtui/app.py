"""OvmApp: owns the services, routes their results to the screens."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import gc
import signal
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from textual.app import App
from textual.binding import Binding

from ovmtui.backend.base import Backend
from ovmtui.backend.factory import backend_for
from ovmtui.commands import EstateCommands
from ovmtui.config import EstateConfig
from ovmtui.errors import ActionRefused, OvmError, RepositoryError
from ovmtui.identity import current_user
from ovmtui.messages import ActionProgressed, ActionsFinished, DriftChanged, EstateUpdated
from ovmtui.model import EstateSnapshot, PlacedVm, VmAction
from ovmtui.operations import run_as_job
from ovmtui.screens.dashboard import DashboardScreen
from ovmtui.screens.drift import DriftScreen
from ovmtui.services.actions import (
    ActionResult,
    ActionService,
    InMemoryJournal,
    summarize,
)
from ovmtui.services.definitions import (
    ArchiveKey,
    ExportResult,
    default_definitions_dir,
    export_definitions,
)
from ovmtui.services.jobs import EXPORT_KIND, export_outcome
from ovmtui.services.poller import EstatePoller, PolledHost
from ovmtui.store.backup import (
    BackupInfo,
    create_backup,
    default_backup_dir,
    inspect_backup,
    list_backups,
)
from ovmtui.store.drift import DriftedVm
from ovmtui.store.journal import JournalEntry
from ovmtui.store.reconcile import ReconcileOutcome, reconcile
from ovmtui.store.repository import Repository
from ovmtui.store.restore import RestoreOutcome, RestorePlan, plan_restore, restore_repository

MAX_LOG = 5000
STORE_DRAIN_S = 10.0
# At exit, how long running actions have to write their "interrupted" record.
ACTIONS_DRAIN_S = 5.0
# Signals that end ovmtui as `q` does.
ENDING_SIGNALS = (signal.SIGTERM, signal.SIGHUP, signal.SIGINT)


# How long a thread may hold the GIL while another waits for it (Python's default: 5 ms).
# The event loop is the waiting one whenever a worker parses (Xen full polls, libvirt
# definitions), and every wait is a keypress or a repaint held up: with 200 Xen hosts
# polled every 2 s the loop's p99 stall was 10.3 ms at 5 ms, 6.6 ms at 1 ms and 4.0 ms at
# 0.5 ms (bench/ssh_poll.py). Worker threads lose a little throughput, not the operator.
UI_SWITCH_INTERVAL_S = 0.0005


def tune_process_for_ui() -> None:
    """Process-wide settings of an interactive ovmtui (the TUI, and benchmarks of it)."""
    sys.setswitchinterval(UI_SWITCH_INTERVAL_S)


class OvmApp(App[int]):
    CSS_PATH = Path(__file__).with_name("ovmtui.tcss")
    TITLE = "ovmtui"
    # Screen classes for small terminals: ovmtui.tcss drops the sidebar or the host panel.
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (64, "-wide")]
    VERTICAL_BREAKPOINTS = [(0, "-short"), (24, "-tall")]
    COMMANDS = App.COMMANDS | {EstateCommands}
    BINDINGS = [
        Binding("q", "quit", "Quit", id="quit"),
        Binding("question_mark", "toggle_help", "Keys", id="help"),
        # The terminal hands Ctrl+Z over as a key (raw mode): suspend as the shell would.
        Binding("ctrl+z", "suspend_process", "Suspend", show=False, id="suspend"),
    ]

    def __init__(
        self,
        estate: EstateConfig,
        *,
        interval_s: float = 5.0,
        read_only: bool = False,
        clock: Callable[[], float] = time.time,
        backends: Sequence[Backend] | None = None,
        repository: Path | None = None,
        read_only_reason: str | None = None,
    ) -> None:
        """``read_only_reason``: why the repository cannot be written (see
        ``headless.check_repository``); the app then runs read-only and only reads it."""
        super().__init__()
        self.estate = estate
        self._read_only = read_only or read_only_reason is not None
        self._read_only_reason = read_only_reason
        self._clock = clock
        if backends is None:
            backends = [backend_for(host) for host in estate.hosts]
        roles = {host.key: host.roles for host in estate.hosts}
        self.poller = EstatePoller(
            [PolledHost(b, roles.get(b.host, ())) for b in backends],
            on_snapshot=self._snapshot_published,
            interval_s=interval_s,
            clock=clock,
        )
        self.actions = ActionService(
            self.poller.backend, refresh=self.poller.refresh, read_only=self._read_only
        )
        if repository is None:
            # Embedded without a repository (tests, benchmarks): the record lives in memory.
            # The command line always gives one, and actions wait for it to open.
            self.actions.journal = InMemoryJournal()
        else:
            self.actions.no_journal = read_only_reason or "the repository is not open yet"
        self._snapshot = self.poller.snapshot
        self._results: list[ActionResult] = []
        self._repository_path = repository
        self.repository: Repository | None = None
        self._to_store: asyncio.Queue[EstateSnapshot | None] = asyncio.Queue()
        self._store_task: asyncio.Task[None] | None = None
        self._drifted: tuple[DriftedVm, ...] = ()
        # Running action jobs: at exit they are cancelled and must write their "interrupted"
        # record before the repository closes.
        self._action_tasks: set[asyncio.Task[object]] = set()

    # -- AppContext -----------------------------------------------------------------------

    @property
    def snapshot(self) -> EstateSnapshot:
        return self._snapshot

    @property
    def read_only(self) -> bool:
        return self._read_only

    @property
    def action_log(self) -> Sequence[ActionResult]:
        return tuple(self._results)

    def clock(self) -> float:
        return self._clock()

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

    def start_actions(self, targets: Sequence[PlacedVm], action: VmAction) -> None:
        self.run_worker(
            self._run_actions(tuple(targets), action),
            group="jobs",
            description=f"{action.label} {len(targets)} VM(s)",
        )

    def refresh_now(self) -> None:
        self.poller.refresh()

    async def journal_entries(self) -> Sequence[JournalEntry]:
        return await self._open_repo().journal_entries()

    def _open_repo(self) -> Repository:
        if self.repository is None:
            raise RepositoryError("no repository is open: nothing is recorded in this run")
        return self.repository

    @property
    def backup_dir(self) -> Path | None:
        if self._repository_path is None:
            return None
        return default_backup_dir(self._repository_path)

    @property
    def repository_identity(self) -> str | None:
        return None if self.repository is None else self.repository.identity

    async def backups(self) -> Sequence[BackupInfo]:
        directory = self.backup_dir
        if directory is None:
            raise RepositoryError("no repository in this run: no backups")
        paths = await asyncio.to_thread(list_backups, directory)
        return [await inspect_backup(path) for path in reversed(paths)]

    async def back_up_now(self) -> Path:
        directory = self.backup_dir
        if directory is None:
            raise RepositoryError("no repository in this run: nothing to back up")
        return await create_backup(self._open_repo(), directory)

    async def export_definitions(self) -> ExportResult:
        if self._repository_path is None:
            raise RepositoryError("no repository in this run: nowhere to put the archive")
        directory = default_definitions_dir(self._repository_path)
        snapshot = self._snapshot

        async def export() -> ExportResult:
            # Signed with the repository's key, so that it imports later as its own.
            key = await ArchiveKey.of(self._open_repo())
            return await export_definitions(snapshot, self.poller.backend, directory, key=key)

        # The same job as `ovmtui export-definitions` records: `ovmtui jobs` lists both.
        return await run_as_job(
            self.repository,
            EXPORT_KIND,
            str(directory),
            export,
            outcome=export_outcome,
            user=current_user(),
        )

    @property
    def drifted(self) -> Sequence[DriftedVm]:
        return self._drifted

    async def reconcile(self, drifted: Sequence[DriftedVm]) -> ReconcileOutcome:
        if self._read_only:
            raise ActionRefused("read-only mode: a reconcile changes the repository")
        repo, directory = self._open_repo(), self.backup_dir
        assert directory is not None  # a repository is open
        outcome = await reconcile(
            repo, [vm.uuid for vm in drifted], backup_dir=directory, user=current_user()
        )
        await self._check_drift(repo)
        return outcome

    async def _check_drift(self, repo: Repository) -> None:
        drifted = tuple(await repo.drifted())
        if drifted != self._drifted:
            self._drifted = drifted
            self.post_message(DriftChanged(drifted))

    async def plan_restore(
        self, backup: Path, *, from_other_repository: bool = False
    ) -> RestorePlan:
        if self._repository_path is None:
            raise RepositoryError("no repository in this run: nothing to restore into")
        return await plan_restore(
            self._repository_path, backup, from_other_repository=from_other_repository
        )

    async def restore(self, plan: RestorePlan) -> RestoreOutcome:
        """Swap the repository under the running app, then carry on with the restored one."""
        if self._read_only:
            raise ActionRefused("read-only mode: a restore changes the repository")
        if any(w.group == "jobs" and not w.is_finished for w in self.workers):
            raise ActionRefused("actions are still running: restore once they have finished")
        directory = self.backup_dir
        assert directory is not None  # plan_restore refused already
        self.actions.hold = "the repository is being restored: try again in a moment"
        await self._detach_repository()
        try:
            return await restore_repository(plan, backup_dir=directory, user=current_user())
        finally:
            # The restored repository, or the old one if the restore was refused.
            await self._open_repository(plan.repository, restored=True)
            self.actions.hold = None
            self.poller.refresh()

    # -- lifecycle ------------------------------------------------------------------------

    def get_default_screen(self) -> DashboardScreen:
        return DashboardScreen(self)

    def on_mount(self) -> None:
        # What is alive now (Textual, the screens, the modules) lives as long as the app:
        # moved out of the collector's reach, it is not rescanned by every full collection
        # that the churn of VM objects triggers.
        gc.freeze()
        if not self.is_headless:
            self._end_on_signals()
        self.app_resume_signal.subscribe(self, self._redraw_after_resume)
        if self._read_only_reason is not None:
            self._say_read_only(self._read_only_reason)
        self.run_worker(self._run_services(), group="poller", name="poller", exclusive=True)

    def _end_on_signals(self) -> None:
        """SIGTERM, SIGHUP (the terminal or SSH session gone) and SIGINT end ovmtui as `q`
        does: running actions get their "interrupted" record and the terminal is restored.
        Python's default would end the process there and then, the terminal left raw,
        in the alternate screen, with the mouse reported and no cursor."""
        loop = asyncio.get_running_loop()
        for signum in ENDING_SIGNALS:
            # Removed again when the loop closes, after the app has ended.
            loop.add_signal_handler(signum, self._end_by_signal, signum)

    def _redraw_after_resume(self, _: object) -> None:
        # Back from Ctrl+Z or SIGTSTP (`fg`): the terminal's alternate screen starts blank,
        # and Textual only redraws what changes; without this, the tree and the footer stay
        # blank until a resize.
        for screen in self.screen_stack:
            screen.refresh(layout=True)

    def _end_by_signal(self, signum: int) -> None:
        # The shell's convention for "ended by this signal": 128 + its number.
        self.exit(return_code=128 + signum)

    def _say_read_only(self, reason: str) -> None:
        self.notify(
            f"{reason}\nNothing can be recorded, so no action is offered. "
            "The last-known state is shown; the hosts are still watched.",
            title="Read-only: the repository cannot be written",
            severity="error",
            timeout=3600,  # the reason stays until dismissed (click it)
            markup=False,
        )

    async def _run_services(self) -> None:
        if self._repository_path is not None:
            await self._open_repository(self._repository_path)
        await self.poller.run()

    async def _open_repository(self, path: Path, *, restored: bool = False) -> None:
        if self._read_only_reason is not None:
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
                # exit: `q` would hang for good.
                await repo.close()
            # Writable a moment ago (checked before start-up), not now: nothing may run
            # unrecorded, so carry on read-only, watching the estate, and say why.
            self._go_read_only(f"{path}: cannot be written: {exc.message}")
            await self._open_for_reading(path)
            return
        self.repository = repo
        self.actions.journal = repo
        for line in differences:
            self.notify(
                line,
                title="Estate file differs from the repository",
                severity="warning",
                timeout=10,
                markup=False,
            )
        if known is not None and restored:
            self.poller.adopt(known)
        elif known is not None:
            # Last-known state at once, marked stale, before the first poll answers.
            self.poller.seed(known)
            self.post_message(EstateUpdated(self.poller.snapshot))
        # A task of our own, not a Textual worker: workers are cancelled at exit, and a save
        # cancelled halfway would leave its transaction open; this one is drained instead.
        self._store_task = asyncio.create_task(self._store_snapshots(repo))

    def _go_read_only(self, reason: str) -> None:
        self._read_only_reason = reason
        self._read_only = self.actions.read_only = True
        self.actions.no_journal = reason
        self._say_read_only(reason)
        for screen in self.screen_stack:
            screen.refresh_bindings()  # the action keys go from the footer

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
            self.notify(
                f"{exc}\nNo last-known state: only what the hosts answer now is shown.",
                title="The repository cannot be read either",
                severity="error",
                timeout=3600,
                markup=False,
            )
            return
        self.repository = repo
        if known is not None:
            self.poller.seed(known)
            self.post_message(EstateUpdated(self.poller.snapshot))
        if drifted:
            self._drifted = drifted
            self.post_message(DriftChanged(drifted))

    async def _store_snapshots(self, repo: Repository) -> None:
        """Record every published snapshot, in order (their deltas build on each other)."""
        failed = False
        while (snapshot := await self._to_store.get()) is not None:
            try:
                await repo.save_snapshot(snapshot)
                await self._check_drift(repo)
                failed = False
            except OvmError as exc:
                if not failed:  # once, not at every refresh
                    self.notify(str(exc), title=exc.title, severity="error", markup=False)
                failed = True

    async def on_unmount(self) -> None:
        self.workers.cancel_group(self, "poller")
        await self._interrupt_actions()
        await self.poller.close()
        await self._detach_repository()

    async def _interrupt_actions(self) -> None:
        """Actions still running are cancelled; each writes its "interrupted" record first."""
        running = [task for task in self._action_tasks if not task.done()]
        for task in running:
            task.cancel()  # Textual may have done so already: once more changes nothing
        if running:
            await asyncio.wait(running, timeout=ACTIONS_DRAIN_S)

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

    # -- services to UI -------------------------------------------------------------------

    def _snapshot_published(self, snapshot: EstateSnapshot) -> None:
        if self._store_task is not None:  # none for a repository opened only to read
            self._to_store.put_nowait(snapshot)
        self.post_message(EstateUpdated(snapshot))

    def on_drift_changed(self, message: DriftChanged) -> None:
        for screen in self.screen_stack:
            if isinstance(screen, (DashboardScreen, DriftScreen)):
                screen.show_drift(message.drifted)
        if message.drifted:
            self.notify(
                f"{len(message.drifted)} VM(s) recorded as active are reported by no host. "
                "Press D to see them and reconcile.",
                title="State drift",
                severity="warning",
                timeout=10,
            )

    def on_estate_updated(self, message: EstateUpdated) -> None:
        self._snapshot = message.snapshot
        for screen in self.screen_stack:
            if isinstance(screen, DashboardScreen):
                screen.show_estate(message.snapshot)

    async def _run_actions(self, targets: tuple[PlacedVm, ...], action: VmAction) -> None:
        def progressed(result: ActionResult) -> None:
            self.post_message(ActionProgressed(result))

        task = asyncio.current_task()
        assert task is not None  # a coroutine of a Textual worker's task
        self._action_tasks.add(task)
        task.add_done_callback(self._action_tasks.discard)
        job = None
        if len(targets) > 1:
            job = await self._job_started("bulk-action", f"{action.value} on {len(targets)} VMs")
        results = await self.actions.run_many(targets, action, on_result=progressed)
        ok, failed = summarize(results)
        await self._job_finished(job, ok=failed == 0, detail=f"{ok} done, {failed} failed")
        self.post_message(ActionsFinished(action, tuple(results)))

    async def _job_started(self, kind: str, detail: str) -> int | None:
        """A job in the repository (None without one): recording it never stops the work."""
        if self.repository is None:
            return None
        try:
            return await self.repository.job_started(kind, detail, user=current_user())
        except OvmError:
            return None

    async def _job_finished(self, job: int | None, *, ok: bool, detail: str) -> None:
        if job is not None and self.repository is not None:
            with contextlib.suppress(OvmError):
                await self.repository.job_finished(job, ok=ok, detail=detail)

    def on_action_progressed(self, message: ActionProgressed) -> None:
        self._results.append(message.result)
        del self._results[:-MAX_LOG]

    def on_actions_finished(self, message: ActionsFinished) -> None:
        ok, failed = summarize(message.results)
        if len(message.results) == 1:
            result = message.results[0]
            if result.ok:
                self.notify(result.summary, timeout=3)
            else:
                self.notify(
                    result.error or "failed",
                    title=result.summary.split(":")[0],
                    severity="error",
                    timeout=10,
                    markup=False,
                )
            return
        text = f"{ok} done, {failed} failed"
        failures = [r for r in message.results if not r.ok]
        if failures:
            text += "\n" + "\n".join(f"{r.placed.vm.name}: {r.error}" for r in failures[:5])
            if len(failures) > 5:
                text += f"\n… see the action log (l) for {len(failures) - 5} more"
        self.notify(
            text,
            title=f"{message.action.label}: {len(message.results)} VMs",
            severity="error" if failures else "information",
            timeout=10 if failures else 4,
            markup=False,
        )

    def action_toggle_help(self) -> None:
        if self.screen.query("HelpPanel"):
            self.action_hide_help_panel()
        else:
            self.action_show_help_panel()
