"""Xen hosts reached over SSH, managed with their own ``xm`` or ``xl``: the only module that
imports asyncssh.

One SSH connection per host, opened on first use and kept: a command on an open connection
costs a few milliseconds, a new connection tens (key exchange, authentication). A poll is one
command (one channel): the host's ``info``, its domain listings and the ``vm.cfg`` files of
the pool's ``running_pool`` are printed in sections that a per-poll random marker separates,
so a VM name can never fake a section. At most ``MAX_CHANNELS`` commands run at once on a
connection: OpenSSH refuses the 11th concurrent session by default (``MaxSessions 10``).

Long-lived channels (a console, a migration, a download: ``long_channel``) share the
connection but not the polls' fate: a budget of their own (``MAX_LONG_CHANNELS``, refused at
once beyond it), no command timeout, and a poll that times out moves the polls to a new
connection rather than cut them off.

Host keys are always checked against ``known_hosts``; an unknown or changed key refuses the
connection and says which key the host offered and how to accept it. No password is ever
asked for or stored: keys (a given identity, the agent, the default keys) only.

Every argument that reaches the remote shell goes through ``shlex.quote``.

The connections live on the SSH loop (``ssh_loop.py``), a thread of their own: asyncssh's
objects are touched only there, by the helpers at the end of this module, so that packet
work never runs in the screen's turns. What stays here (bounds, locks, parsing) runs on the
caller's loop.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import hashlib
import logging
import os
import random
import re
import secrets
import shlex
import threading
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Final, Literal

import asyncssh
from asyncssh.encryption import get_default_encryption_algs

from ovmtui.backend import ssh_loop
from ovmtui.backend.base import (
    Backend,
    ChannelsBusy,
    CommandOutput,
    ConsoleChannel,
    DiskChange,
    EventCallback,
    LongChannel,
)
from ovmtui.backend.pacing import connect_turn, waiting, working
from ovmtui.backend.xen_console import attached, console_argv
from ovmtui.backend.xen_disks import XenDisks, create_command
from ovmtui.backend.xen_disks import delete_argv as delete_disk_argv
from ovmtui.backend.xen_migrate import (
    OUTPUT_TAIL_BYTES,
    migration_argv,
    migration_failure,
    needs_script,
    read_answers,
    read_needs,
    target_script,
)
from ovmtui.backend.xen_parse.common import NOT_FOUND as _NOT_FOUND
from ovmtui.backend.xen_parse.common import ParseIssue, XenDomain
from ovmtui.backend.xen_parse.common import output_text as _text
from ovmtui.backend.xen_parse.common import toolstack_error as _toolstack_error
from ovmtui.backend.xen_parse.info import parse_info
from ovmtui.backend.xen_parse.vm_cfg import parse_vm_cfg, vm_config
from ovmtui.backend.xen_parse.xl_json import parse_xl_list_long
from ovmtui.backend.xen_parse.xm_list_long import parse_xm_list_long
from ovmtui.backend.xen_parse.xm_table import (
    TableReader,
    TableRow,
    merge_table_rows,
    parse_list_table,
)
from ovmtui.backend.xen_storage import (
    STORAGE_TIMEOUT_S,
    delete_argv,
    parse_scan,
    read_file_argv,
    scan_argv,
    scan_command,
    within,
)
from ovmtui.errors import (
    ActionFailed,
    ActionRefused,
    HostTimeout,
    HostUnreachable,
    OvmError,
    VmNotFound,
)
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
    cpu_usage_percent,
    vm_with_readings,
)
from ovmtui.storage_model import StorageEntry, StorageScan

Toolstack = Literal["xm", "xl"]

# AES-GCM before asyncssh's first choice, ChaCha20-Poly1305: asyncssh builds a new cipher
# context for every ChaCha20 packet (32 µs for 3 KB here) while AES-GCM is one call (5 µs),
# and a poll is about fifteen packets, all on the event loop. Hosts without GCM (OpenSSH
# before 6.2) negotiate the next cipher both sides know, as before.
_GCM = ("aes128-gcm@openssh.com", "aes256-gcm@openssh.com")
_CIPHERS: Final = [
    *_GCM,
    *(alg.decode() for alg in get_default_encryption_algs() if alg.decode() not in _GCM),
]

# OpenSSH refuses the 11th concurrent session (MaxSessions 10), and frees a closed one a
# little late: 8 reopened at once fail now and then, 6 never did here.
MAX_CHANNELS = 6
# Long-lived channels apart from those: a console left open must not take a poll's place.
# They open rarely and stay open, so the late frees that limit the polls' budget hardly
# concern them; with the polls' 6 they make 9 of the 10 sessions, one to spare.
MAX_LONG_CHANNELS = 3

# Full polls are parsed on this one thread, every host's in turn. The parse is Python (it
# holds the GIL), so more threads would not parse faster; they would only queue with the
# event loop for the GIL, and each of them makes the loop wait its turn again.
# One of the latency knobs gathered in docs/latency.md.
_PARSER: Final = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="xen-parse")

# A full poll (info, long listing, vm.cfg files) about this often, even if nothing
# seems to have changed: disks hot-plugged, free memory, a vm.cfg edited by hand. In time,
# not in polls: these change no faster because the operator polls faster, and a full poll
# costs the client 7 ms of parsing a host (every 12th poll at 2 s intervals made the event
# loop's p99 stall 5.1 ms instead of 4). See docs/latency.md.
FULL_POLL_AFTER_S = 60.0
# Each host's next full poll comes within ±25 % of it, so that the hosts first polled
# together (every one, at start-up) do not parse their full polls in the same second
# forever after.
FULL_POLL_SPREAD = 0.25

CHANNEL_RETRIES = 3
CONNECT_TIMEOUT_S = 10.0
POLL_TIMEOUT_S = 20.0
ACTION_TIMEOUT_S = 120.0
# How long closing a long-lived channel waits for the host to confirm; it is closed anyway.
LONG_CLOSE_WAIT_S = 2.0
KEEPALIVE_INTERVAL_S = 15.0
KEEPALIVE_COUNT_MAX = 3
DEFAULT_KNOWN_HOSTS = "~/.ssh/known_hosts"

# asyncssh logs through `logging`; Python's last-resort handler would print its warnings
# over the screen. Its errors reach the operator as exceptions instead.
logging.getLogger("asyncssh").addHandler(logging.NullHandler())
logging.getLogger("asyncssh").propagate = False

_ACTION_VERBS: dict[VmAction, str] = {
    VmAction.SHUTDOWN: "shutdown",
    VmAction.REBOOT: "reboot",
    VmAction.PAUSE: "pause",
    VmAction.RESUME: "unpause",
    VmAction.FORCE_OFF: "destroy",
}

# Exactly what this module implements (the contract test checks it): no EVENTS (xm and xl
# have no event stream: the poller polls), no DEFINE (defining from a vm.cfg is not written
# yet).
_CAPABILITIES = frozenset(
    {
        Capability.ATTACH_DISK,
        Capability.CONSOLE,
        Capability.MIGRATE,
        Capability.SYSRQ,
        Capability.START,
        Capability.SHUTDOWN,
        Capability.REBOOT,
        Capability.PAUSE,
        Capability.RESUME,
        Capability.FORCE_OFF,
        Capability.DEFINITION,
        Capability.STORAGE_SCAN,
    }
)


@dataclass(frozen=True, slots=True)
class SshTarget:
    """``user@host[:port]`` (``[v6addr]:port`` for IPv6)."""

    user: str | None
    host: str
    port: int = 22

    @classmethod
    def parse(cls, text: str) -> SshTarget:
        user, _, rest = text.rpartition("@")
        match = re.fullmatch(
            r"\[(?P<v6>[^\]]+)\](?::(?P<p6>\d+))?|(?P<h>[^:\[\]\s]+)(?::(?P<p>\d+))?",
            rest,
            re.ASCII,  # \d is 0-9 only: a full-width digit is no port number
        )
        if not rest or match is None:
            raise OvmError(f"{text!r}: expected user@host[:port]", title="Invalid SSH target")
        host = match["v6"] or match["h"]
        port = int(match["p6"] or match["p"] or 22)
        if not 0 < port < 65536:
            raise OvmError(f"{text!r}: port {port} is out of range", title="Invalid SSH target")
        return cls(user or None, host, port)

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.user + '@' if self.user else ''}{host}:{self.port}"


@dataclass(frozen=True, slots=True)
class _Lister:
    """The long-lived ``while read; do xm list; done`` channel of one connection."""

    conn: asyncssh.SSHClientConnection
    toolstack: Toolstack
    marker: str
    process: asyncssh.SSHClientProcess[str]
    lock: asyncio.Lock  # one table at a time on the stream


class _SshLongChannel:
    """``LongChannel`` over one asyncssh session (the only way one leaves this module)."""

    def __init__(
        self,
        host_name: str,
        command: str,
        conn: asyncssh.SSHClientConnection,
        process: asyncssh.SSHClientProcess[bytes],
        *,
        terminal: bool,
    ) -> None:
        self.conn = conn
        self._name = f"{host_name}: `{command}`"
        self._process = process
        self._terminal = terminal
        self._closed = False
        self._ended = False  # the output's end was read
        self._lost = False  # ... because the connection was lost

    @property
    def exit_status(self) -> int | None:
        return self._process.exit_status

    async def read(self, max_bytes: int = 65536) -> bytes:
        if self._closed:
            return b""
        try:
            data = await ssh_loop.run(self._process.stdout.read(max_bytes))
        except (asyncssh.Error, OSError) as exc:
            if self._closed:  # closed by another task while this one waited
                return b""
            raise HostUnreachable(f"{self._name}: SSH failed: {_describe(exc)}") from None
        if not data and not self._ended:
            self._ended = True
            # sshd sends the end of the output before the exit status: whoever reads the
            # end then asks for the status. (A command that closed its output and runs on
            # is not waited for long.)
            with contextlib.suppress(Exception):
                await asyncio.wait_for(ssh_loop.run(self._process.wait_closed()), LONG_CLOSE_WAIT_S)
            # A lost connection ends the output too; a console must not take that for
            # the guest's console ending.
            process = self._process
            self._lost = (
                process.exit_status is None
                and process.exit_signal is None
                and self.conn.is_closed()
                and not self._closed
            )
        if self._lost and not self._closed:
            raise HostUnreachable(f"{self._name}: the SSH connection was lost")
        return data

    async def write(self, data: bytes) -> None:
        if self._closed:
            raise HostUnreachable(f"{self._name}: the channel is closed")
        try:
            await ssh_loop.run(_send(self._process, data))
        except BrokenPipeError:
            raise HostUnreachable(
                f"{self._name}: the command ended, its channel is closed"
            ) from None
        except (asyncssh.Error, OSError) as exc:
            raise HostUnreachable(f"{self._name}: SSH failed: {_describe(exc)}") from None

    def write_eof(self) -> None:
        if not self._closed:
            ssh_loop.call(_quietly, self._process.stdin.write_eof)

    def resize(self, columns: int, rows: int) -> None:
        if self._terminal and not self._closed:
            ssh_loop.call(_quietly, self._process.change_terminal_size, columns, rows)

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        # The command sees its input end, or a hang-up on a PTY (sshd refuses to signal
        # sessions without privilege separation, so no signal is sent).
        with contextlib.suppress(Exception):
            await ssh_loop.run(_close_process(self._process, LONG_CLOSE_WAIT_S))


@dataclass(frozen=True, slots=True)
class _Section:
    name: str
    command: str
    status: int | None
    text: str


class XenSshBackend:
    """One Xen host (xm or xl toolstack) over one SSH connection."""

    def __init__(
        self,
        host: HostKey,
        target: str,
        *,
        identity: str | None = None,
        known_hosts: str | None = None,
        toolstack: Literal["auto", "xm", "xl"] = "auto",
        jump: str | None = None,
        shared_storage: str | None = None,
        connect_timeout_s: float = CONNECT_TIMEOUT_S,
        poll_timeout_s: float = POLL_TIMEOUT_S,
        action_timeout_s: float = ACTION_TIMEOUT_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._host = host
        self._clock = clock
        self._spread = random.Random(f"{host.pool}/{host.name}")  # the same run to run
        self._address = target
        self._target = SshTarget.parse(target)
        self._jump_target = SshTarget.parse(jump) if jump else None
        self._identity = str(Path(identity).expanduser()) if identity else None
        self._known_hosts = str(Path(known_hosts or DEFAULT_KNOWN_HOSTS).expanduser())
        self._forced: Toolstack | None = None if toolstack == "auto" else toolstack
        self._shared_storage = shared_storage
        self._connect_timeout_s = connect_timeout_s
        self._poll_timeout_s = poll_timeout_s
        self._action_timeout_s = action_timeout_s
        self._conn: asyncssh.SSHClientConnection | None = None
        self._jump: asyncssh.SSHClientConnection | None = None
        self._toolstack: Toolstack | None = None
        self._connecting = asyncio.Lock()
        self._channels = asyncio.Semaphore(MAX_CHANNELS)
        self._long: list[_SshLongChannel] = []
        self._long_opening = 0
        # Connections a poll gave up on while long channels ran on them: no new command
        # goes there, and each is closed when its last long channel ends.
        self._retired: list[asyncssh.SSHClientConnection] = []
        self._connections_opened = 0
        self._configs: dict[str, str] = {}  # VM name -> its vm.cfg, as last listed
        self._keep = False  # hand the vm.cfg files read by full polls over (keep_definitions)
        self._known: _Known | None = None
        self._lister: _Lister | None = None
        self._lister_starting = asyncio.Lock()
        self._table_reader = TableReader()

    # -- Backend protocol -----------------------------------------------------------------

    @property
    def host(self) -> HostKey:
        return self._host

    @property
    def address(self) -> str:
        return self._address

    @property
    def capabilities(self) -> frozenset[Capability]:
        return _CAPABILITIES

    @property
    def connections_opened(self) -> int:
        """How many SSH connections this backend opened (a benchmark checks reuse)."""
        return self._connections_opened

    @property
    def toolstack(self) -> Toolstack | None:
        return self._toolstack or self._forced

    def set_event_callback(self, callback: EventCallback | None) -> None:
        """Xen over SSH has no event stream: the poller polls."""

    def keep_definitions(self, keep: bool) -> None:
        """Full polls (every vm.cfg read anyway, about once a minute) hand each vm.cfg over
        as a definition to keep; the repository writes only what changed. Turned on (again:
        a repository opened or restored), the next poll is a full one: every vm.cfg read."""
        if keep:
            self._known = None
        self._keep = keep

    async def connect(self) -> None:
        await self._connection()

    async def poll(self) -> HostPoll:
        toolstack = await self._detect_toolstack()
        known = self._known
        if known is None or self._clock() >= known.full_after:
            return await self._full_poll(toolstack)
        # The short table (a line per domain) says what changes between polls: state,
        # memory, vCPUs, CPU time. Anything it cannot explain takes a full poll.
        command = f"{toolstack} list"
        text, status = await self._list_table(toolstack)
        if status != 0:
            raise HostUnreachable(
                f"{self._host.name}: `{command}` failed: {_toolstack_error(text, '')}",
                title="Toolstack failed",
            )
        taken_at = time.time()
        # Reading the table is work: the narrow bound (pacing.py), on a turn of the loop of
        # its own: answers of several hosts that arrive together would otherwise be worked
        # through as one block, and every other task (keys, the screen) waits for all of
        # them. Measured at 200 hosts polled every 2 s: the loop's p99 turn went from 2.0 to
        # 1.3 ms. A latency knob: see docs/latency.md.
        async with working():
            rows = self._table_reader.read(text, command)
            vms = _from_rows(known, rows.value, taken_at)
        if vms is None or rows.issues:
            return await self._full_poll(toolstack)
        poll = HostPoll(known.facts, vms, taken_at, warnings=known.warnings)
        if self._known is known:  # unless a full poll meanwhile read newer facts
            self._known = known.after(poll)
        return poll

    async def _list_table(self, toolstack: Toolstack) -> tuple[str, int | None]:
        """``xm list`` through the host's lister: one long-lived channel running a loop that
        prints the table each time it is sent a line. A poll is then a few bytes each way
        instead of a session opened, a command started and the session closed again.
        """
        conn = await self._connection()
        async with self._lister_starting:  # concurrent polls share one lister
            lister = self._lister
            if lister is None or lister.conn is not conn or lister.toolstack != toolstack:
                lister = self._lister = await self._start_lister(conn, toolstack)
        # The table, then "\n<marker> <status> <marker>\n": one read to the end marker.
        # (One read in a timeout block, not wait_for()s: those cost a task each, a poll.)
        end = f" {lister.marker}\n"
        async with (
            waiting(),  # a command in flight: the wide bound (pacing.py)
            lister.lock,
            self._failing(conn, f"{toolstack} list", self._poll_timeout_s),
            asyncio.timeout(self._poll_timeout_s),
        ):
            data = await ssh_loop.run(_ask_lister(lister.process, end))
        table, _, status = data[: -len(end)].rpartition(f"\n{lister.marker} ")
        return table, int(status) if status.isdigit() else None

    async def _start_lister(
        self, conn: asyncssh.SSHClientConnection, toolstack: Toolstack
    ) -> _Lister:
        self._stop_lister()
        marker = f"@@ovmtui-{secrets.token_hex(8)}"
        # POSIX sh whatever the login shell is; the status after the marker.
        loop = (
            f"while read -r _; do {toolstack} list 2>&1; s=$?; "
            f"printf '\\n%s %s %s\\n' {shlex.quote(marker)} \"$s\" {shlex.quote(marker)}; done"
        )
        await self._channels.acquire()  # held for the lister's life: one channel
        try:
            async with self._failing(conn, f"{toolstack} list", self._poll_timeout_s):
                process = await asyncio.wait_for(
                    ssh_loop.run(conn.create_process(f"exec sh -c {shlex.quote(loop)}")),
                    self._poll_timeout_s,
                )
        except BaseException:
            self._channels.release()
            raise
        return _Lister(conn, toolstack, marker, process, asyncio.Lock())

    def _stop_lister(self) -> None:
        lister, self._lister = self._lister, None
        if lister is not None:
            ssh_loop.call(lister.process.close)
            self._channels.release()

    async def _full_poll(self, toolstack: Toolstack) -> HostPoll:
        marker = f"@@ovmtui-{secrets.token_hex(8)}"
        sections = self._poll_sections(toolstack)
        output = await self._run(
            _sectioned_script(sections, marker),
            self._poll_timeout_s,
            label=" + ".join(command for _, command in sections[:2]),
        )
        found = _split_sections(_text(output.stdout), marker, sections)
        # Tens of kilobytes of S-expressions: parsed off the loop, which keeps answering
        # keys, on the one parser thread (see _PARSER).
        # Work: the narrow bound, and the waiting slot given up (pacing.py).
        loop = asyncio.get_running_loop()
        async with working():
            poll, configs = await loop.run_in_executor(_PARSER, self._read_poll, toolstack, found)
        self._configs = configs
        spread = self._spread.uniform(1 - FULL_POLL_SPREAD, 1 + FULL_POLL_SPREAD)
        self._known = _Known.of(poll, self._clock() + FULL_POLL_AFTER_S * spread)
        return poll

    async def act(self, vm: Vm, action: VmAction) -> None:
        await self._toolstack_command(self.command_for(vm, action))

    async def _toolstack_command(self, command: str) -> None:
        """An ``xm``/``xl`` command on a domain: ``VmNotFound`` when the tool does not know
        it, ``ActionFailed`` with the tool's words for any other failure."""
        result = await self._run(command, self._action_timeout_s, label=command)
        if result.exit_status != 0:
            said = _toolstack_error(result.stdout, result.stderr)
            if _NOT_FOUND.search(said):
                raise VmNotFound(f"{self._host.name}: {said}")
            raise ActionFailed(f"{self._host.name}: {command}: {said}")

    async def disk_sizes(self, vm: Vm) -> Mapping[str, int | None]:
        """One command for all of the VM's disk paths on its host: a block device's size
        (``blockdev``), else the file's (``stat -L``); "-" for one it cannot measure. Each
        path is an argument of ``sh -c``, never written into the script."""
        disks = [d for d in vm.disks if d.source and d.source.startswith("/")]
        if not disks:
            return {}
        script = (
            'for p; do if [ -b "$p" ]; then blockdev --getsize64 -- "$p"; '
            'else stat -L -c %s -- "$p"; fi 2>/dev/null || echo -; done'
        )
        paths = [d.source for d in disks if d.source]
        command = shlex.join(["sh", "-c", script, "sh", *paths])
        result = await self._run(command, self._poll_timeout_s, label="disk sizes")
        lines = _text(result.stdout).splitlines()
        sizes: dict[str, int | None] = {}
        for index, disk in enumerate(disks):
            text = lines[index].strip() if index < len(lines) else "-"
            sizes[disk.target] = int(text) if text.isdigit() else None
        return sizes

    async def run_command(
        self,
        argv: Sequence[str],
        *,
        timeout: float,  # noqa: ASYNC109 - the name every helper's callers use
        label: str,
        input: bytes | None = None,
    ) -> CommandOutput:
        """``argv`` on the host over the open connection (``CommandRunner``): one channel of
        the polls' budget, quoted with ``shlex.join``, ``input`` on its standard input; bytes
        as the host wrote them."""
        command = shlex.join(argv)
        async with waiting():
            conn = await self._connection()
            async with self._channels, self._failing(conn, label, timeout):
                # Bytes, not text: file names need not be UTF-8.
                result = await asyncio.wait_for(
                    self._run_on(conn, command, encoding=None, input=input), timeout
                )
        return CommandOutput(result.exit_status, _bytes(result.stdout), _bytes(result.stderr))

    # -- the pool's shared storage (xen_storage.py) ----------------------------------------

    def storage_command(self, root: str) -> str:
        return scan_command(root)

    async def list_storage(self, pool: str, root: str) -> StorageScan:
        """One command for the whole layout (see ``xen_storage``)."""
        output = await self.run_command(
            scan_argv(root), timeout=STORAGE_TIMEOUT_S, label=scan_command(root)
        )
        # Parsing 5,000 records is a few milliseconds: off the loop all the same.
        return await asyncio.get_running_loop().run_in_executor(_PARSER, parse_scan, output, root)

    async def read_storage_file(self, path: str, max_bytes: int) -> bytes | None:
        argv = read_file_argv(path, max_bytes)
        output = await self.run_command(argv, timeout=self._poll_timeout_s, label=argv[0])
        if output.exit_status != 0:
            said = _text(output.stderr).strip() or f"exit {output.exit_status}"
            raise ActionFailed(f"{self._host.name}: cannot read {path}: {said}")
        return output.stdout

    def delete_command(self, pool: str, entry: StorageEntry) -> str:
        return shlex.join(delete_argv(entry))

    async def delete_entry(self, pool: str, root: str, entry: StorageEntry) -> None:
        if not within(root, entry.path):
            raise ActionRefused(f"{entry.path} is not inside a folder of {root}'s layout")
        argv = delete_argv(entry)
        output = await self.run_command(
            argv, timeout=self._action_timeout_s, label=shlex.join(argv)
        )
        if output.exit_status != 0:
            said = _text(output.stderr).strip() or f"exit {output.exit_status}"
            raise ActionFailed(f"{self._host.name}: {shlex.join(argv)}: {said}")

    def sysrq_command(self, vm: Vm, key: str) -> str:
        if key not in SYSRQ_KEYS:
            raise ActionRefused(f"SysRq {key!r} is not one ovmtui sends ({', '.join(SYSRQ_KEYS)})")
        tool = self._toolstack or self._forced or "xm"
        return f"{tool} sysrq {shlex.quote(vm.name)} {shlex.quote(key)}"

    async def send_sysrq(self, vm: Vm, key: str) -> None:
        """``xm/xl sysrq DOM KEY``: Xen hands the key to the guest's kernel (PV and HVM
        guests with a PV console alike), as a BREAK then the key would on a serial line."""
        await self._toolstack_command(self.sysrq_command(vm, key))

    def command_for(self, vm: Vm, action: VmAction) -> str:
        tool = self._toolstack or self._forced or "xm"
        if action is VmAction.START:
            config = vm.config_path or self._configs.get(vm.name)
            if config is None and self._shared_storage:
                # Oracle VM's layout; if the file is not there, xm says so.
                config = f"{self._shared_storage.rstrip('/')}/running_pool/{vm.name}/vm.cfg"
            if config is None:
                raise ActionRefused(
                    f"{vm.name}: no vm.cfg known for it on {self._host.name} (and no "
                    "shared_storage for its pool), so it cannot be started from here"
                )
            return f"{tool} create {shlex.quote(config)}"
        return f"{tool} {_ACTION_VERBS[action]} {shlex.quote(vm.name)}"

    # -- commands and shared disks ---------------------------------------------------------

    @property
    def hot_plug(self) -> str | None:
        """``xm/xl block-attach`` hot-plugs into a running guest (PV drivers: every Oracle VM
        guest has them)."""
        return None

    def _disks(self) -> XenDisks:
        return XenDisks(self, self._host.name, self._toolstack or self._forced or "xm")

    def _config_of(self, vm: Vm) -> str | None:
        config = vm.config_path or self._configs.get(vm.name)
        if config is None and self._shared_storage:
            config = f"{self._shared_storage.rstrip('/')}/running_pool/{vm.name}/vm.cfg"
        return config

    async def plan_disk_change(self, vm: Vm, disk: Disk, *, attach: bool, live: bool) -> DiskChange:
        await self._detect_toolstack()
        return await self._disks().plan(
            vm, disk, config=self._config_of(vm), attach=attach, live=live
        )

    async def apply_disk_change(self, change: DiskChange) -> str:
        await self._detect_toolstack()
        try:
            return await self._disks().apply(change)
        finally:
            self._known = None  # the disks changed: the next poll reads them all again

    def create_disk_command(self, path: str, size_bytes: int, *, allocate: bool) -> str:
        return create_command(path, size_bytes, allocate=allocate)

    async def create_disk(self, path: str, size_bytes: int, *, allocate: bool) -> str:
        return await self._disks().create(path, size_bytes, allocate=allocate)

    def delete_disk_command(self, path: str) -> str:
        return shlex.join(delete_disk_argv(path))

    async def delete_disk(self, path: str) -> None:
        await self._disks().delete(path)

    async def definition(self, vm: Vm) -> str:
        config = vm.config_path or self._configs.get(vm.name)
        if config is None:
            raise ActionRefused(f"{vm.name}: no vm.cfg known for it on {self._host.name}")
        command = f"cat -- {shlex.quote(config)}"
        result = await self._run(command, self._poll_timeout_s, label=command)
        if result.exit_status != 0:
            raise ActionFailed(
                f"{self._host.name}: cannot read {config}: {_text(result.stderr).strip()}"
            )
        return _text(result.stdout)

    @contextlib.asynccontextmanager
    async def console(
        self, vm: Vm, *, term_type: str, term_size: tuple[int, int], force: bool = False
    ) -> AsyncIterator[ConsoleChannel]:
        """The VM's serial console (``base.ConsoleTransport``): ``console_command(vm)`` in
        a PTY of ``term_size`` (columns, rows) on the host's connection, a long channel.

        Entered once the tool is attached (``xen_console`` says how that is told), so what
        is written from then on reaches the guest; ``ConsoleUnavailable`` with the tool's
        words when it refuses (unknown domain, not started). ``force`` is ignored: xm and
        xl have no way to take a console from another client.
        """
        tool = await self._detect_toolstack()
        argv = console_argv(tool, vm)
        command = shlex.join(argv)

        async def domain_now() -> TableRow | None:
            return await self._domain_row(tool, vm)

        async with self.long_channel(argv, term_type=term_type, term_size=term_size) as channel:
            yield await attached(
                channel, host=self._host.name, command=command, vm=vm, domain_now=domain_now
            )

    def console_command(self, vm: Vm) -> str:
        return shlex.join(console_argv(self._toolstack or self._forced or "xm", vm))

    async def _domain_row(self, tool: Toolstack, vm: Vm) -> TableRow | None:
        """The VM's row of ``xm list NAME`` now; None once the host does not know it."""
        command = f"{tool} list {shlex.quote(vm.name)}"
        result = await self._run(command, self._poll_timeout_s, label=command)
        if result.exit_status != 0:
            said = _toolstack_error(result.stdout, result.stderr)
            if _NOT_FOUND.search(said):
                return None
            raise ActionFailed(f"{self._host.name}: {command}: {said}")
        rows = parse_list_table(_text(result.stdout), command).value
        return next((row for row in rows if row.name == vm.name), None)

    # -- migration (base.Migrator; the commands and how they are read: xen_migrate) ---------

    @property
    def migration_address(self) -> str:
        """What another host's ``xm/xl migrate`` names to reach this one: the host part of
        its SSH target (as the dom0s resolve it, which may differ from this machine's view
        behind a jump host). A migration network of its own would be one more setting of
        the host beside its SSH target (``migration_address`` in the estate file), given
        to the constructor and returned here instead."""
        return self._target.host

    def migration_command(self, vm: Vm, target: Backend, *, live: bool) -> str:
        """``xm migrate --live NAME ADDRESS`` / ``xl migrate NAME ADDRESS``, quoted.
        Raises ``ActionRefused`` for a target that is no Xen host over SSH, and for an
        offline migration on xl (which has none)."""
        tool = self._toolstack or self._forced or "xm"
        return shlex.join(migration_argv(tool, vm, _migration_address(target), live=live))

    async def migration_needs(self, vm: Vm) -> MigrationNeeds:
        """One command on the source: its ``info`` (hw_caps, Xen's version), dom0's CPU
        vendor and the VM's vm.cfg; memory, disks and NICs as the last poll read them."""
        tool = await self._detect_toolstack()
        script = needs_script(tool, vm.config_path or self._configs.get(vm.name))
        result = await self._run(script.command, self._poll_timeout_s, label=f"{tool} info")
        return read_needs(
            vm, tool, result.stdout, script.marker, shared_storage=self._shared_storage
        )

    async def can_host(self, needs: MigrationNeeds) -> TargetAnswers:
        """One command on this (target) host: its CPU facts, ``test -e`` per disk path and
        the bridge of each NIC (``xen_migrate.target_script``)."""
        tool = await self._detect_toolstack()
        script = target_script(tool, needs)
        result = await self._run(script.command, self._poll_timeout_s, label="test -e ...")
        return read_answers(needs, tool, result.stdout, script.marker)

    async def migrate(
        self,
        vm: Vm,
        target: Backend,
        *,
        live: bool,
        progress: Callable[[MigrationProgress], None] | None = None,
    ) -> None:
        """``migration_command`` as one long channel on this (source) host's connection, no
        timeout, until the tool exits. ``progress`` gets each line the tool prints, as a
        reading with a ``note`` and no figures: neither tool measures its progress, and
        invented numbers would be worse than none.

        Success is the tool's exit status 0, then the two hosts asked at once (``list
        NAME``): the target must list the domain, the source no longer run it; a host that
        cannot be asked then leaves the last word to the next polls. A failure raises
        ``ActionFailed`` with the lines of the tool's output that say why (its last 8 KB
        are kept).

        Cancelling closes the channel, and that is all it can do: ``xm`` is a client of
        xend, which carries the migration on (or not) whatever becomes of it, and ``xl``
        has no abort: it dies of its next write, at any stage, possibly after the point of
        no return (the source's copy renamed ``NAME--migratedaway``, the target's
        ``NAME--incoming`` paused). The operator then sees, at the next polls, the VM on
        the source, on the target, or in those states on both, and must check both ends
        before resuming either.
        """
        tool = await self._detect_toolstack()
        argv = migration_argv(tool, vm, _migration_address(target), live=live)
        command = shlex.join(argv)
        tail = b""
        pending = b""  # the start of a line not ended yet
        began = time.monotonic()
        async with self.long_channel(argv) as channel:
            while chunk := await channel.read():
                tail = (tail + chunk)[-OUTPUT_TAIL_BYTES:]
                *lines, pending = (pending + chunk).split(b"\n")
                pending = pending[-OUTPUT_TAIL_BYTES:]
                for line in lines:
                    text = line.decode(errors="replace").strip()
                    if text and progress is not None:
                        progress(MigrationProgress(time.monotonic() - began, note=text))
            status = channel.exit_status
        if status != 0:
            raise migration_failure(self._host.name, command, status, tail)
        assert isinstance(target, XenSshBackend)  # _migration_address refused any other
        try:
            there = await target._domain_row(await target._detect_toolstack(), vm)
            here = await self._domain_row(tool, vm)
        except OvmError:
            return  # it said it worked; the next polls tell the rest
        if there is None or not there.state.is_active:
            raise ActionFailed(
                f"{self._host.name}: `{command}` exited with status 0, but "
                f"{target.host.name} does not run {vm.name}",
                title="Migration failed",
            )
        # A domain xend or xl is tearing down shows as dying for a moment: that one is gone.
        if here is not None and here.state.is_active and here.state is not VmState.DYING:
            raise ActionFailed(
                f"{self._host.name}: `{command}` exited with status 0, but {vm.name} runs on "
                f"both {self._host.name} and {target.host.name}: check both before "
                "stopping either",
                title="Migration unclear",
            )

    async def close(self) -> None:
        self._stop_lister()
        conn, self._conn = self._conn, None
        jump, self._jump = self._jump, None
        retired, self._retired = self._retired, []
        for c in (*retired, conn, jump):
            if c is not None:
                with contextlib.suppress(Exception):
                    await ssh_loop.run(_close_connection(c, 2.0))

    # -- connection -----------------------------------------------------------------------

    async def _connection(self) -> asyncssh.SSHClientConnection:
        conn = self._conn
        if conn is not None and not _is_closed(conn):
            return conn
        async with self._connecting:  # concurrent callers share one attempt
            conn = self._conn
            if conn is not None and not _is_closed(conn):
                return conn
            self._conn = None
            self._toolstack = None
            self._known = None  # a new connection starts with a full poll
            async with waiting():  # about nine round trips: the wide bound (pacing.py)
                await connect_turn()  # not in step with the other hosts' connects
                self._conn = await self._open()
            return self._conn

    async def _open(self) -> asyncssh.SSHClientConnection:
        tunnel: asyncssh.SSHClientConnection | None = None
        if self._jump_target is not None:
            if self._jump is None or _is_closed(self._jump):
                self._jump = await self._open_to(self._jump_target, None, "jump host ")
            tunnel = self._jump
        return await self._open_to(self._target, tunnel, "")

    async def _open_to(
        self,
        target: SshTarget,
        tunnel: asyncssh.SSHClientConnection | None,
        what: str,
    ) -> asyncssh.SSHClientConnection:
        name = f"{self._host.name}: {what}{target}"
        options: dict[str, Any] = {
            "port": target.port,
            "connect_timeout": self._connect_timeout_s,
            "keepalive_interval": KEEPALIVE_INTERVAL_S,
            "keepalive_count_max": KEEPALIVE_COUNT_MAX,
            "preferred_auth": "publickey",
            "password": None,
            "kbdint_auth": False,
            "config": None,  # the estate file says everything; ~/.ssh/config must not surprise
            "encryption_algs": _CIPHERS,
        }
        if target.user:
            options["username"] = target.user
        if self._identity is not None:
            options["client_keys"] = [self._identity]
        if tunnel is not None:
            options["tunnel"] = tunnel
        known_hosts = await asyncio.to_thread(_known_hosts_of, self._known_hosts)
        if known_hosts is None:
            raise HostUnreachable(
                f"{name}: known_hosts file {self._known_hosts} does not exist; host keys are "
                f"always verified. Create it with the host's key: "
                f"{_keyscan_hint(target, self._known_hosts)}"
            ) from None
        options["known_hosts"] = known_hosts
        try:
            conn = await asyncio.wait_for(
                ssh_loop.run(asyncssh.connect(target.host, **options)),
                self._connect_timeout_s + 1,
            )
        except asyncssh.HostKeyNotVerifiable:
            raise HostUnreachable(
                await self._host_key_refusal(target, tunnel, name), title="Host key not trusted"
            ) from None
        except asyncssh.PermissionDenied as exc:
            raise HostUnreachable(
                f"{name}: permission denied ({exc.reason}): the key "
                f"{self._identity or 'from the agent or ~/.ssh'} is not accepted for user "
                f"{target.user or 'the current user'}",
                title="SSH login refused",
            ) from None
        except TimeoutError:
            raise HostTimeout(
                f"{name}: no SSH answer within {self._connect_timeout_s:.0f} s"
            ) from None
        except (asyncssh.Error, OSError) as exc:
            raise HostUnreachable(f"{name}: {_describe(exc)}") from None
        self._connections_opened += 1
        return conn

    async def _host_key_refusal(
        self, target: SshTarget, tunnel: asyncssh.SSHClientConnection | None, name: str
    ) -> str:
        """Which key the host offered, whether it is unknown or changed, and how to accept it."""
        offered = "?"
        with contextlib.suppress(Exception):
            key = await asyncio.wait_for(
                ssh_loop.run(
                    asyncssh.get_server_host_key(
                        target.host, target.port, tunnel=tunnel or (), config=None
                    )
                ),
                self._connect_timeout_s,
            )
            if key is not None:
                offered = f"{key.get_algorithm()} {key.get_fingerprint('sha256')}"
        if recorded_keys(self._known_hosts, target):
            return f"{name}: {changed_key_text(target, self._known_hosts, offered)}"
        return f"{name}: {unknown_key_text(target, self._known_hosts, offered)}"

    def _drop(self, conn: asyncssh.SSHClientConnection) -> None:
        if self._conn is conn:
            self._conn = None
            self._toolstack = None
        if self._lister is not None and self._lister.conn is conn:
            self._stop_lister()
        if any(channel.conn is conn for channel in self._long):
            # A console or a migration on it would die with it for a poll that hung: the
            # polls move to a new connection, and this one goes when its last long channel
            # does. If the host itself is gone, the keepalives end them all.
            if conn not in self._retired:
                self._retired.append(conn)
            return
        ssh_loop.call(conn.abort)

    @contextlib.asynccontextmanager
    async def long_channel(
        self,
        argv: Sequence[str],
        *,
        term_type: str | None = None,
        term_size: tuple[int, int] | None = None,
    ) -> AsyncIterator[LongChannel]:
        """``argv`` on the host until it ends, the context is left or cancelled: see
        ``base.LongChannelOpener``. No timeout once open, and nothing that happens to it
        drops the connection the polls use."""
        if not argv:
            raise ValueError("long_channel needs a command")
        command = shlex.join(argv)
        open_now = len(self._long) + self._long_opening
        if open_now >= MAX_LONG_CHANNELS:
            raise ChannelsBusy(
                f"{self._host.name}: {open_now} long-lived channels (consoles, migrations, "
                f"downloads) are open, the most one host takes ({MAX_LONG_CHANNELS}); "
                f"close one to run `{command}`"
            )
        self._long_opening += 1  # counted before any wait, so concurrent opens see it
        try:
            conn = await self._connection()
            process = await self._open_long(conn, f"exec {command}", term_type, term_size)
        finally:
            self._long_opening -= 1
        channel = _SshLongChannel(
            self._host.name, command, conn, process, terminal=term_type is not None
        )
        self._long.append(channel)
        try:
            yield channel
        finally:
            self._long.remove(channel)
            try:
                await channel.close()
            finally:
                if conn in self._retired and all(other.conn is not conn for other in self._long):
                    self._retired.remove(conn)
                    ssh_loop.call(conn.abort)

    async def _open_long(
        self,
        conn: asyncssh.SSHClientConnection,
        command: str,
        term_type: str | None,
        term_size: tuple[int, int] | None,
    ) -> asyncssh.SSHClientProcess[bytes]:
        """A session for a long channel. Its failures are its own: the connection stays
        (if it is really lost, the next poll finds it closed and reconnects)."""
        options: dict[str, Any] = {"encoding": None, "stderr": asyncssh.STDOUT}
        if term_type is not None:
            options["term_type"] = term_type
            if term_size is not None:
                options["term_size"] = term_size
        name = f"{self._host.name}: `{command.removeprefix('exec ')}`"
        for attempt in range(CHANNEL_RETRIES):
            try:
                return await self._create_process(conn, command, options)
            except asyncssh.ChannelOpenError as exc:
                # "open failed": the server has not freed a session slot yet, or its
                # MaxSessions is below what the budgets assume.
                if attempt == CHANNEL_RETRIES - 1:
                    raise ActionFailed(
                        f"{name}: the SSH server refused a new session ({exc.reason}); "
                        f"its MaxSessions must be at least "
                        f"{MAX_CHANNELS + MAX_LONG_CHANNELS + 1}",
                        title="SSH session refused",
                    ) from None
                await asyncio.sleep(0.05 * (attempt + 1))
            except TimeoutError:
                raise HostTimeout(
                    f"{name}: no session within {self._poll_timeout_s:.0f} s"
                ) from None
            except (asyncssh.Error, OSError) as exc:
                raise HostUnreachable(f"{name}: SSH failed: {_describe(exc)}") from None
        raise AssertionError("unreachable")

    async def _create_process(
        self, conn: asyncssh.SSHClientConnection, command: str, options: dict[str, Any]
    ) -> asyncssh.SSHClientProcess[bytes]:
        """``conn.create_process`` within the open timeout, and no session left behind: one
        the host opens after a cancel or a timeout would hold one of its sessions, and run
        its command, until the connection ends; it is closed as soon as it opens."""
        return await ssh_loop.run(_open_session(conn, command, options, self._poll_timeout_s))

    async def _run(
        self, command: str, timeout_s: float, *, label: str
    ) -> asyncssh.SSHCompletedProcess:
        async with waiting():  # a command in flight: the wide bound (pacing.py)
            conn = await self._connection()
            async with self._channels, self._failing(conn, label, timeout_s):
                return await asyncio.wait_for(self._run_on(conn, command), timeout_s)

    @contextlib.asynccontextmanager
    async def _failing(
        self, conn: asyncssh.SSHClientConnection, label: str, timeout_s: float
    ) -> AsyncIterator[None]:
        """SSH failures and timeouts on ``conn`` as OvmErrors, the connection dropped.

        A command, or the whole host, that stopped answering: if the host is alive the next
        poll reconnects at once, else it is marked down.
        """
        started = time.monotonic()
        try:
            yield
        except TimeoutError:
            self._drop(conn)
            raise HostTimeout(
                f"{self._host.name}: `{label}` did not answer within {timeout_s:.0f} s"
            ) from None
        except (asyncssh.Error, OSError, asyncio.IncompleteReadError) as exc:
            self._drop(conn)
            waited = time.monotonic() - started
            raise HostUnreachable(
                f"{self._host.name}: SSH failed after {waited:.1f} s: {_describe(exc)}"
            ) from None

    @staticmethod
    async def _run_on(
        conn: asyncssh.SSHClientConnection,
        command: str,
        *,
        encoding: str | None = "utf-8",
        input: bytes | None = None,
    ) -> asyncssh.SSHCompletedProcess:
        return await ssh_loop.run(_run_here(conn, command, encoding, input))

    # -- reading the host -----------------------------------------------------------------

    async def _detect_toolstack(self) -> Toolstack:
        if self._forced is not None:
            return self._forced
        await self._connection()
        if self._toolstack is not None:
            return self._toolstack
        # xm where it exists and answers (Oracle VM and every xend host), else xl.
        script = (
            "if command -v xm >/dev/null 2>&1 && xm info >/dev/null 2>&1; then echo xm; "
            "elif command -v xl >/dev/null 2>&1; then echo xl; "
            "elif command -v xm >/dev/null 2>&1; then echo xm; fi"
        )
        result = await self._run(script, self._poll_timeout_s, label="command -v xm xl")
        found = _text(result.stdout).strip()
        if found not in ("xm", "xl"):
            raise HostUnreachable(
                f"{self._host.name}: neither xm nor xl is on the PATH of "
                f"{self._target.user or 'the login user'}: is this a Xen host?",
                title="No Xen toolstack",
            )
        self._toolstack = "xm" if found == "xm" else "xl"
        return self._toolstack

    def _poll_sections(self, tool: Toolstack) -> list[tuple[str, str]]:
        sections = [("info", f"{tool} info"), ("long", f"{tool} list -l")]
        if tool == "xl":
            sections.append(("table", "xl list"))  # xl list -l has no state
        if self._shared_storage:
            pattern = shlex.quote(self._shared_storage.rstrip("/") + "/running_pool") + "/*/vm.cfg"
            # One line per file: its path, then its contents (xm reads them as Python).
            sections.append(
                (
                    "configs",
                    f'for f in {pattern}; do [ -f "$f" ] || continue; '
                    'printf "@@cfg %s\\n" "$f"; cat -- "$f"; echo; done',
                )
            )
        return sections

    def _read_poll(
        self, tool: Toolstack, found: dict[str, _Section]
    ) -> tuple[HostPoll, dict[str, str]]:
        issues: list[ParseIssue] = []
        info = found.get("info")
        long = found.get("long")
        if info is None or long is None:
            raise HostUnreachable(f"{self._host.name}: the poll's output was cut short")
        # xend down ("Error: Unable to connect to xend"): the host is not empty, it cannot
        # be read. Showing no VMs would be a lie: the poll fails, the last good data stays.
        if long.status not in (0, None):
            raise HostUnreachable(
                f"{self._host.name}: `{long.command}` failed: "
                f"{_toolstack_error(long.text, '') or f'exit status {long.status}'}",
                title="Toolstack failed",
            )
        facts_parsed = parse_info(info.text, info.command)
        issues.extend(facts_parsed.issues)
        facts = replace(facts_parsed.value, hypervisor=facts_parsed.value.hypervisor or "Xen")
        if tool == "xm":
            domains = parse_xm_list_long(long.text, long.command)
            issues.extend(domains.issues)
            listed = domains.value
        else:
            domains = parse_xl_list_long(long.text, long.command)
            issues.extend(domains.issues)
            table = found.get("table")
            rows = parse_list_table(table.text, table.command) if table else None
            if rows is not None:
                issues.extend(rows.issues)
            listed = merge_table_rows(domains.value, rows.value if rows else ())
        vms, configs, definitions = _vms(listed, found.get("configs"), issues, keep=self._keep)
        poll = HostPoll(
            facts=facts,
            vms=vms,
            taken_at=time.time(),
            warnings=tuple(f"{self._host.name}: {issue}" for issue in issues),
            definitions=definitions,
        )
        return poll, configs


