from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from typing import Any

import pytest

from ovmtui.model import EstateSnapshot, HostKey, HostPoll, Vm, VmState
from ovmtui.services.poller import EstatePoller, PolledHost
from tests.services.fakes import FakeBackend, vm


def make(*backends: FakeBackend, **kw: object) -> tuple[EstatePoller, list[EstateSnapshot]]:
    seen: list[EstateSnapshot] = []
    poller = EstatePoller(
        [PolledHost(b) for b in backends],
        on_snapshot=seen.append,
        publish_delay_s=0.0,
        **kw,  # type: ignore[arg-type]
    )
    return poller, seen


async def test_poll_once_builds_snapshot_with_every_host() -> None:
    a = FakeBackend("p", "a", [vm("web01"), vm("db01", VmState.SHUTOFF)])
    b = FakeBackend("p", "b", [vm("app01")])
    poller, _ = make(a, b)
    snap = await poller.poll_once()
    assert [h.name for h in snap.hosts] == ["a", "b"]
    assert all(h.reachable for h in snap.hosts)
    assert sorted(p.vm.name for p in snap.placed_vms()) == ["app01", "db01", "web01"]
    assert snap.totals().hosts_up == 2


async def test_dead_host_keeps_last_data_and_error_others_unaffected() -> None:
    a = FakeBackend("p", "a", [vm("web01")])
    b = FakeBackend("p", "b", [vm("app01")])
    poller, _ = make(a, b)
    first = await poller.poll_once()
    b.fail = "connection refused"
    second = await poller.poll_once()
    host_b = second.host(HostKey("p", "b"))
    assert host_b is not None
    assert host_b.reachable is False
    assert host_b.error == "connection refused"
    assert [v.name for v in host_b.vms] == ["app01"]  # last known, kept
    assert host_b.taken_at == first.host(HostKey("p", "b")).taken_at  # type: ignore[union-attr]
    assert second.host(HostKey("p", "a")).reachable  # type: ignore[union-attr]


async def test_hung_host_never_delays_others() -> None:
    a = FakeBackend("p", "a", [vm("web01")])
    b = FakeBackend("p", "b", [vm("app01")])
    b.hang.clear()  # b never answers
    poller, seen = make(a, b, interval_s=60)
    task = asyncio.create_task(poller.run())
    try:
        for _ in range(100):
            await asyncio.sleep(0.01)
            if seen and seen[-1].host(HostKey("p", "a")).reachable:  # type: ignore[union-attr]
                break
        snap = seen[-1]
        assert snap.host(HostKey("p", "a")).reachable is True  # type: ignore[union-attr]
        assert snap.host(HostKey("p", "b")).reachable is None  # type: ignore[union-attr]
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_delta_lists_changed_and_removed_only() -> None:
    web, db = vm("web01"), vm("db01")
    # Enough others that two changes are a delta, not a reload of most of the estate.
    a = FakeBackend("p", "a", [web, db, *(vm(f"app{i:02d}") for i in range(10))])
    poller, _ = make(a)
    first = await poller.poll_once()
    a.vms[web.uuid] = dataclasses.replace(web, state=VmState.PAUSED)
    del a.vms[db.uuid]
    second = await poller.poll_once()
    assert second.generation == first.generation + 1
    assert second.delta is not None
    assert second.delta.since == first.generation
    assert [p.vm.name for p in second.delta.changed] == ["web01"]
    assert second.delta.removed == (db.uuid,)
    # Nothing changed in the VMs: only the host's freshness is news.
    third = await poller.poll_once()
    assert third.delta is not None
    assert third.delta.changed == ()
    assert third.delta.removed == ()
    assert third.delta.hosts == (a.host,)


async def test_a_mostly_new_estate_is_published_whole() -> None:
    a = FakeBackend("p", "a", [vm("web01")])
    poller, _ = make(a)
    await poller.poll_once()
    a.vms = {v.uuid: v for v in (vm(f"new{i}") for i in range(5))}
    snap = await poller.poll_once()
    assert snap.delta is None  # consumers read it whole
    assert sorted(p.vm.name for p in snap.placed_vms()) == [f"new{i}" for i in range(5)]


