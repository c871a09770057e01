"""A VM's serial console from open to close: audited, logged, re-attached after a reboot.

``ConsoleSession`` knows nothing of Textual: the console screen and ``ovmtui console`` are its
faces. It opens the console through the VM's host (``ConsoleTransport``), hands every byte
received to its face (``watch``) after appending it to the session log, sends what the
face types, and says what it is doing (``on_status``). When the console ends without being
asked to (a guest reboot on Xen re-creates the domain; a host that drops the connection), it
waits for the VM to come back (same UUID, on its host or, after a migration, another) and
re-attaches, showing the gap; after ``reattach_timeout_s`` it gives up and says why.

Opening and closing are one audited operation (``Operations``): the "started" record when the
console opens, the result (how it ended, bytes received, the log file) when it closes. A
console only reads unless keys are sent, so read-only mode opens it too, view-only. With no
journal to write to (an unwritable repository) a view-only console still opens: it changes
nothing, and its session log is its record.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import os
import re
import shlex
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO

from ovmtui.backend.base import ConsoleChannel, ConsoleTransport
from ovmtui.errors import ActionRefused, ConsoleUnavailable, HostUnreachable, OvmError
from ovmtui.model import HostKey, PlacedVm
from ovmtui.operations import Operation, Operations

REATTACH_TIMEOUT_S = 60.0  # a Xen guest's reboot, BIOS and all, is back well within it
REATTACH_RETRY_S = 1.0
LOG_FLUSH_S = 1.0
READ_BYTES = 65536
TERM_TYPE = "xterm-256color"
# Keys typed faster than the host takes them wait here; beyond it they are dropped (a paste
# of megabytes into a console whose host went silent must not grow without bound).
MAX_UNSENT_BYTES = 1 << 20
# What a console keeps for a face that is not watching yet (about a screenful of a boot and
# its scrollback's last lines); more is in the session log.
BACKLOG_BYTES = 256 << 10
_SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")


class ConsoleState(enum.StrEnum):
    CONNECTING = "connecting"
    ATTACHED = "attached"
    REATTACHING = "guest rebooting"
    CLOSED = "closed"


@dataclass(frozen=True, slots=True)
class ConsoleStatus:
    """What a console's status line says."""

    state: ConsoleState
    vm: str
    uuid: str
    host: str
    command: str  # the equivalent shell command: `virsh console web01`, `xm console 12`
    view_only: bool
    log_path: Path | None
    bytes_in: int = 0
    attaches: int = 0
    detail: str | None = None  # why it closed, what it waits for, a log problem
    ok: bool = True  # False: it never attached, or ended on an error


@dataclass(frozen=True, slots=True)
class ConsoleRequest:
    """A console to open as the program starts (``ovmtui console VM``)."""

    uuid: str
    name: str
    force: bool = False


def default_console_log_dir(env: dict[str, str] | None = None) -> Path:
    env = dict(os.environ) if env is None else env
    base = env.get("XDG_STATE_HOME") or str(
        Path(env.get("HOME", "~")).expanduser() / ".local/state"
    )
    return Path(base) / "ovmtui" / "consoles"


def console_log_path(directory: Path, vm_name: str, now: datetime) -> Path:
    """``<dir>/<vm>-<UTC time>.log``; a name with characters a file name should not hold
    keeps only the safe ones (the VM's UUID is in the journal record beside the path)."""
    safe = _SAFE_NAME.sub("_", vm_name).strip("._") or "vm"
    return directory / f"{safe[:80]}-{now.strftime('%Y%m%dT%H%M%SZ')}.log"