def _vms(
    listed: Sequence[XenDomain],
    configs: _Section | None,
    issues: list[ParseIssue],
    *,
    keep: bool = False,
) -> tuple[tuple[Vm, ...], dict[str, str], tuple[Definition, ...]]:
    """The VMs of a full poll, which vm.cfg defines each (by name), and with ``keep`` each
    vm.cfg as a definition to keep (hashed here, on the parser thread)."""
    definitions: list[Definition] = []
    by_uuid: dict[str, Vm] = {}
    for domain in listed:
        if domain.is_dom0 or not domain.vm.uuid:
            continue
        by_uuid[domain.vm.uuid] = domain.vm
    cfg_by_name: dict[str, str] = {}
    if configs is not None:
        for path, text in _config_files(configs.text):
            raw = parse_vm_cfg(text, path)
            parsed = vm_config(raw.value, path)
            issues.extend((*raw.issues, *parsed.issues))
            cfg = parsed.value
            if cfg.name is None or cfg.uuid is None:
                continue
            cfg_by_name[cfg.name] = path
            if keep:
                digest = hashlib.sha256(text.encode()).hexdigest()
                definitions.append(
                    Definition(DefinitionKind.DOMAIN, cfg.uuid.lower(), cfg.name, text, digest)
                )
            running = by_uuid.get(cfg.uuid)
            if running is not None:
                by_uuid[cfg.uuid] = replace(running, config_path=path)
            else:
                # Defined by its vm.cfg only: Oracle VM's stopped VMs live like this.
                by_uuid[cfg.uuid] = Vm(
                    uuid=cfg.uuid,
                    name=cfg.name,
                    state=VmState.SHUTOFF,
                    vcpus=cfg.vcpus,
                    memory_mib=cfg.memory_mib,
                    max_memory_mib=cfg.max_memory_mib,
                    disks=cfg.disks,
                    nics=cfg.nics,
                    os_type=cfg.os_type,
                    config_path=path,
                    persistent=True,
                )
    vms = tuple(sorted(by_uuid.values(), key=lambda vm: (vm.name, vm.uuid)))
    return vms, cfg_by_name, tuple(definitions)


