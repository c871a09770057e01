"""A locale that cannot show UTF-8 (LANG=C): every character on screen is ASCII."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from textual.scrollbar import ScrollBar

from ovmtui.app import OvmApp
from ovmtui.screens.dialogs import ConfirmDialog
from ovmtui.terminal import use_ascii
from tests.ui.conftest import loaded, make_app, wait_until
from tests.ui.screen_text import screen_lines


@pytest.fixture
def ascii_app() -> Iterator[OvmApp]:
    renderer = ScrollBar.renderer
    app = make_app()
    use_ascii(app)
    yield app
    ScrollBar.renderer = renderer  # class-wide: the next test draws in Unicode again


def not_ascii(app: OvmApp) -> str:
    """The lines of the screen that hold anything outside ASCII, with those characters."""
    bad = []
    for line in screen_lines(app):
        outside = sorted({c for c in line if not c.isascii()})
        if outside:
            bad.append(f"{''.join(outside)!r} in {line!r}")
    return "\n".join(bad)


@pytest.mark.parametrize("size", [(140, 40), (80, 24), (40, 12)])
async def test_dashboard_dialog_and_notices_are_ascii(
    ascii_app: OvmApp, size: tuple[int, int]
) -> None:
    app = ascii_app
    async with app.run_test(size=size, notifications=True) as pilot:
        await loaded(pilot, app)
        await pilot.pause(0.2)
        assert not_ascii(app) == ""
        await pilot.press("slash", *"db01")  # the filter box and its border
        await pilot.pause(0.1)
        assert not_ascii(app) == ""
        await pilot.press("enter", "home", "p")  # a pause: its notice pops up
        await wait_until(pilot, lambda: "Pause: running" in "\n".join(screen_lines(app)))
        assert not_ascii(app) == ""
        await pilot.press("K")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmDialog))
        await pilot.pause(0.2)
        assert not_ascii(app) == ""
        assert "Force off [y]" in "\n".join(screen_lines(app))


async def test_unicode_is_kept_where_the_terminal_shows_it() -> None:
    app = make_app()
    async with app.run_test(size=(140, 40)) as pilot:
        await loaded(pilot, app)
        await pilot.pause(0.1)
        shown = "\n".join(screen_lines(app))
        assert "▼ Estate" in shown and "Name ▲" in shown


@pytest.mark.parametrize("key", ["question_mark", "E"])
async def test_key_panel_and_notices_with_an_ellipsis_are_ascii(
    ascii_app: OvmApp, key: str
) -> None:
    # "?" opens the key panel (arrow keys, a side border); "E" says "Exporting…".
    app = ascii_app
    async with app.run_test(size=(100, 30), notifications=True) as pilot:
        await loaded(pilot, app)
        await pilot.press(key)
        await pilot.pause(0.5)
        assert not_ascii(app) == ""


async def test_command_palette_is_ascii(ascii_app: OvmApp) -> None:
    app = ascii_app
    async with app.run_test(size=(100, 30)) as pilot:
        await loaded(pilot, app)
        await pilot.press("ctrl+p")
        await wait_until(pilot, lambda: "Search for commands" in "\n".join(screen_lines(app)))
        await pilot.pause(0.2)
        assert not_ascii(app) == ""
        await pilot.press(*"pause db")  # the list of matches, with its help lines
        await pilot.pause(0.5)
        assert "Pause db01" in "\n".join(screen_lines(app))
        assert not_ascii(app) == ""
