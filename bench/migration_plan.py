"""A migration's flight plan in a big pool: one VM, 99 candidate targets, every check.

    .venv/bin/python bench/migration_plan.py [--hosts 100] [--reps 5]   (as root: sshd)

The pool is `tests/sshfake`: 100 fake Xen dom0s behind real OpenSSH sshds on loopback, one
pool, connected and polled once first (as in the TUI, whose connections are open). Timed:
`MigrationService.plan` of one running VM, which asks its source what the move needs and
every other host what it can give (one command each over the open connections), then judges
them. Baseline, in the same run: one `true` sent on every open connection at once (the
floor of asking 99 hosts anything). Target (issue 15): the plan within 1 s, the hosts asked
concurrently. Also shown: how many checks came out unknown (a host that could not answer is
never counted as passed).
"""

from __future__ import annotations

import asyncio
import sys
import time
from typing import Any

from _common import header, median, ms, row, title, verdict

from ovmtui.app import tune_process_for_ui
from ovmtui.backend import ssh_loop
from ovmtui.backend.xen_ssh import XenSshBackend
from ovmtui.config import EstateConfig, HostConfig, PoolConfig
from ovmtui.model import HostKey
from ovmtui.services.session import EstateSession
from tests.sshfake.sshd import SshdServer


def arg(name: str, default: str) -> str:
    return sys.argv[sys.argv.index(name) + 1] if name in sys.argv else default


HOSTS = int(arg("--hosts", "100"))
REPS = int(arg("--reps", "5"))
POOL = "big"
TARGET_S = 1.0


async def true_everywhere(conns: list[Any]) -> None:
    await asyncio.gather(*(c.run("true") for c in conns))


async def main(server: SshdServer) -> None:
    hosts = server.hosts
    backends = [
        XenSshBackend(
            HostKey(POOL, h.name),
            h.ssh_target,
            identity=str(h.client_key),
            known_hosts=str(h.known_hosts),
            toolstack="xm",
        )
        for h in hosts
    ]
    configs = tuple(HostConfig(POOL, h.name, ssh=h.ssh_target) for h in hosts)
    estate = EstateConfig((PoolConfig(POOL, configs, "/OVS"),), "bench")
    async with EstateSession(estate, backends=backends, max_concurrency=32) as session:
        snapshot = await session.poll_once()
        placed = next(p for p in snapshot.placed_vms() if p.vm.state.is_active)
        plans, trues, unknown = [], [], 0
        for _ in range(REPS):
            began = time.perf_counter()
            plan = await session.migrations.plan(placed)
            plans.append(time.perf_counter() - began)
            unknown = sum(1 for v in plan.verdicts for c in v.checks if c.ok is None)
            conns = [b._conn for b in backends if b._conn is not None]
            began = time.perf_counter()
            await ssh_loop.run(true_everywhere(conns))  # where the connections live
            trues.append(time.perf_counter() - began)
        title(
            f"flight plan of one VM in a pool of {len(hosts)} hosts ({len(plan.verdicts)} targets)"
        )
        row("`true` on every open connection (baseline)", ms(median(trues)))
        row("MigrationService.plan", ms(median(plans)), f"{median(plans) / median(trues):.1f}x")
        row("  info: checks unknown in the last plan", str(unknown))
        verdict("plan of 99 targets", median(plans) <= TARGET_S, f"{ms(median(plans))} <= 1 s")


if __name__ == "__main__":
    tune_process_for_ui()
    header("migration_plan", REPS, "plans, each against a round of `true`")
    with SshdServer.start(hosts=HOSTS, domains_per_host=5, toolstack="xm", ports_per_sshd=16) as s:
        asyncio.run(main(s))
