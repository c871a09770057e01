"""Shared disks on the lab's real libvirtd + QEMU hosts: a raw volume of the sharedDisk pool,
attached to the persistent config of two powered-off guests on different hosts, the second
read-write holder of a disk that is not shareable refused, detached, deleted.

vm1 (h1) and vm3 (h2) are forced off for it and started again after, as the lab had them."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from ovmtui.model import PlacedVm, VmState
from ovmtui.services.disk_rules import Rule
from ovmtui.services.session import EstateSession
from ovmtui.services.shared_disks import RuleRefused
from tests.e2e.lab.conftest import Lab

pytestmark = [pytest.mark.lab, pytest.mark.timeout(600)]

GUESTS = {"vm1": "h1", "vm3": "h2"}
MIB = 1024 * 1024


@pytest.fixture
async def session(lab: Lab) -> AsyncIterator[EstateSession]:
    for vm, host in GUESTS.items():
        if lab.domstate(host, vm) != "shut off":
            lab.virsh(host, "destroy", vm)
    try:
        async with EstateSession(lab.estate, user="lab-test") as s:
            await s.poll_once()
            yield s
    finally:
        for vm, host in GUESTS.items():
            if lab.domstate(host, vm) == "shut off":
                lab.virsh(host, "start", vm)


def placed(session: EstateSession, name: str) -> PlacedVm:
    found = next(p for p in session.snapshot.placed_vms() if p.vm.name == name)
    assert found.vm.state is VmState.SHUTOFF
    return found


def config_xml(lab: Lab, vm: str) -> str:
    return lab.virsh(GUESTS[vm], "dumpxml", "--inactive", vm)


async def test_attach_to_two_powered_off_guests_on_two_hosts(
    lab: Lab, session: EstateSession
) -> None:
    disks = session.disks
    pool = placed(session, "vm1").pool
    storage = session.shared_storage(pool)
    assert storage is not None
    single = Path(storage) / "sharedDisk" / "lab-single.img"
    shared = Path(storage) / "sharedDisk" / "lab-shared.img"

    # A disk for one writer: attached to vm1, refused to vm3, detached, deleted.
    plan = await disks.plan_create(pool, "lab-single", 16 * MIB, allocate=False, shareable=False)
    assert "vol-create-as ovmtui-lab-sharedDisk lab-single.img" in plan.command
    await disks.run(plan)
    assert single.stat().st_size == 16 * MIB
    plan = await disks.plan_attach(
        pool, "lab-single", placed(session, "vm1"), read_only=False, live=False
    )
    assert "attach-disk vm1" in plan.command and "--config" in plan.command
    await disks.run(plan)
    assert str(single) in config_xml(lab, "vm1")
    await session.poll_once()
    with pytest.raises(RuleRefused) as refused:
        await disks.plan_attach(
            pool, "lab-single", placed(session, "vm3"), read_only=False, live=False
        )
    assert refused.value.rule is Rule.ONE_WRITER
    await disks.run(await disks.plan_detach(pool, "lab-single", placed(session, "vm1"), live=False))
    assert str(single) not in config_xml(lab, "vm1")
    await session.poll_once()
    await disks.run(await disks.plan_delete(pool, "lab-single"))
    assert not single.exists()

    # A shareable disk: read-write on both, <shareable/> and cache none on both.
    await disks.run(
        await disks.plan_create(pool, "lab-shared", 16 * MIB, allocate=True, shareable=True)
    )
    for vm in GUESTS:
        await disks.run(
            await disks.plan_attach(
                pool, "lab-shared", placed(session, vm), read_only=False, live=False
            )
        )
        await session.poll_once()
    for vm in GUESTS:
        xml = config_xml(lab, vm)
        assert str(shared) in xml and "<shareable/>" in xml and "cache='none'" in xml
    held = await disks.disk(pool, "lab-shared")
    assert sorted((h.vm, h.mode) for h in held.holders) == [
        ("vm1", "rw shared"),
        ("vm3", "rw shared"),
    ]
    with pytest.raises(RuleRefused):
        await disks.plan_delete(pool, "lab-shared")
    for vm in GUESTS:
        await disks.run(
            await disks.plan_detach(pool, "lab-shared", placed(session, vm), live=False)
        )
    await session.poll_once()
    await disks.run(await disks.plan_delete(pool, "lab-shared"))
    assert not shared.exists()
    for vm in GUESTS:
        assert "sharedDisk" not in config_xml(lab, vm)
