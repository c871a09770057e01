"""The libvirt backend: any libvirt URI (``qemu+ssh://``, ``qemu+tcp://``, ``xen+ssh://``, ``test://``).

This module and its parts (``libvirt_console.py``, ``libvirt_migrate.py``,
``libvirt_answers.py``, ``libvirt_errors.py``, ``libvirt_import.py``) are the only ones of
ovmtui that import ``libvirt``. Nothing of libvirt leaves them: callers get ``ovmtui.model``
objects and ``ovmtui.errors`` exceptions.

Threading model. libvirt calls block (an RPC over SSH can take seconds) but release the GIL,
so each connection owns ONE worker thread and every libvirt call runs there, one at a time,
bounded by ``call_timeout_s``. libvirt's own event thread delivers lifecycle and close
callbacks; they do nothing but hop onto the asyncio loop with ``call_soon_threadsafe``, so
the backend's state is only touched on the loop thread, except what a session's worker alone
uses. A poll does all its per-domain work on the worker and hands the loop finished VMs;
that Python work takes one worker at a time (``_python_turn``), so that a hundred hosts
polled at once do not keep the loop waiting for the GIL.

Polling cost. One ``getAllDomainStats`` per poll answers the dynamic part of every domain.
The static part (disks, NICs, memory sizes) comes from ``XMLDesc`` once per domain and is
cached until a lifecycle or device event names that domain. The cache belongs to one
connection: events missed while disconnected cannot invalidate it, so a reconnect starts
from an empty cache.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import dataclasses
import hashlib
import shlex
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import parse_qsl, urlsplit, urlunsplit

import libvirt

from ovmtui.backend import libvirt_disks, libvirt_import, libvirt_storage, libvirt_template
from ovmtui.backend._worker import DaemonWorker
from ovmtui.backend.base import Backend, ConsoleChannel, DiskChange, EventCallback
from ovmtui.backend.libvirt_answers import answer_needs
from ovmtui.backend.libvirt_console import LibvirtConsole
from ovmtui.backend.libvirt_definitions import (
    define_in,
    definition_of,
    deregister_infrastructure_events,
    persistent_domain_xml,
    read_all,
    read_infrastructure,
    register_infrastructure_events,
    restore_command,
    start_in,
)
from ovmtui.backend.libvirt_errors import code as _code
from ovmtui.backend.libvirt_errors import is_connection_error as _is_connection_error
from ovmtui.backend.libvirt_errors import message as _message
from ovmtui.backend.libvirt_migrate import migration_argv, read_needs, run_migration
from ovmtui.backend.libvirt_xml import DomainStatic, host_cpu, parse_domain_xml
from ovmtui.backend.pacing import waiting, working
from ovmtui.errors import (
    ActionFailed,
    ActionRefused,
    ConsoleUnavailable,
    HostTimeout,
    HostUnreachable,
    ParseError,
    VmNotFound,
)
from ovmtui.import_plan import Imported, ImportFailed, ImportPlan
from ovmtui.import_progress import ImportProgress, Phase, RateMeter
from ovmtui.model import (
    SYSRQ_KEYS,
    Capability,
    Definition,
    DefinitionKind,
    Disk,
    HostFacts,
    HostKey,
    HostPoll,
    MigrationNeeds,
    MigrationProgress,
    TargetAnswers,
    Vm,
    VmAction,
    VmState,
)
from ovmtui.storage_model import StorageEntry, StorageScan

if TYPE_CHECKING:
    from ovmtui.backend.url_fetch import Download

__all__ = [
    "DomainStatic",
    "LibvirtBackend",
    "parse_domain_xml",
    "vm_from_stats",
]

_T = TypeVar("_T")

# What this module implements, whatever the driver. What a driver cannot give is withheld from it
# (``LibvirtBackend.withheld``): the test driver has no consoles and no migration.
_CAPABILITIES = frozenset(
    {
        Capability.ATTACH_DISK,
        Capability.START,
        Capability.SHUTDOWN,
        Capability.REBOOT,
        Capability.PAUSE,
        Capability.RESUME,
        Capability.FORCE_OFF,
        Capability.EVENTS,
        Capability.DEFINITION,
        Capability.DEFINE,
        Capability.CONSOLE,
        Capability.MIGRATE,
        Capability.SEND_KEYS,
        Capability.SYSRQ,
        Capability.STORAGE_SCAN,
        Capability.RESTORE,
    }
)
# Linux input key codes (VIR_KEYCODE_SET_LINUX) of Ctrl+Alt+Del, and how long they are held.
_CTRL_ALT_DEL = (29, 56, 111)  # KEY_LEFTCTRL, KEY_LEFTALT, KEY_DELETE
_KEY_HOLD_MS = 100
# An import's stream is fed 1 MiB a worker call (each call also waits its turn behind the
# polls' calls), its progress reported twice a second at most.
UPLOAD_CHUNK = 1024 * 1024
UPLOAD_REPORT_S = 0.5
# Alt+SysRq+key: KEY_LEFTALT, KEY_SYSRQ, then the key's own Linux code.
_SYSRQ_PREFIX = (56, 99)
_LETTER_CODES = {
    "b": 48, "c": 46, "e": 18, "h": 35, "i": 23, "m": 50,
    "o": 24, "s": 31, "t": 20, "u": 22, "w": 17,
}  # fmt: skip

_TEST_DRIVER_WITHHOLDS: Mapping[Capability, str] = MappingProxyType(
    {
        Capability.CONSOLE: "libvirt's test driver has no consoles (no openConsole)",
        Capability.MIGRATE: "libvirt's test driver has no migration (no migrate3, no jobStats)",
        Capability.ATTACH_DISK: "libvirt's test driver cannot attach or detach devices",
    }
)

# Once a console stream ended: how long its guest may still look active. QEMU closes the
# console as it exits, and the EOF comes before libvirt marks the domain shut off (on the
# lab, once in every destroy).
_CONSOLE_END_SETTLE_S = 5.0
_CONSOLE_END_STEP_S = 0.2

_SHUTOFF_REASONS: dict[int, str] = {
    libvirt.VIR_DOMAIN_SHUTOFF_SHUTDOWN: "the guest shut off (it shut down)",
    libvirt.VIR_DOMAIN_SHUTOFF_DESTROYED: "the guest shut off (forced off)",
    libvirt.VIR_DOMAIN_SHUTOFF_CRASHED: "the guest shut off (it crashed)",
    libvirt.VIR_DOMAIN_SHUTOFF_MIGRATED: "the guest migrated to another host",
    libvirt.VIR_DOMAIN_SHUTOFF_SAVED: "the guest shut off (saved to a file)",
    libvirt.VIR_DOMAIN_SHUTOFF_FAILED: "the guest shut off (it failed to start)",
}
_TAKEN_OVER = (
    "another client took the console (`virsh console --force` or another ovmtui: libvirt "
    "ends the console it held, this one)"
)

_STATES: dict[int, VmState] = {
    libvirt.VIR_DOMAIN_NOSTATE: VmState.UNKNOWN,
    libvirt.VIR_DOMAIN_RUNNING: VmState.RUNNING,
    libvirt.VIR_DOMAIN_BLOCKED: VmState.BLOCKED,
    libvirt.VIR_DOMAIN_PAUSED: VmState.PAUSED,
    libvirt.VIR_DOMAIN_SHUTDOWN: VmState.SHUTTING_DOWN,
    libvirt.VIR_DOMAIN_SHUTOFF: VmState.SHUTOFF,
    libvirt.VIR_DOMAIN_CRASHED: VmState.CRASHED,
    libvirt.VIR_DOMAIN_PMSUSPENDED: VmState.SUSPENDED,
}

_SHUTOFF: int = libvirt.VIR_DOMAIN_SHUTOFF

_STATS_GROUPS = (
    libvirt.VIR_DOMAIN_STATS_STATE
    | libvirt.VIR_DOMAIN_STATS_CPU_TOTAL
    | libvirt.VIR_DOMAIN_STATS_BALLOON
    | libvirt.VIR_DOMAIN_STATS_VCPU
)

_CLOSE_WAIT_S = 3.0

_STATS_NOWAIT: int = getattr(libvirt, "VIR_CONNECT_GET_ALL_DOMAINS_STATS_NOWAIT", 0)

_VERBS: dict[VmAction, str] = {
    VmAction.START: "start",
    VmAction.SHUTDOWN: "shutdown",
    VmAction.REBOOT: "reboot",
    VmAction.PAUSE: "suspend",
    VmAction.RESUME: "resume",
    VmAction.FORCE_OFF: "destroy",
}

# --------------------------------------------------------------------------- pure helpers


def vm_from_stats(
    uuid: str,
    name: str,
    domain_id: int | None,
    static: DomainStatic,
    stats: Mapping[str, Any],
) -> Vm:
    """One VM from its cached static facts, overridden by the live values ``stats`` holds."""
    raw_state = stats.get("state.state")
    state = _STATES.get(raw_state, VmState.UNKNOWN) if isinstance(raw_state, int) else None
    cpu_time = stats.get("cpu.time")
    balloon_kib = stats.get("balloon.current")
    vcpus = stats.get("vcpu.current")
    return Vm(
        uuid=uuid,
        name=name,
        state=state if state is not None else VmState.UNKNOWN,
        vcpus=vcpus if isinstance(vcpus, int) else static.vcpus,
        memory_mib=balloon_kib // 1024 if isinstance(balloon_kib, int) else static.memory_mib,
        max_memory_mib=static.max_memory_mib,
        cpu_time_ns=cpu_time if isinstance(cpu_time, int) else None,
        domain_id=domain_id if domain_id is not None and domain_id >= 0 else None,
        persistent=static.persistent,
        disks=static.disks,
        nics=static.nics,
        os_type=static.os_type,
    )


def _open_uri(uri: str) -> str:
    """The URI libvirt opens: over SSH, never let ssh prompt on the terminal the TUI owns.

    ``no_tty=1`` makes libvirt run ssh in batch mode, so a missing key is an error on
    screen instead of a password prompt drawn over the UI. The operator's URI is shown
    and used in commands unchanged.
    """
    parts = urlsplit(uri)
    if not parts.scheme.lower().endswith("+ssh"):
        return uri
    if any(key == "no_tty" for key, _value in parse_qsl(parts.query, keep_blank_values=True)):
        return uri
    # Appended as is: re-encoding would escape the operator's socket= and keyfile= paths.
    query = f"{parts.query}&no_tty=1" if parts.query else "no_tty=1"
    return urlunsplit(parts._replace(query=query))


def _is_local(uri: str) -> bool:
    """Whether the URI names no remote host (``test://``, ``qemu:///system``): its answers
    are computed on this machine's CPUs."""
    parts = urlsplit(uri)
    return not parts.hostname


# --------------------------------------------------------------------------- the runtime

_runtime_lock = threading.Lock()
_runtime_ready = False


def _swallow_libvirt_error(_opaque: object, _error: object) -> None:
    """libvirt's default handler prints every error on stderr, i.e. across the TUI.

    Errors still reach us as exceptions; this only silences the duplicate printout.
    """


def _run_event_loop() -> None:
    while True:
        try:
            libvirt.virEventRunDefaultImpl()
        except Exception:
            # Never let the thread die (events would silently stop) nor spin on a
            # persistent failure.
            time.sleep(0.1)


def _ensure_libvirt_runtime() -> None:
    """Once per process, before the first connection is opened.

    libvirt binds event delivery to the event implementation registered when a connection
    is opened, so this must precede every ``libvirt.open``.
    """
    global _runtime_ready
    with _runtime_lock:
        if _runtime_ready:
            return
        libvirt.registerErrorHandler(_swallow_libvirt_error, None)
        libvirt.virEventRegisterDefaultImpl()
        threading.Thread(target=_run_event_loop, name="libvirt-events", daemon=True).start()
        _runtime_ready = True


# The Python part of polls runs one worker at a time. The GIL runs one thread's Python
# anyway, but with a dozen workers all waiting for it the asyncio loop waited its turn behind
# them (polling 100 hosts stalled it for 30-50 ms); a worker waiting here does not compete
# for the GIL. Never held across a call that may go to the host. See docs/latency.md.
_python_turn = threading.Lock()


@contextlib.contextmanager
def _outside_turn() -> Iterator[None]:
    _python_turn.release()
    try:
        yield
    finally:
        _python_turn.acquire()


# --------------------------------------------------------------------------- the session


@dataclass(eq=False)
class _Session:
    """One libvirt connection, its worker thread and what is cached for its lifetime."""

    executor: DaemonWorker
    loop: asyncio.AbstractEventLoop
    conn: Any = None  # set by the worker once open
    facts: HostFacts = field(default_factory=HostFacts)
    driver: str | None = None  # getType(): QEMU, Xen, TEST
    event_ids: list[int] = field(default_factory=list)
    close_callback: bool = False
    # Without events nothing would ever invalidate the cache: refetch XML every poll.
    events: bool = False
    cache: dict[str, DomainStatic] = field(default_factory=dict)
    # Event sequence numbers, so a poll never caches XML read before an event it missed.
    event_seq: int = 0
    invalidated_at: dict[str, int] = field(default_factory=dict)
    # NOWAIT: a guest whose QEMU monitor is busy (migrating, hung) must not stall the
    # whole host's poll; it then reports fewer stats instead. Only the worker touches it.
    stats_flags: int = _STATS_NOWAIT
    # The Vm built for each domain last time (keyed by its raw UUID) and what it was built
    # from: an unchanged VM is the same object, which saves building it and lets the poller
    # compare by identity. Only the worker touches these two.
    built: dict[bytes, tuple[tuple[object, ...], Vm]] = field(default_factory=dict)
    vms: tuple[Vm, ...] = ()  # the last poll's VMs, sorted
    present: frozenset[str] = frozenset()  # their UUIDs
    # The last poll's stats, in the order listed, when every VM was built from them and a
    # cached definition; else None. Only the worker touches it. See _poll_in_worker.
    stats: list[dict[str, Any]] | None = None
    polled_seq: int = -1  # event_seq when the last good poll began; loop thread only
    quiet: bool = False  # no event since the last good poll began; set for each poll
    pruned_for: frozenset[str] | None = None  # the cache holds only these; loop thread only
    retired: bool = False
    consoles: set[LibvirtConsole] = field(default_factory=set)  # open ones; loop thread only
    # Migrations using this connection from threads of their own: it is closed only once
    # they are done. Replaced whole on the loop thread, read by the closing thread.
    migrations: tuple[concurrent.futures.Future[None], ...] = ()
    # A second connection to the same host for migrations, opened at the first one and kept
    # with the session: without the event subscriptions, which slow a migrate3 on their
    # connection by 5-10 % (bench/migration_overhead.py: 1.10-1.15x the bare call with
    # them, 1.06-1.08x without). Touched by the worker only.
    migration_conn: Any = None
    # Network and storage pool events (see libvirt_definitions): each bumps infra_seq, and a
    # poll reads those definitions again only when it moved since the last read.
    infra_events: list[tuple[str, int]] = field(default_factory=list)
    infra_seq: int = 0
    infra_read: int = -1  # infra_seq when they were last read; loop thread only
    torn_down: concurrent.futures.Future[None] = field(default_factory=concurrent.futures.Future)


@dataclass(frozen=True, slots=True)
class _RawPoll:
    vms: tuple[Vm, ...]  # sorted by name
    present: frozenset[str]  # their UUIDs
    fetched: dict[str, DomainStatic]  # read from XMLDesc this poll: cacheable
    unreadable: frozenset[str]  # XMLDesc failed or made no sense: try again next poll
    free_memory_bytes: int | None
    definitions: tuple[Definition, ...] = ()  # read this poll (keep_definitions only)


# --------------------------------------------------------------------------- the backend


class LibvirtBackend:
    """One libvirt host (one URI), one connection, one worker thread."""

    def __init__(self, host: HostKey, uri: str, *, call_timeout_s: float = 20.0) -> None:
        self._host = host
        self._uri = uri
        self._timeout = call_timeout_s
        self._session: _Session | None = None
        self._local = _is_local(uri)
        self._connect_lock = asyncio.Lock()
        self._callback: EventCallback | None = None
        self._definition_fetches = 0
        self._keep = False

    # ---------------------------------------------------------------- properties

    @property
    def host(self) -> HostKey:
        return self._host

    @property
    def address(self) -> str:
        return self._uri

    @property
    def capabilities(self) -> frozenset[Capability]:
        withheld = self.withheld
        return _CAPABILITIES.difference(withheld) if withheld else _CAPABILITIES

    @property
    def withheld(self) -> Mapping[Capability, str]:
        """What this module implements but the connected driver cannot give, with why:
        the test driver has no ``openConsole`` and no migration. Before a connection the
        URI's scheme tells
        (``test://``, ``test+ssh://``); once connected, the driver itself (``getType()``)."""
        session = self._session
        driver = session.driver if session is not None else None
        if driver is None:
            driver = urlsplit(self._uri).scheme.split("+")[0]
        if driver.lower() == "test":
            return _TEST_DRIVER_WITHHOLDS
        return MappingProxyType({})

    @property
    def connected(self) -> bool:
        return self._session is not None

    @property
    def definition_fetches(self) -> int:
        """How many domain XMLs polls have fetched so far (tests check the cache with it)."""
        return self._definition_fetches

    def set_event_callback(self, callback: EventCallback | None) -> None:
        self._callback = callback

    def keep_definitions(self, keep: bool) -> None:
        if keep and self._session is not None:
            # Definitions are read with the domains' XML, which is cached: read it all again
            # (a repository opened or restored now holds none of what was read before).
            self._session.cache.clear()
            self._session.stats = None
            self._session.infra_read = -1
        self._keep = keep

    # ---------------------------------------------------------------- connection

    async def connect(self) -> None:
        await self._ensure_session()

    async def _ensure_session(self) -> _Session:
        async with self._connect_lock:
            if self._session is not None and not self._session.retired:
                return self._session
            self._session = None
            _ensure_libvirt_runtime()
            session = _Session(
                executor=DaemonWorker(f"libvirt-{self._host}"),
                loop=asyncio.get_running_loop(),
            )
            try:
                # Several round trips over qemu+ssh (ssh's own connect, then libvirt's
                # RPC): the wide bound, so that far hosts' opens do not queue behind one
                # another. A local daemon's or the test driver's open is made on our own
                # CPUs: work, the narrow bound (100 test-driver opens at once stalled the
                # loop 105-155 ms instead of 9-11).
                async with working() if self._local else waiting():
                    await self._call(session, lambda: self._open(session))
            except BaseException:
                # Cancelled or failed half way: whatever was opened must still be closed.
                self._retire(session)
                raise
            if session.retired:  # the close callback fired while we were still opening
                raise HostUnreachable(f"{self._uri}: the connection closed as it opened")
            self._session = session
            return session

    def _open(self, session: _Session) -> None:
        """In the worker: open, subscribe, and read what the host says about itself."""
        try:
            conn = libvirt.open(_open_uri(self._uri))
        except libvirt.libvirtError as exc:
            raise HostUnreachable(f"{self._uri}: {_message(exc)}") from None
        if conn is None:  # very old bindings returned None instead of raising
            raise HostUnreachable(f"{self._uri}: the connection could not be opened")
        session.conn = conn
        self._subscribe(session)
        with contextlib.suppress(libvirt.libvirtError):
            # The test driver has no keepalive. Without it a dead peer is noticed later,
            # but the call timeout still bounds every call.
            conn.setKeepAlive(5, 3)
        try:
            session.driver = str(conn.getType())
            session.facts = self._read_facts(conn, session.driver)
        except libvirt.libvirtError as exc:
            raise HostUnreachable(f"{self._uri}: {_message(exc)}") from None

    def _subscribe(self, session: _Session) -> None:
        conn = session.conn

        def on_domain_event(_conn: Any, dom: Any, *_args: Any) -> None:
            # On libvirt's event thread: anything raised here would be printed on stderr.
            try:
                uuid = str(dom.UUIDString())
                session.loop.call_soon_threadsafe(self._on_domain_event, session, uuid)
            except Exception:
                return

        def on_close(_conn: Any, _reason: int, _opaque: object) -> None:
            with contextlib.suppress(Exception):
                session.loop.call_soon_threadsafe(self._on_closed, session)

        try:
            session.event_ids.append(
                conn.domainEventRegisterAny(
                    None, libvirt.VIR_DOMAIN_EVENT_ID_LIFECYCLE, on_domain_event, None
                )
            )
            session.events = True
        except libvirt.libvirtError:
            session.events = False
        # A hot-plugged disk or NIC changes the definition without a lifecycle event.
        for event_id in (
            libvirt.VIR_DOMAIN_EVENT_ID_DEVICE_ADDED,
            libvirt.VIR_DOMAIN_EVENT_ID_DEVICE_REMOVED,
        ):
            try:
                session.event_ids.append(
                    conn.domainEventRegisterAny(None, event_id, on_domain_event, None)
                )
            except libvirt.libvirtError:
                session.events = False

        def on_infrastructure_event() -> None:
            session.loop.call_soon_threadsafe(self._on_infrastructure_event, session)

        try:
            session.infra_events = register_infrastructure_events(conn, on_infrastructure_event)
        except libvirt.libvirtError:
            session.infra_events = []
        try:
            conn.registerCloseCallback(on_close, None)
            session.close_callback = True
        except libvirt.libvirtError:
            session.close_callback = False

    @staticmethod
    def _read_facts(conn: Any, driver: str) -> HostFacts:
        info = conn.getInfo()
        # [arch, memory MiB, cpus, mhz, NUMA nodes, sockets per node, cores, threads]
        _arch, memory_mib, cpus, mhz, nodes, sockets, cores, threads = info[:8]
        hostname: str | None
        try:
            hostname = str(conn.getHostname())
        except libvirt.libvirtError:
            hostname = None
        version: str | None
        try:
            number = int(conn.getVersion())
            version = f"{number // 1_000_000}.{number // 1000 % 1000}.{number % 1000}"
        except libvirt.libvirtError:
            version = None
        model: str | None = None
        flags: tuple[str, ...] = ()
        with contextlib.suppress(libvirt.libvirtError, ParseError):
            capabilities = str(conn.getCapabilities())
            # Parsing is Python: one worker at a time, as polls (far hosts open many at once).
            with _python_turn:
                model, flags = host_cpu(capabilities)
        return HostFacts(
            hostname=hostname,
            cpu_model=model,
            cpus=cpus,
            sockets=nodes * sockets if nodes and sockets else None,
            cores_per_socket=cores or None,
            threads_per_core=threads or None,
            mhz=mhz or None,
            memory_mib=memory_mib or None,
            hypervisor=driver,
            hypervisor_version=version,
            cpu_flags=flags,
        )

    def _on_domain_event(self, session: _Session, uuid: str) -> None:
        if session.retired:
            return
        session.event_seq += 1
        session.invalidated_at[uuid] = session.event_seq
        session.cache.pop(uuid, None)
        if self._callback is not None:
            self._callback(uuid)

    def _on_infrastructure_event(self, session: _Session) -> None:
        if not session.retired:
            session.infra_seq += 1

    def _on_closed(self, session: _Session) -> None:
        if session.retired:
            return
        if self._session is session:
            self._session = None
        self._retire(session)
        if self._callback is not None:
            self._callback(None)

    # ---------------------------------------------------------------- imports

    async def import_volume(
        self,
        pool: str,
        plan: ImportPlan,
        *,
        progress: Callable[[ImportProgress], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> Imported:
        """``plan`` (a flat one: ``import_plan.flat_plan``) fetched by ovmtui and streamed
        into a new volume of its folder's storage pool (``base.VolumeImporter``). The
        volume is made at its final name, with the size the server announced (a server that
        does not say it is refused); a failure or a cancel aborts the stream and deletes it.
        Raises ``ImportFailed``, ``ActionRefused`` (the name taken), ``HostUnreachable``."""
        session = await self._ensure_session()
        conn = session.conn
        began = clock()

        def report(
            phase: Phase, done: int = 0, total: int | None = None, rate: float | None = None
        ) -> None:
            if progress is not None:
                progress(ImportProgress(phase, clock() - began, done, total, rate))

        if plan.archive:
            try:
                return await libvirt_template.import_template(
                    conn,
                    lambda fn: self._call(session, fn),
                    pool,
                    plan,
                    lambda phase, done, total, rate: report(phase, done, total, rate),
                    clock,
                )
            except libvirt.libvirtError as exc:
                raise ImportFailed(f"{plan.url}: {_message(exc)}") from None
        report("checking")
        # Only when importing: ssl and ftplib cost the TUI's start ~8 ms it does not need.
        from ovmtui.backend.url_fetch import fetch

        try:
            async with fetch(plan.url) as download:
                size = download.size
                if size is None:
                    raise ImportFailed(
                        f"{plan.url}: the server does not say the file's size, which a libvirt "
                        "volume needs before it is written"
                    )
                _pool, volume = await self._call(
                    session, lambda: libvirt_import.create_volume(conn, pool, plan, size)
                )
                stream: Any = None
                try:
                    stream = await self._call(
                        session, lambda: libvirt_import.open_upload(conn, volume, size)
                    )
                    done, digest = await self._upload(
                        session, stream, download, size, report, clock
                    )
                    if done != size:
                        raise ImportFailed(f"{plan.url}: {done} bytes came of the {size} announced")
                    if plan.sha256 is not None and digest != plan.sha256:
                        raise ImportFailed(
                            f"checksum mismatch: {plan.url} has SHA-256 {digest}, "
                            f"not {plan.sha256} as given"
                        )
                    report("placing", done, size)
                    await self._call(session, lambda: libvirt_import.finish(stream))
                except BaseException:
                    with contextlib.suppress(Exception, asyncio.CancelledError):
                        await self._call(session, lambda: libvirt_import.discard(stream, volume))
                    raise
        except libvirt.libvirtError as exc:
            raise ImportFailed(f"{plan.url}: {_message(exc)}") from None
        report("done", done, size)
        return Imported(plan.final, done, digest, "ovmtui")

    async def _upload(
        self,
        session: _Session,
        stream: Any,
        download: Download,
        size: int,
        report: Callable[[Phase, int, int | None, float | None], None],
        clock: Callable[[], float],
    ) -> tuple[int, str | None]:
        """The download's pieces into ``stream``, 1 MiB a worker call, hashed on the way."""
        digest = hashlib.sha256()
        meter = RateMeter()
        pending = bytearray()
        done = 0
        last = float("-inf")

        async def send(data: bytes) -> None:
            nonlocal done, last
            digest.update(data)
            await self._call(session, lambda: libvirt_import.send(stream, data))
            done += len(data)
            now = clock()
            if now - last >= UPLOAD_REPORT_S:
                last = now
                report("downloading", done, size, meter.add(now, done))

        async for chunk in download.chunks():
            pending += chunk
            if len(pending) >= UPLOAD_CHUNK:
                data, pending = bytes(pending), bytearray()
                await send(data)
        if pending:
            await send(bytes(pending))
        report("downloading", done, size, meter.add(clock(), done))
        return done, digest.hexdigest()

    # ---------------------------------------------------------------- worker calls

    async def _call(self, session: _Session, fn: Callable[[], _T]) -> _T:
        """Run ``fn`` on the session's worker, bounded by the call timeout."""
        try:
            future = session.loop.run_in_executor(session.executor, fn)
        except RuntimeError:  # the executor was shut down: the session was dropped
            self._drop(session)
            raise HostUnreachable(f"{self._uri}: the connection was closed") from None
        try:
            return await asyncio.wait_for(future, self._timeout)
        except TimeoutError:
            self._drop(session)
            raise HostTimeout(
                f"{self._uri}: no answer within {self._timeout:g} s; reconnecting next time"
            ) from None
        except asyncio.CancelledError:
            # Our own cancellation propagates; a call cancelled because the session was
            # dropped under it (a timeout elsewhere) is a lost connection.
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                raise
            raise HostUnreachable(f"{self._uri}: the connection was dropped") from None
        except libvirt.libvirtError as exc:
            if _is_connection_error(exc):
                self._drop(session)
                raise HostUnreachable(f"{self._uri}: {_message(exc)}") from None
            raise

    def _drop(self, session: _Session) -> None:
        if self._session is session:
            self._session = None
        self._retire(session)

    def _retire(self, session: _Session) -> None:
        """Abandon a session without waiting: a stuck call must not block the loop or the
        next reconnect. Calls still queued are cancelled (a queued action must not run long
        after its caller was told it failed); the connection is closed by a helper thread
        once the worker has finished its current call, since closing a connection under a
        running call is unsafe."""
        if session.retired:
            return
        session.retired = True
        session.executor.shutdown(wait=False, cancel_futures=True)
        # A stream whose connection is closed under it may never hear of it: tell it.
        for console in list(session.consoles):
            console.connection_lost(f"{self._uri}: the connection was closed")
        threading.Thread(
            target=_tear_down, args=(session,), name=f"libvirt-close-{self._host}", daemon=True
        ).start()

    # ---------------------------------------------------------------- poll

    async def poll(self) -> HostPoll:
        session = await self._ensure_session()
        # The cache as it is now: an event during the poll drops entries from session.cache,
        # and a VM must not then be built from nothing (no vCPUs, no memory, no disks).
        cache = dict(session.cache) if session.events else {}
        seq_before = session.event_seq
        # No event since the last poll began: no domain was defined, undefined, renamed,
        # started, stopped or migrated in between, nor any definition dropped.
        session.quiet = session.events and seq_before == session.polled_seq
        keep = self._keep
        infra_seq = session.infra_seq
        # Without their events, networks and pools are read at every poll (a handful).
        read_infra = keep and (not session.infra_events or infra_seq != session.infra_read)
        try:
            # A remote host's poll is mostly waiting for its answer (its Python part takes
            # the Python turn anyway); a local daemon's or the test driver's answer is made
            # on our own CPUs: work, the narrow bound (pacing.py).
            async with working() if self._local else waiting():
                raw = await self._call(
                    session, lambda: self._poll_in_worker(session, cache, keep, read_infra)
                )
        except libvirt.libvirtError as exc:
            # A poll that fails leaves us unsure of the connection: start afresh next time.
            self._drop(session)
            raise HostUnreachable(f"{self._uri}: {_message(exc)}") from None
        session.polled_seq = seq_before
        if read_infra:
            session.infra_read = infra_seq
        self._definition_fetches += len(raw.fetched) + len(raw.unreadable)
        for uuid, static in raw.fetched.items():
            # XML read before an event about it arrived may predate the change.
            if session.events and session.invalidated_at.get(uuid, -1) <= seq_before:
                session.cache[uuid] = static
        if raw.fetched or raw.present is not session.pruned_for:
            # Else the same domains as at the last pruning, and nothing added since.
            for uuid in session.cache.keys() - raw.present:
                del session.cache[uuid]
            session.pruned_for = raw.present
        for uuid in session.invalidated_at.keys() - raw.present:
            del session.invalidated_at[uuid]
        free = raw.free_memory_bytes
        facts = dataclasses.replace(
            session.facts, free_memory_mib=free // (1024 * 1024) if free else None
        )
        return HostPoll(facts=facts, vms=raw.vms, taken_at=time.time(), definitions=raw.definitions)

    @staticmethod
    def _poll_in_worker(
        session: _Session, cache: Mapping[str, DomainStatic], keep: bool, read_infra: bool
    ) -> _RawPoll:
        """The whole poll, VMs built and sorted, so the loop thread only takes the result.

        Everything but the calls to the host runs in the Python turn. ``keep``: read the
        persistent definition of every domain whose XML is read (not cached); ``read_infra``:
        and those of the networks and storage pools.
        """
        records = _domain_records(session)
        free = _free_memory_bytes(session)
        infrastructure = tuple(read_infrastructure(session.conn)) if read_infra else ()
        if session.quiet and session.stats is not None and len(records) == len(session.stats):
            with _python_turn:
                # Idle: every domain's stats are those of the last poll, in the same order,
                # and no event says a domain came, went or changed since: these are the last
                # poll's VMs. One comparison of the lists, no call per domain (at 10,000
                # domains the per-domain pass cost 8-9 ms a poll; see docs/latency.md).
                same = [stats for _dom, stats in records] == session.stats
                if same:
                    del records  # the domain handles are freed in the turn, as below
                    return _RawPoll(
                        session.vms, session.present, {}, frozenset(), free, infrastructure
                    )
        previous = session.built
        built: dict[bytes, tuple[tuple[object, ...], Vm]] = {}
        present: list[str] = []
        fetched: dict[str, DomainStatic] = {}
        unreadable: set[str] = set()
        rebuilt = False
        kept: list[tuple[bytes, str]] = []  # (raw UUID, persistent XML) read this poll
        with _python_turn:
            definitions: dict[str, tuple[str, bool, str | None]] | None = None
            for index, (dom, stats) in enumerate(records):
                # UUID() costs half of UUIDString(); a known domain's string is on its Vm.
                raw_uuid: bytes = dom.UUID()
                entry = previous.get(raw_uuid)
                uuid: str = entry[1].uuid if entry is not None else dom.UUIDString()
                static = cache.get(uuid)
                if static is None:
                    if definitions is None:
                        # This and every later missing definition in one go outside the
                        # turn: handing the turn back and forth around each call (10,000
                        # times on a cold start) made the workers and the loop fight
                        # over the GIL at every handoff.
                        with _outside_turn():
                            definitions = _read_definitions(
                                records[index:], previous, cache, keep=keep
                            )
                    definition = definitions.get(uuid)
                    if definition is None:
                        continue  # undefined between the listing and now
                    xml_text, persistent, kept_xml = definition
                    try:
                        static = parse_domain_xml(xml_text)
                    except ParseError:
                        unreadable.add(uuid)
                        static = DomainStatic()
                    else:
                        static = fetched[uuid] = dataclasses.replace(static, persistent=persistent)
                        if kept_xml is not None:
                            kept.append((raw_uuid, kept_xml))
                # Same definition object and same stats as last poll: nothing moved, not
                # even the CPU time, so name and ID are the ones read then (a restart or a
                # rename comes with a lifecycle event, which drops the definition from the
                # cache). Else ask: on a live host a running domain's CPU time always moves.
                if entry is None or entry[0][2] is not static or entry[0][3] != stats:
                    name: str = dom.name()
                    # A shut-off domain has no ID: spare the call.
                    domain_id: int = -1 if stats.get("state.state") == _SHUTOFF else dom.ID()
                    # The stats dict is ours (libvirt builds a new one per call): kept.
                    key = (name, domain_id, static, stats)
                    if entry is None or entry[0] != key:
                        entry = (key, vm_from_stats(uuid, name, domain_id, static, stats))
                        rebuilt = True
                # An unchanged VM keeps its old entry: only what changed survives the poll,
                # which spares the garbage collector (its pauses hold every thread up).
                built[raw_uuid] = entry
                present.append(uuid)
            session.built = built
            if rebuilt or len(built) != len(previous):
                # Otherwise every VM is the one of the last poll: so is their order.
                session.vms = tuple(sorted((entry[1] for entry in built.values()), key=_vm_order))
            if rebuilt or len(present) != len(session.present):
                session.present = frozenset(present)
            # Every domain listed was built from a cached definition: the next poll may
            # take the quick way if its stats are these.
            clean = not fetched and not unreadable and len(present) == len(records)
            session.stats = [stats for _dom, stats in records] if clean else None
            del records  # the domain handles are freed here too, in the turn
            domains = tuple(
                definition_of(DefinitionKind.DOMAIN, built[raw][1].uuid, built[raw][1].name, text)
                for raw, text in kept
            )
        return _RawPoll(
            session.vms,
            session.present,
            fetched,
            frozenset(unreadable),
            free,
            infrastructure + domains,
        )

    # ---------------------------------------------------------------- actions

    async def act(self, vm: Vm, action: VmAction) -> None:
        session = await self._ensure_session()
        title = f"{action.label} {vm.name} failed"
        wake = action is VmAction.START and vm.state is VmState.SUSPENDED

        def run() -> None:
            dom = session.conn.lookupByUUIDString(vm.uuid)
            if action is VmAction.START:
                if wake:
                    # A PM-suspended guest is still "running" for libvirt: create() refuses.
                    dom.pMWakeup(0)
                else:
                    dom.create()
            elif action is VmAction.SHUTDOWN:
                dom.shutdown()
            elif action is VmAction.REBOOT:
                dom.reboot(0)
            elif action is VmAction.PAUSE:
                dom.suspend()
            elif action is VmAction.RESUME:
                dom.resume()
            elif action is VmAction.FORCE_OFF:
                dom.destroy()
            else:  # pragma: no cover - VmAction is exhaustive
                raise ValueError(action)

        try:
            await self._call(session, run)
        except libvirt.libvirtError as exc:
            if _code(exc) in (libvirt.VIR_ERR_NO_DOMAIN, libvirt.VIR_ERR_INVALID_ARG):
                raise self._not_found(vm) from None
            raise ActionFailed(_message(exc), title=title) from None

    async def disk_sizes(self, vm: Vm) -> Mapping[str, int | None]:
        """``blockInfo``'s capacity of each disk with a source (libvirt reads an image's
        header for its virtual size, a running guest's or not)."""
        session = await self._ensure_session()
        targets = [disk.target for disk in vm.disks if disk.source]

        def measure() -> dict[str, int | None]:
            dom = session.conn.lookupByUUIDString(vm.uuid)
            sizes: dict[str, int | None] = {}
            for target in targets:
                try:
                    sizes[target] = int(dom.blockInfo(target, 0)[0])
                except libvirt.libvirtError as exc:
                    if _is_connection_error(exc):
                        raise
                    sizes[target] = None  # an empty drive, a network disk it cannot open
            return sizes

        try:
            return await self._call(session, measure)
        except libvirt.libvirtError as exc:
            if _code(exc) == libvirt.VIR_ERR_NO_DOMAIN:
                raise self._not_found(vm) from None
            raise ActionFailed(_message(exc), title=f"Sizes of {vm.name}'s disks") from None

    def ctrl_alt_del_command(self, vm: Vm) -> str:
        keys = ["--codeset", "linux", "KEY_LEFTCTRL", "KEY_LEFTALT", "KEY_DELETE"]
        return shlex.join(["virsh", "-c", self._uri, "send-key", "--domain", vm.name, *keys])

    async def send_ctrl_alt_del(self, vm: Vm) -> None:
        session = await self._ensure_session()

        def press() -> None:
            dom = session.conn.lookupByUUIDString(vm.uuid)
            dom.sendKey(libvirt.VIR_KEYCODE_SET_LINUX, _KEY_HOLD_MS, list(_CTRL_ALT_DEL), 3, 0)

        try:
            await self._call(session, press)
        except libvirt.libvirtError as exc:
            if _code(exc) == libvirt.VIR_ERR_NO_DOMAIN:
                raise self._not_found(vm) from None
            raise ActionFailed(_message(exc), title=f"Ctrl+Alt+Del to {vm.name} failed") from None

    def sysrq_command(self, vm: Vm, key: str) -> str:
        _sysrq_code(key)  # refuses a key it would not send
        keys = ["--codeset", "linux", "KEY_LEFTALT", "KEY_SYSRQ", f"KEY_{key.upper()}"]
        return shlex.join(["virsh", "-c", self._uri, "send-key", "--domain", vm.name, *keys])

    async def send_sysrq(self, vm: Vm, key: str) -> None:
        code = _sysrq_code(key)
        session = await self._ensure_session()

        def press() -> None:
            dom = session.conn.lookupByUUIDString(vm.uuid)
            codes = [*_SYSRQ_PREFIX, code]
            dom.sendKey(libvirt.VIR_KEYCODE_SET_LINUX, _KEY_HOLD_MS, codes, len(codes), 0)

        try:
            await self._call(session, press)
        except libvirt.libvirtError as exc:
            if _code(exc) == libvirt.VIR_ERR_NO_DOMAIN:
                raise self._not_found(vm) from None
            raise ActionFailed(_message(exc), title=f"SysRq {key} to {vm.name} failed") from None

    def command_for(self, vm: Vm, action: VmAction) -> str:
        verb = _VERBS[action]
        if action is VmAction.START and vm.state is VmState.SUSPENDED:
            verb = "dompmwakeup"
        return shlex.join(["virsh", "-c", self._uri, verb, vm.name])

    async def definition(self, vm: Vm) -> str:
        session = await self._ensure_session()
        try:
            # Not VIR_DOMAIN_XML_SECURE: operators see the definition, not its secrets.
            return await self._call(
                session, lambda: str(session.conn.lookupByUUIDString(vm.uuid).XMLDesc(0))
            )
        except libvirt.libvirtError as exc:
            if _code(exc) in (libvirt.VIR_ERR_NO_DOMAIN, libvirt.VIR_ERR_INVALID_ARG):
                raise self._not_found(vm) from None
            raise ActionFailed(_message(exc), title=f"Definition of {vm.name} failed") from None

    async def define(self, definition: str) -> str:
        session = await self._ensure_session()
        try:
            return await self._call(
                session, lambda: str(session.conn.defineXML(definition).UUIDString())
            )
        except libvirt.libvirtError as exc:
            raise ActionFailed(_message(exc), title="Define failed") from None

    # ---------------------------------------------------------------- storage

    def storage_command(self, root: str) -> str:
        return shlex.join(["virsh", "-c", self._uri, "vol-list", "--details", "ovmtui-…"]) + (
            f" (a storage pool a folder of {root})"
        )

    async def list_storage(self, pool: str, root: str) -> StorageScan:
        session = await self._ensure_session()
        try:
            return await self._call(
                session, lambda: libvirt_storage.list_pools(session.conn, pool, root)
            )
        except libvirt.libvirtError as exc:
            raise ActionFailed(_message(exc), title="Storage not read") from None

    async def read_storage_file(self, path: str, max_bytes: int) -> bytes | None:
        return None  # the storage API lists volumes; it reads no file

    def delete_command(self, pool: str, entry: StorageEntry) -> str:
        return libvirt_storage.delete_command(self._uri, pool, entry)

    async def delete_entry(self, pool: str, root: str, entry: StorageEntry) -> None:
        session = await self._ensure_session()
        try:
            await self._call(
                session, lambda: libvirt_storage.delete_volume(session.conn, pool, entry)
            )
        except libvirt.libvirtError as exc:
            raise ActionFailed(_message(exc), title=f"{entry.name} not deleted") from None

    async def storage_pools_missing(self, pool: str) -> list[str]:
        session = await self._ensure_session()
        try:
            return await self._call(
                session, lambda: libvirt_storage.pools_to_define(session.conn, pool)
            )
        except libvirt.libvirtError as exc:
            raise ActionFailed(_message(exc), title="Storage pools not read") from None

    def define_storage_pools_command(self, pool: str, root: str, folders: list[str]) -> str:
        return libvirt_storage.define_command(self._uri, pool, root, folders)

    async def define_storage_pools(self, pool: str, root: str, folders: list[str]) -> list[str]:
        session = await self._ensure_session()
        try:
            return await self._call(
                session,
                lambda: libvirt_storage.define_pools(session.conn, pool, root, folders),
            )
        except libvirt.libvirtError as exc:
            raise ActionFailed(_message(exc), title="Storage pools not defined") from None

    # ---------------------------------------------------------------- shared disks

    @property
    def hot_plug(self) -> str | None:
        """QEMU hot-plugs disks into running guests (with ACPI); the test driver attaches
        nothing at all."""
        return self.withheld.get(Capability.ATTACH_DISK)

    async def plan_disk_change(self, vm: Vm, disk: Disk, *, attach: bool, live: bool) -> DiskChange:
        disk = dataclasses.replace(disk, bus=disk.bus or "virtio")
        command = libvirt_disks.disk_command(self._uri, vm.name, disk, attach=attach, live=live)
        return DiskChange(vm, disk, attach, live, command, after=libvirt_disks.disk_xml(disk))

    async def apply_disk_change(self, change: DiskChange) -> str:
        why_not = self.withheld.get(Capability.ATTACH_DISK)
        if why_not is not None:
            raise ActionRefused(why_not)
        session = await self._ensure_session()
        vm, disk = change.vm, change.disk

        def run() -> None:
            libvirt_disks.change_disk(
                session.conn, vm.uuid, disk, attach=change.attach, live=change.live
            )

        verb = "Attach to" if change.attach else "Detach from"
        try:
            await self._call(session, run)
        except libvirt.libvirtError as exc:
            if _code(exc) == libvirt.VIR_ERR_NO_DOMAIN:
                raise self._not_found(vm) from None
            raise ActionFailed(_message(exc), title=f"{verb} {vm.name} failed") from None
        finally:
            # Its definition changed: the next poll reads it again rather than the cached
            # one (the event that says so may come after that poll, or not at all).
            self._on_domain_event(session, vm.uuid)
        where = "its config and the running guest" if change.live else "its config"
        return f"{'attached to' if change.attach else 'detached from'} {where}"

    def create_disk_command(self, path: str, size_bytes: int, *, allocate: bool) -> str:
        return libvirt_disks.create_command(
            self._uri, self._host.pool, path, size_bytes, allocate=allocate
        )

    async def create_disk(self, path: str, size_bytes: int, *, allocate: bool) -> str:
        session = await self._ensure_session()
        try:
            made = await self._call(
                session,
                lambda: libvirt_disks.create_volume(
                    session.conn, self._host.pool, path, size_bytes, allocate=allocate
                ),
            )
        except libvirt.libvirtError as exc:
            raise ActionFailed(_message(exc), title=f"Create {path} failed") from None
        return f"storageVolCreateXML ({made})"

    def delete_disk_command(self, path: str) -> str:
        return libvirt_disks.delete_command(self._uri, path)

    async def delete_disk(self, path: str) -> None:
        session = await self._ensure_session()
        try:
            await self._call(
                session, lambda: libvirt_disks.delete_volume(session.conn, self._host.pool, path)
            )
        except libvirt.libvirtError as exc:
            raise ActionFailed(_message(exc), title=f"Delete {path} failed") from None

    # ---------------------------------------------------------------- restore

    def restore_command(self, kind: DefinitionKind, name: str, *, start: bool) -> str:
        return restore_command(self._uri, kind, name, start=start)

    async def current_definitions(self) -> tuple[Definition, ...]:
        session = await self._ensure_session()
        try:
            return tuple(await self._call(session, lambda: read_all(session.conn)))
        except libvirt.libvirtError as exc:
            raise HostUnreachable(f"{self._uri}: {_message(exc)}") from None

    async def restore_definition(self, kind: DefinitionKind, text: str) -> str:
        session = await self._ensure_session()
        try:
            return await self._call(session, lambda: define_in(session.conn, kind, text))
        except libvirt.libvirtError as exc:
            raise ActionFailed(_message(exc), title=f"{kind.value} define failed") from None

    async def start_defined(self, kind: DefinitionKind, uuid: str) -> None:
        session = await self._ensure_session()
        try:
            await self._call(session, lambda: start_in(session.conn, kind, uuid))
        except libvirt.libvirtError as exc:
            raise ActionFailed(_message(exc), title=f"{kind.value} start failed") from None

    # ---------------------------------------------------------------- console

    @contextlib.asynccontextmanager
    async def console(
        self, vm: Vm, *, term_type: str, term_size: tuple[int, int], force: bool = False
    ) -> AsyncIterator[ConsoleChannel]:
        """The VM's first serial console (``openConsole``) until the context is left.

        ``term_type`` and ``term_size`` are not sent: a serial line has neither. Opening is
        bounded by the call timeout; the console itself by nothing. ``force`` takes it from
        another client; without it a console held elsewhere is refused.
        """
        channel = await self._open_console(vm, force=force)
        try:
            yield channel
        finally:
            await channel.close()

    def console_command(self, vm: Vm) -> str:
        return shlex.join(["virsh", "-c", self._uri, "console", vm.name])

    async def _open_console(self, vm: Vm, *, force: bool) -> LibvirtConsole:
        session = await self._ensure_session()
        reason = self.withheld.get(Capability.CONSOLE)
        if reason is not None:
            raise ConsoleUnavailable(f"{vm.name} on {self._host.name}: {reason}")
        flags = libvirt.VIR_DOMAIN_CONSOLE_FORCE if force else 0
        if session.driver == "QEMU":
            # Refuse rather than share the console unsafely. Only the QEMU driver is known
            # to take it (the lab); virsh does not set it by default.
            flags |= libvirt.VIR_DOMAIN_CONSOLE_SAFE
        label = f"{self._host.name}/{vm.name}"

        async def probe(failed: bool) -> str | None:
            return await self._console_end(session, vm, failed=failed)

        channel = LibvirtConsole(label, session.loop, probe, session.consoles.discard)
        session.consoles.add(channel)

        def open_in_worker() -> None:
            conn = session.conn
            dom = conn.lookupByUUIDString(vm.uuid)
            stream = conn.newStream(libvirt.VIR_STREAM_NONBLOCK)
            try:
                dom.openConsole(None, stream, flags)
            except BaseException:
                with contextlib.suppress(Exception):
                    stream.abort()
                raise
            channel.attach(stream)

        try:
            await self._call(session, open_in_worker)
        except libvirt.libvirtError as exc:
            channel.abandon()
            if _code(exc) in (libvirt.VIR_ERR_NO_DOMAIN, libvirt.VIR_ERR_INVALID_ARG):
                raise ConsoleUnavailable(str(self._not_found(vm))) from None
            raise ConsoleUnavailable(f"{vm.name} on {self._host.name}: {_message(exc)}") from None
        except BaseException:
            channel.abandon()
            raise
        if session.retired:  # the connection went while the console opened
            channel.connection_lost(f"{self._uri}: the connection was closed")
        return channel

    async def _console_end(self, session: _Session, vm: Vm, *, failed: bool) -> str | None:
        """Why a console stream ended, from its guest's state; ``HostUnreachable`` when the
        connection is what went."""

        def state() -> tuple[int, int] | None:
            if not session.conn.isAlive():
                raise HostUnreachable(f"{self._uri}: the connection was lost")
            try:
                raw = session.conn.lookupByUUIDString(vm.uuid).state()
            except libvirt.libvirtError as exc:
                if _code(exc) == libvirt.VIR_ERR_NO_DOMAIN:
                    return None
                raise
            return int(raw[0]), int(raw[1])

        deadline = time.monotonic() + _CONSOLE_END_SETTLE_S
        while True:
            try:
                found = await self._call(session, state)
            except libvirt.libvirtError as exc:
                self._drop(session)
                raise HostUnreachable(f"{self._uri}: {_message(exc)}") from None
            except HostUnreachable:
                self._drop(session)
                raise
            if found is None:
                return "the guest is gone from this host (shut off and undefined, or migrated)"
            if found[0] == _SHUTOFF:
                return _SHUTOFF_REASONS.get(found[1], "the guest shut off")
            if failed:
                # The connection answers and the guest runs: only a forced open elsewhere
                # ends a console stream with an error (seen on the lab: the old stream's
                # next read fails, "stream had I/O failure").
                return _TAKEN_OVER
            if time.monotonic() > deadline:
                return "the console closed while the guest still runs"
            await asyncio.sleep(_CONSOLE_END_STEP_S)

    # ---------------------------------------------------------------- migration

    def migration_command(self, vm: Vm, target: Backend, *, live: bool) -> str:
        running = vm.state is not VmState.SHUTOFF
        return shlex.join(
            migration_argv(self._uri, target.address, vm.name, live=live, running=running)
        )

    async def migration_needs(self, vm: Vm) -> MigrationNeeds:
        """From the domain's XML (see ``libvirt_xml.migration_needs``), read on this host."""
        session = await self._ensure_session()
        try:
            return await self._call(session, lambda: read_needs(session.conn, vm.uuid))
        except libvirt.libvirtError as exc:
            if _code(exc) in (libvirt.VIR_ERR_NO_DOMAIN, libvirt.VIR_ERR_INVALID_ARG):
                raise self._not_found(vm) from None
            raise ActionFailed(_message(exc), title=f"Reading {vm.name} failed") from None

    async def can_host(self, needs: MigrationNeeds) -> TargetAnswers:
        """This host's answers (see ``libvirt_answers.answer_needs``): each a few calls on
        the connection's worker, together bounded by the call timeout."""
        session = await self._ensure_session()
        try:
            return await self._call(session, lambda: answer_needs(session.conn, needs))
        except libvirt.libvirtError as exc:
            raise ActionFailed(_message(exc), title=f"Asking {self._host.name} failed") from None

    async def migrate(
        self,
        vm: Vm,
        target: Backend,
        *,
        live: bool,
        progress: Callable[[MigrationProgress], None] | None = None,
    ) -> None:
        """Move ``vm`` to ``target`` with ``migrate3`` over both backends' connections.

        Always ``VIR_MIGRATE_PERSIST_DEST | VIR_MIGRATE_UNDEFINE_SOURCE``: the VM ends up
        defined on the host where it runs and nowhere else. ``live``: the guest runs
        throughout (``VIR_MIGRATE_LIVE``); not live, a running guest is paused while its
        memory is copied, and a shut-off one moves offline (``VIR_MIGRATE_OFFLINE``): its
        definition only, defined on the target and undefined here. ``progress`` gets a
        reading of ``jobStats()`` about every half second while memory is copied.
        No timeout: cancel to stop it (``abortJob()``: the VM keeps running here). Raises
        ``ActionFailed`` with libvirt's words, ``VmNotFound`` when this host has no such VM.
        """
        title = f"Migrating {vm.name} to {target.host.name} failed"
        if not isinstance(target, LibvirtBackend):
            raise ActionFailed(
                f"{target.host.name} is not a libvirt host: libvirt migrates between its own",
                title=title,
            )
        source = await self._ensure_session()
        destination = await target._ensure_session()
        for backend in (self, target):
            reason = backend.withheld.get(Capability.MIGRATE)
            if reason is not None:
                raise ActionFailed(f"{backend.host.name}: {reason}", title=title)

        def started(future: concurrent.futures.Future[None]) -> None:
            for session in (source, destination):
                session.migrations = (
                    *(f for f in session.migrations if not f.done()),
                    future,
                )

        source_conn = await self._migration_connection(source)
        destination_conn = await target._migration_connection(destination)
        try:
            await run_migration(
                source_conn,
                destination_conn,
                vm.uuid,
                live=live,
                progress=progress,
                label=f"{self._host.name}-{vm.name}",
                started=started,
            )
        except libvirt.libvirtError as exc:
            if _code(exc) == libvirt.VIR_ERR_NO_DOMAIN:
                raise self._not_found(vm) from None
            if _is_connection_error(exc):
                # Opened afresh for the next migration (closing it here could block: the
                # sessions' tear-down closes whichever is still held).
                source.migration_conn = destination.migration_conn = None
            raise ActionFailed(_message(exc), title=title) from None

    async def _migration_connection(self, session: _Session) -> Any:
        """The session's connection for migrations (``_Session.migration_conn``), opened
        on its worker the first time."""
        if session.migration_conn is None:

            def open_plain() -> Any:
                try:
                    conn = libvirt.open(_open_uri(self._uri))
                except libvirt.libvirtError as exc:
                    raise HostUnreachable(f"{self._uri}: {_message(exc)}") from None
                with contextlib.suppress(libvirt.libvirtError):
                    conn.setKeepAlive(5, 3)
                return conn

            session.migration_conn = await self._call(session, open_plain)
        return session.migration_conn

    def _not_found(self, vm: Vm) -> VmNotFound:
        return VmNotFound(f"{vm.name} ({vm.uuid}) is not defined on {self._host.name}")

    # ---------------------------------------------------------------- close

    async def close(self) -> None:
        session, self._session = self._session, None
        if session is None:
            return
        self._retire(session)
        # Wait for a tidy close (it takes milliseconds) so the host sees us leave, but not
        # for a stuck host: at exit every host is closed and nobody wants to wait 20 s.
        with contextlib.suppress(Exception):
            await asyncio.wait_for(
                asyncio.wrap_future(session.torn_down), min(self._timeout, _CLOSE_WAIT_S)
            )


def _all_domain_stats(session: _Session) -> Any:
    try:
        return session.conn.getAllDomainStats(_STATS_GROUPS, session.stats_flags)
    except libvirt.libvirtError as exc:
        if session.stats_flags and _code(exc) == libvirt.VIR_ERR_INVALID_ARG:
            # Daemons older than libvirt 4.5 reject NOWAIT as an unknown flag.
            session.stats_flags = 0
            return session.conn.getAllDomainStats(_STATS_GROUPS, 0)
        raise


def _domain_records(session: _Session) -> list[tuple[Any, dict[str, Any]]]:
    """(domain, stats) of every domain, in one call where the driver can."""
    try:
        records: list[tuple[Any, dict[str, Any]]] = _all_domain_stats(session)
        return records
    except libvirt.libvirtError as exc:
        if _code(exc) != libvirt.VIR_ERR_NO_SUPPORT:
            raise
    records = []
    for dom in session.conn.listAllDomains(0):
        try:
            state = dom.state()[0]
        except libvirt.libvirtError as state_exc:
            if _code(state_exc) == libvirt.VIR_ERR_NO_DOMAIN:
                continue
            raise
        records.append((dom, {"state.state": state}))
    return records


def _read_definitions(
    records: Sequence[tuple[Any, dict[str, Any]]],
    previous: Mapping[bytes, tuple[tuple[object, ...], Vm]],
    cache: Mapping[str, DomainStatic],
    *,
    keep: bool = False,
) -> dict[str, tuple[str, bool, str | None]]:
    """(XML, persistent, persistent XML) of each listed domain whose definition is not
    cached, by UUID; the persistent XML only with ``keep``, for a persistent domain.

    Calls to the host. A domain undefined since the listing is left out; one whose XML
    cannot be read gets "" (it is then shown without its definition's facts, not hidden).
    """
    definitions: dict[str, tuple[str, bool, str | None]] = {}
    for dom, stats in records:
        entry = previous.get(dom.UUID())
        uuid: str = entry[1].uuid if entry is not None else dom.UUIDString()
        if uuid in cache:
            continue
        try:
            xml = str(dom.XMLDesc(0))
            persistent = bool(dom.isPersistent())
            kept = None
            if keep and persistent:
                shut_off = stats.get("state.state") == _SHUTOFF
                kept = persistent_domain_xml(dom, xml, shut_off=shut_off)
            definitions[uuid] = (xml, persistent, kept)
        except libvirt.libvirtError as exc:
            if _code(exc) == libvirt.VIR_ERR_NO_DOMAIN:
                continue
            if _is_connection_error(exc):
                raise
            definitions[uuid] = ("", False, None)
    return definitions


def _free_memory_bytes(session: _Session) -> int | None:
    try:
        return int(session.conn.getFreeMemory())
    except libvirt.libvirtError as exc:
        if _is_connection_error(exc):
            raise
        return None


def _sysrq_code(key: str) -> int:
    code = _LETTER_CODES.get(key)
    if code is None or key not in SYSRQ_KEYS:
        raise ActionRefused(f"SysRq {key!r} is not one ovmtui sends ({', '.join(SYSRQ_KEYS)})")
    return code


def _vm_order(vm: Vm) -> tuple[str, str]:
    return (vm.name, vm.uuid)


def _tear_down(session: _Session) -> None:
    """On a helper thread: wait for the worker's current call, then close the connection."""
    try:
        session.executor.shutdown(wait=True)
        # A migration still running on this connection, from its own thread: closing the
        # connection under it is unsafe (and would fail it).
        concurrent.futures.wait(session.migrations)
        if session.migration_conn is not None:
            with contextlib.suppress(Exception):
                session.migration_conn.close()
        conn = session.conn
        if conn is not None:
            deregister_infrastructure_events(conn, session.infra_events)
            for event_id in session.event_ids:
                with contextlib.suppress(Exception):
                    conn.domainEventDeregisterAny(event_id)
            if session.close_callback:
                with contextlib.suppress(Exception):
                    conn.unregisterCloseCallback()
            with contextlib.suppress(Exception):
                conn.close()
    finally:
        with contextlib.suppress(concurrent.futures.InvalidStateError):
            session.torn_down.set_result(None)
