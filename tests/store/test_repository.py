"""The repository on real SQLite files in tmp_path."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import sqlite3
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from ovmtui.config import parse_estate
from ovmtui.errors import OvmError, RepositoryError
from ovmtui.model import (
    Disk,
    EstateDelta,
    EstateSnapshot,
    HostFacts,
    HostRole,
    HostStatus,
    Nic,
    PlacedVm,
    Vm,
    VmState,
)
from ovmtui.store import APPLICATION_ID, SCHEMA_VERSION, Repository

ESTATE = """
[[pools]]
name = "pool-a"
shared_storage = "/OVS"

  [[pools.hosts]]
  name = "h1"
  libvirt = "qemu+ssh://root@h1/system"
  roles = ["master", "vm"]

  [[pools.hosts]]
  name = "h2"
  libvirt = "qemu+ssh://root@h2/system"

[[pools]]
name = "pool-b"

  [[pools.hosts]]
  name = "h3"
  ssh = "root@h3"
  roles = ["utility"]
"""


@pytest.fixture
async def repo(tmp_path: Path) -> AsyncIterator[Repository]:
    repository = await Repository.open(tmp_path / "repo.sqlite")
    yield repository
    await repository.close()


@contextlib.contextmanager
def raw(path: Path) -> Iterator[sqlite3.Connection]:
    """A plain sqlite3 connection, as an operator with the sqlite3 shell would have."""
    db = sqlite3.connect(path, isolation_level=None)
    try:
        yield db
    finally:
        db.close()


# -- opening ---------------------------------------------------------------------------------


async def test_creates_parent_dirs_and_file_in_wal_mode(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "repo.sqlite"
    repository = await Repository.open(path)
    await repository.close()
    assert path.is_file()
    with raw(path) as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert db.execute("PRAGMA application_id").fetchone()[0] == APPLICATION_ID
        tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master")}
    assert {"pools", "hosts", "host_state", "vm_state", "journal", "jobs"} <= tables


async def test_reopen_keeps_data_and_migrations_are_idempotent(tmp_path: Path) -> None:
    path = tmp_path / "repo.sqlite"
    first = await Repository.open(path)
    await first.journal_started(
        user="u", pool="p", host="h", vm="v", uuid=None, operation="start", command="c"
    )
    await first.close()
    for _ in range(3):
        again = await Repository.open(path)
        assert len(await again.journal_entries()) == 1
        await again.close()
    with raw(path) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert db.execute("SELECT count(*) FROM sqlite_master WHERE name='pools'").fetchone() == (
            1,
        )


async def test_empty_file_is_a_new_repository(tmp_path: Path) -> None:
    path = tmp_path / "repo.sqlite"
    path.write_bytes(b"")
    repository = await Repository.open(path)
    assert await repository.load_snapshot() is None
    await repository.close()
    assert path.stat().st_size > 0


async def test_connection_settings(repo: Repository) -> None:
    async with repo._db.execute("PRAGMA foreign_keys") as cursor:
        assert (await cursor.fetchone()) == (1,)
    async with repo._db.execute("PRAGMA busy_timeout") as cursor:
        row = await cursor.fetchone()
        assert row is not None and row[0] > 0


def assert_refused(path: Path, *expected: str) -> None:
    before = path.read_bytes()
    with pytest.raises(RepositoryError) as caught:
        asyncio.run(Repository.open(path))
    message = str(caught.value)
    assert str(path) in message
    for text in expected:
        assert text in message, message
    assert caught.value.title == "Repository problem"
    assert isinstance(caught.value, OvmError)
    assert path.read_bytes() == before, "a refused file must stay byte-identical"
    assert not path.with_name(path.name + "-wal").exists()


def test_refuses_a_file_that_is_not_sqlite(tmp_path: Path) -> None:
    path = tmp_path / "repo.sqlite"
    path.write_text("[[pools]]\nname = 'oops, the estate file'\n" * 20)
    assert_refused(path, "not an SQLite database")


def make_repository(path: Path, journal_records: int = 200) -> None:
    async def fill() -> None:
        repository = await Repository.open(path)
        for number in range(journal_records):
            await repository.journal_started(
                user="u",
                pool="p",
                host="h",
                vm=f"vm{number}",
                uuid=None,
                operation="start",
                command="x" * 300,
            )
        await repository.close()

    asyncio.run(fill())


def test_refuses_a_truncated_database(tmp_path: Path) -> None:
    path = tmp_path / "repo.sqlite"
    make_repository(path)
    data = path.read_bytes()
    assert len(data) > 8192
    path.write_bytes(data[: len(data) // 2])
    assert_refused(path, "damaged", "truncated")


def test_refuses_a_database_cut_inside_its_header(tmp_path: Path) -> None:
    path = tmp_path / "repo.sqlite"
    make_repository(path, journal_records=1)
    path.write_bytes(path.read_bytes()[:60])
    assert_refused(path, "truncated")


def test_refuses_a_newer_schema(tmp_path: Path) -> None:
    path = tmp_path / "repo.sqlite"
    make_repository(path, journal_records=1)
    with raw(path) as db:
        db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 5}")
    assert_refused(
        path,
        f"written by a newer ovmtui: schema {SCHEMA_VERSION + 5}, "
        f"this version knows {SCHEMA_VERSION}",
    )


def test_refuses_a_foreign_database(tmp_path: Path) -> None:
    path = tmp_path / "other.db"
    with raw(path) as db:
        db.execute("CREATE TABLE invoices (id INTEGER PRIMARY KEY, total REAL)")
        db.execute("INSERT INTO invoices (total) VALUES (12.5)")
    assert_refused(path, "without the ovmtui marker", "invoices")


def test_refuses_a_database_of_another_application(tmp_path: Path) -> None:
    path = tmp_path / "other.db"
    with raw(path) as db:
        db.execute("PRAGMA application_id = 1234")
        db.execute("CREATE TABLE t (x)")
    assert_refused(path, "another application")


def test_refuses_a_directory(tmp_path: Path) -> None:
    (tmp_path / "dir.sqlite").mkdir()
    with pytest.raises(RepositoryError, match="directory"):
        asyncio.run(Repository.open(tmp_path / "dir.sqlite"))


# -- pools and hosts ------------------------------------------------------------------------


async def test_first_import_reports_nothing_and_stores_hosts(repo: Repository) -> None:
    assert await repo.import_estate(parse_estate(ESTATE, "estate.toml")) == []
    async with repo._db.execute(
        "SELECT pool, name, address, roles FROM hosts ORDER BY name"
    ) as cursor:
        rows = await cursor.fetchall()
    assert [tuple(row) for row in rows] == [
        ("pool-a", "h1", "qemu+ssh://root@h1/system", "master,vm"),
        ("pool-a", "h2", "qemu+ssh://root@h2/system", ""),
        ("pool-b", "h3", "root@h3", "utility"),
    ]
    assert await repo.import_estate(parse_estate(ESTATE, "estate.toml")) == []


async def test_import_reports_what_differs_and_the_file_wins(repo: Repository) -> None:
    await repo.import_estate(parse_estate(ESTATE, "estate.toml"))
    await repo.save_snapshot(rich_snapshot())
    changed = (
        ESTATE.replace("root@h1/system", "root@h1.new/system")
        .replace('roles = ["master", "vm"]', 'roles = ["vm"]')
        .replace('shared_storage = "/OVS"', 'shared_storage = "/OVS2"')
        .replace('  [[pools.hosts]]\n  name = "h2"\n  libvirt = "qemu+ssh://root@h2/system"\n', "")
        + '\n  [[pools.hosts]]\n  name = "h4"\n  libvirt = "test:///default"\n'
    )
    lines = await repo.import_estate(parse_estate(changed, "estate.toml"))
    assert "pool pool-a: shared storage changed from /OVS to /OVS2" in lines
    assert (
        "host h1: address changed from qemu+ssh://root@h1/system to qemu+ssh://root@h1.new/system"
        in lines
    )
    assert "host h1: roles changed from master, vm to vm" in lines
    assert "host h4 added to pool pool-b" in lines
    assert any(
        line.startswith("host h2 (pool pool-a) is in the repository but no longer")
        for line in lines
    )
    assert len(lines) == 5, lines
    snapshot = await repo.load_snapshot()
    assert snapshot is not None
    h1 = next(h for h in snapshot.hosts if h.name == "h1")
    assert h1.address == "qemu+ssh://root@h1.new/system"
    assert h1.roles == (HostRole.VM,)
    # h2 left the file but keeps its last-known state.
    h2 = next(h for h in snapshot.hosts if h.name == "h2")
    assert h2.taken_at == 1000.0 and h2.vms


async def test_import_moves_a_host_to_another_pool_with_its_state(repo: Repository) -> None:
    await repo.import_estate(parse_estate(ESTATE, "estate.toml"))
    await repo.save_snapshot(rich_snapshot())
    moved = ESTATE.replace(
        '  [[pools.hosts]]\n  name = "h2"\n  libvirt = "qemu+ssh://root@h2/system"\n', ""
    ) + ('\n  [[pools.hosts]]\n  name = "h2"\n  libvirt = "qemu+ssh://root@h2/system"\n')
    lines = await repo.import_estate(parse_estate(moved, "estate.toml"))
    assert lines == ["host h2: moved from pool pool-a to pool pool-b"]
    snapshot = await repo.load_snapshot()
    assert snapshot is not None
    h2 = next(h for h in snapshot.hosts if h.name == "h2")
    assert h2.pool == "pool-b" and h2.taken_at == 1000.0
    assert {vm.name for vm in h2.vms} == {"db1"}


# -- last-known state ----------------------------------------------------------------------

FACTS = HostFacts(
    hostname="h1.example",
    cpu_model="Xeon",
    cpus=32,
    sockets=2,
    cores_per_socket=8,
    threads_per_core=2,
    mhz=2600,
    memory_mib=262144,
    free_memory_mib=100000,
    hypervisor="QEMU",
    hypervisor_version="8.2.0",
    cpu_flags=("vmx", "aes"),
)

WEB = Vm(
    uuid="u-web",
    name="web1",
    state=VmState.RUNNING,
    vcpus=4,
    memory_mib=4096,
    max_memory_mib=8192,
    cpu_time_ns=123456789,
    cpu_percent=12.5,
    started_at=900.25,
    domain_id=7,
    persistent=True,
    disks=(
        Disk("vda", "/OVS/web1.img", format="qcow2", bus="virtio", size_bytes=10 * 2**30),
        Disk("hdc", None, device="cdrom", read_only=True),
        Disk("vdb", "/dev/mapper/shared", device="lun", shareable=True),
    ),
    nics=(Nic("52:54:00:00:00:01", "br0", "virtio"), Nic(None, None)),
    os_type="hvm",
)
APP = Vm(uuid="u-app", name="app1", state=VmState.SHUTOFF, persistent=False, os_type="xen")
DB = Vm(uuid="u-db", name="db1", state=VmState.PAUSED, vcpus=2, memory_mib=2048)


def rich_snapshot(generation: int = 1) -> EstateSnapshot:
    return EstateSnapshot(
        hosts=(
            HostStatus(
                "pool-a",
                "h1",
                "qemu+ssh://root@h1/system",
                roles=(HostRole.MASTER, HostRole.VM),
                facts=FACTS,
                vms=(WEB, APP),
                taken_at=1000.0,
                reachable=True,
            ),
            HostStatus(
                "pool-a",
                "h2",
                "qemu+ssh://root@h2/system",
                facts=HostFacts(hostname="h2"),
                vms=(DB,),
                taken_at=1000.0,
                reachable=True,
            ),
            HostStatus("pool-b", "h3", "root@h3", roles=(HostRole.UTILITY,)),
        ),
        generation=generation,
        taken_at=1000.0,
        pools=("pool-a", "pool-b"),
    )


async def test_disks_recorded_before_format_bus_and_size_still_load(tmp_path: Path) -> None:
    """Rows written before disks kept their format, bus and size hold five fields a disk."""
    path = tmp_path / "repo.sqlite"
    async with await Repository.open(path) as repository:
        await repository.import_estate(parse_estate(ESTATE, "estate.toml"))
        await repository.save_snapshot(rich_snapshot())
    db = sqlite3.connect(path)
    with db:
        (data,) = db.execute("SELECT data FROM vm_state WHERE uuid = 'u-web'").fetchone()
        old = json.loads(data)
        old["disks"] = [disk[:5] for disk in old["disks"]]
        db.execute("UPDATE vm_state SET data = ? WHERE uuid = 'u-web'", (json.dumps(old),))
    db.close()
    async with await Repository.open(path) as repository:
        loaded = await repository.load_snapshot()
    assert loaded is not None
    web = loaded.find_vm("u-web")
    assert web is not None
    assert web.vm.disks == tuple(
        dataclasses.replace(disk, format=None, bus=None, size_bytes=None) for disk in WEB.disks
    )


async def test_nothing_recorded_loads_none(repo: Repository) -> None:
    assert await repo.load_snapshot() is None
    await repo.import_estate(parse_estate(ESTATE, "estate.toml"))
    assert await repo.load_snapshot() is None


async def test_round_trip_of_a_rich_snapshot(tmp_path: Path) -> None:
    path = tmp_path / "repo.sqlite"
    repository = await Repository.open(path)
    await repository.import_estate(parse_estate(ESTATE, "estate.toml"))
    await repository.save_snapshot(rich_snapshot())
    await repository.close()

    repository = await Repository.open(path)
    loaded = await repository.load_snapshot()
    await repository.close()
    assert loaded is not None
    assert loaded.pools == ("pool-a", "pool-b")
    assert [h.name for h in loaded.hosts] == ["h1", "h2", "h3"]
    h1, h2, h3 = loaded.hosts
    assert h1 == HostStatus(
        "pool-a",
        "h1",
        "qemu+ssh://root@h1/system",
        roles=(HostRole.MASTER, HostRole.VM),
        facts=FACTS,
        vms=(APP, WEB),  # sorted by name
        taken_at=1000.0,
        reachable=True,
        stale=True,
    )
    assert h1.vms[1].disks == WEB.disks and isinstance(h1.vms[1].disks, tuple)
    assert isinstance(h1.vms[1].state, VmState)
    assert isinstance(h1.facts, HostFacts) and isinstance(h1.facts.cpu_flags, tuple)
    assert h2.vms == (DB,) and h2.facts == HostFacts(hostname="h2")
    assert h3.reachable is None and h3.vms == () and h3.taken_at is None and h3.stale
    assert h3.roles == (HostRole.UTILITY,)
    assert loaded.taken_at == 1000.0


async def test_save_without_import_registers_the_hosts(repo: Repository) -> None:
    await repo.save_snapshot(rich_snapshot())
    loaded = await repo.load_snapshot()
    assert loaded is not None
    assert [(h.pool, h.name, h.roles) for h in loaded.hosts] == [
        ("pool-a", "h1", (HostRole.MASTER, HostRole.VM)),
        ("pool-a", "h2", ()),
        ("pool-b", "h3", (HostRole.UTILITY,)),
    ]


async def test_an_unreachable_host_keeps_its_last_known_vms_and_time(repo: Repository) -> None:
    await repo.save_snapshot(rich_snapshot())
    first = rich_snapshot()
    down = HostStatus(
        "pool-a",
        "h1",
        "qemu+ssh://root@h1/system",
        vms=(),  # even if a caller passes no VMs, the last known ones stay
        facts=None,
        taken_at=None,
        reachable=False,
        error="connection refused",
        failed_at=2000.0,
    )
    h2_later = HostStatus(
        "pool-a", "h2", "qemu+ssh://root@h2/system", vms=(), taken_at=2000.0, reachable=True
    )
    await repo.save_snapshot(
        EstateSnapshot(hosts=(down, h2_later, first.hosts[2]), generation=2, taken_at=2000.0)
    )
    loaded = await repo.load_snapshot()
    assert loaded is not None
    h1, h2, _ = loaded.hosts
    assert h1.reachable is False
    assert h1.error == "connection refused" and h1.failed_at == 2000.0
    assert h1.taken_at == 1000.0 and h1.facts == FACTS
    assert h1.vms == (APP, WEB)
    # A reachable host's VMs are replaced: db1 is gone from h2.
    assert h2.vms == () and h2.taken_at == 2000.0
    assert h2.facts == HostFacts(hostname="h2")  # no facts this time: the last ones stay


async def test_the_delta_path_writes_only_changes(repo: Repository) -> None:
    await repo.save_snapshot(rich_snapshot(generation=1))
    web_off = Vm(uuid="u-web", name="web1", state=VmState.SHUTOFF, disks=WEB.disks)
    new = Vm(uuid="u-new", name="new1", state=VmState.RUNNING, nics=(Nic("aa", "br1"),))
    base = rich_snapshot()
    h1 = HostStatus(
        "pool-a", "h1", "qemu+ssh://root@h1/system", facts=FACTS, vms=(web_off, new),
        taken_at=1500.0, reachable=True,
    )  # fmt: skip
    h2 = HostStatus(
        "pool-a", "h2", "qemu+ssh://root@h2/system", vms=(DB,), taken_at=1500.0, reachable=True
    )
    delta = EstateDelta(
        since=1,
        changed=(PlacedVm("pool-a", "h1", web_off), PlacedVm("pool-a", "h1", new)),
        removed=("u-app",),
    )
    await repo.save_snapshot(
        EstateSnapshot(hosts=(h1, h2, base.hosts[2]), generation=2, taken_at=1500.0, delta=delta)
    )
    loaded = await repo.load_snapshot()
    assert loaded is not None
    assert loaded.hosts[0].vms == (new, web_off)
    assert loaded.hosts[1].vms == (DB,)
    async with repo._db.execute("SELECT uuid, seen_at FROM vm_state ORDER BY uuid") as cursor:
        seen = dict(tuple(row) for row in await cursor.fetchall())
    assert seen == {"u-db": 1000.0, "u-new": 1500.0, "u-web": 1500.0}  # db1 was not rewritten


async def test_a_delta_that_does_not_continue_the_last_save_is_applied_in_full(
    repo: Repository,
) -> None:
    await repo.save_snapshot(rich_snapshot(generation=1))
    base = rich_snapshot()
    h1 = HostStatus("pool-a", "h1", "x", vms=(WEB,), taken_at=1500.0, reachable=True)
    # The delta claims to continue generation 7, which this repository never saw: APP's
    # removal was in a delta it missed, so the full host list is the truth.
    delta = EstateDelta(since=7, changed=())
    await repo.save_snapshot(EstateSnapshot(hosts=(h1, *base.hosts[1:]), generation=8, delta=delta))
    loaded = await repo.load_snapshot()
    assert loaded is not None and loaded.hosts[0].vms == (WEB,)


async def test_a_vm_that_migrated_moves_host(repo: Repository) -> None:
    await repo.save_snapshot(rich_snapshot())
    base = rich_snapshot()
    h1 = HostStatus("pool-a", "h1", "x", vms=(APP,), taken_at=1500.0, reachable=True)
    h2 = HostStatus("pool-a", "h2", "y", vms=(DB, WEB), taken_at=1500.0, reachable=True)
    await repo.save_snapshot(EstateSnapshot(hosts=(h1, h2, base.hosts[2]), generation=2))
    loaded = await repo.load_snapshot()
    assert loaded is not None
    assert loaded.hosts[0].vms == (APP,)
    assert loaded.hosts[1].vms == (DB, WEB)


async def test_ten_thousand_vms(repo: Repository) -> None:
    hosts = []
    for number in range(50):
        vms = tuple(
            Vm(
                uuid=f"{number:04d}-{index:05d}",
                name=f"vm-{number}-{index}",
                state=VmState.RUNNING,
                vcpus=2,
                memory_mib=2048,
                max_memory_mib=4096,
                persistent=True,
                disks=(Disk("vda", f"/OVS/{number}/{index}.img"),),
                nics=(Nic("52:54:00:00:00:01", "br0", "virtio"),),
                os_type="hvm",
            )
            for index in range(200)
        )
        hosts.append(
            HostStatus("pool", f"h{number}", "addr", vms=vms, taken_at=1.0, reachable=True)
        )
    snapshot = EstateSnapshot(hosts=tuple(hosts), generation=1)
    started = time.perf_counter()
    await repo.save_snapshot(snapshot)
    first = time.perf_counter() - started
    started = time.perf_counter()
    await repo.save_snapshot(snapshot)
    again = time.perf_counter() - started
    started = time.perf_counter()
    loaded = await repo.load_snapshot()
    load = time.perf_counter() - started
    print(f"\n10,000 VMs: save {first:.3f} s, save again {again:.3f} s, load {load:.3f} s")
    assert loaded is not None
    assert sum(len(h.vms) for h in loaded.hosts) == 10_000


# -- the journal ----------------------------------------------------------------------------


async def start(repo: Repository, vm: str, *, user: str = "alice", host: str = "h1") -> int:
    return await repo.journal_started(
        user=user,
        pool="pool-a",
        host=host,
        vm=vm,
        uuid=f"u-{vm}",
        operation="start",
        command=f"virsh -c qemu+ssh://root@{host}/system start {vm}",
    )


async def test_journal_started_finished_and_unfinished(repo: Repository) -> None:
    a = await start(repo, "web1")
    b = await start(repo, "db1", user="bob", host="h2")
    c = await start(repo, "app1")
    await repo.journal_finished(a, ok=True, detail=None)
    await repo.journal_finished(b, ok=False, detail="domain is already running")
    entries = await repo.journal_entries()
    assert [e.id for e in entries] == [a, b, c]
    first, second, third = entries
    assert first.ok is True and first.finished_at is not None and first.result == "ok"
    assert first.command == "virsh -c qemu+ssh://root@h1/system start web1"
    assert first.uuid == "u-web1" and first.pool == "pool-a" and first.operation == "start"
    assert second.ok is False and second.detail == "domain is already running"
    assert third.ok is None and third.finished_at is None and third.result == "unfinished"

    assert [e.id for e in await repo.journal_entries(result="ok")] == [a]
    assert [e.id for e in await repo.journal_entries(result="failed")] == [b]
    assert [e.id for e in await repo.journal_entries(result="unfinished")] == [c]
    assert [e.id for e in await repo.journal_entries(host="h2")] == [b]
    assert [e.id for e in await repo.journal_entries(user="alice")] == [a, c]
    assert [e.id for e in await repo.journal_entries(vm="app1")] == [c]
    assert [e.id for e in await repo.journal_entries(vm="u-web1")] == [a]
    assert [e.id for e in await repo.journal_entries(limit=2)] == [b, c]
    assert await repo.journal_entries(user="alice", result="failed") == []
    verdict = await repo.verify_journal()
    assert verdict.ok and verdict.records == 5


async def test_a_result_is_written_once_and_only_for_a_started_record(repo: Repository) -> None:
    a = await start(repo, "web1")
    done = await repo.journal_finished(a, ok=True, detail=None)
    with pytest.raises(RepositoryError, match="already has a result"):
        await repo.journal_finished(a, ok=False, detail=None)
    with pytest.raises(RepositoryError, match="not a started action"):
        await repo.journal_finished(done, ok=True, detail=None)
    with pytest.raises(RepositoryError, match="not a started action"):
        await repo.journal_finished(999, ok=True, detail=None)
    assert (await repo.verify_journal()).records == 2


async def test_a_crash_leaves_started_no_result(tmp_path: Path) -> None:
    path = tmp_path / "repo.sqlite"
    repository = await Repository.open(path)
    await start(repository, "web1")
    await repository.close()  # the program dies before journal_finished
    repository = await Repository.open(path)
    (entry,) = await repository.journal_entries()
    assert entry.ok is None and entry.result == "unfinished"
    await repository.close()


async def test_the_journal_refuses_careless_edits(repo: Repository) -> None:
    await start(repo, "web1")
    with raw(repo.path) as db:
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            db.execute("UPDATE journal SET detail = 'x'")
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            db.execute("DELETE FROM journal")


def tamper(path: Path, sql: str) -> None:
    """What a determined hand-editor does: drop the guards, then edit."""
    with raw(path) as db:
        db.execute("DROP TRIGGER journal_no_update")
        db.execute("DROP TRIGGER journal_no_delete")
        db.execute(sql)


async def test_verify_names_an_edited_record(repo: Repository) -> None:
    for vm in ("a", "b", "c"):
        await repo.journal_finished(await start(repo, vm), ok=False, detail="boom")
    assert (await repo.verify_journal()).ok
    tamper(repo.path, "UPDATE journal SET detail = 'all fine' WHERE id = 4")
    verdict = await repo.verify_journal()
    assert (verdict.ok, verdict.first_broken, verdict.records) == (False, 4, 4)
    assert verdict.reason is not None and "record 4" in verdict.reason


async def test_verify_names_the_record_after_a_deleted_one(repo: Repository) -> None:
    for vm in ("a", "b", "c"):
        await repo.journal_finished(await start(repo, vm), ok=True, detail=None)
    tamper(repo.path, "DELETE FROM journal WHERE id = 3")
    verdict = await repo.verify_journal()
    assert (verdict.ok, verdict.first_broken) == (False, 4)
    assert verdict.reason is not None and "record 3 is missing" in verdict.reason


async def test_verify_finds_a_deleted_tail_even_after_new_records(repo: Repository) -> None:
    for vm in ("a", "b", "c"):
        await start(repo, vm)
    tamper(repo.path, "DELETE FROM journal WHERE id = 3")
    verdict = await repo.verify_journal()
    assert (verdict.ok, verdict.first_broken) == (False, 3)
    await start(repo, "d")  # gets id 4, not 3: the gap stays visible
    verdict = await repo.verify_journal()
    assert (verdict.ok, verdict.first_broken) == (False, 4)


async def test_two_connections_append_concurrently_without_loss(tmp_path: Path) -> None:
    path = tmp_path / "repo.sqlite"
    one = await Repository.open(path)
    two = await Repository.open(path)

    async def actions(repository: Repository, user: str) -> list[int]:
        ids = []
        for number in range(40):
            started = await start(repository, f"{user}-{number}", user=user)
            await repository.journal_finished(started, ok=number % 3 != 0, detail=None)
            ids.append(started)
        return ids

    first, second = await asyncio.gather(actions(one, "alice"), actions(two, "bob"))
    # Coroutines on one connection too: the repository serialises its own transactions.
    third = await asyncio.gather(*(start(one, f"x{n}", user="carol") for n in range(20)))
    entries = await two.journal_entries()
    assert len(entries) == 100
    assert {e.id for e in entries} == {*first, *second, *third}
    assert sum(e.user == "alice" for e in entries) == 40
    verdict = await one.verify_journal()
    assert verdict.ok and verdict.records == 180, verdict
    await one.close()
    await two.close()


async def test_a_closed_repository_says_so(tmp_path: Path) -> None:
    repository = await Repository.open(tmp_path / "repo.sqlite")
    await repository.close()
    await repository.close()  # idempotent
    with pytest.raises(RepositoryError, match="closed"):
        await repository.journal_entries()


WRITER = """
import asyncio, sys
from pathlib import Path
from ovmtui.store import Repository

