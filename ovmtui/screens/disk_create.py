"""A new shared disk (the storage screen's ``c``): its name, size, and two switches, shareable
(several VMs write it: a cluster's quorum) and allocated (every byte written now, else sparse).

The dialog only checks what was typed (the same checks as ``ovmtui disk create``: a name of
letters, digits, ``_ . -``; a size like ``10G``); the plan, with the command the utility host
will run, is asked of the core after it and shown before anything runs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import Button, Checkbox, Footer, Input, Label, Static

from ovmtui.services.disk_rules import BadInput, disk_name, disk_size
from ovmtui.terminal import ascii_only, to_ascii


@dataclass(frozen=True, slots=True)
class CreateDiskRequest:
    """A shared disk to create, as typed and checked."""

    name: str  # without .img
    size_bytes: int
    shareable: bool
    allocate: bool


class CreateDiskDialog(ModalScreen[CreateDiskRequest | None]):
    """See the module docstring. Enter in a field (or the button) submits; tab reaches the
    switches (space toggles them)."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Cancel", id="disk-create-cancel"),
    ]
    DEFAULT_CSS = """
    CreateDiskDialog { align: center middle; }
    CreateDiskDialog > Vertical {
        width: 90%; max-width: 90; height: auto; max-height: 100%; padding: 0 2;
        background: $panel; border: thick $accent;
    }
    CreateDiskDialog #disk-create-title { text-style: bold; }
    CreateDiskDialog Input { margin: 0; }
    CreateDiskDialog #disk-create-error { color: $error; height: auto; }
    CreateDiskDialog #disk-create-note { color: $text-muted; height: auto; }
    """

    def __init__(self, pool: str, folder: str) -> None:
        super().__init__()
        self.pool = pool
        self.folder = folder  # <shared_storage>/sharedDisk, where it is made

    def compose(self) -> ComposeResult:
        plain = to_ascii if ascii_only(self) else str
        with Vertical():
            yield Label(
                Content(plain(f"New shared disk in pool {self.pool}")), id="disk-create-title"
            )
            yield Input(placeholder="name (letters, digits, _ . -)", id="disk-create-name")
            yield Input(placeholder="size, like 10G, 512M, 1T", id="disk-create-size")
            yield Checkbox(
                Content("Shareable: several VMs may write it (a cluster's disk)"),
                id="disk-create-shareable",
                compact=True,
            )
            yield Checkbox(
                Content("Allocate every byte now (default: sparse)"),
                id="disk-create-allocate",
                compact=True,
            )
            yield Static("", id="disk-create-error", markup=False)
            yield Static(
                plain(f"Made as {self.folder}/NAME.img by the pool's utility host; the "
                      "command is shown before it runs."),
                id="disk-create-note",
                markup=False,
            )  # fmt: skip
            yield Button("Create", variant="primary", id="disk-create-go", compact=True)
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#disk-create-name", Input).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.submit()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.submit()

    def submit(self) -> None:
        """Dismiss with the request when what was typed can be a disk, else say why."""
        error = self.query_one("#disk-create-error", Static)
        try:
            name = disk_name(self.query_one("#disk-create-name", Input).value)
            size = disk_size(self.query_one("#disk-create-size", Input).value)
        except BadInput as exc:
            error.update(str(exc))
            return
        self.dismiss(
            CreateDiskRequest(
                name,
                size,
                shareable=self.query_one("#disk-create-shareable", Checkbox).value,
                allocate=self.query_one("#disk-create-allocate", Checkbox).value,
            )
        )

    def action_cancel(self) -> None:
        self.dismiss(None)
