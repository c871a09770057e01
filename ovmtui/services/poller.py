"""The one service that polls hosts and publishes estate snapshots.

Each host has its own loop, so a slow or dead host only delays itself. A host loop never
overlaps itself, backs off after failures, and wakes early after an action or a host event.
Results are folded into an immutable ``EstateSnapshot`` with a delta against the previous
one, published through a callback at most every ``publish_delay_s`` so a round of a hundred
hosts costs the UI one update, not a hundred.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import os
import random
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence

from ovmtui.backend.base import Backend, withheld
from ovmtui.backend.pacing import WAIT_SLOTS, WORK_HOLD_S, Pacing, paced
from ovmtui.errors import OvmError
from ovmtui.model import (
    EstateDelta,
    EstateSnapshot,
    HostKey,
    HostPoll,
    HostRole,
    HostStatus,
    PlacedVm,
    Vm,
    cpu_usage_percent,
    vm_with_readings,
)
from ovmtui.services.garbage import GarbagePolicy

log = logging.getLogger(__name__)

SnapshotCallback = Callable[[EstateSnapshot], None]

MAX_BACKOFF_S = 60.0
EVENT_DEBOUNCE_S = 0.05
MIN_PUBLISH_GAP_S = 0.25
FIRST_ROUND_WAIT_S = 1.0
# How long a working phase holds its slot before it counts as waiting; a latency knob
# (docs/latency.md). The waiting bound's own: pacing.WAIT_SLOTS, pacing.WAIT_HOLD_S.
SLOT_HOLD_S = WORK_HOLD_S


def default_concurrency() -> int:
    """How many polls work (parse, fold) at once: as many as the CPUs this process may use, 2 to 4.

    More only queue for those CPUs and for the GIL, and the event loop (keys, the screen)
    queues with them. Measured on a cold start of 100 test-driver hosts x 100 VMs on 2
    CPUs: with 4 polls at once the loop waited 970 ms for a CPU during the 4.6 s round and
    stalled up to 17-21 ms; with 2, 300 ms and 9-17 ms, the round 10 % longer. 8 at once
    stalled it 21-43 ms, 16 twice that. A latency knob: see docs/latency.md.
    """
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        cpus = os.cpu_count() or 1
    return max(2, min(4, cpus))


@dataclasses.dataclass(frozen=True, slots=True)
class PolledHost:
    """A backend and what the estate file says about its host."""

    backend: Backend
    roles: tuple[HostRole, ...] = ()


class EstatePoller:
    def __init__(
        self,
        hosts: Sequence[PolledHost],
        *,
        on_snapshot: SnapshotCallback | None = None,
        interval_s: float = 5.0,
        max_concurrency: int | None = None,
        max_waiting: int = WAIT_SLOTS,
        publish_delay_s: float = 0.05,
        initial: EstateSnapshot | None = None,
        clock: Callable[[], float] = time.time,
        garbage: GarbagePolicy | None = None,
        on_definitions: Callable[[HostKey, HostPoll], None] | None = None,
        pools: Sequence[str] = (),
    ) -> None:
        """``on_definitions``: told of each poll that read definitions (``HostPoll``), for
        the repository to keep what changed. ``pools``: the estate's pools in order, those
        without a host yet included."""
        self._on_definitions = on_definitions
        self._hosts = {h.backend.host: h for h in hosts}
        self._garbage = garbage if garbage is not None else GarbagePolicy()
        self._order = [h.backend.host for h in hosts]
        self._pools = tuple(dict.fromkeys([*pools, *(key.pool for key in self._order)]))
        self._on_snapshot = on_snapshot
        self.interval_s = interval_s
        # Two bounds (see _bounded and backend/pacing.py): polls waiting on their hosts
        # (wide, max_waiting) and polls working (narrow: see default_concurrency).
        self._pacing = Pacing(max_concurrency or default_concurrency(), max_waiting)
        self._publish_delay_s = publish_delay_s
        self._clock = clock
        self._status: dict[HostKey, HostStatus] = {}
        self._failures: dict[HostKey, int] = {}
        self._answers: dict[HostKey, int] = {}  # polls answered (or failed), by host
        self._news = asyncio.Event()  # an answer came or a snapshot went out (repoll waits)
        self._wake: dict[HostKey, asyncio.Event] = {}
        self._where: dict[str, HostKey] = {}  # uuid -> host, to tell a migration from a loss
        # Per host, the VMs its backend last returned (the very tuple), and the hosts for
        # which deriving from that tuple again changes nothing (see _record_success).
        self._raw: dict[HostKey, tuple[Vm, ...]] = {}
        self._settled: set[HostKey] = set()
        # Changes since the last snapshot, placed as they were recorded: publishing then
        # costs a copy, not a lookup per VM (it ran 3-6 ms at once at 1,000 changes).
        self._pending_changed: dict[str, PlacedVm] = {}
        self._pending_removed: set[str] = set()
        self._pending_hosts: set[HostKey] = set()
        self._publish_task: asyncio.Task[None] | None = None
        self._last_publish = float("-inf")
        # Hosts whose first answer the first snapshot waits for (at most FIRST_ROUND_WAIT_S),
        # so the operator's first view is the whole estate, not whichever host was fastest.
        self._awaiting: set[HostKey] = set()
        self._round_done = asyncio.Event()
        self._hold_until = 0.0
        self._tasks: dict[HostKey, asyncio.Task[None]] = {}
        self._running = False
        self._generation = 0
        self._snapshot = EstateSnapshot(hosts=(), generation=0)
        self.seed(initial)

    # -- public ---------------------------------------------------------------------------

    @property
    def snapshot(self) -> EstateSnapshot:
        return self._snapshot

    @property
    def pacing(self) -> Pacing:
        """The two bounds (tests and benches read how many were held at once)."""
        return self._pacing

    @property
    def hosts(self) -> tuple[HostKey, ...]:
        """Every host polled, in the estate's order."""
        return tuple(self._order)

    def backend(self, key: HostKey) -> Backend | None:
        host = self._hosts.get(key)
        return None if host is None else host.backend

    async def run(self) -> None:
        """Poll every host forever (until cancelled)."""
        self._garbage.before_first_poll()
        self._awaiting = set(self._order)
        self._hold_until = asyncio.get_running_loop().time() + FIRST_ROUND_WAIT_S
        self._running = True
        for index, key in enumerate(self._order):
            self._start_loop(key, index)
        try:
            # Until cancelled: hosts come and go meanwhile (set_hosts), each its own task.
            await asyncio.get_running_loop().create_future()
        finally:
            self._running = False
            tasks = list(self._tasks.values())
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            self._tasks.clear()

    def _start_loop(self, key: HostKey, index: int) -> None:
        self._wake[key] = asyncio.Event()
        self._hosts[key].backend.set_event_callback(self._event_callback(key))
        task = asyncio.create_task(self._host_loop(key, index), name=f"poll {key}")
        self._tasks[key] = task

    async def set_hosts(self, hosts: Sequence[PolledHost], pools: Sequence[str]) -> None:
        """Poll ``hosts`` from now on (the estate file changed): hosts no longer there, or
        with a new backend, stop being polled and their backends are closed; new ones are
        polled at once; the others carry on, their roles updated. One whole snapshot says
        it to every consumer."""
        new = {h.backend.host: h for h in hosts}
        gone = [
            key
            for key, old in self._hosts.items()
            if key not in new or new[key].backend is not old.backend
        ]
        for key in gone:
            task = self._tasks.pop(key, None)
            if task is not None:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
            old = self._hosts.pop(key)
            old.backend.set_event_callback(None)
            await old.backend.close()
            self._forget(key)
        order = [h.backend.host for h in hosts]
        statuses: dict[HostKey, HostStatus] = {}
        for key in order:
            host = new[key]
            status = self._status.get(key)
            if status is None:
                status = _unpolled(key, host)
            elif status.roles != host.roles:
                status = dataclasses.replace(status, roles=host.roles)
            statuses[key] = status
        self._hosts = dict(new)
        self._order = order
        self._status = statuses
        self._pools = tuple(dict.fromkeys([*pools, *(key.pool for key in order)]))
        if self._running:
            for index, key in enumerate(order):
                if key not in self._tasks:
                    self._start_loop(key, index)
        self._settled.clear()
        self._pending_changed.clear()
        self._pending_removed.clear()
        self._pending_hosts.clear()
        self._emit(self._build(delta=None))

    def _forget(self, key: HostKey) -> None:
        self._status.pop(key, None)
        self._failures.pop(key, None)
        self._answers.pop(key, None)
        self._wake.pop(key, None)
        self._raw.pop(key, None)
        self._settled.discard(key)
        self._awaiting.discard(key)
        for uuid in [uuid for uuid, where in self._where.items() if where == key]:
            del self._where[uuid]

    async def poll_once(self) -> EstateSnapshot:
        """Poll every host once, concurrently; for headless commands."""
        self._garbage.before_first_poll()
        await asyncio.gather(*(self._poll_host(key) for key in self._order))
        if self._publish_task is not None:
            self._publish_task.cancel()
            self._publish_task = None
        self._publish()
        return self._snapshot

    async def repoll(self, keys: Sequence[HostKey], timeout_s: float = 30.0) -> None:
        """Poll these hosts now and return once the snapshot holds their new data: through
        their loops while ``run`` polls (a wake-up each), else directly (a headless command,
        which polls only when asked)."""
        if not self._running:
            await asyncio.gather(*(self._poll_host(key) for key in keys))
            if self._publish_task is not None:
                self._publish_task.cancel()
                self._publish_task = None
            self._publish()
            return
        before = {key: self._answers.get(key, 0) for key in keys}
        for key in keys:
            self.refresh(key)
        async with asyncio.timeout(timeout_s):
            # Each answer, and each snapshot published, sets the event: checked again then.
            while any(self._answers.get(key, 0) == n for key, n in before.items()) or (
                self._publish_task is not None
            ):
                self._news.clear()
                await self._news.wait()

    def refresh(self, host: HostKey | None = None) -> None:
        """Poll ``host`` (or every host) now, without waiting for the interval."""
        keys = self._order if host is None else [host]
        for key in keys:
            event = self._wake.get(key)
            if event is not None:
                event.set()

    async def close(self) -> None:
        self._garbage.stop()
        for host in self._hosts.values():
            host.backend.set_event_callback(None)
            await host.backend.close()

    # -- polling --------------------------------------------------------------------------

    def _event_callback(self, key: HostKey) -> Callable[[str | None], None]:
        def on_event(_uuid: str | None) -> None:
            self.refresh(key)

        return on_event

    async def _host_loop(self, key: HostKey, index: int) -> None:
        wake = self._wake[key]
        # Spread steady-state polls over the interval: polls fired at the same instant
        # stall the event loop far more than the same polls side by side.
        phase = self.interval_s * index / max(1, len(self._order))
        first = True
        while True:
            wake.clear()
            ok = await self._poll_host(key)
            if first:
                delay = self.interval_s + phase
                first = False
            elif ok:
                delay = self.interval_s
            else:
                failures = self._failures.get(key, 1)
                delay = min(MAX_BACKOFF_S, self.interval_s * 2 ** (failures - 1))
                delay *= random.uniform(0.9, 1.1)  # keep retries of many hosts apart
            if not wake.is_set():
                # A timeout block, not wait_for(): that would cost a task a poll.
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(delay):
                        await wake.wait()
            if wake.is_set():
                # A burst of events (or a bulk action) costs one poll, not one per event.
                await asyncio.sleep(EVENT_DEBOUNCE_S)

    async def _poll_host(self, key: HostKey) -> bool:
        backend = self._hosts[key].backend
        try:
            result = await self._bounded(backend.poll)
        except OvmError as exc:
            if key in self._status:
                self._record_failure(key, exc.message)
            return False
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a backend bug must not kill the other hosts' polling
            log.exception("poll of %s failed unexpectedly", key)
            if key in self._status:
                self._record_failure(key, f"internal error: {type(exc).__name__}: {exc}")
            return False
        if key not in self._status:
            return False  # left the estate while it was asked (set_hosts)
        # Folding is work on the loop: in a folding slot, on a turn of the loop of its own
        # (see backend/pacing.py and docs/latency.md).
        async with self._pacing.folding():
            self._record_success(key, result)
        return True

    async def _bounded(self, poll: Callable[[], Awaitable[HostPoll]]) -> HostPoll:
        """Run ``poll`` under this poller's two bounds (``backend/pacing.py``).

        The whole poll is waiting (the wide bound: connects and commands in flight) except
        the phases its backend marks as working (parsing: the narrow bound), and a waiting
        phase lets its slot go after ``WAIT_HOLD_S``, so that a rack of silent hosts cannot
        keep the hosts that answer from being polled. No poll holds a CPU slot while it
        waits on its host.
        """
        with paced(self._pacing):
            async with self._pacing.waiting():
                return await poll()

    # -- folding results into the estate --------------------------------------------------

    def seed(self, initial: EstateSnapshot | None) -> None:
        """Start from last-known data (shown stale until each host answers); before run()."""
        previous = {h.key: h for h in initial.hosts} if initial is not None else {}
        for key in self._order:
            host = self._hosts[key]
            old = previous.get(key)
            status = _unpolled(key, host)
            if old is not None:
                # Last-known data: shown at once, flagged stale until the host answers.
                status = dataclasses.replace(
                    status,
                    facts=old.facts,
                    vms=old.vms,
                    taken_at=old.taken_at,
                    stale=True,
                    failed_at=old.failed_at if old.reachable is False else None,
                )
            self._status[key] = status
            for vm in status.vms:
                self._where.setdefault(vm.uuid, key)
        self._settled.clear()
        self._snapshot = self._build(delta=None)

    def adopt(self, known: EstateSnapshot) -> None:
        """Take last-known data (a restored repository's) for hosts that have not answered.

        Hosts answering now keep their live data: it is newer than anything recorded. The
        others show what was recorded, stale, until they answer; then the next poll
        reconciles the two.
        """
        previous = {h.key: h for h in known.hosts}
        for key, status in self._status.items():
            old = previous.get(key)
            if old is None or (status.reachable is True and not status.stale):
                continue
            if status.taken_at is not None and (old.taken_at or 0.0) <= status.taken_at:
                continue
            for vm in status.vms:
                if self._where.get(vm.uuid) == key:
                    del self._where[vm.uuid]
            self._status[key] = dataclasses.replace(
                status, facts=old.facts, vms=old.vms, taken_at=old.taken_at, stale=True
            )
            for vm in old.vms:
                self._where.setdefault(vm.uuid, key)
        self._settled.clear()
        # Whole, not a delta: whatever was pending is in it.
        self._pending_changed.clear()
        self._pending_removed.clear()
        self._pending_hosts.clear()
        self._emit(self._build(delta=None))

    def _answered(self, key: HostKey) -> None:
        self._answers[key] = self._answers.get(key, 0) + 1
        self._news.set()
        if key in self._awaiting:
            self._awaiting.discard(key)
            if not self._awaiting:
                self._round_done.set()

    def _record_success(self, key: HostKey, result: HostPoll) -> None:
        self._answered(key)
        if result.definitions and self._on_definitions is not None:
            self._on_definitions(key, result)
        old = self._status[key]
        raw, last_raw = result.vms, self._raw.get(key)
        self._raw[key] = raw
        if raw is last_raw and key in self._settled:
            # Idle: the backend returned the very VMs of its last poll, and deriving from
            # them then changed nothing, so it would not now: no pass over the VMs (at
            # 10,000 VMs it cost ~10 ms a poll; see docs/latency.md).
            self._record_status(key, old, old.vms, result)
            self._schedule_publish()
            return
        self._settled.discard(key)
        old_by_uuid = {vm.uuid: vm for vm in old.vms}
        vms = _derive(old_by_uuid, old.taken_at, raw, result.taken_at)
        if len(vms) == len(old.vms) and all(a is b for a, b in zip(vms, old.vms, strict=True)):
            vms = old.vms  # nothing changed: the same tuple lets every consumer skip this host
        self._record_status(key, old, vms, result)
        changed, removed, where = self._pending_changed, self._pending_removed, self._where
        settled = raw is last_raw and len(vms) == len(old.vms)
        pool, name = key.pool, key.name
        for vm in vms:
            uuid = vm.uuid
            old_vm = old_by_uuid.pop(uuid, None)
            placed = where.get(uuid)
            if (old_vm is not vm and old_vm != vm) or placed is not key:
                changed[uuid] = PlacedVm(pool, name, vm)
                removed.discard(uuid)  # gone from one host, now on this one: it moved
                settled = False
                if placed is not None:
                    self._settled.discard(placed)  # that host must claim it again
            where[uuid] = key
        for uuid in old_by_uuid:
            settled = False
            if where.get(uuid) == key:
                del where[uuid]
                changed.pop(uuid, None)
                removed.add(uuid)
        if settled:
            self._settled.add(key)
        self._schedule_publish()

    def _record_status(
        self, key: HostKey, old: HostStatus, vms: tuple[Vm, ...], result: HostPoll
    ) -> None:
        status = dataclasses.replace(
            old,
            facts=result.facts,
            vms=vms,
            taken_at=result.taken_at,
            reachable=True,
            error=None,
            failed_at=None,
            stale=False,
            warnings=result.warnings,
            capabilities=self._hosts[key].backend.capabilities,
            withheld=tuple(withheld(self._hosts[key].backend).items()),
        )
        self._failures.pop(key, None)
        self._status[key] = status
        if status != old:
            self._pending_hosts.add(key)

    def _record_failure(self, key: HostKey, message: str) -> None:
        self._answered(key)
        self._settled.discard(key)
        self._failures[key] = self._failures.get(key, 0) + 1
        old = self._status[key]
        # Keep the last good data: an operator needs to see what ran there, and since when.
        # failed_at is when it stopped answering, not its latest retry ("unreachable for
        # 4 min" counts from there).
        # Seeded from the repository, a host that was down then is counted down since then.
        since = old.failed_at if old.reachable is not True else None
        status = dataclasses.replace(
            old, reachable=False, error=message, failed_at=since or self._clock()
        )
        self._status[key] = status
        if (old.reachable, old.error) != (False, message):
            self._pending_hosts.add(key)
        self._schedule_publish()

    def _schedule_publish(self) -> None:
        if self._publish_task is not None:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self._publish()
            return
        self._publish_task = loop.create_task(self._publish_later())

    async def _publish_later(self) -> None:
        # Results that arrive close together make one snapshot; and snapshots come at most
        # every MIN_PUBLISH_GAP_S, so a hundred hosts answering at their own phase cost the
        # UI a few updates a second, not a hundred.
        loop = asyncio.get_running_loop()
        wait = max(self._publish_delay_s, self._last_publish + MIN_PUBLISH_GAP_S - loop.time())
        try:
            if self._awaiting:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(
                        self._round_done.wait(), max(0.0, self._hold_until - loop.time())
                    )
            await asyncio.sleep(wait)
        finally:
            self._publish_task = None
        self._publish()

    def _publish(self) -> None:
        pending = self._pending_changed or self._pending_removed or self._pending_hosts
        if not pending and self._generation > 0:
            return
        if 2 * (len(self._pending_changed) + len(self._pending_removed)) > len(self._where):
            # Most of the estate changed (the first poll, a reconnect of everything): a
            # delta would cost more to build and to apply than reading the snapshot whole.
            self._pending_changed.clear()
            self._pending_removed.clear()
            self._pending_hosts.clear()
            self._emit(self._build(None))
            return
        delta = EstateDelta(
            since=self._generation,
            changed=tuple(self._pending_changed.values()),
            removed=tuple(self._pending_removed),
            hosts=tuple(sorted(self._pending_hosts)),
        )
        self._pending_changed.clear()
        self._pending_removed.clear()
        self._pending_hosts.clear()
        self._emit(self._build(delta))

    def _emit(self, snapshot: EstateSnapshot) -> None:
        self._snapshot = snapshot
        self._news.set()
        try:
            loop: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:  # no loop: a synchronous caller
            loop = None
        if loop is not None:
            self._last_publish = loop.time()
        if self._on_snapshot is not None:
            self._on_snapshot(snapshot)
        if loop is None:
            self._garbage.after_publish()
        else:
            # On a turn of its own: the collection (1-2 ms at 200 hosts polled every 2 s)
            # and the publish (as much) would otherwise stall the loop as one (docs/latency.md).
            loop.call_soon(self._garbage.after_publish)

    def _build(self, delta: EstateDelta | None) -> EstateSnapshot:
        self._generation += 1
        return EstateSnapshot.of_hosts(
            self._status,  # in self._order: seed() made it so, and keys are never added
            generation=self._generation,
            taken_at=self._clock(),
            delta=delta,
            pools=self._pools,
        )


