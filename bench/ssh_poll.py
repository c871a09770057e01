"""Polling Xen hosts over SSH: 200 hosts x 50 VMs served by real OpenSSH sshd on loopback.

    .venv/bin/python bench/ssh_poll.py        (as root: sshd needs /run/sshd)

(a) a full refresh (fetch, parse, snapshot: `EstatePoller.poll_once()`) costs at most 1.5x
    a round of bare `true` commands on the same 200 open connections, same concurrency
(b) no new connection after start-up
(c) at most 8 concurrent channels on any connection
(d) while `EstatePoller.run()` polls every 2 s, the asyncio loop's p99 stall is < 5 ms and
    its worst < 50 ms (a 1 ms ticker: stall = how late each wake-up is)
(e) connecting to all 200 costs at most 1.2x bare `asyncssh.connect`s in the same run

Baselines run as the poller runs: at most `max_concurrency` (its default) at once. (c) counts
channels by wrapping asyncssh's channel table in this process, and also fires 3x
MAX_CHANNELS polls at one backend at once. (d) judges the steady state, after the first two
intervals (the first round polls every host at once, bounded); the whole run is shown too,
with an idle-loop floor and, for contrast, one round with no bound at all.

The hosts are `tests/sshfake` (13 sshd processes, one port per host, fake `xm` answering
reads by `cat` of pre-rendered outputs; `xm list` cycles through CPU_STEPS renderings in
which running VMs' CPU time advances, as it does on a live host). Real hosts do not share
ovmtui's CPUs, so with two CPUs or more the servers (and every session they fork) run on
the last CPU and this client on the others; `--shared-cpus` lets them share, as the first
version of this script did.
Every figure is paired with a baseline measured in the same run, rounds interleaved, and
the load average is printed: on a busy machine read the ratios.
"""

from __future__ import annotations

import asyncio
import gc
import os
import secrets
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import asyncssh
from _common import header, median, ms, row, title, verdict

from ovmtui.app import tune_process_for_ui
from ovmtui.backend import ssh_loop, xen_ssh
from ovmtui.backend.xen_ssh import MAX_CHANNELS, XenSshBackend
from ovmtui.model import HostKey, HostRole
from ovmtui.services.poller import EstatePoller, PolledHost, default_concurrency
from tests.sshfake.sshd import FakeXenHost, SshdServer

HOSTS = 200
DOMAINS = 50
PORTS_PER_SSHD = 16
REPS = 7  # rounds of (a)
CONNECT_REPS = 4  # rounds of each side of (e), in the order ABBA ABBA
INTERVAL_S = 2.0
# (d): long enough that every host makes its first periodic full poll (due 45-75 s after
# the first round, see xen_ssh.FULL_POLL_AFTER_S) inside the steady window.
RUN_S = 80.0
WARMUP_S = 2 * INTERVAL_S  # (d): the first round (every host at once) and the spreading
TICK_S = 0.001
# Running VMs' CPU time moves from one `xm list` to the next, as on live hosts (two thirds
# of them, by up to 2 s a poll): a VM whose row never changes would cost a poll less.
# Enough renderings that a host's cycle does not wrap (CPU time going back) within (d).
CPU_STEPS = 64
CHANNEL_LIMIT = 8
# The poller's own bound on concurrent polls (and so on first connects): the baselines use it.
BOUND = default_concurrency()


def load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} {five:.2f} {fifteen:.2f} on {os.cpu_count()} CPUs"


def separate_cpus(server: SshdServer) -> str:
    """Put the servers on the last CPU and this process on the others, where possible."""
    cpus = sorted(os.sched_getaffinity(0))
    if "--shared-cpus" in sys.argv or len(cpus) < 2:
        return f"shared: servers and client on {len(cpus)} CPU(s)"
    servers, client = {cpus[-1]}, set(cpus[:-1])
    for pid in server.sshd_pids:  # their sessions inherit it
        os.sched_setaffinity(pid, servers)
    os.sched_setaffinity(0, client)  # before asyncio starts any thread: they inherit it
    return f"servers on CPU {cpus[-1]}, client on CPU {', '.join(map(str, sorted(client)))}"


