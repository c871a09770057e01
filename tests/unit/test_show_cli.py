"""`ovmtui show VM [--host H] [--json]`: one VM's facts, disks, NICs and definition after
one poll, on libvirt's test driver and on the fake Xen dom0 of tests/sshfake."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from ovmtui.config import EstateConfig, HostConfig, PoolConfig
from ovmtui.headless import show_vm_report
from tests.sshfake.fixtures import fake_xen_servers
from tests.sshfake.sshd import HostSpec
from tests.sshfake.xenstate import make_domain, render_vm_cfg

__all__ = ["fake_xen_servers"]  # a pytest fixture

NODE = Path(__file__).resolve().parent.parent / "data" / "libvirt-node-small.xml"
WEB01 = "11111111-1111-4111-8111-111111111111"
# What libvirt's test driver answers blockInfo with, whatever the disk.
TEST_DRIVER_DISK_BYTES = 1099506450432

VM_KEYS = {
    "vm",
    "uuid",
    "pool",
    "host",
    "state",
    "domain_id",
    "vcpus",
    "memory_mib",
    "max_memory_mib",
    "cpu_percent",
    "uptime_s",
    "disks",
    "nics",
    "definition",
}
DISK_KEYS = {
    "target",
    "source",
    "device",
    "format",
    "bus",
    "size_bytes",
    "read_only",
    "shareable",
    "on_shared_storage",
}
NIC_KEYS = {"mac", "network", "model"}


def estate(tmp_path: Path) -> Path:
    """Two hosts with the same VMs (each open of the node file is a private copy): every
    name is held twice. /shared is the pool's shared storage."""
    path = tmp_path / "estate.toml"
    hosts = "".join(
        f'\n  [[pools.hosts]]\n  name = "{name}"\n  libvirt = "test://{NODE}"\n'
        for name in ("h1", "h2")
    )
    path.write_text(f'[[pools]]\nname = "p"\nshared_storage = "/shared"\n{hosts}')
    return path


