"""The console's screen: pyte's `Screen` with a bounded scrollback and the guest's answers.

`pyte.HistoryScreen` keeps scrollback by wrapping every event (about 3.5x slower); this
subclass only hooks `index()`: a line that scrolls off the top of a full-screen scroll
region goes into a `deque`. Its cells are first replaced by one shared `Char` per distinct
cell: 10,000 kept lines of distinct `Char` tuples (which Python's collector never stops
watching: they are a tuple subclass) made collections cost a third of the parsing speed;
shared, the kept lines cost next to nothing (measured: 0.51 -> 0.64 MB/s, 0.65 keeping
none).
"""

from __future__ import annotations

import logging
import re
from collections import deque
from collections.abc import Callable, Mapping
from typing import Any
from unicodedata import combining

import pyte
from pyte import modes
from pyte.screens import Char
from wcwidth import wcwidth

log = logging.getLogger(__name__)

_ASCII_CONTROL = re.compile("[\x00-\x1f\x7f]")

# pyte stores DEC private modes shifted left by 5 (modes.py: `mode << 5`).
APP_CURSOR_MODE = 1 << 5  # DECCKM
BRACKETED_PASTE_MODE = 2004 << 5
# One row as the renderer takes it: the cells that differ from blank, keyed by column.
Row = Mapping[int, Char]
# Distinct cells shared by the kept lines, at most (junk in every colour could grow it).
_MAX_CHARS = 65_536
# Attribute sets whose drawn cells are kept for reuse, at most.
_MAX_ATTRS = 1024


class _Cells(dict[str, Char]):
    """The cells drawn in one set of attributes, by character, each made once."""

    def __init__(self, attrs: Char) -> None:
        super().__init__()
        self.attrs = attrs

    def __missing__(self, char: str) -> Char:
        cell = self[char] = self.attrs._replace(data=char)
        return cell


