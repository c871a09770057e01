"""A tiny app around one TerminalView, recording what it posts."""

from __future__ import annotations

from textual.app import App, ComposeResult
from textual.binding import Binding

from ovmtui.widgets.terminal_view import TerminalView


class TerminalApp(App[None]):
    """The widget alone, full screen; an app binding on a printable key and Ctrl+]."""

    BINDINGS = [
        Binding("q", "quit_pressed", "Quit", id="quit"),
        Binding("ctrl+right_square_bracket", "leave", "Leave", priority=True, id="leave"),
    ]

    def __init__(self, *, view_only: bool = False, scrollback: int = 10_000) -> None:
        super().__init__()
        self.typed: list[bytes] = []
        self.pending_when_typed: list[int] = []
        self.resized: list[tuple[int, int]] = []
        self.left = 0
        self.quit_pressed = 0
        self._view_only = view_only
        self._scrollback = scrollback

    def compose(self) -> ComposeResult:
        yield TerminalView(view_only=self._view_only, scrollback=self._scrollback, id="term")

    def on_mount(self) -> None:
        self.query_one(TerminalView).focus()

    @property
    def view(self) -> TerminalView:
        return self.query_one(TerminalView)

    def on_terminal_view_typed(self, message: TerminalView.Typed) -> None:
        self.typed.append(message.data)
        # How much output was still waiting when the bytes came: keys answered mid-flood.
        self.pending_when_typed.append(self.view.pending_bytes)

    def on_terminal_view_resized(self, message: TerminalView.Resized) -> None:
        self.resized.append((message.columns, message.rows))

    def action_leave(self) -> None:
        self.left += 1

    def action_quit_pressed(self) -> None:
        self.quit_pressed += 1
