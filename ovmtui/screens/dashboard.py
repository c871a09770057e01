"""The dashboard: estate tree, host panel and the VM table, with every VM action."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from textual import work
from textual.app import ComposeResult
from textual.binding import ActiveBinding, Binding
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.timer import Timer
from textual.widgets import Footer, Input

from ovmtui.context import AppContext
from ovmtui.errors import OvmError
from ovmtui.model import EstateSnapshot, HostKey, PlacedVm, VmAction
from ovmtui.screens._estate_keys import ESTATE_ACTIONS, ESTATE_BINDINGS, EstateKeys
from ovmtui.screens._vm_keys import (
    check_vm_key,
    confirm_and_run,
    console_binding,
    migrate_binding,
    migrate_refusal,
    open_console,
    open_migration,
    show_console,
    vm_bindings,
    vm_refusal,
    with_reasons,
)
from ovmtui.services.consoles import ConsoleSession
from ovmtui.services.migration import Moving
from ovmtui.store.drift import DriftedVm
from ovmtui.widgets.estate_header import EstateHeader
from ovmtui.widgets.estate_tree import EstateTree, Scope
from ovmtui.widgets.host_panel import HostPanel
from ovmtui.widgets.vm_table import VmTable

# Redrawing the footer's keys costs about 100 ms. While the cursor runs through the table,
# they are redrawn once it rests this long (a key pressed meanwhile is checked as it comes).
CURSOR_SETTLE_S = 0.05

_SORT_COLUMNS = ("name", "state", "host", "vcpus", "memory", "cpu", "uptime")


class DashboardScreen(EstateKeys, Screen[None]):
    BINDINGS = [
        *vm_bindings(),
        *ESTATE_BINDINGS,
        # Priority: handled as the key arrives, so the letters typed right after the slash
        # already go to the filter box rather than to the widget that had focus.
        Binding("slash", "filter", "Filter", id="filter", priority=True),
        # Enter and escape in the filter box are priority bindings for the same reason, but
        # only while the box has focus (check_action), so enter elsewhere keeps its meaning.
        Binding("enter", "keep_filter", "Keep filter", show=False, id="filter-keep", priority=True),
        Binding(
            "escape", "clear_filter", "Clear filter", show=False, id="filter-clear", priority=True
        ),
        Binding("o", "sort_next", "Sort", id="sort-next"),
        Binding("O", "sort_reverse", "Reverse sort", show=False, id="sort-reverse"),
        console_binding(),
        migrate_binding(),
        Binding("C", "consoles", "Consoles", show=False, id="consoles"),
        Binding("I", "imports", "Imports", show=False, id="imports"),
        Binding("ctrl+r", "refresh", "Refresh", id="refresh"),
        Binding("l", "action_log", "Action log", id="action-log"),
        Binding("j", "journal", "Journal", id="journal"),
        Binding("b", "backups", "Backups", id="backups"),
        Binding("S", "storage", "Storage", show=False, id="storage"),
        Binding("D", "drift", "Drift", show=False, id="drift"),
        Binding("E", "export_definitions", "Export definitions", show=False, id="export"),
        Binding("t", "focus_tree", "Tree", show=False, id="focus-tree"),
        Binding("v", "focus_table", "VMs", show=False, id="focus-table"),
    ]

    def __init__(self, context: AppContext) -> None:
        super().__init__()
        self.context = context
        self._scope = Scope()
        self.header = EstateHeader(read_only=lambda: context.read_only, clock=context.clock)
        self.estate_tree = EstateTree(clock=context.clock, id="tree")
        self.host_panel = HostPanel(clock=context.clock, id="host-panel")
        self.filter_box = Input(placeholder="filter: name, state or host", id="filter")
        self.table = VmTable(now=context.clock, id="vm-table")
        # What the VM keys said when the footer was last drawn: it is redrawn only when
        # that changes, not on every cursor move.
        self._keys_state: tuple[object, ...] | None = None
        self._keys_settling: Timer | None = None
        # One marked VM of each host and state, for the snapshot and marks it was made of.
        self._marked_kinds: tuple[tuple[int, frozenset[str]], list[PlacedVm]] | None = None

    def compose(self) -> ComposeResult:
        yield self.header
        with Horizontal(id="main"):
            with Vertical(id="sidebar"):
                yield self.estate_tree
                yield self.host_panel
            with Vertical(id="vms"):
                yield self.filter_box
                yield self.table
        yield Footer()

    def on_mount(self) -> None:
        self.table.focus()
        # Immediate: a snapshot is shown in the turn it is published, as the estate's data
        # is what this screen is for (each snapshot's delta builds on the one before).
        self.context.estate_signal.subscribe(self, self.show_estate, immediate=True)
        self.context.drift_signal.subscribe(self, self.show_drift)
        self.context.read_only_signal.subscribe(self, lambda _reason: self.refresh_bindings())
        self.context.migration_signal.subscribe(self, self.show_migrations)
        self.show_estate(self.context.snapshot)
        self.show_drift(self.context.drifted)

    def on_unmount(self) -> None:
        for signal in (
            self.context.estate_signal,
            self.context.drift_signal,
            self.context.read_only_signal,
            self.context.migration_signal,
        ):
            signal.unsubscribe(self)

    # -- data down ------------------------------------------------------------------------

    def show_migrations(self, moves: tuple[Moving, ...]) -> None:
        """Moves under way, in the header (both hosts named); their VMs' keys dim meanwhile."""
        self.header.show_moving(tuple(f"{m.vm} {m.source}→{m.target}" for m in moves))
        self.table.show_moving(frozenset(m.uuid for m in moves))
        self._sync_vm_keys()

    def show_estate(self, snapshot: EstateSnapshot) -> None:
        if not self.table.is_attached:
            return  # torn down (the app is exiting): a late snapshot has nowhere to go
        self.header.show_estate(snapshot)
        self.estate_tree.show_estate(snapshot)
        self.table.apply_snapshot(snapshot)
        self._update_host_panel()
        self._sync_vm_keys()

    def _update_host_panel(self) -> None:
        key = self._scope.host_key
        if key is None:
            cursor = self.table.cursor_vm
            key = cursor.host_key if cursor is not None else None
        host = self.context.snapshot.host(key) if key is not None else None
        self.host_panel.show_host(host)

    # -- messages up ----------------------------------------------------------------------

    def on_estate_tree_evacuation_asked(self, event: EstateTree.EvacuationAsked) -> None:
        self.evacuate(event.host)

    def evacuate(self, host: HostKey) -> None:
        """The plan to empty ``host`` (also from the palette)."""
        from ovmtui.screens.evacuate import EvacuateScreen

        self.app.push_screen(EvacuateScreen(self.context, host))

    def on_estate_tree_connection_test_asked(self, event: EstateTree.ConnectionTestAsked) -> None:
        self.test_connection(event.host)

    def test_connection(self, host: HostKey) -> None:
        """The connection test of ``host`` (also from the palette)."""
        from ovmtui.screens.connection_test import ConnectionTestScreen

        found = self.context.host_config(host)
        if found is None:
            self.notify(f"{host} is no longer in the estate file.", severity="warning")
            return
        config, pool = found
        self.app.push_screen(ConnectionTestScreen(self.context, config, pool))

    def on_estate_tree_restore_asked(self, event: EstateTree.RestoreAsked) -> None:
        self.restore(event.pool, event.host)

    def restore(self, pool: str, host: HostKey | None = None) -> None:
        """Restore ``host`` from the repository, or every host of ``pool`` (masters first)."""
        from ovmtui.screens.restore_host import RestoreHostScreen

        hosts: tuple[HostKey, ...]
        if host is not None:
            hosts, title = (host,), f"Restore {host.name} from the repository"
        else:
            hosts = self.context.restore_order(pool)
            names = ", ".join(key.name for key in hosts)
            title = f"Restore pool {pool} from the repository (masters first: {names})"
        self.app.push_screen(RestoreHostScreen(self.context, hosts, title))

    def on_estate_tree_scope_changed(self, event: EstateTree.ScopeChanged) -> None:
        self._scope = event.scope
        self.table.set_scope(event.scope.pool, event.scope.host)
        self._update_host_panel()
        self._sync_vm_keys()

    def on_vm_table_vm_highlighted(self, event: VmTable.VmHighlighted) -> None:
        self._update_host_panel()
        if self._keys_settling is not None:
            self._keys_settling.stop()
        self._keys_settling = self.set_timer(CURSOR_SETTLE_S, self._sync_vm_keys)

    def on_vm_table_vm_selected(self, event: VmTable.VmSelected) -> None:
        self.open_vm(event.placed)

    def on_vm_table_marks_changed(self, event: VmTable.MarksChanged) -> None:
        self._sync_vm_keys()

    def on_input_changed(self, event: Input.Changed) -> None:
        if event.input.id == "filter":
            self.table.set_filter(event.value)

    # -- actions --------------------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in ESTATE_ACTIONS:
            return None if self.estate_refusal(action) is not None else True
        if action == "keep_filter":
            return self.focused is self.filter_box
        if action == "clear_filter":
            box = self.filter_box
            return self.focused is box or bool(box.value)
        return check_vm_key(
            self.context,
            action,
            parameters,
            key_refusal=self.vm_key_refusal,
            console_refusal=self.console_key_refusal,
            migrate_refusal=self.migrate_key_refusal,
        )

    @property
    def active_bindings(self) -> dict[str, ActiveBinding]:
        """Textual's, with the reason of each dimmed VM key as its tooltip."""
        return with_reasons(
            self.with_estate_reasons(super().active_bindings),
            self,
            key_refusal=self.vm_key_refusal,
            console_refusal=self.console_key_refusal,
            migrate_refusal=self.migrate_key_refusal,
        )

    def _sync_vm_keys(self) -> None:
        """Redraw the footer's keys if what the VM keys say has changed."""
        self._keys_settling = None
        state = (
            self.context.read_only,
            self.console_key_refusal(),
            self.migrate_key_refusal(),
            *(self.vm_key_refusal(a) for a in VmAction),
            *(self.estate_refusal(a) for a in sorted(ESTATE_ACTIONS)),
        )
        if state != self._keys_state:
            self._keys_state = state
            self.refresh_bindings()

    def vm_refusal(self, placed: PlacedVm, action: VmAction) -> str | None:
        """Why ``action`` cannot run on this VM now, or None when it can be tried."""
        return vm_refusal(self.context, placed, action)

    def vm_key_refusal(self, action: VmAction) -> str | None:
        """Why the key of ``action`` is dimmed: none of its targets can take it."""
        if self.table.marked:
            reasons = set()
            for placed in self._one_marked_vm_of_each_kind():
                reason = self.vm_refusal(placed, action)
                if reason is None:
                    return None
                reasons.add(reason)
            if len(reasons) == 1:
                return f"marked VMs: {reasons.pop()}"
            return f"none of the marked VMs can {action.label.lower()}"
        cursor = self.table.cursor_vm
        if cursor is None:
            return "no VM under the cursor"
        return self.vm_refusal(cursor, action)

    def migrate_key_refusal(self) -> str | None:
        """Why ``m`` is dimmed: the VM under the cursor's host cannot migrate at all."""
        cursor = self.table.cursor_vm
        if cursor is None:
            return "no VM under the cursor"
        return migrate_refusal(self.context, cursor)

    def action_migrate(self) -> None:
        cursor = self.table.cursor_vm
        if cursor is None:
            self.notify("No migration: no VM under the cursor.", severity="warning")
            return
        open_migration(self.app, self.context, cursor)

    def console_key_refusal(self) -> str | None:
        """Why ``c`` is dimmed: the VM under the cursor has no console to give now."""
        cursor = self.table.cursor_vm
        if cursor is None:
            return "no VM under the cursor"
        return self.context.console_refusal(cursor)

    def _one_marked_vm_of_each_kind(self) -> list[PlacedVm]:
        """The reasons depend on a VM's host and state only: one VM of each will do.

        Kept until the snapshot or the marks change: with 10,000 marked VMs, listing them
        takes 10 ms, and every key check (six at each footer redraw) would pay it.
        """
        key = (self.context.snapshot.generation, self.table.marked)
        if self._marked_kinds is None or self._marked_kinds[0] != key:
            kinds = {(p.pool, p.host, p.vm.state): p for p in self.table.marked_vms()}
            self._marked_kinds = (key, list(kinds.values()))
        return self._marked_kinds[1]

    def targets(self, action: VmAction) -> tuple[list[PlacedVm], int]:
        """The VMs an action would touch: the marked ones, else the one under the cursor.

        Returns the targets and how many marked VMs were skipped because their state or
        host rules the action out (forcing off a VM that is already off, say).
        """
        marked = self.table.marked
        if marked:
            candidates = [p for p in self.table.marked_vms() if p is not None]
        else:
            cursor = self.table.cursor_vm
            candidates = [cursor] if cursor is not None else []
        targets = [p for p in candidates if self.vm_refusal(p, action) is None]
        return targets, len(candidates) - len(targets)

    def action_vm(self, name: str) -> None:
        action = VmAction(name)
        if self.context.read_only:
            self.notify("Read-only mode: no action is allowed.", severity="warning")
            return
        targets, skipped = self.targets(action)
        if not targets:
            self.notify(self._nothing_to_do(action), severity="warning", markup=False)
            return
        confirm_and_run(
            self.app,
            self.context,
            targets,
            action,
            skipped=skipped,
            ran=self.table.clear_marks if len(targets) > 1 else None,
        )

    def _nothing_to_do(self, action: VmAction) -> str:
        verb = action.label.lower()
        if self.table.marked:
            return f"None of the marked VMs can {verb} in their current state."
        cursor = self.table.cursor_vm
        if cursor is None:
            return f"No VM to {verb}: the table is empty."
        refusal = self.vm_refusal(cursor, action)
        return f"{cursor.vm.name}: {refusal or f'cannot {verb} it now'}."

    def run_on_vm(self, uuid: str, action: VmAction) -> None:
        """From the command palette: act on one named VM, whatever is marked."""
        if not self.table.move_cursor_to(uuid):
            self.notify("That VM is not shown (filter or scope).", severity="warning")
            return
        cursor = self.table.cursor_vm
        refusal = None if cursor is None else self.vm_refusal(cursor, action)
        if cursor is not None and refusal is not None:
            # A dimmed entry: say why, and leave the marks for an action that can run.
            self.notify(f"{cursor.vm.name}: {refusal}.", severity="warning", markup=False)
            return
        self.table.clear_marks()
        self.action_vm(action.value)

    def open_vm(self, placed: PlacedVm) -> None:
        """The VM's own screen (enter on the table, or the palette)."""
        from ovmtui.screens.vm import VmScreen

        self.app.push_screen(VmScreen(self.context, placed))

    def shared_disk(self, placed: PlacedVm, attach: bool) -> None:
        """Attach or detach a shared disk (the palette; ``a``/``A`` on the VM's screen)."""
        self._disk_worker(placed, attach)

    @work(exclusive=True, group="shared-disk")
    async def _disk_worker(self, placed: PlacedVm, attach: bool) -> None:
        from ovmtui.screens.shared_disk import disk_flow

        await disk_flow(self.app, self.context, placed, attach=attach)

    def open_host(self, key: HostKey) -> None:
        if not self.estate_tree.select_host(key):
            self.notify(f"No host {key}.", severity="warning")

    def action_filter(self) -> None:
        box = self.filter_box
        box.display = True
        self.set_focus(box)

    def action_keep_filter(self) -> None:
        self.set_focus(self.table)

    def action_clear_filter(self) -> None:
        box = self.filter_box
        box.value = ""
        box.display = False
        self.table.set_filter("")
        self.set_focus(self.table)

    def action_sort_next(self) -> None:
        current = self.table.sort_column
        index = (_SORT_COLUMNS.index(current) + 1) % len(_SORT_COLUMNS)
        self.table.sort_by(_SORT_COLUMNS[index], reverse=False)

    def action_sort_reverse(self) -> None:
        self.table.sort_by(self.table.sort_column, reverse=not self.table.sort_reverse)

    def action_refresh(self) -> None:
        self.context.refresh_now()
        self.notify("Refreshing every host now.", timeout=2)

    def action_console(self) -> None:
        cursor = self.table.cursor_vm
        reason = self.console_key_refusal()
        if cursor is None or reason is not None:
            self.notify(f"No console: {reason}.", severity="warning", markup=False)
            return
        self.open_console(cursor)

    def open_console(self, placed: PlacedVm) -> None:
        """The VM's console screen (also from the palette)."""
        open_console(self.app, self.context, placed)

    def show_console(
        self, console: ConsoleSession, *, on_leave: Callable[[], None] | None = None
    ) -> None:
        show_console(self.app, self.context, console, on_leave=on_leave)

    def action_consoles(self) -> None:
        from ovmtui.screens.consoles import ConsolesScreen

        self.app.push_screen(ConsolesScreen(self.context))

    def action_imports(self) -> None:
        from ovmtui.screens.imports import ImportsScreen

        self.app.push_screen(ImportsScreen(self.context))

    def action_action_log(self) -> None:
        from ovmtui.screens.action_log import ActionLogScreen

        self.app.push_screen(ActionLogScreen(self.context))

    def action_journal(self) -> None:
        from ovmtui.screens.journal import JournalScreen

        self.app.push_screen(JournalScreen(self.context.journal_entries))

    def show_drift(self, drifted: Sequence[DriftedVm]) -> None:
        self.header.show_drift(len(drifted))

    def action_drift(self) -> None:
        from ovmtui.screens.drift import DriftScreen

        self.app.push_screen(DriftScreen(self.context))

    @work(exclusive=True, group="export-definitions")
    async def action_export_definitions(self) -> None:
        self.notify("Exporting every VM's definition…", timeout=3)
        try:
            result = await self.context.export_definitions()
        except OvmError as exc:
            self.notify(str(exc), title=exc.title, severity="error", markup=False)
            return
        problems = [*result.unreachable, *result.failures]
        text = f"{result.exported} definitions from {result.hosts} hosts in\n{result.path}"
        if problems:
            text += "\n" + "\n".join(str(p) for p in problems[:5])
            if len(problems) > 5:
                text += f"\n… and {len(problems) - 5} more (see the archive's manifest)"
        self.notify(
            text,
            title="Definitions exported"
            if result.complete
            else "Definitions exported, some missing",
            severity="information" if result.complete else "warning",
            timeout=10,
            markup=False,
        )

    def action_storage(self) -> None:
        """The storage of the pool in scope: the tree's pool, else the VM under the cursor's,
        else the first pool."""
        pool = self._scope.pool
        if pool is None:
            cursor = self.table.cursor_vm
            pool = cursor.pool if cursor is not None else None
        if pool is None:
            snapshot = self.context.snapshot
            pools = snapshot.pools or tuple(host.pool for host in snapshot.hosts)
            pool = pools[0] if pools else None
        if pool is None:
            self.notify("The estate has no pool.", severity="warning")
            return
        self.open_storage(pool)

    def open_storage(self, pool: str) -> None:
        """The storage screen of ``pool`` (also from the palette)."""
        from ovmtui.screens.storage import StorageScreen

        self.app.push_screen(StorageScreen(self.context, pool))

    def action_backups(self) -> None:
        from ovmtui.screens.backups import BackupsScreen

        self.app.push_screen(BackupsScreen(self.context))

    def action_focus_tree(self) -> None:
        self.estate_tree.focus()

    def action_focus_table(self) -> None:
        self.table.focus()
