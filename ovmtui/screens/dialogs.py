"""Modal dialogs."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import Button, Footer, Label, Static

from ovmtui.terminal import ascii_only, to_ascii

MAX_COMMANDS_SHOWN = 12


class ConfirmDialog(ModalScreen[bool]):
    """Asks before anything destructive or bulk; shows exactly what will run.

    Focus starts on Cancel, so an enter typed out of habit never confirms; the keys that
    answer are on the buttons and in the dialog's own footer.
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("y", "confirm", "Run", id="dialog-confirm"),
        Binding("n,escape", "cancel", "Cancel", key_display="n/esc", id="dialog-cancel"),
    ]

    # Below these sizes the dialog drops its padding so that its buttons stay on screen
    # (a 40x12 terminal still shows the title, the buttons and a scrollable body).
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (60, "-wide")]
    VERTICAL_BREAKPOINTS = [(0, "-short"), (20, "-tall")]

    def __init__(
        self,
        title: str,
        commands: Sequence[str],
        *,
        warning: str | None = None,
        confirm_label: str = "Run",
        details: str | None = None,
    ) -> None:
        super().__init__()
        self._details = details
        self._title = title
        self._commands = list(commands)
        self._warning = warning
        self._confirm_label = confirm_label
        # The footer names the confirm key after what it does ("y Force off"), as the button.
        bindings = self._bindings.key_to_bindings
        bindings["y"] = [replace(b, description=confirm_label) for b in bindings["y"]]

    def compose(self) -> ComposeResult:
        # VM names and commands may hold anything; a terminal limited to ASCII shows "?".
        plain = to_ascii if ascii_only(self) else str
        with Vertical(id="dialog"):
            # Content, not markup: "[y]" would otherwise be read as a style and vanish.
            yield Label(Content(plain(self._title)), id="dialog-title")
            with VerticalScroll(id="dialog-body"):
                if self._warning:
                    yield Static(plain(self._warning), id="dialog-warning", markup=False)
                shown = self._commands[:MAX_COMMANDS_SHOWN]
                more = len(self._commands) - len(shown)
                text = "\n".join(f"$ {c}" for c in shown)
                if more > 0:
                    text += f"\n... and {more} more"
                with Vertical(id="dialog-commands"):
                    yield Static(plain(text), markup=False)
                if self._details:
                    # What the commands do to a file (a vm.cfg diff): shown whole, unprefixed.
                    yield Static(plain(self._details), id="dialog-details", markup=False)
            with Horizontal(id="dialog-buttons"):
                yield Button(
                    Content(plain(f"{self._confirm_label} [y]")),
                    id="confirm",
                    variant="error" if self._warning else "primary",
                    compact=True,
                )
                yield Button(Content("Cancel [n]"), id="cancel", compact=True)
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#cancel", Button).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.dismiss(event.button.id == "confirm")

    def action_confirm(self) -> None:
        self.dismiss(True)

    def action_cancel(self) -> None:
        self.dismiss(False)
