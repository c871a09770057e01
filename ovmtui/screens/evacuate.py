"""Evacuate a host: the whole plan first (every running VM and where it goes, or why it goes
nowhere), then the moves, one at a time, each with its state; escape cancels (the move in
flight is aborted where the host can, the rest are not started); a summary at the end."""

from __future__ import annotations

import asyncio

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Static

from ovmtui import format as fmt
from ovmtui.context import AppContext
from ovmtui.errors import OvmError
from ovmtui.model import HostKey, MigrationProgress
from ovmtui.screens.dialogs import ConfirmDialog
from ovmtui.services.flight_plan import EvacuationPlan, Placement

_STATE_COLUMN = "state"


class EvacuateScreen(Screen[None]):
    BINDINGS = [
        Binding("y", "run", "Evacuate", id="evacuate-run"),
        Binding("escape", "back_or_cancel", "Back / cancel", id="evacuate-back"),
    ]
    DEFAULT_CSS = """
    EvacuateScreen > #evacuate-title { padding: 0 1; background: $panel; text-style: bold; }
    EvacuateScreen > DataTable { height: 1fr; }
    EvacuateScreen > #evacuate-status { height: auto; padding: 0 1; }
    """

    def __init__(self, context: AppContext, host: HostKey) -> None:
        super().__init__()
        self.context = context
        self.host = host
        self.plan: EvacuationPlan | None = None
        self.summary: str | None = None
        self._started = False
        self._cancelled = False
        self._current: str | None = None  # the VM moving now

    def compose(self) -> ComposeResult:
        yield Static(f"Evacuate {self.host.name}", id="evacuate-title", markup=False)
        table: DataTable[str] = DataTable(id="evacuate-moves", cursor_type="row")
        table.add_column("VM")
        table.add_column("memory")
        table.add_column("to")
        table.add_column(_STATE_COLUMN, key=_STATE_COLUMN)
        yield table
        yield Static("Asking every host of the pool…", id="evacuate-status", markup=False)
        yield Footer()

    def on_mount(self) -> None:
        self.query_one(DataTable).focus()
        self._load()

    @work(exclusive=True, group="plan")
    async def _load(self) -> None:
        try:
            plan = await self.context.evacuation_plan(self.host)
        except OvmError as exc:
            self._say(f"{exc.title}: {exc.message}")
            return
        self.plan = plan
        table = self.query_one(DataTable)
        for placement in plan.placements:
            vm = placement.placed.vm
            target = placement.verdict.host.name if placement.verdict else "NOWHERE"
            state = "to move" if placement.verdict else f"stays: {placement.why_not}"
            table.add_row(vm.name, fmt.mib(vm.memory_mib), target, state, key=vm.uuid)
        if not plan.placements:
            self._say(f"No VM runs on {self.host.name}: nothing to move.")
        elif plan.complete:
            self._say(f"{len(plan.placements)} VM(s) to move. y evacuates; escape goes back.")
        else:
            self._say(
                f"PARTIAL: {len(plan.stranded)} of {len(plan.placements)} VM(s) fit nowhere "
                "and would stay. y moves the others; escape goes back."
            )

    def action_run(self) -> None:
        plan = self.plan
        if plan is None or self._started:
            return
        if self.context.read_only:
            self.notify("Read-only mode: no evacuation.", severity="warning")
            return
        moves = [p for p in plan.placements if p.verdict is not None]
        if not moves:
            self.notify("Nothing can move.", severity="warning")
            return
        commands = [
            self.context.migration_command(p.placed, p.verdict.host)
            for p in moves
            if p.verdict is not None
        ]
        title = f"Evacuate {self.host.name}: {len(moves)} migration(s), one at a time?"
        if not plan.complete:
            title += f" ({len(plan.stranded)} VM(s) stay: they fit nowhere)"
        self.app.push_screen(
            ConfirmDialog(title, commands, confirm_label="Evacuate"),
            callback=lambda ok: self._run(moves) if ok else None,
        )

    def _run(self, moves: list[Placement]) -> None:
        self._started = True
        self._say("evacuating… (escape cancels)")
        self._evacuate(moves)

    @work(exclusive=True, group="evacuate")
    async def _evacuate(self, moves: list[Placement]) -> None:
        table = self.query_one(DataTable)
        moved = failed = 0
        for placement in moves:
            placed, verdict = placement.placed, placement.verdict
            if verdict is None:
                continue
            if self._cancelled:
                table.update_cell(placed.uuid, _STATE_COLUMN, "not started (cancelled)")
                continue
            table.update_cell(placed.uuid, _STATE_COLUMN, "moving…")

            def progress(reading: MigrationProgress, uuid: str = placed.uuid) -> None:
                share = f"{reading.fraction:.0%}" if reading.fraction is not None else "…"
                table.update_cell(uuid, _STATE_COLUMN, f"moving {share}")

            self._current = placed.uuid
            try:
                outcome = await self.context.migrate(placed, verdict.host, progress=progress)
            except OvmError as exc:
                failed += 1
                table.update_cell(placed.uuid, _STATE_COLUMN, f"refused: {exc.message}")
                continue
            if outcome.ok:
                moved += 1
                table.update_cell(placed.uuid, _STATE_COLUMN, f"moved in {outcome.seconds:.1f} s")
            else:
                failed += 1
                table.update_cell(placed.uuid, _STATE_COLUMN, f"NOT moved: {outcome.detail}")
            await asyncio.sleep(0)
        total = len(self.plan.placements) if self.plan else len(moves)
        self.summary = f"evacuated {moved} of {total} VM(s) from {self.host.name}; {failed} failed"
        if self._cancelled:
            self.summary += "; cancelled"
        self._say(self.summary + ". escape goes back.")
        self.notify(self.summary, severity="information" if moved == total else "warning")

    def action_back_or_cancel(self) -> None:
        if self._started and self.summary is None:
            if not self._cancelled:
                self._cancelled = True
                if self._current is not None:
                    self.context.cancel_migration(self._current)
                self._say("cancelling: the move in flight is aborted, the rest not started…")
            return
        self.app.pop_screen()

    def _say(self, text: str) -> None:
        self.query_one("#evacuate-status", Static).update(text)
