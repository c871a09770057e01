"""The VM keys (s x r p u K, c) as every screen that acts on VMs has them.

One statement of their bindings, their dimming with a reason, their confirmation and their
run, shared by the dashboard (the marked VMs or the one under the cursor) and a VM's own
screen (that VM): the same key asks the same question and runs the same command on both.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence

from textual.app import App
from textual.binding import ActiveBinding, Binding
from textual.dom import DOMNode

from ovmtui.context import AppContext
from ovmtui.errors import OvmError
from ovmtui.model import Capability, PlacedVm, VmAction, action_refusal
from ovmtui.screens.dialogs import ConfirmDialog
from ovmtui.services.consoles import ConsoleSession

ACTION_KEYS = {
    VmAction.START: "s",
    VmAction.SHUTDOWN: "x",
    VmAction.REBOOT: "r",
    VmAction.PAUSE: "p",
    VmAction.RESUME: "u",
    VmAction.FORCE_OFF: "K",
}

BINDING_ACTIONS = {f"vm-{action.value}": action for action in ACTION_KEYS}

FORCE_OFF_WARNING = (
    "Force off pulls the virtual power cord: the guest gets no chance to shut down and "
    "loses whatever it had not written to disk."
)


def vm_bindings() -> list[Binding]:
    """The lifecycle keys, each with its id (``vm-start`` …)."""
    return [
        Binding(key, f"vm('{action.value}')", action.label, id=f"vm-{action.value}")
        for action, key in ACTION_KEYS.items()
    ]


def console_binding() -> Binding:
    return Binding("c", "console", "Console", id="vm-console")


def migrate_binding() -> Binding:
    return Binding("m", "migrate", "Migrate", id="vm-migrate")


def vm_refusal(context: AppContext, placed: PlacedVm, action: VmAction) -> str | None:
    """Why ``action`` cannot run on this VM now, or None when it can be tried."""
    host = context.snapshot.host(placed.host_key)
    if host is not None:
        reason = action_refusal(placed, action, host.capabilities, reachable=host.reachable)
        if reason is not None:
            return reason
    return context.refusal(placed, action)  # read-only, a restore, no journal …


def migrate_refusal(context: AppContext, placed: PlacedVm) -> str | None:
    """Why ``m`` is dimmed: the VM's host cannot migrate at all (the rest, target by
    target, is the flight plan's to say)."""
    host = context.snapshot.host(placed.host_key)
    if host is None or Capability.MIGRATE not in host.capabilities:
        why = host.why_not(Capability.MIGRATE) if host is not None else None
        return f"{placed.host}: {why}" if why else f"{placed.host} cannot migrate VMs"
    return None


def check_vm_key(
    context: AppContext,
    action: str,
    parameters: tuple[object, ...],
    *,
    key_refusal: Callable[[VmAction], str | None],
    console_refusal: Callable[[], str | None],
    migrate_refusal: Callable[[], str | None],
) -> bool | None:
    """``check_action`` for the VM keys: hidden in read-only mode (consoles open there too,
    view-only); dimmed (None: shown, and the key does nothing) when it cannot run, with the
    reason beside it (``with_reasons``); True for every other action."""
    if action == "vm":
        if context.read_only:
            return False
        vm_action = VmAction(str(parameters[0]))
        return None if key_refusal(vm_action) is not None else True
    if action == "migrate":
        return None if migrate_refusal() is not None else True
    if action == "console":
        return None if console_refusal() is not None else True
    return True


def with_reasons(
    bindings: dict[str, ActiveBinding],
    node: DOMNode,
    *,
    key_refusal: Callable[[VmAction], str | None],
    console_refusal: Callable[[], str | None],
    migrate_refusal: Callable[[], str | None],
) -> dict[str, ActiveBinding]:
    """``bindings`` with the reason of each dimmed VM key of ``node`` as its tooltip: the
    footer shows it on hover, the key panel beside the key."""
    for key, active in bindings.items():
        if active.enabled or active.node is not node:
            continue
        binding_id = active.binding.id or ""
        vm_action = BINDING_ACTIONS.get(binding_id)
        if vm_action is not None:
            reason = key_refusal(vm_action)
        elif binding_id == "vm-console":
            reason = console_refusal()
        elif binding_id == "vm-migrate":
            reason = migrate_refusal()
        else:
            continue
        if reason is not None:
            binding = dataclasses.replace(active.binding, tooltip=reason)
            bindings[key] = active._replace(binding=binding, tooltip=reason)
    return bindings


def confirm_and_run(
    app: App[object],
    context: AppContext,
    targets: Sequence[PlacedVm],
    action: VmAction,
    *,
    skipped: int = 0,
    ran: Callable[[], None] | None = None,
) -> None:
    """Ask first when the action loses guest state or touches several VMs, showing the
    exact commands; then run it in the background, saying what runs. ``ran``: called once
    it has been started (the dashboard clears its marks)."""
    commands = [context.command_for(p, action) for p in targets]

    def run() -> None:
        shown = "\n".join(commands[:3]) + (
            f"\n… {len(commands) - 3} more" if len(commands) > 3 else ""
        )
        app.notify(shown, title=f"{action.label}: running", markup=False)
        context.start_actions(targets, action)
        if ran is not None:
            ran()

    if action.loses_guest_state or len(targets) > 1:
        title = (
            f"{action.label} {targets[0].vm.name} on {targets[0].host}?"
            if len(targets) == 1
            else f"{action.label} {len(targets)} VMs?"
        )
        if skipped:
            title += f" ({skipped} marked VMs skipped: their state or host rules it out)"
        warning = FORCE_OFF_WARNING if action.loses_guest_state else None
        app.push_screen(
            ConfirmDialog(title, commands, warning=warning, confirm_label=action.label),
            callback=lambda ok: run() if ok else None,
        )
    else:
        run()


def open_console(app: App[object], context: AppContext, placed: PlacedVm) -> None:
    """The VM's console screen (the one already open, if any), or a notice saying why not."""
    try:
        console = context.open_console(placed)
    except OvmError as exc:
        app.notify(exc.message, title=exc.title, severity="warning", markup=False)
        return
    show_console(app, context, console)


def open_migration(app: App[object], context: AppContext, placed: PlacedVm) -> None:
    """The VM's migration screen (its flight plan), or a notice saying why not."""
    reason = migrate_refusal(context, placed)
    if reason is not None:
        app.notify(f"No migration: {reason}.", severity="warning", markup=False)
        return
    from ovmtui.screens.migrate import MigrateScreen

    app.push_screen(MigrateScreen(context, placed))


def show_console(
    app: App[object],
    context: AppContext,
    console: ConsoleSession,
    *,
    on_leave: Callable[[], None] | None = None,
) -> None:
    from ovmtui.screens.console import show_console as show

    show(app, console, context=context, on_leave=on_leave)
