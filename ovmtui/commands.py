"""Command palette: every VM action and every host, by name ("Start web01", "Open host h3").

A VM action its host or state rules out is listed too, dimmed, after those that can run,
with the reason as its help: the palette says why, as the dimmed key does. Chosen anyway,
it runs nothing and says why again.
"""

from __future__ import annotations

from functools import partial
from typing import NamedTuple, Protocol

from textual.command import DiscoveryHit, Hit, Hits, Provider
from textual.content import Content
from textual.markup import escape

from ovmtui.context import AppContext
from ovmtui.model import Capability, HostKey, PlacedVm, VmAction

MAX_HITS = 200
# Ranks an entry that cannot run below one that can and matches as well.
REFUSED_SCORE = 0.5


class PaletteCommand(NamedTuple):
    text: str
    help: str
    callback: partial[None]
    # A VM action: its reason to refuse is asked only when it is shown (not for all of
    # the estate's VMs on every key typed).
    placed: PlacedVm | None = None
    action: VmAction | None = None  # None with a VM: its console


class _EstateScreen(Protocol):
    context: AppContext

    def run_on_vm(self, uuid: str, action: VmAction) -> None: ...

    def vm_refusal(self, placed: PlacedVm, action: VmAction) -> str | None: ...

    def open_host(self, key: HostKey) -> None: ...

    def evacuate(self, host: HostKey) -> None: ...

    def open_storage(self, pool: str) -> None: ...
    def test_connection(self, host: HostKey) -> None: ...
    def restore(self, pool: str, host: HostKey | None = None) -> None: ...

    def open_console(self, placed: PlacedVm) -> None: ...

    def open_vm(self, placed: PlacedVm) -> None: ...

    def shared_disk(self, placed: PlacedVm, attach: bool) -> None: ...

    def action_consoles(self) -> None: ...

    def action_imports(self) -> None: ...

    def action_refresh(self) -> None: ...

    def action_filter(self) -> None: ...

    def action_sort_next(self) -> None: ...

    def action_sort_reverse(self) -> None: ...

    def action_action_log(self) -> None: ...

    def action_journal(self) -> None: ...

    def action_backups(self) -> None: ...

    def action_export_definitions(self) -> None: ...

    def action_drift(self) -> None: ...

    def new_pool(self) -> None: ...

    def add_host(self, pool: str) -> None: ...

    def edit_host(self, name: str) -> None: ...

    def remove_host(self, name: str) -> None: ...

    def host_roles(self, name: str) -> None: ...

    def promote_host(self, name: str) -> None: ...


