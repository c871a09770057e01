"""The contract every backend keeps.

A backend manages one host. It returns domain objects from ``ovmtui.model`` only and raises
``ovmtui.errors.OvmError`` subclasses only: no libvirt or asyncssh object or exception leaves
``ovmtui/backend/``. Optional features are declared in ``capabilities`` (data, not
``isinstance`` checks) so the UI can hide or dim what a host cannot do. Each capability has
its Protocol (``CAPABILITY_PROTOCOLS``, at the end), and a backend declares a capability
exactly when it implements that Protocol: the contract test holds every backend to it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from types import MappingProxyType
from typing import Protocol, runtime_checkable

from ovmtui.errors import ActionRefused
from ovmtui.import_plan import Imported, ImportPlan
from ovmtui.import_progress import ImportProgress
from ovmtui.model import (
    Capability,
    Definition,
    DefinitionKind,
    Disk,
    HostKey,
    HostPoll,
    MigrationNeeds,
    MigrationProgress,
    TargetAnswers,
    Vm,
    VmAction,
)
from ovmtui.storage_model import StorageEntry, StorageScan

EventCallback = Callable[[str | None], None]
"""Called on the asyncio loop when the host reports a change.

The argument is the UUID of the VM concerned, or ``None`` for a host-level event (the
connection closed, for instance). The poller treats it as "poll this host soon".
"""


@runtime_checkable
class Backend(Protocol):
    """One host, one connection."""

    @property
    def host(self) -> HostKey: ...

    @property
    def address(self) -> str:
        """What the operator wrote to reach the host (URI or ssh target), for display."""
        ...

    @property
    def capabilities(self) -> frozenset[Capability]: ...

    async def connect(self) -> None:
        """Open the connection (idempotent). Raises ``HostUnreachable``."""
        ...

    async def poll(self) -> HostPoll:
        """Everything the host says now: its facts and all its VMs.

        Connects first if needed; raises ``HostUnreachable`` (or a subclass) when the host
        cannot be asked, after which the next ``poll`` reconnects.
        """
        ...

    async def act(self, vm: Vm, action: VmAction) -> None:
        """Run a lifecycle action. Raises ``ActionFailed`` with the host's own words."""
        ...

    def command_for(self, vm: Vm, action: VmAction) -> str:
        """The equivalent shell command (``virsh …`` or ``xm …``), every argument quoted."""
        ...

    def set_event_callback(self, callback: EventCallback | None) -> None:
        """Where to report host events; backends without events never call it."""
        ...

    async def close(self) -> None:
        """Close the connection and release the worker thread; never raises."""
        ...


@runtime_checkable
class DefinitionSource(Protocol):
    """Capability ``DEFINITION``: the VM's own definition (domain XML, ``vm.cfg``), what an
    export of definitions reads."""

    async def definition(self, vm: Vm) -> str: ...


@runtime_checkable
class DefinitionSink(Protocol):
    """Capability ``DEFINE``: register a VM from a definition, what an import does."""

    async def define(self, definition: str) -> str:
        """Define (register, not start) a VM from a definition ``definition()`` returned.

        Returns the defined VM's UUID. Raises ``ActionFailed`` with the host's own words
        when the host refuses it (a name or UUID already in use, a malformed definition).
        """
        ...


@runtime_checkable
class DefinitionRestorer(Protocol):
    """Capability ``RESTORE``: define again what the repository recorded of a host (its
    networks, storage pools and VMs), and start it, as a host restore does."""

    def restore_command(self, kind: DefinitionKind, name: str, *, start: bool) -> str:
        """The equivalent shell command (``virsh net-define NAME.xml``…), every argument
        quoted: what the journal records."""
        ...

    async def current_definitions(self) -> tuple[Definition, ...]:
        """Every persistent network, storage pool and VM the host defines now, read afresh
        (what a restore plan compares against). Raises ``HostUnreachable``."""
        ...

    async def restore_definition(self, kind: DefinitionKind, text: str) -> str:
        """Define (persistently, not start) a network, storage pool or VM from ``text``;
        returns its UUID. Raises ``ActionFailed`` with the host's words."""
        ...

    async def start_defined(self, kind: DefinitionKind, uuid: str) -> None:
        """Start what ``restore_definition`` defined. Raises ``ActionFailed``."""
        ...


