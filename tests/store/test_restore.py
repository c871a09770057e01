"""Restore: verified first, the current repository backed up, replaced all or nothing."""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ovmtui.errors import RepositoryError
from ovmtui.headless import restore
from ovmtui.model import EstateSnapshot, HostFacts, HostStatus, Vm, VmState
from ovmtui.store.backup import create_backup, list_backups
from ovmtui.store.journal import JournalEntry
from ovmtui.store.repository import Repository
from ovmtui.store.restore import plan_restore, restore_repository, staging_path
from ovmtui.store.schema import APPLICATION_ID


async def make_repository(path: Path, host: str, vms: int = 5) -> None:
    """A repository whose single host's name tells which one it is."""
    async with await Repository.open(path) as repo:
        machines = tuple(
            Vm(f"{host}-u{i}", f"{host}-vm{i}", VmState.RUNNING, memory_mib=512, vcpus=1)
            for i in range(vms)
        )
        status = HostStatus(
            "p",
            host,
            "test:///x",
            facts=HostFacts(memory_mib=4096),
            vms=machines,
            taken_at=1.0,
            reachable=True,
        )
        await repo.save_snapshot(EstateSnapshot((status,), generation=1))
        started = await repo.journal_started(
            user="op",
            pool="p",
            host=host,
            vm=f"{host}-vm0",
            uuid=f"{host}-u0",
            operation="pause",
            command="virsh suspend x",
        )
        await repo.journal_finished(started, ok=True, detail=None)


async def host_names(path: Path) -> list[str]:
    async with await Repository.open(path) as repo:
        snapshot = await repo.load_snapshot()
    assert snapshot is not None
    return [h.name for h in snapshot.hosts]


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
async def old_and_backup(tmp_path: Path) -> tuple[Path, Path]:
    """``repository.sqlite`` (host "old") and a verified backup of another one (host "new")."""
    other = tmp_path / "other" / "repository.sqlite"
    await make_repository(other, "new")
    async with await Repository.open(other) as repo:
        backup = await create_backup(repo, tmp_path / "elsewhere")
    current = tmp_path / "repository.sqlite"
    await make_repository(current, "old")
    return current, backup


async def test_restore_replaces_and_keeps_the_previous(old_and_backup: tuple[Path, Path]) -> None:
    current, backup = old_and_backup
    plan = await plan_restore(current, backup, from_other_repository=True)
    assert plan.current is not None and plan.current.hosts == 1
    assert plan.candidate.verified
    steps: list[str] = []
    outcome = await restore_repository(
        plan, backup_dir=current.parent / "backups", user="alice", progress=steps.append
    )
    assert await host_names(current) == ["new"]
    assert outcome.previous is not None and await host_names(outcome.previous) == ["old"]
    assert steps[-1] == "restored" and any("backing up" in s for s in steps)
    assert not staging_path(current).exists()
    async with await Repository.open(current) as repo:
        entries = await repo.journal_entries()
        verdict = await repo.verify_journal()
    assert verdict.ok
    restored = [e for e in entries if e.operation == "restore"]
    assert len(restored) == 1 and restored[0].ok is True and restored[0].user == "alice"
    assert str(backup) in (restored[0].command or "")
    assert str(outcome.previous) in (restored[0].detail or "")
    # the restored journal kept its own records too
    assert any(e.operation == "pause" and e.host == "new" for e in entries)


async def test_restore_onto_nothing_creates_the_repository(tmp_path: Path) -> None:
    other = tmp_path / "a" / "r.sqlite"
    await make_repository(other, "new")
    async with await Repository.open(other) as repo:
        backup = await create_backup(repo, tmp_path / "b")
    target = tmp_path / "fresh" / "repository.sqlite"
    target.parent.mkdir()
    outcome = await restore_repository(
        await plan_restore(target, backup), backup_dir=tmp_path / "fresh" / "backups", user="u"
    )
    assert outcome.previous is None
    assert await host_names(target) == ["new"]


def _foreign(path: Path) -> None:
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE t (x)")
    db.execute("PRAGMA application_id = 1234")
    db.commit()
    db.close()


def _newer(path: Path) -> None:
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE t (x)")
    db.execute(f"PRAGMA application_id = {APPLICATION_ID}")
    db.execute("PRAGMA user_version = 999")
    db.commit()
    db.close()


def _truncated(path: Path, source: Path) -> None:
    path.write_bytes(source.read_bytes()[:3000])


