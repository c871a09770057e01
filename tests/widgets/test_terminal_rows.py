"""The row renderer: attributes, colours, wide characters, the cursor, the cache."""

from __future__ import annotations

import pyte
import pytest
from rich.cells import cell_len
from rich.color import Color
from rich.style import Style
from textual.strip import Strip

from ovmtui.widgets._terminal_rows import RowRenderer, RowTheme, parse_colour
from ovmtui.widgets._terminal_screen import SafeByteStream, TerminalScreen

FG = Color.parse("#c0c0c0")
BG = Color.parse("#101010")
THEME = RowTheme(FG, BG)


def screen_of(data: bytes, columns: int = 20, lines: int = 3) -> TerminalScreen:
    screen = TerminalScreen(columns, lines, answer=lambda _: None)
    SafeByteStream(screen).feed(data)
    return screen


def render(data: bytes, *, cursor: int | None = None, width: int = 20) -> Strip:
    screen = screen_of(data, width)
    return RowRenderer(THEME).render(screen.row(0), width, cursor=cursor)


def style_at(strip: Strip, column: int) -> Style:
    """The style of the cell at `column` (segments hold runs of cells)."""
    x = 0
    for segment in strip:
        width = segment.cell_length
        if x <= column < x + width:
            assert segment.style is not None
            return segment.style
        x += width
    raise AssertionError(f"no cell {column}")


def text(strip: Strip) -> str:
    return "".join(segment.text for segment in strip)


@pytest.mark.parametrize(
    ("sgr", "attribute"),
    [
        (b"1", "bold"),
        (b"3", "italic"),
        (b"4", "underline"),
        (b"9", "strike"),
        (b"5", "blink"),
    ],
)
def test_attributes(sgr: bytes, attribute: str) -> None:
    strip = render(b"a\x1b[" + sgr + b"mb\x1b[0mc")
    assert getattr(style_at(strip, 1), attribute) is True
    assert not getattr(style_at(strip, 0), attribute)
    assert not getattr(style_at(strip, 2), attribute)


@pytest.mark.parametrize(
    ("sgr", "colour"),
    [
        (b"31", Color.from_ansi(1)),
        (b"33", Color.from_ansi(3)),  # pyte calls it brown
        (b"37", Color.from_ansi(7)),
        (b"90", Color.from_ansi(8)),
        (b"95", Color.from_ansi(13)),
        (b"97", Color.from_ansi(15)),
        (b"38;5;196", Color.from_rgb(0xFF, 0, 0)),  # 256 colours: pyte gives hex
        (b"38;5;244", Color.from_rgb(0x80, 0x80, 0x80)),
        (b"38;2;1;2;3", Color.from_rgb(1, 2, 3)),
    ],
)
def test_foreground(sgr: bytes, colour: Color) -> None:
    style = style_at(render(b"\x1b[" + sgr + b"mX"), 0)
    assert style.color == colour
    assert style.bgcolor == BG


@pytest.mark.parametrize(
    ("sgr", "colour"),
    [
        (b"44", Color.from_ansi(4)),
        (b"104", Color.from_ansi(12)),
        (b"105", Color.from_ansi(13)),  # pyte 0.8.2 spells it "bfightmagenta"
        (b"48;5;21", Color.from_rgb(0, 0, 0xFF)),
        (b"48;2;250;128;0", Color.from_rgb(250, 128, 0)),
    ],
)
def test_background(sgr: bytes, colour: Color) -> None:
    style = style_at(render(b"\x1b[" + sgr + b"mX"), 0)
    assert style.bgcolor == colour
    assert style.color == FG


def test_default_colours_come_from_the_theme() -> None:
    style = style_at(render(b"X"), 0)
    assert (style.color, style.bgcolor) == (FG, BG)
    assert style_at(render(b"X"), 10).bgcolor == BG  # blank cells too


def test_reverse_swaps_colours() -> None:
    strip = render(b"\x1b[7mR\x1b[27m\x1b[31;7mr")
    assert (style_at(strip, 0).color, style_at(strip, 0).bgcolor) == (BG, FG)
    assert (style_at(strip, 1).color, style_at(strip, 1).bgcolor) == (BG, Color.from_ansi(1))


def test_screen_wide_reverse_video() -> None:
    screen = screen_of(b"\x1b[?5h")
    strip = RowRenderer(THEME).render(screen.row(1), 20, blank_reverse=screen.blank_reverse)
    assert style_at(strip, 5).bgcolor == FG