def pct(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


class GcMeter:
    """Time spent in the cyclic garbage collector (gc.callbacks), and its longest pause."""

    def __init__(self) -> None:
        self.total = 0.0
        self.worst = 0.0
        self.pauses = 0
        self._began = 0.0
        gc.callbacks.append(self._callback)

    def _callback(self, phase: str, _info: dict[str, int]) -> None:
        if phase == "start":
            self._began = time.perf_counter()
            return
        pause = time.perf_counter() - self._began
        self.total += pause
        self.worst = max(self.worst, pause)
        self.pauses += 1

    def reset(self) -> None:
        self.total, self.worst, self.pauses = 0.0, 0.0, 0


GC = GcMeter()


class CallCounter:
    """Completed calls of one XenSshBackend coroutine method, by every backend of this
    process (a wrapper, here only)."""

    def __init__(self, method: str) -> None:
        self.count = 0
        original = getattr(XenSshBackend, method)
        counter = self

        async def counted(backend: XenSshBackend, *args: Any) -> Any:
            result = await original(backend, *args)
            counter.count += 1
            return result

        setattr(XenSshBackend, method, counted)


POLLS = CallCounter("poll")
FULL_POLLS = CallCounter("_full_poll")  # info, long listing, vm.cfg files


async def bounded(jobs: Sequence[Callable[[], Awaitable[Any]]], bound: int) -> list[Any]:
    limit = asyncio.Semaphore(bound)

    async def one(job: Callable[[], Awaitable[Any]]) -> Any:
        async with limit:
            return await job()

    return await asyncio.gather(*(one(job) for job in jobs))


async def timed(work: Callable[[], Awaitable[Any]]) -> float:
    gc.collect()  # leftovers of the previous round are not this round's work
    GC.reset()
    start = time.perf_counter()
    await work()
    return time.perf_counter() - start


def make_backend(index: int, host: FakeXenHost) -> XenSshBackend:
    return XenSshBackend(
        HostKey(f"pool{index // 10:02d}", host.name),
        host.ssh_target,
        identity=str(host.client_key),
        known_hosts=str(host.known_hosts),
        toolstack="xm",
    )


def conn_of(backend: XenSshBackend) -> asyncssh.SSHClientConnection:
    conn = backend._conn
    assert conn is not None, f"{backend.host} is not connected"
    return conn


# --------------------------------------------------------------------------- (c) channels


class ChannelCounter:
    """Open channels per connection, from the open request until asyncssh forgets them.

    Wraps `SSHConnection.add_channel` in this process (not in ovmtui): after each add, the
    connection's channel table holds every channel not yet fully closed, so its length is
    the number the server sees as sessions (give or take its own late freeing).
    """

    def __init__(self) -> None:
        self.peak: dict[int, int] = {}
        self.opened: dict[int, int] = {}
        cls = asyncssh.connection.SSHConnection
        original = cls.add_channel
        counter = self

        def add_channel(conn: Any, chan: Any) -> int:
            number = original(conn, chan)
            key = id(conn)
            counter.peak[key] = max(counter.peak.get(key, 0), len(conn._channels))
            counter.opened[key] = counter.opened.get(key, 0) + 1
            return number

        cls.add_channel = add_channel  # type: ignore[method-assign]

    def reset(self) -> None:
        self.peak.clear()

    def worst(self, backends: Sequence[XenSshBackend]) -> int:
        return max((self.peak.get(id(b._conn), 0) for b in backends), default=0)

    def channels(self, backends: Sequence[XenSshBackend]) -> int:
        return sum(self.opened.get(id(b._conn), 0) for b in backends)


# --------------------------------------------------------------------------- loop stalls


class StallProbe:
    """A ticker sleeping `TICK_S`: each wake-up's lateness is a loop stall.

    Also records how much of each stall this thread spent on the CPU: a stall with as much
    CPU as wall time is the loop's own work; one without is the OS running someone else
    (sshd, its sessions, other load on the machine).
    """

    def __init__(self) -> None:
        self.samples: list[tuple[float, float, float]] = []  # (when, stall, thread CPU)
        self._task: asyncio.Task[None] | None = None

    async def _tick(self) -> None:
        while True:
            wall, cpu = time.perf_counter(), time.thread_time()
            await asyncio.sleep(TICK_S)
            now = time.perf_counter()
            self.samples.append((now, now - wall - TICK_S, time.thread_time() - cpu))

    def start(self) -> None:
        self.samples.clear()
        self._task = asyncio.create_task(self._tick())

    async def stop(self) -> None:
        assert self._task is not None
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)

    def stalls(self, since: float = float("-inf")) -> list[float]:
        return [stall for when, stall, _ in self.samples if when >= since]

    def worst(self, since: float = float("-inf")) -> tuple[float, float]:
        """(stall, thread CPU during it) of the longest stall."""
        _, stall, cpu = max((s for s in self.samples if s[0] >= since), key=lambda s: s[1])
        return stall, cpu


