"""The domain: immutable facts about pools, hosts and VMs.

Nothing here does I/O or knows a backend library. Every object is a frozen dataclass whose
collections are tuples, so snapshots can be shared between the poller, the store and the UI
without copies or locks. Units are in the field names; a value a host did not report is
``None``, never a guess.
"""

from __future__ import annotations

import enum
import posixpath
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import NamedTuple


class VmState(enum.StrEnum):
    RUNNING = "running"
    BLOCKED = "blocked"
    PAUSED = "paused"
    SHUTTING_DOWN = "shutting-down"
    SHUTOFF = "shutoff"
    CRASHED = "crashed"
    DYING = "dying"
    SUSPENDED = "suspended"
    UNKNOWN = "unknown"

    @property
    def is_active(self) -> bool:
        """The VM holds memory on its host (it counts towards committed memory)."""
        return self in _ACTIVE_STATES


_ACTIVE_STATES = frozenset(
    {
        VmState.RUNNING,
        VmState.BLOCKED,
        VmState.PAUSED,
        VmState.SHUTTING_DOWN,
        VmState.CRASHED,
        VmState.DYING,
        VmState.SUSPENDED,  # suspended to RAM still holds its memory
    }
)


class HostRole(enum.StrEnum):
    """The pool roles of Oracle VM."""

    MASTER = "master"
    UTILITY = "utility"
    VM = "vm"


class Capability(enum.StrEnum):
    """What a backend can do for a host; the UI hides or dims what is missing.

    Each is declared only by a backend that implements its Protocol
    (``ovmtui.backend.base.CAPABILITY_PROTOCOLS``); a contract test holds every backend to it.
    """

    START = "start"
    SHUTDOWN = "shutdown"
    REBOOT = "reboot"
    PAUSE = "pause"
    RESUME = "resume"
    FORCE_OFF = "force-off"
    EVENTS = "events"
    CONSOLE = "console"
    MIGRATE = "migrate"
    ATTACH_DISK = "attach-disk"
    # Reading a VM's definition (export) and defining a VM from one (import) are apart:
    # a host can give its vm.cfg files without ovmtui knowing how to register one there.
    DEFINITION = "definition"
    DEFINE = "define"
    # Keys sent to the guest's keyboard rather than its serial console: Ctrl+Alt+Del, which
    # no terminal can type into a console.
    SEND_KEYS = "send-keys"
    # Linux's Magic SysRq keys sent to the guest: what a serial BREAK is used for (BREAK then a
    # key), which no console transport here can carry itself.
    SYSRQ = "sysrq"
    # A pool's shared storage read (Oracle VM's layout) and its entries deleted through this
    # host: the storage screen, `ovmtui storage`, `ovmtui resource`.
    STORAGE_SCAN = "storage-scan"
    # Define again, from the repository's recorded definitions, a reinstalled host's
    # networks, storage pools and VMs (host restore): more than DEFINE, which is VMs only.
    RESTORE = "restore"


class VmAction(enum.StrEnum):
    START = "start"
    SHUTDOWN = "shutdown"
    REBOOT = "reboot"
    PAUSE = "pause"
    RESUME = "resume"
    FORCE_OFF = "force-off"

    @property
    def label(self) -> str:
        return _ACTION_TITLES[self]

    @property
    def capability(self) -> Capability:
        return Capability(self.value)

    @property
    def loses_guest_state(self) -> bool:
        """Pulling the plug (or an unclean reboot) can lose data inside the guest."""
        return self is VmAction.FORCE_OFF

    def applies_to(self, state: VmState) -> bool:
        """Whether the action makes sense for a VM in ``state`` (the host has the last word)."""
        return state in _ACTION_STATES[self]


_ACTION_TITLES = {
    VmAction.START: "Start",
    VmAction.SHUTDOWN: "Shut down",
    VmAction.REBOOT: "Reboot",
    VmAction.PAUSE: "Pause",
    VmAction.RESUME: "Resume",
    VmAction.FORCE_OFF: "Force off",
}

