"""Migrations: the flight plan, the move on the record with its progress, and evacuations.

``MigrationService`` asks the hosts what a move needs and what each target can give (all
targets at once), judges them with ``flight_plan``, and runs a move as one audited operation
(``Operations``): the "started" record names the target and the checks; the result says how
long it took, or why it failed, or that it was cancelled (the VM then stays on its source
where the host can abort). A target that is no go is refused unless an override gives the
operator's reason; the failed checks and the reason go into the journal. While a VM moves no
other action is offered on it, and the memory promised to its target counts in the checks
of every other move there.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from ovmtui import format as fmt
from ovmtui.backend.base import Backend, Migrator
from ovmtui.errors import ActionFailed, ActionRefused, OvmError
from ovmtui.model import (
    Capability,
    EstateSnapshot,
    HostKey,
    HostStatus,
    MigrationNeeds,
    MigrationProgress,
    PlacedVm,
    TargetAnswers,
)
from ovmtui.operations import Operation, Operations
from ovmtui.roles import pool_hosts, role_problem
from ovmtui.services.flight_plan import (
    DEFAULT_OVERHEAD_MIB,
    EvacuationPlan,
    TargetVerdict,
    best,
    plan_evacuation,
    targets_of,
    verdict,
)

# How long a host may take to say what a move needs or what it can give: the plan is
# shown with that host's checks unknown after it.
ASK_TIMEOUT_S = 20.0
# After the move, how long the two hosts' polls have to show the VM on its target.
CONFIRM_TIMEOUT_S = 30.0
# After a cancel, how long the source has to be polled again before saying where the VM is.
CANCEL_SETTLE_S = 5.0


class Cancelled(ActionFailed):
    """The operator cancelled a move; the host aborted it."""

    title = "Migration cancelled"


@dataclass(frozen=True, slots=True)
class FlightPlan:
    """Every target's verdict for one VM, the best go first."""

    placed: PlacedVm
    live: bool
    verdicts: tuple[TargetVerdict, ...]

    @property
    def best(self) -> TargetVerdict | None:
        return best(self.verdicts)

    def verdict_for(self, host: HostKey) -> TargetVerdict | None:
        return next((v for v in self.verdicts if v.host == host), None)


@dataclass(frozen=True, slots=True)
class Moving:
    """A move under way, as the dashboard shows it on both hosts."""

    vm: str
    uuid: str
    source: str
    target: str


@dataclass(frozen=True, slots=True)
class MigrationOutcome:
    placed: PlacedVm
    target: HostKey
    ok: bool
    detail: str
    seconds: float
    cancelled: bool = False