@runtime_checkable
class KeepsDefinitions(Protocol):
    """A backend whose polls can hand over the definitions they read (``HostPoll.definitions``)
    for the repository to keep: not a capability (nothing to offer the operator), a cost."""

    def keep_definitions(self, keep: bool) -> None:
        """Whether polls read definitions: on while a repository records them, off otherwise
        (they then cost nothing). Turned on, even again (a repository opened or restored),
        the next poll reads them all: the repository may hold none of what was read."""
        ...


@runtime_checkable
class Withholding(Protocol):
    """A backend that implements a capability its host cannot give, and says why.

    libvirt's console works over any libvirt driver but the test driver, which has no
    ``openConsole``: a libvirt backend on it withholds ``CONSOLE``. What is withheld is
    implemented but not declared (``capabilities`` leaves it out), so the UI can dim the
    action with the reason instead of hiding it without one.
    """

    @property
    def withheld(self) -> Mapping[Capability, str]:
        """Each capability withheld, with the reason in the operator's words."""
        ...


def withheld(backend: object) -> Mapping[Capability, str]:
    """What ``backend`` withholds from its host (see ``Withholding``), usually nothing."""
    return backend.withheld if isinstance(backend, Withholding) else MappingProxyType({})


class ChannelsBusy(ActionRefused):
    """A host already runs as many long-lived channels as its connection takes."""

    title = "Too many open channels"


@runtime_checkable
class LongChannel(Protocol):
    """A byte stream to one command on a host that may run for hours: a serial console, a
    migration, a download.

    No timeout applies: it ends when the command ends (``read`` returns ``b""``), when
    ``close`` is called, or when the context that opened it is left, by a cancel too. The
    command then sees its input end (and a hang-up, on a terminal). Its standard error
    comes in the same stream, as a terminal shows it.
    """

    @property
    def exit_status(self) -> int | None:
        """The command's exit status once it ended by itself; ``None`` before, or when a
        signal or a close ended it."""
        ...

    async def read(self, max_bytes: int = 65536) -> bytes:
        """Up to ``max_bytes`` as they come; ``b""`` once the command ended or was closed.

        Raises ``HostUnreachable`` when the connection is lost.
        """
        ...

    async def write(self, data: bytes) -> None:
        """Send to the command's input (keys, on a terminal); waits while the host is slow
        to take it. Raises ``HostUnreachable`` once the channel or connection is gone."""
        ...

    def write_eof(self) -> None:
        """End the command's input (a terminal has none to end: use ``close``)."""
        ...

    def resize(self, columns: int, rows: int) -> None:
        """Tell the command's terminal its new size; nothing without a terminal."""
        ...

    async def close(self) -> None:
        """End the channel (idempotent, never raises)."""
        ...


@runtime_checkable
class LongChannelOpener(Protocol):
    """A backend that runs long-lived commands on its host beside its polls, with a budget
    of their own: they never take a poll's place, nor a poll's timeout."""

    def long_channel(
        self,
        argv: Sequence[str],
        *,
        term_type: str | None = None,
        term_size: tuple[int, int] | None = None,
    ) -> AbstractAsyncContextManager[LongChannel]:
        """Run ``argv`` (each argument quoted) until it ends or the context is left.

        ``term_type`` asks for a terminal (a PTY) of ``term_size`` (columns, rows). Raises
        ``ChannelsBusy`` at once, never waits, when the host's budget is used up.
        """
        ...


@dataclass(frozen=True, slots=True)
class CommandOutput:
    """What one command run on a host returned (``CommandRunner.run_command``)."""

    exit_status: int | None  # None: ended by a signal
    stdout: bytes
    stderr: bytes

    @property
    def text(self) -> str:
        """The output decoded (file names that are not UTF-8 come out as U+FFFD)."""
        return self.stdout.decode(errors="replace")

    @property
    def error_text(self) -> str:
        return self.stderr.decode(errors="replace")


