"""The terminal widget in a tiny app: keys, view-only, scrollback, search, resize, floods."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable

from textual import events
from textual.pilot import Pilot

from ovmtui.widgets.terminal_view import PENDING_LIMIT
from tests.widgets.terminal_app import TerminalApp


async def until(pilot: Pilot[None], predicate: Callable[[], bool], limit_s: float = 20.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limit_s
    while not predicate():
        assert loop.time() < deadline, f"timed out waiting for {predicate}"
        await pilot.pause(0.02)


def shown_rows(app: TerminalApp) -> list[str]:
    """What the widget paints, row by row."""
    view = app.view
    return [
        "".join(segment.text for segment in view.render_lines(view.region.reset_offset)[y])
        for y in range(view.size.height)
    ]


async def fed(pilot: Pilot[None], app: TerminalApp, data: bytes) -> None:
    app.view.feed(data)
    await until(pilot, lambda: app.view.pending_bytes == 0)
    await pilot.pause(0.1)  # the next frame


async def test_typing_sends_bytes() -> None:
    app = TerminalApp()
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("l", "s", "space", "minus", "enter", "up", "ctrl+c", "tab", "shift+tab")
        await pilot.press("q")  # the app binds q: the console takes it all the same
        assert app.typed == [
            b"l",
            b"s",
            b" ",
            b"-",
            b"\r",
            b"\x1b[A",
            b"\x03",
            b"\t",
            b"\x1b[Z",
            b"q",
        ]
        assert app.quit_pressed == 0


async def test_application_cursor_mode_changes_arrows() -> None:
    app = TerminalApp()
    async with app.run_test(size=(80, 24)) as pilot:
        await fed(pilot, app, b"\x1b[?1h")
        await pilot.press("up", "home")
        assert app.typed == [b"\x1bOA", b"\x1bOH"]


async def test_ctrl_bracket_is_left_to_the_screen() -> None:
    app = TerminalApp()
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("ctrl+right_square_bracket")
        assert app.left == 1
        assert app.typed == []


async def test_paste_bracketed_when_asked() -> None:
    app = TerminalApp()
    async with app.run_test(size=(80, 24)) as pilot:
        app.view.post_message(events.Paste("a\nb"))
        await until(pilot, lambda: len(app.typed) == 1)
        await fed(pilot, app, b"\x1b[?2004h")
        app.view.post_message(events.Paste("x"))
        await until(pilot, lambda: len(app.typed) == 2)
        assert app.typed == [b"a\rb", b"\x1b[200~x\x1b[201~"]


async def test_view_only_sends_no_keys_but_answers_queries() -> None:
    app = TerminalApp(view_only=True)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("a", "enter", "ctrl+c")
        await fed(pilot, app, b"ab\x1b[6n\x1b[c")
        assert app.typed == [b"\x1b[1;3R", b"\x1b[?6c"]


async def test_screen_shows_what_was_fed() -> None:
    app = TerminalApp()
    async with app.run_test(size=(40, 10)) as pilot:
        await fed(pilot, app, "hello \x1b[1;31mworld\x1b[0m 中文|".encode())
        assert shown_rows(app)[0].startswith("hello world 中文|")


async def test_scrollback_and_back_to_live() -> None:
    app = TerminalApp()
    async with app.run_test(size=(40, 10)) as pilot:
        view = app.view
        await fed(pilot, app, b"".join(b"line %d\r\n" % n for n in range(50)) + b"$ ")
        assert view.is_live
        assert shown_rows(app)[-1].startswith("$")
        await pilot.press("shift+pageup")
        assert not view.is_live
        assert app.typed == []
        rows = shown_rows(app)
        assert rows[0].startswith("line 32")
        assert "[9/41]" in rows[0]  # where the view is, as tmux shows it
        await pilot.press("shift+pageup", "shift+pagedown")
        assert shown_rows(app)[0].startswith("line 32")
        await pilot.press("x")  # any other key: back to live, and it goes to the guest
        assert view.is_live
        assert shown_rows(app)[-1].startswith("$")
        assert app.typed == [b"x"]


async def test_scrolled_back_view_stays_put_as_output_arrives() -> None:
    app = TerminalApp()
    async with app.run_test(size=(40, 10)) as pilot:
        await fed(pilot, app, b"".join(b"line %d\r\n" % n for n in range(50)))
        await pilot.press("shift+pageup")
        before = shown_rows(app)[1]
        await fed(pilot, app, b"".join(b"more %d\r\n" % n for n in range(20)))
        assert shown_rows(app)[1] == before
        assert not app.view.is_live


async def test_mouse_wheel_scrolls_back() -> None:
    app = TerminalApp()
    async with app.run_test(size=(40, 10)) as pilot:
        await fed(pilot, app, b"".join(b"line %d\r\n" % n for n in range(50)))
        view = app.view
        view.post_message(events.MouseScrollUp(view, 5, 5, 0, -1, 0, False, False, False))
        await until(pilot, lambda: not view.is_live)
        view.post_message(events.MouseScrollDown(view, 5, 5, 0, 1, 0, False, False, False))
        await until(pilot, lambda: view.scroll_offset.y == view.max_scroll_y)


async def test_search_in_scrollback() -> None:
    app = TerminalApp()
    async with app.run_test(size=(40, 10)) as pilot:
        view = app.view
        lines = [b"boot %d" % n for n in range(100)]
        lines[20] = b"kernel: Oops needle here"
        lines[10] = b"an older Needle"
        await fed(pilot, app, b"\r\n".join(lines) + b"\r\n")
        await pilot.press("shift+pageup", "slash")
        assert shown_rows(app)[-1].startswith("/")
        await pilot.press(*"needle", "enter")
        rows = shown_rows(app)
        assert any("kernel: Oops needle here" in row for row in rows)
        assert not view.is_live
        await pilot.press("n")  # further up; lower case matches any case
        assert any("an older Needle" in row for row in shown_rows(app))
        await pilot.press("N")  # back down
        assert any("kernel: Oops needle here" in row for row in shown_rows(app))
        assert app.typed == []
        await pilot.press("slash", *"nowhere", "escape")  # Escape closes the prompt
        assert not shown_rows(app)[-1].startswith("/")
        assert app.typed == []


async def test_resize_posts_resized_and_resizes_the_screen() -> None:
    app = TerminalApp()
    async with app.run_test(size=(80, 24)) as pilot:
        await until(pilot, lambda: app.resized != [])
        assert app.resized == [(80, 24)]
        await fed(pilot, app, b"".join(b"%d\r\n" % n for n in range(30)) + b"$ ")
        await pilot.resize_terminal(60, 20)
        await until(pilot, lambda: len(app.resized) == 2)
        assert app.resized[-1] == (60, 20)
        assert (app.view.columns, app.view.rows) == (60, 20)
        assert shown_rows(app)[-1].startswith("$")


async def test_a_flood_of_junk_neither_raises_nor_blocks_keys() -> None:
    app = TerminalApp()
    async with app.run_test(size=(80, 24)) as pilot:
        view = app.view
        rng = random.Random(3)
        junk = bytes(rng.randrange(256) for _ in range(1 << 20))
        view.feed(junk)
        assert view.dropped_bytes == len(junk) - PENDING_LIMIT
        await pilot.press("ctrl+c")
        # The key was answered while most of the flood still waited to be parsed.
        assert app.typed[-1] == b"\x03"
        assert app.pending_when_typed[-1] > PENDING_LIMIT // 2
        await until(pilot, lambda: view.pending_bytes == 0, limit_s=60)
        await fed(pilot, app, b"\x1bc\x1b[2J\x1b[Hstill here")
        assert shown_rows(app)[0].startswith("still here")


async def test_dropped_bytes_count_the_oldest() -> None:
    app = TerminalApp()
    async with app.run_test(size=(80, 24)) as pilot:
        view = app.view
        for _ in range(3):
            view.feed(b"x" * (PENDING_LIMIT // 2))
        assert view.dropped_bytes == PENDING_LIMIT // 2
        assert view.pending_bytes <= PENDING_LIMIT
        await until(pilot, lambda: view.pending_bytes == 0, limit_s=60)


async def test_cursor_only_when_focused_and_shown() -> None:
    app = TerminalApp()
    async with app.run_test(size=(40, 10)) as pilot:
        view = app.view
        await fed(pilot, app, b"ab")

        def cursor_reversed() -> bool:
            strip = view.render_lines(view.region.reset_offset)[0]
            x = 0
            for segment in strip:
                if x <= 2 < x + segment.cell_length:
                    assert segment.style is not None
                    return segment.style.bgcolor != view.rich_style.bgcolor
                x += segment.cell_length
            return False

        assert cursor_reversed()
        await fed(pilot, app, b"\x1b[?25l")
        assert not cursor_reversed()
        await fed(pilot, app, b"\x1b[?25h")
        view.blur()
        await pilot.pause()
        assert not cursor_reversed()


async def test_reset_gives_a_fresh_screen() -> None:
    app = TerminalApp()
    async with app.run_test(size=(40, 10)) as pilot:
        await fed(pilot, app, b"".join(b"line %d\r\n" % n for n in range(50)))
        app.view.reset()
        await pilot.pause()
        assert all(not row.strip() for row in shown_rows(app))
        assert len(app.view.screen_state.scrollback) == 0
