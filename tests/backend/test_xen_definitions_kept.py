"""Xen hosts' vm.cfg files kept as definitions (read by full polls anyway), and a host restore
of a Xen host refused with why: ovmtui does not write vm.cfg files back. A real OpenSSH sshd
serving a fake xm host, its shared storage a folder of this test."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from ovmtui.backend.xen_ssh import XenSshBackend
from ovmtui.config import EstateConfig, HostConfig, PoolConfig
from ovmtui.model import DefinitionKind, HostKey
from ovmtui.services.session import EstateSession
from tests.sshfake.fixtures import fake_xen_servers
from tests.sshfake.sshd import HostSpec
from tests.sshfake.xenstate import make_domain

__all__ = ["fake_xen_servers"]  # a pytest fixture

UUID = "0004fb00-0006-0000-aaaa-000000000007"
CFG = (
    f"name = 'vm7'\nuuid = '{UUID}'\nmemory = 768\nvcpus = 2\n"
    "disk = ['file:/OVS/running_pool/vm7/System.img,xvda,w']\n"
)


def xen_host(fake_xen_servers: Any, tmp_path: Path) -> tuple[Any, Path]:
    config = tmp_path / "OVS" / "running_pool" / "vm7" / "vm.cfg"
    config.parent.mkdir(parents=True)
    config.write_text(CFG)
    domain = make_domain("vm7", uuid=UUID, domid=None, state="", config=str(config), managed=False)
    server = fake_xen_servers([HostSpec("xen09", toolstack="xm", domains=[domain])])
    return server.hosts[0], config


def backend(host: Any, storage: Path) -> XenSshBackend:
    return XenSshBackend(
        HostKey("xen", "xen09"),
        host.ssh_target,
        identity=str(host.client_key),
        known_hosts=str(host.known_hosts),
        shared_storage=str(storage),
    )


async def test_full_polls_hand_each_vm_cfg_over_only_when_kept(
    fake_xen_servers: Any, tmp_path: Path
) -> None:
    host, config = xen_host(fake_xen_servers, tmp_path)
    b = backend(host, tmp_path / "OVS")
    try:
        assert (await b.poll()).definitions == ()  # not kept: nothing handed over
        b.keep_definitions(True)  # the next poll is a full one, every vm.cfg read
        (kept,) = (await b.poll()).definitions
    finally:
        await b.close()
    assert (kept.kind, kept.uuid, kept.name) == (DefinitionKind.DOMAIN, UUID, "vm7")
    assert kept.text.startswith(config.read_text())
    assert kept.sha256 == hashlib.sha256(kept.text.encode()).hexdigest()


async def test_a_xen_host_keeps_its_vm_cfg_and_its_restore_says_why_not(
    fake_xen_servers: Any, tmp_path: Path
) -> None:
    host, _config = xen_host(fake_xen_servers, tmp_path)
    estate = EstateConfig(
        (PoolConfig("xen", (HostConfig("xen", "xen09", ssh=host.ssh_target),)),), "test"
    )
    b = backend(host, tmp_path / "OVS")
    async with EstateSession(estate, repository=tmp_path / "r.sqlite", backends=[b]) as session:
        await session.poll_once()
        plan = await session.host_restores.plan(HostKey("xen", "xen09"))
    async with EstateSession(estate, repository=tmp_path / "r.sqlite", backends=[]) as s2:
        versions = await s2.open_repository().definition_versions(DefinitionKind.DOMAIN, UUID)
    assert [v.name for v in versions] == ["vm7"]
    assert plan.refusal is not None and "cannot define" in plan.refusal
    assert "vm.cfg files are not written back" in plan.refusal
