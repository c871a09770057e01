"""Host restore: define again on a reinstalled host what the repository last saw there.

The plan lists every network, storage pool and VM recorded on the host (networks and pools
first: the VMs need them), each with what will happen to it and why:

- *define* it from its recorded version, and start it when it ran (a network or a storage
  pool that was active: always, the VMs need them; a VM: only when the operator asks);
- *skip* it: the host defines it already (identical, or otherwise: kept as it is, never
  overwritten);
- *refuse* it: another host reports its UUID now, or last reported it and does not answer
  (two hosts running one disk corrupt it), its name is taken on the host by another UUID, or
  no definition of it was ever recorded.

Each define is an operation on the record (``Operations``: journaled, refused in read-only
mode); the whole restore a job. Then the host is polled again, and each outcome says whether
the poll confirms it (the VM is there, running if it was started). Pure asyncio: the TUI's
restore screen and ``ovmtui host|pool restore`` share it.
"""

from __future__ import annotations

import enum
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from ovmtui import format as fmt
from ovmtui.backend.base import Backend, DefinitionRestorer
from ovmtui.errors import OvmError, RepositoryError
from ovmtui.model import (
    Capability,
    Definition,
    DefinitionKind,
    EstateSnapshot,
    HostKey,
    HostRole,
)
from ovmtui.operations import JobRecorder, Operation, Operations, run_as_job
from ovmtui.store.definitions import DefinitionPlace, DefinitionVersion

RESTORE_OPERATION = "restore-definition"
RESTORE_JOB = "host-restore"
_ORDER = {DefinitionKind.NETWORK: 0, DefinitionKind.STORAGE_POOL: 1, DefinitionKind.DOMAIN: 2}
_NOUN = {
    DefinitionKind.NETWORK: "network",
    DefinitionKind.STORAGE_POOL: "storage pool",
    DefinitionKind.DOMAIN: "VM",
}


class Verdict(enum.StrEnum):
    DEFINE = "define"
    SKIP = "skip"
    REFUSE = "refuse"


@dataclass(frozen=True, slots=True)
class RestoreStep:
    """One recorded definition of the host and what the restore does with it."""

    kind: DefinitionKind
    name: str
    uuid: str
    verdict: Verdict
    why: str  # the reason (skip, refuse) or what else happens (define)
    start: bool = False  # define, then start
    sha256: str | None = None
    since: float | None = None  # when it was last seen so (the place's time)
    command: str = ""

    @property
    def noun(self) -> str:
        return _NOUN[self.kind]


@dataclass(frozen=True, slots=True)
class HostRestorePlan:
    host: HostKey
    steps: tuple[RestoreStep, ...]
    refusal: str | None = None  # the whole host cannot be restored now, and why
    start: bool = False  # the operator asked for the VMs that ran to be started

    def of(self, verdict: Verdict) -> tuple[RestoreStep, ...]:
        return tuple(step for step in self.steps if step.verdict is verdict)

    @property
    def to_define(self) -> tuple[RestoreStep, ...]:
        return () if self.refusal is not None else self.of(Verdict.DEFINE)


@dataclass(frozen=True, slots=True)
class StepOutcome:
    step: RestoreStep
    ok: bool
    detail: str
    confirmed: bool | None = None  # what the next poll says (None: not known)


@dataclass(frozen=True, slots=True)
class HostRestoreOutcome:
    plan: HostRestorePlan
    outcomes: tuple[StepOutcome, ...]

    @property
    def ok(self) -> bool:
        return all(o.ok and o.confirmed is not False for o in self.outcomes)

    def summary(self) -> str:
        done = sum(1 for o in self.outcomes if o.ok)
        confirmed = sum(1 for o in self.outcomes if o.confirmed)
        return (
            f"{self.plan.host}: {done} of {len(self.outcomes)} defined, {confirmed} confirmed "
            f"by the poll; {len(self.plan.of(Verdict.SKIP))} skipped, "
            f"{len(self.plan.of(Verdict.REFUSE))} refused"
        )


class RecordedDefinitions(Protocol):
    """What a restore reads of the repository (``Repository`` is one)."""

    async def definitions_on(self, pool: str, host: str) -> list[DefinitionPlace]: ...

    async def definition_version(
        self, kind: DefinitionKind, uuid: str, sha256: str
    ) -> DefinitionVersion | None: ...