_ACTION_STATES: dict[VmAction, frozenset[VmState]] = {
    # Starting a suspended (to RAM) VM wakes it up. A crashed domain is still active for
    # libvirt: it must be forced off before it can start.
    VmAction.START: frozenset({VmState.SHUTOFF, VmState.SUSPENDED}),
    VmAction.SHUTDOWN: frozenset({VmState.RUNNING, VmState.BLOCKED, VmState.PAUSED}),
    VmAction.REBOOT: frozenset({VmState.RUNNING, VmState.BLOCKED}),
    VmAction.PAUSE: frozenset({VmState.RUNNING, VmState.BLOCKED}),
    VmAction.RESUME: frozenset({VmState.PAUSED}),
    VmAction.FORCE_OFF: frozenset(
        {
            VmState.RUNNING,
            VmState.BLOCKED,
            VmState.PAUSED,
            VmState.SHUTTING_DOWN,
            VmState.CRASHED,
            VmState.DYING,
            VmState.SUSPENDED,
            VmState.UNKNOWN,
        }
    ),
}


def action_refusal(
    placed: PlacedVm,
    action: VmAction,
    capabilities: frozenset[Capability],
    *,
    reachable: bool | None = None,
) -> str | None:
    """Why the VM's host or state rules ``action`` out, or None when it may be tried.

    The one statement of these rules: ``ActionService.check`` refuses with it (capabilities
    from the backend) and the dashboard dims keys and palette entries with it (from the
    snapshot, which also says whether the host answers). The state is as last polled, so
    the host still has the last word. The words name no VM, so that a key's reason reads
    the same for every VM in that state and the footer need not be redrawn between them.
    """
    verb = action.label.lower()
    if action.capability not in capabilities:
        return f"{placed.host} cannot {verb} VMs"
    if reachable is False:
        return f"{placed.host} does not answer"
    if not action.applies_to(placed.vm.state):
        return f"cannot {verb} a VM that is {placed.vm.state.value}"
    return None


# The Magic SysRq keys offered (Linux's meaning), and those that end or stop the guest's work
# at once, which are asked about first.
SYSRQ_KEYS: Mapping[str, str] = {
    "h": "help (lists the keys on the console)",
    "t": "list every task",
    "w": "list blocked tasks",
    "m": "show memory",
    "s": "sync every filesystem",
    "u": "remount every filesystem read-only",
    "e": "SIGTERM to every process but init",
    "i": "SIGKILL to every process but init",
    "b": "reboot at once, without syncing or unmounting",
    "o": "power off at once",
    "c": "crash the kernel (a dump, where kdump is set up)",
}
SYSRQ_DRASTIC = frozenset("eiboc")


# A guest has a console to attach to while it exists on its host with a console device
# behind it: running, idle, paused (attached, its output resumes with it), shutting down.
_CONSOLE_STATES = frozenset(
    {VmState.RUNNING, VmState.BLOCKED, VmState.PAUSED, VmState.SHUTTING_DOWN, VmState.SUSPENDED}
)


def console_refusal(
    placed: PlacedVm,
    capabilities: frozenset[Capability],
    *,
    reachable: bool | None = None,
    withheld: str | None = None,
) -> str | None:
    """Why the VM's console cannot be opened, or None when it may be tried (the rules of
    ``action_refusal``, for the console: the key, the palette and ``ovmtui console``).
    ``withheld``: the host's own reason for giving no consoles, when it says one."""
    if Capability.CONSOLE not in capabilities:
        return f"{placed.host}: {withheld}" if withheld else f"{placed.host} gives no consoles"
    if reachable is False:
        return f"{placed.host} does not answer"
    if placed.vm.state not in _CONSOLE_STATES:
        return f"no console: the VM is {placed.vm.state.value}"
    return None


