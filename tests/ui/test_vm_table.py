"""Pilot tests of the VM table: load, sort, filter, cursor, marks, delta vs full refresh."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TypeVar

import pytest
from textual.app import App, ComposeResult
from textual.geometry import Region
from textual.message import Message

from ovmtui.model import EstateDelta, EstateSnapshot, HostStatus, PlacedVm, Vm, VmState
from ovmtui.widgets._vm_cells import RowCells
from ovmtui.widgets.vm_table import VmTable

M = TypeVar("M", bound=Message)
NOW = 1_000_000.0
SIZE = (120, 40)


def vm(n: int, **changes: object) -> Vm:
    fields: dict[str, object] = {
        "uuid": f"uuid-{n:04d}",
        "name": f"vm-{n:04d}",
        "state": VmState.RUNNING,
        "vcpus": 1 + n % 4,
        "memory_mib": 512 * (1 + n % 8),
        "cpu_percent": float(n % 7),
        "started_at": NOW - 60 * n,
    }
    fields.update(changes)
    return Vm(**fields)  # type: ignore[arg-type]


def estate(
    vms: Iterable[Vm],
    generation: int = 1,
    delta: EstateDelta | None = None,
    hosts: Sequence[tuple[str, str]] = (("pool-a", "host-1"), ("pool-a", "host-2")),
) -> EstateSnapshot:
    """Deal `vms` round-robin over `hosts`, the way a poller would report them."""
    dealt: list[list[Vm]] = [[] for _ in hosts]
    for index, one in enumerate(vms):
        dealt[index % len(hosts)].append(one)
    statuses = tuple(
        HostStatus(pool=pool, name=name, address=f"qemu+ssh://{name}/system", vms=tuple(group))
        for (pool, name), group in zip(hosts, dealt, strict=True)
    )
    return EstateSnapshot(hosts=statuses, generation=generation, delta=delta)


def placed_of(snapshot: EstateSnapshot, *uuids: str) -> tuple[PlacedVm, ...]:
    found = {p.uuid: p for p in snapshot.placed_vms()}
    return tuple(found[uuid] for uuid in uuids)


def following(
    vms: Iterable[Vm], generation: int, changed: Iterable[str] = (), removed: Iterable[str] = ()
) -> EstateSnapshot:
    """Generation `generation` of the estate, with a delta from the one before."""
    snapshot = estate(vms, generation)
    delta = EstateDelta(
        since=generation - 1, changed=placed_of(snapshot, *changed), removed=tuple(removed)
    )
    return with_delta(snapshot, delta)


def with_delta(snapshot: EstateSnapshot, delta: EstateDelta) -> EstateSnapshot:
    return EstateSnapshot(hosts=snapshot.hosts, generation=snapshot.generation, delta=delta)


class TableApp(App[None]):
    def __init__(self) -> None:
        super().__init__()
        self.messages: list[Message] = []

    def compose(self) -> ComposeResult:
        yield VmTable(now=lambda: NOW, id="vms")

    def on_mount(self) -> None:
        self.query_one(VmTable).focus()

    def on_vm_table_vm_highlighted(self, message: VmTable.VmHighlighted) -> None:
        self.messages.append(message)

    def on_vm_table_vm_selected(self, message: VmTable.VmSelected) -> None:
        self.messages.append(message)

    def on_vm_table_marks_changed(self, message: VmTable.MarksChanged) -> None:
        self.messages.append(message)

    @property
    def table(self) -> VmTable:
        return self.query_one(VmTable)

    def of_type(self, kind: type[M]) -> list[M]:
        return [m for m in self.messages if isinstance(m, kind)]


def lines(table: VmTable) -> list[str]:
    return [table.render_line(y).text.rstrip() for y in range(table.size.height)]


def names(table: VmTable) -> list[str]:
    return [uuid.replace("uuid", "vm") for uuid in table.shown_uuids()]


async def test_load_draws_header_and_rows() -> None:
    app = TableApp()
    async with app.run_test(size=SIZE) as pilot:
        app.table.apply_snapshot(estate([vm(2), vm(1, started_at=NOW - 3 * 86400 - 4 * 3600)]))
        await pilot.pause()
        header, first, second = lines(app.table)[:3]
        assert " ".join(header.split()) == "Name ▲ State Host vCPUs Memory CPU % Uptime"
        assert " ".join(first.split()) == "vm-0001 running host-2 2 1.0 GiB 1.0 3d 04h"
        assert " ".join(second.split()) == "vm-0002 running host-1 3 1.5 GiB 2.0 2m"
        assert app.table.cursor_vm is not None and app.table.cursor_vm.uuid == "uuid-0001"


async def test_empty_states() -> None:
    app = TableApp()
    async with app.run_test(size=SIZE) as pilot:
        app.table.apply_snapshot(estate([]))
        await pilot.pause()
        assert lines(app.table)[1].strip() == "No VMs"
        app.table.apply_snapshot(estate([vm(1)], generation=2))
        app.table.set_filter("nothing like this")
        await pilot.pause()
        assert lines(app.table)[1].strip() == "No VMs match"
        assert app.table.cursor_vm is None


async def test_sort_by_api_toggles_and_keeps_unknown_last() -> None:
    app = TableApp()
    async with app.run_test(size=SIZE) as pilot:
        vms = [vm(1, cpu_percent=5.0), vm(2, cpu_percent=None), vm(3, cpu_percent=9.0)]
        app.table.apply_snapshot(estate(vms))
        app.table.sort_by("cpu")
        assert (app.table.sort_column, app.table.sort_reverse) == ("cpu", False)
        assert names(app.table) == ["vm-0001", "vm-0003", "vm-0002"]
        app.table.sort_by("cpu")
        assert app.table.sort_reverse
        assert names(app.table) == ["vm-0003", "vm-0001", "vm-0002"]
        app.table.sort_by("name", reverse=True)
        assert names(app.table) == ["vm-0003", "vm-0002", "vm-0001"]
        await pilot.pause()
        assert "Name ▼" in lines(app.table)[0]


async def test_clicking_a_header_sorts_and_clicking_a_row_moves_the_cursor() -> None:
    app = TableApp()
    async with app.run_test(size=SIZE) as pilot:
        app.table.apply_snapshot(estate([vm(n, cpu_percent=float(10 - n)) for n in range(5)]))
        await pilot.pause()
        x = lines(app.table)[0].index("CPU %")
        assert await pilot.click(VmTable, offset=(x, 0))
        assert app.table.sort_column == "cpu"
        assert names(app.table)[0] == "vm-0004"
        assert await pilot.click(VmTable, offset=(x, 0))
        assert app.table.sort_reverse
        assert await pilot.click(VmTable, offset=(5, 3))
        assert app.table.cursor_index == 2
        assert app.table.cursor_vm is not None and app.table.cursor_vm.uuid == "uuid-0002"


async def test_filter_and_scope() -> None:
    app = TableApp()
    async with app.run_test(size=SIZE) as pilot:
        hosts = (("pool-a", "alpha"), ("pool-a", "beta"), ("pool-b", "gamma"))
        vms = [vm(1, name="web-1"), vm(2, name="db-1", state=VmState.CRASHED), vm(3, name="WEB-2")]
        app.table.apply_snapshot(estate(vms, hosts=hosts))
        app.table.set_filter("web")
        assert names(app.table) == ["vm-0001", "vm-0003"]
        assert app.table.filter_text == "web"
        app.table.set_filter("crashed")
        assert names(app.table) == ["vm-0002"]
        app.table.set_filter("GAMMA")
        assert names(app.table) == ["vm-0003"]
        app.table.set_filter("")
        app.table.set_scope("pool-a", None)
        assert names(app.table) == ["vm-0002", "vm-0001"]
        app.table.set_scope("pool-a", "beta")
        assert names(app.table) == ["vm-0002"]
        app.table.set_scope(None, None)
        assert len(names(app.table)) == 3
        await pilot.pause()


async def test_cursor_keys() -> None:
    app = TableApp()
    async with app.run_test(size=SIZE) as pilot:
        app.table.apply_snapshot(estate([vm(n) for n in range(100)]))
        await pilot.press("down", "down")
        assert app.table.cursor_index == 2
        await pilot.press("pagedown")
        page = app.table.scrollable_content_region.height - 1
        assert app.table.cursor_index == 2 + page
        await pilot.press("end")
        assert app.table.cursor_index == 99
        assert app.table.scroll_offset.y > 0
        await pilot.press("pageup", "up")
        assert app.table.cursor_index == 98 - page
        await pilot.press("home")
        assert app.table.cursor_index == 0
        assert app.table.scroll_offset.y == 0
        await pilot.press("up")
        assert app.table.cursor_index == 0


async def test_cursor_and_scroll_survive_an_in_place_update() -> None:
    app = TableApp()
    async with app.run_test(size=SIZE) as pilot:
        app.table.apply_snapshot(estate([vm(n) for n in range(200)]))
        await pilot.press("pagedown", "pagedown", "down")
        await pilot.pause()
        cursor, index, scroll = app.table.cursor_vm, app.table.cursor_index, app.table.scroll_offset
        assert cursor is not None and scroll.y > 0
        busy = [vm(n, cpu_percent=50.0) for n in range(200)]
        app.table.apply_snapshot(following(busy, 2, changed=[one.uuid for one in busy]))
        await pilot.pause()
        assert app.table.cursor_vm is not None and app.table.cursor_vm.uuid == cursor.uuid
        assert app.table.cursor_vm.vm.cpu_percent == 50.0
        assert (app.table.cursor_index, app.table.scroll_offset) == (index, scroll)
        # The same through a full rebuild (no delta).
        app.table.apply_snapshot(estate([vm(n, cpu_percent=60.0) for n in range(200)], 3))
        await pilot.pause()
        assert app.table.cursor_vm.uuid == cursor.uuid
        assert (app.table.cursor_index, app.table.scroll_offset) == (index, scroll)
        assert "60.0" in lines(app.table)[1 + index - scroll.y]


async def test_cursor_follows_its_vm_through_a_resort() -> None:
    app = TableApp()
    async with app.run_test(size=SIZE) as pilot:
        first = estate([vm(n, cpu_percent=float(n)) for n in range(20)])
        app.table.apply_snapshot(first)
        app.table.sort_by("cpu")
        await pilot.press("down", "down", "down")
        assert app.table.cursor_vm is not None and app.table.cursor_vm.uuid == "uuid-0003"
        hot = [vm(n, cpu_percent=99.0 if n == 3 else float(n)) for n in range(20)]
        app.table.apply_snapshot(following(hot, 2, changed=["uuid-0003"]))
        await pilot.pause()
        assert app.table.cursor_vm is not None and app.table.cursor_vm.uuid == "uuid-0003"
        assert app.table.cursor_index == 19


async def test_cursor_keeps_its_index_when_its_vm_disappears() -> None:
    app = TableApp()
    async with app.run_test(size=SIZE) as pilot:
        app.table.apply_snapshot(estate([vm(n) for n in range(10)]))
        await pilot.press("down", "down", "down")
        survivors = [vm(n) for n in range(10) if n != 3]
        app.table.apply_snapshot(following(survivors, 2, removed=["uuid-0003"]))
        await pilot.pause()
        assert app.table.cursor_index == 3
        assert app.table.cursor_vm is not None and app.table.cursor_vm.uuid == "uuid-0004"
        # At the end of the table, the index clamps.
        await pilot.press("end")
        app.table.apply_snapshot(following(survivors[:-1], 3, removed=["uuid-0009"]))
        assert app.table.cursor_index == 7
        assert app.table.cursor_vm is not None and app.table.cursor_vm.uuid == "uuid-0008"


async def test_delta_and_full_refresh_show_the_same_rows() -> None:
    before = [vm(n, cpu_percent=float(n % 5)) for n in range(60)]
    after = [vm(n, cpu_percent=float((n * 7) % 11)) for n in range(60) if n % 9]
    after += [vm(n, name=f"new-{n}") for n in range(60, 66)]
    first, second = estate(before), estate(after, 2)
    old = {p.uuid: p for p in first.placed_vms()}
    # Dealing fewer VMs round-robin moves some to the other host: those changed too.
    changed = tuple(p for p in second.placed_vms() if old.get(p.uuid) != p)
    removed = tuple(sorted(old.keys() - {p.uuid for p in second.placed_vms()}))
    assert changed and removed
    delta = EstateDelta(since=1, changed=changed, removed=removed)
    screens: list[list[str]] = []
    orders: list[list[str]] = []
    for snapshots in ([first, with_delta(second, delta)], [second]):
        app = TableApp()
        async with app.run_test(size=SIZE) as pilot:
            app.table.sort_by("cpu", reverse=True)
            for snapshot in snapshots:
                app.table.apply_snapshot(snapshot)
            await pilot.pause()
            screens.append(lines(app.table))
            orders.append(app.table.shown_uuids())
    assert orders[0] == orders[1]
    assert screens[0] == screens[1]


async def test_a_delta_that_does_not_follow_falls_back_to_a_full_rebuild() -> None:
    app = TableApp()
    async with app.run_test(size=SIZE):
        app.table.apply_snapshot(estate([vm(n) for n in range(5)]))
        # Generation 2 was missed: this delta (since 2) lacks the removal of vm 4.
        third = estate([vm(n) for n in range(4)], 3)
        app.table.apply_snapshot(with_delta(third, EstateDelta(since=2, changed=())))
        assert app.table.shown_uuids() == [f"uuid-{n:04d}" for n in range(4)]


async def test_marks_survive_refresh_and_leave_with_their_vms() -> None:
    app = TableApp()
    async with app.run_test(size=SIZE) as pilot:
        app.table.apply_snapshot(estate([vm(n) for n in range(6)]))
        await pilot.press("space", "down", "down", "space")
        assert app.table.marked == {"uuid-0000", "uuid-0002"}
        await pilot.pause()
        assert lines(app.table)[1].startswith(" ●")
        app.table.sort_by("cpu")
        app.table.apply_snapshot(estate([vm(n, cpu_percent=9.0) for n in range(6)], 2))
        assert app.table.marked == {"uuid-0000", "uuid-0002"}
        remaining = [vm(n, cpu_percent=9.0) for n in range(6) if n != 2]
        app.table.apply_snapshot(following(remaining, 3, removed=["uuid-0002"]))
        await pilot.pause()
        assert app.table.marked == {"uuid-0000"}
        counts = [m.count for m in app.of_type(VmTable.MarksChanged)]
        assert counts == [1, 2, 1]


async def test_mark_all_shown_and_unmark_all() -> None:
    app = TableApp()
    async with app.run_test(size=SIZE) as pilot:
        app.table.apply_snapshot(estate([vm(n, name=("web" if n % 2 else "db")) for n in range(6)]))
        app.table.set_filter("web")
        await pilot.press("asterisk")
        assert app.table.marked == {"uuid-0001", "uuid-0003", "uuid-0005"}
        await pilot.press("U")
        assert app.table.marked == frozenset()


async def test_highlight_and_select_messages() -> None:
    app = TableApp()
    async with app.run_test(size=SIZE) as pilot:
        first = estate([vm(n) for n in range(5)])
        app.table.apply_snapshot(first)
        await pilot.press("down")
        await pilot.pause()
        highlighted = app.of_type(VmTable.VmHighlighted)
        assert [m.placed and m.placed.uuid for m in highlighted] == ["uuid-0000", "uuid-0001"]
        # A change to another VM is not news; a change to the highlighted one is.
        other_hot = [vm(n, cpu_percent=42.0) if n == 4 else vm(n) for n in range(5)]
        app.table.apply_snapshot(following(other_hot, 2, changed=["uuid-0004"]))
        await pilot.pause()
        assert len(app.of_type(VmTable.VmHighlighted)) == 2
        both_hot = [vm(n, cpu_percent=42.0) if n in (1, 4) else vm(n) for n in range(5)]
        app.table.apply_snapshot(following(both_hot, 3, changed=["uuid-0001"]))
        await pilot.pause()
        last = app.of_type(VmTable.VmHighlighted)[-1]
        assert last.placed is not None and last.placed.vm.cpu_percent == 42.0
        assert last.control is app.table
        await pilot.press("enter")
        await pilot.pause()
        selected = app.of_type(VmTable.VmSelected)
        assert [m.placed.uuid for m in selected] == ["uuid-0001"]


async def test_uptime_follows_the_injected_clock() -> None:
    clock = [NOW]

    class ClockApp(TableApp):
        def compose(self) -> ComposeResult:
            yield VmTable(now=lambda: clock[0])

    app = ClockApp()
    async with app.run_test(size=SIZE) as pilot:
        app.table.apply_snapshot(estate([vm(0, started_at=NOW - 30)]))
        await pilot.pause()
        assert lines(app.table)[1].endswith("0m")
        clock[0] = NOW + 3600
        assert lines(app.table)[1].endswith("1h 00m")


async def test_move_cursor_to_and_marked_vms() -> None:
    app = TableApp()
    async with app.run_test(size=SIZE) as pilot:
        app.table.apply_snapshot(estate([vm(n) for n in range(80)]))
        assert app.table.move_cursor_to("uuid-0070")
        await pilot.pause()
        assert app.table.cursor_index == 70
        top = app.table.scroll_offset.y
        assert top <= 70 < top + app.table.scrollable_content_region.height - 1
        await pilot.press("space")
        assert app.table.move_cursor_to("uuid-0003")
        await pilot.press("space")
        app.table.set_filter("vm-0003")
        assert not app.table.move_cursor_to("uuid-0070")
        # Marked VMs a filter hides are still targets, in the table's order.
        assert [p.uuid for p in app.table.marked_vms()] == ["uuid-0003", "uuid-0070"]


async def test_uptime_tick_repaints_only_visible_rows_whose_uptime_reads_otherwise(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clock = [NOW]

    class ClockApp(TableApp):
        def compose(self) -> ComposeResult:
            yield VmTable(now=lambda: clock[0])

    app = ClockApp()
    async with app.run_test(size=SIZE) as pilot:
        # Each VM 10 s into its minute of uptime, but vm-0003: 5 s before its next minute.
        machines = [vm(n, started_at=NOW - 60 * n - (55 if n == 3 else 10)) for n in range(80)]
        app.table.apply_snapshot(estate(machines))
        await pilot.pause()
        repainted: list[tuple[Region, ...]] = []
        monkeypatch.setattr(app.table, "refresh", lambda *regions, **_: repainted.append(regions))
        for second in range(1, 5):
            clock[0] = NOW + second
            app.table._tick_uptime()
        assert repainted == []
        clock[0] = NOW + 5
        app.table._tick_uptime()
        ((region,),) = repainted
        assert region.height == 1 and region.y == 1 + 3  # under the header: vm-0003's line
        # Every VM crosses a minute: the rows in view are repainted, those out of view
        # are not even looked at.
        clock[0] = NOW + 50
        repainted.clear()
        app.table._tick_uptime()
        ((*regions,),) = repainted
        height = app.table.size.height
        assert len(regions) == height - 1 < 80
        assert all(0 < r.y < height for r in regions)


async def test_uptime_tick_costs_nothing_when_uptime_is_not_shown(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clock = [NOW]

    class ClockApp(TableApp):
        def compose(self) -> ComposeResult:
            yield VmTable(now=lambda: clock[0])

    app = ClockApp()
    async with app.run_test(size=(50, 20)) as pilot:
        app.table.apply_snapshot(estate([vm(n) for n in range(30)]))
        await pilot.pause()
        assert "uptime" not in app.table._columns.shown  # it gives way first
        asked = []
        monkeypatch.setattr(RowCells, "uptime_changed", lambda *a: asked.append(a) or True)
        monkeypatch.setattr(app.table, "refresh", lambda *a, **k: asked.append(a))
        clock[0] = NOW + 3600
        app.table._tick_uptime()
        assert asked == []
