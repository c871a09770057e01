"""What screens may ask of the app, without importing it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from ovmtui.model import EstateSnapshot, PlacedVm, VmAction
from ovmtui.services.actions import ActionResult
from ovmtui.store.journal import JournalEntry


class AppContext(Protocol):
    @property
    def snapshot(self) -> EstateSnapshot: ...

    @property
    def read_only(self) -> bool: ...

    @property
    def action_log(self) -> Sequence[ActionResult]: ...

    def clock(self) -> float: ...

    def command_for(self, placed: PlacedVm, action: VmAction) -> str: ...

    def refusal(self, placed: PlacedVm, action: VmAction) -> str | None:
        """Why the action cannot run on this VM, or None when it can."""
        ...

    def start_actions(self, targets: Sequence[PlacedVm], action: VmAction) -> None:
        """Run the action on the targets in the background (already confirmed)."""
        ...

    def refresh_now(self) -> None: ...

    async def journal_entries(self) -> Sequence[JournalEntry]:
        """The audit journal; raises OvmError when there is no repository."""
        ...