@dataclass(frozen=True, slots=True)
class Disk:
    target: str  # guest device name: vda, xvda, hdc
    source: str | None  # file path, block device or volume; None for an empty cdrom
    device: str = "disk"  # disk | cdrom | floppy | lun
    read_only: bool = False
    shareable: bool = False
    # Only where the backend knows them: libvirt's <driver type=…> and <target bus=…>, xl's
    # format; the size only from a call that reports it. None is shown as unknown.
    format: str | None = None  # raw, qcow2, vhd …
    bus: str | None = None  # virtio, ide, scsi, xen …
    size_bytes: int | None = None


def on_shared_storage(source: str | None, shared_storage: str | None) -> bool | None:
    """Whether a disk's path lies under its pool's shared storage; None when that cannot be
    told (no path, a libvirt volume rather than a path, or no shared storage configured)."""
    if source is None or not shared_storage or not source.startswith("/"):
        return None
    root = posixpath.normpath(shared_storage)
    path = posixpath.normpath(source)
    return root == "/" or path == root or path.startswith(root + "/")


@dataclass(frozen=True, slots=True)
class Nic:
    mac: str | None
    network: str | None  # libvirt network or bridge name
    model: str | None = None


@dataclass(frozen=True, slots=True)
class Vm:
    """One VM as one host reported it at one moment."""

    uuid: str
    name: str
    state: VmState
    vcpus: int | None = None
    memory_mib: int | None = None  # memory the guest has now (balloon)
    max_memory_mib: int | None = None
    cpu_time_ns: int | None = None  # cumulative; CPU % is derived from two polls
    cpu_percent: float | None = None  # of its own vCPUs, from two polls: cpu_usage_percent()
    started_at: float | None = None  # epoch seconds, when known
    domain_id: int | None = None  # changes on every start and migration: never a key
    persistent: bool | None = None
    disks: tuple[Disk, ...] = ()
    nics: tuple[Nic, ...] = ()
    os_type: str | None = None  # hvm | xen (PV) | exe …
    config_path: str | None = None  # Xen: the vm.cfg that `xm create` starts it from


def uptime_s(vm: Vm, now: float) -> float | None:
    """How long the VM has run, when its host said when it started and it runs still."""
    if vm.started_at is None or not vm.state.is_active:
        return None
    return max(0.0, now - vm.started_at)


def vm_with_readings(
    vm: Vm,
    *,
    state: VmState,
    vcpus: int | None,
    memory_mib: int | None,
    cpu_time_ns: int | None,
    cpu_percent: float | None,
    started_at: float | None,
) -> Vm:
    """``vm`` with what a poll reads anew, the rest kept.

    Spelled out rather than ``dataclasses.replace`` (3.5 µs against 8): pollers do it for
    nearly every changed VM of every poll, on the event loop. A test checks that no field
    of Vm is left behind.
    """
    return Vm(
        uuid=vm.uuid,
        name=vm.name,
        state=state,
        vcpus=vcpus,
        memory_mib=memory_mib,
        max_memory_mib=vm.max_memory_mib,
        cpu_time_ns=cpu_time_ns,
        cpu_percent=cpu_percent,
        started_at=started_at,
        domain_id=vm.domain_id,
        persistent=vm.persistent,
        disks=vm.disks,
        nics=vm.nics,
        os_type=vm.os_type,
        config_path=vm.config_path,
    )


def cpu_usage_percent(
    before_ns: int | None, after_ns: int | None, vcpus: int | None, seconds: float
) -> float | None:
    """The share of its own vCPUs a VM used between two readings of its CPU-time counter
    taken ``seconds`` apart, to 0.1 %; None when the readings cannot tell (a counter
    missing or gone back, as after a restart; no vCPU count; no time between them).

    The one formula: the poller derives CPU % with it, and a backend that fills it in
    itself (Xen, between two of its own polls) gets the very value the poller would.
    """
    if before_ns is None or after_ns is None or not vcpus or seconds <= 0 or after_ns < before_ns:
        return None
    return round(min((after_ns - before_ns) / (seconds * 1e9 * vcpus) * 100.0, 100.0), 1)


