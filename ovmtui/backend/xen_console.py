"""A Xen domain's serial console: ``xm console`` / ``xl console`` in a PTY over SSH.

The backend (``xen_ssh``) opens the long channel; this module, which never sees asyncssh,
decides when the tool is attached, turns a refusal into ``ConsoleUnavailable``, and says
why an attached console ended.

Both tools exec ``xenconsole``, which prints nothing when it attaches: it makes the
terminal raw with ``TCSAFLUSH``, throwing away what was typed before, then relays bytes.
So attachment is read from the stream: a tool that refuses (an unknown domain, one not
started) prints its error and exits at once; one that attached stays. The first output
followed by ``ERROR_GRACE_S`` without the stream ending is the guest talking (attached),
unless it reads like the tools' refusals, which get ``ATTACH_SETTLE_S`` more to end;
``ATTACH_SETTLE_S`` of silence with the tool still running is an idle guest (attached as
well, as far as anything but the far side's terminal modes can tell: a tool slower than
that to attach, on a very busy dom0, throws away what is typed before it does). The read under way
when the wait ends is never cancelled (a cancelled read could lose the end of the stream):
the channel's first read picks it up, so no byte of the guest's is lost either.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable

from ovmtui.backend.base import LongChannel
from ovmtui.backend.xen_parse.common import toolstack_error
from ovmtui.backend.xen_parse.xm_table import TableRow
from ovmtui.errors import ConsoleUnavailable, HostUnreachable, OvmError
from ovmtui.model import Vm, VmState

# How long a tool that printed nothing yet may still refuse. xm is a Python program that
# asks xend over XML-RPC before it execs xenconsole: about half a second on a busy dom0.
ATTACH_SETTLE_S = 1.0
# After the first output, how long the stream must stay open for it to be the guest's
# and not an error the tool prints before it exits (both come in one write in practice).
ERROR_GRACE_S = 0.25
ESCAPE = b"\x1d"  # Ctrl+]: xenconsole's escape key, ends the tool with status 0
_TAIL_BYTES = 1024
# What the tools print when they refuse ("Error: Domain 'x' is not started" and the usage,
# "x is an invalid domain identifier (rc=-6)", "xenconsole: Could not read tty ...").
_REFUSAL = re.compile(
    r"^(error|usage|libxl: error|xenconsole:)|invalid domain identifier", re.IGNORECASE | re.M
)
_CONTROL = re.compile(r"\x1b(\[[0-9;?]*[ -/]*[@-~]|[@-Z\\-_])|[\x00-\x08\x0b-\x1f\x7f]")

DomainNow = Callable[[], Awaitable[TableRow | None]]
"""The domain's row of the host's listing now, None once the host does not know it;
raises ``OvmError`` when the host cannot tell."""


def console_argv(tool: str, vm: Vm) -> list[str]:
    """``xm console <domid>`` (the name when no id is known), ``xl console <name>``."""
    if tool == "xm" and vm.domain_id is not None:
        return ["xm", "console", str(vm.domain_id)]
    return [tool, "console", vm.name]


async def attached(
    channel: LongChannel, *, host: str, command: str, vm: Vm, domain_now: DomainNow
) -> XenConsoleChannel:
    """The console once ``command`` on ``channel`` is attached, or ``ConsoleUnavailable``
    with the tool's words when it refuses (see the module docstring). ``domain_now`` is
    asked why, should the tool end by itself later."""
    loop = asyncio.get_running_loop()
    seen = b""
    deadline = loop.time() + ATTACH_SETTLE_S
    reading: asyncio.Task[bytes] | None = None
    first_at = deadline
    try:
        while True:
            reading = reading or asyncio.ensure_future(channel.read())
            done, _ = await asyncio.wait({reading}, timeout=max(0.0, deadline - loop.time()))
            if not done:
                break
            chunk, reading = reading.result(), None
            if not chunk:
                said = toolstack_error(_plain(seen), "") if seen.strip() else None
                ended = f"ended at once (exit status {channel.exit_status})"
                raise ConsoleUnavailable(f"{host}: `{command}`: {said or ended}")
            if not seen:
                first_at = loop.time()
            seen += chunk
            if _REFUSAL.search(_plain(seen[:_TAIL_BYTES])):  # a refusal comes first
                deadline = first_at + ATTACH_SETTLE_S  # its exit is surely coming
            else:
                deadline = min(deadline, first_at + ERROR_GRACE_S)
    except BaseException:
        if reading is not None:
            reading.cancel()
        raise

    async def explain(status: int | None, said: str) -> str:
        return await _why_it_ended(command, vm, status, said, domain_now)

    return XenConsoleChannel(channel, command, seen, reading, explain)


class XenConsoleChannel:
    """``ConsoleChannel`` over the long channel running ``xm/xl console``."""

    def __init__(
        self,
        channel: LongChannel,
        command: str,
        first: bytes,
        reading: asyncio.Task[bytes] | None,
        explain: Callable[[int | None, str], Awaitable[str]],
    ) -> None:
        self._channel = channel
        self._command = command
        self._pending = first  # what the tool printed while attaching
        self._reading = reading  # the read under way when attachment was decided
        self._tail = first[-_TAIL_BYTES:]
        self._escaped = False
        self._closed = False
        self._end_reason: str | None = None
        self._explain = explain  # why the tool ended by itself

    @property
    def exit_status(self) -> int | None:
        return self._channel.exit_status

    @property
    def end_reason(self) -> str | None:
        return self._end_reason

    async def read(self, max_bytes: int = 65536) -> bytes:
        if self._pending:
            data, self._pending = self._pending[:max_bytes], self._pending[max_bytes:]
            return data
        try:
            if self._reading is not None:
                reading, self._reading = self._reading, None
                data = await reading
            else:
                data = await self._channel.read(max_bytes)
        except HostUnreachable:
            self._end_reason = self._end_reason or "the SSH connection to the host was lost"
            raise
        if data:
            self._tail = (self._tail + data)[-_TAIL_BYTES:]
            return data
        if self._end_reason is None:
            self._end_reason = await self._why()
        return b""

    async def _why(self) -> str:
        if self._closed:
            return "the console was closed from this side"
        if self._escaped:
            return f"left with Ctrl+] (`{self._command}`'s escape key)"
        return await self._explain(self.exit_status, _last_line(self._tail))

    async def write(self, data: bytes) -> None:
        if ESCAPE in data:
            self._escaped = True
        await self._channel.write(data)

    def write_eof(self) -> None:
        self._channel.write_eof()

    def resize(self, columns: int, rows: int) -> None:
        self._channel.resize(columns, rows)

    async def close(self) -> None:
        self._closed = True
        if self._reading is not None:
            # Not awaited: a cancel of the task closing us must not be taken for its own.
            self._reading.cancel()
            self._reading = None
        await self._channel.close()


async def _why_it_ended(
    command: str, vm: Vm, status: int | None, said: str, domain_now: DomainNow
) -> str:
    """The tool ended by itself: xenconsole leaves without a word when the domain's console
    goes (destroyed, shut down, rebooted), so the host is asked what became of it."""
    ended = _tool_ended(command, status, said)
    try:
        row = await domain_now()
    except OvmError:
        return ended
    if row is None:
        return "the domain is gone: it was shut down or destroyed"
    if row.domid is None or row.state is VmState.SHUTOFF:
        return "the guest shut off"
    if vm.domain_id is not None and row.domid != vm.domain_id:
        return f"the guest rebooted: it runs as domain {row.domid} now"
    return ended


def _tool_ended(command: str, status: int | None, said: str) -> str:
    how = "ended" if status is None else f"exited with status {status}"
    return f"`{command}` {how}" + (f": {said}" if said and status else "")


def _plain(data: bytes) -> str:
    return _CONTROL.sub("", data.decode("utf-8", "replace").replace("\r\n", "\n"))


def _last_line(data: bytes) -> str:
    lines = [line.strip() for line in _plain(data).splitlines() if line.strip()]
    return lines[-1] if lines else ""