def ovmtui(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-m", "ovmtui", "--config", str(estate(tmp_path))]
    argv += ["--repository", str(tmp_path / "r.sqlite"), *args]
    return subprocess.run(
        argv, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL, env=os.environ
    )


def test_show_json_has_its_shape_and_the_hosts_facts(tmp_path: Path) -> None:
    done = ovmtui(tmp_path, "show", "web01", "--host", "h2", "--json")
    assert done.returncode == 0, done.stderr
    shown = json.loads(done.stdout)
    assert set(shown) == VM_KEYS
    assert all(set(disk) == DISK_KEYS for disk in shown["disks"])
    assert all(set(nic) == NIC_KEYS for nic in shown["nics"])
    assert (shown["vm"], shown["uuid"], shown["pool"], shown["host"]) == ("web01", WEB01, "p", "h2")
    assert (shown["state"], shown["vcpus"], shown["memory_mib"], shown["max_memory_mib"]) == (
        "running",
        2,
        1024,
        2048,
    )
    assert isinstance(shown["domain_id"], int)
    # The test driver reports no CPU time and no start time: unknown, not zero.
    assert shown["cpu_percent"] is None and shown["uptime_s"] is None
    assert [
        (d["target"], d["source"], d["bus"], d["format"], d["on_shared_storage"])
        for d in shown["disks"]
    ] == [
        ("vda", "/var/lib/images/web01.img", "virtio", None, False),
        ("vdb", "/shared/quorum.img", "virtio", None, True),
        ("hdc", None, "ide", None, None),  # an empty cdrom: no path to place
    ]
    # Sizes as the host measures them (the test driver's blockInfo: 1 TiB for every disk);
    # an empty cdrom has nothing to measure.
    assert [(d["read_only"], d["shareable"], d["size_bytes"]) for d in shown["disks"]] == [
        (False, False, TEST_DRIVER_DISK_BYTES),
        (False, True, TEST_DRIVER_DISK_BYTES),
        (True, False, None),
    ]
    assert shown["nics"][0]["mac"] is not None
    assert (
        shown["definition"].startswith("<domain") and f"<uuid>{WEB01}</uuid>" in shown["definition"]
    )


def test_show_by_uuid_in_plain_text(tmp_path: Path) -> None:
    done = ovmtui(tmp_path, "show", WEB01.upper(), "--host", "p/h1")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "web01"
    assert "  State:      running" in lines and "  Host:       h1" in lines
    assert "disks (3, shared storage: /shared):" in lines
    disk = next(line for line in lines if "/shared/quorum.img" in line)
    assert disk.split() == [
        "vdb",
        "disk",
        "/shared/quorum.img",
        "1.0",
        "TiB",
        "—",
        "virtio",
        "rw",
        "shareable",
        "yes",
    ]
    assert "definition:" in lines and f"  <uuid>{WEB01}</uuid>" in lines


def test_a_name_held_twice_needs_the_host_and_an_unknown_vm_exits_2(tmp_path: Path) -> None:
    twice = ovmtui(tmp_path, "show", "web01")
    assert twice.returncode == 2 and twice.stdout == ""
    assert "2 VMs are named 'web01'" in twice.stderr and "--host" in twice.stderr
    unknown = ovmtui(tmp_path, "show", "nope", "--json")
    assert unknown.returncode == 2 and unknown.stdout == ""
    assert "No such VM: no VM 'nope' in the estate" in unknown.stderr


async def test_show_a_xen_vm_from_its_vm_cfg(fake_xen_servers: Any, tmp_path: Path) -> None:
    storage = tmp_path / "OVS"
    config = storage / "running_pool" / "xen web; 1" / "vm.cfg"  # a path that needs quoting
    config.parent.mkdir(parents=True)
    domain = make_domain(
        "xenweb01",
        uuid="0004fb00-0006-0000-3333-000000000001",
        domid=7,
        disks=[
            {
                "uname": f"tap:aio:{storage}/running_pool/xenweb01/System.img",
                "dev": "xvda",
                "mode": "w!",
            },
            {"uname": "phy:/dev/vg0/local", "dev": "xvdb", "mode": "r"},
        ],
        vifs=[{"mac": "00:16:3e:33:00:01", "bridge": "xenbr0"}],
        config=str(config),
    )
    config.write_text(render_vm_cfg(domain))
    server = fake_xen_servers([HostSpec("ovs09", toolstack="xm", domains=[domain])])
    xen = server.hosts[0]
    host = HostConfig(
        "prod",
        "ovs09",
        ssh=xen.ssh_target,
        identity=str(xen.client_key),
        known_hosts=str(xen.known_hosts),
        toolstack="xm",
        shared_storage=str(storage),
    )
    config_of = EstateConfig((PoolConfig("prod", (host,), str(storage)),), "xen")
    out = io.StringIO()
    code = await show_vm_report(
        config_of, tmp_path / "r.sqlite", "xenweb01", out, host=None, as_json=True
    )
    assert code == 0
    shown = json.loads(out.getvalue())
    assert (shown["host"], shown["state"], shown["domain_id"]) == ("ovs09", "blocked", 7)
    assert [
        (d["target"], d["source"], d["read_only"], d["shareable"], d["on_shared_storage"])
        for d in shown["disks"]
    ] == [
        ("xvda", f"{storage}/running_pool/xenweb01/System.img", False, True, True),
        ("xvdb", "/dev/vg0/local", True, False, False),
    ]
    # xm says neither format nor bus; no such files here: no size either.
    assert {(d["format"], d["bus"], d["size_bytes"]) for d in shown["disks"]} == {
        (None, None, None)
    }
    assert shown["nics"] == [{"mac": "00:16:3e:33:00:01", "network": "xenbr0", "model": None}]
    assert shown["definition"] == config.read_text()
