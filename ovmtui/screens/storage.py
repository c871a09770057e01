"""A pool's storage (``S``): one tab per kind of Oracle VM's layout, each entry with its
sizes, format, library status, who brought it and when, and what uses it; register,
approve, delete (confirmed) and refresh. On the shared disks' tab, the disks' own actions
(``session.disks``, the pool's rules): create (``c``), attach to a VM (``+``), detach from
one (``-``), and ``d`` deletes through the same rules; their keys are in the footer there only.

The screen never talks to a host: it asks the storage service (``context.storage``) for a
``StorageView`` and shows it; every change goes through the service, on the record.
"""

from __future__ import annotations

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Static, TabbedContent, TabPane

from ovmtui.context import AppContext
from ovmtui.errors import OvmError
from ovmtui.import_plan import ImportPlan
from ovmtui.screens import storage_disks
from ovmtui.screens.dialogs import ConfirmDialog
from ovmtui.screens.imports import ImportDialog
from ovmtui.services.storage import (
    COLUMNS,
    StorageView,
    header_lines,
    row_cells,
)
from ovmtui.storage_model import ResourceKind, StorageRow, shown


def _tab_id(kind: ResourceKind) -> str:
    return f"storage-{kind.value}"


class StorageScreen(Screen[None]):
    """See the module docstring."""

    DEFAULT_CSS = """
    StorageScreen > #storage-header {
        padding: 0 1;
        background: $panel;
        height: auto;
    }
    StorageScreen > TabbedContent, StorageScreen ContentSwitcher, StorageScreen TabPane {
        height: 1fr;
    }
    StorageScreen TabPane {
        padding: 0;
    }
    StorageScreen DataTable {
        height: 1fr;
    }
    """

    BINDINGS = [
        Binding("escape,q", "app.pop_screen", "Back", id="storage-close"),
        # First: on the shared disks' tab (the only one showing them) an 80-column footer
        # has room for these before the library's keys.
        Binding("c", "create_disk", "New disk", id="storage-disk-create"),
        Binding("plus", "hold_disk(True)", "Attach", key_display="+", id="storage-disk-attach"),
        Binding("minus", "hold_disk(False)", "Detach", key_display="-", id="storage-disk-detach"),
        Binding("r", "register", "Register", id="storage-register"),
        Binding("R", "register_all", "Register all", id="storage-register-all"),
        Binding("a", "approve", "Approve", id="storage-approve"),
        Binding("d", "delete", "Delete", id="storage-delete"),
        Binding("i", "import_resource", "Import", id="storage-import"),
        Binding("ctrl+r", "reload", "Refresh", id="storage-reload"),
        Binding("right,bracketright", "next_tab", "Next tab", show=False, id="storage-next"),
        Binding("left,bracketleft", "previous_tab", "Prev tab", show=False, id="storage-prev"),
    ]

    def __init__(self, context: AppContext, pool: str) -> None:
        super().__init__()
        self.context = context
        self.pool = pool
        self.view: StorageView | None = None
        self._filled: set[ResourceKind] = set()

    def compose(self) -> ComposeResult:
        yield Static(f"Storage of pool {self.pool}: reading…", id="storage-header", markup=False)
        with TabbedContent(id="storage-tabs"):
            for kind in ResourceKind:
                with TabPane(kind.label, id=_tab_id(kind)):
                    table: DataTable[Text] = DataTable(
                        id=f"{_tab_id(kind)}-table", cursor_type="row", zebra_stripes=True
                    )
                    table.add_columns(*COLUMNS)
                    yield table
        yield Footer()

    def on_mount(self) -> None:
        self.action_reload()
        # An import's start and end change the library (importing, pending, failed): read
        # again, so the row says so.
        self.context.import_signal.subscribe(self, self._imports_changed)

    def on_unmount(self) -> None:
        self.context.import_signal.unsubscribe(self)

    def _imports_changed(self, _imports: object) -> None:
        if self.is_attached:
            self.action_reload()

    # -- showing ---------------------------------------------------------------------------

    def table_of(self, kind: ResourceKind) -> DataTable[Text]:
        return self.query_one(f"#{_tab_id(kind)}-table", DataTable)

    def show(self, view: StorageView) -> None:
        """Bring the header and the tabs' labels up to date with ``view``, and the table of
        the tab in view; the others are filled when they are opened (a pool of thousands of
        files draws its first picture without filling five tables)."""
        self.view = view
        lines = header_lines(view)
        if view.rows:
            lines[0] += f" · {len(view.rows)} entries"
        self.query_one("#storage-header", Static).update("\n".join(lines))
        tabs = self.query_one(TabbedContent)
        for kind in ResourceKind:
            tab = tabs.get_tab(_tab_id(kind))
            tab.label = f"{kind.label} ({len(view.rows_of(kind))})"
        self._filled.clear()
        self._fill(self.kind)

    def _fill(self, kind: ResourceKind) -> None:
        if self.view is None or kind in self._filled:
            return
        self._filled.add(kind)
        rows = self.view.rows_of(kind)
        table = self.table_of(kind)
        cursor = table.cursor_row
        table.clear()
        # Text, not str: a str cell is read as markup, and a name may hold [brackets].
        table.add_rows([Text(cell, no_wrap=True) for cell in row_cells(row)] for row in rows)
        if rows:
            table.move_cursor(row=min(max(cursor, 0), len(rows) - 1))

    @property
    def kind(self) -> ResourceKind:
        active = self.query_one(TabbedContent).active or _tab_id(ResourceKind.VM)
        return next(k for k in ResourceKind if _tab_id(k) == active)

    @property
    def selected(self) -> StorageRow | None:
        if self.view is None:
            return None
        rows = self.view.rows_of(self.kind)
        index = self.table_of(self.kind).cursor_row
        return rows[index] if rows and 0 <= index < len(rows) else None

    def action_next_tab(self) -> None:
        self._step_tab(1)

    def action_previous_tab(self) -> None:
        self._step_tab(-1)

    def _step_tab(self, step: int) -> None:
        kinds = list(ResourceKind)
        tabs = self.query_one(TabbedContent)
        tabs.active = _tab_id(kinds[(kinds.index(self.kind) + step) % len(kinds)])
        self._fill(self.kind)
        self.table_of(self.kind).focus()
        self.refresh_bindings()

    def on_tabbed_content_tab_activated(self, _event: TabbedContent.TabActivated) -> None:
        self._fill(self.kind)
        self.table_of(self.kind).focus()
        self.refresh_bindings()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        # The shared disks' own keys where they apply, and nowhere else (not even dimmed).
        if action in ("create_disk", "hold_disk"):
            return self.kind is ResourceKind.SHARED_DISK
        return True

    # -- acting ------------------------------------------------------------------------------

    @work(exclusive=True, group="storage-read")
    async def action_reload(self) -> None:
        view = await self.context.storage.view(self.pool)
        self.show(view)

    def say_refused(self, text: str, title: str) -> None:
        self.notify(text, title=title, severity="warning", markup=False)

    def row_or_say(self) -> StorageRow | None:
        row = self.selected
        if row is None:
            self.say_refused("No entry selected.", "Nothing selected")
        elif self.context.read_only:
            self.say_refused("Read-only mode: the library is not changed.", "Read-only")
            return None
        return row

    def action_import_resource(self) -> None:
        """A resource from a URL into this pool (the imports screen's dialog, this pool
        first); it runs as a job, its end told as a notice."""

        if self.context.read_only:
            self.say_refused("Read-only mode: nothing is imported.", "Read-only")
            return
        pools = self.context.import_pools()
        if self.pool not in pools:
            self.say_refused(
                f"Pool {self.pool} has no shared_storage: nowhere to import to.", "Import"
            )
            return
        ordered = [self.pool, *(p for p in pools if p != self.pool)]

        def start(request: tuple[str, ImportPlan] | None) -> None:
            if request is not None:
                self.context.start_import(*request)

        self.app.push_screen(ImportDialog(self.context, ordered), start)

    @work(exclusive=True, group="storage-change")
    async def action_register(self) -> None:
        row = self.row_or_say()
        if row is None or self.view is None:
            return
        await self._register(self.view, [row.path])

    @work(exclusive=True, group="storage-change")
    async def action_register_all(self) -> None:
        if self.view is None:
            return
        if self.context.read_only:
            self.say_refused("Read-only mode: the library is not changed.", "Read-only")
            return
        await self._register(self.view, [])

    async def _register(self, view: StorageView, names: list[str]) -> None:
        try:
            results = await self.context.storage.register(view, names)
        except OvmError as exc:
            self.say_refused(exc.message, exc.title)
            return
        done = [r for r in results if r.refused is None]
        refused = [r.refused for r in results if r.refused is not None]
        if refused:
            self.say_refused("\n".join(refused), f"{len(refused)} not registered")
        if done:
            self.notify(f"{len(done)} registered (pending approval)", markup=False)
        if not results:
            self.notify("Nothing to register.", markup=False)
        self.action_reload()

    @work(exclusive=True, group="storage-change")
    async def action_approve(self) -> None:
        row = self.row_or_say()
        if row is None or self.view is None:
            return
        try:
            approved = await self.context.storage.approve(self.view, row.path)
        except OvmError as exc:
            self.say_refused(exc.message, exc.title)
            return
        self.notify(f"{shown(row.name)} approved by {approved.approved_by}", markup=False)
        self.action_reload()

    @work(exclusive=True, group="storage-change")
    async def action_delete(self) -> None:
        row = self.row_or_say()
        if row is None or self.view is None:
            return
        if row.kind is ResourceKind.SHARED_DISK:
            await storage_disks.delete_disk(self, row)
            return
        view = self.view
        command = self.context.storage.delete_command(view, row)
        confirmed = await self.app.push_screen_wait(
            ConfirmDialog(
                f"Delete {shown(row.name)}?",
                [command],
                warning="Its files are removed from the pool's storage for good, "
                "and its record from the library.",
                confirm_label="Delete",
            )
        )
        if not confirmed:
            return
        try:
            await self.context.storage.delete(view, row.path)
        except OvmError as exc:
            self.say_refused(exc.message, exc.title)
            return
        self.notify(f"{shown(row.name)} deleted", markup=False)
        self.action_reload()

    # -- shared disks (screens/storage_disks.py) -----------------------------------------------

    @work(exclusive=True, group="storage-change")
    async def action_create_disk(self) -> None:
        """A new shared disk of this pool (``c``)."""
        await storage_disks.create_disk(self)

    @work(exclusive=True, group="storage-change")
    async def action_hold_disk(self, attach: bool) -> None:
        """The selected disk attached to a VM (``+``) or detached from one (``-``)."""
        await storage_disks.hold_disk(self, attach=attach)
