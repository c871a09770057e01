"""Shared disks over libvirt: volumes of the sharedDisk pool on the test driver, the disk XML
and the virsh commands shown (the attach itself runs on the lab: the test driver has none)."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import libvirt
import pytest

from ovmtui.backend import libvirt_disks
from ovmtui.backend.libvirt import LibvirtBackend
from ovmtui.errors import ActionFailed, ActionRefused
from ovmtui.model import Disk, HostKey, Vm, VmState

URI = "test:///default"
MIB = 1024 * 1024


async def test_volumes_are_created_once_and_deleted(tmp_path: Path) -> None:
    backend = LibvirtBackend(HostKey("prod", "h1"), URI)
    path = f"{tmp_path}/OVS/sharedDisk/quorum.img"
    try:
        assert "storageVolCreateXML" in await backend.create_disk(path, 64 * MIB, allocate=False)
        with pytest.raises(ActionFailed, match="exists already: not overwritten"):
            await backend.create_disk(path, 64 * MIB, allocate=True)
        conn = libvirt.open(URI)
        try:
            pool = conn.storagePoolLookupByName("ovmtui-prod-sharedDisk")
            assert pool.isActive() and pool.listVolumes() == ["quorum.img"]
            assert ET.fromstring(pool.XMLDesc(0)).findtext("target/path") == str(Path(path).parent)
            info = pool.storageVolLookupByName("quorum.img").info()
            assert info[1] == 64 * MIB  # capacity
        finally:
            conn.close()
        await backend.delete_disk(path)
        with pytest.raises(ActionFailed, match="does not exist"):
            await backend.delete_disk(path)
    finally:
        await backend.close()


async def test_the_test_driver_refuses_to_attach_with_why() -> None:
    backend = LibvirtBackend(HostKey("prod", "h1"), URI)
    vm = Vm("6695eb01-f6a4-8304-79aa-97f2502e193f", "test", VmState.RUNNING)
    try:
        disk = Disk("vdb", "/OVS/sharedDisk/q.img", shareable=True)
        change = await backend.plan_disk_change(vm, disk, attach=True, live=True)
        with pytest.raises(ActionRefused, match="cannot attach or detach devices"):
            await backend.apply_disk_change(change)
    finally:
        await backend.close()


def test_disk_xml_of_a_shared_disk() -> None:
    shared = ET.fromstring(
        libvirt_disks.disk_xml(Disk("vdb", "/OVS/sharedDisk/q'x.img", shareable=True))
    )
    assert shared.find("shareable") is not None and shared.find("readonly") is None
    driver = shared.find("driver")
    assert driver is not None and driver.get("cache") == "none" and driver.get("type") == "raw"
    assert shared.find("source").get("file") == "/OVS/sharedDisk/q'x.img"  # type: ignore[union-attr]
    assert shared.find("target").get("bus") == "virtio"  # type: ignore[union-attr]
    plain = ET.fromstring(libvirt_disks.disk_xml(Disk("vdc", "/x.img", read_only=True)))
    assert plain.find("readonly") is not None and plain.find("shareable") is None
    assert plain.find("driver").get("cache") is None  # type: ignore[union-attr]


def test_commands_shown() -> None:
    disk = Disk("vdb", "/OVS/sharedDisk/x; touch y.img", shareable=True)
    assert libvirt_disks.disk_command("qemu:///system", "vm 1", disk, attach=True, live=False) == (
        "virsh -c qemu:///system attach-disk 'vm 1' '/OVS/sharedDisk/x; touch y.img' vdb "
        "--driver qemu --subdriver raw --targetbus virtio --mode shareable --cache none --config"
    )
    assert libvirt_disks.disk_command("qemu:///system", "vm1", disk, attach=False, live=True) == (
        "virsh -c qemu:///system detach-disk vm1 vdb --config --live"
    )
    assert libvirt_disks.create_command(
        "qemu:///system", "prod", "/OVS/sharedDisk/q.img", MIB, allocate=False
    ) == (
        "virsh -c qemu:///system vol-create-as ovmtui-prod-sharedDisk q.img 1048576 "
        "--format raw --allocation 0"
    )