def _unpolled(key: HostKey, host: PolledHost) -> HostStatus:
    """A host's status before its first answer: what the estate and its backend say."""
    return HostStatus(
        pool=key.pool,
        name=key.name,
        address=host.backend.address,
        roles=host.roles,
        capabilities=host.backend.capabilities,
        withheld=tuple(withheld(host.backend).items()),
    )


def _derive(
    previous: Mapping[str, Vm], old_taken_at: float | None, vms: tuple[Vm, ...], taken_at: float
) -> tuple[Vm, ...]:
    """Fill in what only two polls can tell: CPU % and, when the host does not say, uptime
    (``previous``: the host's VMs of the last poll, by UUID)."""
    if not previous:
        return vms
    derived: list[Vm] = []
    for vm in vms:
        old = previous.get(vm.uuid)
        if old is None:
            derived.append(vm)
            continue
        started_at = vm.started_at
        if started_at is None and vm.state.is_active:
            if old.state.is_active:
                started_at = old.started_at
            elif old_taken_at is not None:
                # Seen starting between two polls: the start time is known to within one
                # interval, which is worth more than nothing at 3 a.m.
                started_at = taken_at
        percent = _cpu_percent(old, vm, old_taken_at, taken_at)
        if percent is None:
            percent = vm.cpu_percent  # the host may measure it itself (xentop)
        if started_at != vm.started_at or percent != vm.cpu_percent:
            vm = _with_usage(vm, started_at, percent)
        derived.append(vm)
    return tuple(derived)


def _with_usage(vm: Vm, started_at: float | None, cpu_percent: float | None) -> Vm:
    """The VM with what two polls tell of it (see _derive), everything else kept."""
    return vm_with_readings(
        vm,
        state=vm.state,
        vcpus=vm.vcpus,
        memory_mib=vm.memory_mib,
        cpu_time_ns=vm.cpu_time_ns,
        cpu_percent=cpu_percent,
        started_at=started_at,
    )


def _cpu_percent(old: Vm, new: Vm, old_at: float | None, new_at: float) -> float | None:
    if (
        old_at is None
        or not new.state.is_active  # a VM that is not running uses no CPU: no figure at all
        or new.domain_id != old.domain_id  # restarted: the counter began again
    ):
        return None
    return cpu_usage_percent(old.cpu_time_ns, new.cpu_time_ns, new.vcpus, new_at - old_at)