@pytest.mark.parametrize("kind", ["garbage", "empty", "truncated", "foreign", "newer", "missing"])
async def test_refused_candidates_change_nothing(
    old_and_backup: tuple[Path, Path], kind: str
) -> None:
    current, backup = old_and_backup
    candidate = current.parent / f"{kind}.sqlite"
    if kind == "garbage":
        candidate.write_bytes(b"this is not a database\n" * 100)
    elif kind == "empty":
        candidate.write_bytes(b"")
    elif kind == "truncated":
        _truncated(candidate, backup)
    elif kind == "foreign":
        _foreign(candidate)
    elif kind == "newer":
        _newer(candidate)
    before = digest(current)
    with pytest.raises(RepositoryError) as refused:
        await plan_restore(current, candidate)
    assert "nothing was changed" in str(refused.value) or "not changed" in str(refused.value)
    if kind == "newer":
        assert "newer" in str(refused.value)
    if kind == "foreign":
        assert "not an ovmtui repository" in str(refused.value)
    assert digest(current) == before
    assert not staging_path(current).exists()
    assert not (current.parent / "backups").exists()


async def test_refused_while_another_process_holds_it_open(
    old_and_backup: tuple[Path, Path],
) -> None:
    current, backup = old_and_backup
    plan = await plan_restore(current, backup, from_other_repository=True)
    other = await Repository.open(current)  # the TUI of a colleague, say
    try:
        with pytest.raises(RepositoryError, match="in use by another process"):
            await restore_repository(plan, backup_dir=current.parent / "backups", user="u")
    finally:
        await other.close()
    assert await host_names(current) == ["old"]
    assert not staging_path(current).exists()
    async with await Repository.open(current) as repo:
        entries = await repo.journal_entries(result="failed")
    assert [e.operation for e in entries] == ["restore"]


async def test_declined_confirmation_changes_nothing(old_and_backup: tuple[Path, Path]) -> None:
    current, backup = old_and_backup
    before = digest(current)
    questions: list[str] = []

    def decline(question: str) -> bool:
        questions.append(question)
        return False

    out = _Out()
    assert (
        await restore(current, backup, out, confirm=decline, user="u", from_other_repository=True)
        == 1
    )
    assert "cancelled" in out.text
    assert digest(current) == before
    assert "1 hosts, 5 VMs" in questions[0] and str(backup) in questions[0]


class _Out:
    def __init__(self) -> None:
        self.text = ""

    def write(self, text: str) -> int:
        self.text += text
        return len(text)

    def flush(self) -> None:
        pass


def run_cli(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ovmtui", *args],
        capture_output=True,
        text=True,
        input=stdin,
        timeout=60,
    )


def test_cli_restore_off_a_terminal_needs_yes(tmp_path: Path) -> None:
    import asyncio

    current = tmp_path / "r.sqlite"

    async def prepare() -> Path:
        await make_repository(current, "old")
        async with await Repository.open(current) as repo:
            return await create_backup(repo, tmp_path / "backups")

    backup = asyncio.run(prepare())
    before = digest(current)
    refused = run_cli("--repository", str(current), "restore", str(backup))
    assert refused.returncode == 2 and "--yes" in refused.stderr
    assert digest(current) == before
    bad = tmp_path / "bad.sqlite"
    bad.write_text("nope")
    corrupt = run_cli("--repository", str(current), "restore", str(bad), "--yes")
    assert corrupt.returncode == 2 and "refused" in corrupt.stderr
    assert "Traceback" not in corrupt.stderr
    audit = run_cli("--repository", str(current), "audit", "--result", "failed")
    assert "ovmtui restore" in audit.stdout and "refused" in audit.stdout
    done = run_cli("--repository", str(current), "restore", str(backup), "--yes")
    assert done.returncode == 0, done.stderr
    assert "restored from" in done.stdout
    # Two backups now: the one restored and the copy of the repository it replaced.
    saved = list_backups(tmp_path / "backups")
    assert len(saved) == 2
    # The replaced journal (with the refusal in it) lives on in that copy.
    audit = run_cli("--repository", str(saved[-1]), "audit", "--result", "failed")
    assert "refused" in audit.stdout


KILLS = 60


