"""OvmApp: the Textual face of the estate session (ovmtui.services.session).

The app holds the bindings, the screens and the notices; the session owns the services.
Screens hear about the estate through signals they subscribe to while mounted
(``estate_signal``, ``drift_signal``, ``action_signal``, ``read_only_signal``): the app never
looks screens up to hand them data, and imports no screen but the first one.
"""

from __future__ import annotations

import asyncio
import gc
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from textual.app import App
from textual.binding import Binding
from textual.signal import Signal

from ovmtui.backend.base import Backend
from ovmtui.commands import EstateCommands
from ovmtui.config import EstateConfig, HostConfig, PoolConfig
from ovmtui.errors import ConsoleUnavailable, OvmError
from ovmtui.import_plan import ImportPlan
from ovmtui.messages import ActionsFinished, DriftChanged, EstateUpdated, NoticeGiven
from ovmtui.model import EstateSnapshot, HostKey, MigrationProgress, PlacedVm, VmAction
from ovmtui.operations import Done
from ovmtui.screens.dashboard import DashboardScreen
from ovmtui.services.actions import ActionResult, ActionService, summarize
from ovmtui.services.connection_test import ConnectionTests
from ovmtui.services.consoles import ConsoleRequest, ConsoleSession, ConsoleStatus
from ovmtui.services.definitions import ExportResult
from ovmtui.services.disk_rules import SharedDisk
from ovmtui.services.estate_edits import EstateEditor
from ovmtui.services.flight_plan import EvacuationPlan
from ovmtui.services.host_restore import HostRestoreOutcome, HostRestorePlan, StepOutcome
from ovmtui.services.imports import Importing
from ovmtui.services.migration import FlightPlan, MigrationOutcome, Moving
from ovmtui.services.poller import EstatePoller
from ovmtui.services.session import EstateSession, Notice, SessionEvents
from ovmtui.services.shared_disks import DiskPlan
from ovmtui.services.storage import StorageService
from ovmtui.store.backup import BackupInfo
from ovmtui.store.drift import DriftedVm
from ovmtui.store.estate_file import EstateFile
from ovmtui.store.journal import JournalEntry
from ovmtui.store.reconcile import ReconcileOutcome
from ovmtui.store.repository import Repository
from ovmtui.store.restore import RestoreOutcome, RestorePlan

# Signals that end ovmtui as `q` does.
ENDING_SIGNALS = (signal.SIGTERM, signal.SIGHUP, signal.SIGINT)


# How long a thread may hold the GIL while another waits for it (Python's default: 5 ms).
# The event loop is the waiting one whenever a worker parses (Xen full polls, libvirt
# definitions), and every wait is a keypress or a repaint held up: with 200 Xen hosts
# polled every 2 s the loop's p99 stall was 10.3 ms at 5 ms, 6.6 ms at 1 ms and 4.0 ms at
# 0.5 ms (bench/ssh_poll.py). Worker threads lose a little throughput, not the operator.
# One of the latency knobs gathered in docs/latency.md.
UI_SWITCH_INTERVAL_S = 0.0005


# How long Textual has to give the terminal back once the session is closed.
EXIT_GRACE_S = 3.0


