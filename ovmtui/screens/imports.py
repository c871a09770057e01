"""The imports under way (``I``): each resource's progress (bytes, rate, time left), a new
import from a URL (``n``) and a cancel (``x``, asked first), which removes what it wrote."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Select, Static

from ovmtui import format as fmt
from ovmtui.context import AppContext
from ovmtui.errors import OvmError
from ovmtui.import_plan import IMPORT_KINDS, ImportPlan
from ovmtui.screens._list_screen import Cells, ListScreen
from ovmtui.screens.dialogs import ConfirmDialog
from ovmtui.services.imports import Importing, import_command


class ImportsScreen(ListScreen[Importing]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("n", "new_import", "New import", id="imports-new"),
        Binding("x", "cancel_import", "Cancel import", id="imports-cancel"),
        Binding("escape,q,I", "app.pop_screen", "Back", id="imports-back"),
    ]
    TABLE_ID = "imports"
    # What moves first (an 80-column terminal shows those), what is fixed after.
    COLUMNS = ("resource", "progress", "done", "rate", "left", "kind", "host", "URL")

    def __init__(self, context: AppContext) -> None:
        super().__init__()
        self.context = context

    def key_of(self, item: Importing) -> str:
        return str(item.id)

    def cells_of(self, item: Importing) -> Cells:
        reading = item.progress
        percent = reading.percent
        phase = (
            reading.phase if percent is None or reading.phase != "downloading" else f"{percent} %"
        )
        done = fmt.size(reading.done_bytes)
        if reading.total_bytes is not None:
            done += f" of {fmt.size(reading.total_bytes)}"
        rate = f"{fmt.size(int(reading.bytes_per_s))}/s" if reading.bytes_per_s else ""
        left = fmt.duration(reading.eta_s) if reading.eta_s is not None else ""
        return (item.plan.name, phase, done, rate, left, item.plan.kind, item.host, item.plan.url)

    def title_of(self, items: Sequence[Importing]) -> str:
        if not items:
            return "Imports: none under way (n imports a resource from a URL)"
        return f"Imports: {len(items)} under way (n starts another, x cancels one)"

    def on_mount(self) -> None:
        self._update()
        # Progress moves under the list; once a second is what an operator reads.
        self.set_interval(1.0, self._update)

    def _update(self) -> None:
        self.show(self.context.imports)

    def action_new_import(self) -> None:
        pools = self.context.import_pools()
        if not pools:
            self.notify(
                "No pool has shared_storage in the estate file: nowhere to import to.",
                severity="warning",
                markup=False,
            )
            return

        def start(request: tuple[str, ImportPlan] | None) -> None:
            if request is not None:
                self.context.start_import(*request)
                self.call_after_refresh(self._update)

        self.app.push_screen(ImportDialog(self.context, pools), start)

    def action_cancel_import(self) -> None:
        item = self.selected
        if item is None:
            return

        def answered(yes: bool | None) -> None:
            if yes and self.context.cancel_import(item.id):
                self.notify(f"Cancelling the import of {item.plan.name}.", markup=False)

        self.app.push_screen(
            ConfirmDialog(
                f"Cancel the import of {item.plan.name}?",
                [f"stop the download on {item.host} and remove {item.plan.partial}"],
            ),
            answered,
        )


class ImportDialog(ModalScreen[tuple[str, ImportPlan] | None]):
    """What to import: URL, kind, name, SHA-256, pool; checked before it is accepted."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Cancel", id="import-cancel")
    ]
    DEFAULT_CSS = """
    ImportDialog { align: center middle; }
    ImportDialog > Vertical {
        width: 90%; max-width: 110; height: auto; max-height: 100%; padding: 0 2;
        background: $panel; border: thick $accent;
    }
    ImportDialog Input, ImportDialog Select { margin: 0; }
    ImportDialog #import-error { color: $error; height: auto; }
    ImportDialog #import-command { color: $text-muted; height: auto; }
    """

    def __init__(self, context: AppContext, pools: Sequence[str]) -> None:
        super().__init__()
        self.context = context
        self._pools = tuple(pools)

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label("Import a resource from an http://, https:// or ftp:// URL")
            yield Input(placeholder="URL", id="import-url")
            yield Select(
                [(kind, kind) for kind in IMPORT_KINDS],
                value=IMPORT_KINDS[0],
                allow_blank=False,
                id="import-kind",
            )
            yield Input(placeholder="name (default: from the URL)", id="import-name")
            yield Input(
                placeholder="SHA-256 (optional: refused unless it matches)", id="import-sha"
            )
            yield Select(
                [(pool, pool) for pool in self._pools],
                value=self._pools[0],
                allow_blank=False,
                id="import-pool",
            )
            yield Static("", id="import-error", markup=False)
            yield Static("", id="import-command", markup=False)
            yield Button("Import", variant="primary", id="import-go")

    def on_mount(self) -> None:
        self.query_one("#import-url", Input).focus()

    def on_button_pressed(self, _event: Button.Pressed) -> None:
        self.submit()

    def on_input_submitted(self, _event: Input.Submitted) -> None:
        self.submit()

    def submit(self) -> None:
        """Check the request; dismiss with it when it can be an import, else say why."""
        url = self.query_one("#import-url", Input).value.strip()
        kind = str(self.query_one("#import-kind", Select).value)
        name = self.query_one("#import-name", Input).value.strip() or None
        sha = self.query_one("#import-sha", Input).value.strip() or None
        pool = str(self.query_one("#import-pool", Select).value)
        try:
            pool, plan = self.context.plan_import(url, kind, pool=pool, name=name, sha256=sha)
        except OvmError as exc:
            self.query_one("#import-error", Static).update(exc.message)
            return
        self.query_one("#import-command", Static).update(import_command(pool, plan))
        self.dismiss((pool, plan))

    def action_cancel(self) -> None:
        self.dismiss(None)
