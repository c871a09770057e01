"""State drift: VMs the repository records as active that no host reports; reconcile them."""

from __future__ import annotations

from collections.abc import Sequence

from textual import work
from textual.binding import Binding

from ovmtui.context import AppContext
from ovmtui.errors import OvmError
from ovmtui.format import timestamp
from ovmtui.screens._list_screen import Cells, ListScreen
from ovmtui.screens.dialogs import ConfirmDialog
from ovmtui.store.drift import DriftedVm


class DriftScreen(ListScreen[DriftedVm]):
    BINDINGS = [
        Binding("escape,q", "app.pop_screen", "Back", id="drift-close"),
        Binding("R", "reconcile", "Reconcile all", id="drift-reconcile"),
    ]
    TABLE_ID = "drift"
    COLUMNS = ("VM", "recorded", "pool/host", "last seen", "in drift since", "UUID")

    def __init__(self, context: AppContext) -> None:
        super().__init__()
        self.context = context

    def key_of(self, item: DriftedVm) -> str:
        return item.uuid

    def cells_of(self, item: DriftedVm) -> Cells:
        return (
            item.name,
            item.recorded_state.value,
            f"{item.pool}/{item.host}",
            _when(item.seen_at),
            _when(item.drift_since),
            item.uuid,
        )

    def title_of(self, items: Sequence[DriftedVm]) -> str:
        if not items:
            return "State drift: none. The repository agrees with every host that answered."
        return (
            f"State drift: {len(items)} VM(s) recorded as active that no host reports. "
            "R reconciles: the repository is backed up, then forgets them."
        )

    def on_mount(self) -> None:
        self.context.drift_signal.subscribe(self, self.show)
        self.show(tuple(self.context.drifted))

    def on_unmount(self) -> None:
        self.context.drift_signal.unsubscribe(self)

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