def test_a_restore_killed_at_any_point_leaves_one_whole_repository(tmp_path: Path) -> None:
    """SIGKILL at random moments and at every step: the old repository without a record of
    the restore, or the new one with it (and the saved copy it names), never anything else."""
    import asyncio
    import random

    current = tmp_path / "r.sqlite"
    pristine = tmp_path / "pristine.sqlite"
    saved_dir = tmp_path / "backups"

    async def prepare() -> tuple[Path, str]:
        # Big enough (~10 MB) that the copy and the backup take a while to kill into.
        await make_repository(tmp_path / "n" / "r.sqlite", "new", vms=30_000)
        async with await Repository.open(tmp_path / "n" / "r.sqlite") as repo:
            backup = await create_backup(repo, tmp_path / "from")
        await make_repository(current, "old", vms=20_000)
        async with await Repository.open(current) as repo:
            await repo.backup_to(pristine)
            return backup, repo.identity

    backup, identity = asyncio.run(prepare())
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    argv = [sys.executable, "-m", "ovmtui", "--repository", str(current), "restore"]
    argv += [str(backup), "--yes", "--from-other-repository"]

    def reset() -> None:
        for name in os.listdir(tmp_path):
            if name.startswith("r.sqlite"):
                (tmp_path / name).unlink()
        shutil.rmtree(saved_dir, ignore_errors=True)
        current.write_bytes(pristine.read_bytes())

    async def outcome() -> tuple[str, list[JournalEntry], str, bool]:
        async with await Repository.open(current) as repo:
            snapshot = await repo.load_snapshot()
            assert snapshot is not None
            entries = await repo.journal_entries()
            return snapshot.hosts[0].name, entries, repo.identity, (await repo.verify_journal()).ok

    def run(kill_after_step: int | None, delay: float) -> subprocess.Popen[str]:
        process = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True, env=env)
        assert process.stdout is not None
        if kill_after_step is None:
            return process
        announced = 0
        while announced <= kill_after_step:
            line = process.stdout.readline()
            if not line:
                break
            announced += line.startswith("restore: ")
        time.sleep(delay)
        process.send_signal(signal.SIGKILL)
        return process

    # One undisturbed run tells how long the steps take and which steps it announces.
    reset()
    process = run(None, 0.0)
    assert process.stdout is not None
    marks: list[float] = []
    for line in process.stdout:
        if line.startswith("restore: "):
            marks.append(time.monotonic())
    assert process.wait(timeout=120) == 0
    span = time.monotonic() - marks[0]
    steps = len(marks)
    assert steps >= 5

    rng = random.Random(11)  # reproducible, yet not chosen by hand
    replacing = steps - 2  # "replacing …" comes just before "restored"
    kill_points = [(i, 0.0) for i in range(steps)]
    # Around the swap itself, densely: that is where a non-atomic replace would tear.
    kill_points += [(replacing, delay) for delay in (0.001, 0.003, 0.006, 0.01, 0.02)]
    kill_points += [(0, rng.uniform(0, span)) for _ in range(KILLS - len(kill_points))]
    seen: set[str] = set()
    for step, delay in kill_points:
        reset()
        process = run(step, delay)
        process.wait(timeout=30)
        assert process.stdout is not None
        process.stdout.close()
        name, entries, now_identity, chain_ok = asyncio.run(outcome())
        where = (step, delay, name)
        assert chain_ok, where
        db = sqlite3.connect(current)
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok", where
        db.close()
        # The place keeps its identity whichever way it went.
        assert now_identity == identity, where
        restores = [e for e in entries if e.operation == "restore"]
        if name == "old":
            assert restores == [], where  # the old, without a word of a restore
        else:
            assert name == "new", where
            (record,) = restores  # the new, with its record
            assert record.ok and str(backup) in record.command, where
            saved = Path(record.detail.split("saved as ")[1].split(";")[0])
            assert saved.exists() and saved.parent == saved_dir, where
        seen.add(name)
    assert len(kill_points) >= 50
    # The kills landed on both sides of the rename; otherwise the test proved little.
    assert seen == {"old", "new"}


async def test_a_candidate_changed_after_the_question_is_refused(
    old_and_backup: tuple[Path, Path],
) -> None:
    current, backup = old_and_backup
    plan = await plan_restore(current, backup, from_other_repository=True)
    _foreign(backup.with_name("foreign.sqlite"))
    backup.write_bytes(backup.with_name("foreign.sqlite").read_bytes())  # swapped meanwhile
    with pytest.raises(RepositoryError, match="not an ovmtui repository"):
        await restore_repository(plan, backup_dir=current.parent / "backups", user="u")
    assert await host_names(current) == ["old"]
    assert not staging_path(current).exists()
    async with await Repository.open(current) as repo:  # the refusal is on the record
        assert [e.operation for e in await repo.journal_entries(result="failed")] == ["restore"]