def _with_row(vm: Vm, row: TableRow, seconds: float) -> Vm:
    """The VM as its table row shows it ``seconds`` after ``vm`` was read, CPU % included.

    The very same object when nothing moved: an idle or paused VM then costs the poll
    (and the poller, and the screen) a comparison, not a copy. The CPU % is the one the
    poller would derive from the same two readings (``cpu_usage_percent``), so the
    poller has nothing left to copy either.
    """
    state = row.state
    cpu_time_ns = round(row.cpu_time_s * 1e9) if row.cpu_time_s is not None else vm.cpu_time_ns
    vcpus = row.vcpus if row.vcpus is not None else vm.vcpus
    memory_mib = row.memory_mib if row.memory_mib is not None else vm.memory_mib
    percent = (
        cpu_usage_percent(vm.cpu_time_ns, cpu_time_ns, vcpus, seconds) if state.is_active else None
    )
    if (
        state is vm.state
        and cpu_time_ns == vm.cpu_time_ns
        and percent == vm.cpu_percent
        and vcpus == vm.vcpus
        and memory_mib == vm.memory_mib
    ):
        return vm
    return vm_with_readings(
        vm,
        state=state,
        vcpus=vcpus,
        memory_mib=memory_mib,
        cpu_time_ns=cpu_time_ns,
        cpu_percent=percent,
        started_at=vm.started_at,
    )


