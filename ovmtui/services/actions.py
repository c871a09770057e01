"""VM lifecycle actions: checked, bounded, reported per VM, followed by a refresh.

The UI asks for confirmation; this service enforces what must hold whatever the UI does:
read-only mode refuses, a host without the capability refuses, and the poller is asked to
refresh the hosts that were touched.
"""

from __future__ import annotations

import asyncio
import getpass
import os
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

from ovmtui.backend.base import Backend
from ovmtui.errors import ActionRefused, OvmError
from ovmtui.model import HostKey, PlacedVm, VmAction

ResultCallback = Callable[["ActionResult"], None]


class ActionJournal(Protocol):
    """Where every action is written before it runs and completed after (the audit log)."""

    async def journal_started(
        self,
        *,
        user: str,
        pool: str,
        host: str,
        vm: str,
        uuid: str,
        operation: str,
        command: str,
    ) -> int: ...

    async def journal_finished(self, started_id: int, *, ok: bool, detail: str | None) -> int: ...


def current_user() -> str:
    """The operator, as the OS knows them (sudo keeps the name of who ran it)."""
    for name in ("SUDO_USER", "LOGNAME", "USER"):
        value = os.environ.get(name)
        if value:
            return value
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # a uid with no passwd entry (containers)
        return f"uid {os.getuid()}"


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
        journal: ActionJournal | None = None,
        user: str | None = None,
    ) -> None:
        self._backend_for = backend_for
        self._refresh = refresh
        self.read_only = read_only
        self._max_concurrency = max_concurrency
        self.journal = journal
        self._user = user or current_user()
        self.hold: str | None = None  # why actions must wait (a restore under way), or None

    def command_for(self, placed: PlacedVm, action: VmAction) -> str:
        backend = self._backend(placed)
        return backend.command_for(placed.vm, action)

    def check(self, placed: PlacedVm, action: VmAction) -> None:
        """Raise ``ActionRefused`` when the action must not run, with the reason."""
        if self.read_only:
            raise ActionRefused("ovmtui runs in read-only mode: no action is allowed")
        if self.hold is not None:
            raise ActionRefused(self.hold)
        backend = self._backend(placed)
        if action.capability not in backend.capabilities:
            raise ActionRefused(f"{placed.host} cannot {action.label.lower()} VMs")

    async def run(self, placed: PlacedVm, action: VmAction) -> ActionResult:
        started = time.time()
        command = ""
        record: int | None = None
        error: str | None = None
        try:
            backend = self._backend(placed)
            command = backend.command_for(placed.vm, action)
            # Written before anything else: a refusal is on the record too, and a crash
            # halfway leaves "started, no result". An action the journal cannot record
            # (its error is an OvmError too) does not run.
            record = await self._journal_started(placed, action, command)
            self.check(placed, action)
            await backend.act(placed.vm, action)
        except OvmError as exc:
            error = exc.message
        finally:
            if self._refresh is not None and not self.read_only:
                self._refresh(placed.host_key)
        if record is not None and self.journal is not None:
            await self.journal.journal_finished(record, ok=error is None, detail=error)
        return ActionResult(
            placed, action, command, error is None, error, started, time.time() - started
        )

    async def _journal_started(
        self, placed: PlacedVm, action: VmAction, command: str
    ) -> int | None:
        if self.journal is None:
            return None
        return await self.journal.journal_started(
            user=self._user,
            pool=placed.pool,
            host=placed.host,
            vm=placed.vm.name,
            uuid=placed.uuid,
            operation=action.value,
            command=command,
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
