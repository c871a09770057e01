"""State drift: VMs the repository records as active that no host reports; reconcile them."""

from __future__ import annotations

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Static

from ovmtui.context import AppContext
from ovmtui.errors import OvmError
from ovmtui.format import timestamp
from ovmtui.screens.dialogs import ConfirmDialog
from ovmtui.store.drift import DriftedVm


class DriftScreen(Screen[None]):
    BINDINGS = [
        Binding("escape,q", "app.pop_screen", "Back", id="drift-close"),
        Binding("R", "reconcile", "Reconcile all…", id="drift-reconcile"),
    ]

    def __init__(self, context: AppContext) -> None:
        super().__init__()
        self.context = context

    def compose(self) -> ComposeResult:
        yield Static("", id="drift-title")
        yield DataTable(id="drift", cursor_type="row", zebra_stripes=True)
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        table.add_columns("VM", "recorded", "pool/host", "last seen", "in drift since", "UUID")
        table.focus()
        self.context.drift_signal.subscribe(self, self.show_drift)
        self._show(tuple(self.context.drifted))

    def on_unmount(self) -> None:
        self.context.drift_signal.unsubscribe(self)

    def show_drift(self, drifted: tuple[DriftedVm, ...]) -> None:
        self._show(drifted)

    def _show(self, drifted: tuple[DriftedVm, ...]) -> None:
        table = self.query_one(DataTable)
        table.clear()
        for vm in drifted:
            table.add_row(
                vm.name,
                vm.recorded_state.value,
                f"{vm.pool}/{vm.host}",
                _when(vm.seen_at),
                _when(vm.drift_since),
                vm.uuid,
                key=vm.uuid,
            )
        self.query_one("#drift-title", Static).update(
            f"State drift: {len(drifted)} VM(s) recorded as active that no host reports. "
            "R reconciles: the repository is backed up, then forgets them."
            if drifted
            else "State drift: none. The repository agrees with every host that answered."
        )

    @work(exclusive=True, group="drift")
    async def action_reconcile(self) -> None:
        drifted = tuple(self.context.drifted)
        if not drifted:
            self.notify("Nothing to reconcile.", timeout=3)
            return
        if self.context.read_only:
            self.notify("Read-only mode: a reconcile is refused.", severity="warning")
            return
        confirmed = await self.app.push_screen_wait(
            ConfirmDialog(
                f"Reconcile {len(drifted)} VM(s)?",
                [vm.command for vm in drifted],
                warning="\n".join(vm.change for vm in drifted[:8])
                + ("\n…" if len(drifted) > 8 else "")
                + "\nThe repository is backed up first.",
                confirm_label="Reconcile",
            )
        )
        if not confirmed:
            return
        try:
            outcome = await self.context.reconcile(drifted)
        except OvmError as exc:
            self.notify(str(exc), title="Reconcile failed", severity="error", markup=False)
            return
        self.notify(
            f"{len(outcome.forgotten)} record(s) reconciled; backup before: {outcome.backup}",
            title="Reconciled",
            timeout=8,
            markup=False,
        )


def _when(at: float | None) -> str:
    if at is None:
        return "never"
    return timestamp(at)