class EstateCommands(Provider):
    def _target(self) -> _EstateScreen | None:
        screen = self.screen
        if hasattr(screen, "run_on_vm") and hasattr(screen, "open_host"):
            return screen  # type: ignore[return-value]  # duck-typed: the dashboard
        return None

    def _commands(self, screen: _EstateScreen) -> list[PaletteCommand]:
        context = screen.context
        snapshot = context.snapshot
        commands = [
            PaletteCommand("Refresh every host now", "ctrl+r", partial(screen.action_refresh)),
            PaletteCommand("Filter VMs", "/", partial(screen.action_filter)),
            PaletteCommand("Sort by the next column", "o", partial(screen.action_sort_next)),
            PaletteCommand("Reverse the sort", "O", partial(screen.action_sort_reverse)),
            PaletteCommand("Show the action log", "l", partial(screen.action_action_log)),
            PaletteCommand("Show the audit journal", "j", partial(screen.action_journal)),
            PaletteCommand(
                "Back up or restore the repository", "b", partial(screen.action_backups)
            ),
            PaletteCommand(
                "Export every VM's definition to an archive",
                "E",
                partial(screen.action_export_definitions),
            ),
            PaletteCommand(
                "Show state drift (recorded vs reported)", "D", partial(screen.action_drift)
            ),
            PaletteCommand("Show the open consoles", "C", partial(screen.action_consoles)),
            PaletteCommand(
                "Imports: resources from URLs (ISOs, templates, images)",
                "I",
                partial(screen.action_imports),
            ),
        ]
        # The estate file's edits: only where there is a file to edit and it may be.
        editable = context.estate_edits.refusal() is None
        if editable:
            commands.append(PaletteCommand("New pool", "N", partial(screen.new_pool)))
            for pool in snapshot.pools:
                commands.append(
                    PaletteCommand(
                        f"Add host to pool {pool}", "A on a pool", partial(screen.add_host, pool)
                    )
                )
        pools = snapshot.pools or tuple(dict.fromkeys(host.pool for host in snapshot.hosts))
        for pool in pools:
            commands.append(
                PaletteCommand(
                    f"Storage of pool {pool}",
                    "its files, the library of resources, what uses them (S)",
                    partial(screen.open_storage, pool),
                )
            )
        for host in snapshot.hosts:
            commands.append(
                PaletteCommand(
                    f"Open host {host.name}",
                    f"pool {host.pool}",
                    partial(screen.open_host, host.key),
                )
            )
            commands.append(
                PaletteCommand(
                    f"Test connection to host {host.name}",
                    "every check, each with its result and time (T in the tree)",
                    partial(screen.test_connection, host.key),
                )
            )
            if editable:
                where = f"pool {host.pool}"
                commands += [
                    PaletteCommand(
                        f"Edit host {host.name}",
                        f"e: {where}",
                        partial(screen.edit_host, host.name),
                    ),
                    PaletteCommand(
                        f"Remove host {host.name}",
                        f"X: {where}",
                        partial(screen.remove_host, host.name),
                    ),
                    PaletteCommand(
                        f"Roles of host {host.name}",
                        f"G: {where}",
                        partial(screen.host_roles, host.name),
                    ),
                    PaletteCommand(
                        f"Promote {host.name} to master",
                        f"P: {where}",
                        partial(screen.promote_host, host.name),
                    ),
                ]
            if not context.read_only and Capability.MIGRATE in host.capabilities:
                commands.append(
                    PaletteCommand(
                        f"Evacuate host {host.name}",
                        f"move its running VMs to the others of {host.pool} (E in the tree)",
                        partial(screen.evacuate, host.key),
                    )
                )
            if not context.read_only and Capability.RESTORE in host.capabilities:
                commands.append(
                    PaletteCommand(
                        f"Restore host {host.name}",
                        "define again what the repository last saw there (R in the tree)",
                        partial(screen.restore, host.pool, host.key),
                    )
                )
        for pool in dict.fromkeys(h.pool for h in snapshot.hosts) if not context.read_only else ():
            commands.append(
                PaletteCommand(
                    f"Restore pool {pool}",
                    "every host of it from the repository, masters first (R on the pool)",
                    partial(screen.restore, pool, None),
                )
            )
        for placed in snapshot.placed_vms():
            commands.append(
                PaletteCommand(
                    f"Open VM {placed.vm.name}",
                    f"{placed.vm.state.value} on {placed.host}",
                    partial(screen.open_vm, placed),
                )
            )
            # Read-only mode opens consoles too, view-only.
            commands.append(
                PaletteCommand(
                    f"Console of {placed.vm.name}",
                    f"{placed.vm.state.value} on {placed.host}",
                    partial(screen.open_console, placed),
                    placed,
                )
            )
            if context.read_only:
                continue
            status = snapshot.host(placed.host_key)
            if status is not None and Capability.ATTACH_DISK in status.capabilities:
                for attach, text in (
                    (True, "Attach a shared disk to"),
                    (False, "Detach a shared disk from"),
                ):
                    commands.append(
                        PaletteCommand(
                            f"{text} {placed.vm.name}",
                            f"{placed.vm.state.value} on {placed.host} "
                            f"({'a' if attach else 'A'} on its screen)",
                            partial(screen.shared_disk, placed, attach),
                        )
                    )
            for action in VmAction:
                commands.append(
                    PaletteCommand(
                        f"{action.label} {placed.vm.name}",
                        f"{placed.vm.state.value} on {placed.host}",
                        partial(screen.run_on_vm, placed.uuid, action),
                        placed,
                        action,
                    )
                )
        return commands

    def refusal(self, screen: _EstateScreen, command: PaletteCommand) -> str | None:
        """Why a listed command cannot run now (a VM's action or console), or None."""
        if command.placed is None:
            return None
        if command.action is None:
            return screen.context.console_refusal(command.placed)
        return screen.vm_refusal(command.placed, command.action)

    async def discover(self) -> Hits:
        screen = self._target()
        if screen is None:
            return
        for command in self._commands(screen)[:20]:
            refusal = self.refusal(screen, command)
            display = Content(command.text)
            yield DiscoveryHit(
                display if refusal is None else display.stylize("dim"),
                command.callback,
                text=command.text,
                help=escape(command.help if refusal is None else refusal),
            )

    async def search(self, query: str) -> Hits:
        screen = self._target()
        if screen is None:
            return
        matcher = self.matcher(query)
        hits = 0
        for command in self._commands(screen):
            score = matcher.match(command.text)
            if score > 0:
                refusal = self.refusal(screen, command)
                display = matcher.highlight(command.text)
                if refusal is not None:
                    score *= REFUSED_SCORE
                    display = display.stylize("dim")
                yield Hit(
                    score,
                    display,
                    command.callback,
                    text=command.text,
                    help=escape(command.help if refusal is None else refusal),
                )
                hits += 1
                if hits >= MAX_HITS:
                    return
