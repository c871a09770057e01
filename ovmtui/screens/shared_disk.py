"""Attach a shared disk to a VM, or detach one: the choice, then the plan shown and asked.

``SharedDiskDialog`` lists the shared disks of the VM's pool (to attach: every one, with who
holds it and how; to detach: those the VM holds) with two switches, read-only (``o``) and
hot-plug into the running VM (``l``, offered only where the host can and the VM runs).
``disk_flow`` then asks the core for the plan (the rules first: a refusal is told with its
rule), shows its command or ``vm.cfg`` diff in a ``ConfirmDialog``, and runs it on the
record. The storage screen's shared-disk tab uses the same flow once it is there.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import Checkbox, Footer, Label, OptionList, Static
from textual.widgets.option_list import Option

from ovmtui.context import AppContext
from ovmtui.errors import OvmError
from ovmtui.model import PlacedVm, VmState
from ovmtui.screens.dialogs import ConfirmDialog
from ovmtui.services.disk_rules import SharedDisk
from ovmtui.terminal import ascii_only, to_ascii


@dataclass(frozen=True, slots=True)
class DiskRequest:
    """What the operator chose in the dialog."""

    name: str
    read_only: bool
    live: bool


def disk_line(disk: SharedDisk) -> str:
    """``quorum  shareable  held by vm7 (rw shared), vm8 (ro)``."""
    held = ", ".join(f"{h.vm} ({h.mode})" for h in disk.holders) or "held by no VM"
    if disk.holders:
        held = f"held by {held}"
    kind = "shareable" if disk.shareable else "one writer"
    return f"{disk.name}  [{kind}]  {held}"


class SharedDiskDialog(ModalScreen[DiskRequest | None]):
    """Which shared disk, read-only or not, hot-plugged or not."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("o", "switch('read-only')", "Read-only", id="disk-read-only"),
        Binding("l", "switch('live')", "Hot-plug", id="disk-live"),
        Binding("escape", "cancel", "Cancel", id="disk-cancel"),
    ]

    DEFAULT_CSS = """
    SharedDiskDialog {
        align: center middle;
    }
    SharedDiskDialog > #disk-dialog {
        width: 90%;
        max-width: 100;
        height: auto;
        max-height: 90%;
        border: thick $primary;
        background: $surface;
        padding: 0 1;
    }
    SharedDiskDialog #disk-title {
        text-style: bold;
        width: 1fr;
    }
    SharedDiskDialog #disk-list {
        height: auto;
        max-height: 12;
    }
    SharedDiskDialog #disk-note {
        color: $text-muted;
    }
    """

    def __init__(
        self, placed: PlacedVm, disks: Sequence[SharedDisk], *, attach: bool, hot_plug: str | None
    ) -> None:
        super().__init__()
        self.placed = placed
        self.disks = tuple(disks)
        self.attach = attach
        running = placed.vm.state in (VmState.RUNNING, VmState.BLOCKED)
        self.can_live = running and hot_plug is None
        self._hot_plug = hot_plug

    def compose(self) -> ComposeResult:
        plain = to_ascii if ascii_only(self) else str
        verb = "Attach a shared disk to" if self.attach else "Detach a shared disk from"
        vm = self.placed.vm
        with Vertical(id="disk-dialog"):
            yield Label(
                Content(plain(f"{verb} {vm.name} ({vm.state.value}, {self.placed.host})")),
                id="disk-title",
            )
            yield OptionList(
                *(Option(Content(plain(disk_line(d))), id=d.name) for d in self.disks),
                id="disk-list",
            )
            if self.attach:
                yield Checkbox(Content("Read-only [o]"), id="disk-read-only", compact=True)
            yield Checkbox(
                Content("Hot-plug into the running VM [l]"),
                id="disk-live",
                disabled=not self.can_live,
                compact=True,
            )
            yield Static(plain(self._note()), id="disk-note", markup=False)
        yield Footer()

    def _note(self) -> str:
        if self.can_live:
            return "enter: choose. Without hot-plug the VM must be powered off (Oracle VM's rule)."
        if self.placed.vm.state is VmState.SHUTOFF:
            return "enter: choose. The VM is powered off: its definition is edited."
        why = self._hot_plug or f"the VM is {self.placed.vm.state.value}"
        return f"enter: choose. No hot-plug here ({why}): power the VM off first."

    def on_mount(self) -> None:
        self.query_one(OptionList).focus()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "switch" and parameters == ("read-only",) and not self.attach:
            return None
        if action == "switch" and parameters == ("live",) and not self.can_live:
            return None
        return True

    def action_switch(self, which: str) -> None:
        box = self.query_one(f"#disk-{which}", Checkbox)
        if not box.disabled:
            box.value = not box.value

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        read_only = self.attach and self.query_one("#disk-read-only", Checkbox).value
        live = self.query_one("#disk-live", Checkbox).value
        self.dismiss(DiskRequest(event.option.id or "", read_only, live))

    def action_cancel(self) -> None:
        self.dismiss(None)


async def disk_flow(
    app: App[object], context: AppContext, placed: PlacedVm, *, attach: bool
) -> None:
    """Choose, plan, confirm, run; every refusal and failure told as a notice. Run it in a
    worker (it waits for the dialogs)."""
    word = "Attach" if attach else "Detach"
    try:
        disks = await context.shared_disks(placed.pool)
    except OvmError as exc:
        app.notify(exc.message, title=f"{word}: {exc.title}", severity="warning", markup=False)
        return
    if not attach:
        disks = tuple(d for d in disks if d.held_by(placed.uuid) is not None)
    if not disks:
        text = (
            f"No shared disk in pool {placed.pool}: create one with `ovmtui disk create`."
            if attach
            else f"{placed.vm.name} holds no shared disk."
        )
        app.notify(text, title=f"{word} a shared disk", severity="warning", markup=False)
        return
    dialog = SharedDiskDialog(placed, disks, attach=attach, hot_plug=context.disk_hot_plug(placed))
    request = await app.push_screen_wait(dialog)
    if request is None:
        return
    try:
        plan = await context.plan_disk(
            placed, request.name, attach=attach, read_only=request.read_only, live=request.live
        )
    except OvmError as exc:
        app.notify(exc.message, title=exc.title, severity="warning", markup=False)
        return
    details = (plan.diff or "").rstrip("\n")
    if plan.note:
        details = f"{details}\n# {plan.note}".lstrip("\n")
    title = f"{word} {request.name} {'to' if attach else 'from'} {placed.vm.name}?"
    confirm = ConfirmDialog(title, [plan.command], confirm_label=word, details=details or None)
    if not await app.push_screen_wait(confirm):
        return
    try:
        done = await context.run_disk_plan(plan)
    except OvmError as exc:
        app.notify(exc.message, title=exc.title, severity="error", markup=False)
        return
    app.notify(done.value, title=f"{word}: done", markup=False)
    if done.unrecorded:
        app.notify(done.unrecorded, title="Not in the journal", severity="warning", markup=False)