async def main(path: str, user: str) -> None:
    repository = await Repository.open(Path(path))
    for number in range(50):
        started = await repository.journal_started(
            user=user, pool="p", host="h", vm=f"{user}{number}", uuid=None,
            operation="start", command="c",
        )
        await repository.journal_finished(started, ok=True, detail=None)
    await repository.close()

asyncio.run(main(sys.argv[1], sys.argv[2]))
"""


async def test_two_processes_share_one_repository(tmp_path: Path) -> None:
    path = tmp_path / "new" / "repo.sqlite"  # both race to create it, too
    processes = [
        await asyncio.create_subprocess_exec(
            sys.executable, "-c", WRITER, str(path), user, stderr=asyncio.subprocess.PIPE
        )
        for user in ("alice", "bob")
    ]
    for process in processes:
        _, stderr = await process.communicate()
        assert process.returncode == 0, stderr.decode()
    repository = await Repository.open(path)
    entries = await repository.journal_entries()
    verdict = await repository.verify_journal()
    await repository.close()
    assert len(entries) == 100 and all(e.ok for e in entries)
    assert verdict.ok and verdict.records == 200, verdict


async def test_a_failed_write_rolls_back_and_is_reported(repo: Repository) -> None:
    await repo.save_snapshot(rich_snapshot())
    with raw(repo.path) as db:
        db.execute(
            "CREATE TRIGGER full BEFORE INSERT ON vm_state "
            "BEGIN SELECT RAISE(ABORT, 'disk full'); END"
        )
    base = rich_snapshot()
    h1 = HostStatus("pool-a", "h1", "x", vms=(WEB,), taken_at=2000.0, reachable=True)
    with pytest.raises(RepositoryError, match="disk full"):
        await repo.save_snapshot(EstateSnapshot(hosts=(h1, *base.hosts[1:]), generation=2))
    loaded = await repo.load_snapshot()
    assert loaded is not None and loaded.hosts[0].vms == (APP, WEB)  # the delete rolled back
    assert loaded.hosts[0].taken_at == 1000.0
