"""The flight plan's checks, one rule at a time, with the numbers they show."""

from __future__ import annotations

import pytest

from ovmtui.model import (
    HostFacts,
    HostKey,
    HostStatus,
    MigrationNeeds,
    PlacedVm,
    TargetAnswers,
    Vm,
    VmState,
)
from ovmtui.services.flight_plan import (
    Check,
    TargetVerdict,
    best,
    check_cpu,
    check_host_local,
    check_memory,
    check_networks,
    check_reachable,
    check_state,
    check_storage,
    in_flight_by_target,
    plan_evacuation,
    verdict,
)

SHARED = "/OVS"


def host(name: str, free: int | None = 8192, *, up: bool = True, hv: str = "Xen") -> HostStatus:
    return HostStatus(
        pool="p",
        name=name,
        address=name,
        facts=HostFacts(hypervisor=hv, free_memory_mib=free),
        reachable=up,
        error=None if up else "connection refused",
    )


def vm(name: str = "web01", memory: int = 2048, state: VmState = VmState.RUNNING) -> Vm:
    return Vm(uuid=f"u-{name}", name=name, state=state, memory_mib=memory)


NEEDS = MigrationNeeds(
    memory_mib=2048,
    disk_paths=("/OVS/running_pool/web01/System.img",),
    networks=("xenbr0",),
)
ANSWERS = TargetAnswers(
    cpu_compatible=True,
    cpu_detail="same vendor (GenuineIntel); no flag missing",
    paths_visible={"/OVS/running_pool/web01/System.img": True},
    networks_present={"xenbr0": True},
)


@pytest.mark.parametrize(
    ("free", "in_flight", "ok", "said"),
    [
        (4096, 0, True, "4.0 GiB free; needs 2.0 GiB + 256 MiB overhead"),
        (2048 + 256, 0, True, "needs 2.0 GiB + 256 MiB overhead"),  # exactly enough
        (2048 + 255, 0, False, "1 MiB short"),
        (4096, 2048, False, "(2.0 GiB promised to migrations in flight)"),
        (None, 0, None, "unknown: h2's free memory is not known"),
    ],
)
def test_memory(free: int | None, in_flight: int, ok: bool | None, said: str) -> None:
    check, left = check_memory(2048, host("h2", free), in_flight_mib=in_flight)
    assert check.ok is ok
    assert said in check.detail
    if free is not None:
        assert left == free - in_flight - 2048


def test_state_live_and_offline() -> None:
    assert check_state(vm(), live=True).ok
    assert check_state(vm(state=VmState.PAUSED), live=True).ok
    off = check_state(vm(state=VmState.SHUTOFF), live=True)
    assert not off.ok and "shutoff; a live move needs running or paused" in off.detail
    assert check_state(vm(state=VmState.SHUTOFF), live=False).ok
    assert not check_state(vm(), live=False).ok


def test_an_unreachable_target_says_why() -> None:
    check = check_reachable(host("h2", up=False))
    assert check == Check("reachable", False, "h2 does not answer: connection refused")


def test_cpu_mismatch_is_named_and_unknown_is_not_a_pass() -> None:
    no = check_cpu(TargetAnswers(cpu_compatible=False, cpu_detail="h2 lacks: avx2, sse4_2"))
    assert no == Check("cpu", False, "h2 lacks: avx2, sse4_2")
    unknown = check_cpu(TargetAnswers(cpu_compatible=None, cpu_detail="the test driver cannot"))
    assert unknown.ok is None and unknown.detail.startswith("unknown")


@pytest.mark.parametrize(
    ("paths", "visible", "ok", "said"),
    [
        (("/OVS/a.img",), {"/OVS/a.img": True}, True, "1 disk on /OVS, visible"),
        (("/var/lib/local.img",), {"/var/lib/local.img": True}, False, "outside /OVS"),
        (("/OVS/iso_pool/x.iso",), {"/OVS/iso_pool/x.iso": False}, False, "not visible"),
        (("/OVS/a.img",), {}, None, "unknown whether the target sees: /OVS/a.img"),
        ((), {}, True, "no disks"),
    ],
)
def test_storage(
    paths: tuple[str, ...], visible: dict[str, bool], ok: bool | None, said: str
) -> None:
    check = check_storage(
        MigrationNeeds(memory_mib=1, disk_paths=paths), TargetAnswers(paths_visible=visible), SHARED
    )
    assert check.ok is ok and said in check.detail


def test_a_pool_without_shared_storage_moves_no_disk() -> None:
    check = check_storage(MigrationNeeds(memory_mib=1, disk_paths=("/OVS/a.img",)), ANSWERS, None)
    assert check.ok is False and "no shared storage set for the pool" in check.detail


def test_a_missing_bridge_and_a_local_device() -> None:
    needs = MigrationNeeds(memory_mib=1, networks=("xenbr0", "xenbr9"))
    check = check_networks(needs, TargetAnswers(networks_present={"xenbr0": True, "xenbr9": False}))
    assert check == Check("networks", False, "missing on the target: xenbr9")
    local = check_host_local(MigrationNeeds(memory_mib=1, host_local=("PCI passthrough 03:00.0",)))
    assert local == Check("host-local", False, "PCI passthrough 03:00.0")