@dataclass(frozen=True, slots=True)
class _Known:
    """What the last full poll read (the facts the short table does not carry), and the
    VMs as the last poll of either kind left them, in the full poll's order."""

    facts: HostFacts
    vms: tuple[Vm, ...]
    at_row: dict[tuple[str, int | None], int]  # (name, domain id) -> index in vms
    warnings: tuple[str, ...]
    taken_at: float  # when the VMs were read (epoch seconds, as HostPoll.taken_at)
    full_after: float  # the backend's clock (monotonic) when the next full poll is due

    @classmethod
    def of(cls, poll: HostPoll, full_after: float) -> _Known:
        rows = {(vm.name, vm.domain_id): index for index, vm in enumerate(poll.vms)}
        return cls(poll.facts, poll.vms, rows, poll.warnings, poll.taken_at, full_after)

    def after(self, poll: HostPoll) -> _Known:
        """The VMs of ``poll``, a quick one (the same VMs, same order, same rows): what
        the next quick poll reads against."""
        return _Known(
            self.facts, poll.vms, self.at_row, self.warnings, poll.taken_at, self.full_after
        )


def _from_rows(known: _Known, rows: Sequence[TableRow], taken_at: float) -> tuple[Vm, ...] | None:
    """The VMs of a quick poll, or None when the table shows what only a full poll can read.

    A domain id changes at every start, restore and migration, so a (name, id) pair the
    last full poll did not see is a VM it knows nothing about; an active VM missing from
    the table stopped (its vm.cfg, if any, says what it is now). The VMs come in the full
    poll's order, the row's VM in its place: no sort, and no dict made again per poll.
    """
    seconds = taken_at - known.taken_at
    vms = list(known.vms)
    seen = [False] * len(vms)
    at_row = known.at_row
    for row in rows:
        if row.is_dom0:
            continue
        index = at_row.get((row.name, row.domid))
        if index is None or seen[index]:
            return None
        seen[index] = True
        vms[index] = _with_row(vms[index], row, seconds)
    for vm, listed in zip(vms, seen, strict=True):
        # Shut off VMs that a vm.cfg defines are in no table (`xl list` never shows
        # them); an active one missing stopped.
        if not listed and vm.state.is_active:
            return None
    return tuple(vms)


