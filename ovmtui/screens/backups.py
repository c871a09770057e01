"""Backups of the repository: take one, see what each holds, restore one (confirmed)."""

from __future__ import annotations

from pathlib import Path

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Static

from ovmtui.context import AppContext
from ovmtui.errors import ForeignBackup, OvmError
from ovmtui.format import size, timestamp
from ovmtui.screens.dialogs import ConfirmDialog
from ovmtui.store.backup import BackupInfo
from ovmtui.store.restore import describe_plan


class BackupsScreen(Screen[None]):
    """Newest first; a backup that does not verify says why and cannot be restored."""

    BINDINGS = [
        Binding("escape,q", "app.pop_screen", "Back", id="backups-close"),
        Binding("b", "back_up", "Back up now", id="backups-create"),
        Binding("R", "restore", "Restore…", id="backups-restore"),
        Binding("ctrl+r", "reload", "Reload", id="backups-reload"),
    ]

    def __init__(self, context: AppContext) -> None:
        super().__init__()
        self.context = context
        self._infos: list[BackupInfo] = []

    def compose(self) -> ComposeResult:
        yield Static("Backups: loading…", id="backups-title")
        yield DataTable(id="backups", cursor_type="row", zebra_stripes=True)
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        table.add_columns(
            "taken", "of", "size", "schema", "hosts", "VMs", "journal", "verified", "file"
        )
        table.focus()
        self.action_reload()

    @work(exclusive=True, group="backups")
    async def action_reload(self) -> None:
        try:
            self._infos = list(await self.context.backups())
        except OvmError as exc:
            self.query_one("#backups-title", Static).update(f"Backups: {exc}")
            return
        self._show()

    def _show(self) -> None:
        table = self.query_one(DataTable)
        table.clear()
        identity = self.context.repository_identity
        for info in self._infos:
            table.add_row(
                timestamp(info.time),
                info.whose(identity),
                size(info.size_bytes),
                _show(info.schema_version),
                _show(info.hosts),
                _show(info.vms),
                _show(info.journal_records),
                "yes" if info.verified else f"NO: {info.problem}",
                Path(info.path).name,
                key=info.path,
            )
        count = len(self._infos)
        self.query_one("#backups-title", Static).update(
            f"Backups: {count} (b back up now, R restore the selected one)"
            if count
            else "Backups: none yet (b to take one now)"
        )

    @work(exclusive=True, group="backups-create")
    async def action_back_up(self) -> None:
        try:
            path = await self.context.back_up_now()
        except OvmError as exc:
            self.notify(str(exc), title=exc.title, severity="error", markup=False)
            return
        self.notify(f"Backed up to {path}", timeout=5, markup=False)
        self.action_reload()

    def _selected(self) -> BackupInfo | None:
        table = self.query_one(DataTable)
        if not self._infos or table.cursor_row < 0:
            return None
        return self._infos[min(table.cursor_row, len(self._infos) - 1)]

    @work(exclusive=True, group="backups-restore")
    async def action_restore(self) -> None:
        info = self._selected()
        if info is None:
            self.notify("No backup selected.", severity="warning")
            return
        if self.context.read_only:
            self.notify("Read-only mode: a restore is refused.", severity="warning")
            return
        try:
            plan = await self.context.plan_restore(Path(info.path))
        except ForeignBackup as exc:
            # Not this repository's: restored only when asked for in so many words.
            foreign = await self.app.push_screen_wait(
                ConfirmDialog(
                    "A backup of another repository",
                    [f"ovmtui restore {info.path} --from-other-repository"],
                    warning=f"{exc}\nRestore it all the same?",
                    confirm_label="It is what I want",
                )
            )
            if not foreign:
                return
            try:
                plan = await self.context.plan_restore(Path(info.path), from_other_repository=True)
            except OvmError as again:
                self.notify(str(again), title="Restore refused", severity="error", markup=False)
                return
        except OvmError as exc:
            self.notify(str(exc), title="Restore refused", severity="error", markup=False)
            return
        confirmed = await self.app.push_screen_wait(
            ConfirmDialog(
                "Restore the repository?",
                [f"ovmtui restore {info.path}"],
                warning=describe_plan(plan)
                + "\nThe current repository is backed up first; its journal lives on there.",
                confirm_label="Restore",
            )
        )
        if not confirmed:
            return
        try:
            outcome = await self.context.restore(plan)
        except OvmError as exc:
            self.notify(str(exc), title="Restore failed", severity="error", markup=False)
            return
        saved = f"\nThe previous one is saved as {outcome.previous}" if outcome.previous else ""
        self.notify(f"Restored {info.path}{saved}", title="Restored", timeout=10, markup=False)
        self.action_reload()


def _show(value: int | None) -> str:
    return "?" if value is None else str(value)
