"""One console row (pyte `Char`s by column) to a Textual `Strip`, cached by its content.

A scrolling boot log moves every row of the screen up each line, but their contents stay
the same: rows are cached by what they hold (cells, width, cursor column, marks), so each
new line costs one new render and the others are cache hits.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from rich.cells import cell_len
from rich.color import Color
from rich.segment import Segment
from rich.style import Style
from textual.strip import Strip
from wcwidth import wcwidth

from ovmtui.widgets._terminal_screen import Row

# pyte's colour names (graphics.py): "brown" is yellow; "bfightmagenta" is pyte 0.8.2's
# spelling of bright magenta as a background (BG_AIXTERM[105]).
_ANSI: dict[str, int] = {
    name: index
    for index, name in enumerate(("black", "red", "green", "brown", "blue", "magenta", "cyan"))
}
_ANSI["white"] = 7
_ANSI.update({f"bright{name}": index + 8 for name, index in list(_ANSI.items())})
_ANSI.update({"yellow": 3, "brightyellow": 11, "bfightmagenta": 13})

CURSOR = "cursor"
MATCH = "match"
CURRENT_MATCH = "current-match"
# A mark over columns [start, end): how search matches are drawn.
Mark = tuple[int, int, str]


_MATCH = Style(reverse=True)
_CURRENT_MATCH = Style(reverse=True, bold=True, underline=True)


@dataclass(frozen=True)
class RowTheme:
    """The colours a row takes from the widget's theme (its CSS)."""

    foreground: Color
    background: Color
    match: Style = _MATCH
    current_match: Style = _CURRENT_MATCH


def parse_colour(name: str) -> Color | None:
    """pyte's colour (a name, or six hex digits for 256 and true colours); None: default."""
    index = _ANSI.get(name)
    if index is not None:
        return Color.from_ansi(index)
    if len(name) == 6:
        try:
            return Color.from_rgb(int(name[0:2], 16), int(name[2:4], 16), int(name[4:6], 16))
        except ValueError:
            return None
    return None


class _Blank:
    """The blank cell: what pyte's rows hold where nothing was written."""

    PLAIN: tuple[Any, ...] = (" ", "default", "default", False, False, False, False, False, False)
    REVERSE: tuple[Any, ...] = (" ", "default", "default", False, False, False, False, True, False)


class RowRenderer:
    """Renders rows to Strips in `theme`'s colours, remembering the last `cache_size`."""

    def __init__(self, theme: RowTheme, *, cache_size: int = 4096) -> None:
        self.theme = theme
        self.cache_size = cache_size
        self.renders = 0  # rows actually rendered (cache misses): for tests and the bench
        self._cache: OrderedDict[tuple[Any, ...], Strip] = OrderedDict()
        self._styles: dict[tuple[Any, ...], Style] = {}

    def render(
        self,
        row: Row,
        width: int,
        *,
        cursor: int | None = None,
        blank_reverse: bool = False,
        marks: tuple[Mark, ...] = (),
    ) -> Strip:
        """Row `row` cut or padded to `width` cells; the cell at column `cursor` reversed."""
        # Columns and cells as two tuples, not `row.items()`: no pair tuple made per cell,
        # on every lookup, hit or miss (cold frame of a full top screen ~20 % faster,
        # interleaved; docs/latency.md, "Console").
        key = (tuple(row), tuple(row.values()), width, cursor, blank_reverse, marks)
        cache = self._cache
        strip = cache.get(key)
        if strip is not None:
            cache.move_to_end(key)
            return strip
        strip = cache[key] = self._render(row, width, cursor, blank_reverse, marks)
        if len(cache) > self.cache_size:
            cache.popitem(last=False)
        return strip

    def _render(
        self,
        row: Row,
        width: int,
        cursor: int | None,
        blank_reverse: bool,
        marks: tuple[Mark, ...],
    ) -> Strip:
        self.renders += 1
        blank = _Blank.REVERSE if blank_reverse else _Blank.PLAIN
        extras = _extras(width, cursor, marks)
        segments: list[Segment] = []
        run: list[str] = []
        run_key: tuple[Any, ...] | None = None
        get = row.get
        # Rows are sparse: past their last cell (and the cursor, and any mark) all is blank.
        end = min(width, max(row, default=-1) + 2)
        if extras:
            end = width
        x = 0
        while x < end:
            char = get(x, blank)
            data = char[0]
            if data.isascii():
                # "" is the stub of a wide character that was overwritten since: a blank.
                text, span = (data or " "), 1
            else:
                text, span = _cell_text(data, x, width)
            key = (*char[1:], extras[x]) if extras else char[1:]
            if key != run_key:
                if run:
                    segments.append(Segment("".join(run), self._style(run_key)))
                    run = []
                run_key = key
            run.append(text)
            x += span
        if x < width:
            if blank[1:] != run_key:
                if run:
                    segments.append(Segment("".join(run), self._style(run_key)))
                    run = []
                run_key = blank[1:]
            run.append(" " * (width - x))
        if run:
            segments.append(Segment("".join(run), self._style(run_key)))
        return Strip(segments, width)

    def _style(self, key: tuple[Any, ...] | None) -> Style:
        assert key is not None
        style = self._styles.get(key)
        if style is None:
            style = self._styles[key] = self._make_style(key)
        return style

    def _make_style(self, key: tuple[Any, ...]) -> Style:
        fg, bg, bold, italics, underscore, strike, reverse, blink = key[:8]
        extra = key[8] if len(key) > 8 else None
        theme = self.theme
        colour = parse_colour(fg) or theme.foreground
        background = parse_colour(bg) or theme.background
        if reverse != (extra == CURSOR):
            colour, background = background, colour
        style = Style(
            color=colour,
            bgcolor=background,
            bold=bold,
            italic=italics,
            underline=underscore,
            strike=strike,
            blink=blink,
        )
        if extra == MATCH:
            style += theme.match
        elif extra == CURRENT_MATCH:
            style += theme.current_match
        return style


def _extras(width: int, cursor: int | None, marks: Iterable[Mark]) -> list[str | None]:
    """Per column, what is drawn over the cell (the cursor, a match); [] when nothing."""
    if cursor is None and not marks:
        return []
    extras: list[str | None] = [None] * (width + 1)
    for start, end, kind in marks:
        for x in range(max(0, start), min(end, width)):
            extras[x] = kind
    if cursor is not None and 0 <= cursor < width:
        extras[cursor] = CURSOR
    return extras


def _cell_text(data: str, x: int, width: int) -> tuple[str, int]:
    """What cell `x` (not ASCII) shows and how many cells that takes: 2 for a wide
    character (pyte leaves "" in the cell after it); the columns that follow keep theirs."""
    if wcwidth(data[0]) == 2:
        if x + 1 >= width:
            return " ", 1  # cut at the right edge: half a character cannot be drawn
        drawn = cell_len(data)
        return (data if drawn == 2 else _fit(data, drawn, 2)), 2
    drawn = cell_len(data)
    return (data if drawn == 1 else _fit(data, drawn, 1)), 1


def _fit(data: str, drawn: int, cells: int) -> str:
    """`data` made to take `cells` cells where pyte's width table and Rich's disagree."""
    if drawn < cells:
        return data + " " * (cells - drawn)
    return "?" * cells
