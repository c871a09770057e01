"""Far estates: 200 Xen hosts x 50 VMs, 0 to 100 ms away (issue 13).

    .venv/bin/python bench/far_estate.py [--rtt 0,20,50,100] [--reps 3]   (as root: sshd)

The hosts are `tests/sshfake` (real OpenSSH sshd, fake `xm`), reached through a delay proxy
in a process of its own (`tests/sshfake/delayproxy.py`: each chunk forwarded D = RTT/2
after it was read, each way, order kept). For each round-trip time, runs of ovmtui's cold
start (`EstatePoller.run()` from nothing: connect, first full poll, on screen = published
reachable in a snapshot) are interleaved with the baseline's (bare `asyncssh.connect` +
the very full-poll command ovmtui sends, on all hosts, 64 at once), ABBA:

(a) time until every host is on screen <= 1.3x the baseline's time until all answered
(b) time until half the hosts are on screen <= 1.3x the baseline's time to half
(c) the loop's p99 stall during the cold start < 5 ms, worst < 50 ms (a 1 ms ticker)
(d) a steady refresh round (`poll_once()`: quick polls of all 200 connected hosts) at
    100 ms <= 1.5x a round of `true` sent on all 200 open connections at once

Also: the client's CPU time (all threads) for a cold start, against the baseline's.
With two CPUs or more, the servers and the proxy run on the last CPU, this client on the
others (real hosts and networks do not share ovmtui's CPUs). Medians of the runs.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import asyncssh
from _common import header, median, row, title, verdict

from ovmtui.app import tune_process_for_ui
from ovmtui.backend import ssh_loop, xen_ssh
from ovmtui.backend.xen_ssh import XenSshBackend
from ovmtui.model import EstateSnapshot, HostKey, HostRole
from ovmtui.services.poller import EstatePoller, PolledHost
from tests.sshfake.delayproxy import PROXY_ADDRESS, known_hosts_for
from tests.sshfake.sshd import FakeXenHost, SshdServer

ROOT = Path(__file__).resolve().parent.parent
HOSTS = 200
DOMAINS = 50
PORTS_PER_SSHD = 16
BASELINE_BOUND = 64
TICK_S = 0.001
STEADY_ROUNDS = 3
TIMEOUT_S = 300.0


def arg(name: str, default: str) -> str:
    if name in sys.argv:
        return sys.argv[sys.argv.index(name) + 1]
    return default


RTTS_MS = [int(x) for x in arg("--rtt", "0,20,50,100").split(",")]
REPS = int(arg("--reps", "3"))


def pct(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else 0.0


class StallProbe:
    """A ticker sleeping TICK_S: each wake-up's lateness is a loop stall.

    Also how much CPU the loop's thread spent during each stall: a stall with as much CPU
    as wall time is the loop's own work; one without is the OS running someone else (the
    parser thread, sshd, other load on the machine).
    """

    def __init__(self) -> None:
        self.stalls: list[float] = []
        self.own: list[float] = []
        self._task: asyncio.Task[None] | None = None

    async def _tick(self) -> None:
        while True:
            wall, cpu = time.perf_counter(), time.thread_time()
            await asyncio.sleep(TICK_S)
            self.stalls.append(time.perf_counter() - wall - TICK_S)
            self.own.append(max(0.0, time.thread_time() - cpu - TICK_S / 10))

    def start(self) -> None:
        self._task = asyncio.create_task(self._tick())

    async def stop(self) -> None:
        assert self._task is not None
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)


class Proxy:
    """The delay proxy, in its own process, on the servers' CPU."""

    def __init__(self, hosts: Sequence[FakeXenHost], rtt_ms: float, cpus: set[int]) -> None:
        targets = [f"{h.address}:{h.port}" for h in hosts]
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.sshfake.delayproxy",
                str(rtt_ms / 2),
                PROXY_ADDRESS,
                *targets,
            ],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None
        if cpus:
            os.sched_setaffinity(self.process.pid, cpus)
        line = self.process.stdout.readline().strip()
        assert line == "ready", line

    def stats(self) -> dict[str, int]:
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write("stats\n")
        self.process.stdin.flush()
        stats: dict[str, int] = json.loads(self.process.stdout.readline())
        return stats

    def close(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.close()
        try:
            self.process.wait(5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def separate_cpus(server: SshdServer) -> tuple[str, set[int]]:
    cpus = sorted(os.sched_getaffinity(0))
    if "--shared-cpus" in sys.argv or len(cpus) < 2:
        return f"shared: servers, proxy and client on {len(cpus)} CPU(s)", set()
    servers, client = {cpus[-1]}, set(cpus[:-1])
    for pid in server.sshd_pids:
        os.sched_setaffinity(pid, servers)
    os.sched_setaffinity(0, client)
    return (
        f"servers and proxy on CPU {cpus[-1]}, client on CPU {', '.join(map(str, sorted(client)))}",
        servers,
    )


def far_target(host: FakeXenHost) -> str:
    return f"{host.username}@{PROXY_ADDRESS}:{host.port}"


def make_backend(index: int, host: FakeXenHost, known: Path) -> XenSshBackend:
    return XenSshBackend(
        HostKey(f"pool{index // 10:02d}", host.name),
        far_target(host),
        identity=str(host.client_key),
        known_hosts=str(known),
        toolstack="xm",
    )


def poll_script(host: FakeXenHost, known: Path) -> str:
    """The very command of ovmtui's full poll (with a marker of its own)."""
    backend = make_backend(0, host, known)
    marker = f"@@ovmtui-{secrets.token_hex(8)}"
    return xen_ssh._sectioned_script(backend._poll_sections("xm"), marker)


async def bounded(jobs: Sequence[Callable[[], Awaitable[Any]]], bound: int) -> list[Any]:
    limit = asyncio.Semaphore(bound)

    async def one(job: Callable[[], Awaitable[Any]]) -> Any:
        async with limit:
            return await job()

    return await asyncio.gather(*(one(job) for job in jobs))


async def run_everywhere(conns: Sequence[asyncssh.SSHClientConnection], command: str) -> None:
    # On the SSH loop, where the backends' connections live (ovmtui/backend/ssh_loop.py).
    await asyncio.gather(*(c.run(command) for c in conns))


async def ovmtui_run(hosts: Sequence[FakeXenHost], known: Path, rtt_ms: int) -> dict[str, Any]:
    backends = [make_backend(i, h, known) for i, h in enumerate(hosts)]
    seen: dict[HostKey, float] = {}
    everyone = asyncio.Event()
    start = time.perf_counter()

    def on_snapshot(snapshot: EstateSnapshot) -> None:
        now = time.perf_counter() - start
        for host in snapshot.hosts:
            if host.reachable and host.key not in seen:
                seen[host.key] = now
        if len(seen) == len(hosts):
            everyone.set()

    poller = EstatePoller(
        [PolledHost(b, (HostRole.VM,)) for b in backends],
        on_snapshot=on_snapshot,
        interval_s=5.0,
    )
    probe = StallProbe()
    probe.start()
    cpu = time.process_time()
    start = time.perf_counter()
    task = asyncio.create_task(poller.run())
    try:
        await asyncio.wait_for(everyone.wait(), TIMEOUT_S)
        cpu = time.process_time() - cpu
        await probe.stop()
        times = sorted(seen.values())
        result: dict[str, Any] = {
            "all": times[-1],
            "half": times[len(times) // 2 - 1],
            "p99": pct(probe.stalls, 0.99),
            "worst": max(probe.stalls),
            "own_p99": pct(probe.own, 0.99),
            "own_worst": max(probe.own),
            "cpu": cpu,
            "waiting_most": poller.pacing.waiting_count.most,
            "opened": sum(b.connections_opened for b in backends),
        }
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        # (d) steady rounds: quick polls of every connected host, against `true` on every
        # open connection at once.
        rounds, trues = [], []
        for _ in range(STEADY_ROUNDS):
            began = time.perf_counter()
            await poller.poll_once()
            rounds.append(time.perf_counter() - began)
            conns = [b._conn for b in backends if b._conn is not None]
            began = time.perf_counter()
            await ssh_loop.run(run_everywhere(conns, "true"))
            trues.append(time.perf_counter() - began)
        result["round"] = median(rounds)
        result["true"] = median(trues)
        return result
    finally:
        if not task.done():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        await poller.close()


async def baseline_run(hosts: Sequence[FakeXenHost], known: Path, script: str) -> dict[str, Any]:
    conns: list[asyncssh.SSHClientConnection] = []
    done: list[float] = []

    def job(host: FakeXenHost) -> Callable[[], Awaitable[None]]:
        async def one() -> None:
            conn = await asyncssh.connect(
                **host.connect_kwargs(host=PROXY_ADDRESS, known_hosts=str(known))
            )
            conns.append(conn)
            result = await conn.run(script)
            assert result.exit_status == 0 and result.stdout
            done.append(time.perf_counter() - start)

        return one

    cpu = time.process_time()
    start = time.perf_counter()
    try:
        await bounded([job(h) for h in hosts], BASELINE_BOUND)
        cpu = time.process_time() - cpu
    finally:
        for conn in conns:
            conn.close()
        await asyncio.gather(*(c.wait_closed() for c in conns), return_exceptions=True)
    done.sort()
    return {"all": done[-1], "half": done[len(done) // 2 - 1], "cpu": cpu}


async def main(server: SshdServer, cpus: set[int]) -> None:
    hosts = server.hosts
    known = known_hosts_for(server.known_hosts, server.root / "known_hosts_far")
    script = poll_script(hosts[0], known)
    verdicts: list[bool] = []
    table: list[str] = []
    for rtt in RTTS_MS:
        proxy = Proxy(hosts, rtt, cpus)
        ours: list[dict[str, Any]] = []
        theirs: list[dict[str, Any]] = []
        try:
            for rep in range(REPS):
                order = ("ovmtui", "baseline") if rep % 2 == 0 else ("baseline", "ovmtui")
                for side in order:
                    if side == "ovmtui":
                        ours.append(await ovmtui_run(hosts, known, rtt))
                    else:
                        theirs.append(await baseline_run(hosts, known, script))
                    await asyncio.sleep(1.0)  # let sshd reap the closed sessions
            stats = proxy.stats()
        finally:
            proxy.close()

        def m(runs: list[dict[str, Any]], key: str) -> float:
            return median(r[key] for r in runs)

        title(f"RTT {rtt} ms ({REPS} runs each side, ABBA; medians)")
        row("ovmtui: every host on screen", f"{m(ours, 'all'):.2f} s")
        row("baseline: every host answered", f"{m(theirs, 'all'):.2f} s")
        row("ovmtui: half on screen", f"{m(ours, 'half'):.2f} s")
        row("baseline: half answered", f"{m(theirs, 'half'):.2f} s")
        row(
            "loop p99 / worst stall",
            f"{m(ours, 'p99') * 1e3:.1f} / {m(ours, 'worst') * 1e3:.1f} ms",
        )
        row(
            "  of which the loop's own CPU: p99 / worst",
            f"{m(ours, 'own_p99') * 1e3:.1f} / {m(ours, 'own_worst') * 1e3:.1f} ms",
        )
        row(
            "client CPU of a cold start (all threads)",
            f"ovmtui {m(ours, 'cpu'):.2f} s, baseline {m(theirs, 'cpu'):.2f} s",
        )
        row(
            "steady round (quick polls of 200) vs `true` on 200",
            f"{m(ours, 'round') * 1e3:.0f} ms vs {m(ours, 'true') * 1e3:.0f} ms",
        )
        row(
            "waiting slots held at once (most); connections opened",
            f"{max(r['waiting_most'] for r in ours)}; {max(r['opened'] for r in ours)} per run",
        )
        row(
            "proxy: connections accepted, most open at once",
            f"{stats['accepted']}, {stats['most_open']}",
        )
        all_ratio = m(ours, "all") / m(theirs, "all")
        half_ratio = m(ours, "half") / m(theirs, "half")
        verdicts.append(
            verdict(f"(a) all on screen, {rtt} ms", all_ratio <= 1.3, f"{all_ratio:.2f}x <= 1.3x")
        )
        verdicts.append(
            verdict(
                f"(b) half on screen, {rtt} ms", half_ratio <= 1.3, f"{half_ratio:.2f}x <= 1.3x"
            )
        )
        p99, worst = m(ours, "p99"), m(ours, "worst")
        verdicts.append(
            verdict(
                f"(c) loop stalls, {rtt} ms",
                p99 < 0.005 and worst < 0.050,
                f"p99 {p99 * 1e3:.1f} ms < 5, worst {worst * 1e3:.1f} ms < 50",
            )
        )
        round_ratio = m(ours, "round") / m(ours, "true")
        if rtt == 100:
            verdicts.append(
                verdict(
                    "(d) steady round at 100 ms", round_ratio <= 1.5, f"{round_ratio:.2f}x <= 1.5x"
                )
            )
        table.append(
            f"| {rtt} ms | {m(ours, 'all'):.1f} s | {m(theirs, 'all'):.1f} s | {all_ratio:.2f}x "
            f"| {m(ours, 'half'):.1f} / {m(theirs, 'half'):.1f} s ({half_ratio:.2f}x) "
            f"| {p99 * 1e3:.1f} / {worst * 1e3:.0f} ms (own CPU "
            f"{m(ours, 'own_p99') * 1e3:.1f} / {m(ours, 'own_worst') * 1e3:.0f}) "
            f"| {m(ours, 'round') * 1e3:.0f} / "
            f"{m(ours, 'true') * 1e3:.0f} ms ({round_ratio:.2f}x) | {m(ours, 'cpu'):.1f} / "
            f"{m(theirs, 'cpu'):.1f} s |"
        )
        row("load average", " ".join(f"{x:.1f}" for x in os.getloadavg()))
    title("summary (markdown)")
    print(
        "| RTT | all on screen | baseline | ratio | half: ovmtui / baseline | loop p99 / worst "
        "| steady round / `true` | client CPU ovmtui / baseline |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for line in table:
        print(line)
    print(f"\n  {sum(verdicts)} of {len(verdicts)} verdicts met; load average {os.getloadavg()}")


if __name__ == "__main__":
    tune_process_for_ui()
    header("far_estate", REPS, "runs of each side per RTT")
    began = time.perf_counter()
    with SshdServer.start(
        hosts=HOSTS, domains_per_host=DOMAINS, toolstack="xm", ports_per_sshd=PORTS_PER_SSHD
    ) as sshd:
        where, server_cpus = separate_cpus(sshd)
        print(f"  CPUs: {where}; RTTs {RTTS_MS} ms")
        asyncio.run(main(sshd, server_cpus))
    print(f"  total {time.perf_counter() - began:.0f} s")