def test_cursor_cell_is_reversed_only_when_asked() -> None:
    plain = render(b"abc")
    with_cursor = render(b"abc", cursor=1)
    assert style_at(plain, 1).bgcolor == BG
    assert (style_at(with_cursor, 1).color, style_at(with_cursor, 1).bgcolor) == (BG, FG)
    assert style_at(with_cursor, 0).bgcolor == BG
    assert text(with_cursor) == text(plain)
    # On a reversed cell the cursor shows as plain.
    assert style_at(render(b"\x1b[7mabc", cursor=1), 1).bgcolor == BG


@pytest.mark.parametrize(
    "data",
    ["中文ab", "a😀b", "ｱｲ", "x中"],
)
def test_wide_characters_keep_following_columns(data: str) -> None:
    strip = render(data.encode() + b"|end")
    assert strip.cell_length == 20
    drawn = text(strip)
    bar = drawn.index("|")
    # The bar is drawn in the column pyte put it in, whatever came before it.
    screen = screen_of(data.encode() + b"|end")
    column = next(x for x in range(20) if screen.buffer[0][x].data == "|")
    assert cell_len(drawn[:bar]) == column


def test_wide_character_overwritten_half_keeps_columns() -> None:
    # "中" takes columns 0-1; writing "a" over column 0 leaves its stub in column 1.
    strip = render("中|".encode() + b"\rA")
    assert text(strip).startswith("A |")
    assert strip.cell_length == 20


def test_wide_character_at_right_edge_is_cut() -> None:
    screen = screen_of("abc中".encode(), columns=4)
    strip = RowRenderer(THEME).render(screen.row(0), 4)
    assert strip.cell_length == 4


def test_row_is_cut_and_padded_to_width() -> None:
    screen = screen_of(b"0123456789", columns=10)
    assert text(RowRenderer(THEME).render(screen.row(0), 4)) == "0123"
    assert text(RowRenderer(THEME).render(screen.row(0), 12)) == "0123456789  "


def test_cache_returns_the_same_strip_for_the_same_content() -> None:
    renderer = RowRenderer(THEME)
    one = screen_of(b"same line\r\nother")
    two = screen_of(b"same line")
    first = renderer.render(one.row(0), 20)
    assert renderer.render(two.row(0), 20) is first
    assert renderer.renders == 1
    renderer.render(one.row(1), 20)
    assert renderer.renders == 2
    # The cursor column and the width are part of the content.
    assert renderer.render(one.row(0), 20, cursor=3) is not first
    assert renderer.render(one.row(0), 19) is not first
    assert renderer.renders == 4


def test_a_scrolling_log_renders_one_new_row_per_line() -> None:
    screen = TerminalScreen(40, 10, answer=lambda _: None)
    stream = SafeByteStream(screen)
    renderer = RowRenderer(THEME)
    for number in range(30):
        stream.feed(b"[ %3d.000] line %d\r\n" % (number, number))
        before = renderer.renders
        for y in range(screen.lines):
            renderer.render(screen.row(y), 40)
        if number >= 10:
            assert renderer.renders - before == 1, number


def test_cache_is_bounded() -> None:
    renderer = RowRenderer(THEME, cache_size=8)
    for number in range(20):
        renderer.render(screen_of(b"%d" % number).row(0), 20)
    first = renderer.render(screen_of(b"19").row(0), 20)
    assert renderer.renders == 20
    renderer.render(screen_of(b"0").row(0), 20)
    assert renderer.renders == 21  # long gone from the cache
    assert renderer.render(screen_of(b"19").row(0), 20) is first


def test_match_marks() -> None:
    renderer = RowRenderer(THEME)
    strip = renderer.render(screen_of(b"find me").row(0), 20, marks=((5, 7, "match"),))
    assert style_at(strip, 5).reverse is True
    assert not style_at(strip, 4).reverse


@pytest.mark.parametrize(
    ("name", "colour"),
    [
        ("default", None),
        ("red", Color.from_ansi(1)),
        ("brightwhite", Color.from_ansi(15)),
        ("ff8000", Color.from_rgb(255, 128, 0)),
        ("zzzzzz", None),
        ("", None),
    ],
)
def test_parse_colour(name: str, colour: Color | None) -> None:
    assert parse_colour(name) == colour


def test_pyte_char_defaults_match_blank() -> None:
    # The renderer's blank is pyte's: a row with no cells renders as one with spaces.
    renderer = RowRenderer(THEME)
    empty = renderer.render({}, 20)
    assert text(empty) == " " * 20
    spaces = {x: pyte.screens.Char(" ") for x in range(20)}
    assert style_at(renderer.render(spaces, 20), 0) == style_at(empty, 0)
