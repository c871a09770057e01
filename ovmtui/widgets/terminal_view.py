"""The console's terminal: a pyte screen drawn with Textual's Line API, with scrollback.

Bytes from the guest (`feed`) go into a bounded buffer and are parsed on the event loop in
slices of a few milliseconds, so keys stay answered under a flood; the screen is painted
at most ~30 times a second and only its changed rows (plus the cursor's) are refreshed.
Lines that scroll off the top are kept (10,000 by default) and shown above the live
screen: Shift+PgUp/PgDn and the mouse wheel scroll back, `/` searches there, and any
other key returns to the live screen (and goes to the guest, as in xterm).
"""

from __future__ import annotations

import asyncio
import time
from typing import ClassVar

from rich.segment import Segment
from textual import events
from textual.binding import Binding, BindingType
from textual.geometry import Region, Size
from textual.message import Message
from textual.scroll_view import ScrollView
from textual.strip import Strip
from textual.timer import Timer

from ovmtui.widgets._terminal_keys import encode_key, encode_paste
from ovmtui.widgets._terminal_rows import CURRENT_MATCH, MATCH, Mark, RowRenderer, RowTheme
from ovmtui.widgets._terminal_screen import Row, SafeByteStream, TerminalScreen
from ovmtui.widgets._terminal_search import find, row_marks

FRAME_S = 1 / 30  # at most this many repaints a second
# Parsing done between two turns of the event loop. 4 ms, not 8: a key crosses several
# message queues (app, screen, widget), each a loop turn, and under a flood every turn held
# a slice: p99 key 73-105 ms at 8 ms, 64-85 ms at 4 ms, throughput unchanged (parsing is
# ~2.5x raw pyte since the ASCII fast path). See docs/latency.md, "Console".
SLICE_S = 0.004
CHUNK = 4096  # bytes parsed at a time within a slice (~1.5 ms of a boot log)
# Under a second of the screen's throughput (2-4 MB/s; pyte alone ~0.72-0.96): older output
# is dropped beyond this, so the screen never lags the guest by more than that (a flood's
# newest line on screen p99 0.22 s; docs/latency.md, "Console").
PENDING_LIMIT = 768 * 1024
# Keys the widget leaves to bindings: its own (scrollback) and the console screen's.
_NOT_TYPED = frozenset({"shift+pageup", "shift+pagedown", "ctrl+right_square_bracket"})


