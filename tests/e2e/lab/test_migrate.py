"""Live migration between the lab's two real libvirtd + QEMU hosts, through
``LibvirtBackend.migrate`` over the estate's own qemu+ssh URIs.

The guests print "<name> heartbeat <n>" every second on their serial console
(lab/guest-init.sh): a guest that keeps running across a move keeps counting, a guest that
restarted would start again at 1. Every test leaves the guests where the lab started them
(vm1, vm2 on h1; vm3 on h2), running.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import re
from collections.abc import AsyncIterator, Callable

import pytest

from ovmtui.backend.base import ConsoleChannel
from ovmtui.backend.libvirt import LibvirtBackend
from ovmtui.model import Capability, HostKey, MigrationProgress, Vm, VmState
from tests.e2e.lab.conftest import LAB_DIR, Lab

pytestmark = [pytest.mark.lab, pytest.mark.timeout(300)]

# Bounds against a hang, never measured: a heartbeat comes every second, a move takes ~1 s.
LIMIT_S = 60.0
# Throttle for the abort test (MiB/s): the guest's ~190 MiB then take a minute and more.
SLOW_MIB_S = "2"


@dataclasses.dataclass
class Hosts:
    h1: LibvirtBackend
    h2: LibvirtBackend

    def __getitem__(self, name: str) -> LibvirtBackend:
        backend: LibvirtBackend = getattr(self, name)
        return backend


@pytest.fixture
async def hosts(lab: Lab) -> AsyncIterator[Hosts]:
    uris = {host.name: host.libvirt for host in lab.estate.hosts}
    backends = {name: LibvirtBackend(HostKey("lab", name), str(uris[name])) for name in uris}
    try:
        yield Hosts(backends["h1"], backends["h2"])
    finally:
        for backend in backends.values():
            await backend.close()


def heartbeats(name: str, data: bytes) -> list[int]:
    return [int(n) for n in re.findall(rb"%s heartbeat (\d+)\r\n" % name.encode(), data)]


async def vms_on(backend: LibvirtBackend) -> dict[str, Vm]:
    return {vm.name: vm for vm in (await backend.poll()).vms}


async def read_until(channel: ConsoleChannel, done: Callable[[bytes], bool]) -> bytes:
    seen = b""

    async def loop() -> bytes:
        nonlocal seen
        while not done(seen):
            data = await channel.read()
            assert data, f"the console ended ({channel.end_reason}) after {seen[-300:]!r}"
            seen += data
        return seen

    return await asyncio.wait_for(loop(), LIMIT_S)


async def beats_on(backend: LibvirtBackend, vm: Vm, count: int = 2) -> list[int]:
    """``count`` heartbeats read from the guest's console on ``backend``'s host."""
    console = backend.console(vm, term_type="xterm", term_size=(80, 24), force=True)
    async with console as channel:
        seen = await read_until(channel, lambda data: len(heartbeats(vm.name, data)) >= count)
    return heartbeats(vm.name, seen)


async def put_back(lab: Lab, hosts: Hosts, name: str, home: str) -> None:
    """Wherever the guest ended up, back home and running (a failed test's cleanup)."""
    for other in ("h1", "h2"):
        if other != home and name in await vms_on(hosts[other]):
            vm = (await vms_on(hosts[other]))[name]
            await hosts[other].migrate(vm, hosts[home], live=vm.state is not VmState.SHUTOFF)
    if lab.domstate(home, name) != "running":
        lab.virsh(home, "start", name)


async def test_a_running_guest_moves_there_and_back_counting_on(lab: Lab, hosts: Hosts) -> None:
    assert Capability.MIGRATE in hosts.h1.capabilities
    vm = (await vms_on(hosts.h1))["vm1"]
    try:
        last = (await beats_on(hosts.h1, vm))[-1]
        for source, target in (("h1", "h2"), ("h2", "h1")):
            readings: list[MigrationProgress] = []
            console = hosts[source].console(vm, term_type="xterm", term_size=(80, 24))
            async with console as channel:
                await read_until(channel, lambda data: bool(heartbeats("vm1", data)))
                await hosts[source].migrate(vm, hosts[target], live=True, progress=readings.append)
                # The console on the source ends: its guest runs elsewhere now.
                while await asyncio.wait_for(channel.read(), LIMIT_S):
                    pass
                assert channel.end_reason is not None and "migrated" in channel.end_reason
            assert readings, f"no progress reported on the way {source} -> {target}"
            assert [r.elapsed_s for r in readings] == sorted(r.elapsed_s for r in readings)
            # Listed (and defined: persistent) where it runs, gone from where it ran.
            there, here = await vms_on(hosts[target]), await vms_on(hosts[source])
            assert "vm1" not in here, f"{source} still lists vm1 after it left"
            assert there["vm1"].state is VmState.RUNNING and there["vm1"].persistent
            assert there["vm1"].uuid == vm.uuid
            # The same guest, still counting: no reboot, no reset to 1.
            beats = await beats_on(hosts[target], there["vm1"])
            assert beats[0] > last, f"heartbeat {beats} after {last}: the guest restarted"
            last = beats[-1]
        assert lab.domstate("h1", "vm1") == "running"
    finally:
        await put_back(lab, hosts, "vm1", "h1")


async def test_h2_answers_what_vm1_needs(lab: Lab, hosts: Hosts) -> None:
    vm = (await vms_on(hosts.h1))["vm1"]
    needs = await hosts.h1.migration_needs(vm)
    assert needs.memory_mib == 192 and needs.virt_type == "qemu"
    assert needs.cpu_definition is not None and "qemu64" in needs.cpu_definition
    home = LAB_DIR / "ovs" / "running_pool" / "vm1"
    assert set(needs.disk_paths) == {str(home / f) for f in ("System.img", "vmlinuz", "initrd.img")}
    assert needs.host_local == ()

    answers = await hosts.h2.can_host(needs)
    assert answers.cpu_compatible is True, answers.cpu_detail
    assert answers.cpu_detail is not None and "compareHypervisorCPU" in answers.cpu_detail
    assert answers.paths_visible == dict.fromkeys(needs.disk_paths, True)
    assert answers.incoming_mib == 0

    # What h2 lacks, it says so: a file, a directory, a bridge, a CPU it cannot give.
    wanting = dataclasses.replace(
        needs,
        disk_paths=(str(home / "nowhere.img"), "/nonexistent/dir/disk.img"),
        networks=("eth0", "no-such-bridge"),  # eth0: h2's own interface
        cpu_definition="<cpu mode='custom' match='exact'>"
        "<model fallback='forbid'>Icelake-Server</model></cpu>",
    )
    answers = await hosts.h2.can_host(wanting)
    assert answers.paths_visible == dict.fromkeys(wanting.disk_paths, False)
    assert answers.networks_present == {"eth0": True, "no-such-bridge": False}
    assert answers.cpu_compatible is False
    assert answers.cpu_detail is not None and "does not provide" in answers.cpu_detail
    # The probes left no storage pool behind.
    assert lab.virsh("h2", "pool-list", "--all", "--name") == ""


async def test_an_aborted_migration_leaves_the_guest_running_on_its_source(
    lab: Lab, hosts: Hosts
) -> None:
    vm = (await vms_on(hosts.h1))["vm2"]
    needs = await hosts.h1.migration_needs(vm)
    speed = lab.virsh("h1", "migrate-getspeed", "vm2")
    lab.virsh("h1", "migrate-setspeed", "vm2", SLOW_MIB_S)
    try:
        last = (await beats_on(hosts.h1, vm))[-1]
        halfway = asyncio.Event()
        readings: list[MigrationProgress] = []

        def progress(reading: MigrationProgress) -> None:
            readings.append(reading)
            if reading.processed_bytes and reading.remaining_bytes:
                halfway.set()

        moving = asyncio.create_task(hosts.h1.migrate(vm, hosts.h2, live=True, progress=progress))
        await asyncio.wait_for(halfway.wait(), LIMIT_S)
        # Meanwhile h2 counts the guest coming in against its memory.
        assert (await hosts.h2.can_host(needs)).incoming_mib == 192
        moving.cancel()
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(moving, LIMIT_S)
        fraction = readings[-1].fraction
        assert fraction is not None and 0 < fraction < 1

        # Still where it was, running and defined; nothing of it on h2.
        here = await vms_on(hosts.h1)
        assert here["vm2"].state is VmState.RUNNING and here["vm2"].persistent
        assert "vm2" not in await vms_on(hosts.h2)
        assert lab.domstate("h1", "vm2") == "running"
        assert (await hosts.h2.can_host(needs)).incoming_mib == 0
        beats = await beats_on(hosts.h1, vm)
        assert beats[0] > last, f"heartbeat {beats} after {last}: the guest restarted"
    finally:
        with contextlib.suppress(AssertionError):
            lab.virsh("h1", "migrate-setspeed", "vm2", speed)
        await put_back(lab, hosts, "vm2", "h1")
    assert lab.virsh("h1", "migrate-getspeed", "vm2") == speed


async def test_a_shut_off_guest_moves_its_definition_only(lab: Lab, hosts: Hosts) -> None:
    lab.virsh("h2", "destroy", "vm3")
    try:
        vm = (await vms_on(hosts.h2))["vm3"]
        assert vm.state is VmState.SHUTOFF
        assert "--offline" in hosts.h2.migration_command(vm, hosts.h1, live=False)
        await hosts.h2.migrate(vm, hosts.h1, live=False)
        there = await vms_on(hosts.h1)
        assert there["vm3"].state is VmState.SHUTOFF and there["vm3"].persistent
        assert "vm3" not in await vms_on(hosts.h2)
        await hosts.h1.migrate(there["vm3"], hosts.h2, live=False)
        assert (await vms_on(hosts.h2))["vm3"].state is VmState.SHUTOFF
        assert "vm3" not in await vms_on(hosts.h1)
    finally:
        await put_back(lab, hosts, "vm3", "h2")
    assert lab.domstate("h2", "vm3") == "running"
