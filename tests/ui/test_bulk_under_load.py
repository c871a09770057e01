"""Force off 200 marked VMs while 50 lifecycle events arrive from outside and keys are pressed.

All of it is real libvirt: ``test:///default`` is shared by every connection of this process,
so a second connection opened by the test changes the same domains the app watches, and
libvirt delivers the lifecycle events to the app's connection.
"""

from __future__ import annotations

import asyncio
import threading
import uuid as uuidlib
from collections.abc import Iterator

import libvirt
import pytest

from ovmtui.config import EstateConfig, HostConfig, PoolConfig
from ovmtui.model import VmState
from ovmtui.screens.dialogs import ConfirmDialog
from tests.ui.conftest import SIZE, loaded, make_app, table, wait_until

BULK = 200
EVENT_VMS = 25  # two events each (suspend, destroy): 50 events

DOMAIN_XML = """<domain type='test'>
  <name>{name}</name><uuid>{uuid}</uuid>
  <memory unit='MiB'>64</memory><vcpu>1</vcpu>
  <os><type>hvm</type></os>
</domain>"""


@pytest.fixture
def shared_default() -> Iterator[libvirt.virConnect]:
    conn = libvirt.open("test:///default")
    names = [f"bulk-{i:03d}" for i in range(BULK)] + [f"evt-{i:02d}" for i in range(EVENT_VMS)]
    domains = []
    for name in names:
        dom = conn.defineXML(DOMAIN_XML.format(name=name, uuid=uuidlib.uuid4()))
        dom.create()
        domains.append(dom)
    try:
        yield conn
    finally:
        for dom in domains:
            if dom.isActive():
                dom.destroy()
            dom.undefine()
        conn.close()


def outside_events(conn: libvirt.virConnect, done: threading.Event) -> None:
    """Another client of the same host: 50 state changes, as fast as libvirt takes them."""
    try:
        for i in range(EVENT_VMS):
            conn.lookupByName(f"evt-{i:02d}").suspend()
        for i in range(EVENT_VMS):
            conn.lookupByName(f"evt-{i:02d}").destroy()
    finally:
        done.set()


async def test_bulk_force_off_with_event_burst_and_keys(
    shared_default: libvirt.virConnect,
) -> None:
    estate = EstateConfig(
        (PoolConfig("p", (HostConfig("p", "h1", libvirt="test:///default"),)),), "test"
    )
    # A long interval: only events and actions can make the app poll during this test.
    app = make_app(estate, interval_s=600)
    async with app.run_test(size=SIZE) as pilot:
        await loaded(pilot, app)
        await wait_until(pilot, lambda: table(app).row_count >= BULK + EVENT_VMS)
        await pilot.press("slash", *"bulk-", "enter")
        await wait_until(pilot, lambda: table(app).row_count == BULK)
        await pilot.press("asterisk")
        assert len(table(app).marked) == BULK
        await pilot.press("K")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmDialog))

        stalls: list[float] = []
        stop = asyncio.Event()

        async def ticker() -> None:
            loop = asyncio.get_running_loop()
            last = loop.time()
            while not stop.is_set():
                await asyncio.sleep(0.005)
                now = loop.time()
                stalls.append(now - last - 0.005)
                last = now

        tick = asyncio.create_task(ticker())
        events_done = threading.Event()
        await pilot.press("y")
        sender = threading.Thread(target=outside_events, args=(shared_default, events_done))
        sender.start()
        # Keys keep working while the bulk action and the event burst run.
        start_index = table(app).cursor_index
        for _ in range(10):
            await pilot.press("down")
        assert table(app).cursor_index == start_index + 10
        await pilot.press("o")
        assert table(app).sort_column == "state"
        await pilot.press("o")
        sender.join(timeout=30)
        assert events_done.is_set()

        await wait_until(
            pilot,
            lambda: len(app.action_log) == BULK,
            limit_s=60,
            what="a result for each of the 200 VMs",
        )
        assert all(r.ok for r in app.action_log), [r.error for r in app.action_log if not r.ok]

        def states(prefix: str) -> set[VmState]:
            return {p.vm.state for p in app.snapshot.placed_vms() if p.vm.name.startswith(prefix)}

        # No lost event: with a 600 s interval, only the events can have told the app.
        await wait_until(
            pilot,
            lambda: states("evt-") == {VmState.SHUTOFF},
            limit_s=20,
            what="every outside change to be shown",
        )
        await wait_until(pilot, lambda: states("bulk-") == {VmState.SHUTOFF}, limit_s=20)
        stop.set()
        await tick
        # A frozen UI would show multi-second stalls; this bound only catches a real freeze.
        assert max(stalls) < 1.0, f"event loop stalled {max(stalls):.3f} s"