@runtime_checkable
class CommandRunner(Protocol):
    """A backend that runs a short command on its host over its open connection (Xen over
    SSH): the file work of a pool's utility host (listings, shared disks, imports)."""

    async def run_command(
        self,
        argv: Sequence[str],
        *,
        timeout: float,  # noqa: ASYNC109 - the name every helper's callers use
        label: str,
        input: bytes | None = None,
    ) -> CommandOutput:
        """Run ``argv`` (each argument quoted with ``shlex.join``, never interpolated), with
        ``input`` on its standard input, and wait up to ``timeout`` seconds for it to end. A
        failing command is no error: its exit status says so. Raises ``HostUnreachable`` /
        ``HostTimeout`` (``label`` names the command in their message) when the host cannot
        be asked."""
        ...


@runtime_checkable
class HostShell(CommandRunner, Protocol):
    """A host whose shell ovmtui can reach (Xen over SSH): what the connection test probes
    with (storage, the pool's marker, ovs-agent, the clock), through ``run_command``. Not a
    capability: no action of the UI depends on it."""

    async def connect(self) -> None: ...

    async def close(self) -> None: ...


@runtime_checkable
class VolumeImporter(Protocol):
    """A backend whose host cannot fetch a URL itself (libvirt): ovmtui fetches it and
    streams it into a new volume of the pool's storage. Not a capability: a means."""

    async def import_volume(
        self,
        pool: str,
        plan: ImportPlan,
        *,
        progress: Callable[[ImportProgress], None] | None = None,
    ) -> Imported:
        """Run ``plan`` (a flat plan: a file straight in its kind's folder) to its end;
        raises ``ImportFailed``, ``ActionRefused``, ``HostUnreachable``. A cancel leaves no
        volume behind."""
        ...


# -- capabilities ----------------------------------------------------------------------------
# One Protocol a capability. Those of features not built yet (migration, disk attachment)
# say what a backend must offer before it may declare them; none does today.


@runtime_checkable
class PowerControl(Protocol):
    """Capabilities ``START`` … ``FORCE_OFF``: the lifecycle actions.

    All six go through ``act``, so one Protocol serves them all: a backend that implements
    it declares every lifecycle action.
    """

    async def act(self, vm: Vm, action: VmAction) -> None: ...

    def command_for(self, vm: Vm, action: VmAction) -> str: ...


@runtime_checkable
class EventSource(Protocol):
    """Capability ``EVENTS``: the host reports changes as they happen, so the poller is told
    at once instead of at its next round.

    Every backend accepts a callback (``Backend.set_event_callback``); one that never calls
    it (its method does nothing) does not implement this.
    """

    def set_event_callback(self, callback: EventCallback | None) -> None: ...


@runtime_checkable
class ConsoleChannel(LongChannel, Protocol):
    """A VM's serial console: a long channel that can say why it ended."""

    @property
    def end_reason(self) -> str | None:
        """Why the console ended, in the transport's words, once ``read`` has returned
        ``b""`` ("the guest shut off", "another client took the console"); ``None`` while it
        is open or when the transport cannot tell (the caller then asks the poller)."""
        ...


@runtime_checkable
class ConsoleTransport(Protocol):
    """Capability ``CONSOLE``: the VM's serial console as a byte stream (libvirt's
    ``openConsole`` stream, or ``xm/xl console`` in a PTY over SSH)."""

    def console(
        self, vm: Vm, *, term_type: str, term_size: tuple[int, int], force: bool = False
    ) -> AbstractAsyncContextManager[ConsoleChannel]:
        """The console until the context is left, with no timeout (a long-lived channel).

        Entered once the console is attached, as well as the transport can tell: what is
        written from then on reaches the guest (``xm console`` and ``virsh console`` drop
        keys typed before they attach). ``force`` takes the console from another client
        where the host allows it (libvirt); never the default.

        Raises ``ChannelsBusy`` at once when the host runs as many long channels as it may;
        ``ConsoleUnavailable`` when the VM has no console to give (not running, unknown to
        the host, taken by another client without ``force``), with the host's reason.
        """
        ...

    def console_command(self, vm: Vm) -> str:
        """The equivalent shell command, for the status line and the audit journal
        (``xm console 12``, ``virsh console web01``), its arguments quoted."""
        ...


