"""The VM table's pure row logic: incremental order, filter, scope and marks."""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from unittest.mock import patch

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ovmtui.model import PlacedVm, Vm, VmState
from ovmtui.widgets import _sorted_keys, _vm_rows
from ovmtui.widgets._sorted_keys import SortedKeys, SortKey
from ovmtui.widgets._vm_rows import SORT_COLUMNS, VmRows, haystack, sort_key


def placed(
    uuid: str,
    name: str | None = None,
    *,
    host: str = "h1",
    pool: str = "p1",
    state: VmState = VmState.RUNNING,
    vcpus: int | None = 1,
    memory_mib: int | None = 1024,
    cpu: float | None = 1.0,
    started_at: float | None = 100.0,
) -> PlacedVm:
    vm = Vm(
        uuid=uuid,
        name=name if name is not None else f"vm-{uuid}",
        state=state,
        vcpus=vcpus,
        memory_mib=memory_mib,
        cpu_percent=cpu,
        started_at=started_at,
    )
    return PlacedVm(pool, host, vm)


def expected(
    vms: dict[str, PlacedVm],
    column: _vm_rows.SortColumn = "name",
    reverse: bool = False,
    needle: str = "",
    pool: str | None = None,
    host: str | None = None,
) -> list[str]:
    """The order a table must show, computed the slow, obvious way."""
    needle = needle.strip().casefold()
    shown = [
        p
        for p in vms.values()
        if (pool is None or p.pool == pool)
        and (host is None or p.host == host)
        and needle in haystack(p)
    ]
    return [p.uuid for p in sorted(shown, key=lambda p: sort_key(p, column, reverse))]


@contextmanager
def small_chunks(load: int = 4, bulk: int = 3) -> Iterator[None]:
    # Tiny chunks and a low bulk threshold put small examples through every code path.
    with (
        patch.object(_sorted_keys, "_LOAD", load),
        patch.object(_vm_rows, "_BULK_MOVES", bulk),
    ):
        yield


def test_uptime_needs_an_active_vm() -> None:
    assert _vm_rows.uptime_s(placed("a", started_at=100.0), 160.0) == 60.0
    assert _vm_rows.uptime_s(placed("a", state=VmState.SHUTOFF), 160.0) is None
    assert _vm_rows.uptime_s(placed("a", started_at=None), 160.0) is None


# --- sort keys ------------------------------------------------------------------------


@pytest.mark.parametrize("reverse", [False, True])
def test_unknown_values_sort_last_in_both_directions(reverse: bool) -> None:
    vms = {
        "a": placed("a", "a", cpu=None),
        "b": placed("b", "b", cpu=50.0),
        "c": placed("c", "c", cpu=math.nan),
        "d": placed("d", "d", cpu=5.0),
    }
    order = expected(vms, "cpu", reverse)
    assert order[-2:] == ["a", "c"]  # unknown, then by name
    assert order[:2] == (["b", "d"] if reverse else ["d", "b"])


def test_reversed_text_puts_longer_names_before_their_prefix() -> None:
    vms = {u: placed(u, name) for u, name in [("1", "ab"), ("2", "abc"), ("3", "B"), ("4", "a")]}
    assert expected(vms, "name") == ["4", "1", "2", "3"]
    assert expected(vms, "name", reverse=True) == ["3", "2", "1", "4"]


def test_ties_fall_back_to_name_then_uuid() -> None:
    vms = {
        "z": placed("z", "same", host="h2"),
        "y": placed("y", "same", host="h1"),
        "x": placed("x", "other", host="h2"),
    }
    assert expected(vms, "host") == ["y", "x", "z"]
    assert expected(vms, "host", reverse=True) == ["x", "z", "y"]


def test_uptime_sorts_by_start_time_without_a_clock() -> None:
    vms = {
        "old": placed("old", started_at=10.0),
        "new": placed("new", started_at=500.0),
        "off": placed("off", state=VmState.SHUTOFF, started_at=1.0),
    }
    assert expected(vms, "uptime") == ["new", "old", "off"]
    assert expected(vms, "uptime", reverse=True) == ["old", "new", "off"]


def test_state_sorts_in_declaration_order() -> None:
    vms = {
        "1": placed("1", state=VmState.SHUTOFF),
        "2": placed("2", state=VmState.RUNNING),
        "3": placed("3", state=VmState.CRASHED),
    }
    assert expected(vms, "state") == ["2", "1", "3"]  # running, shutoff, crashed


# --- SortedKeys -----------------------------------------------------------------------


def key(n: int) -> SortKey:
    return (0, n, "", "", f"{n:05d}")


