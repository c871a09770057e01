"""An idle dashboard rebuilds nothing: the header and the host panel show the data's age in
steps, are redrawn only when it reads otherwise, and count a host's VMs once per VM tuple;
old data still turns to the warning style."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any

import pytest
from textual.app import App, ComposeResult
from textual.content import Content

from ovmtui.model import EstateSnapshot, HostStatus, Vm, VmState
from ovmtui.widgets import host_panel as host_panel_module
from ovmtui.widgets.data_age import OLD_AFTER_S, OLD_STYLE, data_age
from ovmtui.widgets.estate_header import EstateHeader
from ovmtui.widgets.host_panel import HostPanel

TAKEN = 1_700_000_000.0


class CountedVms(tuple[Vm, ...]):
    """A host's VM tuple that counts the passes made over it."""

    passes = 0

    def __iter__(self) -> Iterator[Vm]:
        CountedVms.passes += 1
        return super().__iter__()


def vms(n: int) -> tuple[Vm, ...]:
    states = (VmState.RUNNING, VmState.PAUSED, VmState.SHUTOFF)
    return tuple(Vm(f"u-{i}", f"vm-{i}", states[i % 3], memory_mib=1024) for i in range(n))


def host(machines: tuple[Vm, ...], taken_at: float = TAKEN, **changes: Any) -> HostStatus:
    return HostStatus(
        pool="p",
        name="h1",
        address="qemu+ssh://h1/system",
        vms=machines,
        reachable=True,
        taken_at=taken_at,
        **changes,
    )


def estate(*hosts: HostStatus, generation: int = 1) -> EstateSnapshot:
    return EstateSnapshot(hosts=hosts, generation=generation)


class Clock:
    def __init__(self) -> None:
        self.now = TAKEN

    def __call__(self) -> float:
        return self.now


class IdleApp(App[None]):
    def __init__(self, clock: Clock) -> None:
        super().__init__()
        self.clock = clock

    def compose(self) -> ComposeResult:
        yield EstateHeader(read_only=lambda: False, clock=self.clock)
        yield HostPanel(clock=self.clock)

    @property
    def header(self) -> EstateHeader:
        return self.query_one(EstateHeader)

    @property
    def panel(self) -> HostPanel:
        return self.query_one(HostPanel)


def spans_at(content: Content, word: str) -> list[str]:
    start = content.plain.index(word)
    return [str(s.style) for s in content.spans if s.start <= start < s.end]


def shown(widget: EstateHeader | HostPanel) -> Content:
    content = widget._shown
    assert content is not None
    return content


def test_the_age_reads_in_steps_and_turns_old_after_a_minute() -> None:
    readings = {s: data_age(s) for s in (0, 4.9, 9.9, 10, 14.9, 15, 59.9, 60, 61, 119, 3700)}
    assert {s: a.text for s, a in readings.items()} == {
        0: "just now",
        4.9: "just now",
        9.9: "just now",
        10: "10s ago",
        14.9: "10s ago",
        15: "15s ago",
        59.9: "55s ago",
        60: "1m ago",
        61: "1m ago",
        119: "1m ago",
        3700: "1h 01m ago",
    }
    assert [s for s, a in readings.items() if a.old] == [60, 61, 119, 3700]
    assert data_age(-3).text == "just now"  # a clock a little behind a host's
    assert data_age(30, old_after_s=20).old


async def test_host_panel_counts_a_hosts_vms_once_per_vm_tuple() -> None:
    clock = Clock()
    app = IdleApp(clock)
    machines = CountedVms(vms(300))
    async with app.run_test(size=(100, 30)) as pilot:
        CountedVms.passes = 0
        app.panel.show_host(host(machines))
        assert "300 (100 running)" in shown(app.panel).plain
        assert "200.0 GiB" in shown(app.panel).plain  # running and paused VMs commit memory
        counted = CountedVms.passes
        assert counted >= 1
        # Polls of an idle host: a new status, the very VM tuple.
        for poll in range(1, 4):
            clock.now = TAKEN + 5 * poll
            app.panel.show_host(host(machines, taken_at=clock.now))
        assert CountedVms.passes == counted
        # And the clock ticks on, to an age that reads otherwise: the panel is redrawn,
        # its VMs are not counted again.
        clock.now += 20
        await pilot.pause(1.3)
        assert "data age   20s ago" in shown(app.panel).plain
        assert CountedVms.passes == counted
        # VMs that changed come in a new tuple: counted again, once.
        fewer = CountedVms(vms(30))
        app.panel.show_host(host(fewer, taken_at=clock.now))
        assert "30 (10 running)" in shown(app.panel).plain
        assert CountedVms.passes > counted
        again = CountedVms.passes
        app.panel.show_host(host(fewer, taken_at=clock.now + 1))
        assert CountedVms.passes == again


