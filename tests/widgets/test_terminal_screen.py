"""The console's pyte screen: query answers, modes, scrollback, and junk in any split."""

from __future__ import annotations

import random
from itertools import pairwise

from hypothesis import given, settings
from hypothesis import strategies as st
from pyte.screens import Char

from ovmtui.widgets._terminal_screen import SafeByteStream, TerminalScreen


def fed(data: bytes, columns: int = 20, lines: int = 5, **kw: int) -> TerminalScreen:
    screen = TerminalScreen(columns, lines, answer=lambda _: None, **kw)
    SafeByteStream(screen).feed(data)
    return screen


def texts(screen: TerminalScreen) -> list[str]:
    """Each row's cells (not pyte's `display`, which raises on an orphaned wide stub)."""
    return [
        "".join(
            screen.row(y).get(x, " ")[0] if x in screen.row(y) else " "
            for x in range(screen.columns)
        )
        for y in range(screen.lines)
    ]


def answers(data: bytes) -> list[bytes]:
    got: list[bytes] = []
    screen = TerminalScreen(80, 24, answer=got.append)
    SafeByteStream(screen).feed(data)
    return got


def test_device_attributes_are_answered() -> None:
    assert answers(b"\x1b[c") == [b"\x1b[?6c"]
    assert answers(b"\x1b[0c") == [b"\x1b[?6c"]


def test_cursor_position_is_answered() -> None:
    assert answers(b"\x1b[6n") == [b"\x1b[1;1R"]
    assert answers(b"\r\n\r\nab\x1b[6n") == [b"\x1b[3;3R"]
    assert answers(b"\x1b[10;40H\x1b[6n") == [b"\x1b[10;40R"]
    assert answers(b"\x1b[5n") == [b"\x1b[0n"]


def test_query_split_across_reads_is_answered_once() -> None:
    got: list[bytes] = []
    stream = SafeByteStream(TerminalScreen(80, 24, answer=got.append))
    for byte in b"$ \x1b[6n":
        stream.feed(bytes([byte]))
    assert got == [b"\x1b[1;3R"]


def test_modes() -> None:
    screen = fed(b"")
    assert not screen.app_cursor and not screen.bracketed_paste and not screen.cursor_hidden
    SafeByteStream(screen).feed(b"\x1b[?1h\x1b[?2004h\x1b[?25l")
    assert screen.app_cursor and screen.bracketed_paste and screen.cursor_hidden
    SafeByteStream(screen).feed(b"\x1b[?1l\x1b[?2004l\x1b[?25h")
    assert not screen.app_cursor and not screen.bracketed_paste and not screen.cursor_hidden


def test_scrollback_keeps_lines_that_scroll_off() -> None:
    screen = fed(b"".join(b"line %d\r\n" % n for n in range(12)))
    assert len(screen.scrollback) == 8
    assert screen.scrolled_total == 8
    assert "".join(c.data for c in screen.scrollback[0].values()) == "line 0"
    assert "".join(c.data for c in screen.scrollback[-1].values()) == "line 7"
    assert texts(screen)[0].rstrip() == "line 8"


def test_scrollback_is_bounded() -> None:
    screen = fed(b"".join(b"%d\r\n" % n for n in range(100)), scrollback=10)
    assert len(screen.scrollback) == 10
    assert screen.scrolled_total == 96
    assert "".join(c.data for c in screen.scrollback[0].values()) == "86"


def test_a_scroll_region_does_not_feed_the_scrollback() -> None:
    # A full-screen program scrolling its own region (vi, less) leaves the scrollback alone.
    screen = fed(b"\x1b[2;4r\x1b[4;1H" + b"x\r\n" * 10)
    assert len(screen.scrollback) == 0


def test_clear_scrollback() -> None:
    screen = fed(b"\r\n" * 20 + b"\x1b[3J")
    assert len(screen.scrollback) == 0


def test_shrinking_drops_blank_rows_below_the_cursor_first() -> None:
    screen = fed(b"$ prompt")
    screen.resize(lines=3, columns=20)
    assert texts(screen)[0].startswith("$ prompt")
    assert len(screen.scrollback) == 0
    full = fed(b"".join(b"%d\r\n" % n for n in range(4)) + b"$ ")
    full.resize(lines=2, columns=20)
    assert [t.rstrip() for t in texts(full)] == ["3", "$"]
    assert ["".join(c.data for c in line.values()) for line in full.scrollback] == ["0", "1", "2"]


def test_reset_forgets_everything() -> None:
    screen = fed(b"\r\n" * 20 + b"text")
    screen.reset()
    assert len(screen.scrollback) == 0 and screen.scrolled_total == 0
    assert all(not t.strip() for t in texts(screen))


def test_malformed_sequences_do_not_raise() -> None:
    # pyte 0.8.2 calls a handler with an argument it does not take here (and raises).
    screen = fed(b"\x1b[?Pafter")
    assert "after" in texts(screen)[0]
    stream = SafeByteStream(TerminalScreen(20, 5, answer=lambda _: None))
    stream.feed(b"\x1b[?P")
    assert stream.errors >= 1