@runtime_checkable
class Migrator(Protocol):
    """Capability ``MIGRATE``: move a VM to another host of its pool, and say up front what
    the move needs (the facts the flight plan's checks weigh, ``services/migration``).

    ``target`` is the destination host's backend, of the same kind as this one (a libvirt
    migration opens no connection of its own: it uses the target's; a Xen one names the
    target's address to ``xm/xl migrate``)."""

    def migration_command(self, vm: Vm, target: Backend, *, live: bool) -> str:
        """The equivalent shell command, shown before it runs, every argument quoted."""
        ...

    async def migration_needs(self, vm: Vm) -> MigrationNeeds:
        """What moving ``vm`` needs of a target: its memory, its CPU as the host describes it,
        the paths of its disks and the networks or bridges of its NICs, and what ties it to
        this host (a passthrough device, a local ISO). Asked of the source."""
        ...

    async def can_host(self, needs: MigrationNeeds) -> TargetAnswers:
        """This host's answers to ``needs``, asked of each candidate target: CPU
        compatibility, which paths it sees, which networks it has. An answer it cannot give
        is ``None`` (shown as unknown, never as passed)."""
        ...

    async def migrate(
        self,
        vm: Vm,
        target: Backend,
        *,
        live: bool,
        progress: Callable[[MigrationProgress], None] | None = None,
    ) -> None:
        """Run the migration to its end, reporting progress where the host measures it
        (libvirt job statistics; ``xm/xl migrate`` report none: no call then).

        Raises ``ActionFailed`` with the host's own words. Cancelling aborts it where the
        host can (libvirt ``abortJob``: the VM keeps running on the source)."""
        ...


@runtime_checkable
class DiskSizer(Protocol):
    """A backend that can say how big a VM's disks are (the VM screen, ``ovmtui show``):
    not a capability, only facts, shown as unknown where a backend cannot tell."""

    async def disk_sizes(self, vm: Vm) -> Mapping[str, int | None]:
        """Each disk's virtual size in bytes by its target (``vda``, ``xvda``); None for
        one the host could not measure. Raises ``HostUnreachable`` like a poll."""
        ...


@runtime_checkable
class KeySender(Protocol):
    """Capability ``SEND_KEYS``: keys pressed on the guest's keyboard (not its console)."""

    def ctrl_alt_del_command(self, vm: Vm) -> str:
        """The equivalent shell command, shown before it runs, every argument quoted."""
        ...

    async def send_ctrl_alt_del(self, vm: Vm) -> None:
        """Press Ctrl+Alt+Del on the guest's keyboard (most guests reboot, some at once).
        Raises ``ActionFailed`` with the host's words, ``VmNotFound``."""
        ...


@runtime_checkable
class SysRqSender(Protocol):
    """Capability ``SYSRQ``: a Magic SysRq key for the guest's kernel (``model.SYSRQ_KEYS``),
    what an operator sends a serial BREAK for."""

    def sysrq_command(self, vm: Vm, key: str) -> str:
        """The equivalent shell command, shown before it runs, every argument quoted."""
        ...

    async def send_sysrq(self, vm: Vm, key: str) -> None:
        """Send SysRq ``key`` (one of ``model.SYSRQ_KEYS``). Raises ``ActionFailed`` with the
        host's words, ``VmNotFound``."""
        ...


@dataclass(frozen=True, slots=True)
class DiskChange:
    """An attach or detach planned by a backend, shown before it runs: the equivalent
    command, and for a Xen ``vm.cfg`` the file before and after (the diff the operator
    reads). Handed back to ``apply_disk_change`` unchanged: a ``vm.cfg`` that changed
    since is refused rather than overwritten."""

    vm: Vm
    disk: Disk
    attach: bool
    live: bool
    command: str
    config_path: str | None = None
    before: str | None = None
    after: str | None = None


@runtime_checkable
class DiskAttacher(Protocol):
    """Capability ``ATTACH_DISK``: a disk of the pool's shared storage attached to a VM and
    detached again, to its persistent definition (a powered-off VM's ``vm.cfg``, libvirt's
    config) and, for a hot-plug, to the running guest too."""

    @property
    def hot_plug(self) -> str | None:
        """Why this host cannot hot-plug a disk into a running VM, or None when it can."""
        ...

    async def plan_disk_change(self, vm: Vm, disk: Disk, *, attach: bool, live: bool) -> DiskChange:
        """What attaching (``attach``) or detaching ``disk`` (its ``target``, ``source``,
        ``read_only``, ``shareable``) would do, read from the host, nothing changed. Raises
        ``ActionRefused`` when the VM's definition cannot be edited (a vm.cfg that does not
        parse), ``HostUnreachable``."""
        ...

    async def apply_disk_change(self, change: DiskChange) -> str:
        """Do it; returns what was done, in a line (the backup ``vm.cfg`` kept). Raises
        ``ActionFailed`` with the host's words, ``ActionRefused`` when the definition
        changed since the plan."""
        ...


