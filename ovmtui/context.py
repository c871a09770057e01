"""What screens may ask of the app, without importing it."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Protocol

from textual.signal import Signal

from ovmtui.config import HostConfig, PoolConfig
from ovmtui.import_plan import ImportPlan
from ovmtui.model import EstateSnapshot, HostKey, MigrationProgress, PlacedVm, VmAction
from ovmtui.operations import Done
from ovmtui.services.actions import ActionResult
from ovmtui.services.connection_test import ConnectionTests
from ovmtui.services.consoles import ConsoleSession
from ovmtui.services.definitions import ExportResult
from ovmtui.services.disk_rules import SharedDisk
from ovmtui.services.estate_edits import EstateEditor
from ovmtui.services.flight_plan import EvacuationPlan
from ovmtui.services.host_restore import HostRestoreOutcome, HostRestorePlan, StepOutcome
from ovmtui.services.imports import Importing
from ovmtui.services.migration import FlightPlan, MigrationOutcome, Moving
from ovmtui.services.shared_disks import DiskPlan
from ovmtui.services.storage import StorageService
from ovmtui.store.backup import BackupInfo
from ovmtui.store.drift import DriftedVm
from ovmtui.store.journal import JournalEntry
from ovmtui.store.reconcile import ReconcileOutcome
from ovmtui.store.restore import RestoreOutcome, RestorePlan


class AppContext(Protocol):
    # Subscribed to by screens while mounted (subscribe in on_mount, unsubscribe in
    # on_unmount): the estate as each snapshot is published, the VMs in drift when that list
    # changes, each VM action's result, and the reason when the app turns read-only.
    estate_signal: Signal[EstateSnapshot]
    drift_signal: Signal[tuple[DriftedVm, ...]]
    action_signal: Signal[ActionResult]
    read_only_signal: Signal[str]
    # The migrations under way, each time one starts or ends.
    migration_signal: Signal[tuple[Moving, ...]]
    # The imports under way, each time one starts or ends.
    import_signal: Signal[tuple[Importing, ...]]

    @property
    def snapshot(self) -> EstateSnapshot: ...

    @property
    def estate_edits(self) -> EstateEditor:
        """The estate file's edits, on the record (pools, hosts, roles, promotions)."""
        ...

    @property
    def read_only(self) -> bool: ...

    @property
    def action_log(self) -> Sequence[ActionResult]: ...

    def clock(self) -> float: ...

    def command_for(self, placed: PlacedVm, action: VmAction) -> str: ...

    def refusal(self, placed: PlacedVm, action: VmAction) -> str | None:
        """Why the action cannot run on this VM, or None when it can."""
        ...

    def start_actions(self, targets: Sequence[PlacedVm], action: VmAction) -> None:
        """Run the action on the targets in the background (already confirmed)."""
        ...

    def refresh_now(self) -> None: ...

    async def journal_entries(self) -> Sequence[JournalEntry]:
        """The audit journal; raises OvmError when there is no repository."""
        ...

    @property
    def repository_identity(self) -> str | None:
        """The open repository's identity (whose backups are its own); None without one."""
        ...

    async def backups(self) -> Sequence[BackupInfo]:
        """Newest first, each inspected (verified or not, and why)."""
        ...

    async def back_up_now(self) -> Path: ...

    async def plan_restore(
        self, backup: Path, *, from_other_repository: bool = False
    ) -> RestorePlan:
        """Verifies the backup; raises RepositoryError when it is refused (ForeignBackup:
        it is not this repository's, and ``from_other_repository`` was not given)."""
        ...

    async def restore(self, plan: RestorePlan) -> RestoreOutcome:
        """Replace the repository and carry on with it; raises OvmError, nothing changed."""
        ...

    @property
    def drifted(self) -> Sequence[DriftedVm]:
        """VMs the repository records as active and no host reports (as last checked)."""
        ...

    async def reconcile(self, drifted: Sequence[DriftedVm]) -> ReconcileOutcome:
        """Back up, then forget these records; journaled. Raises OvmError when refused."""
        ...

    async def export_definitions(self) -> ExportResult:
        """Every VM's definition from every reachable host into one archive."""
        ...

    @property
    def consoles(self) -> tuple[ConsoleSession, ...]:
        """The consoles open now, oldest first."""
        ...

    def console_refusal(self, placed: PlacedVm) -> str | None:
        """Why the VM's console cannot be opened now, or None when it can be tried."""
        ...

    async def migration_plan(self, placed: PlacedVm, *, live: bool = True) -> FlightPlan:
        """Every other host of the VM's pool judged; raises ``OvmError`` when its host cannot
        migrate at all."""
        ...

    def migration_command(self, placed: PlacedVm, target: HostKey, *, live: bool = True) -> str: ...

    async def migrate(
        self,
        placed: PlacedVm,
        target: HostKey,
        *,
        live: bool = True,
        plan: FlightPlan | None = None,
        override: str | None = None,
        progress: Callable[[MigrationProgress], object] | None = None,
    ) -> MigrationOutcome:
        """The move, on the record; raises ``ActionRefused`` when refused before it starts."""
        ...

    async def evacuation_plan(self, host: HostKey) -> EvacuationPlan:
        """Every running VM of ``host`` placed on the others of its pool, or why not."""
        ...

    @property
    def connection_tests(self) -> ConnectionTests:
        """Connection tests (the host's `T`, and the add-host form before it saves)."""
        ...

    def host_config(self, host: HostKey) -> tuple[HostConfig, PoolConfig] | None:
        """The estate file's entry of a host and its pool (None: no longer in it)."""
        ...

    def restore_order(self, pool: str) -> tuple[HostKey, ...]:
        """The pool's hosts in the order a pool restore takes them: masters first."""
        ...

    async def restore_plan(self, host: HostKey, *, start: bool) -> HostRestorePlan:
        """What a restore of ``host`` would define, skip and refuse, and why."""
        ...

    async def restore_host(
        self, plan: HostRestorePlan, *, progress: Callable[[StepOutcome], object] | None = None
    ) -> HostRestoreOutcome:
        """Run ``plan`` (already confirmed): each define on the record, then confirmed."""
        ...

    def cancel_migration(self, uuid: str) -> bool:
        """Abort the VM's move under way; False when none is."""
        ...

    def ctrl_alt_del_command(self, placed: PlacedVm) -> str: ...

    def sysrq_command(self, placed: PlacedVm, key: str) -> str: ...

    def sysrq_refusal(self, placed: PlacedVm) -> str | None:
        """Why no SysRq key can be sent to the VM now, or None."""
        ...

    async def send_sysrq(self, placed: PlacedVm, key: str) -> str | None:
        """SysRq ``key`` on the record; returns why its result is not in the journal, or
        None; raises ``OvmError``."""
        ...

    def ctrl_alt_del_refusal(self, placed: PlacedVm) -> str | None:
        """Why Ctrl+Alt+Del cannot be sent to the VM's keyboard now, or None."""
        ...

    async def send_ctrl_alt_del(self, placed: PlacedVm) -> str | None:
        """Ctrl+Alt+Del on the record; returns why its result is not in the journal, or
        None; raises ``OvmError``."""
        ...

    def open_console(self, placed: PlacedVm, *, force: bool = False) -> ConsoleSession:
        """The VM's console, opened and running (the one already open, if any); raises
        ``ConsoleUnavailable`` when its host or state gives none. ``force`` takes it from
        another client where the host allows (libvirt); never the default."""
        ...

    @property
    def storage(self) -> StorageService:
        """The pools' storage and library (the storage screen)."""
        ...

    def shared_storage(self, pool: str) -> str | None:
        """The pool's shared storage as the estate file names it; None when not given."""
        ...

    async def vm_disk_sizes(self, placed: PlacedVm) -> Mapping[str, int | None]:
        """The VM's disks' sizes by target, as its host measures them (empty: unknown)."""
        ...

    async def vm_definition(self, placed: PlacedVm) -> str:
        """The VM's definition from its host (domain XML, ``vm.cfg``); raises OvmError
        when the host cannot give it (no capability, unreachable, or it failed)."""
        ...

    async def vm_journal(self, placed: PlacedVm) -> Sequence[JournalEntry]:
        """The VM's latest journal entries, oldest first; raises OvmError without a
        repository."""
        ...

    # -- shared disks (session.disks) ------------------------------------------------------

    async def shared_disks(self, pool: str) -> tuple[SharedDisk, ...]:
        """The pool's shared disks ovmtui knows, with their holders."""
        ...

    async def shared_disk(self, pool: str, name: str) -> SharedDisk:
        """The disk ``name`` of the pool's sharedDisk folder, with its holders."""
        ...

    def disk_hot_plug(self, placed: PlacedVm) -> str | None:
        """Why the VM's host cannot hot-plug a disk, or None when it can."""
        ...

    async def plan_disk(
        self, placed: PlacedVm, name: str, *, attach: bool, read_only: bool, live: bool
    ) -> DiskPlan:
        """The rules, then what the host would do; raises ``OvmError`` (``RuleRefused``)."""
        ...

    async def plan_disk_create(
        self, pool: str, name: str, size_bytes: int, *, allocate: bool, shareable: bool
    ) -> DiskPlan:
        """What the pool's utility host would run to make the disk; raises ``OvmError``."""
        ...

    async def plan_disk_delete(self, pool: str, name: str) -> DiskPlan:
        """The rules (``not-held``), then the utility host's command; raises ``OvmError``."""
        ...

    async def run_disk_plan(self, plan: DiskPlan) -> Done[str]: ...

    @property
    def imports(self) -> tuple[Importing, ...]:
        """The imports under way, oldest first, with their progress."""
        ...

    def import_pools(self) -> tuple[str, ...]:
        """The pools an import can go to (those with shared storage)."""
        ...

    def plan_import(
        self,
        url: str,
        kind: str,
        *,
        pool: str | None = None,
        name: str | None = None,
        sha256: str | None = None,
    ) -> tuple[str, ImportPlan]:
        """The pool and the plan of an import; raises ``BadImport`` (or ``ActionRefused``:
        the same resource is being imported) saying why not."""
        ...

    def start_import(self, pool: str, plan: ImportPlan) -> None:
        """Run the import in the background, a job; its end is told as a notice."""
        ...

    def cancel_import(self, import_id: int) -> bool:
        """Cancel an import under way; False when it is no longer running."""
        ...
