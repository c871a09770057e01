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
from ovmtui.identity import current_user
from ovmtui.model import HostKey, PlacedVm, VmAction, action_refusal
from ovmtui.operations import Journal, Operation, Operations

READ_ONLY = "ovmtui runs in read-only mode: no action is allowed"

ResultCallback = Callable[["ActionResult"], None]


class InMemoryJournal:
    """The journal of a run given no repository at all (tests, benchmarks): gone at exit."""

    def __init__(self) -> None:
        self.records: list[tuple[object, ...]] = []

    async def journal_started(
        self,
        *,
        user: str,
        pool: str | None,
        host: str | None,
        vm: str | None,
        uuid: str | None,
        operation: str,
        command: str,
    ) -> int:
        self.records.append(("started", user, pool, host, vm, uuid, operation, command))
        return len(self.records)

    async def journal_finished(self, started_id: int, *, ok: bool, detail: str | None) -> int:
        self.records.append(("finished", started_id, ok, detail))
        return len(self.records)


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
        journal: Journal | None = None,
        user: str | None = None,
    ) -> None:
        self._backend_for = backend_for
        self._refresh = refresh
        self.read_only = read_only
        self._max_concurrency = max_concurrency
        self.journal = journal
        # Why there is no journal, for the refusal every action then gets.
        self.no_journal = "no repository is open"
        self.hold: str | None = None  # why actions must wait (a restore under way), or None
        # VMs that take no other action now, with why (a migration under way): by UUID.
        self.busy: dict[str, str] = {}
        self.operations = Operations(
            user=user or current_user(),
            journal=lambda: self.journal,
            refusal=lambda: READ_ONLY if self.read_only else None,
            no_journal=lambda: self.no_journal,
        )

    def command_for(self, placed: PlacedVm, action: VmAction) -> str:
        backend = self._backend(placed)
        return backend.command_for(placed.vm, action)

    def check(self, placed: PlacedVm, action: VmAction) -> None:
        """Raise ``ActionRefused`` when the action must not run, with the reason."""
        if self.read_only:
            raise ActionRefused(READ_ONLY)
        if self.hold is not None:
            raise ActionRefused(self.hold)
        busy = self.busy.get(placed.uuid)
        if busy is not None:
            raise ActionRefused(busy)
        self.operations.journal()  # none runs unrecorded: raises, saying why
        backend = self._backend(placed)
        reason = action_refusal(placed, action, backend.capabilities)
        if reason is not None:
            raise ActionRefused(reason)

    async def run(self, placed: PlacedVm, action: VmAction) -> ActionResult:
        started = time.time()
        command = ""
        error: str | None = None
        try:
            backend = self._backend(placed)
            command = backend.command_for(placed.vm, action)
            operation = Operation(
                action.value, command, placed.pool, placed.host, placed.vm.name, placed.uuid
            )
            # Checked after the "started" record: a refusal is on the record too.
            done = await self.operations.run(
                operation,
                lambda: backend.act(placed.vm, action),
                check=lambda: self.check(placed, action),
            )
            if done.unrecorded is not None:
                error = f"done, but its outcome is not recorded in the journal: {done.unrecorded}"
        except OvmError as exc:
            error = exc.message
        finally:
            if self._refresh is not None and not self.read_only:
                self._refresh(placed.host_key)
        return ActionResult(
            placed, action, command, error is None, error, started, time.time() - started
        )

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
