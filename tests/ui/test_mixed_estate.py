"""One dashboard over libvirt and Xen-over-SSH hosts: shown, acted on and journaled alike."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from ovmtui.config import EstateConfig, HostConfig, PoolConfig
from ovmtui.model import HostKey, VmState
from tests.sshfake.fixtures import fake_xen_servers
from tests.sshfake.sshd import FakeXenHost, HostSpec
from tests.sshfake.xenstate import make_domain
from tests.ui.conftest import SIZE, fixed_demo_estate, make_app, state_of, table, wait_until

__all__ = ["fake_xen_servers"]  # a pytest fixture

XEN_DOMAINS = [
    make_domain("xenweb01", uuid="0004fb00-0006-0000-1111-000000000001", domid=3),
    make_domain("xendb01", uuid="0004fb00-0006-0000-1111-000000000002", domid=4),
    make_domain("xenoff01", uuid="0004fb00-0006-0000-1111-000000000003", domid=None, state=""),
]


def mixed_estate(xen: FakeXenHost) -> EstateConfig:
    libvirt_host = fixed_demo_estate().pools[0].hosts[0]
    xen_host = HostConfig(
        "prod",
        "ovs07",
        ssh=xen.ssh_target,
        identity=str(xen.client_key),
        known_hosts=str(xen.known_hosts),
    )
    return EstateConfig((PoolConfig("prod", (libvirt_host, xen_host), "/OVS"),), "mixed")


def start_xen(fake_xen_servers: Any) -> FakeXenHost:
    server = fake_xen_servers([HostSpec("ovs07", toolstack="xm", domains=XEN_DOMAINS)])
    host: FakeXenHost = server.hosts[0]
    return host


async def test_one_dashboard_for_libvirt_and_xen_hosts(
    fake_xen_servers: Any, tmp_path: Path
) -> None:
    xen = start_xen(fake_xen_servers)
    app = make_app(mixed_estate(xen), repository=tmp_path / "repository.sqlite")
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: table(app).row_count == 13 + 3, what="both hosts' VMs")
        host = app.snapshot.host(HostKey("prod", "ovs07"))
        assert host is not None and host.reachable and host.facts is not None
        assert host.facts.hypervisor == "Xen"
        assert state_of(app, "xenoff01") is VmState.SHUTOFF
        xen.clear_argv_log()
        await pilot.press("slash", *"xenweb01", "enter", "p")
        await wait_until(pilot, lambda: state_of(app, "xenweb01") is VmState.PAUSED)
        assert ["xm", "pause", "xenweb01"] in xen.argv_log()
        assert app.repository is not None
        entries = await app.repository.journal_entries()
        assert [(e.host, e.vm, e.command, e.ok) for e in entries] == [
            ("ovs07", "xenweb01", "xm pause xenweb01", True)
        ]


async def test_force_off_a_xen_vm_asks_first_and_read_only_refuses(
    fake_xen_servers: Any,
) -> None:
    from textual.widgets import Static

    from ovmtui.screens.dialogs import ConfirmDialog

    xen = start_xen(fake_xen_servers)
    app = make_app(mixed_estate(xen))
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: table(app).row_count == 16)
        await pilot.press("slash", *"xendb01", "enter", "K")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmDialog))
        shown = app.screen.query_one("#dialog-commands Static", Static)
        assert "$ xm destroy xendb01" in str(shown.render())
        await pilot.press("y")
        await wait_until(pilot, lambda: state_of(app, "xendb01") is VmState.SHUTOFF)
    xen.clear_argv_log()
    app = make_app(mixed_estate(xen), read_only=True)
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: table(app).row_count == 16)
        await pilot.press("slash", *"xenweb01", "enter", "p")
        await pilot.pause(0.3)
        assert state_of(app, "xenweb01") is not VmState.PAUSED
    assert not any(argv[1:2] == ["pause"] for argv in xen.argv_log())


def test_inventory_json_treats_both_alike(fake_xen_servers: Any, tmp_path: Path) -> None:
    xen = start_xen(fake_xen_servers)
    libvirt_uri = fixed_demo_estate().pools[0].hosts[0].address
    estate = tmp_path / "estate.toml"
    estate.write_text(
        f"""
[[pools]]
name = "prod"
shared_storage = "/OVS"

  [[pools.hosts]]
  name = "ovs01"
  libvirt = "{libvirt_uri}"

  [[pools.hosts]]
  name = "ovs07"
  ssh = "{xen.ssh_target}"
  identity = "{xen.client_key}"
  known_hosts = "{xen.known_hosts}"
  toolstack = "xm"
"""
    )
    proc = subprocess.run(
        [
            *(sys.executable, "-m", "ovmtui", "--config", str(estate), "inventory", "--json"),
            *("--repository", str(tmp_path / "r.sqlite")),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    hosts = {h["name"]: h for h in data["hosts"]}
    assert hosts["ovs07"]["reachable"] is True and hosts["ovs07"]["hypervisor"] == "Xen"
    assert hosts["ovs01"]["reachable"] is True
    xen_vms = {v["name"]: v for v in data["vms"] if v["host"] == "ovs07"}
    assert set(xen_vms) == {"xenweb01", "xendb01", "xenoff01"}
    assert xen_vms["xenoff01"]["state"] == "shutoff"
    assert xen_vms["xenweb01"]["uuid"] == "0004fb00-0006-0000-1111-000000000001"
    assert sum(1 for v in data["vms"] if v["host"] == "ovs01") == 13
