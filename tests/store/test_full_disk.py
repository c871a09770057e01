"""A full disk, for real: a small tmpfs filled to the last block.

Read-only commands need no space at all; a command that must write says "no space left on"
the file system that is full (its mount point), never a bare "disk I/O error".
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from ovmtui.store.repository import Repository


def _mount_tmpfs(size: str) -> Path:
    point = Path(tempfile.mkdtemp(prefix="ovmtui-full-"))
    proc = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(point)],
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0:
        point.rmdir()
        pytest.skip(
            "a full disk is tested on a tmpfs of its own, and mounting one is not permitted "
            f"here (needs root or CAP_SYS_ADMIN): {proc.stderr.strip()}"
        )
    return point


@pytest.fixture
def small_disk() -> Iterator[Path]:
    point = _mount_tmpfs("4m")
    try:
        yield point
    finally:
        subprocess.run(["umount", "-l", str(point)], check=False)
        with contextlib.suppress(OSError):
            point.rmdir()


def fill(disk: Path) -> None:
    """Write until the file system refuses: not one block is left."""
    with (disk / "filler").open("wb", buffering=0) as file:
        chunk = b"\0" * 65536
        try:
            while True:
                file.write(chunk)
        except OSError as exc:
            assert exc.errno == errno.ENOSPC
        with contextlib.suppress(OSError):
            while True:
                file.write(b"\0")


def ovmtui(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ovmtui", *args], capture_output=True, text=True, timeout=60
    )


async def _record_things(path: Path) -> None:
    async with await Repository.open(path) as repo:
        record = await repo.journal_started(
            user="ops",
            pool="prod",
            host="ovs01",
            vm="web01",
            uuid=None,
            operation="start",
            command="start web01",
        )
        await repo.journal_finished(record, ok=True, detail=None)
        job = await repo.job_started("bulk-action", "start on 2 VMs", user="ops")
        await repo.job_finished(job, ok=True, detail="2 done, 0 failed")


def _repository_on(disk: Path) -> Path:
    repository = disk / "repository.sqlite"
    proc = ovmtui("inventory", "--demo", "--repository", str(repository))
    assert proc.returncode == 0, proc.stderr
    asyncio.run(_record_things(repository))
    return repository


def test_read_only_commands_work_on_a_full_disk(small_disk: Path) -> None:
    repository = _repository_on(small_disk)
    fill(small_disk)
    for command, expected in [
        (["audit"], "start web01  -> ok"),
        (["audit", "--json"], '"command": "start web01"'),
        (["audit", "verify"], "journal intact: 2 records"),
        (["jobs"], "2 done, 0 failed"),
        (["drift"], "no drift"),
        (["backups"], "no backups in"),
    ]:
        proc = ovmtui(*command, "--repository", str(repository))
        assert (proc.returncode, proc.stderr) == (0, ""), command
        assert expected in proc.stdout, command


def test_a_write_to_a_full_disk_says_no_space_left_there(small_disk: Path) -> None:
    repository = _repository_on(small_disk)
    fill(small_disk)
    proc = ovmtui("inventory", "--demo", "--repository", str(repository))
    assert proc.returncode == 2
    assert f"no space left on {small_disk}" in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr


def test_a_new_repository_on_a_full_disk_says_no_space_left_there(small_disk: Path) -> None:
    fill(small_disk)
    proc = ovmtui("inventory", "--demo", "--repository", str(small_disk / "new.sqlite"))
    assert proc.returncode == 2
    assert f"no space left on {small_disk}" in proc.stderr, proc.stderr


def test_a_backup_to_a_full_disk_names_that_disk(small_disk: Path, tmp_path: Path) -> None:
    repository = tmp_path / "repository.sqlite"
    assert ovmtui("inventory", "--demo", "--repository", str(repository)).returncode == 0
    fill(small_disk)
    target = small_disk / "backups"
    proc = ovmtui("backup", "--repository", str(repository), "--to", str(target))
    assert proc.returncode == 2
    assert f"no space left on {small_disk}" in proc.stderr, proc.stderr
    assert not [p for p in target.glob("*") if p.is_file()]  # no partial backup left
