"""Pilot tests of the estate tree: labels, in-place updates, cursor, keys, mouse, cuts."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from textual.app import App, ComposeResult
from textual.geometry import Region

from ovmtui.model import EstateSnapshot, HostKey, HostRole, HostStatus, Vm, VmState
from ovmtui.widgets.estate_tree import EstateTree, Scope, fit
from tests.ui.conftest import SIZE, dashboard, loaded, make_app, table, wait_until

M, U, V = HostRole.MASTER, HostRole.UTILITY, HostRole.VM


def host(
    pool: str,
    name: str,
    vms: int = 0,
    *,
    reachable: bool | None = True,
    stale: bool = False,
    roles: tuple[HostRole, ...] = (),
) -> HostStatus:
    return HostStatus(
        pool=pool,
        name=name,
        address=f"qemu+ssh://{name}/system",
        roles=roles,
        vms=tuple(Vm(f"{name}-{n}", f"{name}-vm{n}", VmState.RUNNING) for n in range(vms)),
        reachable=reachable,
        stale=stale,
    )


def estate(*hosts: HostStatus, generation: int = 1) -> EstateSnapshot:
    return EstateSnapshot(hosts=hosts, generation=generation)


def replaced(snapshot: EstateSnapshot, new: HostStatus) -> EstateSnapshot:
    hosts = tuple(new if h.key == new.key else h for h in snapshot.hosts)
    return estate(*hosts, generation=snapshot.generation + 1)


PROD = (
    host("prod", "ovs01", 3, roles=(M, U, V)),
    host("prod", "ovs02", 2, roles=(V,)),
    host("prod", "ovs03", 0, reachable=None),
)
DEV = (host("dev", "dev01", 4, roles=(M, U, V)), host("dev", "dev02", 1, stale=True))


class TreeApp(App[None]):
    # As in the dashboard's sidebar: 30 cells of text beside a scrollbar that never goes.
    CSS = """
    EstateTree { width: 31; height: 12; scrollbar-size-vertical: 1; overflow-y: scroll; }
    """

    def __init__(self) -> None:
        super().__init__()
        self.scopes: list[Scope] = []

    def compose(self) -> ComposeResult:
        yield EstateTree(id="tree")

    def on_mount(self) -> None:
        self.tree.focus()

    def on_estate_tree_scope_changed(self, message: EstateTree.ScopeChanged) -> None:
        self.scopes.append(message.scope)

    @property
    def tree(self) -> EstateTree:
        return self.query_one(EstateTree)


def drawn(tree: EstateTree) -> list[str]:
    return [tree.render_line(y).text.rstrip() for y in range(tree.size.height)]


def shown(tree: EstateTree) -> list[str]:
    return [line for line in drawn(tree) if line]


async def test_lines_labels_and_counts() -> None:
    app = TreeApp()
    async with app.run_test(size=(60, 20)) as pilot:
        app.tree.show_estate(estate(*PROD, *DEV))
        await pilot.pause()
        assert shown(app.tree) == [
            "▼ Estate",
            "├ ▼ prod  2/3 up · 5 VMs",
            "│ ├ ● ovs01 [MUV] 3",
            "│ ├ ● ovs02 [V] 2",
            "│ └ ◌ ovs03 0",
            "└ ▼ dev  2/2 up · 5 VMs",
            "  ├ ● dev01 [MUV] 4",
            "  └ ◌ dev02 1",
        ]
        assert app.tree.labels() == [
            "Estate",
            "prod  2/3 up · 5 VMs",
            "● ovs01 [MUV] 3",
            "● ovs02 [V] 2",
            "◌ ovs03 0",
            "dev  2/2 up · 5 VMs",
            "● dev01 [MUV] 4",
            "◌ dev02 1",
        ]
        assert app.tree.virtual_size.height == 8
        # Every line is cut to the width beside the scrollbar, no wider.
        assert {app.tree.render_line(y).cell_length for y in range(12)} == {30}
        # Colours come from the theme, through the component classes.
        glyphs = {s.text: s.style for s in app.tree.render_line(2) if s.text == "● "}
        success = app.theme_variables["success"].lower()
        assert str(glyphs["● "].color.triplet.hex).lower() == success  # type: ignore[union-attr]


async def test_a_host_going_down_relabels_in_place() -> None:
    app = TreeApp()
    async with app.run_test(size=(60, 20)) as pilot:
        snapshot = estate(*PROD, *DEV)
        app.tree.show_estate(snapshot)
        await pilot.pause()
        unchanged = app.tree.render_line(6)
        assert app.tree.render_line(6) is unchanged  # painted once, then looked up
        calls: list[tuple[tuple[Any, ...], dict[str, Any]]] = []
        original = app.tree.refresh

        def spy(*regions: Any, **kw: Any) -> Any:
            calls.append((regions, kw))
            return original(*regions, **kw)

        app.tree.refresh = spy  # type: ignore[method-assign]
        down = host("prod", "ovs02", 2, reachable=False, roles=(V,))
        app.tree.show_estate(replaced(snapshot, down))
        # The host's line and its pool's: repainted alone, no layout, no new size.
        assert calls == [((Region(0, 3, 31, 1), Region(0, 1, 31, 1)), {})]
        app.tree.refresh = original  # type: ignore[method-assign]
        await pilot.pause()
        lines = shown(app.tree)
        assert lines[1] == "├ ▼ prod  1/3 up · 5 VMs"
        assert lines[3] == "│ ├ ✖ ovs02 [V] 2"
        assert len(lines) == 8 and app.tree.virtual_size.height == 8
        assert app.tree.render_line(6) is unchanged
        # The same data again: nothing to repaint at all.
        calls.clear()
        app.tree.refresh = spy  # type: ignore[method-assign]
        app.tree.show_estate(replaced(snapshot, down))
        assert calls == []


async def test_keys_move_collapse_and_expand() -> None:
    app = TreeApp()
    async with app.run_test(size=(60, 20)) as pilot:
        app.tree.show_estate(estate(*PROD, *DEV))
        await pilot.pause()
        assert app.tree.cursor_scope == Scope()
        await pilot.press("down", "down")
        assert app.tree.cursor_scope == Scope("prod", "ovs01")
        assert app.scopes == [Scope("prod"), Scope("prod", "ovs01")]
        await pilot.press("left")  # host: to its pool
        assert app.tree.cursor_scope == Scope("prod")
        await pilot.press("left")  # expanded pool: folds it
        assert app.tree.cursor_scope == Scope("prod")
        assert shown(app.tree)[1:3] == ["├ ▶ prod  2/3 up · 5 VMs", "└ ▼ dev  2/2 up · 5 VMs"]
        assert "● ovs01 [MUV] 3" not in app.tree.labels()
        assert app.tree.virtual_size.height == 5
        await pilot.press("down")  # over the folded hosts
        assert app.tree.cursor_scope == Scope("dev")
        await pilot.press("up", "left")  # folded pool: to the root
        assert app.tree.cursor_scope == Scope()
        await pilot.press("down", "right")  # folded pool: unfolds it
        assert app.tree.cursor_scope == Scope("prod")
        assert len(app.tree.labels()) == 8
        await pilot.press("right")  # unfolded pool: into it
        assert app.tree.cursor_scope == Scope("prod", "ovs01")
        await pilot.press("end")
        assert app.tree.cursor_scope == Scope("dev", "dev02")
        await pilot.press("down")  # nowhere to go: no message either
        assert app.scopes[-1] == Scope("dev", "dev02")
        count = len(app.scopes)
        await pilot.press("home")
        assert app.tree.cursor_scope == Scope()
        await pilot.press("pagedown")
        assert app.tree.cursor_scope == Scope("dev", "dev02")
        await pilot.press("pageup")
        assert app.tree.cursor_scope == Scope()
        assert len(app.scopes) == count + 3
        await pilot.press("enter")  # reselects the line under the cursor
        assert app.scopes[-1] == Scope() and len(app.scopes) == count + 4


async def test_cursor_is_drawn_differently_with_focus() -> None:
    app = TreeApp()
    async with app.run_test(size=(60, 20)) as pilot:
        app.tree.show_estate(estate(*PROD))
        await pilot.pause()

        def label_background(y: int) -> object:
            return next(s.style for s in app.tree.render_line(y) if s.text == "Estate").bgcolor  # type: ignore[union-attr]

        focused = label_background(0)
        app.tree.blur()
        await pilot.pause()
        app.tree.render_lines(Region(0, 0, 31, 12))  # a paint picks up the new styles
        blurred = label_background(0)
        assert focused != blurred
        others = {s.style.bgcolor for s in app.tree.render_line(1)}  # type: ignore[union-attr]
        assert focused not in others and blurred not in others


async def test_click_moves_the_cursor_and_the_icon_folds() -> None:
    app = TreeApp()
    async with app.run_test(size=(60, 20)) as pilot:
        app.tree.show_estate(estate(*PROD, *DEV))
        await pilot.pause()
        assert await pilot.click(EstateTree, offset=(8, 6))
        assert app.tree.cursor_scope == Scope("dev", "dev01")
        assert app.scopes == [Scope("dev", "dev01")]
        assert await pilot.click(EstateTree, offset=(6, 6))  # again: scopes again
        assert app.scopes == [Scope("dev", "dev01")] * 2
        assert await pilot.click(EstateTree, offset=(2, 1))  # prod's ▼
        assert app.tree.cursor_scope == Scope("prod")
        assert shown(app.tree)[1] == "├ ▶ prod  2/3 up · 5 VMs"
        assert await pilot.click(EstateTree, offset=(2, 1))
        assert shown(app.tree)[1] == "├ ▼ prod  2/3 up · 5 VMs"
        assert await pilot.click(EstateTree, offset=(5, 11))  # below the last line
        assert app.tree.cursor_scope == Scope("prod")


async def test_select_host_scrolls_into_view_and_unfolds() -> None:
    app = TreeApp()
    async with app.run_test(size=(60, 20)) as pilot:
        hosts = [host(f"pool{p}", f"p{p}h{h}", h) for p in range(4) for h in range(5)]
        app.tree.show_estate(estate(*hosts))
        await pilot.pause()
        assert app.tree.select_host(HostKey("pool3", "p3h4"))
        await pilot.pause()
        assert app.tree.cursor_scope == Scope("pool3", "p3h4")
        assert app.scopes == [Scope("pool3", "p3h4")]
        assert app.tree.scroll_offset.y > 0
        assert drawn(app.tree)[-1] == "  └ ● p3h4 4"
        await pilot.press("home", "down", "left")  # fold pool0
        assert not app.tree.select_host(HostKey("pool0", "nowhere"))
        assert app.tree.select_host(HostKey("pool0", "p0h2"))
        await pilot.pause()
        assert app.tree.cursor_scope == Scope("pool0", "p0h2")
        assert app.tree.labels()[app.tree.cursor_index] == "● p0h2 2"
        assert app.tree.scroll_offset.y <= app.tree.cursor_index


async def test_cursor_stays_on_its_host_when_lines_come_above() -> None:
    app = TreeApp()
    async with app.run_test(size=(60, 20)) as pilot:
        app.tree.show_estate(estate(*DEV))
        await pilot.pause()
        assert app.tree.select_host(HostKey("dev", "dev02"))
        await pilot.pause()
        assert app.tree.cursor_index == 3
        app.tree.show_estate(estate(*PROD, *DEV, generation=2))
        await pilot.pause()
        assert app.tree.cursor_scope == Scope("dev", "dev02")
        assert app.tree.cursor_index == 7
        assert app.scopes == [Scope("dev", "dev02")]  # the scope did not change
        assert app.tree.virtual_size.height == 8
        # Its host gone, the cursor falls back to the pool, which scopes the table.
        app.tree.show_estate(estate(*PROD, DEV[0], generation=3))
        await pilot.pause()
        assert app.tree.cursor_scope == Scope("dev")
        assert app.scopes[-1] == Scope("dev")
        assert shown(app.tree)[-1] == "  └ ● dev01 [MUV] 4"


async def test_long_names_are_cut_to_the_width() -> None:
    app = TreeApp()
    async with app.run_test(size=(60, 20)) as pilot:
        long_host = "hypervisor-with-a-very-long-name.example.com"
        long_pool = "a-pool-named-at-great-length"
        app.tree.show_estate(
            # x is the pool's master: a pool without one would say so on its line.
            estate(host(long_pool, long_host, 12, roles=(V,)), host(long_pool, "x", 1, roles=(M,)))
        )
        await pilot.pause()
        pool_line, host_line = drawn(app.tree)[1:3]
        # The name gives way, so the counts stay in sight.
        assert host_line == "  ├ ● hypervisor-with-… [V] 12"
        assert pool_line == "└ ▼ a-pool-n…  2/2 up · 13 VMs"
        assert all(app.tree.render_line(y).cell_length == 30 for y in range(3))
        assert app.tree.labels()[2] == f"● {long_host} [V] 12"  # whole, for tests and search


async def test_dashboard_tree_scopes_the_vm_table() -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await loaded(pilot, app)
        tree = dashboard(app).estate_tree
        await pilot.press("t")
        assert app.focused is tree
        await pilot.press("down")  # prod
        await wait_until(pilot, lambda: table(app).row_count == 42, what="scope to prod")
        await pilot.press("down", "down")  # ovs02
        await wait_until(pilot, lambda: table(app).row_count == 14, what="scope to ovs02")
        assert {p.host for p in _shown(app)} == {"ovs02"}
        await pilot.press("home", "enter")
        await wait_until(pilot, lambda: table(app).row_count == 64, what="the whole estate")


def _shown(app: Any) -> Sequence[Any]:
    vms = table(app)
    return [vms._rows.get(uuid) for uuid in vms.shown_uuids()]


async def test_a_hundred_hosts_cost_one_layout() -> None:
    app = TreeApp()
    async with app.run_test(size=(60, 20)) as pilot:
        await pilot.pause()
        layouts: list[bool] = []
        original = app.tree.refresh

        def spy(*regions: Any, **kw: Any) -> Any:
            layouts.append(bool(kw.get("layout")))
            return original(*regions, **kw)

        app.tree.refresh = spy  # type: ignore[method-assign]
        hosts = [host(f"pool{p}", f"h{p}-{h}", h) for p in range(10) for h in range(10)]
        app.tree.show_estate(estate(*hosts))
        assert layouts.count(True) == 1  # the new height, once
        assert app.tree.virtual_size.height == 111
        layouts.clear()
        app.tree.show_estate(estate(*hosts, generation=2))
        assert layouts == []


def test_fit_cuts_the_name_first_then_the_end() -> None:
    parts = (("● ", "a"), ("hostname", ""), (" [V]", "b"), (" 12", "b"))
    assert fit(parts, 1, 17) == list(parts)
    assert fit(parts, 1, 14) == [("● ", "a"), ("host…", ""), (" [V]", "b"), (" 12", "b")]
    # Too little name would be left: the line's end goes instead.
    assert fit(parts, 1, 10) == [("● ", "a"), ("hostname"[:7], ""), ("…", "")]
    assert fit(parts, 1, 1) == [("…", "a")]
    assert fit(parts, 1, 0) == []
    # Wide characters count two cells; one that would straddle the edge is left out.
    assert fit((("名前の長いホスト", ""), (" 3", "b")), 0, 8) == [("名前…", ""), (" 3", "b")]


async def test_a_pool_says_when_its_master_is_missing_or_down_and_a_new_pool_shows() -> None:
    app = TreeApp()
    async with app.run_test(size=(60, 20)) as pilot:
        app.tree._now = lambda: 10_000.0 + 4 * 60  # type: ignore[method-assign]
        down = HostStatus("prod", "ovs01", "x", roles=(M, V), reachable=False, failed_at=10_000.0)
        snapshot = EstateSnapshot(
            hosts=(down, host("prod", "ovs02", 2, roles=(V,)), host("dev", "d1", 1, roles=(V,))),
            generation=1,
            pools=("prod", "dev", "new"),
        )
        app.tree.show_estate(snapshot)
        await pilot.pause()
        labels = app.tree.labels()
        assert labels[1] == (
            "prod  1/2 up · 2 VMs · master ovs01 unreachable for 4 min · no utility host"
        )
        assert labels[4] == "dev  1/1 up · 1 VMs · no master · no utility host"
        assert labels[6] == "new  no hosts yet"
        # The master answers again: the pool's line says nothing more.
        up = HostStatus("prod", "ovs01", "x", roles=(M, V), reachable=True)
        app.tree.show_estate(
            EstateSnapshot(hosts=(up, *snapshot.hosts[1:]), generation=2, pools=snapshot.pools)
        )
        await pilot.pause()
        assert app.tree.labels()[1] == "prod  2/2 up · 2 VMs · no utility host"


async def test_a_pools_note_gives_way_before_its_name_and_counts() -> None:
    app = TreeApp()
    async with app.run_test(size=(60, 20)) as pilot:
        app.tree.show_estate(estate(host("pool", "h1", 2, roles=(V,)), host("pool", "h2", 1)))
        await pilot.pause()
        # 30 cells: the counts stay whole; of "no master · no utility host" what fits.
        assert drawn(app.tree)[1] == "└ ▼ pool  2/2 up · 3 VMs · no…"
        assert app.tree.labels()[1] == "pool  2/2 up · 3 VMs · no master · no utility host"
