"""VM lifecycle actions: checked, bounded, reported per VM, followed by a refresh.

The UI asks for confirmation; this service enforces what must hold whatever the UI does:
read-only mode refuses, a host without the capability refuses, and the poller is asked to
refresh the hosts that were touched.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from ovmtui.backend.base import Backend
from ovmtui.errors import ActionRefused, OvmError
from ovmtui.model import HostKey, PlacedVm, VmAction

ResultCallback = Callable[["ActionResult"], None]


@dataclass(frozen=True, slots=True)
class ActionResult:
    placed: PlacedVm
    action: VmAction
    command: str
    ok: bool
    error: str | None = None
    started_at: float = 0.0
    duration_s: float = 0.0

    @property
    def summary(self) -> str:
        if self.ok:
            return f"{self.action.label} {self.placed.vm.name}: done"
        return f"{self.action.label} {self.placed.vm.name}: {self.error}"


class ActionService:
    def __init__(
        self,
        backend_for: Callable[[HostKey], Backend | None],
        *,
        refresh: Callable[[HostKey], None] | None = None,
        read_only: bool = False,
        max_concurrency: int = 8,
    ) -> None:
        self._backend_for = backend_for
        self._refresh = refresh
        self.read_only = read_only
        self._max_concurrency = max_concurrency

    def command_for(self, placed: PlacedVm, action: VmAction) -> str:
        backend = self._backend(placed)
        return backend.command_for(placed.vm, action)

    def check(self, placed: PlacedVm, action: VmAction) -> None:
        """Raise ``ActionRefused`` when the action must not run, with the reason."""
        if self.read_only:
            raise ActionRefused("ovmtui runs in read-only mode: no action is allowed")
        backend = self._backend(placed)
        if action.capability not in backend.capabilities:
            raise ActionRefused(f"{placed.host} cannot {action.label.lower()} VMs")

    async def run(self, placed: PlacedVm, action: VmAction) -> ActionResult:
        started = time.time()
        command = ""
        try:
            self.check(placed, action)
            backend = self._backend(placed)
            command = backend.command_for(placed.vm, action)
            await backend.act(placed.vm, action)
        except OvmError as exc:
            return ActionResult(
                placed, action, command, False, exc.message, started, time.time() - started
            )
        finally:
            if self._refresh is not None and not self.read_only:
                self._refresh(placed.host_key)
        return ActionResult(placed, action, command, True, None, started, time.time() - started)

    async def run_many(
        self,
        targets: Sequence[PlacedVm],
        action: VmAction,
        on_result: ResultCallback | None = None,
    ) -> list[ActionResult]:
        """Run ``action`` on every target, at most ``max_concurrency`` at once.

        Results come back in the order of ``targets``; ``on_result`` hears each as it ends.
        """
        limit = asyncio.Semaphore(self._max_concurrency)

        async def one(placed: PlacedVm) -> ActionResult:
            async with limit:
                result = await self.run(placed, action)
            if on_result is not None:
                on_result(result)
            return result

        return list(await asyncio.gather(*(one(p) for p in targets)))

    def _backend(self, placed: PlacedVm) -> Backend:
        backend = self._backend_for(placed.host_key)
        if backend is None:
            raise ActionRefused(f"{placed.host} is not in the estate")
        return backend


def summarize(results: Iterable[ActionResult]) -> tuple[int, int]:
    """(succeeded, failed)"""
    ok = failed = 0
    for result in results:
        if result.ok:
            ok += 1
        else:
            failed += 1
    return ok, failed
