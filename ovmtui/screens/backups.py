"""Backups of the repository: take one, see what each holds, restore one (confirmed)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from textual import work
from textual.binding import Binding

from ovmtui.context import AppContext
from ovmtui.errors import ForeignBackup, OvmError
from ovmtui.format import size, timestamp
from ovmtui.screens._list_screen import Cells, ListScreen
from ovmtui.screens.dialogs import ConfirmDialog
from ovmtui.store.backup import BackupInfo
from ovmtui.store.restore import describe_plan


class BackupsScreen(ListScreen[BackupInfo]):
    """Newest first; a backup that does not verify says why and cannot be restored."""

    BINDINGS = [
        Binding("escape,q", "app.pop_screen", "Back", id="backups-close"),
        Binding("b", "back_up", "Back up now", id="backups-create"),
        Binding("R", "restore", "Restore", id="backups-restore"),
        Binding("ctrl+r", "reload", "Reload", id="backups-reload"),
    ]
    TABLE_ID = "backups"
    COLUMNS = ("taken", "of", "size", "schema", "hosts", "VMs", "journal", "verified", "file")
    INITIAL_TITLE = "Backups: loading…"

    def __init__(self, context: AppContext) -> None:
        super().__init__()
        self.context = context

    def key_of(self, item: BackupInfo) -> str:
        return item.path

    def cells_of(self, item: BackupInfo) -> Cells:
        return (
            timestamp(item.time),
            # Whose it is can change under the screen: a restore adopts another identity.
            item.whose(self.context.repository_identity),
            size(item.size_bytes),
            _number(item.schema_version),
            _number(item.hosts),
            _number(item.vms),
            _number(item.journal_records),
            "yes" if item.verified else f"NO: {item.problem}",
            Path(item.path).name,
        )

    def title_of(self, items: Sequence[BackupInfo]) -> str:
        if not items:
            return "Backups: none yet (b to take one now)"
        return f"Backups: {len(items)} (b back up now, R restore the selected one)"

    def on_mount(self) -> None:
        self.action_reload()

    @work(exclusive=True, group="backups")
    async def action_reload(self) -> None:
        try:
            infos = await self.context.backups()
        except OvmError as exc:
            self.say(f"Backups: {exc}")
            return
        self.show(infos)

    @work(exclusive=True, group="backups-create")
    async def action_back_up(self) -> None:
        try:
            path = await self.context.back_up_now()
        except OvmError as exc:
            self.notify(str(exc), title=exc.title, severity="error", markup=False)
            return
        self.notify(f"Backed up to {path}", timeout=5, markup=False)
        self.action_reload()

    @work(exclusive=True, group="backups-restore")
    async def action_restore(self) -> None:
        info = self.selected
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


def _number(value: int | None) -> str:
    return "?" if value is None else str(value)
