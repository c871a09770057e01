"""Whose backup is whose: two repositories sharing one backups/ folder, debris, live reads."""

from __future__ import annotations

import asyncio
import fcntl
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from ovmtui.errors import RepositoryError
from ovmtui.store.backup import create_backup, inspect_backup, list_backups
from ovmtui.store.repository import Repository
from ovmtui.store.restore import plan_restore, restore_repository, staging_path

DATA = Path(__file__).resolve().parent.parent / "data"


def ovmtui(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ovmtui", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )


def test_backups_of_the_demo_and_the_real_repository_stay_apart(tmp_path: Path) -> None:
    """The issue's reproduction: both repositories under $XDG_DATA_HOME/ovmtui/."""
    config = tmp_path / "config" / "ovmtui" / "estate.toml"
    config.parent.mkdir(parents=True)
    config.write_text(
        '[[pools]]\nname = "real"\n\n  [[pools.hosts]]\n  name = "r1"\n'
        f'  libvirt = "test://{DATA / "libvirt-node-small.xml"}"\n'
    )
    env = {
        **os.environ,
        "XDG_CONFIG_HOME": str(tmp_path / "config"),
        "XDG_DATA_HOME": str(tmp_path / "data"),
    }
    for argv in (["inventory"], ["backup"], ["backup"], ["inventory", "--demo"]):
        done = ovmtui(*argv, env=env)
        assert done.returncode in (0, 1), (argv, done.stderr)
    demo = ovmtui("backup", "--demo", "--keep", "1", env=env)
    assert demo.returncode == 0, demo.stderr
    demo_backup = Path(demo.stdout.strip())
    folder = tmp_path / "data" / "ovmtui" / "backups"
    assert demo_backup.parent == folder
    # --keep 1 on the demo's kept the real repository's two.
    assert len(list_backups(folder)) == 3

    listing = ovmtui("backups", "--json", env=env)
    assert listing.returncode == 0, listing.stderr
    rows = json.loads(listing.stdout)
    whose = sorted((row["own"], row["whose"].split(" (")[0]) for row in rows)
    mine = (True, "this repository")
    assert whose == [(False, "another repository"), mine, mine]
    text = ovmtui("backups", env=env).stdout
    assert text.count("of this repository") == 2 and text.count("of another repository") == 1

    real = tmp_path / "data" / "ovmtui" / "repository.sqlite"
    before = real.read_bytes()
    refused = ovmtui("restore", str(demo_backup), "--yes", env=env)
    assert refused.returncode == 2
    assert "another repository" in refused.stderr and "--from-other-repository" in refused.stderr
    assert "Traceback" not in refused.stderr
    assert real.read_bytes()[:100] == before[:100]
    refused_audit = ovmtui("audit", "--result", "failed", env=env).stdout
    assert "another repository" in refused_audit

    done = ovmtui("restore", str(demo_backup), "--yes", "--from-other-repository", env=env)
    assert done.returncode == 0, done.stderr
    # It says what it brings in: the demo's pools and hosts.
    assert "pools not in this repository: prod, dev" in done.stdout
    assert "hosts not in this repository:" in done.stdout and "prod/ovs01" in done.stdout
    assert "drops the hosts it does not have: real/r1" in done.stdout
    audit = ovmtui("audit", "--json", env=env)
    records = json.loads(audit.stdout)
    restore_record = [r for r in records if r["operation"] == "restore" and r["ok"]]
    assert restore_record and "--from-other-repository" in restore_record[-1]["command"]
    assert "another repository" in restore_record[-1]["detail"]
    # The place keeps its identity: the real repository's backups are still its own.
    after = json.loads(ovmtui("backups", "--json", env=env).stdout)
    own = [row for row in after if row["own"]]
    assert len(own) == 3  # its two, and the copy saved before the restore


async def seed(path: Path) -> Repository:
    repo = await Repository.open(path)
    for _ in range(4):
        started = await repo.journal_started(
            user="op", pool=None, host=None, vm=None, uuid=None, operation="pause", command="x"
        )
        await repo.journal_finished(started, ok=True, detail=None)
    return repo


async def test_identity_survives_reopening_and_backups_carry_it(tmp_path: Path) -> None:
    path = tmp_path / "r.sqlite"
    async with await Repository.open(path) as repo:
        identity = repo.identity
        backup = await create_backup(repo, tmp_path / "b")
    async with await Repository.open(path) as again:
        assert again.identity == identity and len(identity) == 32
    async with await Repository.open(tmp_path / "other.sqlite") as other:
        assert other.identity != identity
    info = await inspect_backup(backup)
    assert info.repository_id == identity and info.source == str(path)
    assert backup.name.startswith(f"r-{identity[:12]}-")
    # It holds the archive key: its owner's alone, and so are its backups.
    assert path.stat().st_mode & 0o777 == 0o600
    assert backup.stat().st_mode & 0o777 == 0o600


async def test_a_plain_backup_of_this_repository_restores_without_asking_more(
    tmp_path: Path,
) -> None:
    path = tmp_path / "r.sqlite"
    repo = await seed(path)
    backup = await create_backup(repo, tmp_path / "backups")
    await repo.close()
    plan = await plan_restore(path, backup)
    assert not plan.from_other


async def test_the_restore_question_reads_the_live_repository(tmp_path: Path) -> None:
    """A running ovmtui keeps its latest records in the -wal: the question must count them."""
    path = tmp_path / "r.sqlite"
    repo = await seed(path)
    try:
        backup = await create_backup(repo, tmp_path / "backups")
        for _ in range(3):
            started = await repo.journal_started(
                user="op", pool=None, host=None, vm=None, uuid=None, operation="x", command="y"
            )
            await repo.journal_finished(started, ok=True, detail=None)
        assert path.with_name("r.sqlite-wal").stat().st_size > 0  # still open, not folded in
        plan = await plan_restore(path, backup)
        assert plan.current is not None and plan.current.journal_records == 14
        assert plan.candidate.journal_records == 8
    finally:
        await repo.close()


def _hold(path: Path) -> subprocess.Popen[str]:
    """Another live process holding ``path``'s lock, as a backup or restore at work does."""
    code = (
        "import fcntl, os, sys, time\n"
        f"fd = os.open({str(path)!r}, os.O_RDWR | os.O_CREAT)\n"
        "fcntl.flock(fd, fcntl.LOCK_EX)\n"
        "print('held', flush=True)\n"
        "sys.stdin.read()\n"
    )
    holder = subprocess.Popen(
        [sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
    return holder


async def test_a_backup_removes_dead_backups_debris_and_leaves_live_ones(tmp_path: Path) -> None:
    folder = tmp_path / "backups"
    folder.mkdir()
    dead = folder / "r-0123456789ab-20260101T000000000000Z.sqlite.partial"
    dead.write_bytes(b"half")
    dead.with_name(dead.name + "-journal").write_bytes(b"j")
    orphan = folder / "r-0123456789ab-20260101T000000000001Z.sqlite.partial-journal"
    orphan.write_bytes(b"j")
    live = folder / "r-0123456789ab-20260101T000000000002Z.sqlite.partial"
    live.write_bytes(b"writing")
    holder = _hold(live)
    try:
        repo = await seed(tmp_path / "r.sqlite")
        try:
            made = await create_backup(repo, folder)
        finally:
            await repo.close()
        left = sorted(p.name for p in folder.iterdir())
        assert left == sorted([made.name, live.name])
        assert list_backups(folder) == [made]  # never debris, never work in progress
    finally:
        assert holder.stdin is not None
        holder.stdin.close()
        holder.wait(timeout=10)


async def test_a_restore_removes_a_dead_restores_leftover_and_waits_for_a_live_one(
    tmp_path: Path,
) -> None:
    path = tmp_path / "r.sqlite"
    repo = await seed(path)
    backup = await create_backup(repo, tmp_path / "backups")
    await repo.close()
    staged = staging_path(path)
    staged.write_bytes(b"left by a killed restore")
    holder = _hold(staged)
    try:
        plan = await plan_restore(path, backup)
        with pytest.raises(RepositoryError, match="another restore"):
            await restore_repository(plan, backup_dir=tmp_path / "backups", user="u")
        assert staged.read_bytes() == b"left by a killed restore"  # not pulled from under it
    finally:
        assert holder.stdin is not None
        holder.stdin.close()
        holder.wait(timeout=10)
    outcome = await restore_repository(plan, backup_dir=tmp_path / "backups", user="u")
    assert outcome.previous is not None and not staged.exists()
    assert not [p for p in os.listdir(tmp_path) if ".restoring" in p]


def test_lock_is_what_tells_work_from_debris(tmp_path: Path) -> None:
    """flock on one descriptor does not block SQLite's fcntl locks in the same file."""
    import sqlite3

    from ovmtui.files import claimed

    path = tmp_path / "x.partial"
    with claimed(path) as fd:
        db = sqlite3.connect(path)
        db.execute("CREATE TABLE t (x)")
        db.commit()
        db.close()
        other = os.open(path, os.O_RDWR)
        try:
            try:
                fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                pass
            else:
                raise AssertionError("the lock was not held")
        finally:
            os.close(other)
        assert fd >= 0
    asyncio.run(asyncio.sleep(0))


def test_a_backup_killed_at_any_point_leaves_no_false_backup_and_its_debris_goes(
    tmp_path: Path,
) -> None:
    """SIGKILL ``ovmtui backup`` at random moments: the repository stays whole, every backup
    listed verifies, and the next backup removes what the killed ones left."""
    import random
    import signal
    import sqlite3
    import time

    from ovmtui.model import EstateSnapshot, HostStatus, Vm, VmState

    path = tmp_path / "r.sqlite"
    folder = tmp_path / "backups"

    async def prepare() -> None:
        async with await Repository.open(path) as repo:
            vms = tuple(Vm(f"u{i}", f"vm{i}", VmState.RUNNING) for i in range(20_000))
            status = HostStatus("p", "h", "test:///x", vms=vms, taken_at=1.0, reachable=True)
            await repo.save_snapshot(EstateSnapshot((status,), generation=1))

    asyncio.run(prepare())
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    argv = [sys.executable, "-m", "ovmtui", "--repository", str(path), "backup", "--keep", "3"]
    started = time.monotonic()
    assert subprocess.run(argv, capture_output=True, env=env, timeout=60).returncode == 0
    duration = time.monotonic() - started
    rng = random.Random(7)
    debris_seen = 0
    for kill in range(KILLS):
        process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, env=env)
        if kill % 2:
            time.sleep(rng.uniform(duration * 0.3, duration * 1.1))
        else:
            # Half of them once the copy is being written, wherever the start-up time went.
            deadline = time.monotonic() + 30
            while process.poll() is None and time.monotonic() < deadline:
                if any(name.endswith(".partial") for name in os.listdir(folder)):
                    break
                time.sleep(0.002)
            time.sleep(rng.uniform(0, 0.05))
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
        debris_seen += sum(".partial" in name for name in os.listdir(folder))
        db = sqlite3.connect(path)
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        db.close()
        for backup in list_backups(folder):
            assert ".partial" not in backup.name
            info = asyncio.run(inspect_backup(backup))
            assert info.verified, (backup, info.problem)
    # Kills landed while a backup was being written; otherwise the test proved little.
    assert debris_seen > 0
    done = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=60)
    assert done.returncode == 0, done.stderr
    assert [name for name in os.listdir(folder) if ".partial" in name] == []
    listing = subprocess.run(
        [*argv[:-3], "backups"], capture_output=True, text=True, env=env, timeout=60
    )
    # Rotation keeps its word once a backup completes (a kill between the rename and the
    # pruning may leave one more until then).
    assert ".partial" not in listing.stdout and listing.stdout.count("verified") == 3


KILLS = 60


async def test_a_live_repository_is_not_taken_for_a_backup(tmp_path: Path) -> None:
    """Its newest transactions are in its -wal, which a copy of the main file would miss."""
    path = tmp_path / "r.sqlite"
    await (await seed(path)).close()
    live = await seed(tmp_path / "other.sqlite")  # kept open, as a running ovmtui would
    try:
        with pytest.raises(RepositoryError, match=r"in use .*write-ahead log"):
            await plan_restore(path, tmp_path / "other.sqlite", from_other_repository=True)
    finally:
        await live.close()


def test_odd_paths_and_an_older_schema_for_read_only_commands(tmp_path: Path) -> None:
    """A repository named with URI characters, written by an older ovmtui (schema 2):
    read-only commands upgrade it once where they may, and read it where it is."""
    import sqlite3

    from ovmtui.store.schema import APPLICATION_ID, MIGRATIONS

    folder = tmp_path / "odd?dir#x%41"
    folder.mkdir()
    path = folder / "r.sqlite"
    db = sqlite3.connect(path)
    for statements in MIGRATIONS[:2]:
        for statement in statements:
            db.execute(statement)
    db.execute("PRAGMA user_version = 2")
    db.execute(f"PRAGMA application_id = {APPLICATION_ID}")
    db.commit()
    db.close()
    env = dict(os.environ)
    audit = ovmtui("--repository", str(path), "audit", env=env)
    assert audit.returncode == 0, audit.stderr
    made = ovmtui("--repository", str(path), "backup", env=env)
    assert made.returncode == 0, made.stderr
    assert asyncio.run(inspect_backup(Path(made.stdout.strip()))).verified
