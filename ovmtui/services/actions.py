"""VM lifecycle actions: checked, bounded, reported per VM, followed by a refresh.

The UI asks for confirmation; this service enforces what must hold whatever the UI does:
read-only mode refuses, a host without the capability refuses, and the poller is asked to
refresh the hosts that were touched.
"""

from __future__ import annotations

import asyncio
import contextlib
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

INTERRUPTED = (
    "interrupted: ovmtui ended while it ran; the host may still have done it, check the VM"
)


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


class InMemoryJournal:
    """The journal of a run given no repository at all (tests, benchmarks): gone at exit."""

    def __init__(self) -> None:
        self.records: list[tuple[object, ...]] = []

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
    ) -> int:
        self.records.append(("started", user, pool, host, vm, uuid, operation, command))
        return len(self.records)

    async def journal_finished(self, started_id: int, *, ok: bool, detail: str | None) -> int:
        self.records.append(("finished", started_id, ok, detail))
        return len(self.records)


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
        # Why there is no journal, for the refusal every action then gets.
        self.no_journal = "no repository is open"
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
        if self.journal is None:
            # The journal is the safety net of every action: none runs without its record.
            raise ActionRefused(
                f"it would not be recorded in the journal ({self.no_journal}): "
                "no action runs unrecorded"
            )
        backend = self._backend(placed)
        if action.capability not in backend.capabilities:
            raise ActionRefused(f"{placed.host} cannot {action.label.lower()} VMs")

    async def run(self, placed: PlacedVm, action: VmAction) -> ActionResult:
        started = time.time()
        command = ""
        # This journal to the end, even if it is detached meanwhile (the app quitting).
        journal = self.journal
        record: int | None = None
        error: str | None = None
        try:
            backend = self._backend(placed)
            command = backend.command_for(placed.vm, action)
            if journal is None:
                self.check(placed, action)  # refuses, saying why (read-only, no journal)
                raise ActionRefused(f"it would not be recorded in the journal ({self.no_journal})")
            # Written before anything else: a refusal is on the record too, and a crash
            # halfway leaves "started, no result". An action the journal cannot record
            # (its error is an OvmError too) does not run.
            record = await self._journal_started(journal, placed, action, command)
            self.check(placed, action)
            await backend.act(placed.vm, action)
        except OvmError as exc:
            error = exc.message
        except asyncio.CancelledError:
            # ovmtui is ending (quit, SIGTERM, SIGHUP): say so on the record, then go on
            # ending. The host may still carry the action out; the record says to check.
            if record is not None and journal is not None:
                with contextlib.suppress(OvmError):
                    await journal.journal_finished(record, ok=False, detail=INTERRUPTED)
            raise
        finally:
            if self._refresh is not None and not self.read_only:
                self._refresh(placed.host_key)
        if record is not None and journal is not None:
            try:
                await journal.journal_finished(record, ok=error is None, detail=error)
            except OvmError as exc:
                outcome = "done" if error is None else error
                error = f"{outcome}, but its outcome is not recorded in the journal: {exc.message}"
        return ActionResult(
            placed, action, command, error is None, error, started, time.time() - started
        )

    async def _journal_started(
        self, journal: ActionJournal, placed: PlacedVm, action: VmAction, command: str
    ) -> int:
        return await journal.journal_started(
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