@dataclass(frozen=True, slots=True)
class HostFacts:
    """What a host says about itself; mostly static between reconnects."""

    hostname: str | None = None
    cpu_model: str | None = None
    cpus: int | None = None  # logical CPUs
    sockets: int | None = None
    cores_per_socket: int | None = None
    threads_per_core: int | None = None
    mhz: int | None = None
    memory_mib: int | None = None
    free_memory_mib: int | None = None
    hypervisor: str | None = None  # QEMU, Xen, Test …
    hypervisor_version: str | None = None
    cpu_flags: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class MigrationNeeds:
    """What moving a VM needs of its target, as its source host describes it."""

    memory_mib: int | None
    # The guest's CPU in the hypervisor's own terms: libvirt's <cpu> element of the domain
    # (for compareHypervisorCPU on the target); Xen: the source's vendor, family/model and
    # flags from `xm/xl info`.
    cpu_definition: str | None = None
    # libvirt: how the guest is emulated, as its definition says (<domain type='qemu|kvm'>,
    # <os><type arch=...>). compareHypervisorCPU needs them: without them libvirt compares
    # with what KVM offers, and a plain QEMU (TCG) guest is then "incompatible" everywhere.
    virt_type: str | None = None
    arch: str | None = None
    cpu_vendor: str | None = None
    cpu_flags: tuple[str, ...] = ()
    disk_paths: tuple[str, ...] = ()  # every disk's source (files, devices, volumes)
    networks: tuple[str, ...] = ()  # every NIC's network or bridge
    # What ties the VM to its host, each in the operator's words: "PCI passthrough 0000:03:00.0",
    # "cdrom hdc: /root/local.iso (not on the pool's shared storage)".
    host_local: tuple[str, ...] = ()
    # Xen: the source's toolstack (xm, xl): xend and xl hosts cannot migrate to one another.
    toolstack: str | None = None


@dataclass(frozen=True, slots=True)
class TargetAnswers:
    """A candidate target's answers to a VM's ``MigrationNeeds``; None: it cannot tell."""

    cpu_compatible: bool | None = None
    cpu_detail: str | None = None  # what differs, or how it was compared
    paths_visible: Mapping[str, bool | None] = field(default_factory=dict)
    networks_present: Mapping[str, bool | None] = field(default_factory=dict)
    # Memory already promised to migrations into this host that it reports itself.
    incoming_mib: int = 0
    toolstack: str | None = None  # Xen: the target's (see MigrationNeeds.toolstack)


@dataclass(frozen=True, slots=True)
class MigrationProgress:
    """One reading of a migration in flight (libvirt's job statistics)."""

    elapsed_s: float
    processed_bytes: int | None = None
    remaining_bytes: int | None = None
    total_bytes: int | None = None
    bytes_per_s: float | None = None
    dirty_pages_per_s: float | None = None
    # A line the migrating tool printed (xl says "migration target: Ready to receive
    # domain.", "Saving to migration stream..."): shown as it is, never turned into numbers.
    note: str | None = None

    @property
    def fraction(self) -> float | None:
        """The share of memory sent, 0 to 1 (pre-copy rounds send some twice: an estimate)."""
        if self.total_bytes and self.remaining_bytes is not None:
            return max(0.0, min(1.0, 1 - self.remaining_bytes / self.total_bytes))
        return None

    @property
    def eta_s(self) -> float | None:
        if self.remaining_bytes is None or not self.bytes_per_s:
            return None
        return self.remaining_bytes / self.bytes_per_s


class DefinitionKind(enum.StrEnum):
    """What a recorded definition defines."""

    DOMAIN = "domain"
    NETWORK = "network"
    STORAGE_POOL = "storage-pool"