async def stall_of(work: Callable[[], Awaitable[Any]]) -> float:
    probe = StallProbe()
    probe.start()
    await asyncio.sleep(0.02)
    await work()
    await probe.stop()
    return max(probe.stalls())


# --------------------------------------------------------------------------- (e)


async def connect_backends(server: SshdServer) -> float:
    backends = [make_backend(i, h) for i, h in enumerate(server.hosts)]
    try:
        return await timed(lambda: bounded([b.connect for b in backends], BOUND))
    finally:
        await asyncio.gather(*(b.close() for b in backends))


async def connect_bare(server: SshdServer) -> float:
    conns: list[asyncssh.SSHClientConnection] = []

    async def one(host: FakeXenHost) -> None:
        conns.append(await asyncssh.connect(**host.connect_kwargs()))

    try:
        return await timed(lambda: bounded([lambda h=h: one(h) for h in server.hosts], BOUND))
    finally:
        for conn in conns:
            conn.close()
        await asyncio.gather(*(c.wait_closed() for c in conns), return_exceptions=True)


async def connect_cost(server: SshdServer) -> Callable[[], None]:
    """Measured first, on an idle estate; returns the printer of the results."""
    bare, ours, bare_cpu, ours_cpu = [], [], [], []
    for rep in range(CONNECT_REPS):
        pair = (
            (connect_bare, connect_backends) if rep % 2 == 0 else (connect_backends, connect_bare)
        )
        for side in pair:
            cpu = time.process_time()
            (bare if side is connect_bare else ours).append(await side(server))
            (bare_cpu if side is connect_bare else ours_cpu).append(time.process_time() - cpu)
            await asyncio.sleep(0.5)  # let sshd reap the closed connections

    def report() -> None:
        title(f"(e) connecting to all {HOSTS} hosts, {BOUND} at a time (the poller's bound)")
        base, cost = median(bare), median(ours)
        row("bare asyncssh.connect x 200 (baseline)", ms(base), f"median of {CONNECT_REPS}")
        row("XenSshBackend.connect() x 200", ms(cost), f"median of {CONNECT_REPS}")
        row(
            "  per connection, bare / backend",
            f"{ms(base / HOSTS * BOUND)} / {ms(cost / HOSTS * BOUND)}",
            f"wall with {BOUND} in flight",
        )
        row(
            "  client CPU a round, bare / backend",
            f"{median(bare_cpu):.2f} / {median(ours_cpu):.2f} s",
            "closing included",
        )
        row("  all rounds, bare", " ".join(f"{t:.2f}s" for t in bare))
        row("  all rounds, backend", " ".join(f"{t:.2f}s" for t in ours))
        row("ratio to baseline", f"{cost / base:.2f}x")
        verdict("(e) connect all", cost <= 1.2 * base, f"{cost / base:.2f}x <= 1.2x")

    return report


# --------------------------------------------------------------------------- (a)


