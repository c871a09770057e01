"""The estate tree's lines without the widget: what each stands for, its glyphs, and how
its label is cut to fit a width."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from rich.cells import get_character_cell_size
from textual.strip import Strip

from ovmtui.model import HostKey
from ovmtui.widgets._line_view import cells
from ovmtui.widgets.state_style import HostState


@dataclass(frozen=True, slots=True)
class Scope:
    """What a tree line stands for: the estate, a pool or one host."""

    pool: str | None = None
    host: str | None = None

    @property
    def host_key(self) -> HostKey | None:
        if self.pool is None or self.host is None:
            return None
        return HostKey(self.pool, self.host)


# A name cut shorter than this says nothing: cut the end of the line instead.
_MIN_NAME_CELLS: Final = 4


@dataclass(frozen=True, slots=True)
class Glyphs:
    expanded: str
    collapsed: str
    branch: str
    last_branch: str
    stem: str
    up: str
    unknown: str
    down: str
    dot: str
    more: str

    def host(self, state: HostState) -> str:
        """The glyph before a host's name."""
        if state is HostState.UP:
            return self.up
        return self.down if state is HostState.DOWN else self.unknown


UNICODE: Final = Glyphs("▼ ", "▶ ", "├ ", "└ ", "│ ", "●", "◌", "✖", "·", "…")
# For a terminal whose locale cannot show the above (LANG=C): see ovmtui.terminal.
ASCII: Final = Glyphs("v ", "> ", "|-", "`-", "| ", "*", "o", "x", "-", "~")

Part = tuple[str, str]  # text, component class


def _cut(text: str, room: int) -> str:
    """The head of `text` that fits `room` cells; a wide character that would straddle the
    edge is left out (Rich's set_cell_size would put a space in its place)."""
    if text.isascii():
        return text[:room]
    used = 0
    for end, char in enumerate(text):
        used += get_character_cell_size(char)
        if used > room:
            return text[:end]
    return text


def fit(
    parts: Sequence[Part],
    shrink: int,
    room: int,
    more: str = "…",
    *,
    optional: int | None = None,
) -> list[Part]:
    """`parts` within `room` cells, `more` (one cell) marking a cut.

    The part at `optional` (a note after the counts, the last part) is cut first, then
    left out; then the part at `shrink` (the name) gives way, so that counts and states
    stay in sight; when it cannot give enough, the line is cut at its end.
    """
    widths = [cells(text) for text, _ in parts]
    over = sum(widths) - room
    if over <= 0:
        return list(parts)
    if optional is not None:
        text, style = parts[optional]
        keep = widths[optional] - over - 1
        if keep >= _MIN_NAME_CELLS:
            fitted = list(parts)
            fitted[optional] = (_cut(text, keep) + more, style)
            return fitted
        rest = [part for index, part in enumerate(parts) if index != optional]
        return fit(rest, shrink, room, more)
    if room <= 0:
        return []
    name, style = parts[shrink]
    keep = widths[shrink] - over - 1
    if keep >= _MIN_NAME_CELLS - 1:
        fitted = list(parts)
        fitted[shrink] = (_cut(name, keep) + more, style)
        return fitted
    fitted, left = [], room - 1
    for (text, style), width in zip(parts, widths, strict=True):
        if width > left:
            if left:
                fitted.append((_cut(text, left), style))
            fitted.append((more, style))
            break
        fitted.append((text, style))
        left -= width
    return fitted


class Line:
    """The estate, a pool or a host: its label, place and painted strips."""

    __slots__ = (
        "cursor_strip",
        "epoch",
        "expanded",
        "guides",
        "icon",
        "index",
        "parts",
        "scope",
        "shrink",
        "signature",
        "strip",
    )

    def __init__(self, scope: Scope, parts: tuple[Part, ...], shrink: int) -> None:
        self.scope = scope
        self.parts = parts
        self.shrink = shrink
        self.signature: object = None
        self.guides = ""
        self.icon = ""
        self.expanded = True
        self.index = -1  # -1: not shown (its pool is collapsed, or it has gone)
        self.strip: Strip | None = None
        self.cursor_strip: Strip | None = None
        self.epoch = -1

    @property
    def text(self) -> str:
        return "".join(text for text, _ in self.parts)

    def relabel(self, parts: tuple[Part, ...]) -> None:
        self.parts = parts
        self.strip = self.cursor_strip = None

    def place(self, index: int, guides: str, icon: str) -> None:
        self.index = index
        if (guides, icon) != (self.guides, self.icon):
            self.guides, self.icon = guides, icon
            self.strip = self.cursor_strip = None
