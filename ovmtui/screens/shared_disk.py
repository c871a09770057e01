"""Attach a shared disk to a VM, or detach one: the choice, then the plan shown and asked.

``SharedDiskDialog`` lists the shared disks of the VM's pool (to attach: every one, with who
holds it and how; to detach: those the VM holds) with two switches, read-only (``o``) and
hot-plug into the running VM (``l``, offered only where the host can and the VM runs).
``disk_flow`` then asks the core for the plan (the rules first: a refusal is told with its
rule), shows its command or ``vm.cfg`` diff in a ``ConfirmDialog``, and runs it on the
record. The storage screen's shared-disk tab picks the VM for a disk instead
(``DiskVmDialog``: the pool's VMs to attach to, the holders to detach from) and confirms and
runs the plan the same way (``confirm_and_run``).
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
from ovmtui.services.shared_disks import DiskPlan
from ovmtui.terminal import ascii_only, to_ascii


@dataclass(frozen=True, slots=True)
class DiskRequest:
    """What the operator chose in the dialog: the disk, and the VM (its UUID) when the
    dialog picked the VM for a disk (the storage screen's)."""

    name: str
    read_only: bool
    live: bool
    vm: str | None = None


@dataclass(frozen=True, slots=True)
class Choice:
    """One line of the dialog's list: a disk (for a VM) or a VM (for a disk)."""

    id: str
    line: str
    can_live: bool  # hot-plug is offered while it is highlighted
    note: str  # what the dialog says under the list while it is highlighted


def disk_line(disk: SharedDisk) -> str:
    """``quorum  shareable  held by vm7 (rw shared), vm8 (ro)``."""
    held = ", ".join(f"{h.vm} ({h.mode})" for h in disk.holders) or "held by no VM"
    if disk.holders:
        held = f"held by {held}"
    kind = "shareable" if disk.shareable else "one writer"
    return f"{disk.name}  [{kind}]  {held}"


def _running(placed: PlacedVm) -> bool:
    return placed.vm.state in (VmState.RUNNING, VmState.BLOCKED)


def hold_note(placed: PlacedVm, hot_plug: str | None) -> str:
    """What an attach or detach to ``placed`` needs, as the dialog says it."""
    if _running(placed) and hot_plug is None:
        return "enter: choose. Without hot-plug the VM must be powered off (Oracle VM's rule)."
    if placed.vm.state is VmState.SHUTOFF:
        return "enter: choose. The VM is powered off: its definition is edited."
    why = hot_plug or f"the VM is {placed.vm.state.value}"
    return f"enter: choose. No hot-plug here ({why}): power the VM off first."


class HoldDialog(ModalScreen[DiskRequest | None]):
    """A list to choose from, read-only (``o``, attach only) and hot-plug (``l``, only where
    the highlighted choice can) switches."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("o", "switch('read-only')", "Read-only", id="disk-read-only"),
        Binding("l", "switch('live')", "Hot-plug", id="disk-live"),
        Binding("escape", "cancel", "Cancel", id="disk-cancel"),
    ]

    DEFAULT_CSS = """
    HoldDialog {
        align: center middle;
    }
    HoldDialog > #disk-dialog {
        width: 90%;
        max-width: 100;
        height: auto;
        max-height: 90%;
        border: thick $primary;
        background: $surface;
        padding: 0 1;
    }
    HoldDialog #disk-title {
        text-style: bold;
        width: 1fr;
    }
    HoldDialog #disk-list {
        height: auto;
        max-height: 12;
    }
    HoldDialog #disk-note {
        color: $text-muted;
    }
    """

    def __init__(self, title: str, choices: Sequence[Choice], *, attach: bool) -> None:
        super().__init__()
        self.title_text = title
        self.choices = tuple(choices)
        self.attach = attach
        self._current = self.choices[0] if self.choices else None

    @property
    def can_live(self) -> bool:
        """Whether hot-plug is offered for the highlighted choice."""
        return self._current is not None and self._current.can_live

    def compose(self) -> ComposeResult:
        plain = to_ascii if ascii_only(self) else str
        with Vertical(id="disk-dialog"):
            yield Label(Content(plain(self.title_text)), id="disk-title")
            yield OptionList(
                *(Option(Content(plain(c.line)), id=c.id) for c in self.choices),
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
            note = self._current.note if self._current else ""
            yield Static(plain(note), id="disk-note", markup=False)
        yield Footer()

    def on_mount(self) -> None:
        self.query_one(OptionList).focus()

    def on_option_list_option_highlighted(self, event: OptionList.OptionHighlighted) -> None:
        event.stop()
        chosen = next((c for c in self.choices if c.id == event.option.id), None)
        if chosen is None or chosen == self._current:
            return
        self._current = chosen
        live = self.query_one("#disk-live", Checkbox)
        live.disabled = not chosen.can_live
        if live.disabled:
            live.value = False
        plain = to_ascii if ascii_only(self) else str
        self.query_one("#disk-note", Static).update(plain(chosen.note))
        self.refresh_bindings()

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
        self.dismiss(self.request(event.option.id or "", read_only, live))

    def request(self, chosen: str, read_only: bool, live: bool) -> DiskRequest:
        # Each dialog says what was chosen (a disk for a VM, a VM for a disk). Not an
        # abc.abstractmethod: Textual's metaclass does not mix with ABCMeta.
        raise NotImplementedError(f"{type(self).__name__} makes no request")

    def action_cancel(self) -> None:
        self.dismiss(None)


class SharedDiskDialog(HoldDialog):
    """Which shared disk for a VM (the VM screen's ``a`` / ``A``), read-only or not,
    hot-plugged or not."""

    def __init__(
        self, placed: PlacedVm, disks: Sequence[SharedDisk], *, attach: bool, hot_plug: str | None
    ) -> None:
        verb = "Attach a shared disk to" if attach else "Detach a shared disk from"
        vm = placed.vm
        title = f"{verb} {vm.name} ({vm.state.value}, {placed.host})"
        live = _running(placed) and hot_plug is None
        note = hold_note(placed, hot_plug)
        super().__init__(
            title, [Choice(d.name, disk_line(d), live, note) for d in disks], attach=attach
        )
        self.placed = placed
        self.disks = tuple(disks)

    def request(self, chosen: str, read_only: bool, live: bool) -> DiskRequest:
        return DiskRequest(chosen, read_only, live)


def vm_line(placed: PlacedVm, disk: SharedDisk) -> str:
    """``db1  shutoff  on ovs01  holds it rw shared``."""
    held = disk.held_by(placed.uuid)
    holds = f"  holds it {held.mode}" if held is not None else ""
    return f"{placed.vm.name}  {placed.vm.state.value}  on {placed.host}{holds}"


class DiskVmDialog(HoldDialog):
    """Which VM for a shared disk (the storage screen's ``+`` / ``-``): the pool's VMs to
    attach it to, or those holding it to detach it from; the same switches."""

    def __init__(
        self,
        disk: SharedDisk,
        vms: Sequence[tuple[PlacedVm, str | None]],
        *,
        attach: bool,
    ) -> None:
        kind = "shareable" if disk.shareable else "one writer"
        verb = "Attach" if attach else "Detach"
        where = "to a VM of pool" if attach else "from a VM of pool"
        title = f"{verb} {disk.name} [{kind}] {where} {disk.pool}"
        choices = [
            Choice(
                placed.uuid,
                vm_line(placed, disk),
                _running(placed) and hot_plug is None,
                hold_note(placed, hot_plug),
            )
            for placed, hot_plug in vms
        ]
        super().__init__(title, choices, attach=attach)
        self.disk = disk

    def request(self, chosen: str, read_only: bool, live: bool) -> DiskRequest:
        return DiskRequest(self.disk.name, read_only, live, vm=chosen)


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
    title = f"{word} {request.name} {'to' if attach else 'from'} {placed.vm.name}?"
    await confirm_and_run(app, context, plan, title, word)


async def confirm_and_run(
    app: App[object],
    context: AppContext,
    plan: DiskPlan,
    title: str,
    word: str,
    *,
    warning: str | None = None,
) -> bool:
    """``plan``'s command (and ``vm.cfg`` diff, and why this host) shown and asked, then run
    on the record; True when it ran. Every failure told as a notice."""
    details = (plan.diff or "").rstrip("\n")
    if plan.note:
        details = f"{details}\n# {plan.note}".lstrip("\n")
    confirm = ConfirmDialog(
        title, [plan.command], confirm_label=word, details=details or None, warning=warning
    )
    if not await app.push_screen_wait(confirm):
        return False
    try:
        done = await context.run_disk_plan(plan)
    except OvmError as exc:
        app.notify(exc.message, title=exc.title, severity="error", markup=False)
        return False
    app.notify(done.value, title=f"{word}: done", markup=False)
    if done.unrecorded:
        app.notify(done.unrecorded, title="Not in the journal", severity="warning", markup=False)
    return True
