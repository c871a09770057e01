"""Migrate one VM: every other host of its pool with a go / no-go verdict and the checks
behind it, then the move with its progress, cancel, and the result.

`enter` on a go target asks (the exact command) and moves; on a no-go target it asks for the
VM's name and a reason (``OverrideDialog``), which the journal keeps with the failed checks.
While the move runs, `escape` cancels it: the host aborts it and the VM stays on its source.
"""

from __future__ import annotations

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen, Screen
from textual.widgets import Button, DataTable, Footer, Input, Label, ProgressBar, Static

from ovmtui.context import AppContext
from ovmtui.errors import OvmError
from ovmtui.model import MigrationProgress, PlacedVm
from ovmtui.screens.dialogs import ConfirmDialog
from ovmtui.services.flight_plan import TargetVerdict
from ovmtui.services.migration import FlightPlan, MigrationOutcome, describe_progress

_MARK = {True: "✓", False: "✗", None: "?"}


class OverrideDialog(ModalScreen[str | None]):
    """A no-go target: the operator types the VM's name and why; None cancels."""

    BINDINGS = [Binding("escape", "cancel", "Cancel", id="override-cancel")]
    DEFAULT_CSS = """
    OverrideDialog { align: center middle; }
    OverrideDialog > Vertical {
        width: 80%; max-width: 100; height: auto; padding: 1 2;
        background: $panel; border: thick $error;
    }
    OverrideDialog Input { margin: 1 0 0 0; }
    """

    def __init__(self, vm_name: str, target: str, failed: str) -> None:
        super().__init__()
        self._vm = vm_name
        self._target = target
        self._failed = failed

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(f"{self._target} is NO GO for {self._vm}", markup=False)
            yield Static(f"Failed checks: {self._failed}", markup=False)
            yield Static(
                "To move it anyway, type the VM's name and your reason; both go into the "
                "journal with the failed checks.",
                markup=False,
            )
            yield Input(placeholder=f"type {self._vm}", id="override-name")
            yield Input(
                placeholder="reason (ticket, who approved, why it is safe)", id="override-why"
            )
            yield Button("Migrate anyway", variant="error", id="override-go")

    def on_button_pressed(self, _event: Button.Pressed) -> None:
        self._submit()

    def on_input_submitted(self, _event: Input.Submitted) -> None:
        self._submit()

    def _submit(self) -> None:
        name = self.query_one("#override-name", Input).value.strip()
        why = self.query_one("#override-why", Input).value.strip()
        if name != self._vm:
            self.notify(
                f"Type the VM's name, {self._vm}, to go on.", severity="warning", markup=False
            )
            return
        if not why:
            self.notify("A reason is needed: the journal keeps it.", severity="warning")
            return
        self.dismiss(why)

    def action_cancel(self) -> None:
        self.dismiss(None)


