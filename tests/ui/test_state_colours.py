"""Every widget that shows a VM's or a host's state colours it from the one table."""

from __future__ import annotations

from textual.app import App, ComposeResult
from textual.color import Color

from ovmtui.model import EstateSnapshot, HostStatus, Vm, VmState
from ovmtui.widgets.estate_header import EstateHeader
from ovmtui.widgets.estate_tree import EstateTree
from ovmtui.widgets.host_panel import render_host
from ovmtui.widgets.state_style import HOST_STATE_STYLES, VM_STATE_STYLES, HostState, markup
from ovmtui.widgets.vm_table import VmTable

NOW = 1_700_000_000.0


def snapshot() -> EstateSnapshot:
    vms = tuple(Vm(f"u-{s.value}", f"vm-{s.value}", s) for s in VmState)
    return EstateSnapshot(
        hosts=(
            HostStatus(pool="p", name="up", address="-", vms=vms, reachable=True, taken_at=NOW),
            HostStatus(pool="p", name="new", address="-"),
            HostStatus(pool="p", name="dead", address="-", reachable=False, error="gone"),
        ),
        generation=1,
    )


class StatesApp(App[None]):
    def compose(self) -> ComposeResult:
        yield EstateHeader(read_only=lambda: False, clock=lambda: NOW)
        yield EstateTree()
        yield VmTable(now=lambda: NOW)

    def on_mount(self) -> None:
        self.query_one(EstateHeader).show_estate(snapshot())
        self.query_one(EstateTree).show_estate(snapshot())
        self.query_one(VmTable).apply_snapshot(snapshot())


def theme_colour(app: App[None], variable: str) -> Color:
    return Color.parse(app.get_css_variables()[variable.removeprefix("$")])


async def test_header_counts_use_the_table() -> None:
    app = StatesApp()
    async with app.run_test(size=(160, 30)) as pilot:
        await pilot.pause()
        content = app.query_one(EstateHeader).render_line_content()
        text = content.plain
        for state in VmState:
            label = f"1 {state.value}"
            start = text.index(label)
            styles = [s.style for s in content.spans if s.start <= start < s.end]
            assert styles == [markup(state)], state


async def test_table_and_tree_resolve_the_same_theme_colours() -> None:
    app = StatesApp()
    async with app.run_test(size=(160, 30)) as pilot:
        await pilot.pause()
        table, tree = app.query_one(VmTable), app.query_one(EstateTree)
        for state, style in VM_STATE_STYLES.items():
            drawn = table.get_visual_style(f"vm-table--state-{state.value}")
            if style.colour in ("$success", "$warning", "$error"):
                assert drawn.foreground == theme_colour(app, style.colour), state
            assert bool(drawn.bold) is style.bold, state
        for host_state, style in HOST_STATE_STYLES.items():
            drawn = tree.get_visual_style(f"estate-tree--{host_state.value}")
            assert drawn.foreground == theme_colour(app, style.colour), host_state
            assert bool(drawn.bold) is style.bold, host_state
        paused = table.get_visual_style("vm-table--state-paused")
        assert table.get_visual_style("vm-table--state-suspended").foreground == paused.foreground


def test_host_panel_reachability_uses_the_table() -> None:
    for host, state, word in (
        (snapshot().hosts[0], HostState.UP, "reachable"),
        (snapshot().hosts[1], HostState.UNKNOWN, "not polled yet"),
        (snapshot().hosts[2], HostState.DOWN, "unreachable"),
    ):
        content = render_host(host, NOW)
        start = content.plain.index(word)
        styles = [s.style for s in content.spans if s.start <= start < s.end]
        assert markup(state) in styles, word