async def test_the_timer_rebuilds_nothing_while_the_age_reads_the_same(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clock = Clock()
    app = IdleApp(clock)
    async with app.run_test(size=(120, 30)) as pilot:
        app.header.show_estate(estate(host(vms(30))))
        app.panel.show_host(app.header._snapshot.hosts[0])  # type: ignore[union-attr]
        await pilot.pause()
        assert "⟳ just now" in shown(app.header).plain
        assert "just now" in shown(app.panel).plain
        builds = {"header": 0, "panel": 0}
        header_build = app.header.render_line_content
        panel_build = host_panel_module.render_host

        def build_header() -> Content:
            builds["header"] += 1
            return header_build()

        def build_panel(*args: Any, **kw: Any) -> Content:
            builds["panel"] += 1
            return panel_build(*args, **kw)

        monkeypatch.setattr(app.header, "render_line_content", build_header)
        monkeypatch.setattr(host_panel_module, "render_host", build_panel)
        for second in range(1, 10):
            clock.now = TAKEN + second + 0.5
            app.header._tick()
            app.panel._tick()
        assert builds == {"header": 0, "panel": 0}
        # The first second the age reads otherwise, both are rebuilt, once.
        clock.now = TAKEN + 10
        app.header._tick()
        app.panel._tick()
        assert builds == {"header": 1, "panel": 1}
        assert "⟳ 10s ago" in shown(app.header).plain
        assert "data age   10s ago" in shown(app.panel).plain
        for second in (11, 12, 13, 14):
            clock.now = TAKEN + second
            app.header._tick()
            app.panel._tick()
        assert builds == {"header": 1, "panel": 1}
        # And the real timer does the same: a second later it finds "15s ago" and repaints.
        clock.now = TAKEN + 15
        await pilot.pause(1.3)
        assert builds == {"header": 2, "panel": 2}
        assert "⟳ 15s ago" in shown(app.header).plain
        assert "data age   15s ago" in shown(app.panel).plain


async def test_a_new_poll_at_the_same_age_changes_nothing_on_screen() -> None:
    clock = Clock()
    app = IdleApp(clock)
    machines = vms(30)
    async with app.run_test(size=(120, 30)) as pilot:
        first = host(machines)
        app.header.show_estate(estate(first))
        app.panel.show_host(first)
        await pilot.pause()
        header, panel = shown(app.header), shown(app.panel)
        clock.now = TAKEN + 5.2
        polled = host(machines, taken_at=TAKEN + 5)
        app.header.show_estate(estate(polled, generation=2))
        app.panel.show_host(polled)
        assert shown(app.header) is header and shown(app.panel) is panel


async def test_old_data_turns_to_the_warning_style() -> None:
    clock = Clock()
    app = IdleApp(clock)
    async with app.run_test(size=(120, 30)) as pilot:
        app.header.show_estate(estate(host(vms(30))))
        app.panel.show_host(app.header._snapshot.hosts[0])  # type: ignore[union-attr]
        clock.now = TAKEN + OLD_AFTER_S - 1
        app.header._tick()
        app.panel._tick()
        assert OLD_STYLE not in spans_at(shown(app.header), "55s ago")
        assert OLD_STYLE not in spans_at(shown(app.panel), "55s ago")
        # The poller has missed polls for a minute (a hung host): the timer says so.
        clock.now = TAKEN + 2 * OLD_AFTER_S
        await pilot.pause(1.3)
        assert OLD_STYLE in spans_at(shown(app.header), "⟳ 2m ago")
        assert OLD_STYLE in spans_at(shown(app.panel), "2m ago")
        # A fresh poll brings it back to plain words.
        fresh = host(vms(30), taken_at=clock.now)
        app.header.show_estate(estate(fresh, generation=2))
        app.panel.show_host(fresh)
        assert OLD_STYLE not in spans_at(shown(app.header), "⟳ just now")
        assert OLD_STYLE not in spans_at(shown(app.panel), "just now")


async def test_stale_and_old_together_stay_a_warning() -> None:
    clock = Clock()
    app = IdleApp(clock)
    async with app.run_test(size=(120, 30)) as pilot:
        dead = dataclasses.replace(host(()), name="h2", reachable=False, error="gone")
        app.header.show_estate(estate(host(vms(3)), dead))
        await pilot.pause()
        assert "$warning" in spans_at(shown(app.header), "⟳ just now, 1 stale")
        clock.now = TAKEN + 300
        app.header._tick()
        assert OLD_STYLE in spans_at(shown(app.header), "⟳ 5m ago, 1 stale")
