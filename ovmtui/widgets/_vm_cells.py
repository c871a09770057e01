"""The VM table's columns without the widget: which fit a width, and each row's cell text."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from rich.cells import cell_len, set_cell_size

from ovmtui import format as fmt
from ovmtui.model import PlacedVm
from ovmtui.terminal import to_ascii
from ovmtui.widgets._line_view import cells
from ovmtui.widgets._vm_rows import SortColumn, uptime_s

# (id, title, right-aligned); every cell is padded by one space on each side.
COLUMNS: Final[tuple[tuple[SortColumn, str, bool], ...]] = (
    ("name", "Name", False),
    ("state", "State", False),
    ("host", "Host", False),
    ("vcpus", "vCPUs", True),
    ("memory", "Memory", True),
    ("cpu", "CPU %", True),
    ("uptime", "Uptime", True),
)
# Room for the title and its sort arrow; Name and Host grow with content up to a cap.
MIN_WIDTHS: Final[dict[SortColumn, int]] = {
    "name": 12,
    "state": 13,  # "shutting-down"
    "host": 8,
    "vcpus": 7,
    "memory": 10,  # "1023.9 GiB"
    "cpu": 7,
    "uptime": 8,  # "999d 23h"
}
MAX_WIDTHS: Final[dict[SortColumn, int]] = {"name": 40, "host": 24}
# As the table narrows, columns give way from the end of this order: the name and the state
# always stay, and the host (which tells VMs of the same name apart) longest after them.
_KEEP_ORDER: Final[tuple[SortColumn, ...]] = (
    "name",
    "state",
    "host",
    "memory",
    "vcpus",
    "cpu",
    "uptime",
)
# A name is cut to no fewer cells than this to make room for another column, and to no
# fewer than _NAME_READABLE for anything at all (the table scrolls sideways below that).
_NAME_FLOOR: Final = 16
_NAME_READABLE: Final = 8
MARK_WIDTH: Final = 3


def widest(texts: list[str]) -> int:
    if "".join(texts).isascii():  # nearly always: one check instead of one per text
        return max(map(len, texts), default=0)
    return max(map(cells, texts), default=0)


def cell(text: str, width: int, right: bool, more: str = "…") -> str:
    if text.isascii():
        if len(text) > width:
            text = text[: width - 1] + more
        return f" {text.rjust(width)} " if right else f" {text.ljust(width)} "
    # ljust/rjust count characters, not cells: wide characters need cell arithmetic.
    used = cell_len(text)
    if used > width:
        text, used = set_cell_size(text, width - 1) + "…", width
    pad = " " * (width - used)
    return f" {pad}{text} " if right else f" {text}{pad} "


class RowCells:
    """One row version's cell text, so painting a visible row is a few string joins.

    `widths` holds the shown columns only: a column the table has no room for is absent.
    """

    __slots__ = ("in_ascii", "left", "placed", "right", "state", "uptime")

    def __init__(
        self, placed: PlacedVm, widths: dict[SortColumn, int], in_ascii: bool = False
    ) -> None:
        vm = placed.vm
        self.placed = placed
        self.in_ascii = in_ascii
        self.state = cell(vm.state.value, widths["state"], False)
        texts = []
        if "host" in widths:
            texts.append((placed.host, widths["host"], False))
        if "vcpus" in widths:
            texts.append((fmt.count(vm.vcpus), widths["vcpus"], True))
        if "memory" in widths:
            texts.append((fmt.mib(vm.memory_mib), widths["memory"], True))
        if "cpu" in widths:
            texts.append((fmt.percent(vm.cpu_percent), widths["cpu"], True))
        if in_ascii:
            # Before the cell is cut and padded, so that widths are counted in ASCII.
            self.left = cell(to_ascii(vm.name), widths["name"], False, "~")
            self.right = "".join(cell(to_ascii(t), w, r, "~") for t, w, r in texts)
        else:
            self.left = cell(vm.name, widths["name"], False)
            self.right = "".join(cell(t, w, r) for t, w, r in texts)
        self.uptime = ""  # as last painted: the clock tick repaints only rows it changes

    def uptime_changed(self, placed: PlacedVm, now: float) -> bool:
        """Whether `placed`'s Uptime cell at `now` reads otherwise than when last painted."""
        return fmt.uptime(uptime_s(placed, now)) != self.uptime

    def uptime_cell(self, now: float, width: int) -> str:
        """The Uptime cell at `now`, remembered as the one last painted."""
        self.uptime = uptime = fmt.uptime(uptime_s(self.placed, now))
        return cell(to_ascii(uptime) if self.in_ascii else uptime, width, True)