@settings(max_examples=200)
@given(st.lists(st.tuples(st.booleans(), st.integers(0, 300)), max_size=400))
def test_sorted_keys_matches_a_sorted_list(ops: list[tuple[bool, int]]) -> None:
    with small_chunks():
        keys = SortedKeys()
        model: set[int] = set()
        for add, n in ops:
            if add and n not in model:
                keys.add(key(n))
                model.add(n)
            elif not add and n in model:
                keys.remove(key(n))
                model.discard(n)
            elif not add:
                with pytest.raises(KeyError):
                    keys.remove(key(n))
        ordered = [key(n) for n in sorted(model)]
        assert list(keys) == ordered
        assert len(keys) == len(ordered)
        assert [keys[i] for i in range(len(keys))] == ordered
        assert all(keys.index(k) == i for i, k in enumerate(ordered))
        assert keys.index(key(999)) is None
        assert keys.slice(3, 11) == ordered[3:11]
        assert keys.slice(-5, 10_000) == ordered


def test_sorted_keys_reset_and_bounds() -> None:
    with small_chunks():
        keys = SortedKeys(key(n) for n in (5, 1, 3))
        assert list(keys) == [key(1), key(3), key(5)]
        keys.reset([key(n) for n in range(20)])
        assert keys[19] == key(19)
        with pytest.raises(IndexError):
            keys[20]
        assert keys.slice(5, 5) == []


# --- VmRows ---------------------------------------------------------------------------


def test_load_sorts_by_name_and_reports_everything_changed() -> None:
    rows = VmRows()
    vms = {u: placed(u, name) for u, name in [("1", "web"), ("2", "db"), ("3", "App")]}
    applied = rows.replace_all(vms.values())
    assert rows.uuids() == ["3", "2", "1"]
    assert applied.structural
    assert len(applied.changed) == 3
    assert (rows.total, len(rows)) == (3, 3)


def test_an_unchanged_estate_changes_nothing() -> None:
    rows = VmRows()
    rows.replace_all([placed("1"), placed("2")])
    # Equal but distinct objects, as `EstateSnapshot.placed_vms()` builds them.
    applied = rows.replace_all([placed("1"), placed("2")])
    assert not applied.structural
    assert applied.changed == () and applied.updated == frozenset()


def test_a_change_that_keeps_the_sort_key_updates_in_place() -> None:
    rows = VmRows()
    rows.replace_all([placed("1", "a"), placed("2", "b")])
    applied = rows.apply([placed("2", "b", cpu=99.0)], ())
    assert not applied.structural
    assert applied.updated == {"2"}
    rows.set_sort("cpu", False)
    applied = rows.apply([placed("2", "b", cpu=0.5)], ())
    assert applied.structural
    assert rows.uuids() == ["2", "1"]


def test_removal_and_membership() -> None:
    rows = VmRows()
    rows.replace_all([placed(str(n)) for n in range(5)])
    applied = rows.apply((), ["2", "nope"])
    assert applied.removed == ("2",)
    assert rows.uuids() == ["0", "1", "3", "4"]
    assert rows.index_of("2") is None and rows.get("2") is None
    assert rows.index_of("3") == 2 and rows.uuid_at(2) == "3"
    assert rows.uuids_between(1, 3) == ["1", "3"]


def test_filter_matches_name_state_host_and_pool_case_insensitively() -> None:
    rows = VmRows()
    rows.replace_all(
        [
            placed("1", "Web-1", host="alpha", pool="prod"),
            placed("2", "db-1", host="beta", pool="prod", state=VmState.CRASHED),
            placed("3", "web-2", host="beta", pool="test"),
        ]
    )
    for text, shown in [
        ("WEB", ["1", "3"]),
        ("crash", ["2"]),
        ("beta", ["2", "3"]),
        (" test ", ["3"]),
        ("nothing", []),
        ("", ["2", "1", "3"]),
    ]:
        rows.set_filter(text)
        assert rows.uuids() == shown, text
    assert not rows.set_filter("")


def test_filter_applies_to_rows_that_arrive_later() -> None:
    rows = VmRows()
    rows.replace_all([placed("1", "web")])
    rows.set_filter("web")
    rows.apply([placed("2", "db"), placed("3", "web-2")], ())
    assert rows.uuids() == ["1", "3"]
    rows.apply([placed("1", "renamed")], ())
    assert rows.uuids() == ["3"]


def test_scope_restricts_to_a_pool_or_a_host() -> None:
    rows = VmRows()
    rows.replace_all(
        [
            placed("1", host="a", pool="p"),
            placed("2", host="b", pool="p"),
            placed("3", host="a", pool="q"),
        ]
    )
    rows.set_scope("p", None)
    assert rows.uuids() == ["1", "2"]
    rows.set_scope("p", "a")
    assert rows.uuids() == ["1"]
    rows.set_scope(None, "a")
    assert rows.uuids() == ["1", "3"]
    rows.set_scope(None, None)
    assert rows.uuids() == ["1", "2", "3"]
    assert rows.scope == (None, None)


def test_locate_follows_the_uuid_or_clamps_the_index() -> None:
    rows = VmRows()
    rows.replace_all([placed(str(n)) for n in range(4)])
    assert rows.locate("2", 0) == ("2", 2)
    assert rows.locate("gone", 1) == ("1", 1)
    assert rows.locate("gone", 10) == ("3", 3)
    assert rows.locate(None, -1) == ("0", 0)
    rows.apply((), ["0", "1", "2", "3"])
    assert rows.locate("2", 2) == (None, 0)


