"""The VM table's rows without the widget: order, filter, scope and marks.

Pure Python (no Textual, no Rich) so the ordering logic is tested on its own. Every
refresh path here is O(changes): the estate may hold 50,000 VMs while a poll changes a
few hundred of them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final, Literal, TypeGuard, get_args

from ovmtui.model import PlacedVm, VmState
from ovmtui.model import uptime_s as vm_uptime_s
from ovmtui.widgets._sorted_keys import SortedKeys, SortKey

SortColumn = Literal["name", "state", "host", "vcpus", "memory", "cpu", "uptime"]
SORT_COLUMNS: Final[tuple[SortColumn, ...]] = get_args(SortColumn)


def is_sort_column(name: str) -> TypeGuard[SortColumn]:
    return name in SORT_COLUMNS


# Declaration order groups the states usefully (running first), unlike their spelling.
_STATE_RANK: Final = {state: rank for rank, state in enumerate(VmState)}
_MAX_CHAR: Final = 0x10FFFF


def _invert(text: str) -> str:
    # Reverses string order while the rest of the key stays ascending; the trailing
    # maximum puts "abc" before its prefix "ab", as a descending order must.
    return "".join([chr(_MAX_CHAR - ord(c)) for c in text]) + chr(_MAX_CHAR)


def uptime_s(placed: PlacedVm, now: float) -> float | None:
    return vm_uptime_s(placed.vm, now)


def sort_key(placed: PlacedVm, column: SortColumn, reverse: bool = False) -> SortKey:
    """Unknown values sort last in both directions; ties fall back to name, then uuid."""
    vm = placed.vm
    value: float | str | None
    if column == "name":
        value = vm.name.casefold()
    elif column == "state":
        value = _STATE_RANK[vm.state]
    elif column == "host":
        value = f"{placed.host.casefold()}\0{placed.pool.casefold()}"
    elif column == "vcpus":
        value = vm.vcpus
    elif column == "memory":
        value = vm.memory_mib
    elif column == "cpu":
        value = vm.cpu_percent
        if value is not None and value != value:  # NaN would break the ordering
            value = None
    else:
        # Ordered by start time so the key never depends on the clock: a later start
        # means a shorter uptime.
        value = None if vm.started_at is None or not vm.state.is_active else -vm.started_at
    name = vm.name
    if value is None:
        return (1, 0, name.casefold(), name, vm.uuid)
    if reverse:
        value = _invert(value) if isinstance(value, str) else -value
    return (0, value, name.casefold(), name, vm.uuid)


def haystack(placed: PlacedVm) -> str:
    vm = placed.vm
    return f"{vm.name}\n{vm.state.value}\n{placed.host}\n{placed.pool}".casefold()


# --- the rows of one table -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Applied:
    """What one refresh did to the shown rows, so the widget repaints only that."""

    structural: bool  # rows were added, removed or moved among the shown ones
    updated: frozenset[str]  # shown rows whose data changed where they stand
    changed: tuple[PlacedVm, ...]  # every new or different VM, shown or not
    removed: tuple[str, ...]  # UUIDs that left the estate
    marks_dropped: bool


class _Row:
    # One record per VM: at 50,000 rows each hash lookup is a likely cache miss, so a
    # change costs one lookup here rather than one per parallel dict.
    __slots__ = ("hay", "key", "placed", "shown")

    def __init__(self, placed: PlacedVm, key: SortKey) -> None:
        self.placed = placed
        self.key = key  # for the current sort
        self.hay: str | None = None  # filled lazily: only filtering needs it
        self.shown = False


# Moves above which one sort of the shown keys beats one bisection per move.
_BULK_MOVES: Final = 256


class VmRows:
    """All VMs of the estate and the sorted, filtered subset that the table shows."""

    def __init__(self, column: SortColumn = "name", reverse: bool = False) -> None:
        self._rows: dict[str, _Row] = {}
        self._order = SortedKeys()  # keys of the shown rows
        self._marks: set[str] = set()
        self._column: SortColumn = column
        self._reverse = reverse
        self._needle = ""
        self._pool: str | None = None
        self._host: str | None = None

    # -- reading

    def __len__(self) -> int:
        return len(self._order)

    @property
    def total(self) -> int:
        return len(self._rows)

    @property
    def sort_column(self) -> SortColumn:
        return self._column

    @property
    def sort_reverse(self) -> bool:
        return self._reverse

    @property
    def filter_text(self) -> str:
        return self._needle

    @property
    def scope(self) -> tuple[str | None, str | None]:
        return self._pool, self._host

    def uuids(self) -> list[str]:
        return [key[-1] for key in self._order]

    def uuid_at(self, index: int) -> str:
        return self._order[index][-1]

    def uuids_between(self, start: int, stop: int) -> list[str]:
        return [key[-1] for key in self._order.slice(start, stop)]

    def get(self, uuid: str) -> PlacedVm | None:
        row = self._rows.get(uuid)
        return None if row is None else row.placed

    def index_of(self, uuid: str) -> int | None:
        row = self._rows.get(uuid)
        if row is None or not row.shown:
            return None
        return self._order.index(row.key)

    def locate(self, uuid: str | None, fallback: int) -> tuple[str | None, int]:
        """Where a cursor on `uuid` lands: on its row, else at `fallback` clamped."""
        if uuid is not None and (index := self.index_of(uuid)) is not None:
            return uuid, index
        if not self._order:
            return None, 0
        index = min(max(fallback, 0), len(self._order) - 1)
        return self.uuid_at(index), index

    # -- marks

    @property
    def marked(self) -> frozenset[str]:
        return frozenset(self._marks)

    @property
    def mark_count(self) -> int:
        return len(self._marks)

    def marked_placed(self) -> list[PlacedVm]:
        """The marked VMs, shown or not, in the current sort order."""
        rows = [self._rows[uuid] for uuid in self._marks]
        return [row.placed for row in sorted(rows, key=lambda row: row.key)]

    def is_marked(self, uuid: str) -> bool:
        return uuid in self._marks

    def toggle_mark(self, uuid: str) -> bool:
        if uuid in self._marks:
            self._marks.discard(uuid)
            return False
        if uuid in self._rows:
            self._marks.add(uuid)
            return True
        return False

    def mark_shown(self) -> None:
        self._marks.update(key[-1] for key in self._order)

    def clear_marks(self) -> None:
        self._marks.clear()

    # -- changing

    def _filtering(self) -> bool:
        return bool(self._needle) or self._pool is not None or self._host is not None

    def _matches(self, row: _Row) -> bool:
        placed = row.placed
        if self._pool is not None and placed.pool != self._pool:
            return False
        if self._host is not None and placed.host != self._host:
            return False
        if not self._needle:
            return True
        if row.hay is None:
            row.hay = haystack(placed)
        return self._needle in row.hay

    def replace_all(self, vms: Iterable[PlacedVm]) -> Applied:
        """Diff a whole estate against the rows by uuid and apply only the difference."""
        # A migrating VM can be listed by both hosts for a moment: the last listing wins,
        # as it would in a delta.
        latest = {vm.vm.uuid: vm for vm in vms}
        rows = self._rows
        if not rows:
            return self._load(latest)
        changed = [
            vm for uuid, vm in latest.items() if (row := rows.get(uuid)) is None or row.placed != vm
        ]
        removed = [uuid for uuid in rows if uuid not in latest]
        return self.apply(changed, removed)

    def apply(self, changed: Iterable[PlacedVm], removed: Iterable[str]) -> Applied:
        """Apply new or different VMs and departures, in O(changes) for small changes."""
        if not self._rows:
            latest = {vm.vm.uuid: vm for vm in changed}
            for uuid in removed:
                latest.pop(uuid, None)
            return self._load(latest)
        rows, column, reverse = self._rows, self._column, self._reverse
        filtering = self._filtering()
        updated: set[str] = set()
        moves: list[tuple[SortKey | None, SortKey | None]] = []
        done: list[PlacedVm] = []
        gone: list[str] = []
        marks_before = len(self._marks)
        for vm in changed:
            uuid = vm.vm.uuid
            key = sort_key(vm, column, reverse)
            done.append(vm)
            row = rows.get(uuid)
            if row is None:
                row = rows[uuid] = _Row(vm, key)
                old_key = None
            else:
                row.placed, row.hay = vm, None
                old_key = row.key if row.shown else None
                row.key = key
            shown = self._matches(row) if filtering else True
            if old_key is not None and shown and old_key == key:
                updated.add(uuid)  # the common case: same place, new figures
                continue
            row.shown = shown
            if old_key is not None or shown:
                moves.append((old_key, key if shown else None))
        for uuid in removed:
            gone_row = rows.pop(uuid, None)
            if gone_row is None:
                continue
            gone.append(uuid)
            self._marks.discard(uuid)
            updated.discard(uuid)
            if gone_row.shown:
                moves.append((gone_row.key, None))
        if len(moves) > max(_BULK_MOVES, len(self._order) // 4):
            self._resort()
        else:
            for leaving, arriving in moves:
                if leaving is not None:
                    self._order.remove(leaving)
                if arriving is not None:
                    self._order.add(arriving)
        return Applied(
            structural=bool(moves),
            updated=frozenset(updated),
            changed=tuple(done),
            removed=tuple(gone),
            marks_dropped=len(self._marks) != marks_before,
        )

    def _load(self, latest: dict[str, PlacedVm]) -> Applied:
        # The first snapshot of a session: the general path's per-row bookkeeping (old
        # key, moves, membership) is pure overhead when nothing came before.
        column, reverse = self._column, self._reverse
        self._rows = rows = {
            uuid: _Row(vm, sort_key(vm, column, reverse)) for uuid, vm in latest.items()
        }
        filtering = self._filtering()
        for row in rows.values():
            row.shown = self._matches(row) if filtering else True
        self._resort()
        return Applied(bool(rows), frozenset(), tuple(latest.values()), (), False)

    def _resort(self) -> None:
        self._order.reset(sorted([row.key for row in self._rows.values() if row.shown]))

    def set_sort(self, column: SortColumn, reverse: bool) -> None:
        if column not in SORT_COLUMNS:
            raise ValueError(f"unknown column {column!r}")
        if (column, reverse) == (self._column, self._reverse):
            return
        self._column, self._reverse = column, reverse
        for row in self._rows.values():
            row.key = sort_key(row.placed, column, reverse)
        self._resort()

    def set_filter(self, text: str) -> bool:
        needle = text.strip().casefold()
        if needle == self._needle:
            return False
        narrowing = self._needle in needle  # every row the new text matches is shown now
        self._needle = needle
        self._refilter(narrowing)
        return True

    def set_scope(self, pool: str | None, host: str | None) -> bool:
        if (pool, host) == (self._pool, self._host):
            return False
        narrowing = (self._pool is None or self._pool == pool) and (
            self._host is None or self._host == host
        )
        self._pool, self._host = pool, host
        self._refilter(narrowing)
        return True

    def _refilter(self, narrowing: bool) -> None:
        # The current order stays one sorted run, so Python's sort merges any newcomers
        # in nearly linear time instead of sorting everything again.
        rows = self._rows
        kept: list[SortKey] = []
        for key in self._order:
            row = rows[key[-1]]
            row.shown = self._matches(row)
            if row.shown:
                kept.append(key)
        if not narrowing:
            count = len(kept)
            for row in rows.values():
                if not row.shown and self._matches(row):
                    row.shown = True
                    kept.append(row.key)
            if len(kept) > count:
                kept.sort()
        self._order.reset(kept)