async def test_migrated_vm_is_a_change_not_a_removal() -> None:
    moving = vm("web01")
    a = FakeBackend("p", "a", [moving, *(vm(f"app{i:02d}") for i in range(10))])
    b = FakeBackend("p", "b", [])
    poller, _ = make(a, b)
    await poller.poll_once()
    del a.vms[moving.uuid]
    b.vms[moving.uuid] = moving
    snap = await poller.poll_once()
    assert snap.delta is not None
    assert snap.delta.removed == ()
    assert [(p.host, p.vm.name) for p in snap.delta.changed] == [("b", "web01")]


async def test_cpu_percent_and_observed_start_derived_from_two_polls() -> None:
    v = vm("web01", VmState.SHUTOFF, cpu_time_ns=0, domain_id=None)
    a = FakeBackend("p", "a", [v])
    poller, _ = make(a)
    await poller.poll_once()
    a.vms[v.uuid] = dataclasses.replace(v, state=VmState.RUNNING, domain_id=3, cpu_time_ns=10)
    snap = await poller.poll_once()
    started = snap.find_vm(v.uuid).vm.started_at  # type: ignore[union-attr]
    assert started is not None
    await asyncio.sleep(0.05)
    a.vms[v.uuid] = dataclasses.replace(a.vms[v.uuid], cpu_time_ns=10 + 50_000_000)
    snap = await poller.poll_once()
    found = snap.find_vm(v.uuid)
    assert found is not None
    assert found.vm.started_at == started
    assert found.vm.cpu_percent is not None
    assert 0 < found.vm.cpu_percent <= 100


async def test_a_vm_that_is_not_running_has_no_cpu_percent() -> None:
    off = vm("db01", VmState.SHUTOFF, cpu_time_ns=0, domain_id=None)
    a = FakeBackend("p", "a", [off])
    poller, _ = make(a)
    await poller.poll_once()
    await asyncio.sleep(0.01)
    snap = await poller.poll_once()
    found = snap.find_vm(off.uuid)
    # Not "0.0 %": the same counter read twice says nothing about a VM that cannot run.
    assert found is not None and found.vm.cpu_percent is None
    assert found.vm is off  # and nothing was copied to say so


async def test_backoff_then_event_wakes_early() -> None:
    a = FakeBackend("p", "a", [vm("web01")])
    a.fail = "down"
    poller, _ = make(a, interval_s=30)
    task = asyncio.create_task(poller.run())
    try:
        await asyncio.sleep(0.05)
        assert a.polls == 1  # failed, now backing off for ~30 s
        a.fail = None
        assert a.callback is not None
        a.callback(None)  # a host event: poll now
        for _ in range(50):
            await asyncio.sleep(0.01)
            if a.polls >= 2:
                break
        assert a.polls == 2
        for _ in range(100):  # published within the minimum gap between snapshots
            await asyncio.sleep(0.01)
            if poller.snapshot.hosts[0].reachable:
                break
        assert poller.snapshot.hosts[0].reachable is True
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_burst_of_events_costs_few_polls() -> None:
    a = FakeBackend("p", "a", [vm("web01")])
    poller, _ = make(a, interval_s=30)
    task = asyncio.create_task(poller.run())
    try:
        await asyncio.sleep(0.02)
        for _ in range(50):
            poller.refresh(a.host)
        await asyncio.sleep(0.3)
        assert 2 <= a.polls <= 4
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_initial_snapshot_is_shown_stale_until_host_answers() -> None:
    a = FakeBackend("p", "a", [vm("web01")])
    poller, _ = make(a)
    known = await poller.poll_once()
    b = FakeBackend("p", "a", [])
    b.fail = "no route to host"
    restarted, _ = make(b, initial=known)
    assert restarted.snapshot.hosts[0].stale is True
    assert [v.name for v in restarted.snapshot.hosts[0].vms] == ["web01"]
    after = await restarted.poll_once()
    assert after.hosts[0].reachable is False
    assert after.hosts[0].stale is True
    assert [v.name for v in after.hosts[0].vms] == ["web01"]