def test_marks_are_dropped_with_their_vms() -> None:
    rows = VmRows()
    rows.replace_all([placed(str(n)) for n in range(4)])
    assert rows.toggle_mark("1") and rows.toggle_mark("2")
    assert not rows.toggle_mark("nope")
    assert not rows.apply([placed("1", cpu=5.0)], ()).marks_dropped
    applied = rows.apply((), ["2"])
    assert applied.marks_dropped
    assert rows.marked == {"1"}
    rows.set_filter("vm-3")
    rows.mark_shown()
    assert rows.marked == {"1", "3"}
    assert [p.uuid for p in rows.marked_placed()] == ["1", "3"]
    assert not rows.toggle_mark("3")
    rows.clear_marks()
    assert rows.marked == frozenset()


def test_many_moves_take_the_bulk_path_and_agree() -> None:
    vms = {str(n): placed(str(n), cpu=float(n)) for n in range(2000)}
    rows = VmRows("cpu")
    rows.replace_all(vms.values())
    moved = {str(n): placed(str(n), cpu=float(-n)) for n in range(0, 2000, 3)}
    vms.update(moved)
    applied = rows.apply(moved.values(), ["5", "7"])
    del vms["5"], vms["7"]
    assert applied.structural
    assert rows.uuids() == expected(vms, "cpu")


def test_unknown_sort_column_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown column"):
        VmRows().set_sort("colour", False)  # type: ignore[arg-type]


# --- the property: incremental maintenance == sorting from scratch ---------------------

UUIDS = [f"u{n:02d}" for n in range(16)]

vm_strategy = st.builds(
    placed,
    st.sampled_from(UUIDS),
    st.sampled_from(["a", "A", "ab", "b", "web", "Web-2", "é", "db"]),
    host=st.sampled_from(["h1", "h2", "H1"]),
    pool=st.sampled_from(["p", "q"]),
    state=st.sampled_from(list(VmState)),
    vcpus=st.one_of(st.none(), st.integers(1, 3)),
    memory_mib=st.one_of(st.none(), st.sampled_from([512, 1024, 4096])),
    cpu=st.one_of(st.none(), st.sampled_from([0.0, 1.5, 50.0, math.nan])),
    started_at=st.one_of(st.none(), st.sampled_from([10.0, 20.0])),
)

operation = st.one_of(
    st.tuples(
        st.just("apply"),
        st.lists(vm_strategy, max_size=8),
        st.lists(st.sampled_from(UUIDS), max_size=3),
    ),
    st.tuples(st.just("replace"), st.lists(vm_strategy, max_size=16)),
    st.tuples(st.just("filter"), st.sampled_from(["", "a", "ab", "web", "H1", "run", "q", "X"])),
    st.tuples(
        st.just("scope"),
        st.sampled_from([None, "p", "q"]),
        st.sampled_from([None, "h1", "H1"]),
    ),
    st.tuples(st.just("sort"), st.sampled_from(SORT_COLUMNS), st.booleans()),
    st.tuples(st.just("mark"), st.sampled_from(UUIDS)),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(operation, max_size=25), st.sampled_from([0, 3, 1000]))
def test_incremental_order_equals_a_full_sort(ops: list[tuple[object, ...]], bulk: int) -> None:
    with small_chunks(load=2, bulk=bulk):
        rows = VmRows()
        model: dict[str, PlacedVm] = {}
        marks: set[str] = set()
        column: _vm_rows.SortColumn = "name"
        reverse, needle = False, ""
        pool: str | None = None
        host: str | None = None
        for op in ops:
            match op:
                case ("apply", list(changed), list(removed)):
                    rows.apply(changed, removed)
                    model.update((p.uuid, p) for p in changed)
                    for uuid in removed:
                        model.pop(uuid, None)
                case ("replace", list(vms)):
                    rows.replace_all(vms)
                    model = {p.uuid: p for p in vms}
                case ("filter", str(text)):
                    rows.set_filter(text)
                    needle = text
                case ("scope", new_pool, new_host):
                    assert new_pool is None or isinstance(new_pool, str)
                    assert new_host is None or isinstance(new_host, str)
                    rows.set_scope(new_pool, new_host)
                    pool, host = new_pool, new_host
                case ("sort", str(new_column), bool(new_reverse)):
                    assert new_column in SORT_COLUMNS
                    rows.set_sort(new_column, new_reverse)
                    column, reverse = new_column, new_reverse
                case ("mark", str(uuid)):
                    if rows.toggle_mark(uuid):
                        marks.add(uuid)
                    else:
                        marks.discard(uuid)
            marks &= model.keys()
            order = expected(model, column, reverse, needle, pool, host)
            assert rows.uuids() == order
            assert len(rows) == len(order) and rows.total == len(model)
            assert [rows.index_of(uuid) for uuid in order] == list(range(len(order)))
            assert rows.marked == marks
