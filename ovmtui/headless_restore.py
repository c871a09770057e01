"""Headless faces of the kept definitions: ``ovmtui history`` and ``ovmtui host|pool restore``.

``history`` only reads the repository (no host is asked). A restore polls the estate once,
prints the plan of each host (what is defined, skipped, refused, and why), asks, then runs
it through the session's ``host_restores`` (each define journaled, the whole a job) and says
what the next poll confirmed. Exit 0 only when nothing was refused or failed.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TextIO

from ovmtui import format as fmt
from ovmtui.config import EstateConfig
from ovmtui.errors import ActionRefused
from ovmtui.headless import host_key_for, session_for, write_table
from ovmtui.model import DefinitionKind, HostKey
from ovmtui.services.host_restore import (
    HostRestoreOutcome,
    HostRestorePlan,
    StepOutcome,
    Verdict,
    fmt_sha,
    since_text,
)
from ovmtui.store.definitions import DefinitionVersion
from ovmtui.store.repository import Repository

EXIT_AMBIGUOUS = 2


# --------------------------------------------------------------------------- history


async def history_report(
    repository: Path,
    vm: str,
    out: TextIO,
    *,
    diff: Sequence[str] | None = None,
    as_json: bool = False,
) -> int:
    """List the recorded versions of a VM's definition (its name or UUID); ``diff``: [] for
    each version against the one before, [A, B] for those two (numbers or SHA-256 prefixes)."""
    async with await Repository.open(repository, read_only=True) as repo:
        found = await repo.vms_with_definitions(vm)
        if not found:
            raise ActionRefused(
                f"no definition of {vm!r} is recorded (a VM's definition is kept from the "
                "first poll that reads it)",
                title="No such VM",
            )
        if len(found) > 1:
            choices = ", ".join(f"{name} ({uuid})" for uuid, name in found)
            out.write(f"{len(found)} VMs are named {vm!r}: {choices}; give its UUID\n")
            return EXIT_AMBIGUOUS
        uuid, name = found[0]
        versions = await repo.definition_versions(DefinitionKind.DOMAIN, uuid)
    pairs = _pairs(versions, diff) if diff is not None else []
    if as_json:
        body: dict[str, Any] = {
            "vm": name,
            "uuid": uuid,
            "versions": [
                {
                    "version": n,
                    "at": v.at,
                    "pool": v.pool,
                    "host": v.host,
                    "name": v.name,
                    "sha256": v.sha256,
                }
                for n, v in enumerate(versions, 1)
            ],
        }
        if diff is not None:
            body["diffs"] = [{"from": a, "to": b, "diff": _diff(versions, a, b)} for a, b in pairs]
        out.write(json.dumps(body) + "\n")
        return 0
    out.write(f"{name} ({uuid}): {len(versions)} version(s)\n")
    rows = [
        [str(n), fmt.timestamp(v.at), f"{v.pool}/{v.host}", v.name, v.short]
        for n, v in enumerate(versions, 1)
    ]
    write_table(out, ["#", "SEEN", "HOST", "NAME", "SHA256"], rows)
    for a, b in pairs:
        out.write(_diff(versions, a, b))
    return 0


def _pairs(versions: Sequence[DefinitionVersion], diff: Sequence[str]) -> list[tuple[int, int]]:
    if not diff:
        return [(n, n + 1) for n in range(1, len(versions))]
    if len(diff) != 2:
        raise ActionRefused("--diff takes no version (each against the one before) or two")
    return [(_version_number(versions, diff[0]), _version_number(versions, diff[1]))]


def _version_number(versions: Sequence[DefinitionVersion], text: str) -> int:
    if text.isdigit() and 1 <= int(text) <= len(versions):
        return int(text)
    matches = [n for n, v in enumerate(versions, 1) if len(text) >= 4 and v.sha256.startswith(text)]
    if len(matches) == 1:
        return matches[0]
    raise ActionRefused(
        f"no single version {text!r}: give its number (1-{len(versions)}) or the start of "
        "its SHA-256 (4 characters at least)",
        title="No such version",
    )


def _diff(versions: Sequence[DefinitionVersion], a: int, b: int) -> str:
    old, new = versions[a - 1], versions[b - 1]
    lines = difflib.unified_diff(
        old.text.splitlines(keepends=True),
        new.text.splitlines(keepends=True),
        fromfile=f"#{a} {old.short} {fmt.timestamp(old.at)} {old.pool}/{old.host}",
        tofile=f"#{b} {new.short} {fmt.timestamp(new.at)} {new.pool}/{new.host}",
    )
    text = "".join(line if line.endswith("\n") else line + "\n" for line in lines)
    return text or f"#{a} and #{b} are identical\n"


# --------------------------------------------------------------------------- restore


async def restore_report(
    config: EstateConfig,
    repository: Path,
    target: str,
    out: TextIO,
    *,
    whole_pool: bool,
    dry_run: bool,
    start: bool,
    as_json: bool,
    confirm: Callable[[str], bool],
    warn: TextIO | None = None,
) -> int:
    """Plan (and unless ``dry_run``, run) the restore of a host, or of every host of a pool
    (masters first). Exit 0 only when nothing is refused and every define is confirmed."""
    if whole_pool:
        if target not in {pool.name for pool in config.pools}:
            known = ", ".join(pool.name for pool in config.pools)
            raise ActionRefused(f"no pool {target!r} in {config.source}; it has {known}")
    else:
        key = host_key_for(config, target)
    async with session_for(config, repository, warn) as session:
        await session.poll_once()
        restores = session.host_restores
        keys = restores.pool_order(target) if whole_pool else (key,)
        plans = [await restores.plan(k, start=start) for k in keys]
        if not as_json:
            for plan in plans:
                print_plan(plan, out)
        refused = any(p.refusal is not None or p.of(Verdict.REFUSE) for p in plans)
        total = sum(len(p.to_define) for p in plans)
        if dry_run or total == 0:
            if as_json:
                out.write(json.dumps({"hosts": [plan_json(p, None) for p in plans]}) + "\n")
            elif total == 0:
                out.write("nothing to define\n")
            return 1 if refused else 0
        where = f"pool {target}" if whole_pool else str(plans[0].host)
        if not confirm(f"Restore {where}: define {total} definition(s)?"):
            out.write("restore cancelled: nothing was defined\n")
            return 1
        outcomes: list[HostRestoreOutcome] = []
        for index, first in enumerate(plans):
            # Planned again just before it runs: a host restored before it may define now
            # what this one would have defined too.
            plan = first if index == 0 else await restores.plan(first.host, start=start)
            if not plan.to_define:
                continue

            def told(outcome: StepOutcome, host: HostKey = plan.host) -> None:
                if not as_json:
                    word = "defined" if outcome.ok else "FAILED"
                    out.write(f"{host} {outcome.step.noun} {outcome.step.name}: {word}: ")
                    out.write(f"{outcome.detail}\n")

            outcome = await restores.run(plan, progress=told)
            outcomes.append(outcome)
            if not as_json:
                for step in outcome.outcomes:
                    if step.ok:
                        out.write(f"{plan.host} {step.step.noun} {step.step.name}: ")
                        out.write(_confirmation(step) + "\n")
                out.write(outcome.summary() + "\n")
    if as_json:
        body = [plan_json(o.plan, o) for o in outcomes]
        out.write(json.dumps({"hosts": body}) + "\n")
    ok = all(o.ok for o in outcomes)
    refused = refused or any(o.plan.refusal or o.plan.of(Verdict.REFUSE) for o in outcomes)
    return 0 if ok and not refused else 1


def _confirmation(outcome: StepOutcome) -> str:
    if outcome.confirmed:
        return "confirmed by the next poll"
    if outcome.confirmed is False:
        return "NOT seen as expected by the next poll: check the host"
    return "not confirmed: the host did not answer the next poll"


def print_plan(plan: HostRestorePlan, out: TextIO) -> None:
    out.write(f"restore of {plan.host}:")
    if plan.refusal is not None:
        out.write(f" refused: {plan.refusal}\n")
        return
    out.write("\n")
    rows = [
        [
            step.verdict.value,
            step.noun,
            step.name,
            fmt_sha(step.sha256),
            since_text(step),
            step.why,
        ]
        for step in plan.steps
    ]
    write_table(out, ["ACTION", "KIND", "NAME", "VERSION", "LAST SEEN", "WHY"], rows)


def plan_json(plan: HostRestorePlan, outcome: HostRestoreOutcome | None) -> dict[str, Any]:
    results = {o.step.uuid: o for o in outcome.outcomes} if outcome is not None else {}
    steps = []
    for step in plan.steps:
        item: dict[str, Any] = {
            "kind": step.kind.value,
            "name": step.name,
            "uuid": step.uuid,
            "action": step.verdict.value,
            "why": step.why,
            "start": step.start,
            "sha256": step.sha256,
            "last_seen": step.since,
            "command": step.command or None,
        }
        result = results.get(step.uuid)
        if result is not None:
            item.update(ok=result.ok, detail=result.detail, confirmed=result.confirmed)
        steps.append(item)
    return {"host": str(plan.host), "refusal": plan.refusal, "steps": steps}