async def test_more_hung_hosts_than_poll_slots_never_delay_the_others() -> None:
    # A rack going dark: more silent hosts than concurrent polls. Their polls wait on the
    # network, not on our CPU, so they must not keep the slots from the hosts that answer.
    hung = []
    for i in range(6):
        host = FakeBackend("p", f"dark{i:02}", [vm(f"lost{i:02}")])
        host.hang.clear()
        hung.append(host)
    alive = FakeBackend("p", "alive", [vm("web01")])
    poller, seen = make(*hung, alive, interval_s=60, max_concurrency=2)
    task = asyncio.create_task(poller.run())
    try:
        for _ in range(300):
            await asyncio.sleep(0.01)
            host = seen[-1].host(HostKey("p", "alive")) if seen else None
            if host is not None and host.reachable:
                break
        assert host is not None and host.reachable, "the answering host waited for the dark ones"
        assert [v.name for v in host.vms] == ["web01"]
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def test_usage_update_keeps_every_other_field_of_the_vm() -> None:
    from ovmtui.services.poller import _with_usage
    from tests.vm_samples import vm_with_every_field

    vm = vm_with_every_field()
    expected = dataclasses.replace(vm, started_at=99.0, cpu_percent=None)
    assert _with_usage(vm, 99.0, None) == expected


class SteadyBackend(FakeBackend):
    """Returns the very VM tuple of its last poll while its VMs did not change, as the
    libvirt backend does on an idle host."""

    def __init__(self, *args: object, **kw: object) -> None:
        super().__init__(*args, **kw)  # type: ignore[arg-type]
        self._last: tuple[tuple[object, ...], tuple[Vm, ...]] | None = None

    async def poll(self) -> HostPoll:
        result = await super().poll()
        ids = tuple(map(id, result.vms))
        if self._last is not None and self._last[0] == ids:
            return dataclasses.replace(result, vms=self._last[1])
        self._last = (ids, result.vms)
        return result


