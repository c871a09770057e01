"""A VM's own screen: its facts, disks, NICs, definition and journal, and its keys.

Opened by ``enter`` on a VM of the table (or "Open VM <name>" in the palette). It renders the
snapshot's immutable VM and follows each refresh through ``estate_signal``; what needs the
host (the definition) or the repository (the journal) it asks of the app (``AppContext``),
in workers, never on the event loop. The lifecycle keys and ``c`` are the dashboard's
(``_vm_keys``), and so is ``m`` (migrate): the same dimming with its reason, the same
questions, the same commands.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from textual import work
from textual.app import ComposeResult
from textual.binding import ActiveBinding, Binding
from textual.containers import Vertical, VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer, Static, TabbedContent, TabPane, TextArea

from ovmtui.context import AppContext
from ovmtui.errors import OvmError
from ovmtui.format import timestamp
from ovmtui.model import Capability, EstateSnapshot, PlacedVm, VmAction
from ovmtui.screens._vm_keys import (
    check_vm_key,
    confirm_and_run,
    console_binding,
    migrate_binding,
    migrate_refusal,
    open_console,
    open_migration,
    vm_bindings,
    vm_refusal,
    with_reasons,
)
from ovmtui.screens.journal import result_text
from ovmtui.screens.shared_disk import disk_flow
from ovmtui.services.actions import ActionResult
from ovmtui.services.vm_facts import (
    DISK_COLUMNS,
    NIC_COLUMNS,
    disk_rows,
    nic_rows,
    summary_rows,
    with_disk_sizes,
)
from ovmtui.store.journal import JournalEntry
from ovmtui.widgets.vm_details import RowsTable, VmFacts

JOURNAL_COLUMNS = ("time", "user", "operation", "result", "command")

GONE = "the VM is no longer in the estate"


def journal_cells(entry: JournalEntry) -> tuple[str, ...]:
    return (
        timestamp(entry.at),
        entry.user,
        entry.operation,
        result_text(entry),
        entry.command or "",
    )


class VmScreen(Screen[None]):
    """One VM, by UUID: found again in every snapshot, on whichever host reports it."""

    BINDINGS = [
        *vm_bindings(),
        console_binding(),
        migrate_binding(),
        Binding("a", "disk('attach')", "Attach disk", id="vm-attach-disk"),
        Binding("A", "disk('detach')", "Detach disk", id="vm-detach-disk"),
        Binding("o", "tab('overview')", "Overview", id="vm-show-overview"),
        Binding("d", "tab('definition')", "Definition", id="vm-show-definition"),
        Binding("j", "tab('journal')", "Journal", id="vm-show-journal"),
        Binding("ctrl+r", "reload", "Refresh", id="vm-refresh"),
        Binding("escape,q", "app.pop_screen", "Back", id="vm-close"),
    ]

    # Below 120 columns the facts go above the disks and NICs rather than beside them.
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (120, "-wide")]

    DEFAULT_CSS = """
    VmScreen > #vm-title {
        padding: 0 1;
        background: $panel;
        text-style: bold;
    }
    VmScreen > #vm-title.-gone {
        background: $warning-muted;
    }
    VmScreen #vm-tabs {
        height: 1fr;
    }
    VmScreen #vm-overview {
        layout: horizontal;
    }
    VmScreen.-narrow #vm-overview {
        layout: vertical;
    }
    VmScreen #vm-facts {
        width: auto;
        min-width: 30;
        border-right: vkey $panel-lighten-2;
    }
    VmScreen.-narrow #vm-facts {
        border-right: none;
        border-bottom: hkey $panel-lighten-2;
        width: 1fr;
    }
    VmScreen #vm-devices {
        width: 1fr;
        height: auto;
    }
    VmScreen .vm-heading {
        padding: 0 1;
        color: $text-muted;
    }
    VmScreen #vm-definition {
        height: 1fr;
    }
    VmScreen .vm-note {
        padding: 0 1;
        color: $text-muted;
        text-style: italic;
    }
    """

    def __init__(self, context: AppContext, placed: PlacedVm) -> None:
        super().__init__()
        self.context = context
        self.uuid = placed.uuid
        # As last reported; kept (and shown as such) once no host reports the VM any more.
        self.placed = placed
        self.gone = False
        self._sizes: Mapping[str, int | None] = {}  # disk sizes by target, once measured
        # Made here and kept: TabbedContent mounts its panes after this screen's on_mount
        # has run, so they cannot be queried there.
        self.title_line = Static(id="vm-title", markup=False)
        self.facts = VmFacts(id="vm-facts")
        self.disks_heading = Static(id="vm-disks-heading", classes="vm-heading", markup=False)
        self.disks = RowsTable(DISK_COLUMNS, id="vm-disks")
        self.nics_heading = Static(id="vm-nics-heading", classes="vm-heading", markup=False)
        self.nics = RowsTable(NIC_COLUMNS, id="vm-nics")
        self.definition_note = Static(
            "loading…", id="vm-definition-note", classes="vm-note", markup=False
        )
        self.definition = TextArea(
            id="vm-definition", read_only=True, soft_wrap=False, show_line_numbers=True
        )
        self.definition.cursor_blink = False  # pictures and tests never depend on a blink
        self.definition.display = False  # until there is one
        self.journal_note = Static(
            "loading…", id="vm-journal-note", classes="vm-note", markup=False
        )
        self.journal = RowsTable(JOURNAL_COLUMNS, id="vm-journal")

    def compose(self) -> ComposeResult:
        yield self.title_line
        with TabbedContent(id="vm-tabs"):
            with TabPane("Overview", id="vm-overview-tab"), VerticalScroll(id="vm-overview"):
                yield self.facts
                with Vertical(id="vm-devices"):
                    yield self.disks_heading
                    yield self.disks
                    yield self.nics_heading
                    yield self.nics
            with TabPane("Definition", id="vm-definition-tab"):
                yield self.definition_note
                yield self.definition
            with TabPane("Journal", id="vm-journal-tab"):
                yield self.journal_note
                yield self.journal
        yield Footer()

    def on_mount(self) -> None:
        self.context.estate_signal.subscribe(self, self.show_estate)
        self.context.action_signal.subscribe(self, self._acted)
        self.context.read_only_signal.subscribe(self, lambda _reason: self.refresh_bindings())
        # A move under way dims this VM's keys ("migrating to h2") until it ends.
        self.context.migration_signal.subscribe(self, lambda _moves: self.refresh_bindings())
        self.show_estate(self.context.snapshot)
        self.load_definition()
        self.load_disk_sizes()
        self.load_journal()
        self.disks.focus()

    def on_unmount(self) -> None:
        for signal in (
            self.context.estate_signal,
            self.context.action_signal,
            self.context.read_only_signal,
            self.context.migration_signal,
        ):
            signal.unsubscribe(self)

    # -- data down ------------------------------------------------------------------------

    def show_estate(self, snapshot: EstateSnapshot) -> None:
        """Follow the VM into this snapshot: by UUID, on whichever host reports it."""
        if not self.is_attached:
            return
        found = snapshot.find_vm(self.uuid)
        moved = found is not None and found.host_key != self.placed.host_key
        self.gone = found is None
        if found is not None:
            self.placed = found
        self._show_vm()
        self.refresh_bindings()
        if moved:
            self.load_definition()  # its new host's copy
            self.load_disk_sizes()

    def _show_vm(self) -> None:
        placed, vm = self.placed, self.placed.vm
        where = f"{placed.pool}/{placed.host}"
        title = self.title_line
        if self.gone:
            title.update(f"{vm.name}: {GONE} (last seen {vm.state.value} on {where})")
        else:
            host = self.context.snapshot.host(placed.host_key)
            stale = "" if host is None or host.reachable is not False else " (last known)"
            title.update(f"{vm.name}: {vm.state.value} on {where}{stale}")
        title.set_class(self.gone, "-gone")
        self.facts.show_facts(summary_rows(placed, self.context.clock()))
        shared = self.context.shared_storage(placed.pool)
        disks = disk_rows(with_disk_sizes(vm, self._sizes), shared)
        self.disks_heading.update(
            f"Disks: {len(disks)} (pool shared storage: {shared or 'not configured'})"
        )
        self.disks.show_rows([(f"{index}:{row[0]}", row) for index, row in enumerate(disks)])
        nics = nic_rows(vm)
        self.nics_heading.update(f"NICs: {len(nics)}")
        self.nics.show_rows([(str(index), row) for index, row in enumerate(nics)])

    @work(exclusive=True, group="vm-disk-sizes")
    async def load_disk_sizes(self) -> None:
        """Asked once (and after a move): a disk's size does not change with each poll."""
        try:
            sizes = await self.context.vm_disk_sizes(self.placed)
        except OvmError:
            return  # sizes stay unknown ("—"), as for a backend that cannot tell
        if self.is_attached:
            self._sizes = sizes
            self._show_vm()

    @work(exclusive=True, group="vm-definition")
    async def load_definition(self) -> None:
        placed = self.placed
        note, area = self.definition_note, self.definition
        try:
            text = await self.context.vm_definition(placed)
        except OvmError as exc:
            if not self.is_attached:
                return  # closed meanwhile
            note.update(f"No definition: {exc.message}")
            note.display = True
            area.display = False
            return
        if not self.is_attached:
            return  # closed meanwhile
        note.update(f"As {placed.host} holds it (read-only)")
        if text != area.text:
            area.load_text(text)
        area.display = True

    @work(exclusive=True, group="vm-journal")
    async def load_journal(self) -> None:
        note, table = self.journal_note, self.journal
        try:
            entries: Sequence[JournalEntry] = await self.context.vm_journal(self.placed)
        except OvmError as exc:
            note.update(f"No journal: {exc.message}")
            return
        if not self.is_attached:
            return  # closed meanwhile
        note.update(
            f"The last {len(entries)} actions on this VM, oldest first"
            if entries
            else "No action on this VM in the journal"
        )
        table.show_rows([(str(entry.id), journal_cells(entry)) for entry in entries])

    def _acted(self, result: ActionResult) -> None:
        if result.placed.uuid == self.uuid:
            self.load_journal()  # its record is written by the time the result comes

    # -- keys -----------------------------------------------------------------------------

    def key_refusal(self, action: VmAction) -> str | None:
        """Why the key of ``action`` is dimmed on this VM, or None."""
        if self.gone:
            return GONE
        return vm_refusal(self.context, self.placed, action)

    def console_refusal(self) -> str | None:
        if self.gone:
            return GONE
        return self.context.console_refusal(self.placed)

    def migrate_refusal(self) -> str | None:
        if self.gone:
            return GONE
        return migrate_refusal(self.context, self.placed)

    def disk_refusal(self) -> str | None:
        """Why no shared disk can be attached or detached here now, or None."""
        if self.gone:
            return GONE
        if self.context.read_only:
            return "read-only mode"
        host = self.context.snapshot.host(self.placed.host_key)
        if host is None or Capability.ATTACH_DISK not in host.capabilities:
            reason = host.why_not(Capability.ATTACH_DISK) if host is not None else None
            return reason or f"{self.placed.host} cannot attach disks"
        return None

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "disk":
            return None if self.disk_refusal() is not None else True
        return check_vm_key(
            self.context,
            action,
            parameters,
            key_refusal=self.key_refusal,
            console_refusal=self.console_refusal,
            migrate_refusal=self.migrate_refusal,
        )

    @property
    def active_bindings(self) -> dict[str, ActiveBinding]:
        """Textual's, with the reason of each dimmed VM key as its tooltip."""
        return with_reasons(
            super().active_bindings,
            self,
            key_refusal=self.key_refusal,
            console_refusal=self.console_refusal,
            migrate_refusal=self.migrate_refusal,
        )

    def action_vm(self, name: str) -> None:
        action = VmAction(name)
        if self.context.read_only:
            self.notify("Read-only mode: no action is allowed.", severity="warning")
            return
        refusal = self.key_refusal(action)
        if refusal is not None:
            self.notify(f"{self.placed.vm.name}: {refusal}.", severity="warning", markup=False)
            return
        confirm_and_run(self.app, self.context, [self.placed], action)

    def action_console(self) -> None:
        refusal = self.console_refusal()
        if refusal is not None:
            self.notify(f"No console: {refusal}.", severity="warning", markup=False)
            return
        open_console(self.app, self.context, self.placed)

    def action_migrate(self) -> None:
        if self.gone:
            self.notify(f"No migration: {GONE}.", severity="warning", markup=False)
            return
        # The screen follows the VM by UUID: once moved, it shows it on its new host.
        open_migration(self.app, self.context, self.placed)

    def action_disk(self, which: str) -> None:
        refusal = self.disk_refusal()
        if refusal is not None:
            self.notify(f"No shared disk: {refusal}.", severity="warning", markup=False)
            return
        self.disk_worker(attach=which == "attach")

    @work(exclusive=True, group="shared-disk")
    async def disk_worker(self, *, attach: bool) -> None:
        await disk_flow(self.app, self.context, self.placed, attach=attach)

    def action_tab(self, pane: str) -> None:
        """Show a tab and put the focus where its keys work (scrolling the definition)."""
        self.query_one("#vm-tabs", TabbedContent).active = f"vm-{pane}-tab"
        target = {"overview": self.disks, "definition": self.definition, "journal": self.journal}[
            pane
        ]
        if target.display:
            target.focus()

    def action_reload(self) -> None:
        self.context.refresh_now()
        self.load_definition()
        self.load_disk_sizes()
        self.load_journal()