def fit_columns(wanted: dict[SortColumn, int], room: int | None) -> dict[SortColumn, int]:
    """The columns that fit in `room` cells and their widths; all of them for None."""
    if room is None:
        return dict(wanted)
    name_floor = min(wanted["name"], _NAME_FLOOR)
    used = MARK_WIDTH + name_floor + 2 + wanted["state"] + 2
    shown: dict[SortColumn, int] = {"state": wanted["state"]}
    for column in _KEEP_ORDER[2:]:
        if used + wanted[column] + 2 > room:
            break
        shown[column] = wanted[column]
        used += wanted[column] + 2
    # What is left widens the name up to its content.
    name = min(wanted["name"], name_floor + room - used)
    shown["name"] = max(name, min(wanted["name"], _NAME_READABLE))
    return shown


class Columns:
    """The columns a table draws: the widths its content wants (grow-only, fed by changed
    rows alone, so no refresh ever scans the estate) and those that fit its width."""

    __slots__ = ("fitted_to", "shown", "spans", "wanted", "width")

    def __init__(self) -> None:
        self.wanted: dict[SortColumn, int] = dict(MIN_WIDTHS)
        self.fitted_to: int | None = None  # the width they were chosen for (None: all)
        self.shown: dict[SortColumn, int] = {}  # the columns drawn, at their drawn widths
        self.spans: list[tuple[SortColumn, int, int]] = []  # header cells, for clicks
        self.width = 0  # of a whole row
        self._layout()

    def grow(self, changed: Sequence[PlacedVm]) -> bool:
        """Widen Name and Host for `changed` rows; True when either grew."""
        wanted = self.wanted
        grown = False
        grown_to: tuple[tuple[SortColumn, int], ...] = (
            ("name", widest([p.vm.name for p in changed])),
            ("host", widest([p.host for p in changed])),
        )
        for column, width in grown_to:
            width = min(width, MAX_WIDTHS[column])
            if width > wanted[column]:
                wanted[column] = width
                grown = True
        if grown:
            self._layout()
        return grown

    def fit(self, room: int) -> bool:
        """Choose the columns for `room` cells; True when the shown ones changed."""
        if room == self.fitted_to:
            return False
        self.fitted_to = room
        shown = self.shown
        self._layout()
        return self.shown != shown

    def at(self, x: int) -> SortColumn | None:
        """The column whose title is at `x` cells from the left of a row."""
        for column, start, end in self.spans:
            if start <= x < end:
                return column
        return None

    def header(self, sorted_by: SortColumn, arrow: str) -> str:
        """The titles of the shown columns, `arrow` after the one sorted by."""
        shown = self.shown
        return " " * MARK_WIDTH + "".join(
            cell(title + arrow if column == sorted_by else title, shown[column], right)
            for column, title, right in COLUMNS
            if column in shown
        )

    def _layout(self) -> None:
        self.shown = fit_columns(self.wanted, self.fitted_to)
        self.spans = []
        x = MARK_WIDTH
        for column, _title, _right in COLUMNS:
            if column in self.shown:
                end = x + self.shown[column] + 2
                self.spans.append((column, x, end))
                x = end
        self.width = x
