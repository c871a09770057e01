"""The dashboard's VM table, drawn with the Line API.

Only the visible lines are ever rendered, so a refresh costs the rows that changed plus
one viewport at most, whether the estate holds a thousand VMs or fifty thousand. Order,
filter and marks live in the pure `VmRows`; this module adds the cursor, painting, keys
and mouse.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from typing import ClassVar, Final, TypeGuard

from rich.cells import cell_len, set_cell_size
from rich.segment import Segment
from rich.style import Style
from textual import events
from textual.binding import Binding, BindingType
from textual.geometry import Region, Size
from textual.message import Message
from textual.scroll_view import ScrollView
from textual.strip import Strip

from ovmtui import format as fmt
from ovmtui.model import EstateSnapshot, PlacedVm, VmState
from ovmtui.terminal import ascii_only, to_ascii
from ovmtui.widgets._lines import cells, keep_in_view
from ovmtui.widgets._vm_rows import (
    SORT_COLUMNS,
    Applied,
    SortColumn,
    VmRows,
    uptime_s,
)

# (id, title, right-aligned); every cell is padded by one space on each side.
_COLUMNS: Final[tuple[tuple[SortColumn, str, bool], ...]] = (
    ("name", "Name", False),
    ("state", "State", False),
    ("host", "Host", False),
    ("vcpus", "vCPUs", True),
    ("memory", "Memory", True),
    ("cpu", "CPU %", True),
    ("uptime", "Uptime", True),
)
# Room for the title and its sort arrow; Name and Host grow with content up to a cap.
_MIN_WIDTHS: Final[dict[SortColumn, int]] = {
    "name": 12,
    "state": 13,  # "shutting-down"
    "host": 8,
    "vcpus": 7,
    "memory": 10,  # "1023.9 GiB"
    "cpu": 7,
    "uptime": 8,  # "999d 23h"
}
_MAX_WIDTHS: Final[dict[SortColumn, int]] = {"name": 40, "host": 24}
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
_MARK_WIDTH: Final = 3
_STATE_CLASS: Final = {state: f"vm-table--state-{state.value}" for state in VmState}


def is_sort_column(name: str) -> TypeGuard[SortColumn]:
    return name in SORT_COLUMNS


def _widest(texts: list[str]) -> int:
    if "".join(texts).isascii():  # nearly always: one check instead of one per text
        return max(map(len, texts), default=0)
    return max(map(cells, texts), default=0)


def _cell(text: str, width: int, right: bool, more: str = "…") -> str:
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


class _RowCells:
    """One row version's cell text, so painting a visible row is a few string joins.

    `widths` holds the shown columns only: a column the table has no room for is absent.
    """

    __slots__ = ("left", "placed", "right", "state", "uptime")

    def __init__(
        self, placed: PlacedVm, widths: dict[SortColumn, int], in_ascii: bool = False
    ) -> None:
        vm = placed.vm
        self.placed = placed
        self.state = _cell(vm.state.value, widths["state"], False)
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
            self.left = _cell(to_ascii(vm.name), widths["name"], False, "~")
            self.right = "".join(_cell(to_ascii(t), w, r, "~") for t, w, r in texts)
        else:
            self.left = _cell(vm.name, widths["name"], False)
            self.right = "".join(_cell(t, w, r) for t, w, r in texts)
        self.uptime = ""  # as last painted: the clock tick repaints only rows it changes


class VmTable(ScrollView, can_focus=True):
    """Every VM of the estate (or of one pool or host), sorted, filtered and markable."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("up", "cursor_up", "Up", show=False, id="vm-cursor-up"),
        Binding("down", "cursor_down", "Down", show=False, id="vm-cursor-down"),
        Binding("pageup", "cursor_page_up", "Page up", show=False, id="vm-cursor-page-up"),
        Binding("pagedown", "cursor_page_down", "Page down", show=False, id="vm-cursor-page-down"),
        Binding("home", "cursor_home", "First", show=False, id="vm-cursor-home"),
        Binding("end", "cursor_end", "Last", show=False, id="vm-cursor-end"),
        Binding("enter", "select", "Open", show=False, id="vm-select"),
        Binding("space", "toggle_mark", "Mark", id="vm-mark"),
        Binding("asterisk", "mark_all", "Mark all shown", id="vm-mark-all"),
        Binding("U", "clear_marks", "Unmark all", id="vm-unmark-all"),
    ]

    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "vm-table--header",
        "vm-table--cursor",
        "vm-table--marked",
        "vm-table--empty",
        *_STATE_CLASS.values(),
    }

    DEFAULT_CSS = """
    VmTable {
        background: $surface;
        color: $foreground;
        &:focus { background-tint: $foreground 5%; }
        & > .vm-table--header { background: $panel; color: $foreground; text-style: bold; }
        & > .vm-table--cursor {
            background: $block-cursor-blurred-background;
            color: $block-cursor-blurred-foreground;
            text-style: $block-cursor-blurred-text-style;
        }
        &:focus > .vm-table--cursor {
            background: $block-cursor-background;
            color: $block-cursor-foreground;
            text-style: $block-cursor-text-style;
        }
        & > .vm-table--marked { background: $secondary-muted; }
        & > .vm-table--empty { color: $text-muted; text-style: italic; }
        & > .vm-table--state-running { color: $success; }
        & > .vm-table--state-blocked { color: $success; }
        & > .vm-table--state-paused { color: $warning; }
        & > .vm-table--state-shutting-down { color: $warning; }
        & > .vm-table--state-shutoff { color: $text-muted; }
        & > .vm-table--state-suspended { color: $secondary; }
        & > .vm-table--state-crashed { color: $error; text-style: bold; }
        & > .vm-table--state-dying { color: $error; }
        & > .vm-table--state-unknown { color: $text-disabled; }
    }
    """

    class _TableMessage(Message):
        def __init__(self, table: VmTable) -> None:
            super().__init__()
            self.table = table

        @property
        def control(self) -> VmTable:
            return self.table

    class VmHighlighted(_TableMessage):
        """The VM under the cursor changed, in identity or in data."""

        def __init__(self, table: VmTable, placed: PlacedVm | None) -> None:
            super().__init__(table)
            self.placed = placed

    class VmSelected(_TableMessage):
        """Enter (or a double click) on a VM."""

        def __init__(self, table: VmTable, placed: PlacedVm) -> None:
            super().__init__(table)
            self.placed = placed

    class MarksChanged(_TableMessage):
        def __init__(self, table: VmTable, count: int) -> None:
            super().__init__(table)
            self.count = count

    def __init__(
        self,
        *,
        now: Callable[[], float] = time.time,
        name: str | None = None,
        id: str | None = None,
        classes: str | None = None,
        disabled: bool = False,
    ) -> None:
        super().__init__(name=name, id=id, classes=classes, disabled=disabled)
        self._now = now
        self._rows = VmRows()
        self._generation: int | None = None
        self._cursor_uuid: str | None = None
        self._cursor_index = 0
        self._highlighted: PlacedVm | None = None
        self._cells: dict[str, _RowCells] = {}
        self._widths: dict[SortColumn, int] = dict(_MIN_WIDTHS)  # what the content wants
        self._shown: dict[SortColumn, int] = {}  # the columns drawn, at their drawn widths
        self._fitted_to: int | None = None  # the width they were chosen for (None: all)
        self._spans: list[tuple[SortColumn, int, int]] = []  # header cells, for clicks
        self._total_width = 0
        self._layout_columns()
        self._styles: dict[tuple[str, ...], Style] = {}
        self._frame: tuple[int, int, int] | None = None  # scroll x, scroll y, width
        # Fixed for the app's life: the terminal's character set is known before it starts.
        self._ascii = ascii_only(self)
        self._arrows = (" ^", " v") if self._ascii else (" ▲", " ▼")
        self._mark = " * " if self._ascii else " ● "

    # -- reading

    @property
    def sort_column(self) -> SortColumn:
        return self._rows.sort_column

    @property
    def sort_reverse(self) -> bool:
        return self._rows.sort_reverse

    @property
    def filter_text(self) -> str:
        return self._rows.filter_text

    @property
    def row_count(self) -> int:
        return len(self._rows)

    @property
    def cursor_index(self) -> int:
        return self._cursor_index

    @property
    def cursor_vm(self) -> PlacedVm | None:
        return None if self._cursor_uuid is None else self._rows.get(self._cursor_uuid)

    @property
    def marked(self) -> frozenset[str]:
        return self._rows.marked

    def marked_vms(self) -> list[PlacedVm]:
        """The marked VMs in the current sort order, including any a filter hides."""
        return self._rows.marked_placed()

    def shown_uuids(self) -> list[str]:
        """The shown rows in display order (O(n): for tests and bulk actions)."""
        return self._rows.uuids()

    # -- feeding

    def apply_snapshot(self, snapshot: EstateSnapshot) -> None:
        """Show `snapshot`: its delta in O(changes) when it follows the last one shown."""
        delta = snapshot.delta
        if delta is not None and self._generation is not None and delta.since == self._generation:
            applied = self._rows.apply(delta.changed, delta.removed)
        else:
            applied = self._rows.replace_all(snapshot.placed_vms())
        self._generation = snapshot.generation
        self._absorb(applied)

    def set_filter(self, text: str) -> None:
        if self._rows.set_filter(text):
            self._reordered()

    def set_scope(self, pool: str | None, host: str | None) -> None:
        if self._rows.set_scope(pool, host):
            self._reordered()

    def sort_by(self, column: str, reverse: bool | None = None) -> None:
        """Sort by `column`; without `reverse`, the current column toggles direction."""
        if not is_sort_column(column):
            raise ValueError(f"unknown column {column!r}; one of {', '.join(SORT_COLUMNS)}")
        if reverse is None:
            reverse = column == self._rows.sort_column and not self._rows.sort_reverse
        self._rows.set_sort(column, reverse)
        self._reordered()

    # -- marks

    def toggle_mark(self) -> None:
        if self._cursor_uuid is None:
            return
        self._rows.toggle_mark(self._cursor_uuid)
        self._refresh_rows((self._cursor_index,))
        self._marks_changed()

    def mark_all_visible(self) -> None:
        before = self._rows.mark_count
        self._rows.mark_shown()
        if self._rows.mark_count != before:
            self.refresh()
            self._marks_changed()

    def clear_marks(self) -> None:
        if self._rows.mark_count:
            self._rows.clear_marks()
            self.refresh()
            self._marks_changed()

    def _marks_changed(self) -> None:
        self.post_message(self.MarksChanged(self, self._rows.mark_count))

    # -- after a change

    def _absorb(self, applied: Applied) -> None:
        for uuid in applied.removed:
            self._cells.pop(uuid, None)
        widened = self._grow_widths(applied.changed)
        self._relocate_cursor()
        self._sync_virtual_size()
        if widened or applied.structural:
            self.refresh()
        elif applied.updated:
            top, count = self.scroll_offset.y, self._page_rows()
            updated = applied.updated
            self._refresh_rows(
                top + offset
                for offset, uuid in enumerate(self._rows.uuids_between(top, top + count))
                if uuid in updated
            )
        self._post_highlight()
        if applied.marks_dropped:
            self._marks_changed()

    def _reordered(self) -> None:
        # User-driven changes: unlike a poll, these may move the view to the cursor.
        self._relocate_cursor()
        self._sync_virtual_size()
        self.refresh()
        self._scroll_to_cursor()
        self._post_highlight()

    def _relocate_cursor(self) -> None:
        self._cursor_uuid, self._cursor_index = self._rows.locate(
            self._cursor_uuid, self._cursor_index
        )

    def _post_highlight(self) -> None:
        placed = self.cursor_vm
        if placed is not self._highlighted and placed != self._highlighted:
            self._highlighted = placed
            self.post_message(self.VmHighlighted(self, placed))

    def _grow_widths(self, changed: Sequence[PlacedVm]) -> bool:
        # Grow-only and fed by changed rows alone: no refresh ever scans the estate.
        widths = self._widths
        name, host = _widest([p.vm.name for p in changed]), _widest([p.host for p in changed])
        grown = False
        wanted_widths: tuple[tuple[SortColumn, int], ...] = (("name", name), ("host", host))
        for column, wanted in wanted_widths:
            width = min(wanted, _MAX_WIDTHS[column])
            if width > widths[column]:
                widths[column] = width
                grown = True
        if grown:
            self._cells.clear()
            self._layout_columns()
        return grown

    def _layout_columns(self) -> None:
        self._shown = self._fit_columns(self._fitted_to)
        self._spans = []
        x = _MARK_WIDTH
        for column, _title, _right in _COLUMNS:
            if column in self._shown:
                end = x + self._shown[column] + 2
                self._spans.append((column, x, end))
                x = end
        self._total_width = x

    def _fit_columns(self, room: int | None) -> dict[SortColumn, int]:
        """The columns that fit in `room` cells and their widths; all of them for None."""
        wanted = self._widths
        if room is None:
            return dict(wanted)
        name_floor = min(wanted["name"], _NAME_FLOOR)
        used = _MARK_WIDTH + name_floor + 2 + wanted["state"] + 2
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

    def on_resize(self) -> None:
        room = self.scrollable_content_region.width
        if room != self._fitted_to:
            self._fitted_to = room
            shown = self._shown
            self._layout_columns()
            if self._shown != shown:
                self._cells.clear()
                self._sync_virtual_size()
                self.refresh()

    def _sync_virtual_size(self) -> None:
        size = Size(self._total_width, len(self._rows) + 1)
        if size != self.virtual_size:
            self.virtual_size = size

    def _page_rows(self) -> int:
        return max(1, self.scrollable_content_region.height - 1)

    def _refresh_rows(self, indexes: Iterable[int]) -> None:
        width = max(self.virtual_size.width, self.size.width)
        top = self.scroll_offset.y
        regions = [Region(0, index + 1 - top, width, 1) for index in indexes]
        if regions:
            self.refresh(*regions)

    def _scroll_to_cursor(self) -> None:
        keep_in_view(self, self._cursor_index, self._page_rows())

    # -- painting

    def on_mount(self) -> None:
        self._sync_virtual_size()
        self.set_interval(1.0, self._tick_uptime)

    def _tick_uptime(self) -> None:
        if "uptime" not in self._shown:
            return
        now, top = self._now(), self.scroll_offset.y
        stale = []
        for offset, uuid in enumerate(self._rows.uuids_between(top, top + self._page_rows())):
            cells, placed = self._cells.get(uuid), self._rows.get(uuid)
            if cells is None or placed is None:
                continue
            if fmt.uptime(uptime_s(placed, now)) != cells.uptime:
                stale.append(top + offset)
        self._refresh_rows(stale)

    def _style(self, *components: str) -> Style:
        style = self._styles.get(components)
        if style is None:
            style = self._styles[components] = self.get_visual_style(*components).rich_style
        return style

    def render_lines(self, crop: Region) -> list[Strip]:
        self._styles.clear()  # theme, focus or CSS may have changed since the last paint
        # Geometry is fixed for one pass: reading it once saves a fifth of a line's cost.
        self._frame = (*self.scroll_offset, self.scrollable_content_region.width)
        try:
            return super().render_lines(crop)
        finally:
            self._frame = None

    def render_line(self, y: int) -> Strip:
        scroll_x, scroll_y, width = self._frame or (
            *self.scroll_offset,
            self.scrollable_content_region.width,
        )
        index = scroll_y + y - 1
        if y == 0:
            strip, style = self._header_strip(), self._style("vm-table--header")
        elif index < len(self._rows):
            strip, style = self._row_strip(index)
        elif index == 0:
            style = self._style("vm-table--empty")
            text = " No VMs match" if self._rows.total else " No VMs"
            return Strip([Segment(text, style)]).extend_cell_length(width, self._style())
        else:
            return Strip.blank(width, self._style())
        return strip.crop_extend(scroll_x, scroll_x + width, style)

    def _header_strip(self) -> Strip:
        arrow = self._arrows[self._rows.sort_reverse]
        sorted_by = self._rows.sort_column
        shown = self._shown
        text = " " * _MARK_WIDTH + "".join(
            _cell(title + arrow if column == sorted_by else title, shown[column], right)
            for column, title, right in _COLUMNS
            if column in shown
        )
        return Strip([Segment(text, self._style("vm-table--header"))], self._total_width)

    def _row_strip(self, index: int) -> tuple[Strip, Style]:
        uuid = self._rows.uuid_at(index)
        placed = self._rows.get(uuid)
        assert placed is not None
        cells = self._cells.get(uuid)
        if cells is None or cells.placed is not placed:
            cells = self._cells[uuid] = _RowCells(placed, self._shown, self._ascii)
        marked = self._rows.is_marked(uuid)
        classes: tuple[str, ...] = ("vm-table--marked",) if marked else ()
        cursor = index == self._cursor_index
        if cursor:
            classes += ("vm-table--cursor",)
        style = self._style(*classes)
        # The cursor's own colours win over the state's, or it could become unreadable.
        state_style = style if cursor else self._style(*classes, _STATE_CLASS[placed.vm.state])
        segments = [
            Segment(self._mark if marked else "   ", style),
            Segment(cells.left, style),
            Segment(cells.state, state_style),
            Segment(cells.right, style),
        ]
        uptime_width = self._shown.get("uptime")
        if uptime_width is not None:
            cells.uptime = uptime = fmt.uptime(uptime_s(placed, self._now()))
            if self._ascii:
                uptime = to_ascii(uptime)
            segments.append(Segment(_cell(uptime, uptime_width, True), style))
        return Strip(segments, self._total_width), style

    # -- keys and mouse

    def _move_cursor(self, index: int) -> None:
        if not len(self._rows):
            return
        index = min(max(index, 0), len(self._rows) - 1)
        self._refresh_rows((self._cursor_index, index))
        self._cursor_uuid, self._cursor_index = self._rows.uuid_at(index), index
        self._scroll_to_cursor()
        self._post_highlight()

    def move_cursor_to(self, uuid: str) -> bool:
        """Put the cursor on VM `uuid`; False when it is not shown (filter or scope)."""
        index = self._rows.index_of(uuid)
        if index is None:
            return False
        self._move_cursor(index)
        return True

    def action_cursor_up(self) -> None:
        self._move_cursor(self._cursor_index - 1)

    def action_cursor_down(self) -> None:
        self._move_cursor(self._cursor_index + 1)

    def action_cursor_page_up(self) -> None:
        self._move_cursor(self._cursor_index - self._page_rows())

    def action_cursor_page_down(self) -> None:
        self._move_cursor(self._cursor_index + self._page_rows())

    def action_cursor_home(self) -> None:
        self._move_cursor(0)

    def action_cursor_end(self) -> None:
        self._move_cursor(len(self._rows) - 1)

    # Every key stays enabled whatever the rows: refreshing bindings rebuilds the footer
    # (~60 ms), which would make each filter keystroke and each mark visibly slow. The
    # actions themselves do nothing on an empty table.

    def action_select(self) -> None:
        placed = self.cursor_vm
        if placed is not None:
            self.post_message(self.VmSelected(self, placed))

    def action_toggle_mark(self) -> None:
        self.toggle_mark()

    def action_mark_all(self) -> None:
        self.mark_all_visible()

    def action_clear_marks(self) -> None:
        self.clear_marks()

    def on_click(self, event: events.Click) -> None:
        offset = event.get_content_offset(self)
        if offset is None:
            return
        event.stop()
        if offset.y == 0:
            x = offset.x + self.scroll_offset.x
            for column, start, end in self._spans:
                if start <= x < end:
                    self.sort_by(column)
                    break
            return
        index = self.scroll_offset.y + offset.y - 1
        if index < len(self._rows):
            self._move_cursor(index)
            if event.chain >= 2:
                self.action_select()
