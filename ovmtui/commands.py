"""Command palette: every VM action and every host, by name ("Start web01", "Open host h3")."""

from __future__ import annotations

from functools import partial
from typing import Protocol

from textual.command import DiscoveryHit, Hit, Hits, Provider

from ovmtui.context import AppContext
from ovmtui.model import HostKey, VmAction

MAX_HITS = 200


class _EstateScreen(Protocol):
    context: AppContext

    def run_on_vm(self, uuid: str, action: VmAction) -> None: ...

    def open_host(self, key: HostKey) -> None: ...

    def action_refresh(self) -> None: ...

    def action_filter(self) -> None: ...

    def action_sort_next(self) -> None: ...

    def action_sort_reverse(self) -> None: ...

    def action_action_log(self) -> None: ...

    def action_journal(self) -> None: ...

    def action_backups(self) -> None: ...

    def action_export_definitions(self) -> None: ...

    def action_drift(self) -> None: ...


class EstateCommands(Provider):
    def _target(self) -> _EstateScreen | None:
        screen = self.screen
        if hasattr(screen, "run_on_vm") and hasattr(screen, "open_host"):
            return screen  # type: ignore[return-value]  # duck-typed: the dashboard
        return None

    def _commands(self, screen: _EstateScreen) -> list[tuple[str, str, partial[None]]]:
        context = screen.context
        snapshot = context.snapshot
        commands: list[tuple[str, str, partial[None]]] = [
            ("Refresh every host now", "ctrl+r", partial(screen.action_refresh)),
            ("Filter VMs", "/", partial(screen.action_filter)),
            ("Sort by the next column", "o", partial(screen.action_sort_next)),
            ("Reverse the sort", "O", partial(screen.action_sort_reverse)),
            ("Show the action log", "l", partial(screen.action_action_log)),
            ("Show the audit journal", "j", partial(screen.action_journal)),
            ("Back up or restore the repository", "b", partial(screen.action_backups)),
            (
                "Export every VM's definition to an archive",
                "E",
                partial(screen.action_export_definitions),
            ),
            ("Show state drift (recorded vs reported)", "D", partial(screen.action_drift)),
        ]
        for host in snapshot.hosts:
            commands.append(
                (f"Open host {host.name}", f"pool {host.pool}", partial(screen.open_host, host.key))
            )
        if context.read_only:
            return commands
        for placed in snapshot.placed_vms():
            for action in VmAction:
                if action.applies_to(placed.vm.state):
                    commands.append(
                        (
                            f"{action.label} {placed.vm.name}",
                            f"{placed.vm.state.value} on {placed.host}",
                            partial(screen.run_on_vm, placed.uuid, action),
                        )
                    )
        return commands

    async def discover(self) -> Hits:
        screen = self._target()
        if screen is None:
            return
        for text, help_text, callback in self._commands(screen)[:20]:
            yield DiscoveryHit(text, callback, help=help_text)

    async def search(self, query: str) -> Hits:
        screen = self._target()
        if screen is None:
            return
        matcher = self.matcher(query)
        hits = 0
        for text, help_text, callback in self._commands(screen):
            score = matcher.match(text)
            if score > 0:
                yield Hit(score, matcher.highlight(text), callback, help=help_text)
                hits += 1
                if hits >= MAX_HITS:
                    return
