"""The storage's domain: who uses an entry (from the snapshot), the rows folded with the
library, and the pick of the utility host."""

from __future__ import annotations

from ovmtui.model import Disk, EstateSnapshot, HostRole, HostStatus, Vm, VmState
from ovmtui.services.utility_host import pick_utility_host
from ovmtui.storage_model import (
    FOLDERS,
    Resource,
    ResourceKind,
    ResourceStatus,
    StorageEntry,
    UseMode,
    storage_rows,
    used_by,
)

ROOT = "/OVS"


def _host(
    name: str,
    vms: tuple[Vm, ...] = (),
    *,
    pool: str = "p1",
    roles: tuple[HostRole, ...] = (),
    reachable: bool | None = True,
) -> HostStatus:
    return HostStatus(pool, name, name, roles=roles, vms=vms, reachable=reachable)


def _vm(name: str, state: VmState, *disks: Disk, config: str | None = None) -> Vm:
    return Vm(f"uuid-{name}", name, state, disks=disks, config_path=config)


def _entry(kind: ResourceKind, name: str) -> StorageEntry:
    return StorageEntry(kind, name, f"{ROOT}/{kind.folder}/{name}")


QUORUM = _entry(ResourceKind.SHARED_DISK, "quorum.img")
WEB = _entry(ResourceKind.VM, "web01")
TEMPLATE = _entry(ResourceKind.TEMPLATE, "OVM_EL5")


def test_users_are_the_vms_defined_on_an_entry_and_those_holding_it() -> None:
    web = _vm(
        "web01",
        VmState.RUNNING,
        Disk("xvda", f"{ROOT}/running_pool/web01/System.img"),
        Disk("xvdb", f"{ROOT}/sharedDisk/quorum.img", shareable=True),
        config=f"{ROOT}/running_pool/web01/vm.cfg",
    )
    db = _vm(
        "db01",
        VmState.SHUTOFF,
        Disk("xvdb", f"{ROOT}/sharedDisk//quorum.img", read_only=True),
    )
    other_pool = _vm("elsewhere", VmState.RUNNING, Disk("xvdb", f"{ROOT}/sharedDisk/quorum.img"))
    snapshot = EstateSnapshot(
        (_host("h1", (web,)), _host("h2", (db,)), _host("h9", (other_pool,), pool="p2"))
    )
    users = used_by(snapshot, "p1", [QUORUM, WEB, TEMPLATE])
    assert [(u.vm, u.mode, u.state) for u in users[QUORUM.path]] == [
        ("db01", UseMode.READ_ONLY, VmState.SHUTOFF),
        ("web01", UseMode.READ_WRITE, VmState.RUNNING),
    ]
    # Its own folder: defined there and holding its system disk there: rw outranks.
    assert [(u.vm, u.mode) for u in users[WEB.path]] == [("web01", UseMode.READ_WRITE)]
    assert TEMPLATE.path not in users


def test_a_vm_seen_on_two_hosts_counts_once() -> None:
    vm = _vm("mover", VmState.RUNNING, Disk("xvda", f"{ROOT}/sharedDisk/quorum.img"))
    snapshot = EstateSnapshot((_host("h1", (vm,)), _host("h2", (vm,))))
    assert len(used_by(snapshot, "p1", [QUORUM])[QUORUM.path]) == 1


def test_rows_fold_the_library_and_keep_what_the_storage_lost() -> None:
    gone = Resource(
        ResourceKind.ISO,
        "p1",
        f"{ROOT}/iso_pool/old",
        "old",
        ResourceStatus.APPROVED,
        missing_since=5.0,
    )
    known = Resource(ResourceKind.TEMPLATE, "p1", TEMPLATE.path, "OVM_EL5", ResourceStatus.PENDING)
    foreign = Resource(ResourceKind.TEMPLATE, "p2", QUORUM.path, "x", ResourceStatus.APPROVED)
    rows = storage_rows(EstateSnapshot(()), "p1", [QUORUM, TEMPLATE], [gone, known, foreign])
    assert [(r.kind, r.name, r.status_text) for r in rows] == [
        (ResourceKind.TEMPLATE, "OVM_EL5", "pending"),
        (ResourceKind.ISO, "old", "approved (missing)"),
        (ResourceKind.SHARED_DISK, "quorum.img", "unregistered"),
    ]
    assert rows[1].entry is None


def test_status_texts() -> None:
    base = Resource(ResourceKind.ISO, "p", "/x", "x", ResourceStatus.IMPORTING, percent=41.6)
    assert base.status_text == "importing 42 %"
    failed = Resource(ResourceKind.ISO, "p", "/x", "x", ResourceStatus.FAILED, why="404")
    assert failed.status_text == "failed: 404"
    assert list(FOLDERS.values()) == [
        "running_pool",
        "seed_pool",
        "iso_pool",
        "sharedDisk",
        "publish_pool",
    ]


def test_the_utility_host_first_then_any_that_answers_then_none() -> None:
    util_down = _host("u1", roles=(HostRole.UTILITY,), reachable=False)
    util_up = _host("u2", roles=(HostRole.UTILITY,))
    plain = _host("h1")
    down = _host("h2", reachable=False)

    chosen = pick_utility_host(EstateSnapshot((plain, util_down, util_up)), "p1")
    assert (chosen.name, chosen.note) == ("u2", None)

    chosen = pick_utility_host(EstateSnapshot((util_down, down, plain)), "p1")
    assert chosen.name == "h1"
    assert chosen.note == "no utility host answered (u1): read through h1"

    chosen = pick_utility_host(EstateSnapshot((plain,)), "p1")
    assert chosen.note == "the pool has no utility host: read through h1"

    chosen = pick_utility_host(EstateSnapshot((util_down, down)), "p1")
    assert chosen.host is None
    assert chosen.note == "no utility host answered (u1), and no host of pool p1 answers"

    assert pick_utility_host(EstateSnapshot((plain,)), "nope").note == "pool nope has no hosts"