@dataclass(frozen=True, slots=True)
class Definition:
    """A definition as a host holds it now: a VM's persistent (inactive) domain XML, a
    network's or a storage pool's. Read by a poll only when it may have changed (first seen,
    or an event named it), so that keeping them costs nothing on an idle host."""

    kind: DefinitionKind
    uuid: str  # lower case
    name: str
    text: str
    sha256: str  # hex, of ``text`` encoded as UTF-8
    active: bool = False  # networks and storage pools: running when read


@dataclass(frozen=True, slots=True)
class HostPoll:
    """One successful poll of one host."""

    facts: HostFacts
    vms: tuple[Vm, ...]
    taken_at: float  # monotonic-free epoch seconds (time.time())
    # What the host printed that could not be read ("xm list -l, line 12: ..."): the rest
    # of the poll is good, and the operator must still see that something was left out.
    warnings: tuple[str, ...] = ()
    # Definitions read by this poll (see ``Definition``): empty when none may have changed.
    definitions: tuple[Definition, ...] = ()


@dataclass(frozen=True, slots=True)
class HostStatus:
    """Everything the estate knows about one host: its last good data and its last error."""

    pool: str
    name: str
    address: str  # the URI or ssh target, for display
    roles: tuple[HostRole, ...] = ()
    capabilities: frozenset[Capability] = frozenset()
    # Capabilities the backend implements but this host cannot give, with why (libvirt's
    # test driver has no consoles): the UI dims them with the reason.
    withheld: tuple[tuple[Capability, str], ...] = ()
    facts: HostFacts | None = None
    vms: tuple[Vm, ...] = ()
    taken_at: float | None = None  # time of the last good data, None if never polled
    reachable: bool | None = None  # None: not asked yet
    error: str | None = None  # the last failure, kept until a poll succeeds
    failed_at: float | None = None
    stale: bool = False  # data came from the repository, not from the host this run
    warnings: tuple[str, ...] = ()  # from the last good poll: output it could not read

    @property
    def key(self) -> HostKey:
        return HostKey(self.pool, self.name)

    def why_not(self, capability: Capability) -> str | None:
        """Why this host withholds ``capability``, when it says."""
        return next((why for withheld, why in self.withheld if withheld is capability), None)

    def age_s(self, now: float) -> float | None:
        return None if self.taken_at is None else max(0.0, now - self.taken_at)


@dataclass(frozen=True, slots=True, order=True)
class HostKey:
    pool: str
    name: str

    def __str__(self) -> str:
        return f"{self.pool}/{self.name}"


class PlacedVm(NamedTuple):
    """A VM together with where it runs: the row of every VM table.

    A named tuple rather than a frozen dataclass: as immutable, and built in less than
    half the time, which matters when a snapshot of 10,000 VMs is placed at once.
    """

    pool: str
    host: str
    vm: Vm

    @property
    def uuid(self) -> str:
        return self.vm.uuid

    @property
    def host_key(self) -> HostKey:
        return HostKey(self.pool, self.host)


@dataclass(frozen=True, slots=True)
class EstateDelta:
    """What changed since generation ``since``; lets the UI work in O(changes)."""

    since: int
    changed: tuple[PlacedVm, ...] = ()  # new or different VMs
    removed: tuple[str, ...] = ()  # UUIDs that left the estate
    hosts: tuple[HostKey, ...] = ()  # hosts whose status changed


