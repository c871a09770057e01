"""State drift: records no host confirms are flagged, kept, and reconciled on request."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from ovmtui.errors import RepositoryError
from ovmtui.model import EstateDelta, EstateSnapshot, HostStatus, Vm, VmState
from ovmtui.store.backup import list_backups
from ovmtui.store.reconcile import reconcile
from ovmtui.store.repository import Repository
from ovmtui.store.schema import APPLICATION_ID, MIGRATIONS, SCHEMA_VERSION


def vm(name: str, state: VmState = VmState.RUNNING) -> Vm:
    return Vm(f"uuid-{name}", name, state, memory_mib=256)


def host(name: str, *vms: Vm, reachable: bool = True, at: float = 100.0) -> HostStatus:
    return HostStatus("p", name, "test:///x", vms=vms, taken_at=at, reachable=reachable)


def snap(
    *hosts: HostStatus, generation: int = 1, delta: EstateDelta | None = None
) -> EstateSnapshot:
    return EstateSnapshot(hosts, generation=generation, taken_at=200.0, delta=delta)


@pytest.fixture
async def recorded(tmp_path: Path) -> Path:
    """An earlier run saw a (running), b (shut off), c (shutting down) on h1; d on h2."""
    path = tmp_path / "r.sqlite"
    async with await Repository.open(path) as repo:
        await repo.save_snapshot(
            snap(
                host("h1", vm("a"), vm("b", VmState.SHUTOFF), vm("c", VmState.SHUTTING_DOWN)),
                host("h2", vm("d")),
            )
        )
    return path


async def test_vms_recorded_active_that_no_host_reports_are_drift(recorded: Path) -> None:
    async with await Repository.open(recorded) as repo:  # a later run
        # h1 answers with only a; h2 does not answer.
        await repo.save_snapshot(snap(host("h1", vm("a")), host("h2", reachable=False)))
        drifted = await repo.drifted()
        assert [(d.name, d.recorded_state, d.host) for d in drifted] == [
            ("c", VmState.SHUTTING_DOWN, "h1")
        ]
        assert "no host reports it" in drifted[0].describe()
        assert drifted[0].drift_since == 200.0 and drifted[0].seen_at == 100.0
        known = await repo.load_snapshot()
    assert known is not None
    names = sorted(v.name for h in known.hosts for v in h.vms)
    # b was shut off: its going contradicts nothing. d: its host did not answer.
    assert names == ["a", "c", "d"]


async def test_a_vm_seen_going_in_this_run_is_a_change_not_drift(recorded: Path) -> None:
    async with await Repository.open(recorded) as repo:
        await repo.save_snapshot(snap(host("h1", vm("a"), vm("c")), host("h2", vm("d"))))
        # c is destroyed (a transient domain) while we watch: the delta says it went.
        await repo.save_snapshot(
            snap(
                host("h1", vm("a")),
                host("h2", vm("d")),
                generation=2,
                delta=EstateDelta(since=1, removed=("uuid-c",)),
            )
        )
        assert await repo.drifted() == []
        known = await repo.load_snapshot()
    assert known is not None
    assert sorted(v.name for h in known.hosts for v in h.vms) == ["a", "d"]


async def test_drift_through_a_delta_and_cleared_when_a_host_reports_it(recorded: Path) -> None:
    async with await Repository.open(recorded) as repo:
        await repo.save_snapshot(snap(host("h1", vm("a"), vm("c")), host("h2", reachable=False)))
        # h2 answers later, without d: d was recorded by an earlier run, so that is drift.
        await repo.save_snapshot(
            snap(
                host("h1", vm("a"), vm("c")),
                host("h2"),
                generation=2,
                delta=EstateDelta(since=1, removed=("uuid-d",)),
            )
        )
        assert [d.name for d in await repo.drifted()] == ["d"]
        # d shows up on h1 (it had been moved by hand): no longer drift.
        await repo.save_snapshot(
            snap(
                host("h1", vm("a"), vm("c"), vm("d")),
                host("h2"),
                generation=3,
                delta=EstateDelta(since=2, changed=()),
            )
        )
        await repo.save_snapshot(snap(host("h1", vm("a"), vm("c"), vm("d")), generation=9))
        assert await repo.drifted() == []


async def test_reconcile_backs_up_first_forgets_and_journals(recorded: Path) -> None:
    backups = recorded.parent / "backups"
    async with await Repository.open(recorded) as repo:
        await repo.save_snapshot(snap(host("h1", vm("a")), host("h2")))
        assert sorted(d.name for d in await repo.drifted()) == ["c", "d"]
        outcome = await reconcile(repo, ["uuid-c", "uuid-d"], backup_dir=backups, user="ops")
        assert sorted(d.name for d in outcome.forgotten) == ["c", "d"]
        assert await repo.drifted() == []
        entries = await repo.journal_entries()
        assert sorted((e.vm, e.operation, e.ok, e.user) for e in entries) == [
            ("c", "reconcile", True, "ops"),
            ("d", "reconcile", True, "ops"),
        ]
        assert all(str(outcome.backup) in (e.detail or "") for e in entries)
        assert entries[0].command == "ovmtui reconcile uuid-c"
        assert (await repo.verify_journal()).ok
    assert list_backups(backups) == [outcome.backup]
    async with await Repository.open(outcome.backup) as before:
        assert sorted(d.name for d in await before.drifted()) == ["c", "d"]


async def test_a_reconcile_cut_short_never_forgets_without_a_result(
    recorded: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The records go and their results are written in one transaction: a failure (or a
    kill) while the results are written leaves the records, never forgotten unexplained."""
    from ovmtui.store import repository as module

    real = module._append

    async def dies_on_results(db: object, draft: module.JournalRecord) -> int:
        if draft.kind == "finished":
            raise RepositoryError("the process died here")
        return await real(db, draft)  # type: ignore[arg-type]

    async with await Repository.open(recorded) as repo:
        await repo.save_snapshot(snap(host("h1", vm("a")), host("h2")))
        monkeypatch.setattr(module, "_append", dies_on_results)
        with pytest.raises(RepositoryError):
            await reconcile(repo, ["uuid-c", "uuid-d"], backup_dir=recorded.parent / "b", user="o")
        monkeypatch.undo()
        entries = await repo.journal_entries()
        assert [e.ok for e in entries] == [None, None]  # started, no result: honest
        assert sorted(d.name for d in await repo.drifted()) == ["c", "d"]  # nothing forgotten
        assert (await repo.verify_journal()).ok