class MigrationService:
    def __init__(
        self,
        *,
        backend_for: Callable[[HostKey], Backend | None],
        snapshot: Callable[[], EstateSnapshot],
        shared_storage: Callable[[str], str | None],
        operations: Operations,
        busy: dict[str, str],
        repoll: Callable[[Sequence[HostKey], float], Awaitable[None]],
        overhead_mib: int = DEFAULT_OVERHEAD_MIB,
        on_change: Callable[[tuple[Moving, ...]], object] = lambda _moves: None,
    ) -> None:
        self._backend_for = backend_for
        self.on_change = on_change
        self._moves: dict[str, Moving] = {}
        self._snapshot = snapshot
        self._shared_storage = shared_storage
        self._operations = operations
        self._busy = busy
        self._repoll = repoll
        self.overhead_mib = overhead_mib
        # Memory promised to each target by moves under way: (target, MiB) by VM UUID.
        self._in_flight: dict[str, tuple[HostKey, int]] = {}
        self._moving: dict[str, asyncio.Future[None]] = {}

    # -- the plan ---------------------------------------------------------------------------

    def migrator(self, key: HostKey) -> Migrator | None:
        backend = self._backend_for(key)
        if backend is None or Capability.MIGRATE not in backend.capabilities:
            return None
        return backend if isinstance(backend, Migrator) else None

    def command(self, placed: PlacedVm, target: HostKey, *, live: bool) -> str:
        source, destination = self.migrator(placed.host_key), self._backend_for(target)
        if source is None or destination is None:
            return f"# {placed.host} cannot migrate VMs"
        return source.migration_command(placed.vm, destination, live=live)

    async def plan(self, placed: PlacedVm, *, live: bool = True) -> FlightPlan:
        """Every other host of the VM's pool, judged (asked all at once)."""
        snapshot = self._snapshot()
        source = snapshot.host(placed.host_key)
        if source is None:
            raise ActionRefused(f"{placed.host} is not in the estate")
        migrator = self.migrator(placed.host_key)
        if migrator is None:
            raise ActionRefused(f"{placed.host} cannot migrate VMs")
        needs, failure = await self._ask(migrator.migration_needs(placed.vm), placed.host)
        targets = targets_of(source, snapshot.hosts)
        pool = pool_hosts(snapshot.hosts, source.pool)
        answers = await asyncio.gather(*(self._answers(t, needs) for t in targets))
        in_flight = self._promised()
        verdicts = tuple(
            verdict(
                placed,
                source,
                target,
                needs,
                answer,
                live=live,
                shared_storage=self._shared_storage(placed.pool),
                in_flight_mib=in_flight.get(target.key, 0),
                overhead_mib=self.overhead_mib,
                failure=why or failure,
                role=role_problem(target, pool),
            )
            for target, (answer, why) in zip(targets, answers, strict=True)
        )
        return FlightPlan(placed, live, _best_first(verdicts))

    async def plan_evacuation(self, host: HostKey) -> EvacuationPlan:
        """Every running VM of ``host`` placed on the others of its pool (see
        ``flight_plan.plan_evacuation``)."""
        snapshot = self._snapshot()
        source = snapshot.host(host)
        if source is None:
            raise ActionRefused(f"{host} is not in the estate")
        migrator = self.migrator(host)
        if migrator is None:
            raise ActionRefused(f"{host.name} cannot migrate VMs")
        vms = [PlacedVm(host.pool, host.name, vm) for vm in source.vms if vm.state.is_active]
        targets = targets_of(source, snapshot.hosts)
        pool = pool_hosts(snapshot.hosts, source.pool)
        asked: dict[str, tuple[MigrationNeeds | None, str | None]] = {}
        for placed in vms:
            asked[placed.uuid] = await self._ask(migrator.migration_needs(placed.vm), host.name)
        answers: dict[tuple[str, HostKey], tuple[TargetAnswers | None, str | None]] = {}
        for placed in vms:
            needs = asked[placed.uuid][0]
            replies = await asyncio.gather(*(self._answers(t, needs) for t in targets))
            for target, reply in zip(targets, replies, strict=True):
                answers[(placed.uuid, target.key)] = reply
        in_flight = self._promised()

        def judge(placed: PlacedVm, target: HostStatus, promised: int) -> TargetVerdict:
            needs, failure = asked[placed.uuid]
            answer, why = answers[(placed.uuid, target.key)]
            return verdict(
                placed,
                source,
                target,
                needs,
                answer,
                live=True,
                shared_storage=self._shared_storage(host.pool),
                in_flight_mib=in_flight.get(target.key, 0) + promised,
                overhead_mib=self.overhead_mib,
                failure=why or failure,
                role=role_problem(target, pool),
            )

        return plan_evacuation(host, vms, targets, judge)

    # -- the move ---------------------------------------------------------------------------

    async def migrate(
        self,
        placed: PlacedVm,
        target: HostKey,
        *,
        live: bool = True,
        plan: FlightPlan | None = None,
        override: str | None = None,
        progress: Callable[[MigrationProgress], object] | None = None,
    ) -> MigrationOutcome:
        """Move ``placed`` to ``target`` on the record. A target the plan says is no go is
        refused unless ``override`` gives the operator's reason. Raises ``ActionRefused``
        (nothing started); a failure or a cancel is in the outcome (and the journal)."""
        plan = plan if plan is not None else await self.plan(placed, live=live)
        chosen = plan.verdict_for(target)
        if chosen is None:
            raise ActionRefused(f"{target.name} is not another host of {placed.pool}")
        if not chosen.go and not (override and override.strip()):
            failed = "; ".join(f"{c.name}: {c.detail}" for c in chosen.failed)
            raise ActionRefused(
                f"{target.name} is no go for {placed.vm.name}: {failed}. "
                "Override only with a reason, which the journal keeps."
            )
        source, destination = self.migrator(placed.host_key), self._backend_for(target)
        if source is None or destination is None:
            raise ActionRefused(f"{placed.host} cannot migrate VMs")
        command = source.migration_command(placed.vm, destination, live=live)
        if placed.uuid in self._busy:
            raise ActionRefused(self._busy[placed.uuid])
        note = _plan_note(chosen, override)
        operation = Operation(
            "migrate",
            f"{command}  # {note}",
            placed.pool,
            placed.host,
            placed.vm.name,
            placed.uuid,
        )
        started = time.monotonic()
        self._busy[placed.uuid] = f"migrating to {target.name}"
        self._in_flight[placed.uuid] = (target, placed.vm.memory_mib or 0)
        self._moves[placed.uuid] = Moving(placed.vm.name, placed.uuid, placed.host, target.name)
        self.on_change(self.moves)
        try:
            done = await self._operations.run(
                operation,
                lambda: self._move(source, destination, placed, target, live, progress),
                outcome=lambda seconds: (True, f"on {target.name} after {seconds:.1f} s"),
            )
        except ActionRefused:
            raise  # refused before anything started (read-only, no journal)
        except Cancelled as cancelled:
            return MigrationOutcome(
                placed, target, False, cancelled.message, time.monotonic() - started, True
            )
        except OvmError as exc:
            return MigrationOutcome(placed, target, False, exc.message, time.monotonic() - started)
        finally:
            self._busy.pop(placed.uuid, None)
            self._in_flight.pop(placed.uuid, None)
            self._moving.pop(placed.uuid, None)
            self._moves.pop(placed.uuid, None)
            self.on_change(self.moves)
        detail = f"on {target.name} after {done.value:.1f} s"
        if done.unrecorded:
            detail += f"; not in the journal: {done.unrecorded}"
        return MigrationOutcome(placed, target, True, detail, done.value)

    def cancel(self, uuid: str) -> bool:
        """Abort the VM's move under way (where the host can: the VM stays on its source);
        False when none is."""
        task = self._moving.get(uuid)
        if task is None or task.done():
            return False
        task.cancel()
        return True

    @property
    def moves(self) -> tuple[Moving, ...]:
        """The moves under way, oldest first."""
        return tuple(self._moves.values())

    @property
    def moving(self) -> tuple[str, ...]:
        """UUIDs of the VMs moving now."""
        return tuple(self._moving)

    async def _move(
        self,
        source: Migrator,
        destination: Backend,
        placed: PlacedVm,
        target: HostKey,
        live: bool,
        progress: Callable[[MigrationProgress], object] | None,
    ) -> float:
        started = time.monotonic()

        def report(reading: MigrationProgress) -> None:
            if progress is not None:
                progress(reading)

        move = asyncio.ensure_future(
            source.migrate(placed.vm, destination, live=live, progress=report)
        )
        self._moving[placed.uuid] = move
        try:
            await asyncio.shield(move)
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if current is not None and current.cancelling():
                move.cancel()  # ovmtui itself ends: the host aborts it where it can
                raise
            if not move.cancelled():
                raise
            # The operator's cancel (``cancel``). libvirt aborts the job; `xm/xl migrate`
            # cannot be aborted and may finish anyway: say where the VM is, as polled.
            elapsed = time.monotonic() - started
            where = await self._where_now(placed)
            raise Cancelled(
                f"cancelled by the operator after {elapsed:.1f} s; {placed.vm.name} {where}"
            ) from None
        # The host says it is done; the polls of both hosts must agree.
        await self._confirm(placed, target)
        return time.monotonic() - started

    async def _where_now(self, placed: PlacedVm) -> str:
        """Where the VM is after a cancel, from polls of the hosts taken after it."""
        with contextlib.suppress(TimeoutError, OvmError):
            await self._repoll(self._pool_hosts(placed), CANCEL_SETTLE_S)
        found = self._snapshot().find_vm(placed.uuid)
        if found is None:
            return "is on no host that answers: check the target"
        if found.host_key == placed.host_key:
            return f"stays on {placed.host}"
        return f"is on {found.host} now: its host could not abort the move"

    async def _confirm(self, placed: PlacedVm, target: HostKey) -> None:
        """The host says the move is done: the polls of both hosts must agree."""
        deadline = time.monotonic() + CONFIRM_TIMEOUT_S
        while time.monotonic() < deadline:
            with contextlib.suppress(TimeoutError):
                await self._repoll([placed.host_key, target], CONFIRM_TIMEOUT_S)
            found = [p for p in self._snapshot().placed_vms() if p.uuid == placed.uuid]
            if [p.host_key for p in found] == [target]:
                return
            await asyncio.sleep(0.5)
        raise ActionFailed(
            f"{placed.vm.name}: the move was reported done, but {target.name} does not list it "
            f"alone after {CONFIRM_TIMEOUT_S:.0f} s; check both hosts"
        )

    def _pool_hosts(self, placed: PlacedVm) -> list[HostKey]:
        return [h.key for h in self._snapshot().hosts if h.pool == placed.pool]

    # -- asking hosts -----------------------------------------------------------------------

    async def _ask(
        self, question: Awaitable[MigrationNeeds], host: str
    ) -> tuple[MigrationNeeds | None, str | None]:
        try:
            needs = await asyncio.wait_for(question, ASK_TIMEOUT_S)
        except TimeoutError:
            return None, f"{host} did not say what the VM needs within {ASK_TIMEOUT_S:.0f} s"
        except OvmError as exc:
            return None, f"{host}: {exc.message}"
        return needs, None

    async def _answers(
        self, target: HostStatus, needs: MigrationNeeds | None
    ) -> tuple[TargetAnswers | None, str | None]:
        if needs is None:
            return None, None
        migrator = self.migrator(target.key)
        if migrator is None:
            return None, f"{target.name} cannot take migrations"
        if not target.reachable:
            return None, f"{target.name} does not answer"
        try:
            answer = await asyncio.wait_for(migrator.can_host(needs), ASK_TIMEOUT_S)
        except TimeoutError:
            return None, f"{target.name} did not answer within {ASK_TIMEOUT_S:.0f} s"
        except OvmError as exc:
            return None, f"{target.name}: {exc.message}"
        return answer, None

    def _promised(self) -> dict[HostKey, int]:
        totals: dict[HostKey, int] = {}
        for host, memory in self._in_flight.values():
            totals[host] = totals.get(host, 0) + memory
        return totals