@dataclass(frozen=True, slots=True)
class EstateSnapshot:
    """The whole estate at one moment. Immutable: the UI keeps it, the poller replaces it."""

    hosts: tuple[HostStatus, ...]
    generation: int = 0
    taken_at: float = 0.0
    delta: EstateDelta | None = None
    pools: tuple[str, ...] = field(default=())
    _index: dict[HostKey, HostStatus] = field(
        init=False, repr=False, compare=False, default_factory=dict
    )

    @classmethod
    def of_hosts(
        cls,
        by_key: Mapping[HostKey, HostStatus],
        *,
        generation: int,
        taken_at: float,
        delta: EstateDelta | None,
        pools: tuple[str, ...],
    ) -> EstateSnapshot:
        """The snapshot of ``by_key``'s hosts, in its order, with its index as it is (the
        poller keeps one: four times a second, making 200 host keys again cost 0.3 ms)."""
        snapshot = cls(tuple(by_key.values()), generation, taken_at, delta, pools)
        snapshot._index.update(by_key)
        return snapshot

    def host(self, key: HostKey) -> HostStatus | None:
        index = self._index
        if not index and self.hosts:
            index.update((host.key, host) for host in self.hosts)
        return index.get(key)

    def placed_vms(self) -> Iterator[PlacedVm]:
        for host in self.hosts:
            for vm in host.vms:
                yield PlacedVm(host.pool, host.name, vm)

    def find_vm(self, uuid: str) -> PlacedVm | None:
        for host in self.hosts:
            for vm in host.vms:
                if vm.uuid == uuid:
                    return PlacedVm(host.pool, host.name, vm)
        return None

    def totals(self) -> EstateTotals:
        return EstateTotals.of(self)


@dataclass(frozen=True, slots=True)
class EstateTotals:
    hosts_up: int
    hosts_down: int
    hosts_unknown: int
    vms_by_state: tuple[tuple[VmState, int], ...]
    memory_committed_mib: int  # memory of active VMs (last known where a host is down)
    memory_physical_mib: int  # physical memory of every host that reported it

    @property
    def vm_count(self) -> int:
        return sum(count for _, count in self.vms_by_state)

    @classmethod
    def of(cls, snapshot: EstateSnapshot) -> EstateTotals:
        return TotalsTally().totals(snapshot)


class TotalsTally:
    """Estate totals kept up to date in O(hosts + changed VMs) per snapshot.

    VM counts follow the snapshot's delta when it continues the last snapshot seen, and are
    counted afresh otherwise; host counts are cheap and counted every time.
    """

    def __init__(self) -> None:
        self._vms: dict[str, tuple[VmState, int]] = {}
        self._counts: dict[VmState, int] = {}
        self._committed_mib = 0
        self._generation: int | None = None

    def _put(self, vm: Vm) -> None:
        self._drop(vm.uuid)
        committed = (vm.memory_mib or 0) if vm.state.is_active else 0
        self._vms[vm.uuid] = (vm.state, committed)
        self._counts[vm.state] = self._counts.get(vm.state, 0) + 1
        self._committed_mib += committed

    def _drop(self, uuid: str) -> None:
        old = self._vms.pop(uuid, None)
        if old is not None:
            self._counts[old[0]] -= 1
            self._committed_mib -= old[1]

    def totals(self, snapshot: EstateSnapshot) -> EstateTotals:
        delta = snapshot.delta
        if delta is not None and delta.since == self._generation:
            for placed in delta.changed:
                self._put(placed.vm)
            for uuid in delta.removed:
                self._drop(uuid)
        else:
            vms: dict[str, tuple[VmState, int]] = {}
            for host in snapshot.hosts:
                for vm in host.vms:
                    active = vm.state in _ACTIVE_STATES
                    vms[vm.uuid] = (vm.state, (vm.memory_mib or 0) if active else 0)
            counts: dict[VmState, int] = {}
            for state, _ in vms.values():
                counts[state] = counts.get(state, 0) + 1
            self._vms, self._counts = vms, counts
            self._committed_mib = sum(mib for _, mib in vms.values())
        self._generation = snapshot.generation
        up = down = unknown = physical = 0
        for host in snapshot.hosts:
            if host.reachable is True:
                up += 1
            elif host.reachable is False:
                down += 1
            else:
                unknown += 1
            if host.facts is not None and host.facts.memory_mib is not None:
                physical += host.facts.memory_mib
        ordered = tuple(
            (state, self._counts[state]) for state in VmState if self._counts.get(state)
        )
        return EstateTotals(up, down, unknown, ordered, self._committed_mib, physical)