def _end_process_after(grace_s: float, code: Callable[[], int]) -> None:
    def end() -> None:
        time.sleep(grace_s)
        os._exit(code())

    threading.Thread(target=end, name="ovmtui-exit-guard", daemon=True).start()


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
        console_log_dir: Path | None = None,
        console: ConsoleRequest | None = None,
        estate_file: EstateFile | None = None,
    ) -> None:
        """``read_only_reason``: why the repository cannot be written (see
        ``headless.check_repository``); the app then runs read-only and only reads it.
        ``console``: open this VM's console at once, full screen, and end the program when
        the operator leaves it (``ovmtui console``). ``estate_file``: what ``estate`` was
        read from, for the estate's keys and its reload when it changes on disk."""
        super().__init__()
        self._clock = clock
        self._console_request = console
        # Why the program ends with a failure the screen could not show (its console
        # could not be had): printed by the command line once the terminal is back.
        self.exit_reason: str | None = None
        self.session = EstateSession(
            estate,
            estate_file=estate_file,
            repository=repository,
            console_log_dir=console_log_dir,
            interval_s=interval_s,
            read_only=read_only,
            read_only_reason=read_only_reason,
            backends=backends,
            clock=clock,
            events=SessionEvents(
                # From the session's tasks into Textual's message loop, in order.
                estate=lambda snapshot: self.post_message(EstateUpdated(snapshot)),
                drift=lambda drifted: self.post_message(DriftChanged(drifted)),
                action=lambda result: self.action_signal.publish(result),
                notice=lambda notice: self.post_message(NoticeGiven(notice)),
                read_only=lambda reason: self.call_later(self._went_read_only, reason),
                migrations=lambda moves: self.migration_signal.publish(moves),
                imports=lambda imports: self.import_signal.publish(imports),
            ),
        )
        self._snapshot = self.session.snapshot
        # What screens subscribe to while mounted (see the module docstring).
        self.estate_signal: Signal[EstateSnapshot] = Signal(self, "estate")
        self.drift_signal: Signal[tuple[DriftedVm, ...]] = Signal(self, "drift")
        self.action_signal: Signal[ActionResult] = Signal(self, "action")
        self.read_only_signal: Signal[str] = Signal(self, "read-only")
        self.migration_signal: Signal[tuple[Moving, ...]] = Signal(self, "migrations")
        self.import_signal: Signal[tuple[Importing, ...]] = Signal(self, "imports")

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        # Textual binds Ctrl+Q to quit with priority, before any widget sees it: on a screen
        # whose keys are the guest's (a console: Ctrl+Q is XON, or a program's own key), it
        # must reach the guest rather than end ovmtui. `q` and the palette stay the app's.
        if action == "quit" and getattr(self.screen, "KEYS_TO_GUEST", False):
            return False
        return super().check_action(action, parameters)

    # -- AppContext -----------------------------------------------------------------------

    @property
    def snapshot(self) -> EstateSnapshot:
        return self._snapshot

    @property
    def estate(self) -> EstateConfig:
        """The estate as it is now (its file may be edited while ovmtui runs)."""
        return self.session.estate

    @property
    def estate_edits(self) -> EstateEditor:
        return self.session.estate_edits

    @property
    def poller(self) -> EstatePoller:
        """The session's poller (tests and benchmarks drive it)."""
        return self.session.poller

    @property
    def actions(self) -> ActionService:
        return self.session.actions

    @property
    def repository(self) -> Repository | None:
        return self.session.repository

    @property
    def read_only(self) -> bool:
        return self.session.read_only

    @property
    def action_log(self) -> Sequence[ActionResult]:
        return self.session.action_log

    def clock(self) -> float:
        return self._clock()

    def command_for(self, placed: PlacedVm, action: VmAction) -> str:
        return self.session.command_for(placed, action)

    @property
    def consoles(self) -> tuple[ConsoleSession, ...]:
        return self.session.consoles

    def console_refusal(self, placed: PlacedVm) -> str | None:
        return self.session.console_refusal(placed)

    def open_console(self, placed: PlacedVm, *, force: bool = False) -> ConsoleSession:
        return self.session.open_console(placed, force=force)

    def sysrq_command(self, placed: PlacedVm, key: str) -> str:
        return self.session.sysrq_command(placed, key)

    def sysrq_refusal(self, placed: PlacedVm) -> str | None:
        return self.session.sysrq_refusal(placed)

    async def send_sysrq(self, placed: PlacedVm, key: str) -> str | None:
        return await self.session.send_sysrq(placed, key)

    def ctrl_alt_del_command(self, placed: PlacedVm) -> str:
        return self.session.ctrl_alt_del_command(placed)

    def ctrl_alt_del_refusal(self, placed: PlacedVm) -> str | None:
        return self.session.ctrl_alt_del_refusal(placed)

    async def send_ctrl_alt_del(self, placed: PlacedVm) -> str | None:
        return await self.session.send_ctrl_alt_del(placed)

    async def migration_plan(self, placed: PlacedVm, *, live: bool = True) -> FlightPlan:
        return await self.session.migrations.plan(placed, live=live)

    def migration_command(self, placed: PlacedVm, target: HostKey, *, live: bool = True) -> str:
        return self.session.migrations.command(placed, target, live=live)

    async def migrate(
        self,
        placed: PlacedVm,
        target: HostKey,
        *,
        live: bool = True,
        plan: FlightPlan | None = None,
        override: str | None = None,
        progress: Callable[[MigrationProgress], object] | None = None,
    ) -> MigrationOutcome:
        return await self.session.migrations.migrate(
            placed, target, live=live, plan=plan, override=override, progress=progress
        )

    async def evacuation_plan(self, host: HostKey) -> EvacuationPlan:
        return await self.session.migrations.plan_evacuation(host)

    def restore_order(self, pool: str) -> tuple[HostKey, ...]:
        return self.session.host_restores.pool_order(pool)

    async def restore_plan(self, host: HostKey, *, start: bool) -> HostRestorePlan:
        return await self.session.host_restores.plan(host, start=start)

    async def restore_host(
        self, plan: HostRestorePlan, *, progress: Callable[[StepOutcome], object] | None = None
    ) -> HostRestoreOutcome:
        return await self.session.host_restores.run(plan, progress=progress)

    def cancel_migration(self, uuid: str) -> bool:
        return self.session.migrations.cancel(uuid)

    @property
    def connection_tests(self) -> ConnectionTests:
        return self.session.connection_tests

    def host_config(self, host: HostKey) -> tuple[HostConfig, PoolConfig] | None:
        for pool in self.session.estate.pools:
            for config in pool.hosts:
                if config.key == host:
                    return config, pool
        return None

    def refusal(self, placed: PlacedVm, action: VmAction) -> str | None:
        return self.session.refusal(placed, action)

    @property
    def imports(self) -> tuple[Importing, ...]:
        return self.session.imports.imports

    def import_pools(self) -> tuple[str, ...]:
        return tuple(p.name for p in self.estate.pools if p.shared_storage)

    def plan_import(
        self,
        url: str,
        kind: str,
        *,
        pool: str | None = None,
        name: str | None = None,
        sha256: str | None = None,
    ) -> tuple[str, ImportPlan]:
        return self.session.imports.plan(url, kind, pool=pool, name=name, sha256=sha256)

    def start_import(self, pool: str, plan: ImportPlan) -> None:
        self.run_worker(
            self._run_import(pool, plan), group="jobs", description=f"import {plan.name}"
        )

    def cancel_import(self, import_id: int) -> bool:
        return self.session.imports.cancel(import_id)

    async def _run_import(self, pool: str, plan: ImportPlan) -> None:
        outcome = await self.session.imports.run(pool, plan)
        if outcome.note:
            self.notify(outcome.note, title="Import", severity="warning", markup=False)
        if outcome.ok:
            self.notify(outcome.detail, title=f"Imported {plan.name}", markup=False)
        else:
            self.notify(
                outcome.detail,
                title=f"Import of {plan.name} {'cancelled' if outcome.cancelled else 'failed'}",
                severity="warning" if outcome.cancelled else "error",
                timeout=30,
                markup=False,
            )

    def start_actions(self, targets: Sequence[PlacedVm], action: VmAction) -> None:
        self.run_worker(
            self._run_actions(tuple(targets), action),
            group="jobs",
            description=f"{action.label} {len(targets)} VM(s)",
        )

    def refresh_now(self) -> None:
        self.session.poller.refresh()

    async def journal_entries(self) -> Sequence[JournalEntry]:
        return await self.session.journal_entries()

    def shared_storage(self, pool: str) -> str | None:
        return self.session.shared_storage(pool)

    @property
    def storage(self) -> StorageService:
        return self.session.storage

    async def shared_disks(self, pool: str) -> tuple[SharedDisk, ...]:
        return await self.session.disks.disks(pool)

    async def shared_disk(self, pool: str, name: str) -> SharedDisk:
        return await self.session.disks.disk(pool, name)

    def disk_hot_plug(self, placed: PlacedVm) -> str | None:
        return self.session.disks.hot_plug(placed)

    async def plan_disk(
        self, placed: PlacedVm, name: str, *, attach: bool, read_only: bool, live: bool
    ) -> DiskPlan:
        disks = self.session.disks
        if attach:
            return await disks.plan_attach(
                placed.pool, name, placed, read_only=read_only, live=live
            )
        return await disks.plan_detach(placed.pool, name, placed, live=live)

    async def plan_disk_create(
        self, pool: str, name: str, size_bytes: int, *, allocate: bool, shareable: bool
    ) -> DiskPlan:
        return await self.session.disks.plan_create(
            pool, name, size_bytes, allocate=allocate, shareable=shareable
        )

    async def plan_disk_delete(self, pool: str, name: str) -> DiskPlan:
        return await self.session.disks.plan_delete(pool, name)

    async def run_disk_plan(self, plan: DiskPlan) -> Done[str]:
        return await self.session.disks.run(plan)

    async def vm_disk_sizes(self, placed: PlacedVm) -> Mapping[str, int | None]:
        return await self.session.vm_disk_sizes(placed)

    async def vm_definition(self, placed: PlacedVm) -> str:
        return await self.session.vm_definition(placed)

    async def vm_journal(self, placed: PlacedVm) -> Sequence[JournalEntry]:
        return await self.session.vm_journal(placed)

    @property
    def backup_dir(self) -> Path | None:
        return self.session.backup_dir

    @property
    def repository_identity(self) -> str | None:
        repo = self.session.repository
        return None if repo is None else repo.identity

    async def backups(self) -> Sequence[BackupInfo]:
        return await self.session.backups()

    async def back_up_now(self) -> Path:
        return await self.session.back_up_now()

    async def export_definitions(self) -> ExportResult:
        return await self.session.export_definitions()

    @property
    def drifted(self) -> Sequence[DriftedVm]:
        return self.session.drifted

    async def reconcile(self, drifted: Sequence[DriftedVm]) -> ReconcileOutcome:
        return await self.session.reconcile(drifted)

    async def plan_restore(
        self, backup: Path, *, from_other_repository: bool = False
    ) -> RestorePlan:
        return await self.session.plan_restore(backup, from_other_repository=from_other_repository)

    async def restore(self, plan: RestorePlan) -> RestoreOutcome:
        """Swap the repository under the running app, then carry on with the restored one."""
        return await self.session.restore(plan)

    # -- lifecycle ------------------------------------------------------------------------

    def get_default_screen(self) -> DashboardScreen:
        return DashboardScreen(self)

    def on_mount(self) -> None:
        # What is alive now (Textual, the screens, the modules) lives as long as the app:
        # moved out of the collector's reach, it is not rescanned by every full collection
        # that the churn of VM objects triggers. A latency knob: see docs/latency.md.
        gc.freeze()
        if not self.is_headless:
            self._end_on_signals()
        self.app_resume_signal.subscribe(self, self._redraw_after_resume)
        if self.session.read_only_reason is not None:
            self._say_read_only(self.session.read_only_reason)
        self.run_worker(self._run_session(), group="poller", name="poller", exclusive=True)

    async def _run_session(self) -> None:
        await self.session.start()
        if self._console_request is not None:
            # The console needs its host's answer first (its capabilities, the VM's state).
            await self.session.poll_once()
            self._open_requested_console(self._console_request)
        await self.session.run()

    def _open_requested_console(self, request: ConsoleRequest) -> None:
        placed = self.session.snapshot.find_vm(request.uuid)
        try:
            if placed is None:
                raise ConsoleUnavailable(f"the VM {request.name} is no longer in the estate")
            console = self.session.open_console(placed, force=request.force)
        except OvmError as exc:
            self._fail(exc.message)
            return

        def ended(task: asyncio.Task[ConsoleStatus]) -> None:
            status = task.result() if not task.cancelled() else console.status
            if status.attaches == 0:
                self._fail(status.detail or "the console could not be opened")

        console.start().add_done_callback(ended)
        dashboard = self.screen_stack[0]
        assert isinstance(dashboard, DashboardScreen)
        dashboard.show_console(console, on_leave=lambda: self.exit(return_code=0))

    def _fail(self, reason: str) -> None:
        self.exit_reason = reason
        self.exit(return_code=1)

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

    def _went_read_only(self, reason: str) -> None:
        self._say_read_only(reason)
        self.read_only_signal.publish(reason)  # screens take their action keys away

    async def on_unmount(self) -> None:
        self.workers.cancel_group(self, "poller")
        await self.session.close()
        if not self.is_headless:
            # Everything is recorded and closed. What is left is Textual giving the terminal
            # back, and on a terminal that has gone (SIGHUP: the SSH session dropped) its
            # writer thread can deadlock the shutdown for good (seen in 1 of 3 tmux runs):
            # the process ends on its own after a grace period, whatever happens.
            _end_process_after(EXIT_GRACE_S, lambda: self.return_code or 0)

    # -- session to screens ---------------------------------------------------------------

    def on_estate_updated(self, message: EstateUpdated) -> None:
        self._snapshot = message.snapshot
        self.estate_signal.publish(message.snapshot)

    def on_drift_changed(self, message: DriftChanged) -> None:
        self.drift_signal.publish(message.drifted)
        if message.drifted:
            self.notify(
                f"{len(message.drifted)} VM(s) recorded as active are reported by no host. "
                "Press D to see them and reconcile.",
                title="State drift",
                severity="warning",
                timeout=10,
            )

    def on_notice_given(self, message: NoticeGiven) -> None:
        notice: Notice = message.notice
        self.notify(
            notice.text,
            title=notice.title,
            severity=notice.severity,
            timeout=3600 if notice.lasting else (10 if notice.severity != "information" else 5),
            markup=False,
        )

    async def _run_actions(self, targets: tuple[PlacedVm, ...], action: VmAction) -> None:
        results = await self.session.run_actions(targets, action)
        self.post_message(ActionsFinished(action, results))

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