def test_a_verdict_is_a_go_only_when_every_check_passed() -> None:
    placed = PlacedVm("p", "h1", vm())
    go = verdict(placed, host("h1"), host("h2"), NEEDS, ANSWERS, live=True, shared_storage=SHARED)
    assert go.go and go.free_after_mib == 8192 - 2048 and not go.failed
    assert [c.name for c in go.checks] == [
        "reachable",
        "hypervisor",
        "state",
        "memory",
        "cpu",
        "storage",
        "networks",
        "host-local",
    ]
    unasked = verdict(
        placed,
        host("h1"),
        host("h2"),
        None,
        None,
        live=True,
        shared_storage=SHARED,
        failure="h2: timed out",
    )
    assert not unasked.go
    assert {c.name for c in unasked.failed} == {"cpu", "storage", "networks"}
    other_kind = verdict(
        placed, host("h1"), host("h2", hv="QEMU"), NEEDS, ANSWERS, live=True, shared_storage=SHARED
    )
    assert [c.name for c in other_kind.failed] == ["hypervisor"]


def test_the_best_target_leaves_the_most_memory_and_in_flight_counts() -> None:
    a = TargetVerdict(HostKey("p", "a"), (Check("memory", True, ""),), 1000)
    b = TargetVerdict(HostKey("p", "b"), (Check("memory", True, ""),), 3000)
    c = TargetVerdict(HostKey("p", "c"), (Check("memory", False, ""),), 9000)
    assert best([a, b, c]) is b
    assert best([c]) is None
    tie = TargetVerdict(HostKey("p", "0"), (Check("memory", True, ""),), 3000)
    assert best([b, tie]) is tie  # by name, so the same plan comes out every time
    assert in_flight_by_target([(a.host, 512), (a.host, 256), (b.host, None)]) == {
        a.host: 768,
        b.host: 0,
    }


def test_evacuation_packs_the_biggest_first_and_names_what_fits_nowhere() -> None:
    source = host("h1")
    targets = [host("h2", free=6000), host("h3", free=3000)]
    vms = [
        PlacedVm("p", "h1", vm("small", 1000)),
        PlacedVm("p", "h1", vm("big", 4000)),
        PlacedVm("p", "h1", vm("huge", 9000)),
        PlacedVm("p", "h1", vm("mid", 2000)),
    ]

    def judge(placed: PlacedVm, target: HostStatus, promised: int) -> TargetVerdict:
        needs = MigrationNeeds(memory_mib=placed.vm.memory_mib)
        return verdict(
            placed,
            source,
            target,
            needs,
            TargetAnswers(cpu_compatible=True),
            live=True,
            shared_storage=SHARED,
            in_flight_mib=promised,
        )

    plan = plan_evacuation(source.key, vms, targets, judge)
    placed = {p.placed.vm.name: p.verdict.host.name if p.verdict else None for p in plan.placements}
    # huge fits nowhere; big takes h2 (6000 → 2000 left); mid then h3 (3000 → 1000);
    # small: h2 has 2000 - 1000 = 1000 left after, h3 has 0 → h2.
    assert placed == {"huge": None, "big": "h2", "mid": "h3", "small": "h2"}
    assert not plan.complete
    (stranded,) = plan.stranded
    assert "h2: memory" in stranded.why_not and "short" in stranded.why_not


def test_a_path_that_climbs_out_of_shared_storage_is_outside_it() -> None:
    needs = MigrationNeeds(memory_mib=1, disk_paths=("/OVS/../root/stolen.img", "pool/vol1"))
    answers = TargetAnswers(paths_visible={"/OVS/../root/stolen.img": True, "pool/vol1": True})
    check = check_storage(needs, answers, SHARED)
    # The volume cannot be placed from its name: the target seeing it is what counts.
    assert check.ok is False and check.detail == "outside /OVS: /OVS/../root/stolen.img"


def test_xen_hosts_of_different_toolstacks_are_no_go() -> None:
    from ovmtui.services.flight_plan import check_hypervisor

    xm = MigrationNeeds(memory_mib=1, toolstack="xm")
    check = check_hypervisor(host("h1"), host("h2"), xm, TargetAnswers(toolstack="xl"))
    assert check.ok is False
    assert check.detail == "h1 Xen (xm), h2 Xen (xl): xm and xl cannot migrate"
    assert check_hypervisor(host("h1"), host("h2"), xm, TargetAnswers(toolstack="xm")).ok


def test_the_verdict_names_a_toolstack_mismatch() -> None:
    placed = PlacedVm("p", "h1", vm())
    needs = MigrationNeeds(memory_mib=2048, toolstack="xm")
    answers = TargetAnswers(cpu_compatible=True, toolstack="xl")
    judged = verdict(
        placed, host("h1"), host("h2"), needs, answers, live=True, shared_storage=SHARED
    )
    assert [c.name for c in judged.failed] == ["hypervisor"]
