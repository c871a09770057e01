from __future__ import annotations

import asyncio
import os
import re
from collections.abc import Callable
from pathlib import Path

import pytest
from textual.pilot import Pilot

from ovmtui.app import OvmApp
from ovmtui.config import EstateConfig, HostConfig, PoolConfig
from ovmtui.model import VmState
from ovmtui.screens.dashboard import DashboardScreen
from ovmtui.widgets.vm_table import VmTable

FIXED_NOW = 1_000_000_000.0  # earlier than any data: every age and uptime shows as "0s"
SIZE = (140, 40)


def fixed_clock() -> float:
    return FIXED_NOW


# Snapshots show host addresses, so the demo's node files are copied to one fixed path:
# pictures taken in a clone elsewhere (CI) must not differ by the checkout's location.
FIXED_DEMO_DIR = Path("/tmp/ovmtui-test-demo")


# A <pool> of a node file, storage pool and its volumes: what a host fresh from its install
# lacks (the demo's utility hosts have the pools ovmtui would define).
_STORAGE_POOL = re.compile(r"  <pool type='dir'>.*?</pool>\n", re.DOTALL)


def fixed_demo_estate(*, bare_storage: bool = False) -> EstateConfig:
    """The demo estate on copies of its node files; ``bare_storage``: without the utility
    hosts' storage pools, for tests of what ovmtui defines on the record."""
    from ovmtui.demo import DEMO_HOSTS, DEMO_POOLS

    directory = FIXED_DEMO_DIR / "bare" if bare_storage else FIXED_DEMO_DIR
    directory.mkdir(parents=True, exist_ok=True)
    pools = []
    for pool in DEMO_POOLS:
        hosts = []
        for host in DEMO_HOSTS:
            if host.pool != pool.name:
                continue
            target = directory / host.file
            text = host.path.read_text(encoding="utf-8")
            if bare_storage:
                text = _STORAGE_POOL.sub("", text)
            _write_if_changed(target, text)
            hosts.append(
                HostConfig(host.pool, host.name, libvirt=f"test://{target}", roles=host.roles)
            )
        pools.append(PoolConfig(pool.name, tuple(hosts), pool.shared_storage))
    return EstateConfig(tuple(pools), "demo estate (test copy)")


def _write_if_changed(target: Path, text: str) -> None:
    # The directory is machine-wide: a test in another checkout may be opening this very
    # file right now, so it is never truncated in place; a new one is renamed over it.
    try:
        if target.read_text(encoding="utf-8") == text:
            return
    except FileNotFoundError:
        pass
    partial = target.with_name(f".{target.name}.{os.getpid()}")
    partial.write_text(text, encoding="utf-8")
    os.replace(partial, target)


def make_app(estate: EstateConfig | None = None, **kw: object) -> OvmApp:
    return OvmApp(estate or fixed_demo_estate(), clock=fixed_clock, **kw)  # type: ignore[arg-type]


async def wait_until(
    pilot: Pilot[object], predicate: Callable[[], bool], limit_s: float = 10.0, what: str = ""
) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limit_s
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what or predicate}")
        await pilot.pause(0.02)


def dashboard(app: OvmApp) -> DashboardScreen:
    screen = app.screen_stack[0]
    assert isinstance(screen, DashboardScreen), screen
    return screen


def table(app: OvmApp) -> VmTable:
    # The dashboard is the bottom screen; a dialog may be on top of it.
    return app.screen_stack[0].query_one(VmTable)


async def loaded(pilot: Pilot[object], app: OvmApp, hosts: int | None = None) -> None:
    expected = hosts if hosts is not None else len(app.estate.hosts)
    await wait_until(
        pilot,
        lambda: (
            sum(1 for h in app.snapshot.hosts if h.reachable is not None) >= expected
            and table(app).row_count > 0
        ),
        what="the first poll",
    )
    await pilot.pause()


def state_of(app: OvmApp, name: str) -> VmState:
    for placed in app.snapshot.placed_vms():
        if placed.vm.name == name:
            return placed.vm.state
    raise KeyError(name)


def estate_with_dead_host() -> EstateConfig:
    first = fixed_demo_estate().pools[0].hosts[0]
    return EstateConfig(
        pools=(
            PoolConfig(
                "prod",
                (
                    first,
                    # Nothing listens on port 1: refused at once, on loopback only.
                    HostConfig("prod", "dead01", libvirt="qemu+tcp://127.0.0.1:1/system"),
                ),
            ),
        ),
        source="test",
    )


@pytest.fixture
def data_dir() -> Path:
    return Path(__file__).parent.parent / "data"
