"""Restore a reinstalled host (or every host of a pool, masters first) from the repository.

The plan first: every network, storage pool and VM the repository last saw there, with what
will happen to it (define, skip, refuse) and why. `s` toggles "start the VMs that ran" (the
plan is made again); `y` asks, showing every command, then defines one by one, each row
saying its result as it comes and what the next poll confirmed; a summary at the end. Hosts
whose backend cannot define say so, and nothing is offered for them.
"""

from __future__ import annotations

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import Checkbox, DataTable, Footer, Static

from ovmtui.context import AppContext
from ovmtui.errors import OvmError
from ovmtui.model import HostKey
from ovmtui.screens.dialogs import ConfirmDialog
from ovmtui.services.host_restore import (
    HostRestoreOutcome,
    HostRestorePlan,
    RestoreStep,
    StepOutcome,
    Verdict,
    fmt_sha,
    since_text,
)

_RESULT = "result"


def _row_key(host: HostKey, step: RestoreStep) -> str:
    return f"{host}/{step.kind.value}/{step.uuid}"


class RestoreHostScreen(Screen[None]):
    BINDINGS = [
        Binding("y", "run", "Restore", id="restore-run"),
        Binding("s", "toggle_start", "Start VMs that ran", id="restore-start"),
        Binding("escape", "back", "Back", id="restore-back"),
    ]
    DEFAULT_CSS = """
    RestoreHostScreen > #restore-title { padding: 0 1; background: $panel; text-style: bold; }
    RestoreHostScreen > #restore-start { height: auto; border: none; padding: 0 1; }
    RestoreHostScreen > DataTable { height: 1fr; }
    RestoreHostScreen > #restore-detail {
        height: auto; max-height: 8; padding: 0 1; border-top: solid $panel;
    }
    RestoreHostScreen > #restore-status { height: auto; padding: 0 1; }
    """

    def __init__(self, context: AppContext, hosts: tuple[HostKey, ...], title: str) -> None:
        super().__init__()
        self.context = context
        self.hosts = hosts
        self.title_text = title
        self.plans: tuple[HostRestorePlan, ...] | None = None
        self._steps: dict[str, tuple[HostKey, RestoreStep | None, str]] = {}  # by row key
        self._results: dict[str, str] = {}
        self.outcomes: list[HostRestoreOutcome] = []
        self.summary: str | None = None
        self._started = False

    def compose(self) -> ComposeResult:
        yield Static(self.title_text, id="restore-title", markup=False)
        start = Checkbox("Start again the VMs that were running (s)", id="restore-start")
        start.can_focus = False  # `s` toggles it; the table keeps the keys
        yield start
        table: DataTable[str] = DataTable(id="restore-steps", cursor_type="row")
        # What matters at 3 a.m. first (what, and what happened to it); the reason in full
        # below, for the row under the cursor.
        for label in ("host", "name", "kind", "action"):
            table.add_column(label)
        table.add_column(_RESULT, key=_RESULT)
        for label in ("why", "version", "last seen"):
            table.add_column(label)
        yield table
        yield Static("", id="restore-detail", markup=False)
        yield Static(
            "Reading the repository and asking the hosts…", id="restore-status", markup=False
        )
        yield Footer()

    def on_mount(self) -> None:
        self.query_one(DataTable).focus()
        self._load()

    @property
    def start(self) -> bool:
        return self.query_one(Checkbox).value

    # -- the plan ---------------------------------------------------------------------------

    @work(exclusive=True, group="plan")
    async def _load(self) -> None:
        plans: list[HostRestorePlan] = []
        try:
            for host in self.hosts:
                plans.append(await self.context.restore_plan(host, start=self.start))
        except OvmError as exc:
            self._say(f"{exc.title}: {exc.message}")
            return
        self.plans = tuple(plans)
        table = self.query_one(DataTable)
        table.clear()
        self._steps.clear()
        for plan in plans:
            name = plan.host.name
            if plan.refusal is not None:
                table.add_row(name, name, "host", "refused", "", plan.refusal, "", "", key=name)
                self._steps[name] = (plan.host, None, plan.refusal)
                continue
            for step in plan.steps:
                key = _row_key(plan.host, step)
                table.add_row(
                    name,
                    step.name,
                    step.noun,
                    step.verdict.value,
                    "",
                    step.why,
                    fmt_sha(step.sha256),
                    since_text(step),
                    key=key,
                )
                self._steps[key] = (plan.host, step, step.why)
        self._say(self._plan_summary(plans))
        self._show_detail()

    def _plan_summary(self, plans: list[HostRestorePlan]) -> str:
        define = sum(len(p.to_define) for p in plans)
        skip = sum(len(p.of(Verdict.SKIP)) for p in plans)
        refused = sum(len(p.of(Verdict.REFUSE)) + (p.refusal is not None) for p in plans)
        text = f"{define} to define, {skip} skipped, {refused} refused."
        if define:
            return text + " y restores; s starts the VMs that ran; escape goes back."
        return text + " Nothing to define; escape goes back."

    def on_checkbox_changed(self, _event: Checkbox.Changed) -> None:
        if not self._started:
            self._load()

    def action_toggle_start(self) -> None:
        if self._started:
            return
        checkbox = self.query_one(Checkbox)
        checkbox.value = not checkbox.value

    # -- running ----------------------------------------------------------------------------

    def action_run(self) -> None:
        plans = self.plans
        if plans is None or self._started:
            return
        if self.context.read_only:
            self.notify("Read-only mode: no restore.", severity="warning")
            return
        steps = [step for plan in plans for step in plan.to_define]
        if not steps:
            self.notify("Nothing to define.", severity="warning")
            return
        where = ", ".join(host.name for host in self.hosts)
        self.app.push_screen(
            ConfirmDialog(
                f"Restore {where}: define {len(steps)} definition(s)?",
                [step.command for step in steps],
                confirm_label="Restore",
            ),
            callback=lambda ok: self._run() if ok else None,
        )

    def _run(self) -> None:
        self._started = True
        self._say("restoring… (each define is journaled)")
        self._restore()

    @work(exclusive=True, group="restore")
    async def _restore(self) -> None:
        table = self.query_one(DataTable)
        assert self.plans is not None
        for index, first in enumerate(self.plans):
            plan = first
            if index > 0:
                # Made again just before it runs: a host restored before may define now
                # what this one would have defined too.
                try:
                    plan = await self.context.restore_plan(first.host, start=self.start)
                except OvmError as exc:
                    self._say(f"{first.host}: {exc.message}")
                    continue
            if not plan.to_define:
                continue
            for step in plan.to_define:
                self._cell(table, plan.host, step, "defining…")

            def progress(outcome: StepOutcome, host: HostKey = plan.host) -> None:
                word = "defined" if outcome.ok else f"FAILED: {outcome.detail}"
                self._cell(table, host, outcome.step, word)

            outcome = await self.context.restore_host(plan, progress=progress)
            self.outcomes.append(outcome)
            for result in outcome.outcomes:
                self._cell(table, plan.host, result.step, _result_text(result))
        done = sum(1 for o in self.outcomes for r in o.outcomes if r.ok)
        total = sum(len(o.outcomes) for o in self.outcomes)
        confirmed = sum(1 for o in self.outcomes for r in o.outcomes if r.confirmed)
        self.summary = f"defined {done} of {total}; {confirmed} confirmed by the next poll"
        self._say(self.summary + ". escape goes back.")
        ok = done == total == confirmed
        self.notify(self.summary, severity="information" if ok else "warning")

    def _cell(self, table: DataTable[str], host: HostKey, step: RestoreStep, text: str) -> None:
        key = _row_key(host, step)
        if key in table.rows:
            table.update_cell(key, _RESULT, text, update_width=True)
            self._results[key] = text
            self._show_detail()

    def on_data_table_row_highlighted(self, _event: DataTable.RowHighlighted) -> None:
        self._show_detail()

    def _show_detail(self) -> None:
        """The row under the cursor, whole: what, why, which version, the command, result."""
        table = self.query_one(DataTable)
        detail = self.query_one("#restore-detail", Static)
        if table.row_count == 0:
            detail.update("")
            return
        key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
        host, step, why = self._steps.get(key or "", (None, None, ""))
        if host is None:
            detail.update("")
            return
        if step is None:
            detail.update(f"{host}: refused: {why}")
            return
        lines = [f"{step.noun} {step.name} ({step.uuid}) on {host}: {step.verdict.value}"]
        if why:
            lines.append(why)
        lines.append(f"version {fmt_sha(step.sha256)}, last seen so {since_text(step)}")
        if step.command:
            lines.append(f"$ {step.command}")
        result = self._results.get(key or "")
        if result:
            lines.append(f"result: {result}")
        detail.update("\n".join(lines))

    def action_back(self) -> None:
        if self._started and self.summary is None:
            self._say("restoring: wait for the defines under way (each is journaled)…")
            return
        self.app.pop_screen()

    def _say(self, text: str) -> None:
        self.query_one("#restore-status", Static).update(text)


def _result_text(outcome: StepOutcome) -> str:
    if not outcome.ok:
        return f"FAILED: {outcome.detail}"
    if outcome.confirmed:
        return "defined, confirmed" + (" (running)" if outcome.step.start else "")
    if outcome.confirmed is False:
        return "defined, NOT seen by the poll"
    return "defined, not confirmed yet"
