"""`ovmtui migrate` and `ovmtui evacuate`: the flight plan and the moves, from a shell.

Through the same core as the TUI (``EstateSession.migrations``): the same checks, the same
journal. A dry run prints every target's verdict with its checks and changes nothing.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TextIO

from ovmtui import format as fmt
from ovmtui.config import EstateConfig
from ovmtui.errors import ActionRefused
from ovmtui.headless import find_vm, host_key_for, session_for
from ovmtui.model import HostKey, MigrationProgress, PlacedVm
from ovmtui.services.flight_plan import EvacuationPlan, TargetVerdict
from ovmtui.services.migration import (
    FlightPlan,
    MigrationOutcome,
    MigrationService,
    describe_progress,
)

_MARK = {True: "ok ", False: "NO ", None: "?? "}


def plan_json(plan: FlightPlan) -> dict[str, Any]:
    best = plan.best
    return {
        "vm": plan.placed.vm.name,
        "uuid": plan.placed.uuid,
        "source": plan.placed.host,
        "live": plan.live,
        "best": best.host.name if best else None,
        "targets": [_verdict_json(v) for v in plan.verdicts],
    }


def _verdict_json(verdict: TargetVerdict) -> dict[str, Any]:
    return {
        "host": verdict.host.name,
        "go": verdict.go,
        "free_after_mib": verdict.free_after_mib,
        "checks": [{"name": c.name, "ok": c.ok, "detail": c.detail} for c in verdict.checks],
    }


def print_plan(plan: FlightPlan, out: TextIO) -> None:
    kind = "live" if plan.live else "offline (the definition only)"
    out.write(f"{plan.placed.vm.name} on {plan.placed.pool}/{plan.placed.host}, {kind}:\n")
    if not plan.verdicts:
        out.write("  no other host in its pool\n")
    for verdict in plan.verdicts:
        word = "GO" if verdict.go else "NO GO"
        out.write(f"  {verdict.host.name}: {word} (free after: {verdict.memory_left})\n")
        for check in verdict.checks:
            out.write(f"    {_MARK[check.ok]}{check.name}: {check.detail}\n")
    best = plan.best
    if best is not None:
        out.write(
            f"best: {best.host.name} (the most memory left: {fmt.mib(best.free_after_mib)})\n"
        )
    else:
        out.write("no host is a go\n")


def _target(
    config: EstateConfig, plan: FlightPlan, text: str | None
) -> tuple[HostKey, TargetVerdict]:
    """The target asked for (or the best go one), checked to be another host of the pool."""
    placed = plan.placed
    if text is None:
        best = plan.best
        if best is None:
            raise ActionRefused(
                f"no host of {placed.pool} is a go for {placed.vm.name}: see --dry-run; "
                "nothing was done",
                title="No target",
            )
        return best.host, best
    key = host_key_for(config, text)
    if key == placed.host_key:
        raise ActionRefused(f"{placed.vm.name} already runs on {key.name}; nothing was done")
    verdict = plan.verdict_for(key)
    if verdict is None:
        raise ActionRefused(
            f"{key} is not in {placed.vm.name}'s pool ({placed.pool}): a VM moves within its "
            "pool; nothing was done",
            title="Not in the pool",
        )
    return key, verdict


def _progress_printer(out: TextIO) -> Callable[[MigrationProgress], None]:
    on_terminal = out.isatty()

    def show(reading: MigrationProgress) -> None:
        line = describe_progress(reading)
        out.write(f"\r{line}\x1b[K" if on_terminal else f"{line}\n")
        out.flush()

    return show


async def migrate_report(
    config: EstateConfig,
    repository: Path,
    vm: str,
    target: str | None,
    out: TextIO,
    *,
    vm_host: str | None,
    dry_run: bool,
    as_json: bool,
    offline: bool,
    override: str | None,
    confirm: Callable[[str], bool],
    warn: TextIO | None = None,
) -> int:
    """The flight plan of ``vm``, then (unless a dry run) the move; see the module docstring.
    Exit: dry run 0 if some host is a go, else 1; a move 0 if the VM now runs on the target."""
    async with session_for(config, repository, warn) as session:
        snapshot = await session.poll_once()
        where = host_key_for(config, vm_host) if vm_host is not None else None
        placed = find_vm(snapshot, vm, where)
        plan = await session.migrations.plan(placed, live=not offline)
        if dry_run:
            _write_plan(plan, out, as_json=as_json)
            return 0 if plan.best is not None else 1
        key, verdict = _target(config, plan, target)
        _write_plan(plan, out, as_json=as_json)
        if not verdict.go and not (override and override.strip()):
            failed = ", ".join(c.name for c in verdict.failed)
            raise ActionRefused(
                f"{key.name} is no go for {placed.vm.name} ({failed}): nothing was done. "
                "To move it anyway, give --override REASON (the journal keeps it)",
                title="No go",
            )
        command = session.migrations.command(placed, key, live=not offline)
        question = f"Migrate {placed.vm.name} from {placed.host} to {key.name}:\n  $ {command}"
        if not verdict.go:
            question += (
                f"\nOVERRIDE of failed checks ({', '.join(c.name for c in verdict.failed)}): "
                f"{override}"
            )
        if not confirm(question):
            out.write("migration cancelled: nothing was done\n")
            return 1
        outcome = await _move(session.migrations, placed, key, plan, override, out, as_json)
    return 0 if outcome.ok else 1


async def _move(
    migrations: MigrationService,
    placed: PlacedVm,
    key: HostKey,
    plan: FlightPlan,
    override: str | None,
    out: TextIO,
    as_json: bool,
) -> MigrationOutcome:
    progress = None if as_json else _progress_printer(sys.stderr)
    outcome = await migrations.migrate(
        placed, key, live=plan.live, plan=plan, override=override, progress=progress
    )
    if progress is not None and sys.stderr.isatty():
        sys.stderr.write("\n")
    if as_json:
        out.write(json.dumps(_outcome_json(outcome)) + "\n")
    else:
        word = "moved" if outcome.ok else "NOT moved"
        out.write(f"{placed.vm.name}: {word}: {outcome.detail}\n")
    return outcome


def _outcome_json(outcome: MigrationOutcome) -> dict[str, Any]:
    return {
        "vm": outcome.placed.vm.name,
        "uuid": outcome.placed.uuid,
        "source": outcome.placed.host,
        "target": outcome.target.name,
        "ok": outcome.ok,
        "cancelled": outcome.cancelled,
        "seconds": round(outcome.seconds, 1),
        "detail": outcome.detail,
    }


def _write_plan(plan: FlightPlan, out: TextIO, *, as_json: bool) -> None:
    if as_json:
        out.write(json.dumps(plan_json(plan)) + "\n")
    else:
        print_plan(plan, out)


# -- evacuate ---------------------------------------------------------------------------------


def print_evacuation(plan: EvacuationPlan, out: TextIO) -> None:
    out.write(f"evacuate {plan.source}: {len(plan.placements)} running VMs\n")
    for placement in plan.placements:
        vm = placement.placed.vm
        if placement.verdict is not None:
            left = fmt.mib(placement.verdict.free_after_mib)
            out.write(f"  {vm.name} ({fmt.mib(vm.memory_mib)}) -> {placement.verdict.host.name}")
            out.write(f" ({left} free there before it)\n")
        else:
            out.write(f"  {vm.name} ({fmt.mib(vm.memory_mib)}) -> NOWHERE: {placement.why_not}\n")
    if not plan.complete:
        out.write(f"partial: {len(plan.stranded)} VM(s) fit nowhere and would stay\n")


def evacuation_json(plan: EvacuationPlan) -> dict[str, Any]:
    return {
        "host": plan.source.name,
        "complete": plan.complete,
        "moves": [
            {
                "vm": p.placed.vm.name,
                "uuid": p.placed.uuid,
                "target": p.verdict.host.name if p.verdict else None,
                "why_not": None if p.verdict else p.why_not,
            }
            for p in plan.placements
        ],
    }


async def evacuate_report(
    config: EstateConfig,
    repository: Path,
    host: str,
    out: TextIO,
    *,
    dry_run: bool,
    as_json: bool,
    parallel: int,
    confirm: Callable[[str], bool],
    warn: TextIO | None = None,
) -> int:
    """Plan the host's evacuation; then (unless a dry run) run it, ``parallel`` moves at
    once. Exit 0 only when every running VM left the host."""
    key = host_key_for(config, host)
    async with session_for(config, repository, warn) as session:
        await session.poll_once()
        plan = await session.migrations.plan_evacuation(key)
        if as_json:
            out.write(json.dumps(evacuation_json(plan)) + "\n")
        else:
            print_evacuation(plan, out)
        if dry_run:
            return 0 if plan.complete else 1
        moves = [p for p in plan.placements if p.verdict is not None]
        if not moves:
            out.write("nothing to move\n")
            return 0 if plan.complete else 1
        if not confirm(f"Evacuate {key}: {len(moves)} migration(s), {parallel} at once?"):
            out.write("evacuation cancelled: nothing was done\n")
            return 1
        slots = asyncio.Semaphore(max(1, parallel))

        async def one(placed: PlacedVm, target: HostKey) -> MigrationOutcome:
            async with slots:
                outcome = await session.migrations.migrate(placed, target)
                word = "moved" if outcome.ok else "NOT moved"
                out.write(f"{placed.vm.name}: {word}: {outcome.detail}\n")
                return outcome

        outcomes: Sequence[MigrationOutcome] = await asyncio.gather(
            *(one(p.placed, p.verdict.host) for p in moves if p.verdict is not None)
        )
    moved = sum(1 for o in outcomes if o.ok)
    out.write(f"evacuated {moved} of {len(plan.placements)} VM(s) from {key.name}\n")
    return 0 if moved == len(plan.placements) else 1