class ConsoleSession:
    """One console, from ``run()`` until ``close()`` or its end (see the module docstring)."""

    def __init__(
        self,
        target: PlacedVm,
        *,
        transport_for: Callable[[HostKey], ConsoleTransport | None],
        locate: Callable[[str], PlacedVm | None],
        operations: Operations,
        log_dir: Path | None,
        view_only: bool = False,
        force: bool = False,
        size: tuple[int, int] = (80, 24),
        reattach_timeout_s: float = REATTACH_TIMEOUT_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.target = target
        self._transport_for = transport_for
        self._locate = locate
        self._operations = operations
        self._force = force
        self._size = size
        self._reattach_timeout_s = reattach_timeout_s
        self._clock = clock
        # Where received bytes go (``watch``); until a face watches, they wait in a backlog.
        self._on_output: Callable[[bytes], object] | None = None
        self._backlog = bytearray()
        self.on_status: Callable[[ConsoleStatus], object] = lambda _status: None
        transport = transport_for(target.host_key)
        command = transport.console_command(target.vm) if transport else f"console {target.vm.name}"
        self._status = ConsoleStatus(
            state=ConsoleState.CONNECTING,
            vm=target.vm.name,
            uuid=target.vm.uuid,
            host=target.host,
            command=command,
            view_only=view_only,
            log_path=None,
        )
        self._channel: ConsoleChannel | None = None
        self._unsent: asyncio.Queue[bytes] = asyncio.Queue()
        self._unsent_bytes = 0
        self._closing: str | None = None
        self._closed = asyncio.Event()
        self._log: BinaryIO | None = None
        self._log_path = (
            None
            if log_dir is None
            else console_log_path(log_dir, target.vm.name, datetime.now(UTC))
        )
        self._gap_started: datetime | None = None
        self._log_flushed = 0.0
        self._task: asyncio.Task[ConsoleStatus] | None = None

    # -- what the face sees and does ------------------------------------------------------

    @property
    def status(self) -> ConsoleStatus:
        return self._status

    @property
    def key(self) -> str:
        """Which console this is: one per VM in a session."""
        return self.target.vm.uuid

    def watch(self, on_output: Callable[[bytes], object] | None) -> None:
        """Hand every byte received to ``on_output`` from now on (None: nobody watches).

        What came while nobody watched is handed over first, up to ``BACKLOG_BYTES``: a fast
        guest's first screenful arrives before its console's screen is up to show it (the
        session log has every byte anyway)."""
        self._on_output = on_output
        if on_output is not None and self._backlog:
            backlog, self._backlog = bytes(self._backlog), bytearray()
            on_output(backlog)

    def send(self, data: bytes) -> None:
        """Queue ``data`` for the guest (keys, a paste, a query's answer); dropped when the
        console is view-only, not attached, or its host has not taken the last megabyte."""
        if self._status.view_only or self._channel is None or not data:
            return
        if self._unsent_bytes + len(data) > MAX_UNSENT_BYTES:
            return
        self._unsent_bytes += len(data)
        self._unsent.put_nowait(data)

    def answer(self, data: bytes) -> None:
        """The terminal's answer to the guest's query (cursor position, device attributes):
        sent even when view-only, or a shell that asked stalls waiting for it."""
        if self._channel is not None and data:
            self._unsent_bytes += len(data)
            self._unsent.put_nowait(data)

    def resize(self, columns: int, rows: int) -> None:
        self._size = (columns, rows)
        if self._channel is not None:
            self._channel.resize(columns, rows)

    def close(self, reason: str = "closed by the operator") -> None:
        """End the console (idempotent); ``run()`` then records it and returns."""
        if self._closing is None:
            self._closing = reason
        self._closed.set()

    def start(self) -> asyncio.Task[ConsoleStatus]:
        """``run()`` as a task of its own (the face keeps it; closing waits for it)."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run_reported())
        return self._task

    async def _run_reported(self) -> ConsoleStatus:
        # A console that could not be opened says so in its status (CLOSED, not ok, the
        # reason), which its face shows: the error need not travel further.
        with contextlib.suppress(OvmError):
            return await self.run()
        return self._status

    async def wait_closed(self) -> ConsoleStatus:
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.shield(self._task)
        return self._status

    async def run(self) -> ConsoleStatus:
        """Open, attach, re-attach, until closed; on the record. Raises the ``OvmError`` of
        a console that could not be opened at all (the record says so too)."""
        operation = Operation(
            operation="console",
            command=self._journal_command(),
            pool=self.target.pool,
            host=self.target.host,
            vm=self.target.vm.name,
            uuid=self.target.vm.uuid,
            changes=False,
        )
        try:
            self._operations.journal()
        except ActionRefused as refused:
            if not self._status.view_only:
                raise
            self._set(detail=f"not in the journal: {refused.message}")
            return await self._session()
        done = await self._operations.run(operation, self._session, outcome=self._outcome)
        if done.unrecorded is not None:
            self._set(detail=f"{self._status.detail}; not in the journal: {done.unrecorded}")
        return done.value

    # -- the session ----------------------------------------------------------------------

    async def _session(self) -> ConsoleStatus:
        try:
            self._open_log()
            return await self._attach_until_closed()
        except OvmError as exc:
            self._set(state=ConsoleState.CLOSED, detail=exc.message, ok=False)
            raise
        finally:
            self._close_log()
            if self._status.state is not ConsoleState.CLOSED:  # cancelled
                self._set(state=ConsoleState.CLOSED, detail="ovmtui ended", ok=False)

    async def _attach_until_closed(self) -> ConsoleStatus:
        away_since: float | None = None
        reason = "the console ended"  # why it went away
        since = ""  # what the last attempt to come back said, when it differs
        while self._closing is None:
            placed = self.target
            try:
                ended = await self._attached(placed, force=self._force and away_since is None)
            except (ConsoleUnavailable, HostUnreachable) as exc:
                if self._status.attaches == 0:
                    raise  # never attached: the operation failed, and says why
                since = f" (then: {exc.message})" if exc.message != reason else ""
            else:
                if ended is None:  # closed by the operator while attached
                    break
                away_since, reason, since = None, ended, ""
            now = self._clock()
            if away_since is None:
                away_since = now
                self._gap_started = datetime.now(UTC)
            left = self._reattach_timeout_s - (now - away_since)
            if left <= 0:
                self._set(
                    state=ConsoleState.CLOSED,
                    detail=f"{reason}; not back within {self._reattach_timeout_s:g} s{since}",
                )
                return self._status
            self._set(
                state=ConsoleState.REATTACHING,
                detail=f"{reason}; re-attaching when it is back ({left:.0f} s left){since}",
            )
            await self._wait(REATTACH_RETRY_S)
            found = self._locate(self.target.vm.uuid)
            if found is not None:
                self.target = found  # back, perhaps on another host (a migration)
        self._set(state=ConsoleState.CLOSED, detail=self._closing or reason)
        return self._status

    async def _attached(self, placed: PlacedVm, *, force: bool) -> str | None:
        """One attachment: the reason it ended, or None when the operator closed it."""
        transport = self._transport_for(placed.host_key)
        if transport is None:
            raise ConsoleUnavailable(f"{placed.host} gives no serial consoles")
        async with transport.console(
            placed.vm, term_type=TERM_TYPE, term_size=self._size, force=force
        ) as channel:
            if self._status.attaches:
                self._mark_gap()
            self._channel = channel
            self._set(
                state=ConsoleState.ATTACHED,
                host=placed.host,
                command=transport.console_command(placed.vm),
                attaches=self._status.attaches + 1,
                detail=self._status.detail if self._status.attaches == 0 else None,
            )
            writer = asyncio.create_task(self._write(channel))
            reader = asyncio.create_task(self._read(channel))
            closed = asyncio.create_task(self._closed.wait())
            try:
                await asyncio.wait({reader, writer, closed}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                self._channel = None
                for task in (reader, writer, closed):
                    task.cancel()
                await asyncio.gather(reader, writer, closed, return_exceptions=True)
                self._drop_unsent()
            if self._closing is not None:
                return None
            for task in (reader, writer):
                if task.done() and not task.cancelled():
                    problem = task.exception()
                    if isinstance(problem, OvmError):
                        return problem.message
            return channel.end_reason or "the console ended"

    async def _read(self, channel: ConsoleChannel) -> None:
        while True:
            data = await channel.read(READ_BYTES)
            if not data:
                return
            self._received(data)

    async def _write(self, channel: ConsoleChannel) -> None:
        while True:
            data = await self._unsent.get()
            self._unsent_bytes -= len(data)
            await channel.write(data)

    async def _wait(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._closed.wait(), seconds)

    def _drop_unsent(self) -> None:
        while not self._unsent.empty():
            self._unsent.get_nowait()
        self._unsent_bytes = 0

    def _received(self, data: bytes) -> None:
        self._log_write(data)
        self._status = replace(self._status, bytes_in=self._status.bytes_in + len(data))
        self._show(data)

    def _mark_gap(self) -> None:
        since = self._gap_started
        now = datetime.now(UTC)
        away = f" after {(now - since).total_seconds():.0f} s" if since else ""
        text = f"\r\n[ovmtui: console re-attached{away}, {now:%H:%M:%S} UTC]\r\n"
        self._log_write(text.encode())
        self._show(f"\x1b[7m{text.strip()}\x1b[0m\r\n".encode())

    def _show(self, data: bytes) -> None:
        if self._on_output is not None:
            self._on_output(data)
            return
        self._backlog += data
        if len(self._backlog) > BACKLOG_BYTES:
            del self._backlog[: len(self._backlog) - BACKLOG_BYTES]

    # -- the log and the record -------------------------------------------------------------

    def _open_log(self) -> None:
        path = self._log_path
        if path is None:
            return
        try:
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            # The guest's console may show secrets: only its owner reads the log.
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        except OSError as exc:
            self._set(detail=f"no session log: {path}: {exc.strerror}")
            return
        self._log = os.fdopen(fd, "ab")
        self._set(log_path=path)

    def _log_write(self, data: bytes) -> None:
        if self._log is None:
            return
        try:
            self._log.write(data)
            now = self._clock()
            if now - self._log_flushed >= LOG_FLUSH_S:
                self._log_flushed = now
                self._log.flush()
        except OSError as exc:
            # A full disk stops the log, not the console.
            self._set(detail=f"the session log stopped: {exc.strerror}")
            self._close_log()

    def _close_log(self) -> None:
        log, self._log = self._log, None
        if log is not None:
            with contextlib.suppress(OSError):
                log.close()

    def _journal_command(self) -> str:
        """The shell equivalent of what this console does: attach and keep a copy."""
        log = self._log_path
        tail = f" | tee -a {shlex.quote(str(log))}" if log is not None else ""
        return f"{self._status.command}{tail}"

    def _outcome(self, status: ConsoleStatus) -> tuple[bool, str]:
        log = f"; log {status.log_path}" if status.log_path else ""
        return status.ok, f"{status.detail or 'closed'}; {status.bytes_in} bytes in{log}"

    def _set(self, **changes: Any) -> None:
        self._status = replace(self._status, **changes)
        self.on_status(self._status)
