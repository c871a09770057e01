"""The shared-disk service end to end on a fake Xen dom0: plans, rules, the journal."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from ovmtui.backend.xen_ssh import XenSshBackend
from ovmtui.config import EstateConfig, HostConfig, PoolConfig
from ovmtui.errors import ActionRefused
from ovmtui.model import HostKey, HostRole, PlacedVm
from ovmtui.services.actions import InMemoryJournal
from ovmtui.services.disk_rules import Rule
from ovmtui.services.session import EstateSession
from ovmtui.services.shared_disks import RuleRefused
from tests.backend.test_xen_ssh_disks import write_cfg
from tests.sshfake.fixtures import fake_xen_servers
from tests.sshfake.sshd import HostSpec
from tests.sshfake.xenstate import make_domain

__all__ = ["fake_xen_servers"]  # a pytest fixture

MIB = 1024 * 1024
UUIDS = {
    "vm7": "0004fb00-0006-0000-aaaa-000000000007",
    "vm8": "0004fb00-0006-0000-aaaa-000000000008",
}


@pytest.fixture
async def session(fake_xen_servers: Any, tmp_path: Path) -> Any:
    storage = tmp_path / "OVS"
    domains = []
    for name, uuid in UUIDS.items():
        config = write_cfg(storage, name, uuid)
        domains.append(
            make_domain(name, uuid=uuid, domid=None, state="", config=str(config), managed=False)
        )
    host = fake_xen_servers([HostSpec("xen-a", toolstack="xm", domains=domains)]).hosts[0]
    config = HostConfig(
        "prod", "xen-a", ssh=host.ssh_target, roles=(HostRole.UTILITY,), shared_storage=str(storage)
    )
    estate = EstateConfig((PoolConfig("prod", (config,), str(storage)),), "test")
    backend = XenSshBackend(
        config.key,
        host.ssh_target,
        identity=str(host.client_key),
        known_hosts=str(host.known_hosts),
        shared_storage=str(storage),
    )
    async with EstateSession(estate, backends=[backend], user="tester") as s:
        await s.poll_once()
        yield s


def finished(session: EstateSession) -> list[tuple[str, bool, str | None]]:
    """(operation, ok, detail) of every finished record, in order."""
    journal = session.actions.journal
    assert isinstance(journal, InMemoryJournal)
    records = journal.records
    return [
        (str(records[int(str(r[1])) - 1][6]), bool(r[2]), r[3] if r[3] is None else str(r[3]))
        for r in records
        if r[0] == "finished"
    ]


def vm(session: EstateSession, name: str) -> PlacedVm:
    return next(p for p in session.snapshot.placed_vms() if p.vm.name == name)


async def test_create_attach_refuse_detach_delete(session: EstateSession, tmp_path: Path) -> None:
    disks = session.disks
    plan = await disks.plan_create("prod", "quorum", 16 * MIB, allocate=False, shareable=False)
    assert plan.host == HostKey("prod", "xen-a") and plan.note is None
    assert plan.command.startswith(f"qemu-img create -f raw {tmp_path}/OVS/sharedDisk/quorum.img")
    done = await disks.run(plan)
    assert "created" in done.value
    assert (tmp_path / "OVS" / "sharedDisk" / "quorum.img").stat().st_size == 16 * MIB

    plan = await disks.plan_attach(
        "prod", "quorum", vm(session, "vm7"), read_only=False, live=False
    )
    assert plan.diff is not None and f"+disk = ['file:{tmp_path}" in plan.diff
    assert "quorum.img,xvdb,w'" in plan.diff  # not shareable: plain w
    assert plan.diff.rstrip("\n") in plan.shown
    await disks.run(plan)
    await session.poll_once()
    assert [h.vm for h in (await disks.disk("prod", "quorum")).holders] == ["vm7"]

    # A second read-write holder of a disk that is not shareable: refused, naming the rule.
    with pytest.raises(RuleRefused) as refused:
        await disks.plan_attach("prod", "quorum", vm(session, "vm8"), read_only=False, live=False)
    assert refused.value.rule is Rule.ONE_WRITER and "vm7" in refused.value.message
    # Read-only beside a writer: refused too.
    with pytest.raises(RuleRefused):
        await disks.plan_attach("prod", "quorum", vm(session, "vm8"), read_only=True, live=False)
    # Delete while held: refused.
    with pytest.raises(RuleRefused) as refused:
        await disks.plan_delete("prod", "quorum")
    assert refused.value.rule is Rule.NOT_HELD

    plan = await disks.plan_detach("prod", "quorum", vm(session, "vm7"), live=False)
    await disks.run(plan)
    await session.poll_once()
    assert (await disks.disk("prod", "quorum")).holders == ()
    await disks.run(await disks.plan_delete("prod", "quorum"))
    assert not (tmp_path / "OVS" / "sharedDisk" / "quorum.img").exists()

    assert [(op, ok) for op, ok, _detail in finished(session)] == [
        ("shared-disk-create", True),
        ("shared-disk-attach", True),
        ("shared-disk-detach", True),
        ("shared-disk-delete", True),
    ]


async def test_a_shareable_disk_is_written_by_two_vms(session: EstateSession) -> None:
    disks = session.disks
    await disks.run(
        await disks.plan_create("prod", "cluster", 8 * MIB, allocate=True, shareable=True)
    )
    for name in ("vm7", "vm8"):
        plan = await disks.plan_attach(
            "prod", "cluster", vm(session, name), read_only=False, live=False
        )
        assert "cluster.img,xvdb,w!'" in (plan.diff or "")
        await disks.run(plan)
    await session.poll_once()
    held = await disks.disk("prod", "cluster")
    assert held.shareable and sorted(h.mode for h in held.holders) == ["rw shared", "rw shared"]


async def test_the_rules_are_checked_again_when_it_runs(session: EstateSession) -> None:
    """Planned, then another VM took the disk: the run is refused, and that is on the record."""
    disks = session.disks
    await disks.run(await disks.plan_create("prod", "q2", 8 * MIB, allocate=False, shareable=False))
    first = await disks.plan_attach("prod", "q2", vm(session, "vm7"), read_only=False, live=False)
    second = await disks.plan_attach("prod", "q2", vm(session, "vm8"), read_only=False, live=False)
    await disks.run(first)
    await session.poll_once()
    with pytest.raises(RuleRefused):
        await disks.run(second)
    operation, ok, detail = finished(session)[-1]
    assert operation == "shared-disk-attach" and not ok and "one read-write" in (detail or "")


async def test_read_only_refuses_and_the_utility_host_is_said(session: EstateSession) -> None:
    disks = session.disks
    plan = await disks.plan_create("prod", "ro", 8 * MIB, allocate=False, shareable=False)
    session.actions.read_only = True
    with pytest.raises(ActionRefused, match="read-only"):
        await disks.run(plan)
    with pytest.raises(ActionRefused, match="no shared_storage"):
        await disks.plan_create("nowhere", "x", 8 * MIB, allocate=False, shareable=False)