# -- helpers ------------------------------------------------------------------------------


def _migration_address(target: Backend) -> str:
    if isinstance(target, XenSshBackend):
        return target.migration_address
    raise ActionRefused(
        f"{target.host}: not a Xen host reached over SSH, so `xm/xl migrate` cannot name it"
    )


def _sectioned_script(sections: Sequence[tuple[str, str]], marker: str) -> str:
    """One shell script printing each command's output after a marker line with its name."""
    parts = []
    for name, command in sections:
        parts.append(f"printf '%s\\n' {shlex.quote(f'{marker} begin {name}')}")
        parts.append(f"{{ {command}; }} 2>&1")
        parts.append(f"printf '\\n%s %s\\n' {shlex.quote(f'{marker} end {name}')} \"$?\"")
    return "; ".join(parts)


def _split_sections(
    text: str, marker: str, sections: Sequence[tuple[str, str]]
) -> dict[str, _Section]:
    commands = dict(sections)
    found: dict[str, _Section] = {}
    for chunk in text.split(f"{marker} begin ")[1:]:
        name, _, rest = chunk.partition("\n")
        body, end, tail = rest.rpartition(f"\n{marker} end {name} ")
        if not end:
            body, tail = rest, ""  # cut short: keep what came
        status_text = tail.split("\n", 1)[0].strip()
        status = int(status_text) if status_text.isdigit() else None
        if name in commands:
            found[name] = _Section(name, commands[name], status, body.removesuffix("\n"))
    return found


