"""What the dashboard's Line-API views (the estate tree, the VM table) share.

`LineView` holds a cursor on one of its lines and everything that follows from it:
moving and paging, keeping the cursor in view, the virtual size, and repainting only
the lines that changed. Painting (`render_line`) stays with each view: it is their hot
path, tuned to what each caches.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import ClassVar, TypedDict, Unpack

from rich.cells import cell_len
from textual import events
from textual.binding import Binding
from textual.geometry import Region, Size
from textual.scroll_view import ScrollView

from ovmtui.terminal import ascii_only


def cells(text: str) -> int:
    """Terminal cells `text` takes; the common ASCII case without Rich's per-character walk."""
    return len(text) if text.isascii() else cell_len(text)


def cursor_bindings(prefix: str) -> list[Binding]:
    """The cursor keys of a line view, their ids starting with `prefix` ("vm", "tree")."""
    return [
        Binding("up", "cursor_up", "Up", show=False, id=f"{prefix}-cursor-up"),
        Binding("down", "cursor_down", "Down", show=False, id=f"{prefix}-cursor-down"),
        Binding("pageup", "cursor_page_up", "Page up", show=False, id=f"{prefix}-cursor-page-up"),
        Binding(
            "pagedown", "cursor_page_down", "Page down", show=False, id=f"{prefix}-cursor-page-down"
        ),
        Binding("home", "cursor_home", "First", show=False, id=f"{prefix}-cursor-home"),
        Binding("end", "cursor_end", "Last", show=False, id=f"{prefix}-cursor-end"),
    ]


class WidgetOptions(TypedDict, total=False):
    """What every Textual widget takes: `EstateTree(id="tree")`."""

    name: str | None
    id: str | None
    classes: str | None
    disabled: bool


class LineView(ScrollView, can_focus=True):
    """A scroll view of lines, `HEADER_ROWS` fixed rows on top, one of them the cursor's.

    A subclass says how many lines it has (`_line_count`), how wide they are
    (`_line_width`), where the cursor is (`_cursor_line`) and how to put it elsewhere
    (`_put_cursor`); `_cursor_moved` is told after every move, `_clicked` of every click.
    """

    # Rows painted above the first line and scrolled with it (the table's column titles).
    HEADER_ROWS: ClassVar[int] = 0

    def __init__(self, **options: Unpack[WidgetOptions]) -> None:
        super().__init__(**options)
        # Fixed for the app's life: the terminal's character set is known before it starts.
        self._ascii = ascii_only(self)

    # -- what a subclass provides

    @property
    def cursor_index(self) -> int:
        """The line the cursor is on."""
        return self._cursor_line()

    # Abstract: the tree and the table each define _cursor_line, _line_count and
    # _put_cursor. Not abc.abstractmethod: Textual's message-pump metaclass does not combine
    # with ABCMeta.

    def _cursor_line(self) -> int:
        raise NotImplementedError

    def _line_count(self) -> int:
        raise NotImplementedError

    def _line_width(self) -> int:
        """Cells the widest line takes; 0 when lines are cut to the viewport."""
        return 0

    def _put_cursor(self, index: int) -> None:
        """Put the cursor on line `index` (within range): state only, no repaint."""
        raise NotImplementedError

    def _cursor_moved(self) -> None:
        """After a move of the cursor (or a move onto the line it was on)."""

    def _clicked(self, x: int, y: int, chain: int) -> None:
        """A click `x` cells into a line (scrolled sideways or not) on content row `y`;
        `chain` is 2 for a double click."""

    # -- geometry

    def _page_rows(self) -> int:
        """How many lines the viewport shows: what a page key moves by."""
        return max(1, self.scrollable_content_region.height - self.HEADER_ROWS)

    def _sync_virtual_size(self) -> None:
        size = Size(self._line_width(), self._line_count() + self.HEADER_ROWS)
        if size != self.virtual_size:
            self.virtual_size = size

    def _line_at(self, y: int) -> int | None:
        """The line at content row `y` (as a click reports it); None for a header row or
        below the last line."""
        if y < self.HEADER_ROWS:
            return None
        index = self.scroll_offset.y + y - self.HEADER_ROWS
        return index if index < self._line_count() else None

    def on_click(self, event: events.Click) -> None:
        # As on_mount: a subclass answers in _clicked, not in an on_click of its own.
        offset = event.get_content_offset(self)
        if offset is None:
            return
        event.stop()
        self._clicked(offset.x + self.scroll_offset.x, offset.y, event.chain)

    def on_mount(self) -> None:
        # Textual calls this as well as a subclass's own on_mount (it dispatches along
        # the class hierarchy): a subclass must not call it again.
        self._sync_virtual_size()

    # -- repainting

    def _refresh_lines(self, indexes: Iterable[int]) -> None:
        """Repaint lines `indexes`; those out of view are passed over."""
        top, rows = self.scroll_offset.y, self._page_rows()
        width, header = max(self.virtual_size.width, self.size.width), self.HEADER_ROWS
        regions = [
            Region(0, index + header - top, width, 1)
            for index in indexes
            if top <= index < top + rows
        ]
        if regions:
            self.refresh(*regions)

    def _scroll_to_cursor(self) -> None:
        """Scroll so that the cursor's line is in view, as little as needed."""
        index, rows, top = self.cursor_index, self._page_rows(), self.scroll_offset.y
        # force: right after new lines the scrollbars are not laid out yet, and Textual
        # ignores a scroll it believes has nowhere to go.
        if index < top:
            self.scroll_to(y=index, animate=False, force=True)
        elif index >= top + rows:
            self.scroll_to(y=index - rows + 1, animate=False, force=True)

    # -- the cursor

    def _move_cursor(self, index: int) -> None:
        """Put the cursor on line `index`, clamped to the lines there are, and in view."""
        count = self._line_count()
        if not count:
            return
        index = min(max(index, 0), count - 1)
        old = self.cursor_index
        self._put_cursor(index)
        self._refresh_lines((old, index))
        self._scroll_to_cursor()
        self._cursor_moved()

    def action_cursor_up(self) -> None:
        self._move_cursor(self.cursor_index - 1)

    def action_cursor_down(self) -> None:
        self._move_cursor(self.cursor_index + 1)

    def action_cursor_page_up(self) -> None:
        self._move_cursor(self.cursor_index - self._page_rows())

    def action_cursor_page_down(self) -> None:
        self._move_cursor(self.cursor_index + self._page_rows())

    def action_cursor_home(self) -> None:
        self._move_cursor(0)

    def action_cursor_end(self) -> None:
        self._move_cursor(self._line_count() - 1)
