"""A migration's flight plan: every check of every candidate target, with its numbers.

Pure functions over what the poller and the backends reported (``HostStatus``,
``MigrationNeeds`` of the VM on its source, ``TargetAnswers`` of each target): no host is
asked here, so every rule has a table test. A check that cannot be answered is *unknown*
(``ok is None``) and never counts as passed: a target is a go only when every check passed.

``xm migrate -l`` checks nothing, not even the target's memory; this is what it skips.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

from ovmtui.format import mib
from ovmtui.model import (
    HostKey,
    HostStatus,
    MigrationNeeds,
    PlacedVm,
    TargetAnswers,
    Vm,
    VmState,
    on_shared_storage,
)

# Memory a target keeps beyond the guest's own (the hypervisor's per-guest overhead, page
# tables, the migration's buffers). Configurable per run; Xen documents a few MiB per GiB
# of guest, QEMU about as much: 256 MiB covers guests up to ~64 GiB with room.
DEFAULT_OVERHEAD_MIB = 256

_LIVE_STATES = frozenset({VmState.RUNNING, VmState.BLOCKED, VmState.PAUSED})


@dataclass(frozen=True, slots=True)
class Check:
    name: str  # reachable, hypervisor, state, memory, cpu, storage, networks, host-local
    ok: bool | None  # None: unknown, which is no go
    detail: str


@dataclass(frozen=True, slots=True)
class TargetVerdict:
    """One candidate target and why it is, or is not, a go."""

    host: HostKey
    checks: tuple[Check, ...]
    free_after_mib: int | None  # the target's free memory once the VM is there

    @property
    def go(self) -> bool:
        return all(check.ok is True for check in self.checks)

    @property
    def memory_left(self) -> str:
        """The target's free memory after the move, as shown: what is short when it is below
        zero (the memory check says by how much counting the overhead)."""
        left = self.free_after_mib
        if left is None:
            return "unknown"
        return mib(left) if left >= 0 else f"{mib(-left)} short"

    @property
    def failed(self) -> tuple[Check, ...]:
        """The checks that did not pass (failed or unknown)."""
        return tuple(check for check in self.checks if check.ok is not True)


# -- each check -------------------------------------------------------------------------------


def check_state(vm: Vm, *, live: bool) -> Check:
    if live:
        ok = vm.state in _LIVE_STATES
        wanted = "running or paused"
    else:
        ok = vm.state is VmState.SHUTOFF
        wanted = "shut off (an offline move takes the definition only)"
    return Check(
        "state", ok, f"{vm.state.value}; a {'live' if live else 'offline'} move needs {wanted}"
    )


def check_reachable(target: HostStatus) -> Check:
    if target.reachable:
        return Check("reachable", True, f"{target.name} answers")
    why = target.error or "not asked yet"
    return Check("reachable", False, f"{target.name} does not answer: {why}")


def check_hypervisor(
    source: HostStatus,
    target: HostStatus,
    needs: MigrationNeeds | None = None,
    answers: TargetAnswers | None = None,
) -> Check:
    """The same hypervisor, and on Xen the same toolstack (xend's `xm` and `xl` do not
    migrate to one another)."""
    mine = source.facts.hypervisor if source.facts else None
    theirs = target.facts.hypervisor if target.facts else None
    if mine is None or theirs is None:
        return Check(
            "hypervisor",
            None,
            f"unknown: {source.name} {mine or '?'}, {target.name} {theirs or '?'}",
        )
    detail = f"{source.name} {mine}, {target.name} {theirs}"
    if mine.lower() != theirs.lower():
        return Check("hypervisor", False, detail)
    here = needs.toolstack if needs is not None else None
    there = answers.toolstack if answers is not None else None
    if here and there:
        detail = f"{source.name} {mine} ({here}), {target.name} {theirs} ({there})"
        if here != there:
            return Check("hypervisor", False, f"{detail}: {here} and {there} cannot migrate")
    return Check("hypervisor", True, detail)


def check_memory(
    needed_mib: int | None,
    target: HostStatus,
    *,
    in_flight_mib: int = 0,
    overhead_mib: int = DEFAULT_OVERHEAD_MIB,
) -> tuple[Check, int | None]:
    """Free memory ≥ the VM's + overhead, less what migrations already on their way there
    will take (ovmtui's own and those the target reports). Also returns what is left."""
    free = target.facts.free_memory_mib if target.facts else None
    if needed_mib is None or free is None:
        what = "the VM's memory" if needed_mib is None else f"{target.name}'s free memory"
        return Check("memory", None, f"unknown: {what} is not known"), None
    available = free - in_flight_mib
    wanted = needed_mib + overhead_mib
    left = available - needed_mib
    pending = f" ({mib(in_flight_mib)} promised to migrations in flight)" if in_flight_mib else ""
    detail = (
        f"{mib(available)} free{pending}; needs {mib(needed_mib)} + {mib(overhead_mib)} overhead"
    )
    if available < wanted:
        detail += f": {mib(wanted - available)} short"
    return Check("memory", available >= wanted, detail), left


def check_cpu(answers: TargetAnswers) -> Check:
    detail = answers.cpu_detail or ("compatible" if answers.cpu_compatible else "not compared")
    if answers.cpu_compatible is None:
        return Check("cpu", None, f"unknown: {detail}")
    return Check("cpu", answers.cpu_compatible, detail)


def check_storage(
    needs: MigrationNeeds, answers: TargetAnswers, shared_storage: str | None
) -> Check:
    """Every disk on the pool's shared storage and visible from the target."""
    if not needs.disk_paths:
        return Check("storage", True, "no disks")
    # A volume or network disk ("pool/vol", "rbd:…") is no path: where it lies cannot be
    # told from here, and only the target's answer (it sees it, or not) counts for it.
    if shared_storage:
        outside = [p for p in needs.disk_paths if on_shared_storage(p, shared_storage) is False]
    else:
        outside = [p for p in needs.disk_paths if p.startswith("/")]
    missing = [p for p in needs.disk_paths if answers.paths_visible.get(p) is False]
    unknown = [p for p in needs.disk_paths if answers.paths_visible.get(p) is None]
    problems = []
    if outside:
        where = (
            f"outside {shared_storage}"
            if shared_storage
            else "with no shared storage set for the pool"
        )
        problems.append(f"{where}: {', '.join(outside)}")
    if missing:
        problems.append(f"not visible from the target: {', '.join(missing)}")
    if problems:
        return Check("storage", False, "; ".join(problems))
    if unknown:
        return Check("storage", None, f"unknown whether the target sees: {', '.join(unknown)}")
    count = len(needs.disk_paths)
    return Check(
        "storage", True, f"{count} disk{'s' if count != 1 else ''} on {shared_storage}, visible"
    )


def check_networks(needs: MigrationNeeds, answers: TargetAnswers) -> Check:
    if not needs.networks:
        return Check("networks", True, "no NICs")
    missing = [n for n in needs.networks if answers.networks_present.get(n) is False]
    unknown = [n for n in needs.networks if answers.networks_present.get(n) is None]
    if missing:
        return Check("networks", False, f"missing on the target: {', '.join(missing)}")
    if unknown:
        return Check("networks", None, f"unknown on the target: {', '.join(unknown)}")
    return Check("networks", True, f"present: {', '.join(needs.networks)}")


def check_host_local(needs: MigrationNeeds) -> Check:
    if needs.host_local:
        return Check("host-local", False, "; ".join(needs.host_local))
    return Check("host-local", True, "nothing tied to the source")


# -- the verdicts ---------------------------------------------------------------------------


def verdict(
    placed: PlacedVm,
    source: HostStatus,
    target: HostStatus,
    needs: MigrationNeeds | None,
    answers: TargetAnswers | None,
    *,
    live: bool,
    shared_storage: str | None,
    in_flight_mib: int = 0,
    overhead_mib: int = DEFAULT_OVERHEAD_MIB,
    failure: str | None = None,
    role: str | None = None,
) -> TargetVerdict:
    """Every check of moving ``placed`` to ``target``. ``needs``/``answers`` None: the host
    could not be asked (``failure`` says why): those checks are unknown, not passed.
    ``role``: why the target's pool roles keep VMs off it (``roles.role_problem``), if so."""
    checks = [] if role is None else [Check("role", False, role)]
    checks += [
        check_reachable(target),
        check_hypervisor(source, target, needs, answers),
        check_state(placed.vm, live=live),
    ]
    incoming = answers.incoming_mib if answers is not None else 0
    memory, left = check_memory(
        needs.memory_mib if needs is not None else placed.vm.memory_mib,
        target,
        in_flight_mib=in_flight_mib + incoming,
        overhead_mib=overhead_mib,
    )
    checks.append(memory)
    if needs is None or answers is None:
        why = failure or "the hosts could not be asked"
        checks += [Check(name, None, f"unknown: {why}") for name in ("cpu", "storage", "networks")]
        if needs is not None:
            checks.append(check_host_local(needs))
    else:
        checks += [
            check_cpu(answers),
            check_storage(needs, answers, shared_storage),
            check_networks(needs, answers),
            check_host_local(needs),
        ]
    return TargetVerdict(target.key, tuple(checks), left)


def best(verdicts: Iterable[TargetVerdict]) -> TargetVerdict | None:
    """The go target with the most free memory left after the move (ties: by name)."""
    go = [v for v in verdicts if v.go and v.free_after_mib is not None]
    return min(go, key=lambda v: (-(v.free_after_mib or 0), v.host), default=None)


def in_flight_by_target(moves: Iterable[tuple[HostKey, int | None]]) -> Mapping[HostKey, int]:
    """Memory promised to each target by migrations under way: (target, MiB) of each."""
    totals: dict[HostKey, int] = {}
    for host, memory in moves:
        totals[host] = totals.get(host, 0) + (memory or 0)
    return totals


def targets_of(source: HostStatus, hosts: Sequence[HostStatus]) -> list[HostStatus]:
    """Every other host of the source's pool: the candidates."""
    return [h for h in hosts if h.pool == source.pool and h.key != source.key]


# -- evacuation ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Placement:
    """Where one VM of an evacuated host goes, or why it goes nowhere."""

    placed: PlacedVm
    verdict: TargetVerdict | None  # the chosen target's; None: no target is a go
    rejected: tuple[TargetVerdict, ...] = ()  # every target's, when none is a go

    @property
    def why_not(self) -> str:
        """Why no target takes it: each target's first failed check."""
        parts = [
            f"{v.host.name}: {v.failed[0].name} ({v.failed[0].detail})"
            for v in self.rejected
            if v.failed
        ]
        return "; ".join(parts) or "no other host in its pool"


@dataclass(frozen=True, slots=True)
class EvacuationPlan:
    source: HostKey
    placements: tuple[Placement, ...]

    @property
    def complete(self) -> bool:
        return all(p.verdict is not None for p in self.placements)

    @property
    def stranded(self) -> tuple[Placement, ...]:
        return tuple(p for p in self.placements if p.verdict is None)


def plan_evacuation(
    source: HostKey,
    vms: Sequence[PlacedVm],
    targets: Sequence[HostStatus],
    judge: Callable[[PlacedVm, HostStatus, int], TargetVerdict],
) -> EvacuationPlan:
    """Every running VM of ``source`` placed on a go target, the biggest first, each on the
    target with the most memory left once the earlier placements are counted
    (``judge(vm, target, promised_mib)`` is ``verdict`` with what the plan already sends
    there counted as in flight). A VM no target takes is named with why: the plan is then
    partial, and says so."""
    promised: dict[HostKey, int] = {}
    placements = []
    for placed in sorted(vms, key=lambda p: (-(p.vm.memory_mib or 0), p.vm.name)):
        verdicts = [judge(placed, target, promised.get(target.key, 0)) for target in targets]
        chosen = best(verdicts)
        if chosen is None:
            placements.append(Placement(placed, None, tuple(verdicts)))
            continue
        promised[chosen.host] = promised.get(chosen.host, 0) + (placed.vm.memory_mib or 0)
        placements.append(Placement(placed, chosen))
    return EvacuationPlan(source, tuple(placements))