class MigrateScreen(Screen[None]):
    BINDINGS = [
        Binding("enter", "choose", "Migrate there", id="migrate-choose", priority=True),
        Binding("escape", "back_or_cancel", "Back / cancel the move", id="migrate-back"),
    ]
    DEFAULT_CSS = """
    MigrateScreen > #migrate-title { padding: 0 1; background: $panel; text-style: bold; }
    MigrateScreen > #migrate-targets { height: 1fr; }
    MigrateScreen > #migrate-checks { height: auto; max-height: 12; padding: 0 1; }
    MigrateScreen > #migrate-progress { height: auto; padding: 0 1; }
    MigrateScreen > #migrate-status { height: auto; padding: 0 1; }
    """

    def __init__(self, context: AppContext, placed: PlacedVm, *, live: bool = True) -> None:
        super().__init__()
        self.context = context
        self.placed = placed
        self.live = live
        self.plan: FlightPlan | None = None
        self.outcome: MigrationOutcome | None = None
        self._in_flight = False

    def compose(self) -> ComposeResult:
        kind = "live" if self.live else "offline"
        yield Static(
            f"Migrate {self.placed.vm.name} from {self.placed.host} ({kind})",
            id="migrate-title",
            markup=False,
        )
        table: DataTable[str] = DataTable(id="migrate-targets", cursor_type="row")
        table.add_columns("host", "verdict", "free after", "failed checks")
        yield table
        yield Static("Asking every host of the pool…", id="migrate-checks", markup=False)
        yield ProgressBar(total=100, show_eta=False, id="migrate-progress")
        yield Static("", id="migrate-status", markup=False)
        yield Footer()

    def on_mount(self) -> None:
        self.query_one(ProgressBar).display = False
        self.query_one(DataTable).focus()
        self._load()

    @work(exclusive=True, group="plan")
    async def _load(self) -> None:
        try:
            plan = await self.context.migration_plan(self.placed, live=self.live)
        except OvmError as exc:
            self._say(f"{exc.title}: {exc.message}")
            self.query_one("#migrate-checks", Static).update("")
            return
        self.plan = plan
        table = self.query_one(DataTable)
        table.clear()
        for verdict in plan.verdicts:
            table.add_row(
                verdict.host.name,
                "GO" if verdict.go else "NO GO",
                verdict.memory_left,
                ", ".join(c.name for c in verdict.failed) or "—",
                key=verdict.host.name,
            )
        best = plan.best
        self._say(
            f"best: {best.host.name}"
            if best
            else "no host is a go (enter overrides, with a reason)"
        )
        self._show_checks()

    # -- the table ------------------------------------------------------------------------

    def selected(self) -> TargetVerdict | None:
        if self.plan is None or not self.plan.verdicts:
            return None
        row = self.query_one(DataTable).cursor_row
        return self.plan.verdicts[min(max(row, 0), len(self.plan.verdicts) - 1)]

    def on_data_table_row_highlighted(self, _event: DataTable.RowHighlighted) -> None:
        self._show_checks()

    def _show_checks(self) -> None:
        verdict = self.selected()
        if verdict is None:
            text = "No other host in this pool." if self.plan is not None else ""
        else:
            text = "\n".join(f"{_MARK[c.ok]} {c.name}: {c.detail}" for c in verdict.checks)
        self.query_one("#migrate-checks", Static).update(text)

    # -- the move -------------------------------------------------------------------------

    def action_choose(self) -> None:
        verdict = self.selected()
        if verdict is None or self._in_flight or self.outcome is not None:
            return
        if self.context.read_only:
            self.notify("Read-only mode: no migration.", severity="warning")
            return
        command = self.context.migration_command(self.placed, verdict.host, live=self.live)
        if verdict.go:
            self.app.push_screen(
                ConfirmDialog(
                    f"Migrate {self.placed.vm.name} to {verdict.host.name}?",
                    [command],
                    confirm_label="Migrate",
                ),
                callback=lambda ok: self._run(verdict, None) if ok else None,
            )
        else:
            failed = "; ".join(f"{c.name}: {c.detail}" for c in verdict.failed)
            self.app.push_screen(
                OverrideDialog(self.placed.vm.name, verdict.host.name, failed),
                callback=lambda why: self._run(verdict, why) if why else None,
            )

    def _run(self, verdict: TargetVerdict, override: str | None) -> None:
        self._in_flight = True
        bar = self.query_one(ProgressBar)
        bar.display = True
        self._say(f"migrating to {verdict.host.name}… (escape cancels)")
        self._move(verdict, override)

    @work(exclusive=True, group="move")
    async def _move(self, verdict: TargetVerdict, override: str | None) -> None:
        try:
            outcome = await self.context.migrate(
                self.placed,
                verdict.host,
                live=self.live,
                plan=self.plan,
                override=override,
                progress=self._progress,
            )
        except OvmError as exc:
            self._in_flight = False
            self._say(f"{exc.title}: {exc.message}")
            return
        self._in_flight = False
        self.outcome = outcome
        word = "moved" if outcome.ok else "NOT moved"
        self._say(f"{self.placed.vm.name}: {word}: {outcome.detail}")
        self.notify(
            f"{self.placed.vm.name}: {word}: {outcome.detail}",
            severity="information" if outcome.ok else "error",
            markup=False,
        )

    def _progress(self, reading: MigrationProgress) -> None:
        bar = self.query_one(ProgressBar)
        if reading.fraction is not None:
            bar.update(progress=reading.fraction * 100)
        self._say(f"{describe_progress(reading)} (escape cancels)")

    def action_back_or_cancel(self) -> None:
        if self._in_flight:
            if self.context.cancel_migration(self.placed.uuid):
                self._say("cancelling: the host aborts the move…")
            return
        self.app.pop_screen()

    def _say(self, text: str) -> None:
        self.query_one("#migrate-status", Static).update(text)
