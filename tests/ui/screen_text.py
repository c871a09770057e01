"""What a terminal would show: the app's composed screen as lines of text."""

from __future__ import annotations

from textual.app import App


def screen_lines(app: App[object]) -> list[str]:
    """Every row of the screen as drawn, modal dialogs and the screens under them included.

    Reads the compositor (private to Textual), as nothing public gives the characters of
    the whole screen; what Pilot sees here is what the driver would write.
    """
    return [strip.text for strip in app.screen._compositor.render_strips()]
