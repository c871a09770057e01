"""Shared disks on Xen hosts over SSH, against the fake dom0s: files made on the storage (a
real directory here), vm.cfg edits with their backup, block-attach/detach argv exactly."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from ovmtui.backend.xen_parse.vm_cfg_write import CfgEditRefused
from ovmtui.backend.xen_ssh import XenSshBackend
from ovmtui.errors import ActionFailed, ActionRefused
from ovmtui.model import Disk, VmState
from tests.backend.test_xen_ssh_long import backend_for
from tests.sshfake.fixtures import fake_xen_servers
from tests.sshfake.sshd import HostSpec
from tests.sshfake.xenstate import make_domain

__all__ = ["fake_xen_servers"]  # a pytest fixture

MIB = 1024 * 1024
UUID7 = "0004fb00-0006-0000-aaaa-000000000007"
ODD = "x; touch /tmp/pwned-disk"


def write_cfg(storage: Path, name: str, uuid: str, disk: str | None = None) -> Path:
    config = storage / "running_pool" / name / "vm.cfg"
    config.parent.mkdir(parents=True, exist_ok=True)
    disks = disk or f"disk = ['file:{storage}/running_pool/{name}/System.img,xvda,w']"
    config.write_text(
        f"# made by hand\nname = '{name}'\nuuid = '{uuid}'\nmemory = 512\nvcpus = 1\n"
        f"{disks}\nvif = ['mac=00:16:3e:00:00:07,bridge=xenbr0']\n"
    )
    return config


def server_with(fake_xen_servers: Any, tool: str, *domains: dict[str, Any]) -> Any:
    return fake_xen_servers([HostSpec("xen-d", toolstack=tool, domains=list(domains))])


async def test_create_sparse_and_allocated_never_over_a_file(
    fake_xen_servers: Any, tmp_path: Path
) -> None:
    host = server_with(fake_xen_servers, "xm").hosts[0]
    backend = backend_for(host, shared_storage=str(tmp_path))
    sparse = tmp_path / "sharedDisk" / "quorum.img"
    full = tmp_path / "sharedDisk" / "data.img"
    try:
        how = await backend.create_disk(str(sparse), 64 * MIB, allocate=False)
        assert how in ("qemu-img", "truncate")
        assert sparse.stat().st_size == 64 * MIB
        assert sparse.stat().st_blocks * 512 < MIB  # sparse: nothing written
        how = await backend.create_disk(str(full), 8 * MIB, allocate=True)
        assert how in ("fallocate", "dd")
        assert full.stat().st_size == 8 * MIB and full.stat().st_blocks * 512 >= 8 * MIB
        # Never over an existing file: its bytes stay.
        sparse.write_bytes(b"cluster data")
        with pytest.raises(ActionFailed, match="exists already: not overwritten"):
            await backend.create_disk(str(sparse), 64 * MIB, allocate=True)
        assert sparse.read_bytes() == b"cluster data"
        assert backend.create_disk_command(str(sparse), 64 * MIB, allocate=False).startswith(
            f"qemu-img create -f raw {sparse} {64 * MIB}"
        )
        await backend.delete_disk(str(full))
        assert not full.exists()
        with pytest.raises(ActionFailed, match="cannot delete"):
            await backend.delete_disk(str(full))
    finally:
        await backend.close()


async def test_a_path_from_the_storage_stays_one_argument(
    fake_xen_servers: Any, tmp_path: Path
) -> None:
    host = server_with(fake_xen_servers, "xl").hosts[0]
    backend = backend_for(host)
    pwned = tmp_path / "pwned"
    odd = tmp_path / "sharedDisk" / f"x; touch {pwned}; $(touch {pwned}).img"
    try:
        await backend.create_disk(str(odd), 2 * MIB, allocate=False)
        assert odd.stat().st_size == 2 * MIB
        await backend.delete_disk(str(odd))
        assert not odd.exists()
        assert backend.delete_disk_command(str(odd)).startswith("rm -- '")
        assert not pwned.exists()
    finally:
        await backend.close()


@pytest.mark.parametrize("tool", ["xm", "xl"])
async def test_attach_to_a_powered_off_vm_edits_its_vm_cfg(
    fake_xen_servers: Any, tmp_path: Path, tool: str
) -> None:
    storage = tmp_path / "OVS"
    config = write_cfg(storage, "vm7", UUID7)
    original = config.read_text()
    vm7_domain = make_domain(
        "vm7", uuid=UUID7, domid=None, state="", config=str(config), managed=False
    )
    host = server_with(fake_xen_servers, tool, vm7_domain).hosts[0]
    backend = backend_for(host, shared_storage=str(storage))
    shared = f"{storage}/sharedDisk/quorum.img"
    try:
        vm7 = next(v for v in (await backend.poll()).vms if v.name == "vm7")
        assert vm7.state is VmState.SHUTOFF
        disk = Disk("xvdb", shared, shareable=True)
        host.clear_argv_log()
        change = await backend.plan_disk_change(vm7, disk, attach=True, live=False)
        assert change.before == original and change.after is not None
        assert f"'file:{shared},xvdb,w!'" in change.after
        assert str(config) in change.command and "xvdb" in change.command
        assert config.read_text() == original  # a plan changes nothing
        done = await backend.apply_disk_change(change)
        assert host.argv_log() == []  # no xm/xl for a powered-off VM
        assert config.read_text() == change.after
        backups = sorted(config.parent.glob("vm.cfg.*.bak"))
        assert len(backups) == 1 and backups[0].read_text() == original
        assert backups[0].name in done
        assert not list(config.parent.glob("*.ovmtui-new"))
        # The next poll reads the disk from the vm.cfg (a full poll: the disks changed).
        vm7 = next(v for v in (await backend.poll()).vms if v.name == "vm7")
        held = next(d for d in vm7.disks if d.source == shared)
        assert held.target == "xvdb" and held.shareable and not held.read_only
        # Detach: the file as it was, byte for byte.
        change = await backend.plan_disk_change(vm7, held, attach=False, live=False)
        await backend.apply_disk_change(change)
        assert config.read_text() == original
    finally:
        await backend.close()


async def test_a_vm_cfg_that_does_not_parse_changes_nothing(
    fake_xen_servers: Any, tmp_path: Path
) -> None:
    storage = tmp_path / "OVS"
    config = write_cfg(storage, "vm7", UUID7, disk="disk = ['phy:sda%d,sda1,w' % (7+vmid)]")
    original = config.read_text()
    domain = make_domain("vm7", uuid=UUID7, domid=None, state="", config=str(config), managed=False)
    host = server_with(fake_xen_servers, "xm", domain).hosts[0]
    backend = backend_for(host, shared_storage=str(storage))
    try:
        vm7 = next(v for v in (await backend.poll()).vms if v.name == "vm7")
        with pytest.raises(CfgEditRefused, match=r"vm\.cfg: line 6: a disk entry is not a plain"):
            await backend.plan_disk_change(
                vm7, Disk("xvdb", f"{storage}/sharedDisk/q.img"), attach=True, live=False
            )
        assert config.read_text() == original
        assert sorted(p.name for p in config.parent.iterdir()) == ["vm.cfg"]
    finally:
        await backend.close()


async def test_a_vm_cfg_changed_since_the_plan_is_not_overwritten(
    fake_xen_servers: Any, tmp_path: Path
) -> None:
    storage = tmp_path / "OVS"
    config = write_cfg(storage, "vm7", UUID7)
    domain = make_domain("vm7", uuid=UUID7, domid=None, state="", config=str(config), managed=False)
    host = server_with(fake_xen_servers, "xm", domain).hosts[0]
    backend = backend_for(host, shared_storage=str(storage))
    try:
        vm7 = next(v for v in (await backend.poll()).vms if v.name == "vm7")
        disk = Disk("xvdb", f"{storage}/sharedDisk/q.img")
        change = await backend.plan_disk_change(vm7, disk, attach=True, live=False)
        config.write_text(config.read_text() + "memory = 1024\n")  # someone else's edit
        edited = config.read_text()
        with pytest.raises(ActionFailed, match="changed since it was read: nothing written"):
            await backend.apply_disk_change(change)
        assert config.read_text() == edited
        assert sorted(p.name for p in config.parent.iterdir()) == ["vm.cfg"]
    finally:
        await backend.close()


@pytest.mark.parametrize("tool", ["xm", "xl"])
async def test_hot_plug_into_a_running_vm(fake_xen_servers: Any, tool: str) -> None:
    uuid = "0004fb00-0006-0000-dddd-000000000009"
    host = server_with(fake_xen_servers, tool, make_domain(ODD, uuid=uuid, domid=9)).hosts[0]
    backend: XenSshBackend = backend_for(host, toolstack=tool)
    shared = "/OVS/sharedDisk/quorum.img"
    try:
        vm = next(v for v in (await backend.poll()).vms if v.name == ODD)
        assert backend.hot_plug is None
        with pytest.raises(ActionRefused, match=r"no vm\.cfg known"):
            await backend.plan_disk_change(vm, Disk("xvdb", shared), attach=True, live=False)
        disk = Disk("xvdb", shared, shareable=True)
        change = await backend.plan_disk_change(vm, disk, attach=True, live=True)
        host.clear_argv_log()
        await backend.apply_disk_change(change)
        if tool == "xm":
            expected = [tool, "block-attach", ODD, f"file:{shared}", "xvdb", "w!"]
            assert change.command == f"xm block-attach '{ODD}' file:{shared} xvdb 'w!'"
        else:
            expected = [tool, "block-attach", ODD, f"file:{shared},xvdb,w!"]
        assert host.argv_log() == [expected]
        assert not os.path.exists("/tmp/pwned-disk")  # noqa: ASYNC240 - one stat
        vm = next(v for v in (await backend.poll()).vms if v.name == ODD)
        assert any(d.source == shared and d.target == "xvdb" for d in vm.disks)
        change = await backend.plan_disk_change(vm, disk, attach=False, live=True)
        host.clear_argv_log()
        await backend.apply_disk_change(change)
        assert host.argv_log() == [[tool, "block-detach", ODD, "xvdb"]]
        vm = next(v for v in (await backend.poll()).vms if v.name == ODD)
        assert not any(d.source == shared for d in vm.disks)
        # The host's own refusal, in its words.
        with pytest.raises(ActionFailed, match="not connected"):
            await backend.apply_disk_change(change)
    finally:
        await backend.close()
