from __future__ import annotations

import dataclasses
import random

from ovmtui.model import (
    EstateDelta,
    EstateSnapshot,
    EstateTotals,
    HostFacts,
    HostStatus,
    PlacedVm,
    TotalsTally,
    Vm,
    VmAction,
    VmState,
    on_shared_storage,
    uptime_s,
)


def test_actions_apply_to_sensible_states() -> None:
    assert VmAction.START.applies_to(VmState.SHUTOFF)
    assert VmAction.START.applies_to(VmState.SUSPENDED)  # wakes it up
    assert not VmAction.START.applies_to(VmState.RUNNING)
    assert VmAction.RESUME.applies_to(VmState.PAUSED)
    assert not VmAction.FORCE_OFF.applies_to(VmState.SHUTOFF)
    assert VmAction.FORCE_OFF.loses_guest_state
    assert not VmAction.SHUTDOWN.loses_guest_state
    assert VmAction.FORCE_OFF.label == "Force off"


def _host(name: str, vms: list[Vm], reachable: bool | None = True) -> HostStatus:
    return HostStatus(
        "p",
        name,
        f"test://{name}",
        facts=HostFacts(memory_mib=1000),
        vms=tuple(vms),
        reachable=reachable,
    )


def test_incremental_totals_equal_a_full_count() -> None:
    rng = random.Random(7)
    states = list(VmState)
    vms = {
        f"u{i}": Vm(f"u{i}", f"vm{i}", rng.choice(states), memory_mib=rng.choice([None, 512]))
        for i in range(200)
    }
    hosts = {"a": set(list(vms)[:100]), "b": set(list(vms)[100:])}

    def snapshot(generation: int, delta: EstateDelta | None) -> EstateSnapshot:
        return EstateSnapshot(
            tuple(
                _host(h, [vms[u] for u in sorted(us)], reachable=h == "a")
                for h, us in hosts.items()
            ),
            generation=generation,
            delta=delta,
        )

    tally = TotalsTally()
    assert tally.totals(snapshot(1, None)) == EstateTotals.of(snapshot(1, None))
    for generation in range(2, 40):
        changed: list[PlacedVm] = []
        removed: list[str] = []
        for uuid in rng.sample(sorted(vms), 10):
            host = "a" if uuid in hosts["a"] else "b"
            if rng.random() < 0.2:
                hosts[host].discard(uuid)
                removed.append(uuid)
                continue
            vms[uuid] = dataclasses.replace(vms[uuid], state=rng.choice(states))
            if rng.random() < 0.3:  # migrated
                hosts[host].discard(uuid)
                host = "b" if host == "a" else "a"
            hosts[host].add(uuid)
            changed.append(PlacedVm("p", host, vms[uuid]))
        snap = snapshot(generation, EstateDelta(generation - 1, tuple(changed), tuple(removed)))
        assert tally.totals(snap) == EstateTotals.of(snap)
        for uuid in removed:
            del vms[uuid]
    final = EstateTotals.of(snapshot(99, None))
    assert final.hosts_up == 1 and final.hosts_down == 1
    assert final.memory_physical_mib == 2000


def test_a_console_is_refused_with_the_hosts_own_reason_where_it_gives_one() -> None:
    from ovmtui.model import Capability, PlacedVm, Vm, VmState, console_refusal

    running = PlacedVm("p", "h1", Vm(uuid="u", name="web01", state=VmState.RUNNING))
    off = running._replace(vm=Vm(uuid="u", name="web01", state=VmState.SHUTOFF))
    console = frozenset({Capability.CONSOLE})
    assert console_refusal(running, console) is None
    assert console_refusal(running, frozenset()) == "h1 gives no consoles"
    assert console_refusal(running, frozenset(), withheld="the test driver has none") == (
        "h1: the test driver has none"
    )
    assert console_refusal(running, console, reachable=False) == "h1 does not answer"
    assert console_refusal(off, console) == "no console: the VM is shutoff"


def test_a_disk_lies_on_shared_storage_by_its_path_only() -> None:
    assert on_shared_storage("/OVS/running_pool/a/System.img", "/OVS") is True
    assert on_shared_storage("/OVS", "/OVS/") is True
    assert on_shared_storage("/OVS/../var/a.img", "/OVS") is False  # normalised, not prefixed
    assert on_shared_storage("/OVSX/a.img", "/OVS") is False  # a sibling, not below
    assert on_shared_storage("/dev/vg0/a", "/OVS") is False
    # Cannot be told: no path, a libvirt volume (pool/volume), no shared storage configured.
    assert on_shared_storage(None, "/OVS") is None
    assert on_shared_storage("ovs/rich-data.img", "/OVS") is None
    assert on_shared_storage("/OVS/a.img", None) is None


def test_uptime_only_while_active_and_when_the_start_is_known() -> None:
    running = Vm("u", "a", VmState.RUNNING, started_at=1000.0)
    assert uptime_s(running, 1060.0) == 60.0
    assert uptime_s(running, 900.0) == 0.0  # a clock behind the host's: not negative
    assert uptime_s(dataclasses.replace(running, state=VmState.SHUTOFF), 1060.0) is None
    assert uptime_s(dataclasses.replace(running, started_at=None), 1060.0) is None
