"""Search in the console's lines (scrollback and screen), pure.

A query in lower case matches any case ("smart case", as in less and vim); a query with a
capital matches exactly. Matches are spans of columns, so that a wide character (two
columns) before a match does not shift its highlight.
"""

from __future__ import annotations

from collections.abc import Callable

from ovmtui.widgets._terminal_screen import Row

_BLANK = " "


def row_text(row: Row, width: int) -> tuple[str, list[int]]:
    """The text of `row` and, for each of its characters, the column it starts at."""
    chars: list[str] = []
    columns: list[int] = []
    get = row.get
    for x in range(width):
        cell = get(x)
        data = cell[0] if cell is not None else _BLANK
        if not data:
            continue  # the second half of a wide character
        chars.append(data[0])
        columns.append(x)
    columns.append(width)
    return "".join(chars), columns


def _fold(text: str, query: str) -> tuple[str, str]:
    return (text, query) if any(c.isupper() for c in query) else (text.lower(), query.lower())


def row_marks(row: Row, width: int, query: str) -> list[tuple[int, int]]:
    """Every match of `query` in `row`, as column spans [start, end)."""
    if not query:
        return []
    text, columns = row_text(row, width)
    haystack, needle = _fold(text, query)
    spans = []
    at = haystack.find(needle)
    while at >= 0:
        spans.append((columns[at], columns[at + len(needle)]))
        at = haystack.find(needle, at + len(needle))
    return spans


def find(
    line: Callable[[int], Row],
    count: int,
    width: int,
    query: str,
    *,
    start: int,
    upwards: bool,
    after: tuple[int, int] | None = None,
) -> tuple[int, int, int] | None:
    """The first match of `query` in lines `line(0)`…`line(count - 1)` going up from the
    line above `start` (or down from the one below): (line, start column, end column).
    `after`: a match on line `start` (its columns) that the search goes on from."""
    step = -1 if upwards else 1
    if after is not None and 0 <= start < count:
        spans = row_marks(line(start), width, query)
        if upwards:
            before = [span for span in spans if span[0] < after[0]]
            if before:
                return (start, *before[-1])
        else:
            later = [span for span in spans if span[0] > after[0]]
            if later:
                return (start, *later[0])
    index = start + step
    while 0 <= index < count:
        spans = row_marks(line(index), width, query)
        if spans:
            first, last = spans[-1] if upwards else spans[0]
            return index, first, last
        index += step
    return None
