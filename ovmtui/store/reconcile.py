"""Reconcile: make the repository agree with the hosts, backed up first and journaled."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from ovmtui.operations import Operation, Operations
from ovmtui.store.backup import create_backup
from ovmtui.store.drift import DriftedVm
from ovmtui.store.repository import Repository


@dataclass(frozen=True, slots=True)
class ReconcileOutcome:
    backup: Path
    forgotten: tuple[DriftedVm, ...]


async def reconcile(
    repo: Repository, uuids: Iterable[str], *, backup_dir: Path, user: str
) -> ReconcileOutcome:
    """Forget the drifted records among ``uuids``; the ones no longer in drift are left be.

    The backup comes first: if it fails, nothing is changed (``RepositoryError``).
    """
    wanted = set(uuids)
    targets = [vm for vm in await repo.drifted() if vm.uuid in wanted]
    backup = await create_backup(repo, backup_dir)
    operations = Operations(user=user, journal=lambda: repo)
    started = [
        (
            vm,
            await operations.begin(
                Operation("reconcile", vm.command, vm.pool, vm.host, vm.name, vm.uuid)
            ),
        )
        for vm in targets
    ]
    forgotten = {
        vm.uuid
        for vm in await repo.forget_drifted(
            {vm.uuid: record.id for vm, record in started},
            detail=lambda vm: f"{vm.change}; backup before: {backup}",
            kept="a host reports it again: nothing to reconcile",
        )
    }
    return ReconcileOutcome(backup, tuple(vm for vm in targets if vm.uuid in forgotten))
