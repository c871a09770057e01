"""The sizes of a Xen VM's disks, measured on its host in one command over SSH (the VM
screen and `ovmtui show`): a file's size, unknown for a path the host does not have."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.backend.test_xen_ssh_long import backend_for
from tests.sshfake.fixtures import fake_xen_servers
from tests.sshfake.sshd import HostSpec
from tests.sshfake.xenstate import make_domain

__all__ = ["fake_xen_servers"]  # a pytest fixture


async def test_sizes_are_measured_on_the_host(fake_xen_servers: Any, tmp_path: Path) -> None:
    image = tmp_path / "it's a disk; ls.img"  # quoting: one argument, whatever it holds
    image.write_bytes(b"\0" * 12345)
    domain = make_domain(
        "sized01",
        uuid="0004fb00-0006-0000-eeee-000000000001",
        domid=9,
        disks=[
            {"uname": f"file:{image}", "dev": "xvda", "mode": "w"},
            {"uname": "file:/OVS/nowhere/missing.img", "dev": "xvdb", "mode": "w"},
        ],
    )
    server = fake_xen_servers([HostSpec("xen-a", domains=[domain])])
    backend = backend_for(server.hosts[0], toolstack="xm")
    try:
        vm = next(v for v in (await backend.poll()).vms if v.name == "sized01")
        assert await backend.disk_sizes(vm) == {"xvda": 12345, "xvdb": None}
    finally:
        await backend.close()