class HostRestoreService:
    """Plans and runs host and pool restores; hangs off ``EstateSession.host_restores``."""

    def __init__(
        self,
        *,
        backend_for: Callable[[HostKey], Backend | None],
        snapshot: Callable[[], EstateSnapshot],
        repository: Callable[[], RecordedDefinitions],
        operations: Operations,
        jobs: Callable[[], JobRecorder | None],
        repoll: Callable[[Sequence[HostKey]], Awaitable[None]],
    ) -> None:
        self._backend_for = backend_for
        self._snapshot = snapshot
        self._repository = repository
        self._operations = operations
        self._jobs = jobs
        self._repoll = repoll

    # -- planning ---------------------------------------------------------------------------

    def pool_order(self, pool: str) -> tuple[HostKey, ...]:
        """The pool's hosts, masters first (the pool's contact point comes back first)."""
        hosts = [h for h in self._snapshot().hosts if h.pool == pool]
        hosts.sort(key=lambda h: HostRole.MASTER not in h.roles)
        return tuple(h.key for h in hosts)

    async def plan(self, host: HostKey, *, start: bool = False) -> HostRestorePlan:
        """What a restore of ``host`` would do; asks the host what it defines now."""
        snapshot = self._snapshot()
        status = snapshot.host(host)
        backend = self._backend_for(host)
        places = await self._repository().definitions_on(host.pool, host.name)
        places.sort(key=lambda p: (_ORDER[p.kind], p.name, p.uuid))
        if status is None or backend is None:
            return HostRestorePlan(host, (), f"{host} is not in the estate", start)
        if Capability.RESTORE not in backend.capabilities or not isinstance(
            backend, DefinitionRestorer
        ):
            return HostRestorePlan(
                host,
                (),
                f"{host} ({backend.address}) cannot define from recorded definitions: its "
                "backend defines no networks, storage pools or VMs (Xen over SSH: vm.cfg "
                "files are not written back; define them by hand from `ovmtui history`)",
                start,
            )
        if status.reachable is not True or status.stale:
            why = status.error or "it has not answered yet"
            return HostRestorePlan(
                host, (), f"{host} is unreachable ({why}): restore it once it answers", start
            )
        if not places:
            return HostRestorePlan(
                host, (), f"the repository holds no definition last seen on {host}", start
            )
        try:
            current = await backend.current_definitions()
        except OvmError as exc:
            return HostRestorePlan(host, (), f"{host} could not say what it defines: {exc}", start)
        steps = tuple(
            self._step(place, host, snapshot, current, backend, start=start) for place in places
        )
        return HostRestorePlan(host, steps, None, start)

    def _step(
        self,
        place: DefinitionPlace,
        host: HostKey,
        snapshot: EstateSnapshot,
        current: Sequence[Definition],
        backend: DefinitionRestorer,
        *,
        start: bool,
    ) -> RestoreStep:
        def refuse(why: str) -> RestoreStep:
            return RestoreStep(
                place.kind, place.name, place.uuid, Verdict.REFUSE, why, False, place.sha256,
                place.since,
            )  # fmt: skip

        def skip(why: str) -> RestoreStep:
            return RestoreStep(
                place.kind, place.name, place.uuid, Verdict.SKIP, why, False, place.sha256,
                place.since,
            )  # fmt: skip

        noun = _NOUN[place.kind]
        for have in current:
            if have.kind is place.kind and have.uuid == place.uuid:
                if have.sha256 == place.sha256:
                    return skip("already defined, identical")
                return skip(
                    "already defined, differently: kept as it is "
                    f"(`ovmtui history {place.name}` shows the recorded versions)"
                )
        for have in current:
            if have.kind is place.kind and have.name == place.name:
                return refuse(
                    f"{host} already has another {noun} named {place.name} ({have.uuid}): "
                    "undefine or rename it first"
                )
        if place.sha256 is None:
            return refuse("no definition of it was ever recorded")
        if place.kind is DefinitionKind.DOMAIN:
            elsewhere = _reported_elsewhere(place, host, snapshot)
            if elsewhere is not None:
                return refuse(elsewhere)
            if place.moved_to is not None:
                return skip(
                    f"it moved to {place.moved_to} later, and no host reports it now (undefined "
                    "there?): not defined here"
                )
        if place.kind is DefinitionKind.DOMAIN:
            begin = place.active and start
            if begin:
                why = "was running: started after"
            elif place.active:
                why = "was running: defined only (ask to start it: --start)"
            else:
                why = "was shut off: defined only"
        else:
            begin = place.active
            why = f"was active: started after (the VMs need their {noun}s)" if begin else ""
        return RestoreStep(
            place.kind,
            place.name,
            place.uuid,
            Verdict.DEFINE,
            why,
            begin,
            place.sha256,
            place.since,
            backend.restore_command(place.kind, place.name, start=begin),
        )

    # -- running ----------------------------------------------------------------------------

    async def run(
        self,
        plan: HostRestorePlan,
        *,
        progress: Callable[[StepOutcome], object] | None = None,
    ) -> HostRestoreOutcome:
        """Define (and start) each step of ``plan`` on the record, in its order; a failed
        step does not stop the others. Then poll the host and say what it confirms."""
        backend = self._backend_for(plan.host)
        if plan.refusal is not None or not isinstance(backend, DefinitionRestorer):
            return HostRestoreOutcome(plan, ())

        async def work() -> tuple[StepOutcome, ...]:
            assert isinstance(backend, DefinitionRestorer)
            outcomes: list[StepOutcome] = []
            for step in plan.to_define:
                outcome = await self._one(plan.host, backend, step)
                outcomes.append(outcome)
                if progress is not None:
                    progress(outcome)
            return tuple(outcomes)

        def listed(outcomes: tuple[StepOutcome, ...]) -> tuple[bool, str]:
            failed = [o for o in outcomes if not o.ok]
            return not failed, f"{len(outcomes) - len(failed)} of {len(outcomes)} defined"

        outcomes = await run_as_job(
            self._jobs(),
            RESTORE_JOB,
            str(plan.host),
            work,
            outcome=listed,
            user=self._operations.user,
        )
        confirmed = await self._confirm(plan.host, backend, outcomes)
        return HostRestoreOutcome(plan, confirmed)

    async def _one(
        self, host: HostKey, backend: DefinitionRestorer, step: RestoreStep
    ) -> StepOutcome:
        what = step.name if step.kind is DefinitionKind.DOMAIN else f"{step.noun} {step.name}"
        operation = Operation(
            RESTORE_OPERATION, step.command, host.pool, host.name, what, step.uuid
        )

        async def work() -> str:
            assert step.sha256 is not None  # a define step has its version
            version = await self._repository().definition_version(step.kind, step.uuid, step.sha256)
            if version is None:
                raise RepositoryError(f"the recorded version {step.sha256[:12]} is gone")
            uuid = await backend.restore_definition(step.kind, version.text)
            if step.start:
                await backend.start_defined(step.kind, uuid)
            return uuid

        def outcome(uuid: str) -> tuple[bool, str]:
            detail = f"defined from version {fmt_sha(step.sha256)}"
            if step.start:
                detail += ", started"
            if uuid != step.uuid:
                detail += f"; the host defined it with UUID {uuid}"
            return True, detail

        try:
            done = await self._operations.run(operation, work, outcome=outcome)
        except OvmError as exc:
            return StepOutcome(step, False, exc.message)
        return StepOutcome(step, True, outcome(done.value)[1])

    async def _confirm(
        self, host: HostKey, backend: DefinitionRestorer, outcomes: tuple[StepOutcome, ...]
    ) -> tuple[StepOutcome, ...]:
        """What the next poll (and the host's own list, for networks and pools) says."""
        if not any(o.ok for o in outcomes):
            return outcomes
        try:
            await self._repoll([host])
            current = {(d.kind, d.uuid): d for d in await backend.current_definitions()}
        except (OvmError, TimeoutError):
            return outcomes
        status = self._snapshot().host(host)
        vms = {vm.uuid.lower(): vm for vm in status.vms} if status is not None else {}
        confirmed: list[StepOutcome] = []
        for outcome in outcomes:
            if not outcome.ok:
                confirmed.append(outcome)
                continue
            step = outcome.step
            if step.kind is DefinitionKind.DOMAIN:
                vm = vms.get(step.uuid)
                seen = vm is not None and (not step.start or vm.state.is_active)
            else:
                have = current.get((step.kind, step.uuid))
                seen = have is not None and (not step.start or have.active)
            confirmed.append(StepOutcome(step, True, outcome.detail, seen))
        return tuple(confirmed)


def fmt_sha(sha256: str | None) -> str:
    return "-" if sha256 is None else sha256[:12]


def _reported_elsewhere(
    place: DefinitionPlace, host: HostKey, snapshot: EstateSnapshot
) -> str | None:
    for status in snapshot.hosts:
        if status.key == host:
            continue
        for vm in status.vms:
            if vm.uuid.lower() != place.uuid:
                continue
            if status.reachable is True and not status.stale:
                if vm.state.is_active:
                    return (
                        f"{status.key} reports it now ({vm.state.value}): two hosts running "
                        "one disk corrupt it"
                    )
                return (
                    f"{status.key} defines it now ({vm.state.value}): two hosts starting the "
                    "same disks corrupt them; undefine it there first"
                )
            why = status.error or "it has not answered"
            return (
                f"last known on {status.key} ({vm.state.value}), which is unreachable ({why}): "
                "it may still be there"
            )
    return None


def since_text(step: RestoreStep) -> str:
    """When the definition was last seen so on its host (local time, as every listing)."""
    return "-" if step.since is None else fmt.timestamp(step.since)