@runtime_checkable
class DiskStorage(Protocol):
    """A backend that creates and deletes the files of the pool's ``sharedDisk`` folder
    (over SSH with coreutils, or libvirt's storage volumes). Never overwrites a file."""

    def create_disk_command(self, path: str, size_bytes: int, *, allocate: bool) -> str:
        """The equivalent shell command, every argument quoted."""
        ...

    async def create_disk(self, path: str, size_bytes: int, *, allocate: bool) -> str:
        """Create the raw file ``path`` of ``size_bytes``, sparse or ``allocate``d; returns
        how (the tool used). Raises ``ActionFailed`` (it exists, no space), nothing left
        behind."""
        ...

    def delete_disk_command(self, path: str) -> str: ...

    async def delete_disk(self, path: str) -> None: ...


@runtime_checkable
class StorageLister(Protocol):
    """Capability ``STORAGE_SCAN``: a pool's shared storage read through this host (Oracle
    VM's layout: ``running_pool``, ``seed_pool``, ``iso_pool``, ``sharedDisk``,
    ``publish_pool``), at most one command or storage-pool listing per folder, and an entry
    of it deleted."""

    def storage_command(self, root: str) -> str:
        """What the listing runs, for the screen's header and the journal."""
        ...

    async def list_storage(self, pool: str, root: str) -> StorageScan:
        """The layout's entries under ``root`` (the pool's shared storage). Raises
        ``ActionFailed`` when the host cannot read it, ``ParseError`` on output it cannot
        read, ``HostUnreachable`` like a poll."""
        ...

    async def read_storage_file(self, path: str, max_bytes: int) -> bytes | None:
        """Up to ``max_bytes`` of a file of the storage (a template's vm.cfg); None when
        this host cannot read files (libvirt's storage API lists volumes, reads none)."""
        ...

    def delete_command(self, pool: str, entry: StorageEntry) -> str:
        """The equivalent shell command, shown before it runs."""
        ...

    async def delete_entry(self, pool: str, root: str, entry: StorageEntry) -> None:
        """Remove the entry (a file, or a folder and what it holds). Raises ``ActionRefused``
        for a path outside the layout's folders, ``ActionFailed`` with the host's words."""
        ...


@runtime_checkable
class StoragePoolDefiner(Protocol):
    """A ``StorageLister`` that reads the storage through storage pools it must define first
    (libvirt: a ``dir`` pool per folder). Defining them is a change: the storage service
    journals it before it runs, and read-only mode lists only what is defined already."""

    async def storage_pools_missing(self, pool: str) -> list[str]:
        """The layout's folders without an active storage pool on this host."""
        ...

    def define_storage_pools_command(self, pool: str, root: str, folders: list[str]) -> str:
        """The equivalent shell commands, shown and journaled."""
        ...

    async def define_storage_pools(self, pool: str, root: str, folders: list[str]) -> list[str]:
        """Define and start them; returns the folders that could not be started, with why."""
        ...


CAPABILITY_PROTOCOLS: Mapping[Capability, type] = MappingProxyType(
    {
        Capability.START: PowerControl,
        Capability.SHUTDOWN: PowerControl,
        Capability.REBOOT: PowerControl,
        Capability.PAUSE: PowerControl,
        Capability.RESUME: PowerControl,
        Capability.FORCE_OFF: PowerControl,
        Capability.EVENTS: EventSource,
        Capability.DEFINITION: DefinitionSource,
        Capability.DEFINE: DefinitionSink,
        Capability.CONSOLE: ConsoleTransport,
        Capability.MIGRATE: Migrator,
        Capability.ATTACH_DISK: DiskAttacher,
        Capability.SEND_KEYS: KeySender,
        Capability.SYSRQ: SysRqSender,
        Capability.STORAGE_SCAN: StorageLister,
        Capability.RESTORE: DefinitionRestorer,
    }
)
"""The Protocol a backend implements to declare each capability (every capability has one)."""