def _config_files(text: str) -> list[tuple[str, str]]:
    files: list[tuple[str, str]] = []
    for chunk in text.split("@@cfg ")[1:]:
        path, _, body = chunk.partition("\n")
        files.append((path.strip(), body))
    return files


_known_hosts_lock = threading.Lock()
_known_hosts_read: dict[str, tuple[tuple[int, int, int], asyncssh.SSHKnownHosts]] = {}


def _known_hosts_of(path: str) -> asyncssh.SSHKnownHosts | None:
    """``path`` read and parsed, once per change of the file (None if there is none).

    On a worker thread. Left to asyncssh, every connect read and parsed the whole file on
    the event loop: 2.7 ms for 200 entries, 200 times in a cold start of 200 hosts
    (issue 13), more with an operator's years of entries.
    """
    try:
        stat = os.stat(path)
    except OSError:
        return None
    version = (stat.st_mtime_ns, stat.st_size, stat.st_ino)
    with _known_hosts_lock:
        cached = _known_hosts_read.get(path)
        if cached is not None and cached[0] == version:
            return cached[1]
        try:
            known = asyncssh.read_known_hosts(path)
        except OSError:
            return None
        _known_hosts_read[path] = (version, known)
        return known


def known_hosts_pattern(target: SshTarget) -> str:
    """How ``known_hosts`` names the target: ``host``, or ``[host]:port`` off port 22."""
    return target.host if target.port == 22 else f"[{target.host}]:{target.port}"