async def test_reconcile_changes_nothing_when_the_backup_fails(recorded: Path) -> None:
    async with await Repository.open(recorded) as repo:
        await repo.save_snapshot(snap(host("h1", vm("a")), host("h2", vm("d"))))
        blocker = recorded.parent / "not-a-dir"
        blocker.write_text("x")
        with pytest.raises(RepositoryError):
            await reconcile(repo, ["uuid-c"], backup_dir=blocker, user="ops")
        assert [d.name for d in await repo.drifted()] == ["c"]
        assert await repo.journal_entries() == []


async def test_schema_1_repository_migrates_and_keeps_its_data(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite"
    db = sqlite3.connect(path)
    for statement in MIGRATIONS[0]:
        db.execute(statement)
    db.execute("INSERT INTO pools (name) VALUES ('p')")
    db.execute("INSERT INTO hosts (pool, name) VALUES ('p', 'h1')")
    db.execute(
        "INSERT INTO vm_state (uuid, pool, host, name, state, seen_at) "
        "VALUES ('u1', 'p', 'h1', 'old-vm', 'running', 5.0)"
    )
    db.execute(f"PRAGMA application_id = {APPLICATION_ID}")
    db.execute("PRAGMA user_version = 1")
    db.commit()
    db.close()
    async with await Repository.open(path) as repo:
        known = await repo.load_snapshot()
        assert known is not None and [v.name for v in known.hosts[0].vms] == ["old-vm"]
        await repo.save_snapshot(snap(host("h1")))
        assert [d.name for d in await repo.drifted()] == ["old-vm"]
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == len(MIGRATIONS)
    db.close()


async def test_jobs_record_running_and_finished_work_and_spot_dead_owners(
    tmp_path: Path,
) -> None:
    import dataclasses

    path = tmp_path / "r.sqlite"
    async with await Repository.open(path) as repo:
        done = await repo.job_started("bulk-action", "force-off on 200 VMs", user="ops")
        await repo.job_finished(done, ok=True, detail="200 done, 0 failed")
        running = await repo.job_started("export-definitions", "/tmp/d", user="ops")
        jobs = await repo.jobs()
    assert [(j.id, j.kind, j.state) for j in jobs] == [
        (running, "export-definitions", "running"),
        (done, "bulk-action", "done"),
    ]
    assert jobs[1].detail == "200 done, 0 failed" and jobs[1].finished_at is not None
    # The same job, owned by a process that no longer exists: it was interrupted.
    db = sqlite3.connect(path)
    db.execute("UPDATE jobs SET owner = ? WHERE id = ?", (f"999999999@{_hostname()}", running))
    db.commit()
    db.close()
    async with await Repository.open(path) as repo:
        states = {j.id: j.state for j in await repo.jobs()}
    assert states == {running: "interrupted", done: "done"}
    assert dataclasses.fields(jobs[0])  # a plain frozen record


def _hostname() -> str:
    import socket

    return socket.gethostname()


def test_drift_and_reconcile_from_the_command_line(tmp_path: Path) -> None:
    import asyncio
    import json
    import subprocess
    import sys

    path = tmp_path / "r.sqlite"

    async def prepare() -> None:
        async with await Repository.open(path) as repo:
            await repo.save_snapshot(snap(host("h1", vm("a"), vm("c", VmState.SHUTTING_DOWN))))
        async with await Repository.open(path) as repo:
            await repo.save_snapshot(snap(host("h1", vm("a"))))

    asyncio.run(prepare())

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "ovmtui", *args, "--repository", str(path)],
            capture_output=True,
            text=True,
            timeout=60,
        )

    listed = cli("drift", "--json")
    assert listed.returncode == 1  # there is drift: a script can tell
    assert [d["name"] for d in json.loads(listed.stdout)] == ["c"]
    assert "recorded shutting-down on p/h1" in cli("drift").stdout
    refused = cli("reconcile")  # off a terminal, without --yes
    assert refused.returncode == 2 and "--yes" in refused.stderr
    unknown = cli("reconcile", "uuid-a", "--yes")  # a is not in drift
    assert unknown.returncode == 2 and "not in drift: uuid-a" in unknown.stderr
    done = cli("reconcile", "--yes")
    assert done.returncode == 0, done.stderr
    assert "backed up to" in done.stdout and "reconciled: forget c" in done.stdout
    assert cli("drift").returncode == 0
    assert len(list_backups(tmp_path / "backups")) == 1
    audit = json.loads(cli("audit", "--json").stdout)
    assert [(e["vm"], e["operation"], e["command"], e["ok"]) for e in audit] == [
        ("c", "reconcile", "ovmtui reconcile uuid-c", True)
    ]