def _best_first(verdicts: Sequence[TargetVerdict]) -> tuple[TargetVerdict, ...]:
    return tuple(sorted(verdicts, key=lambda v: (not v.go, -(v.free_after_mib or 0), v.host)))


def _plan_note(chosen: TargetVerdict, override: str | None) -> str:
    """What the journal keeps of the checks: all passed, or which failed and the override."""
    if chosen.go:
        return "checks passed: " + ", ".join(c.name for c in chosen.checks)
    failed = "; ".join(f"{c.name}: {c.detail}" for c in chosen.failed)
    return f"OVERRIDE ({override}): failed checks: {failed}"


def describe_progress(reading: MigrationProgress) -> str:
    """One reading as the operator reads it: elapsed, share, memory sent, speed, dirty pages,
    ETA (each only where the host measured it)."""
    parts = [f"{reading.elapsed_s:.0f} s"]
    if reading.fraction is not None:
        parts.append(f"{reading.fraction:.0%}")
    if reading.processed_bytes is not None and reading.total_bytes:
        parts.append(f"{fmt.size(reading.processed_bytes)} of {fmt.size(reading.total_bytes)}")
    if reading.bytes_per_s:
        parts.append(f"{fmt.size(int(reading.bytes_per_s))}/s")
    if reading.dirty_pages_per_s:
        parts.append(f"{reading.dirty_pages_per_s:.0f} dirty pages/s")
    if reading.eta_s is not None:
        parts.append(f"ETA {reading.eta_s:.0f} s")
    if reading.note:
        parts.append(reading.note)
    return "migrating: " + ", ".join(parts)