async def refresh_cost(
    poller: EstatePoller, backends: Sequence[XenSshBackend]
) -> Callable[[], None]:
    conns = [conn_of(b) for b in backends]
    script = xen_ssh._sectioned_script(
        backends[0]._poll_sections("xm"), f"@@ovmtui-{secrets.token_hex(8)}"
    )

    # The backends' connections live on the SSH loop (ovmtui/backend/ssh_loop.py): the bare
    # rounds run there too, and CPU is counted for the whole process (both threads).
    async def bare_true() -> None:
        await ssh_loop.run(bounded([lambda c=c: c.run("true", check=False) for c in conns], BOUND))

    async def fetch_only() -> None:
        await ssh_loop.run(bounded([lambda c=c: c.run(script, check=False) for c in conns], BOUND))

    rounds: dict[str, Callable[[], Awaitable[Any]]] = {
        "true": bare_true,
        "fetch": fetch_only,
        "refresh": poller.poll_once,
    }
    names = list(rounds)
    times: dict[str, list[float]] = {name: [] for name in names}
    cpu: dict[str, list[float]] = {name: [] for name in names}
    gc_of: dict[str, list[float]] = {name: [] for name in names}
    gc_pauses, gc_worst = 0, 0.0
    for rep in range(REPS):
        for name in names[rep % 3 :] + names[: rep % 3]:  # rotate the order every round
            start = time.process_time()
            times[name].append(await timed(rounds[name]))
            cpu[name].append(time.process_time() - start)
            gc_of[name].append(GC.total)
            if name == "refresh":
                gc_pauses, gc_worst = max(gc_pauses, GC.pauses), max(gc_worst, GC.worst)
    snapshot = poller.snapshot
    vms = sum(len(h.vms) for h in snapshot.hosts)
    failed = [h.name for h in snapshot.hosts if not h.reachable]

    # Diagnostics: the client-side steps of one host's poll, on one captured output.
    sample = backends[0]
    marker = f"@@ovmtui-{secrets.token_hex(8)}"
    sections = sample._poll_sections("xm")
    output = (
        await ssh_loop.run(conn_of(sample).run(xen_ssh._sectioned_script(sections, marker)))
    ).stdout
    text = xen_ssh._text(output)
    parse = []
    for _ in range(20):
        start = time.perf_counter()
        sample._read_poll("xm", xen_ssh._split_sections(text, marker, sections))
        parse.append(time.perf_counter() - start)
    build = []
    for _ in range(20):
        start = time.perf_counter()
        poller._build(None)
        build.append(time.perf_counter() - start)

    def report() -> None:
        title(
            f"(a) a full refresh of {HOSTS} hosts x {DOMAINS} VMs vs bare `true`, {BOUND} at a time"
        )
        base, fetch, cost = (median(times[name]) for name in names)
        cpu_of = {name: ms(median(cpu[name])) for name in names}
        row("`true` on the 200 open connections (baseline)", ms(base), f"CPU {cpu_of['true']}")
        row("info: the poll's command, output unparsed", ms(fetch), f"CPU {cpu_of['fetch']}")
        row(
            "EstatePoller.poll_once(): fetch, parse, snapshot", ms(cost), f"CPU {cpu_of['refresh']}"
        )
        row(
            "  of which in the cyclic garbage collector",
            ms(median(gc_of["refresh"])),
            f"{gc_pauses} pauses, worst {ms(gc_worst)}",
        )
        row(
            "  per host: true / fetch / refresh, wall",
            f"{ms(base / HOSTS)} / {ms(fetch / HOSTS)} / {ms(cost / HOSTS)}",
        )
        row(
            "  parse one host's output (client CPU)",
            ms(median(parse)),
            f"{len(text) / 1024:.0f} KiB of `xm info` + `xm list -l`",
        )
        row("  build one snapshot of 10,000 VMs", ms(median(build)))
        row("  VMs in the last snapshot, hosts failed", f"{vms}, {len(failed)}")
        for name in names:
            row(f"  all rounds, {name}", " ".join(f"{t * 1000:.0f}" for t in times[name]) + " ms")
        row("ratio refresh / true", f"{cost / base:.2f}x", f"(fetch / true {fetch / base:.2f}x)")
        verdict(
            "(a) full refresh", cost <= 1.5 * base and not failed, f"{cost / base:.2f}x <= 1.5x"
        )

    return report