def recorded_keys(known_hosts: str, target: SshTarget) -> Sequence[asyncssh.SSHKey]:
    """The host keys ``known_hosts`` trusts for the target (none if it cannot be read)."""
    known: Sequence[asyncssh.SSHKey] = ()
    with contextlib.suppress(Exception):
        known = asyncssh.match_known_hosts(known_hosts, target.host, target.host, target.port)[0]
    return known


def changed_key_text(target: SshTarget, known_hosts: str, offered: str) -> str:
    """A changed host key, and the only fix: check it, forget the old one, scan the new."""
    pattern = known_hosts_pattern(target)
    return (
        f"the host key CHANGED: it offered {offered}, which is not the key "
        f"recorded for {pattern} in {known_hosts}. That is what a "
        "man-in-the-middle looks like; if the host was reinstalled, check the new key "
        f"with its administrator, then: ssh-keygen -R {shlex.quote(pattern)} -f "
        f"{shlex.quote(known_hosts)} && {_keyscan_hint(target, known_hosts)}"
    )


def unknown_key_text(target: SshTarget, known_hosts: str, offered: str) -> str:
    return (
        f"unknown host key {offered} (not in {known_hosts}). If that "
        f"fingerprint is right, accept it with: {_keyscan_hint(target, known_hosts)}"
    )


