"""What keeping every VM's definition in the repository adds to a poll, and what it writes.

    .venv/bin/python bench/definition_store.py [--vms N] [--reps N]

One libvirt test-driver host with N domains (default 1,000: 80 % running, 15 % shut off, 5 %
paused), a repository that already holds all their definitions (a first session recorded
them). Each repetition opens a fresh session on that repository, connects its backend (not
timed), then times, alternately with keeping on and off in the same run:

- the full polls of the unchanged domains (`session.poll_once()`, every domain's stats read
  and checked; the median of IDLE polls after the first): what every poll costs, all day;
- the first poll of the session (every domain's XML read and built, as after a start or a
  reconnect): the one poll that pays for keeping, once per run and per changed domain (the
  persistent XML of each running domain read too, each definition hashed and compared).

Targets (issue 17): keeping adds at most 10 % to a full poll of the unchanged domains
(median ratio), and nothing is written to the repository when nothing changed (no definition
write, the tables' rows unchanged after several sessions' polls). The first poll's ratio is
reported beside them: what a start costs more.
"""

from __future__ import annotations

import argparse
import asyncio
import sqlite3
import tempfile
import time
from pathlib import Path

from _common import header, median, ms, row, title, verdict, write_estate

from ovmtui.backend.libvirt import LibvirtBackend
from ovmtui.config import EstateConfig, HostConfig, PoolConfig
from ovmtui.services.session import EstateSession

TARGET = 1.10  # issue 17: at most 10 % more


def estate_of(uri: str) -> EstateConfig:
    return EstateConfig((PoolConfig("bench", (HostConfig("bench", "h", libvirt=uri),)),), "bench")


def rows(repository: Path) -> tuple[int, int]:
    with sqlite3.connect(repository) as db:
        versions = db.execute("SELECT count(*) FROM definition_versions").fetchone()[0]
        places = db.execute("SELECT count(*) FROM definition_places").fetchone()[0]
    return int(versions), int(places)


IDLE = 5


async def one_poll(
    estate: EstateConfig, repository: Path, *, keep: bool
) -> tuple[float, float, int]:
    """A fresh session's first poll (its backend connected beforehand), then the median of
    IDLE full polls of the unchanged domains; (first s, idle s, definition writes)."""
    uri = estate.hosts[0].libvirt
    assert uri is not None
    backend = LibvirtBackend(estate.hosts[0].key, uri)
    session = EstateSession(
        estate, repository=repository, backends=[backend], keep_definitions=keep
    )
    async with session:
        await backend.connect()
        started = time.perf_counter()
        await session.poll_once()
        first = time.perf_counter() - started
        idle: list[float] = []
        for _ in range(IDLE):
            started = time.perf_counter()
            await session.poll_once()
            idle.append(time.perf_counter() - started)
    return first, median(idle), session.definition_writes


async def main(vms: int, reps: int) -> None:
    header("definition_store", reps)
    with tempfile.TemporaryDirectory() as folder:
        directory = Path(folder)
        ((_key, uri),) = write_estate(directory, 1, vms)
        estate = estate_of(uri)
        repository = directory / "repository.sqlite"
        _, _, first = await one_poll(estate, repository, keep=True)  # records every definition
        recorded = rows(repository)
        times: dict[bool, tuple[list[float], list[float]]] = {True: ([], []), False: ([], [])}
        writes = 0
        for rep in range(reps):
            order = (True, False) if rep % 2 == 0 else (False, True)
            for keep in order:
                cold, idle, written = await one_poll(estate, repository, keep=keep)
                times[keep][0].append(cold)
                times[keep][1].append(idle)
                writes += written
        after = rows(repository)
    title(f"one host, {vms} unchanged domains: a full poll")
    row("without keeping definitions", ms(median(times[False][1])))
    row("keeping definitions", ms(median(times[True][1])))
    ratio = median(times[True][1]) / median(times[False][1])
    row("ratio", f"{ratio:.3f}x")
    title("the session's first poll (every XML read: once per start)")
    row("without keeping definitions", ms(median(times[False][0])))
    row("keeping definitions", ms(median(times[True][0])))
    first_ratio = median(times[True][0]) / median(times[False][0])
    row("ratio", f"{first_ratio:.3f}x", "a persistent XML read per running domain")
    title("writes")
    row("first session: definition writes", str(first), f"{recorded[0]} versions")
    row("later sessions: definition writes", str(writes))
    verdict(
        "keeping adds at most 10 % to a full poll",
        ratio <= TARGET,
        f"{ratio:.3f}x (target {TARGET}x)",
    )
    verdict(
        "nothing written when nothing changed",
        writes == 0 and after == recorded,
        f"{writes} writes; rows {recorded} -> {after}",
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vms", type=int, default=1000)
    parser.add_argument("--reps", type=int, default=9)
    args = parser.parse_args()
    asyncio.run(main(args.vms, args.reps))