# --------------------------------------------------------------------------- (d)


async def polling_stalls(
    backends: Sequence[XenSshBackend], channels: ChannelCounter
) -> Callable[[], None]:
    # Idle loop first (same probe, same machine, nothing polling): the floor of the figures.
    probe = StallProbe()
    probe.start()
    await asyncio.sleep(2.0)
    await probe.stop()
    idle = probe.stalls()

    # Contrast (info, one run each): a round bounded as the poller bounds it, and one with
    # every host at once.
    spread = await stall_of(
        EstatePoller([PolledHost(b, (HostRole.VM,)) for b in backends]).poll_once
    )
    at_once = EstatePoller(
        [PolledHost(b, (HostRole.VM,)) for b in backends], max_concurrency=len(backends)
    )
    burst = await stall_of(at_once.poll_once)

    snapshots = 0

    def on_snapshot(_snapshot: Any) -> None:
        nonlocal snapshots
        snapshots += 1

    poller = EstatePoller(
        [PolledHost(b, (HostRole.VM,)) for b in backends],
        interval_s=INTERVAL_S,
        on_snapshot=on_snapshot,
    )
    gc.collect()
    probe.start()
    start = time.perf_counter()
    task = asyncio.create_task(poller.run())
    await asyncio.sleep(WARMUP_S)
    GC.reset()
    cpu_start, polls_before, full_before = time.thread_time(), POLLS.count, FULL_POLLS.count
    await asyncio.sleep(RUN_S - WARMUP_S)
    steady_cpu = time.thread_time() - cpu_start
    polls = POLLS.count - polls_before
    full_polls = FULL_POLLS.count - full_before
    gc_total, gc_worst, gc_pauses = GC.total, GC.worst, GC.pauses
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    await probe.stop()
    failed = [h.name for h in poller.snapshot.hosts if not h.reachable]

    def report() -> None:
        title(
            f"(d) loop stalls while EstatePoller.run() polls {HOSTS} hosts every {INTERVAL_S:.0f} s"
        )
        steady_s = RUN_S - WARMUP_S
        steady = probe.stalls(start + WARMUP_S)
        whole = probe.stalls()
        worst, worst_cpu = probe.worst(start + WARMUP_S)
        whole_worst, whole_cpu = probe.worst()
        idle_figures = f"{ms(pct(idle, 0.5))} / {ms(pct(idle, 0.99))} / {ms(max(idle))}"
        row("idle loop, p50 / p99 / max (baseline)", idle_figures, "2 s, nothing polling")
        row(
            f"steady state ({steady_s:.0f} s), p50 / p99",
            f"{ms(pct(steady, 0.5))} / {ms(pct(steady, 0.99))}",
        )
        row("steady state, worst", ms(worst), f"this thread on the CPU {ms(worst_cpu)} of it")
        over = [x for x in steady if x > 0.005]
        row(
            "  stalls over 5 ms / ticks",
            f"{len(over)} / {len(steady)}",
            f"{sum(over) / steady_s:.0%} of the time",
        )
        row(
            "  loop thread CPU, share of one core",
            f"{steady_cpu / steady_s:.0%}",
            f"GC {gc_total / steady_s:.0%}",
        )
        row("  GC pauses, worst", f"{gc_pauses}, {ms(gc_worst)}")
        rate = polls / steady_s
        row(
            "  polls per second (the interval asks)",
            f"{rate:.1f}",
            f"({HOSTS / INTERVAL_S:.0f}); {snapshots} snapshots in all",
        )
        row("  of them full polls (info, long listing, vm.cfg)", str(full_polls))
        row(
            f"whole run incl. first round ({RUN_S:.0f} s), p99",
            ms(pct(whole, 0.99)),
            f"worst {ms(whole_worst)} (CPU {ms(whole_cpu)})",
        )
        row("  hosts failed at the end", str(len(failed)))
        row(f"info: one poll_once(), {BOUND} at a time, worst stall", ms(spread), "one run")
        row("info: one poll_once(), all at once, worst stall", ms(burst), "one run")
        verdict("(d) p99 stall", pct(steady, 0.99) < 0.005, f"{ms(pct(steady, 0.99))} < 5 ms")
        verdict("(d) worst stall", worst < 0.050, f"{ms(worst)} < 50 ms")

    return report


