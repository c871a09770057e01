"""The dashboard on two real libvirtd + QEMU hosts, reached over SSH (see tests/e2e/lab)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from ovmtui.model import HostRole, VmState
from tests.e2e.lab.conftest import Lab
from tests.e2e.lab.screen import SIZE, host_status, lab_app, loaded, row, tree_labels

# The first test of the session also waits for the lab to come up: minutes on a machine
# that has never built it (packages, kernel), seconds afterwards.
pytestmark = [pytest.mark.lab, pytest.mark.timeout(600)]

BINARY = Path(sys.executable).with_name("ovmtui")


async def test_dashboard_shows_both_hosts_and_the_three_guests(lab: Lab) -> None:
    app = lab_app(lab)
    async with app.run_test(size=SIZE) as pilot:
        await loaded(pilot, app)
        h1, h2 = host_status(app, "h1"), host_status(app, "h2")
        assert h1.roles == (HostRole.MASTER, HostRole.UTILITY, HostRole.VM)
        assert h2.roles == (HostRole.VM,)
        for host in (h1, h2):
            assert host.reachable and host.error is None
            # Each daemon is a host of its own: its hostname, a real QEMU.
            assert host.facts.hostname == host.name
            assert host.facts.hypervisor == "QEMU"
        placed = {p.vm.name: p for p in app.snapshot.placed_vms()}
        assert sorted(placed) == ["vm1", "vm2", "vm3"]
        for name, where in lab.guests.items():
            vm = placed[name].vm
            assert placed[name].host == where
            assert vm.state is VmState.RUNNING
            assert (vm.memory_mib, vm.vcpus) == (192, 1)
            # What the operator sees: name, state, host, vCPUs, memory.
            assert row(app, name).split()[:6] == [name, "running", where, "1", "192", "MiB"]
        labels = tree_labels(app)
        assert labels[0].startswith("lab") and "2/2 up" in labels[0], labels
        assert any(label.startswith("● h1") and label.endswith(" 2") for label in labels), labels
        assert any(label.startswith("● h2") and label.endswith(" 1") for label in labels), labels


def test_inventory_lists_the_lab(lab: Lab) -> None:
    """The headless command, through the same SSH URIs."""
    result = subprocess.run(
        [str(BINARY), "--config", str(lab.estate_path), "inventory", "--json"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    inventory = json.loads(result.stdout)
    assert [(h["name"], h["reachable"], h["hypervisor"]) for h in inventory["hosts"]] == [
        ("h1", True, "QEMU"),
        ("h2", True, "QEMU"),
    ]
    assert sorted((v["name"], v["host"], v["memory_mib"]) for v in inventory["vms"]) == [
        ("vm1", "h1", 192),
        ("vm2", "h1", 192),
        ("vm3", "h2", 192),
    ]