def test_characters_without_width_do_not_hide_the_rest() -> None:
    # pyte alone draws nothing after \x01 or U+FE0F in one read.
    screen = fed("a\x01b ❤\ufe0f c\u200dd".encode())
    assert texts(screen)[0].rstrip() == "ab ❤ cd"


def test_a_megabyte_line_of_junk() -> None:
    rng = random.Random(7)
    junk = bytes(rng.randrange(256) for _ in range(1 << 20))
    screen = TerminalScreen(80, 24, answer=lambda _: None)
    stream = SafeByteStream(screen)
    for at in range(0, len(junk), 4096):
        stream.feed(junk[at : at + 4096])
    stream.feed(b"\x1b[0m\x1bc\x1b[2J\x1b[Hok")  # a reset and clear bring it back
    assert texts(screen)[0].startswith("ok")


TERMINAL_BYTES = st.lists(
    st.one_of(
        st.binary(max_size=20),
        st.sampled_from(
            [
                b"\x1b[",
                b"\x1b]",
                b"\x1b[?",
                b";",
                b"1",
                b"38;5;",
                b"m",
                b"H",
                b"J",
                b"K",
                b"\r\n",
                b"\x1b[6n",
                b"\x1b(0",
                b"\x1b#8",
                "中".encode(),
                "😀".encode(),
                b"\xe4",
                b"\xb8",
                b"\x9b",
                b"\x1b[2;4r",
                b"\x1b[?1049h",
                b"\x07",
            ]
        ),
    ),
    max_size=40,
).map(b"".join)


@settings(max_examples=300, deadline=None)
@given(data=TERMINAL_BYTES, cuts=st.lists(st.integers(min_value=0, max_value=2000), max_size=8))
def test_any_split_gives_the_same_screen(data: bytes, cuts: list[int]) -> None:
    whole = TerminalScreen(12, 4, answer=lambda _: None)
    SafeByteStream(whole).feed(data)
    split = TerminalScreen(12, 4, answer=lambda _: None)
    stream = SafeByteStream(split)
    points = sorted({0, len(data), *(cut % (len(data) + 1) for cut in cuts)})
    for start, end in pairwise(points):
        stream.feed(data[start:end])
    # What is shown: pyte sometimes stores a blank cell where it stores nothing otherwise.
    assert shown(split) == shown(whole)
    assert (split.cursor.x, split.cursor.y) == (whole.cursor.x, whole.cursor.y)


BLANK = Char(" ")


def shown(screen: TerminalScreen) -> list[list[Char]]:
    lines = [*screen.scrollback, *(screen.row(y) for y in range(screen.lines))]
    return [[line.get(x, BLANK) for x in range(screen.columns)] for line in lines]


# Printable ASCII and what changes how pyte draws it: insert mode, autowrap off, the DEC
# line-drawing charset (ASCII drawn as box characters, outside UTF-8 mode), colours, scroll
# regions.
ASCII_DRAWING = st.lists(
    st.one_of(
        st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=30).map(
            str.encode
        ),
        st.sampled_from(
            [
                b"\x1b[4h",
                b"\x1b[4l",
                b"\x1b[?7l",
                b"\x1b[?7h",
                b"\x1b(0",
                b"\x1b(B",
                b"\x0e",
                b"\x0f",
                b"\x1b)0",
                b"\x1b[1;31m",
                b"\x1b[7m",
                b"\x1b[0m",
                b"\r\n",
                b"\r",
                b"\t",
                b"\x1b[3;9H",
                b"\x1b[2;3r",
                b"\x1b[r",
                b"\x1b[12C",
                b"\x1b[?20h",
                b"\x1b%@",  # out of UTF-8: the charsets (SO/SI, ESC ( 0) take effect
                b"\x1b%G",
            ]
        ),
    ),
    max_size=40,
).map(b"".join)


@settings(max_examples=300, deadline=None)
@given(data=ASCII_DRAWING)
def test_ascii_is_drawn_cell_for_cell_as_pyte_draws_it(data: bytes) -> None:
    # The screen draws printable ASCII its own (faster) way; pyte's Screen is the reference.
    import pyte

    reference = pyte.Screen(12, 4)
    pyte.ByteStream(reference).feed(data)
    screen = fed(data, 12, 4)
    assert [dict(screen.row(y)) for y in range(4)] == [dict(reference.buffer[y]) for y in range(4)]
    assert (screen.cursor.x, screen.cursor.y) == (reference.cursor.x, reference.cursor.y)
    assert screen.dirty >= reference.dirty


def test_drawn_cells_are_shared_and_the_scrollback_keeps_them() -> None:
    screen = fed(b"\x1b[32maaaa\r\nbbbb\r\n" * 4, 4, 2)
    (first, second) = (screen.kept(0), screen.kept(2))
    assert first[0] is first[3] is second[0]  # one Char for every green "a"
    assert first[0] == Char("a", fg="green")
    assert "".join(c.data for c in screen.kept(1).values()) == "bbbb"
