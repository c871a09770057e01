from __future__ import annotations

import asyncio
import errno
import json
import subprocess
import sys
from pathlib import Path

import pytest

from ovmtui.errors import RepositoryError
from ovmtui.model import EstateSnapshot, HostFacts, HostStatus, Vm, VmState
from ovmtui.store.backup import create_backup, inspect_backup, list_backups
from ovmtui.store.repository import Repository
from ovmtui.store.schema import SCHEMA_VERSION


async def seeded(path: Path, records: int = 10) -> Repository:
    repo = await Repository.open(path)
    vms = tuple(Vm(f"u{i}", f"vm{i}", VmState.RUNNING, memory_mib=512) for i in range(5))
    host = HostStatus(
        "p",
        "h1",
        "test:///x",
        facts=HostFacts(memory_mib=4096),
        vms=vms,
        taken_at=1.0,
        reachable=True,
    )
    await repo.save_snapshot(EstateSnapshot((host,), generation=1))
    for i in range(records):
        rid = await repo.journal_started(
            user="op",
            pool="p",
            host="h1",
            vm=f"vm{i % 5}",
            uuid=f"u{i % 5}",
            operation="pause",
            command="x",
        )
        await repo.journal_finished(rid, ok=True, detail=None)
    return repo


async def test_online_backup_while_another_connection_writes(tmp_path: Path) -> None:
    path = tmp_path / "repository.sqlite"
    repo = await seeded(path)
    other = await Repository.open(path)  # as a second ovmtui process would
    try:

        async def writer() -> None:
            for _ in range(50):
                rid = await other.journal_started(
                    user="b",
                    pool="p",
                    host="h1",
                    vm="vm0",
                    uuid="u0",
                    operation="reboot",
                    command="y",
                )
                await other.journal_finished(rid, ok=False, detail="no")

        task = asyncio.create_task(writer())
        backup = await create_backup(repo, tmp_path / "backups")
        await task
    finally:
        await other.close()
        await repo.close()
    assert backup.name.startswith("repository-") and backup.suffix == ".sqlite"
    assert not list((tmp_path / "backups").glob("*.partial"))
    info = await inspect_backup(backup)
    assert info.verified, info.problem
    assert (info.schema_version, info.hosts, info.vms) == (SCHEMA_VERSION, 1, 5)
    assert info.journal_records is not None and 20 <= info.journal_records <= 120
    # A consistent snapshot: the chain verifies (an odd count is fine: the copy may fall
    # between an action's started and finished records, which are two transactions).


async def test_keeps_the_newest(tmp_path: Path) -> None:
    repo = await seeded(tmp_path / "r.sqlite", records=1)
    try:
        made = [
            await create_backup(repo, tmp_path / "b", keep=2, clock=lambda t=t: 1_700_000_000.0 + t)
            for t in range(4)
        ]
    finally:
        await repo.close()
    assert list_backups(tmp_path / "b") == made[2:]


async def test_a_damaged_backup_does_not_verify(tmp_path: Path) -> None:
    repo = await seeded(tmp_path / "r.sqlite", records=30)
    try:
        backup = await create_backup(repo, tmp_path / "b")
    finally:
        await repo.close()
    data = backup.read_bytes()
    backup.write_bytes(data[: len(data) // 2])  # a copy cut short
    info = await inspect_backup(backup)
    assert info.verified is False and info.problem


async def test_full_disk_leaves_the_repository_whole_and_no_partial(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "r.sqlite"
    repo = await seeded(path, records=3)
    real = Repository.backup_to

    async def disk_full(self: Repository, target: Path) -> None:
        await real(self, target)  # the copy is written, then the disk "fills up"
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(Repository, "backup_to", disk_full)
    try:
        with pytest.raises(RepositoryError, match=r"failed: no space left on /"):
            await create_backup(repo, tmp_path / "b")
        assert (await repo.verify_journal()).ok
    finally:
        await repo.close()
    assert list((tmp_path / "b").iterdir()) == []


def test_backup_and_backups_commands(tmp_path: Path) -> None:
    path = tmp_path / "r.sqlite"

    async def make() -> None:
        await (await seeded(path)).close()

    asyncio.run(make())
    run = [sys.executable, "-m", "ovmtui"]
    out = subprocess.run(
        [*run, "backup", "--repository", str(path)], capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    made = Path(out.stdout.strip())
    assert made.exists() and made.parent == tmp_path / "backups"
    listing = subprocess.run(
        [*run, "backups", "--repository", str(path), "--json"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert listing.returncode == 0, listing.stderr
    (entry,) = json.loads(listing.stdout)
    assert entry["path"] == str(made)
    assert entry["verified"] is True and entry["schema_version"] == SCHEMA_VERSION
    assert isinstance(entry["time"], float)
    missing = subprocess.run(
        [*run, "backup", "--repository", str(tmp_path / "none.sqlite")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert missing.returncode == 2 and "no repository there yet" in missing.stderr
