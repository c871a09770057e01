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