class TerminalView(ScrollView, can_focus=True):
    """A guest's terminal (serial console): shows what `feed` gives, sends keys as `Typed`."""

    DEFAULT_CSS = """
    TerminalView {
        background: $background;
        color: $foreground;
        overflow: hidden hidden;
        & > .terminal-view--match { background: $warning-muted; }
        & > .terminal-view--current-match { background: $warning; color: $background; }
        & > .terminal-view--prompt { background: $panel; color: $foreground; }
    }
    """
    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "terminal-view--match",
        "terminal-view--current-match",
        "terminal-view--prompt",
    }
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("shift+pageup", "scroll_back", "Scroll back", show=False, id="console-back"),
        Binding(
            "shift+pagedown", "scroll_forward", "Scroll forward", show=False, id="console-forward"
        ),
    ]

    class Typed(Message):
        """Bytes for the guest: keys, pastes, answers to its queries."""

        def __init__(self, data: bytes) -> None:
            super().__init__()
            self.data = data

    class Resized(Message):
        """The pane's new size in cells: the guest should be told."""

        def __init__(self, columns: int, rows: int) -> None:
            super().__init__()
            self.columns = columns
            self.rows = rows

    def __init__(
        self,
        *,
        scrollback: int = 10_000,
        view_only: bool = False,
        name: str | None = None,
        id: str | None = None,
        classes: str | None = None,
    ) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self.view_only = view_only
        self._scrollback = scrollback
        self._screen = TerminalScreen(80, 24, answer=self._answer, scrollback=scrollback)
        self._stream = SafeByteStream(self._screen)
        self._pending = bytearray()
        self._dropped = 0
        self._wake = asyncio.Event()
        self._paint_timer: Timer | None = None
        self._last_paint = 0.0
        self._renderer: RowRenderer | None = None
        # What the view showed at the last paint: scrollback length, the absolute number of
        # its first line, and the cursor's screen row.
        self._length = 0
        self._base = 0
        self._cursor_row = 0
        self._told = False
        # Search: the prompt being typed (None: closed), the query, the current match.
        self._prompt: str | None = None
        self._query = ""
        self._match: tuple[int, int, int] | None = None  # absolute line, start, end

    # -- the public surface

    @property
    def screen_state(self) -> TerminalScreen:
        """The pyte screen (read it, do not feed it: use `feed`)."""
        return self._screen

    @property
    def dropped_bytes(self) -> int:
        """Bytes discarded because the guest sent faster than they could be shown."""
        return self._dropped

    @property
    def columns(self) -> int:
        """Width of the terminal in cells."""
        return int(self._screen.columns)

    @property
    def rows(self) -> int:
        """Height of the terminal in cells."""
        return int(self._screen.lines)

    @property
    def pending_bytes(self) -> int:
        """Bytes received and not parsed yet."""
        return len(self._pending)

    @property
    def is_live(self) -> bool:
        """True when the live screen is shown (not scrolled back)."""
        return self.scroll_offset.y >= self._length

    def feed(self, data: bytes) -> None:
        """Bytes from the guest; parsed and painted later on the event loop."""
        if not data:
            return
        pending = self._pending
        pending += data
        excess = len(pending) - PENDING_LIMIT
        if excess > 0:
            del pending[:excess]
            self._dropped += excess
        self._wake.set()

    def reset(self) -> None:
        """A fresh screen and no scrollback (a re-attach after the guest rebooted)."""
        self._pending.clear()
        self._screen.reset()
        self._stream = SafeByteStream(self._screen)
        self._close_search()
        self._sync_view(force=True)

    # -- lifecycle

    def on_mount(self) -> None:
        self.run_worker(self._drain(), group="terminal-feed", exit_on_error=False)
        self._sync_size()

    def on_resize(self, event: events.Resize) -> None:
        self._sync_size()

    def _sync_size(self) -> None:
        region = self.scrollable_content_region
        columns, rows = region.width, region.height
        if not (columns and rows):
            return
        if self._told and (columns, rows) == (self._screen.columns, self._screen.lines):
            return
        self._told = True  # the first size is told too: the guest may assume another
        self._screen.resize(lines=rows, columns=columns)
        self.post_message(self.Resized(columns, rows))
        self._sync_view(force=True)

    async def _drain(self) -> None:
        """Parse what `feed` gave, a slice at a time, yielding to the loop between slices."""
        pending, clock = self._pending, time.perf_counter
        while True:
            await self._wake.wait()
            self._wake.clear()
            while pending:
                deadline = clock() + SLICE_S
                while pending and clock() < deadline:
                    chunk = bytes(pending[:CHUNK])
                    del pending[:CHUNK]
                    self._stream.feed(chunk)
                self._schedule_paint()
                await asyncio.sleep(0)

    def _answer(self, data: bytes) -> None:
        # The guest's queries are answered even when view-only, or it would stall.
        self.post_message(self.Typed(data))

    # -- painting

    def _schedule_paint(self) -> None:
        if self._paint_timer is not None:
            return
        # Not below a millisecond: Textual's timers divide by their interval.
        delay = max(0.001, self._last_paint + FRAME_S - time.monotonic())
        self._paint_timer = self.set_timer(delay, self._paint, name="terminal-paint")

    def _paint(self) -> None:
        self._paint_timer = None
        self._last_paint = time.monotonic()
        self._sync_view()

    def _sync_view(self, *, force: bool = False) -> None:
        """Bring the view up to the screen: follow the live screen (or keep the scrolled
        back lines in place) and refresh the rows that changed."""
        screen = self._screen
        old_top = self._base + self.scroll_offset.y
        live = self.is_live
        length = len(screen.scrollback)
        self._base = screen.scrolled_total - length
        self._length = length
        size = Size(screen.columns, length + screen.lines)
        if size != self.virtual_size:
            self.virtual_size = size
        target = length if live else max(0, old_top - self._base)
        dirty = screen.take_dirty()
        old_cursor, self._cursor_row = self._cursor_row, screen.cursor.y
        if force or target != self.scroll_offset.y:
            self.scroll_to(y=target, animate=False, force=True, immediate=True)
            self.refresh()
            return
        dirty.update((old_cursor, self._cursor_row))
        top, height = self.scroll_offset.y, self.scrollable_content_region.height
        width = max(self.virtual_size.width, self.size.width)
        regions = [
            Region(0, length + row - top, width, 1)
            for row in dirty
            if 0 <= length + row - top < height
        ]
        if regions:
            self.refresh(*regions)

    def _line(self, index: int) -> Row:
        """Line `index` of the view: scrollback first, then the live screen."""
        if index < self._length:
            return self._screen.kept(index)
        return self._screen.row(index - self._length)

    def _row_theme(self) -> RowTheme:
        base = self.get_visual_style().rich_style
        match = self.get_visual_style("terminal-view--match").rich_style
        current = self.get_visual_style("terminal-view--current-match").rich_style
        assert base.color is not None and base.bgcolor is not None
        return RowTheme(base.color, base.bgcolor, match, current)

    def render_lines(self, crop: Region) -> list[Strip]:
        theme = self._row_theme()
        if self._renderer is None or self._renderer.theme != theme:
            self._renderer = RowRenderer(theme)
        return super().render_lines(crop)

    def render_line(self, y: int) -> Strip:
        renderer = self._renderer
        assert renderer is not None
        screen = self._screen
        width = screen.columns
        top = self.scroll_offset.y
        index = top + y
        if self._prompt is not None and y == self.scrollable_content_region.height - 1:
            return self._prompt_strip(width)
        if index >= self._length + screen.lines:
            return Strip.blank(width, self.rich_style)
        cursor = None
        if (
            index == self._length + screen.cursor.y
            and self.has_focus
            and not screen.cursor_hidden
            and self._prompt is None
        ):
            cursor = min(screen.cursor.x, width - 1)
        strip = renderer.render(
            self._line(index),
            width,
            cursor=cursor,
            blank_reverse=screen.blank_reverse,
            marks=self._marks(index),
        )
        if y == 0 and index < self._length:
            strip = self._with_position(strip, width, index)
        return strip

    def _with_position(self, strip: Strip, width: int, index: int) -> Strip:
        """The top row while scrolled back, with "[line/lines]" at its right, as tmux does."""
        tag = f"[{self._length - index}/{self._length}]"
        if len(tag) >= width:
            return strip
        style = self.get_visual_style("terminal-view--prompt").rich_style
        return Strip([*strip.crop(0, width - len(tag)), Segment(tag, style)], width)

    def _prompt_strip(self, width: int) -> Strip:
        style = self.get_visual_style("terminal-view--prompt").rich_style
        text = f"/{self._prompt}"[-width:]
        return Strip([Segment(text.ljust(width), style)], width)

    # -- keys and pastes

    async def _on_key(self, event: events.Key) -> None:
        # Every key goes to the guest, bar the bindings above and those of the screen:
        # the app's own (non-priority) bindings must not take a console's keys.
        if event.key in _NOT_TYPED:
            return
        event.stop()
        event.prevent_default()
        if self._prompt is not None:
            self._prompt_key(event)
            return
        if not self.is_live:
            if event.key == "slash":
                self._prompt = ""
                self.refresh()
                return
            if self._query and event.key in ("n", "N"):
                self._search(upwards=event.key == "n")
                return
            self.scroll_to_live()
        if self.view_only:
            return
        data = encode_key(event.key, event.character, app_cursor=self._screen.app_cursor)
        if data is not None:
            self.post_message(self.Typed(data))

    def on_paste(self, event: events.Paste) -> None:
        event.stop()
        if self._prompt is not None:
            self._prompt += event.text.replace("\n", " ")
            self.refresh()
            return
        self.scroll_to_live()
        if not self.view_only and event.text:
            data = encode_paste(event.text, bracketed=self._screen.bracketed_paste)
            self.post_message(self.Typed(data))

    def on_focus(self) -> None:
        self._refresh_cursor_row()

    def on_blur(self) -> None:
        self._refresh_cursor_row()

    def _refresh_cursor_row(self) -> None:
        self.refresh_line(self._length + self._screen.cursor.y)

    # -- scrollback

    @property
    def allow_vertical_scroll(self) -> bool:
        # No scrollbar (it would take a column from the guest), but the wheel scrolls.
        return self.max_scroll_y > 0

    def action_scroll_back(self) -> None:
        """Shift+PgUp: a page back into the scrollback."""
        page = max(1, self.scrollable_content_region.height - 1)
        self.scroll_to(y=max(0, self.scroll_offset.y - page), animate=False, force=True)

    def action_scroll_forward(self) -> None:
        """Shift+PgDn: a page forward, down to the live screen."""
        page = max(1, self.scrollable_content_region.height - 1)
        target = min(self._length, self.scroll_offset.y + page)
        self.scroll_to(y=target, animate=False, force=True)
        if target >= self._length:
            self._close_search()

    def scroll_to_live(self) -> None:
        """Back to the live screen (and the search closed)."""
        self._close_search()
        if not self.is_live:
            self.scroll_to(y=self._length, animate=False, force=True, immediate=True)
            self.refresh()

    # -- search

    def _close_search(self) -> None:
        if self._prompt is not None or self._query:
            self._prompt, self._query, self._match = None, "", None
            self.refresh()

    def _prompt_key(self, event: events.Key) -> None:
        assert self._prompt is not None
        if event.key == "escape":
            self._prompt = None
        elif event.key == "enter":
            self._query, self._prompt, self._match = self._prompt, None, None
            if self._query:
                self._search(upwards=True)
        elif event.key == "backspace":
            self._prompt = self._prompt[:-1]
        elif event.character and event.character.isprintable():
            self._prompt += event.character
        self.refresh()

    def _search(self, *, upwards: bool) -> None:
        """Go to the next match of the query above (or below) the current one."""
        after = None
        if self._match is not None:
            start, after = self._match[0] - self._base, self._match[1:]
        else:
            start = self.scroll_offset.y + self.scrollable_content_region.height
        count = self._length + self._screen.lines
        found = find(
            self._line, count, self.columns, self._query, start=start, upwards=upwards, after=after
        )
        if found is None:
            self.app.bell()
            return
        index, first, last = found
        self._match = (self._base + index, first, last)
        height = self.scrollable_content_region.height
        top = self.scroll_offset.y
        if not top <= index < top + height - 1:
            self.scroll_to(y=max(0, index - height // 2), animate=False, force=True, immediate=True)
        self.refresh()

    def _marks(self, index: int) -> tuple[Mark, ...]:
        if not self._query:
            return ()
        spans = row_marks(self._line(index), self.columns, self._query)
        if not spans:
            return ()
        current = self._match
        absolute = self._base + index
        return tuple(
            (first, last, CURRENT_MATCH if current == (absolute, first, last) else MATCH)
            for first, last in spans
        )
