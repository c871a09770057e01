"""Modal dialogs."""

from __future__ import annotations

from collections.abc import Sequence

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Label, Static

MAX_COMMANDS_SHOWN = 12


class ConfirmDialog(ModalScreen[bool]):
    """Asks before anything destructive or bulk; shows exactly what will run."""

    BINDINGS = [
        Binding("y", "confirm", "Run", id="dialog-confirm"),
        Binding("n,escape", "cancel", "Cancel", id="dialog-cancel"),
    ]

    def __init__(
        self,
        title: str,
        commands: Sequence[str],
        *,
        warning: str | None = None,
        confirm_label: str = "Run",
    ) -> None:
        super().__init__()
        self._title = title
        self._commands = list(commands)
        self._warning = warning
        self._confirm_label = confirm_label

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Label(self._title, id="dialog-title")
            if self._warning:
                yield Static(self._warning, id="dialog-warning", markup=False)
            shown = self._commands[:MAX_COMMANDS_SHOWN]
            more = len(self._commands) - len(shown)
            text = "\n".join(f"$ {c}" for c in shown)
            if more > 0:
                text += f"\n… and {more} more"
            with VerticalScroll(id="dialog-commands"):
                yield Static(text, markup=False)
            with Horizontal(id="dialog-buttons"):
                yield Button(
                    f"{self._confirm_label} [y]",
                    id="confirm",
                    variant="error" if self._warning else "primary",
                )
                yield Button("Cancel [n]", id="cancel")

    def on_mount(self) -> None:
        self.query_one("#cancel", Button).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.dismiss(event.button.id == "confirm")

    def action_confirm(self) -> None:
        self.dismiss(True)

    def action_cancel(self) -> None:
        self.dismiss(False)