class TerminalScreen(pyte.Screen):
    """A pyte screen that keeps what scrolls off the top and answers the guest's queries.

    `answer` receives the bytes of the replies to device-attribute (`ESC[c`) and
    cursor-position (`ESC[6n`) queries: shells such as busybox's stall without them.
    """

    def __init__(
        self,
        columns: int,
        lines: int,
        *,
        answer: Callable[[bytes], None],
        scrollback: int = 10_000,
    ) -> None:
        self.scrollback: deque[Row] = deque(maxlen=max(0, scrollback))
        self._chars: dict[Char, Char] = {}
        self._cells: dict[Char, _Cells] = {}  # drawn cells by the cursor's attributes
        # Lines ever pushed: with `len(scrollback)`, where the view's top line went when
        # the deque drops its oldest.
        self.scrolled_total = 0
        self._answer = answer
        super().__init__(columns, lines)

    # -- modes the key encoder and the renderer need

    @property
    def app_cursor(self) -> bool:
        """Application cursor keys (DECCKM): arrows send `ESC O x`."""
        return APP_CURSOR_MODE in self.mode

    @property
    def bracketed_paste(self) -> bool:
        """The guest asked for pastes wrapped in `ESC[200~` … `ESC[201~`."""
        return BRACKETED_PASTE_MODE in self.mode

    @property
    def cursor_hidden(self) -> bool:
        """The guest hid the cursor (DECTCEM reset)."""
        return modes.DECTCEM not in self.mode

    @property
    def blank_reverse(self) -> bool:
        """Whole-screen reverse video (DECSCNM): blank cells are drawn reversed."""
        return modes.DECSCNM in self.mode

    # -- pyte's hooks

    def draw(self, data: str) -> None:
        # pyte stops drawing a string at its first character without width (a control
        # character, a zero-width joiner, an emoji's variation selector), losing the rest:
        # what a guest shows would then depend on how its bytes were split into reads.
        if data.isascii():
            if _ASCII_CONTROL.search(data):
                data = _ASCII_CONTROL.sub("", data)
            if data and not self._draw_ascii(data):
                super().draw(data)
            return
        data = "".join(char for char in data if wcwidth(char) > 0 or combining(char))
        if data:
            super().draw(data)

    def _draw_ascii(self, data: str) -> bool:
        """pyte's `draw` of printable ASCII, a run of cells at a time; False when it is not
        that simple (a charset that maps ASCII elsewhere, insert mode, a cursor past the edge).

        pyte builds a new `Char` per character (`attrs._replace`): on a boot log that was
        half the parsing time. Here each distinct (attributes, character) is built once and
        shared (`Char` is immutable), and a line's run is stored with one `dict.update`.
        See docs/latency.md, "Console".
        """
        translated = data.translate(self.g1_charset if self.charset else self.g0_charset)
        cursor, columns = self.cursor, self.columns
        if not translated.isascii() or modes.IRM in self.mode or cursor.x > columns:
            return False
        cells = self._cells.get(cursor.attrs)
        if cells is None:
            if len(self._cells) > _MAX_ATTRS:
                self._cells.clear()
            cells = self._cells[cursor.attrs] = _Cells(cursor.attrs)
        cell = cells.__getitem__
        wrap = modes.DECAWM in self.mode
        at, size = 0, len(translated)
        while at < size:
            if cursor.x == columns:
                if wrap:
                    self.dirty.add(cursor.y)
                    self.carriage_return()
                    self.linefeed()
                else:
                    cursor.x -= 1
            x = cursor.x
            run = translated[at : at + columns - x]
            self.buffer[cursor.y].update(zip(range(x, x + len(run)), map(cell, run), strict=True))
            at += len(run)
            cursor.x = x + len(run)
        self.dirty.add(cursor.y)
        return True

    def index(self) -> None:
        top, bottom = self.margins or (0, self.lines - 1)
        if self.cursor.y == bottom and top == 0 and bottom == self.lines - 1:
            self._keep(0)
        super().index()

    def resize(self, lines: int | None = None, columns: int | None = None) -> None:
        lines = lines or self.lines
        if lines < self.lines:
            # Fewer rows: drop those below the cursor first (usually blank), then move the
            # top ones into the scrollback (pyte would only drop the top ones).
            spare = min(self.lines - 1 - self.cursor.y, self.lines - lines)
            for y in range(self.lines - spare, self.lines):
                self.buffer.pop(y, None)
            self.lines -= spare
            for y in range(self.lines - lines):
                self._keep(y)
            if spare and (lines, columns or self.columns) == (self.lines, self.columns):
                # pyte's resize sees no change: do what it would have done.
                self.dirty.update(range(lines))
                self.set_margins()
                return
        super().resize(lines, columns)

    def erase_in_display(self, how: int = 0, *args: Any, **kwargs: Any) -> None:
        super().erase_in_display(how, *args, **kwargs)
        if how == 3:  # xterm's "clear scrollback" (`clear` sends it)
            self.scrollback.clear()

    def _keep(self, y: int) -> None:
        """Row `y` into the scrollback (it is about to leave the screen)."""
        if self.scrollback.maxlen:
            line = self.buffer.get(y)
            kept: dict[int, Char] = {}
            if line:
                chars = self._chars
                if len(chars) > _MAX_CHARS:
                    chars.clear()  # lines kept so far keep theirs
                same = chars.setdefault
                kept = {x: same(char, char) for x, char in line.items()}
            self.scrollback.append(kept)
        self.scrolled_total += 1

    def write_process_input(self, data: str) -> None:
        self._answer(data.encode())

    def reset(self) -> None:
        super().reset()
        self.scrollback.clear()
        self.scrolled_total = 0

    # -- reading

    def row(self, y: int) -> Row:
        """Row `y` of the live screen (no blank dict is created for an empty row)."""
        line = self.buffer.get(y)
        return line if line is not None else {}

    def kept(self, index: int) -> Row:
        """Line `index` of the scrollback (0: the oldest kept)."""
        return self.scrollback[index]

    def take_dirty(self) -> set[int]:
        """The rows changed since the last call (and forget them)."""
        dirty: set[int] = self.dirty
        self.dirty = set()
        return {y for y in dirty if 0 <= y < self.lines}


class SafeByteStream(pyte.ByteStream):
    """pyte's byte stream that survives what a guest may send.

    pyte raises on a few malformed sequences (a handler called with arguments it does not
    take). Its parser resets itself and re-raises, which would lose the rest of a read:
    here the error is counted and parsing goes on with the next character, so the screen
    is the same however the bytes were split.
    """

    def __init__(self, screen: TerminalScreen) -> None:
        self.errors = 0
        super().__init__(screen)

    def _send_to_parser(self, data: str) -> bool | None:
        # pyte's own, without its re-raise (called for every control character: inlined).
        try:
            return self._parser.send(data)  # type: ignore[union-attr]
        except Exception:
            self.errors += 1
            self._initialize_parser()  # waiting for text again
            return self._taking_plain_text

    def feed(self, data: bytes) -> None:  # type: ignore[override]  # as pyte does
        try:
            super().feed(data)
        except Exception:
            # A fault outside the parser (drawing): skip the rest of this read.
            self.errors += 1
            self._initialize_parser()
            log.debug("console: pyte failed on a read", exc_info=True)