async def test_an_idle_host_is_folded_in_without_a_pass_over_its_vms(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from ovmtui.services import poller as poller_module

    derived: list[int] = []
    real_derive = poller_module._derive

    def counted(*args: Any) -> Any:
        derived.append(1)
        return real_derive(*args)

    monkeypatch.setattr(poller_module, "_derive", counted)
    web = vm("web01", cpu_time_ns=10, domain_id=1)
    a = SteadyBackend("p", "a", [web, vm("db01", VmState.SHUTOFF, domain_id=None)])
    poller, _ = make(a)
    await poller.poll_once()
    await poller.poll_once()  # the same VMs again: CPU % 0.0 from two equal readings
    await poller.poll_once()  # the same VMs again, and deriving changed nothing: settled
    derived.clear()
    third = await poller.poll_once()
    assert derived == []  # idle: no pass over the VMs
    host = third.host(HostKey("p", "a"))
    assert host is not None and host.taken_at is not None
    assert third.delta is not None and third.delta.changed == ()
    assert third.delta.hosts == (HostKey("p", "a"),)  # its data is newer: the host moved on
    # A change comes with a new tuple: seen at once.
    a.vms[web.uuid] = dataclasses.replace(web, state=VmState.PAUSED)
    fourth = await poller.poll_once()
    assert derived == [1]
    assert fourth.delta is not None
    assert [p.vm.state for p in fourth.delta.changed] == [VmState.PAUSED]


async def test_idle_hosts_publish_what_hosts_polled_in_full_would() -> None:
    """A VM listed by two hosts at once (mid-migration) while both are otherwise idle: the
    snapshots are those of hosts that never return the same tuple (always the full pass)."""

    async def run(kind: type[FakeBackend]) -> list[tuple[object, ...]]:
        moving = vm("web01")
        a = kind("p", "a", [moving, vm("app01")])
        b = kind("p", "b", [vm("db01")])
        poller, _ = make(a, b)
        seen: list[tuple[object, ...]] = []
        for step in range(8):
            if step == 3:
                b.vms[moving.uuid] = moving  # both hosts list it now
            if step == 6:
                del a.vms[moving.uuid]  # the migration is over
            snap = await poller.poll_once()
            delta = snap.delta
            seen.append(
                (
                    tuple((p.host, p.vm.name) for p in delta.changed) if delta else None,
                    delta.removed if delta else None,
                    tuple(sorted((p.host, p.vm.name) for p in snap.placed_vms())),
                )
            )
        return seen

    idle = await run(SteadyBackend)
    assert idle == await run(FakeBackend)
    assert any(changed for changed, _removed, _placed in idle[4:6])  # claimed back and forth


class FarBackend(FakeBackend):
    """A host some round trips away: its poll waits (connect, command), then parses."""

    in_flight = 0
    most_in_flight = 0
    parsing = 0
    most_parsing = 0

    def __init__(self, name: str, wait_s: float = 0.05) -> None:
        super().__init__("p", name, [vm(f"{name}-vm")])
        self.wait_s = wait_s

    async def poll(self) -> HostPoll:
        from ovmtui.backend.pacing import waiting, working

        cls = FarBackend
        async with waiting():
            cls.in_flight += 1
            cls.most_in_flight = max(cls.most_in_flight, cls.in_flight)
            try:
                await asyncio.sleep(self.wait_s)  # the network: no CPU
                await self.hang.wait()
            finally:
                cls.in_flight -= 1
        async with working():
            cls.parsing += 1
            cls.most_parsing = max(cls.most_parsing, cls.parsing)
            try:
                await asyncio.sleep(0.001)  # the parse
                return await super().poll()
            finally:
                cls.parsing -= 1


@pytest.fixture
def far() -> Any:
    FarBackend.in_flight = FarBackend.most_in_flight = 0
    FarBackend.parsing = FarBackend.most_parsing = 0
    return FarBackend


async def test_polls_waiting_on_their_hosts_overlap_beyond_the_working_slots(far: Any) -> None:
    # Twelve far hosts, two working slots: their waits overlap (all twelve at once), their
    # parses do not exceed the two slots. Before issue 13 a poll held its slot while it
    # waited: two at a time.
    hosts = [far(f"far{i:02}") for i in range(12)]
    poller, _ = make(*hosts, max_concurrency=2)
    snap = await poller.poll_once()
    assert all(h.reachable for h in snap.hosts)
    assert far.most_in_flight == 12
    assert far.most_parsing <= 2
    assert poller.pacing.working_count.most <= 2
    assert poller.pacing.waiting_count.most == 12


async def test_the_waiting_bound_holds_too(far: Any) -> None:
    hosts = [far(f"far{i:02}") for i in range(12)]
    poller, _ = make(*hosts, max_concurrency=2, max_waiting=4)
    await poller.poll_once()
    assert far.most_in_flight == 4
    assert poller.pacing.waiting_count.most == 4


async def test_more_silent_far_hosts_than_waiting_slots_never_delay_the_others(far: Any) -> None:
    # A dark rack larger than the waiting bound: after WAIT_HOLD_S their waits let their
    # slots go, and the host that answers is polled.
    hung = []
    for i in range(6):
        host = far(f"dark{i:02}", wait_s=0.0)
        host.hang.clear()
        hung.append(host)
    alive = far("alive", wait_s=0.0)
    poller, seen = make(*hung, alive, interval_s=60, max_concurrency=2, max_waiting=2)
    poller.pacing.wait_hold_s = 0.1
    task = asyncio.create_task(poller.run())
    try:
        host = None
        for _ in range(300):
            await asyncio.sleep(0.01)
            host = seen[-1].host(HostKey("p", "alive")) if seen else None
            if host is not None and host.reachable:
                break
        assert host is not None and host.reachable, "the answering host waited for the dark ones"
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