def _keyscan_hint(target: SshTarget, known_hosts: str) -> str:
    port = f"-p {target.port} " if target.port != 22 else ""
    return f"ssh-keyscan {port}{shlex.quote(target.host)} >> {shlex.quote(known_hosts)}"


# -- on the SSH loop (ssh_loop.py): the only code that touches asyncssh's objects ----------


async def _run_here(
    conn: asyncssh.SSHClientConnection, command: str, encoding: str | None, input: bytes | None
) -> asyncssh.SSHCompletedProcess:
    for attempt in range(CHANNEL_RETRIES):
        try:
            if input is not None:
                return await conn.run(command, check=False, encoding=encoding, input=input)
            return await conn.run(command, check=False, encoding=encoding)
        except asyncssh.ChannelOpenError:
            # "open failed": the server has not freed a session slot yet.
            if attempt == CHANNEL_RETRIES - 1:
                raise
            await asyncio.sleep(0.05 * (attempt + 1))
    raise AssertionError("unreachable")


async def _open_session(
    conn: asyncssh.SSHClientConnection, command: str, options: dict[str, Any], timeout_s: float
) -> asyncssh.SSHClientProcess[bytes]:
    """``conn.create_process`` within ``timeout_s``, and no session left behind: one the host
    opens after a cancel or a timeout would hold one of its sessions, and run its command,
    until the connection ends; it is closed as soon as it opens."""
    opening: asyncio.Future[asyncssh.SSHClientProcess[bytes]] = asyncio.ensure_future(
        conn.create_process(command, **options)
    )
    try:
        async with asyncio.timeout(timeout_s):
            return await asyncio.shield(opening)
    except BaseException:
        opening.add_done_callback(_close_if_opened)
        raise


def _close_if_opened(opening: asyncio.Future[asyncssh.SSHClientProcess[bytes]]) -> None:
    if not opening.cancelled() and opening.exception() is None:
        opening.result().close()


async def _ask_lister(process: asyncssh.SSHClientProcess[str], end: str) -> str:
    process.stdin.write("\n")
    return await process.stdout.readuntil(end)


async def _send(process: asyncssh.SSHClientProcess[bytes], data: bytes) -> None:
    process.stdin.write(data)
    await process.stdin.drain()


def _quietly(function: Callable[..., object], *args: object) -> None:
    with contextlib.suppress(asyncssh.Error, OSError):
        function(*args)


async def _close_process(process: asyncssh.SSHClientProcess[bytes], wait_s: float) -> None:
    process.close()
    await asyncio.wait_for(process.wait_closed(), wait_s)


async def _close_connection(conn: asyncssh.SSHClientConnection, wait_s: float) -> None:
    conn.close()
    await asyncio.wait_for(conn.wait_closed(), wait_s)


def _is_closed(conn: asyncssh.SSHClientConnection) -> bool:
    return conn.is_closed()


def _bytes(data: object) -> bytes:
    """A completed process's output as bytes (asyncssh gives str when an encoding is set)."""
    if isinstance(data, bytes):
        return data
    return data.encode() if isinstance(data, str) else b""


def _describe(exc: BaseException) -> str:
    if isinstance(exc, asyncssh.DisconnectError):
        return exc.reason or type(exc).__name__
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused (no SSH server on that port?)"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) or type(exc).__name__