# --------------------------------------------------------------------------- main


async def main(server: SshdServer, started_in: float) -> None:
    channels = ChannelCounter()
    report_connect = await connect_cost(server)

    backends = [make_backend(i, h) for i, h in enumerate(server.hosts)]
    poller = EstatePoller([PolledHost(b, (HostRole.VM,)) for b in backends])
    try:
        # Start-up: connect (bounded as the poller bounds its polls), then the first poll.
        start = time.perf_counter()
        await bounded([b.connect for b in backends], BOUND)
        connected = time.perf_counter() - start
        first = await timed(poller.poll_once)
        opened_at_start = sum(b.connections_opened for b in backends)
        channels.reset()

        report_refresh = await refresh_cost(poller, backends)
        refresh_peak = channels.worst(backends)
        channels.reset()
        report_stalls = await polling_stalls(backends, channels)
        polling_peak = channels.worst(backends)

        # (c) under pressure: more concurrent commands on one connection than it may carry
        # (polls between full ones use the host's long-lived lister channel, so commands).
        channels.reset()
        target = backends[0]
        results = await asyncio.gather(
            *(target._run("true", 30.0, label="true") for _ in range(3 * MAX_CHANNELS)),
            *(target.poll() for _ in range(MAX_CHANNELS)),
            return_exceptions=True,
        )
        burst_errors = [r for r in results if isinstance(r, BaseException)]
        burst_peak = channels.worst([target])
        opened_at_end = sum(b.connections_opened for b in backends)
    finally:
        await poller.close()

    title(f"start-up: {len(server.sshd_pids)} sshd for {HOSTS} hosts x {DOMAINS} VMs")
    row("sshd start, outputs rendered", f"{started_in:.1f} s")
    row(f"connect all {HOSTS} backends, {BOUND} at a time", ms(connected))
    row("first poll_once() (cold parse)", ms(first))
    report_connect()
    report_refresh()
    report_stalls()

    title("(b) connections opened by the 200 backends")
    row("after start-up", str(opened_at_start))
    row("after (a), (d) and (c)", str(opened_at_end))
    verdict(
        "(b) no new connection",
        opened_at_end == opened_at_start == HOSTS,
        f"{opened_at_start} -> {opened_at_end}",
    )

    title("(c) concurrent channels per connection (asyncssh channel table after each open)")
    row("xen_ssh.MAX_CHANNELS", str(MAX_CHANNELS))
    row("peak during (a) rounds", str(refresh_peak))
    row("peak during (d) polling", str(polling_peak))
    row(
        f"peak, {3 * MAX_CHANNELS} commands + {MAX_CHANNELS} polls at once on one backend",
        str(burst_peak),
        f"{len(burst_errors)} failed",
    )
    peak = max(refresh_peak, polling_peak, burst_peak)
    verdict(
        "(c) channels per connection",
        peak <= CHANNEL_LIMIT and not burst_errors,
        f"{peak} <= {CHANNEL_LIMIT}",
    )
    print(f"\n  load average at end: {load()}")


if __name__ == "__main__":
    tune_process_for_ui()  # as `ovmtui` does before it starts the TUI
    header("ssh_poll", REPS, f"rounds (connects: {CONNECT_REPS} of each side, alternating)")
    print(f"  load average at start: {load()}")
    began = time.perf_counter()
    with SshdServer.start(
        hosts=HOSTS,
        domains_per_host=DOMAINS,
        toolstack="xm",
        ports_per_sshd=PORTS_PER_SSHD,
        cpu_steps=CPU_STEPS,
    ) as sshd:
        print(f"  CPUs: {separate_cpus(sshd)}")
        asyncio.run(main(sshd, time.perf_counter() - began))
    print(f"  total {time.perf_counter() - began:.0f} s")
