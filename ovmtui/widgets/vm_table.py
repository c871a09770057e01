"""The dashboard's VM table, drawn with the Line API.

Only the visible lines are ever rendered, so a refresh costs the rows that changed plus
one viewport at most, whether the estate holds a thousand VMs or fifty thousand. Order,
filter and marks live in the pure `VmRows`; this module adds the cursor, painting, keys
and mouse.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import ClassVar, Final, Unpack

from rich.segment import Segment
from rich.style import Style
from textual.binding import Binding, BindingType
from textual.geometry import Region
from textual.message import Message
from textual.strip import Strip

from ovmtui.model import EstateSnapshot, PlacedVm, VmState
from ovmtui.widgets._line_view import LineView, WidgetOptions, cursor_bindings
from ovmtui.widgets._vm_cells import Columns, RowCells, cell
from ovmtui.widgets._vm_rows import SORT_COLUMNS, Applied, SortColumn, VmRows, is_sort_column
from ovmtui.widgets.state_style import VM_STATE_STYLES, css_rules

_STATE_CLASS: Final = {state: f"vm-table--state-{state.value}" for state in VmState}


class VmTable(LineView, can_focus=True):
    """Every VM of the estate (or of one pool or host), sorted, filtered and markable."""

    HEADER_ROWS = 1  # the column titles

    BINDINGS: ClassVar[list[BindingType]] = [
        *cursor_bindings("vm"),
        # Posts VmSelected: the dashboard opens the VM's screen.
        Binding("enter", "select", "Open", id="vm-select"),
        Binding("space", "toggle_mark", "Mark", id="vm-mark"),
        Binding("asterisk", "mark_all", "Mark all shown", id="vm-mark-all"),
        Binding("U", "clear_marks", "Unmark all", id="vm-unmark-all"),
    ]

    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "vm-table--header",
        "vm-table--cursor",
        "vm-table--marked",
        "vm-table--empty",
        "vm-table--moving",
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
        & > .vm-table--moving { color: $warning; text-style: bold; }
    }
    """ + css_rules("VmTable", "vm-table--state-", VM_STATE_STYLES)

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
        self, *, now: Callable[[], float] = time.time, **options: Unpack[WidgetOptions]
    ) -> None:
        super().__init__(**options)
        self._now = now
        self._rows = VmRows()
        self._generation: int | None = None
        self._cursor_uuid: str | None = None
        self._cursor_index = 0
        self._highlighted: PlacedVm | None = None
        self._cells: dict[str, RowCells] = {}
        # VMs moving now (a migration under way): their State cell says so instead.
        self._moving: frozenset[str] = frozenset()
        self._columns = Columns()
        self._styles: dict[tuple[str, ...], Style] = {}
        self._frame: tuple[int, int, int] | None = None  # scroll x, scroll y, width
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

    # -- the line view's questions

    def _line_count(self) -> int:
        return len(self._rows)

    def _line_width(self) -> int:
        return self._columns.width

    def _cursor_line(self) -> int:
        return self._cursor_index

    def _put_cursor(self, index: int) -> None:
        self._cursor_uuid, self._cursor_index = self._rows.uuid_at(index), index

    def _cursor_moved(self) -> None:
        self._post_highlight()

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
        self._refresh_lines((self._cursor_index,))
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
        widened = self._columns.grow(applied.changed)
        if widened:
            self._cells.clear()
        self._relocate_cursor()
        self._sync_virtual_size()
        if widened or applied.structural:
            self.refresh()
        elif applied.updated:
            top, count = self.scroll_offset.y, self._page_rows()
            updated = applied.updated
            self._refresh_lines(
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

    def on_resize(self) -> None:
        if self._columns.fit(self.scrollable_content_region.width):
            self._cells.clear()
            self._sync_virtual_size()
            self.refresh()

    # -- painting

    def on_mount(self) -> None:
        # LineView.on_mount, which Textual calls as well, sets the virtual size.
        self.set_interval(1.0, self._tick_uptime)

    def _tick_uptime(self) -> None:
        if "uptime" not in self._columns.shown:
            return
        now, top = self._now(), self.scroll_offset.y
        stale = []
        for offset, uuid in enumerate(self._rows.uuids_between(top, top + self._page_rows())):
            cells, placed = self._cells.get(uuid), self._rows.get(uuid)
            if cells is not None and placed is not None and cells.uptime_changed(placed, now):
                stale.append(top + offset)
        self._refresh_lines(stale)

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
        text = self._columns.header(self._rows.sort_column, self._arrows[self._rows.sort_reverse])
        return Strip([Segment(text, self._style("vm-table--header"))], self._columns.width)

    def show_moving(self, uuids: frozenset[str]) -> None:
        """The VMs whose State cell reads "migrating" until their move ends."""
        if uuids != self._moving:
            self._moving = uuids
            self.refresh()

    def _row_strip(self, index: int) -> tuple[Strip, Style]:
        uuid = self._rows.uuid_at(index)
        placed = self._rows.get(uuid)
        assert placed is not None
        columns = self._columns
        cells = self._cells.get(uuid)
        if cells is None or cells.placed is not placed:
            cells = self._cells[uuid] = RowCells(placed, columns.shown, self._ascii)
        marked = self._rows.is_marked(uuid)
        classes: tuple[str, ...] = ("vm-table--marked",) if marked else ()
        cursor = index == self._cursor_index
        if cursor:
            classes += ("vm-table--cursor",)
        style = self._style(*classes)
        # The cursor's own colours win over the state's, or it could become unreadable.
        state_text = cells.state
        if uuid in self._moving:
            state_text = cell("migrating", columns.shown["state"], False)
            state_class = "vm-table--moving"
        else:
            state_class = _STATE_CLASS[placed.vm.state]
        state_style = style if cursor else self._style(*classes, state_class)
        segments = [
            Segment(self._mark if marked else "   ", style),
            Segment(cells.left, style),
            Segment(state_text, state_style),
            Segment(cells.right, style),
        ]
        uptime_width = columns.shown.get("uptime")
        if uptime_width is not None:
            segments.append(Segment(cells.uptime_cell(self._now(), uptime_width), style))
        return Strip(segments, columns.width), style

    # -- keys and mouse

    def move_cursor_to(self, uuid: str) -> bool:
        """Put the cursor on VM `uuid`; False when it is not shown (filter or scope)."""
        index = self._rows.index_of(uuid)
        if index is None:
            return False
        self._move_cursor(index)
        return True

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

    def _clicked(self, x: int, y: int, chain: int) -> None:
        if y < self.HEADER_ROWS:
            column = self._columns.at(x)
            if column is not None:
                self.sort_by(column)
            return
        index = self._line_at(y)
        if index is not None:
            self._move_cursor(index)
            if chain >= 2:
                self.action_select()
